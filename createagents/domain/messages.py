"""The vendor-neutral vocabulary of a conversation: messages, tool calls, tool specs, usage.

Frozen, slotted, keyword-only dataclasses with a literal `role`/`kind`, so a
message can be shared between conversations and matched exhaustively.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, TypeAlias


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    """A call the model asked for. `arguments` is the JSON text as the model wrote it."""

    id: str
    name: str
    arguments: str = "{}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolSpec:
    """What the model is told about a tool: a name, a description and a JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True, slots=True, kw_only=True)
class HostedTool:
    """A tool the provider runs on its own side (OpenAI's web search, say): passed through, never called here.

    `type` is the provider's tool type ("web_search"); `options` are sent
    beside it as they are.
    """

    type: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.type

    @property
    def description(self) -> str:
        return "a tool the provider runs on its side"


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemMessage:
    content: str
    role: Literal["system"] = "system"


@dataclass(frozen=True, slots=True, kw_only=True)
class UserMessage:
    content: str
    role: Literal["user"] = "user"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderItem:
    """Something one provider API gave with an answer and wants back with the history: opaque elsewhere.

    A reasoning model's encrypted reasoning on OpenAI's Responses API, for
    one: sent back on the next turn, it keeps the model's chain of thought.
    `api` names the API it belongs to ("openai-responses"); any other
    adapter leaves the item out of its requests.
    """

    api: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class AssistantMessage:
    """What the model said in one round trip; `thinking` is kept apart from `content`."""

    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    thinking: str = ""
    provider_items: tuple[ProviderItem, ...] = ()
    role: Literal["assistant"] = "assistant"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolMessage:
    """The result of one tool call, sent back to the model."""

    tool_call_id: str
    name: str
    content: str
    is_error: bool = False
    role: Literal["tool"] = "tool"


Message: TypeAlias = SystemMessage | UserMessage | AssistantMessage | ToolMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Token counts and provider timings of one model call, or summed over a run.

    Fields a provider does not report stay 0; durations are seconds. These
    declarations are the one list of usage fields: `USAGE_FIELDS`,
    `TOKEN_FIELDS` and `+` derive from them, and through those the metric
    totals, summaries and exports. `ModelCallRecord` declares the same fields
    under the same names (a test holds the two equal).
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    load_duration: float = 0.0
    prompt_eval_duration: float = 0.0
    eval_duration: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    if TYPE_CHECKING:

        def __add__(self, other: Usage) -> Usage:
            """Field by field; the body is generated below from the fields."""


USAGE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Usage))
"""Every field of `Usage`, in declaration order."""

TOKEN_FIELDS: tuple[str, ...] = tuple(name for name in USAGE_FIELDS if name.endswith("_tokens"))
"""The token counts of `Usage`: prompt, completion, cached, reasoning."""


def _fieldwise_sum(cls: type, names: tuple[str, ...]) -> Callable[[Any, Any], Any]:
    """`__add__` for `cls`, written out field by field and compiled once, as `dataclasses` writes `__init__`.

    `Usage.__add__` runs for every model call; a loop over the fields would
    cost half as much again as this straight-line code.
    """
    body = ", ".join(f"{name}=self.{name} + other.{name}" for name in names)
    namespace: dict[str, Any] = {}
    exec(f"def __add__(self, other):\n    return cls({body})\n", {"cls": cls}, namespace)
    add: Callable[[Any, Any], Any] = namespace["__add__"]
    add.__module__, add.__qualname__ = cls.__module__, f"{cls.__qualname__}.__add__"
    return add


Usage.__add__ = _fieldwise_sum(Usage, USAGE_FIELDS)  # type: ignore[method-assign]

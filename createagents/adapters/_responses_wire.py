"""Our vocabulary on OpenAI's Responses API wire: the request body, input items, tools and settings.

History stays ours (`store: false`): every request carries the whole
conversation as input items. A reasoning model's reasoning comes back
encrypted (`include: ["reasoning.encrypted_content"]`), is kept on the
assistant message as a `ProviderItem` of this API, and goes back in the
next request, so the model keeps its chain across turns and tool calls.
Items of other APIs, and thinking text from other providers, are left out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..domain.errors import ConfigurationError
from ..domain.messages import (
    AssistantMessage,
    HostedTool,
    Message,
    SystemMessage,
    ToolMessage,
    ToolSpec,
    UserMessage,
)
from ..domain.output import OutputFormat
from ..domain.settings import ModelSettings
from ._openai_wire import json_schema, reasoning_effort

API = "openai-responses"  # the `api` of the provider items this adapter writes and reads back
HOSTED_TOOL_TYPES = frozenset(
    ("web_search", "web_search_preview", "file_search", "code_interpreter", "image_generation")
)
_REASONING_MODELS = re.compile(r"^(o\d|gpt-5|gpt-oss|codex)", re.IGNORECASE)  # besides: a reasoning setting given
_CHAT_ONLY = {
    "stop": "the Responses API has no stop sequences",
    "seed": "the Responses API takes no seed",
    "top_k": "OpenAI's APIs take no top_k",
}


def check(settings: ModelSettings, provider: str) -> None:
    """Settings the Responses API cannot take are refused when the agent is built, never silently dropped."""
    for key, why in _CHAT_ONLY.items():
        if getattr(settings, key) is not None:
            raise ConfigurationError(
                f"setting {key!r} cannot be used with api='responses' ({provider}): {why}; use api='chat'"
            )


def params(
    model: str,
    messages: Sequence[Message],
    tools: Sequence[ToolSpec],
    hosted: Sequence[HostedTool],
    s: ModelSettings,
    output: OutputFormat | None = None,
) -> dict[str, Any]:
    """The request body of one streamed response."""
    body: dict[str, Any] = {"model": model, "input": input_items(messages), "stream": True, "store": False}
    effort = reasoning_effort(s)
    if reasons(model, s):  # other models refuse the include ("Encrypted content is not supported")
        body["include"] = ["reasoning.encrypted_content"]
    if tools or hosted:
        body["tools"] = [function_tool(t) for t in tools] + [{"type": h.type, **h.options} for h in hosted]
        body["tool_choice"] = "auto"
    if s.temperature is not None:
        body["temperature"] = s.temperature
    if s.top_p is not None:
        body["top_p"] = s.top_p
    if s.max_tokens is not None:
        body["max_output_tokens"] = s.max_tokens
    reasoning: dict[str, Any] = {}
    if effort is not None:
        reasoning["effort"] = effort
    if s.reasoning_summary is not None:
        reasoning["summary"] = s.reasoning_summary
    if reasoning:
        body["reasoning"] = reasoning
    text: dict[str, Any] = {}
    if s.verbosity is not None:
        text["verbosity"] = s.verbosity
    if output is not None:
        if output.mode == "native":
            text["format"] = {"type": "json_schema", **json_schema(output)}
        elif output.mode == "prompted":
            text["format"] = {"type": "json_object"}
        else:  # "tool": the answer comes as a tool call, after any others
            body["tool_choice"] = "required"
    if text:
        body["text"] = text
    if s.truncation is not None:
        body["truncation"] = s.truncation
    if s.service_tier is not None:
        body["service_tier"] = s.service_tier
    return body


def reasons(model: str, s: ModelSettings) -> bool:
    """Whether the model reasons (so its encrypted reasoning is asked for): by its name, or a reasoning setting."""
    if s.reasoning_summary is not None or (s.reasoning_effort not in (None, "none")):
        return True
    if s.think is not None and s.think is not False:
        return True
    return bool(_REASONING_MODELS.match(model)) and "chat" not in model.lower()


def input_items(messages: Sequence[Message]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    add = items.append
    for m in messages:
        match m:
            case SystemMessage() | UserMessage():
                add({"role": m.role, "content": m.content})
            case AssistantMessage():
                # this API's items first (reasoning precedes what it led to), then the text, then the calls
                items.extend(kept(m))
                if m.content:
                    add({"role": "assistant", "content": m.content})
                for c in m.tool_calls:
                    add({"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments or "{}"})
            case ToolMessage():
                add({"type": "function_call_output", "call_id": m.tool_call_id, "output": m.content})
            case _:
                raise ConfigurationError(f"cannot send {type(m).__name__} to OpenAI's Responses API")
    return items


def kept(m: AssistantMessage) -> list[dict[str, Any]]:
    """The message's items of this API that may go back. A reasoning item goes back only whole (encrypted,
    complete) and followed by what it led to: the API refuses one alone ("provided without its required
    following item"), and, with `store: false`, one it cannot decrypt."""
    followed = bool(m.content or m.tool_calls)
    out = []
    for item in m.provider_items:
        if item.api != API:
            continue
        data = item.data
        if data.get("type") == "reasoning" and (
            not followed or not data.get("encrypted_content") or data.get("status") == "incomplete"
        ):
            continue
        out.append(data)
    return out


def function_tool(t: ToolSpec) -> dict[str, Any]:
    # strict is the Responses API's default, and asks more of a schema than ours promise (every property required)
    return {
        "type": "function",
        "name": t.name,
        "description": t.description,
        "parameters": t.parameters,
        "strict": False,
    }

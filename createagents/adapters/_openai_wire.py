"""Our vocabulary on the Chat Completions wire: request parameters, messages, tools, and each server's quirks.

The quirks live in a small `WireProfile` derived from the base URL, so an
agent built with `provider="openai"` and a client the user built for the
same URL send the same fields: OpenAI itself (and Azure) take
`max_completion_tokens` (its reasoning models refuse `max_tokens`) and have no
`top_k`; compatible servers (vLLM, llama.cpp, LM Studio, LiteLLM, Ollama's
/v1) take `max_tokens` and `top_k`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..domain.errors import ConfigurationError
from ..domain.messages import AssistantMessage, Message, SystemMessage, ToolMessage, ToolSpec, UserMessage
from ..domain.output import OutputFormat, OutputMode
from ..domain.settings import ModelSettings

_OPENAI_HOSTS = ("api.openai.com",)
_AZURE_SUFFIXES = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")


@dataclass(frozen=True, slots=True)
class WireProfile:
    """What a server takes: `name` says which kind it is ("openai", "azure", "compatible")."""

    name: str
    max_tokens_field: str
    allow_top_k: bool

    @classmethod
    def for_url(cls, url: str) -> WireProfile:
        host = (urlsplit(url).hostname or "").lower()
        if host in _OPENAI_HOSTS:
            return OPENAI
        if host.endswith(_AZURE_SUFFIXES):
            return AZURE
        return COMPATIBLE

    def check(self, settings: ModelSettings, provider: str) -> None:
        for key in RESPONSES_ONLY:
            if getattr(settings, key) is not None:
                raise ConfigurationError(
                    f"setting {key!r} exists only on OpenAI's Responses API; "
                    f"build the agent with api='responses' (provider {provider!r})"
                )
        if settings.top_k is not None and not self.allow_top_k:
            raise ConfigurationError(
                f"setting 'top_k' is not supported by {provider} ({self.name}); "
                "it is sent only to OpenAI-compatible servers (vLLM, llama.cpp, ...)"
            )

    @property
    def output_modes(self) -> tuple[OutputMode, ...]:
        """OpenAI and Azure enforce a JSON schema; with other servers, JSON mode is the safe first choice."""
        return ("prompted", "native", "tool") if self is COMPATIBLE else ("native", "tool", "prompted")

    def params(
        self,
        model: str,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        s: ModelSettings,
        output: OutputFormat | None = None,
    ) -> dict[str, Any]:
        """The request body of one streamed chat completion."""
        params: dict[str, Any] = {
            "model": model,
            "messages": [map_message(m) for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if tools:
            params["tools"] = [map_tool(t) for t in tools]
            params["tool_choice"] = "auto"
        if output is not None:
            if output.mode == "native":
                params["response_format"] = {"type": "json_schema", "json_schema": json_schema(output)}
            elif output.mode == "prompted":
                params["response_format"] = {"type": "json_object"}
            elif self is not COMPATIBLE:  # "tool": the answer comes as a tool call, after any others
                params["tool_choice"] = "required"
        if s.temperature is not None:
            params["temperature"] = s.temperature
        if s.top_p is not None:
            params["top_p"] = s.top_p
        if s.max_tokens is not None:
            params[self.max_tokens_field] = s.max_tokens
        if s.stop is not None:
            params["stop"] = list(s.stop)
        if s.seed is not None:
            params["seed"] = s.seed
        effort = reasoning_effort(s)
        if effort is not None:
            params["reasoning_effort"] = effort
        if s.verbosity is not None:
            params["verbosity"] = s.verbosity
        if s.service_tier is not None:
            params["service_tier"] = s.service_tier
        if s.top_k is not None:
            params["top_k"] = s.top_k  # not an OpenAI parameter; vLLM, llama.cpp and others take it
        return params


RESPONSES_ONLY = ("reasoning_summary", "truncation")


def reasoning_effort(s: ModelSettings) -> str | None:
    """`reasoning_effort` as given; else `think` on OpenAI's scale (True: "medium"); None: the model's default."""
    if s.reasoning_effort is not None:
        return s.reasoning_effort
    if s.think is None or s.think is False:
        return None
    return "medium" if s.think is True else s.think


OPENAI = WireProfile("openai", "max_completion_tokens", allow_top_k=False)
AZURE = WireProfile("azure", "max_completion_tokens", allow_top_k=False)
COMPATIBLE = WireProfile("compatible", "max_tokens", allow_top_k=True)


def json_schema(output: OutputFormat) -> dict[str, Any]:
    """OpenAI's `json_schema` object: a name, the schema, and `strict` when the schema allows it."""
    spec: dict[str, Any] = {"name": output.name, "schema": output.schema, "strict": output.strict}
    if output.description:
        spec["description"] = output.description
    return spec


def map_message(m: Message) -> dict[str, Any]:
    match m:
        case SystemMessage() | UserMessage():
            return {"role": m.role, "content": m.content}
        case AssistantMessage(tool_calls=()):
            return {"role": "assistant", "content": m.content}
        case AssistantMessage():
            return {
                "role": "assistant",
                "content": m.content,  # "" rather than null: some servers reject null
                "tool_calls": [
                    {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments or "{}"}}
                    for c in m.tool_calls
                ],
            }
        case ToolMessage():
            return {"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content}
    raise ConfigurationError(f"cannot send {type(m).__name__} to an OpenAI-style API")


def map_tool(t: ToolSpec) -> dict[str, Any]:
    return {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}

"""Ollama's native `/api/chat`, through the official `ollama.AsyncClient`.

Native rather than Ollama's OpenAI-compatible `/v1`, so thinking, `keep_alive`,
Ollama's options and its load / prompt-eval / eval timings are all available.
Ollama sends whole tool calls (arguments as objects), possibly several per
message and spread over several chunks: the stream is read to its `done`
chunk before the calls are handed over.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

from ..application.ports import ChatModel, ChatRequest
from ..domain.errors import (
    ConfigurationError,
    ModelNotFoundError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    ResponseFormatError,
)
from ..domain.events import ModelEvent, ResponseDone, TextDelta, ThinkingDelta, ToolCallDelta, ToolCallReady
from ..domain.messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolCall,
    ToolMessage,
    ToolSpec,
    Usage,
    UserMessage,
)
from ..domain.settings import ModelSettings
from ._errors import error_for_status, is_timeout, is_transport_error

DEFAULT_HOST = "http://localhost:11434"
_NS = 1e-9
_ids = itertools.count(1)


class OllamaChatModel(ChatModel):
    """The chat-model port over one `ollama.AsyncClient`, reused for every call and closed with the agent."""

    provider = "ollama"

    def __init__(self, client: Any, *, host: str, keep_alive: float | str | None = None) -> None:
        self.client = client
        self.host = host
        self.keep_alive = keep_alive

    async def aclose(self) -> None:
        await self.client.close()

    async def stream(self, request: ChatRequest) -> AsyncIterator[ModelEvent]:
        from ollama import ResponseError

        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": [_map_message(m) for m in request.messages],
            "stream": True,
            "options": _map_options(request.settings) or None,
            "keep_alive": self.keep_alive,
        }
        if request.tools:
            kwargs["tools"] = [_map_tool(t) for t in request.tools]
        if request.settings.think is not None:
            kwargs["think"] = request.settings.think
        calls: list[ToolCall] = []
        final: Any = None
        try:
            parts = await self.client.chat(**kwargs)
            async with aclosing(parts):
                async for part in parts:
                    message = part.message
                    if message.content:
                        yield TextDelta(message.content)
                    if message.thinking:
                        yield ThinkingDelta(message.thinking)
                    if message.tool_calls:
                        for tool_call in message.tool_calls:
                            call = ToolCall(
                                id=f"call_{next(_ids)}",
                                name=tool_call.function.name,
                                arguments=json.dumps(tool_call.function.arguments or {}),
                            )
                            yield ToolCallDelta(
                                index=len(calls), id=call.id, name=call.name, arguments_delta=call.arguments
                            )
                            calls.append(call)
                    if part.done:
                        final = part
        except ResponseError as e:
            raise self._map_response_error(e, request.model) from e
        except ConnectionError as e:  # the client's own "failed to connect"
            raise self._unreachable(request.model, e) from e
        except ValueError as e:  # a chunk that is not JSON, or not the documented shape
            raise ResponseFormatError(
                f"Ollama at {self.host} sent a malformed chunk: {e}", provider="ollama", model=request.model
            ) from e
        except Exception as e:
            if not is_transport_error(e):
                raise
            if is_timeout(e):
                raise ProviderTimeoutError(
                    f"Ollama at {self.host} did not answer in time", provider="ollama", model=request.model
                ) from e
            raise self._unreachable(request.model, e) from e
        if final is None:
            raise ProviderUnavailableError(
                f"Ollama at {self.host} ended the stream before its final chunk", provider="ollama", model=request.model
            )
        for call in calls:
            yield ToolCallReady(call=call)
        yield ResponseDone(finish_reason=final.done_reason or "stop", usage=_usage(final))

    def _unreachable(self, model: str, e: BaseException) -> ProviderUnavailableError:
        return ProviderUnavailableError(
            f"cannot reach Ollama at {self.host} ({type(e).__name__}); is `ollama serve` running there?",
            provider="ollama",
            model=model,
        )

    def _map_response_error(self, e: Any, model: str) -> Exception:
        status = e.status_code if e.status_code and e.status_code > 0 else None
        message = str(e.error)
        if status == 404 and "not found" in message.lower():
            return ModelNotFoundError(
                f"model {model!r} is not on the Ollama server at {self.host}; pull it first: ollama pull {model}",
                provider="ollama",
                model=model,
                status_code=404,
            )
        return error_for_status(status, f"Ollama: {message}", provider="ollama", model=model)


def _usage(final: Any) -> Usage:
    return Usage(
        prompt_tokens=final.prompt_eval_count or 0,
        completion_tokens=final.eval_count or 0,
        load_duration=(final.load_duration or 0) * _NS,
        prompt_eval_duration=(final.prompt_eval_duration or 0) * _NS,
        eval_duration=(final.eval_duration or 0) * _NS,
    )


def _map_options(s: ModelSettings) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if s.temperature is not None:
        options["temperature"] = s.temperature
    if s.top_p is not None:
        options["top_p"] = s.top_p
    if s.top_k is not None:
        options["top_k"] = s.top_k
    if s.max_tokens is not None:
        options["num_predict"] = s.max_tokens
    if s.stop is not None:
        options["stop"] = list(s.stop)
    if s.seed is not None:
        options["seed"] = s.seed
    return options


def _map_message(m: Message) -> dict[str, Any]:
    match m:
        case SystemMessage() | UserMessage():
            return {"role": m.role, "content": m.content}
        case AssistantMessage():
            out: dict[str, Any] = {"role": "assistant", "content": m.content}
            if m.tool_calls:
                out["tool_calls"] = [{"function": {"name": c.name, "arguments": _arguments(c)}} for c in m.tool_calls]
            return out
        case ToolMessage():
            return {"role": "tool", "content": m.content, "tool_name": m.name}
    raise ConfigurationError(f"cannot send {type(m).__name__} to Ollama")


def _arguments(call: ToolCall) -> Mapping[str, Any]:
    """Ollama wants the arguments object back; a model's invalid JSON is replayed as an empty object."""
    try:
        value = json.loads(call.arguments or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _map_tool(t: ToolSpec) -> dict[str, Any]:
    return {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}


def ollama_client(*, host: str, timeout: float, headers: Mapping[str, str] | None = None) -> Any:
    from ollama import AsyncClient

    return AsyncClient(host=host, timeout=timeout, headers=dict(headers or {}))

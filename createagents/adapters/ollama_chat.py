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
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
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
from ._retry import RetryPolicy, retry_after

DEFAULT_HOST = "http://localhost:11434"
_NS = 1e-9
_loads = json.loads
_ids = itertools.count(1)


class _StatusError(Exception):
    """An error status from either way of reading the stream, with what the retry policy needs to see."""

    def __init__(self, status: int | None, message: str, headers: Mapping[str, str] | None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers: Mapping[str, str] = headers if headers is not None else {}


class OllamaChatModel(ChatModel):
    """The chat-model port over one `ollama.AsyncClient`, reused for every call and closed with the agent.

    Requests are retried as `RetryPolicy` says, as long as nothing of the answer was read.
    """

    provider = "ollama"

    def __init__(self, client: Any, *, host: str, keep_alive: float | str | None = None, max_retries: int = 2) -> None:
        self.client = client
        self.host = host
        self.keep_alive = keep_alive
        self.retry = RetryPolicy(max_retries=max_retries)

    async def aclose(self) -> None:
        await self.client.close()

    async def stream(self, request: ChatRequest) -> AsyncIterator[ModelEvent]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [_map_message(m) for m in request.messages],
            "stream": True,
        }
        if request.tools:
            body["tools"] = [_map_tool(t) for t in request.tools]
        options = _map_options(request.settings)
        if options:
            body["options"] = options
        if request.settings.think is not None:
            body["think"] = request.settings.think
        if self.keep_alive is not None:
            body["keep_alive"] = self.keep_alive
        calls: list[ToolCall] = []
        final: dict[str, Any] | None = None
        try:
            async with aclosing(self._retried_parts(body)) as parts:
                async for part in parts:
                    message = part.get("message")
                    if message is not None:
                        content = message.get("content")
                        if content:  # the common case: a text chunk
                            yield TextDelta(content)
                        if len(message) > 2:  # more than role and content: thinking, tool calls
                            for event in _extras(message, calls):
                                yield event
                    if part.get("done"):
                        final = part
                    elif message is None and "error" in part:
                        raise ProviderUnavailableError(
                            f"Ollama: {part['error']}", provider="ollama", model=request.model
                        )
        except _StatusError as e:
            raise self._status_error(e.status, e.message, request.model, e.headers) from e
        except ValueError as e:  # a chunk that is not JSON (JSONDecodeError is a ValueError)
            raise ResponseFormatError(
                f"Ollama at {self.host} sent a malformed chunk: {e}", provider="ollama", model=request.model
            ) from e
        except ConnectionError as e:  # the client's own "failed to connect"
            raise self._unreachable(request.model, e) from e
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
        yield ResponseDone(finish_reason=final.get("done_reason") or "stop", usage=_usage(final))

    async def _retried_parts(self, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """`_parts`, opened again while the policy says so and nothing was read yet; then as it comes."""
        attempt = 0
        while True:
            parts = self._parts(body)
            try:
                first = await anext(parts)
            except StopAsyncIteration:
                return
            except _StatusError as e:
                await parts.aclose()
                if e.status is None or not await self.retry.pause(attempt, e.status, e.headers):
                    raise
            except Exception as e:
                await parts.aclose()
                if not (_is_connection_failure(e) and await self.retry.pause(attempt)):
                    raise
            else:
                break
            attempt += 1
        async with aclosing(parts):
            yield first
            async for part in parts:
                yield part

    async def _parts(self, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """The response's NDJSON objects, as dicts.

        Read through the HTTP client the `ollama` client configured (host,
        headers, timeout), without building its pydantic object per chunk:
        that alone costs most of a token's client time. Falls back to the
        client's public `chat()` when its internals are not as expected.
        """
        http = getattr(self.client, "_client", None)
        if http is None or not hasattr(http, "stream"):
            async for part in self._public_parts(body):
                yield part
            return
        async with http.stream("POST", "/api/chat", json=body) as response:
            if response.status_code >= 400:
                await response.aread()
                raise _StatusError(response.status_code, _error_text(response.text), response.headers)
            pending = b""
            async for chunk in response.aiter_bytes():
                lines = (pending + chunk if pending else chunk).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    if line:
                        yield _loads(line)
            if pending.strip():
                yield _loads(pending)

    async def _public_parts(self, body: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        from ollama import ResponseError

        try:
            parts = await self.client.chat(**body)
            async with aclosing(parts):
                async for part in parts:
                    yield part.model_dump(exclude_none=True)
        except ResponseError as e:
            # the client raises it `from None`, inside its handler of httpx's error, which has the response
            response = getattr(e.__context__, "response", None)
            status = e.status_code if e.status_code and e.status_code > 0 else None
            raise _StatusError(status, str(e.error), getattr(response, "headers", None)) from e

    def _status_error(
        self, status: int | None, message: str, model: str, headers: Mapping[str, str] | None = None
    ) -> Exception:
        status = status if status and status > 0 else None
        if status == 404 and "not found" in message.lower():
            return ModelNotFoundError(
                f"model {model!r} is not on the Ollama server at {self.host}; pull it first: ollama pull {model}",
                provider="ollama",
                model=model,
                status_code=404,
            )
        wait = retry_after(headers) if headers is not None else None
        return error_for_status(status, f"Ollama: {message}", retry_after=wait, provider="ollama", model=model)

    def _unreachable(self, model: str, e: BaseException) -> ProviderUnavailableError:
        return ProviderUnavailableError(
            f"cannot reach Ollama at {self.host} ({type(e).__name__}); is `ollama serve` running there?",
            provider="ollama",
            model=model,
        )


def _is_connection_failure(e: Exception) -> bool:
    """Refused, reset or timed out before the answer's first line: worth another attempt."""
    if isinstance(e, ConnectionError | TimeoutError):  # the client's own "failed to connect" is a ConnectionError
        return True
    if not type(e).__module__.startswith("httpx"):
        return False
    import httpx

    return isinstance(e, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)


def _usage(final: dict[str, Any]) -> Usage:
    return Usage(
        prompt_tokens=final.get("prompt_eval_count") or 0,
        completion_tokens=final.get("eval_count") or 0,
        load_duration=(final.get("load_duration") or 0) * _NS,
        prompt_eval_duration=(final.get("prompt_eval_duration") or 0) * _NS,
        eval_duration=(final.get("eval_duration") or 0) * _NS,
    )


def _extras(message: dict[str, Any], calls: list[ToolCall]) -> list[ModelEvent]:
    """Thinking and tool calls of one chunk; whole calls, so each is complete when it arrives."""
    events: list[ModelEvent] = []
    thinking = message.get("thinking")
    if thinking:
        events.append(ThinkingDelta(thinking))
    for tool_call in message.get("tool_calls") or ():
        function = tool_call.get("function") or {}
        arguments = function.get("arguments")
        call = ToolCall(
            id=str(tool_call.get("id") or f"call_{next(_ids)}"),
            name=str(function.get("name") or ""),
            arguments=arguments if isinstance(arguments, str) else json.dumps(arguments or {}),
        )
        events.append(ToolCallDelta(index=len(calls), id=call.id, name=call.name, arguments_delta=call.arguments))
        calls.append(call)
    return events


def _error_text(body: str) -> str:
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return body.strip() or "unknown error"
    return str(error or body)


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

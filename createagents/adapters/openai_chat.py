"""OpenAI Chat Completions: OpenAI, Azure OpenAI and every OpenAI-compatible server.

The `openai` SDK does what it does well (configuration, auth, Azure routing,
retries with back-off, base URLs, headers); the stream itself is read as raw
SSE bytes and decoded here, because building an SDK object per chunk costs
several times the wire. The parsing is lenient where compatible servers are
known to differ from OpenAI (vLLM, llama.cpp, LiteLLM, LM Studio, Ollama /v1)
and strict where text could be lost: a chunk that is not JSON is an error.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from ..application.ports import ChatModel, ChatRequest
from ..domain.errors import (
    ConfigurationError,
    ContentFilterError,
    ContextLengthError,
    ModelNotFoundError,
    ProviderError,
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
from ._openai_http import Endpoint, HttpPoster, retry_after
from ._secrets import mask_secrets
from ._sse import sse_data

_loads = json.loads
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_Opened = tuple[AsyncIterator[bytes], str | None]
_PLAIN_DELTA = frozenset(("content", "role"))
TokenProvider = Callable[[], str | Awaitable[str]]


class OpenAIChatModel(ChatModel):
    """The chat-model port over an `openai.AsyncOpenAI` (or `AsyncAzureOpenAI`) client.

    `provider` names it in errors and metrics ("openai", "azure", ...);
    `secrets` are scrubbed from every error message.
    """

    def __init__(
        self,
        client: Any,
        *,
        provider: str = "openai",
        max_tokens_field: str = "max_tokens",
        allow_top_k: bool = True,
        secrets: Sequence[str] = (),
        endpoint: Endpoint | None = None,
    ) -> None:
        self.client = client
        self._http = HttpPoster(endpoint) if endpoint is not None else None
        self.provider = provider
        self._max_tokens_field = max_tokens_field
        self._allow_top_k = allow_top_k
        key = getattr(client, "api_key", None)  # a client the user built: its key is scrubbed too
        self._secrets = tuple(s for s in (*secrets, key) if s and isinstance(s, str))

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        await self.client.close()

    async def stream(self, request: ChatRequest) -> AsyncIterator[ModelEvent]:
        params = self._params(request)
        opened = self._sdk_response if self._http is None else self._lean_response
        async with opened(request.model, params) as (chunks, request_id):
            reader = _StreamReader(self, request.model, request_id)
            try:
                async for data in sse_data(chunks):
                    for event in reader.feed(data):
                        yield event
                for event in reader.finish():
                    yield event
            except ProviderError:
                raise
            except Exception as e:
                if not is_transport_error(e):
                    raise
                raise self._broken(e, "the stream broke", request.model, request_id) from e

    @asynccontextmanager
    async def _lean_response(self, model: str, params: dict[str, Any]) -> AsyncIterator[_Opened]:
        """The body straight onto a pooled aiohttp connection (see `_openai_http`)."""
        assert self._http is not None
        try:
            response = await self._http.post(model, _dumps(params).encode())
        except Exception as e:
            if not is_transport_error(e):
                raise
            raise self._broken(e, "cannot reach the server", model) from e
        finished = False
        try:
            if response.status >= 400:
                raise await self._lean_status_error(response, model)
            yield response.content.iter_any(), _request_id(response.headers)
            finished = True
        finally:
            if finished:
                response.release()  # read to the end: the connection goes back to the pool
            else:
                response.close()  # abandoned or failed mid-stream: the connection must not be reused

    async def _lean_status_error(self, response: Any, model: str) -> ProviderError:
        try:
            raw = await response.read()
        except Exception as e:  # the error body itself was cut off: the status still says what happened
            if not is_transport_error(e):
                raise
            raw = b""
        try:
            body = _loads(raw)
        except ValueError:
            body = None
        text = raw.decode(errors="replace")
        short = text.strip()[:500]
        default = f"HTTP {response.status}: {short}" if short else f"HTTP {response.status}"
        return self._status_error(
            response.status, body if isinstance(body, Mapping) else text, response.headers, model, default
        )

    @asynccontextmanager
    async def _sdk_response(self, model: str, params: dict[str, Any]) -> AsyncIterator[_Opened]:
        """Through the SDK's own request machinery: for clients we did not configure ourselves."""
        try:
            # Everything goes in `extra_body`, which the SDK sends as it is: its recursive
            # transform of typed params costs about a millisecond per request, for no change.
            async with self.client.chat.completions.with_streaming_response.create(
                model=model, messages=[], stream=True, extra_body=params
            ) as response:
                yield response.http_response.aiter_bytes(), _request_id(response.http_response.headers)
        except ProviderError:
            raise
        except Exception as e:
            mapped = self._map_sdk_error(e, model)
            if mapped is None:
                raise
            raise mapped from e

    # -- request -------------------------------------------------------------

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": request.model,
            "messages": [_map_message(m) for m in request.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            params["tools"] = [_map_tool(t) for t in request.tools]
            params["tool_choice"] = "auto"
        params.update(self._map_settings(request.settings))
        return params

    def _map_settings(self, s: ModelSettings) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if s.temperature is not None:
            out["temperature"] = s.temperature
        if s.top_p is not None:
            out["top_p"] = s.top_p
        if s.max_tokens is not None:
            out[self._max_tokens_field] = s.max_tokens
        if s.stop is not None:
            out["stop"] = list(s.stop)
        if s.seed is not None:
            out["seed"] = s.seed
        if s.think is not None and s.think is not False:
            out["reasoning_effort"] = "medium" if s.think is True else s.think
        if s.top_k is not None:
            self.check_settings(s)
            out["top_k"] = s.top_k  # not an OpenAI parameter; vLLM, llama.cpp and others take it
        return out

    def check_settings(self, settings: ModelSettings) -> None:
        if settings.top_k is not None and not self._allow_top_k:
            raise ConfigurationError(
                f"setting 'top_k' is not supported by {self.provider}; "
                "it is sent only to OpenAI-compatible servers (vLLM, llama.cpp, ...)"
            )

    # -- errors --------------------------------------------------------------

    def scrub(self, text: str) -> str:
        return mask_secrets(text, self._secrets)

    def _broken(self, e: BaseException, what: str, model: str, request_id: str | None = None) -> ProviderError:
        """A transport failure, on either request path: a timeout, or the server out of reach."""
        cls = ProviderTimeoutError if is_timeout(e) else ProviderUnavailableError
        return cls(
            self.scrub(f"{what}: {type(e).__name__}: {e}"), provider=self.provider, model=model, request_id=request_id
        )

    def _status_error(
        self, status: int, body: object, headers: Mapping[str, str], model: str, default: str
    ) -> ProviderError:
        """A status response -> our error; `body` is the parsed JSON, or the text of a gateway's error page."""
        text = body.strip()[:500] if isinstance(body, str) else ""
        return map_error_body(
            self,
            body if isinstance(body, Mapping) else {},
            status=status,
            model=model,
            request_id=_request_id(headers),
            headers=headers,
            fallback=f"HTTP {status}: {text}" if text else default,
        )

    def _map_sdk_error(self, e: Exception, model: str) -> ProviderError | None:
        import openai

        if isinstance(e, openai.APITimeoutError) and not _refused(e):
            return ProviderTimeoutError("the request timed out", provider=self.provider, model=model)
        if isinstance(e, openai.APIConnectionError):  # APITimeoutError included, when it was a refusal
            return ProviderUnavailableError(
                self.scrub(f"cannot reach the server: {e.__cause__ or e}"), provider=self.provider, model=model
            )
        if isinstance(e, openai.APIStatusError):
            return self._status_error(e.status_code, e.body, e.response.headers, model, str(e.message))
        if is_transport_error(e):  # raised by the transport outside the SDK's wrapping (an error body cut off)
            return self._broken(e, "the connection broke", model)
        return None


def map_error_body(
    adapter: OpenAIChatModel,
    body: Mapping[str, Any],
    *,
    status: int | None,
    model: str,
    request_id: str | None,
    headers: Mapping[str, str] | None = None,
    fallback: str = "",
) -> ProviderError:
    """An OpenAI-style error object (from a status response or an in-stream error) -> our error."""
    if isinstance(body.get("error"), Mapping):
        body = body["error"]
    message = adapter.scrub(str(body.get("message") or fallback or "the provider returned an error"))
    code = body.get("code")  # a string at OpenAI, a number at some compatible servers
    if status is None and (isinstance(code, int) or (isinstance(code, str) and code.isdigit())):
        status = int(code)
    code_text = str(code or "").lower()
    inner = body.get("innererror")
    kw: dict[str, Any] = {"provider": adapter.provider, "model": model, "request_id": request_id}
    if code_text == "content_filter" or (isinstance(inner, Mapping) and "content_filter_result" in inner):
        categories = _filtered(inner.get("content_filter_result") if isinstance(inner, Mapping) else None)
        return ContentFilterError(message, categories=categories, status_code=status, **kw)
    if code_text == "context_length_exceeded":
        return ContextLengthError(message, status_code=status, **kw)
    if code_text in ("model_not_found", "deploymentnotfound"):
        return ModelNotFoundError(message, status_code=status, **kw)
    if status == 404 and "model" not in message.lower():
        message += " (is base_url right? OpenAI-style servers serve under /v1)"
    return error_for_status(status, message, retry_after=retry_after(headers or {}), **kw)


def _request_id(headers: Mapping[str, str]) -> str | None:
    return headers.get("x-request-id") or headers.get("apim-request-id")  # OpenAI's, or Azure API Management's


def _refused(e: BaseException) -> bool:
    """A refused connection the transport reported as a timeout (the SDK's aiohttp transport does)."""
    cause = e.__cause__
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return True
        cause = cause.__cause__
    return False


def _filtered(results: object) -> list[str]:
    if not isinstance(results, Mapping):
        return []
    return [name for name, r in results.items() if isinstance(r, Mapping) and r.get("filtered")]


# -- the stream ----------------------------------------------------------------


class _StreamReader:
    """Turns the SSE data of one response into model events.

    Tool calls are keyed by `index`; a call's id and name are set once (some
    servers repeat them in every fragment) and only arguments accumulate.
    """

    __slots__ = ("_adapter", "_calls", "_done", "_filtered", "_finish", "_model", "_request_id", "_usage")

    def __init__(self, adapter: OpenAIChatModel, model: str, request_id: str | None) -> None:
        self._adapter = adapter
        self._model = model
        self._request_id = request_id
        self._calls: dict[int, list[Any]] = {}  # index -> [id, name, argument fragments]
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._done = False
        self._filtered: list[str] = []

    def error(self, cls: type[ProviderError], message: str, **kw: Any) -> ProviderError:
        return cls(
            self._adapter.scrub(message),
            provider=self._adapter.provider,
            model=self._model,
            request_id=self._request_id,
            **kw,
        )

    def feed(self, data: bytes) -> list[ModelEvent]:
        if data == b"[DONE]":
            self._done = True
            return []
        try:
            chunk = _loads(data)
        except ValueError:
            raise self.error(ResponseFormatError, f"a stream chunk is not JSON: {data[:200]!r}") from None
        if not isinstance(chunk, dict):
            raise self.error(ResponseFormatError, f"a stream chunk is not a JSON object: {data[:200]!r}")
        if chunk.get("usage"):  # its own chunk at OpenAI; on the last choice chunk at some servers
            self._usage = _usage(chunk["usage"])
        choices = chunk.get("choices")
        if choices:
            choice = choices[0]
            delta = choice.get("delta")
            events: list[ModelEvent] = []
            if delta:
                content = delta.get("content")
                if content:  # the common case: one text delta per chunk
                    events.append(TextDelta(content))
                if not _PLAIN_DELTA.issuperset(delta):
                    self._other_delta(delta, events)
            finish = choice.get("finish_reason")
            if finish:
                self._finish = finish
                if finish == "content_filter":
                    self._filtered = _filtered(choice.get("content_filter_results"))
            return events
        if "error" in chunk:
            raise map_error_body(self._adapter, chunk, status=None, model=self._model, request_id=self._request_id)
        return []

    def _other_delta(self, delta: dict[str, Any], events: list[ModelEvent]) -> None:
        thinking = delta.get("reasoning_content") or delta.get("reasoning")
        if thinking:
            events.append(ThinkingDelta(thinking))
        refusal = delta.get("refusal")
        if refusal:
            events.append(TextDelta(refusal))
        for position, fragment in enumerate(delta.get("tool_calls") or ()):
            index = fragment.get("index", position)
            function = fragment.get("function") or {}
            arguments = function.get("arguments") or ""
            if not isinstance(arguments, str):  # a few servers send the object itself
                arguments = json.dumps(arguments)
            call = self._calls.get(index)
            if call is None:
                call = self._calls[index] = [fragment.get("id"), function.get("name"), []]
                events.append(ToolCallDelta(index=index, id=call[0], name=call[1], arguments_delta=arguments))
            else:
                call[0] = call[0] or fragment.get("id")
                call[1] = call[1] or function.get("name")
                events.append(ToolCallDelta(index=index, arguments_delta=arguments))
            if arguments:
                call[2].append(arguments)

    def finish(self) -> list[ModelEvent]:
        if not self._done and self._finish is None:
            raise self.error(ProviderUnavailableError, "the stream ended before the response was complete")
        if self._finish == "content_filter":
            categories = ", ".join(self._filtered) or "unspecified"
            raise self.error(
                ContentFilterError,
                f"the answer was stopped by a content filter ({categories})",
                categories=self._filtered,
            )
        events: list[ModelEvent] = []
        for index in sorted(self._calls):
            call_id, name, fragments = self._calls[index]
            if not name:
                raise self.error(ResponseFormatError, f"tool call {index} has no function name")
            events.append(
                ToolCallReady(call=ToolCall(id=call_id or f"call_{index}", name=name, arguments="".join(fragments)))
            )
        events.append(ResponseDone(finish_reason=self._finish, usage=self._usage))
        return events


def _usage(raw: Mapping[str, Any]) -> Usage:
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    return Usage(
        prompt_tokens=raw.get("prompt_tokens") or 0,
        completion_tokens=raw.get("completion_tokens") or 0,
        cached_tokens=prompt_details.get("cached_tokens") or 0,
        reasoning_tokens=completion_details.get("reasoning_tokens") or 0,
    )


# -- mapping our vocabulary to the wire ---------------------------------------


def _map_message(m: Message) -> dict[str, Any]:
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


def _map_tool(t: ToolSpec) -> dict[str, Any]:
    return {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}


# -- clients -------------------------------------------------------------------


def lean_endpoint(client: Any, api_key: str | TokenProvider | None) -> Endpoint:
    """How `OpenAIChatModel` reaches a client we configured ourselves without the SDK's per-request objects."""
    return Endpoint.of(client, token=_async_provider(api_key) if callable(api_key) else None)


def openai_client(
    *,
    base_url: str | None,
    api_key: str | TokenProvider | None,
    timeout: float,
    max_retries: int,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """An `AsyncOpenAI` for OpenAI or any compatible server; a callable key is a token provider."""
    from openai import AsyncOpenAI

    return AsyncOpenAI(
        http_client=_http_client(),
        base_url=base_url,
        # local servers take any key; the SDK insists on one
        api_key=(api_key if isinstance(api_key, str) else _async_provider(api_key)) if api_key else "not-needed",
        default_headers=headers,
        timeout=timeout,
        max_retries=max_retries,
    )


def azure_client(
    *,
    endpoint: str,
    api_key: str | None,
    token_provider: TokenProvider | None,
    api_version: str | None,
    timeout: float,
    max_retries: int,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """Azure OpenAI: the v1 endpoint by default, the dated deployment path when `api_version` is given."""
    from openai import AsyncAzureOpenAI, AsyncOpenAI

    endpoint = endpoint.rstrip("/")
    if api_version:
        return AsyncAzureOpenAI(
            http_client=_http_client(),
            azure_endpoint=endpoint,
            api_version=api_version,
            api_key=api_key,
            azure_ad_token_provider=_async_provider(token_provider) if token_provider else None,
            default_headers=headers,
            timeout=timeout,
            max_retries=max_retries,
        )
    base_url = endpoint if endpoint.endswith("/openai/v1") else f"{endpoint}/openai/v1"
    return AsyncOpenAI(
        http_client=_http_client(),
        base_url=base_url + "/",
        api_key=_async_provider(token_provider) if token_provider else api_key,
        default_headers={**({"api-key": api_key} if api_key else {}), **(headers or {})},
        timeout=timeout,
        max_retries=max_retries,
    )


def _http_client() -> Any:
    """The SDK's own aiohttp transport (`openai[aiohttp]`) when it is there, else the SDK's default.

    Measured on 1,000 concurrent streams, aiohttp reads each small chunk at a
    fraction of the default transport's CPU cost; the SDK stays in charge of
    everything else (auth, retries, Azure routing, headers, timeouts).
    """
    try:
        from openai import DefaultAioHttpClient

        return DefaultAioHttpClient()
    except (ImportError, RuntimeError):  # an SDK without it, or without the aiohttp extra
        return None


def _async_provider(provider: TokenProvider) -> Callable[[], Awaitable[str]]:
    """Entra ID token providers come sync (azure.identity) or async (azure.identity.aio)."""

    async def token() -> str:
        value = provider()
        if isinstance(value, Awaitable):
            value = await value
        return str(value)

    return token

"""The OpenAI-family adapters' shared model: one transport, one retry policy, one error map, one SSE parser.

Chat Completions (`openai_chat`) and the Responses API (`openai_responses`)
each add only their request shaping (`body`) and event parsing (`reader`).

The model asks a transport (`_transport`) for an opened response, retries as
the shared policy says (`_retry`), maps statuses and transport failures to
our errors (`_openai_errors`) and parses the event stream (`_sse`,
`_openai_stream`): each of these once, whichever transport carried the bytes.
Two transports exist: our pooled aiohttp one (`_openai_http`), used for every
agent built with `provider="openai"` / `"azure"`, which never imports the
`openai` SDK; and the SDK one (`_openai_sdk`), for a client the user built.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, ClassVar, Protocol

from ..application.ports import ChatModel, ChatRequest
from ..domain.errors import AgentClosedError, ProviderError
from ..domain.events import ModelEvent
from ._openai_errors import ErrorContext, broken, not_a_stream, request_id, status_error
from ._openai_wire import WireProfile
from ._retry import RetryPolicy, RetryWaits
from ._sse import sse_data
from ._transport import Opened, Transport, TransportError

TokenProvider = Callable[[], str | Awaitable[str]]


class EventReader(Protocol):
    """Parses one response's SSE data; `done` once the API's last event arrived."""

    done: bool

    def feed(self, data: bytes) -> list[ModelEvent]: ...
    def finish(self) -> list[ModelEvent]: ...


_PAGES = frozenset(("text/html", "application/xhtml+xml"))  # a proxy's or a portal's page, not an API


class OpenAIModel(ChatModel):
    """The chat-model port over an OpenAI-style streaming API; subclasses say which API (`api`).

    Give it an `openai.AsyncOpenAI` / `AsyncAzureOpenAI` client you built:
    requests then go through the client (which stays yours: closing the agent
    does not close it). `provider` names it in errors and metrics; the wire
    profile (which token-limit field, whether `top_k` is allowed) comes from
    the client's base URL unless `profile` says otherwise; `secrets` are
    masked in every error message.
    """

    api: ClassVar[str] = "chat"  # which of the SDK client's APIs carries a user-built client's requests

    def __init__(
        self,
        client: Any = None,
        *,
        provider: str = "openai",
        profile: WireProfile | None = None,
        secrets: Sequence[str] = (),
        max_retries: int | None = None,
        transport: Transport | None = None,
    ) -> None:
        if transport is None:
            if client is None:
                raise TypeError("OpenAIChatModel needs an openai client (or a transport)")
            from ._openai_sdk import SdkTransport

            transport = SdkTransport(client, api=self.api)
            key = getattr(client, "api_key", None)  # its key is masked too
            secrets = (*secrets, key) if isinstance(key, str) else tuple(secrets)
            if max_retries is None:
                max_retries = getattr(client, "max_retries", 2)
        self.client = client
        self.transport = transport
        self.provider = provider
        self.profile = profile or WireProfile.for_url(str(getattr(client, "base_url", "")))
        self.retry = RetryPolicy(max_retries=2 if max_retries is None else max_retries)
        self._secrets = tuple(s for s in secrets if s)
        self._closed = False
        self._waits = RetryWaits()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={self.provider!r}, transport={self.transport!r})"

    async def aclose(self) -> None:
        """End every chat in flight (`AgentClosedError`) and release what this adapter created."""
        self._closed = True
        self._waits.wake_all()
        await self.transport.aclose()

    def body(self, request: ChatRequest) -> dict[str, Any]:
        """The JSON body of one streamed request: this API's request shaping."""
        raise NotImplementedError

    def reader(self, context: ErrorContext) -> EventReader:
        """This API's event parsing: SSE data in, model events out."""
        raise NotImplementedError

    async def stream(self, request: ChatRequest) -> AsyncIterator[ModelEvent]:
        self.check_settings(request.settings)
        body = self.body(request)
        context = ErrorContext(self.provider, request.model, self._secrets)
        response = await self._open(request.model, body, context)
        context = ErrorContext(self.provider, request.model, self._secrets, request_id(response.headers))
        finished = False
        try:
            if response.status >= 400:
                raise await status_error(context, response)
            if response.content_type in _PAGES:
                raise not_a_stream(context, response, await response.read(512))
            reader = self.reader(context)
            async for data in sse_data(response.chunks()):
                for event in reader.feed(data):
                    yield event
                if reader.done:  # what follows [DONE] is not part of the answer
                    break
            for event in reader.finish():
                yield event
            finished = reader.done
        except TransportError as e:
            raise self._stopped(context) or broken(context, e, "the stream broke") from None
        except ProviderError as e:
            stopped = self._stopped(context)
            if stopped is not None:
                raise stopped from None
            if not e.provider:  # raised below the model (the SSE reader's line cap): give it our context
                raise context.error(type(e), e.message) from None
            raise
        finally:
            await response.aclose(reuse=finished)

    async def _open(self, model: str, body: dict[str, Any], context: ErrorContext) -> Opened:
        """The response to the last attempt, retried as the policy says; transport failures mapped."""
        policy = self.retry
        attempt = 0
        while True:
            if self._closed:
                raise AgentClosedError("the agent was closed while this chat was running")
            try:
                response = await self.transport.send(model, body)
            except TransportError as e:
                wait = policy.next_delay(attempt)
                if wait is None:
                    raise self._stopped(context) or broken(context, e, "cannot reach the server") from None
            else:
                if response.status < 400:
                    return response
                wait = policy.next_delay(attempt, response.status, response.headers)
                if wait is None:
                    return response
                await response.aclose()
            await self._waits.sleep(wait)
            attempt += 1

    def _stopped(self, context: ErrorContext) -> AgentClosedError | None:
        if not self._closed:
            return None
        return AgentClosedError("the agent was closed while this chat was running")

"""The SDK transport: requests through an `openai.AsyncOpenAI` client the user built and handed us.

The client keeps what the user configured (its own `http_client`, auth,
Azure routing, headers); it only carries the bytes. It does not retry (a
copy of it with `max_retries=0`: the retry policy above every transport
does), and closing the adapter never closes it: the user may share it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from ._errors import is_timeout, is_transport_error
from ._transport import MAX_ERROR_BODY, Opened, TransportError, media_type


class SdkTransport:
    """`client.chat.completions` (or `client.responses`) with its streaming raw response, as a `Transport`.

    The client is closed with the transport only when `owns_client` says it was built for it.
    """

    def __init__(self, client: Any, *, owns_client: bool = False, api: str = "chat") -> None:
        self.client = client
        self.owns_client = owns_client
        self.api = api  # "chat" (Chat Completions) or "responses"
        self._quiet = client.with_options(max_retries=0)
        self._open: set[SdkOpened] = set()
        self.closed = False

    def __repr__(self) -> str:
        return f"SdkTransport({str(getattr(self.client, 'base_url', ''))!r})"

    async def send(self, model: str, body: Mapping[str, Any]) -> Opened:
        import openai

        if self.closed:
            raise TransportError("connection", RuntimeError("the transport was closed"))
        try:
            # Everything goes in `extra_body`, which the SDK sends as it is: its recursive
            # transform of typed params costs about a millisecond per request, for no change.
            if self.api == "responses":
                context = self._quiet.responses.with_streaming_response.create(
                    model=model, stream=True, extra_body=dict(body)
                )
            else:
                context = self._quiet.chat.completions.with_streaming_response.create(
                    model=model, messages=[], stream=True, extra_body=dict(body)
                )
            response = await context.__aenter__()
        except openai.APIStatusError as e:  # the SDK raises for a status; the model maps statuses itself
            return SdkOpened(e.response, None, self)
        except openai.APIConnectionError as e:  # APITimeoutError included
            raise _failure(e) from None
        except Exception as e:  # the transport failed outside the SDK's wrapping (an error body cut off)
            if not is_transport_error(e):
                raise
            raise _failure(e) from None
        opened = SdkOpened(response.http_response, context, self)
        self._open.add(opened)
        return opened

    async def aclose(self) -> None:
        """In-flight responses end; the client stays open: it is the user's."""
        self.closed = True
        for opened in list(self._open):
            await opened.aclose()
        if self.owns_client:
            await self.client.close()


class SdkOpened:
    """An httpx response from the SDK behind the `Opened` protocol."""

    def __init__(self, response: Any, context: Any, owner: SdkTransport) -> None:
        self._response = response
        self._context = context
        self._owner = owner
        self.status: int = response.status_code
        self.headers: Mapping[str, str] = response.headers

    @property
    def content_type(self) -> str:
        return media_type(self.headers)

    async def chunks(self) -> AsyncIterator[bytes]:
        iterator = self._response.aiter_bytes().__aiter__()
        while True:
            try:
                chunk = await iterator.__anext__()
            except StopAsyncIteration:
                return
            except Exception as e:
                if self._owner.closed or is_transport_error(e):
                    raise _failure(e) from None
                raise
            yield chunk

    async def read(self, limit: int = MAX_ERROR_BODY) -> bytes:
        try:
            if getattr(self._response, "is_stream_consumed", False) or getattr(self._response, "is_closed", False):
                return bytes(self._response.content[:limit])  # the SDK read the error body already
            data = bytearray()
            async for chunk in self._response.aiter_bytes():
                data += chunk
                if len(data) >= limit:
                    break
            return bytes(data[:limit])
        except Exception as e:
            if not is_transport_error(e):
                raise
            return b""  # the error body itself was cut off: the status still says what happened
        finally:
            await self.aclose()

    async def aclose(self, *, reuse: bool = False) -> None:
        self._owner._open.discard(self)
        context, self._context = self._context, None
        if context is not None:
            await context.__aexit__(None, None, None)


def _failure(e: BaseException) -> TransportError:
    import openai

    cause: BaseException | None = e
    while cause is not None:  # the SDK's aiohttp transport reports a refused or reset connection as a timeout
        if isinstance(cause, ConnectionError):
            return TransportError("connection", cause)
        cause = cause.__cause__ or cause.__context__
    timeout = isinstance(e, openai.APITimeoutError) or is_timeout(e)
    return TransportError("timeout" if timeout else "connection", e)

"""The transport seam of the HTTP adapters: a request in, an opened response or one failure type out.

In the spirit of httpx's transports: the only code that does I/O. Above it,
once for every transport, sit the retry policy (`_retry`), the mapping of
statuses and failures to our errors, and the parsing of the stream. A
transport does not retry, does not raise for a status and does not parse.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal, Protocol

MAX_ERROR_BODY = 64 * 1024  # bytes of an error response that are read; the rest is not worth memory


class TransportError(Exception):
    """The request got no response: `kind` is "timeout" or "connection" (refused, reset, DNS, TLS...)."""

    def __init__(self, kind: Literal["timeout", "connection"], cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.kind = kind
        self.cause_name = type(cause).__name__


class Opened(Protocol):
    """A response whose status and headers have arrived; the body is still to be read."""

    status: int
    headers: Mapping[str, str]  # case-insensitive

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; transport failures while reading raise `TransportError`."""

    async def read(self, limit: int = MAX_ERROR_BODY) -> bytes:
        """At most `limit` bytes of the body (an error body), then the response is closed."""

    @property
    def content_type(self) -> str:
        """The media type, lower case, without parameters ("text/event-stream")."""

    async def aclose(self, *, reuse: bool = False) -> None:
        """Done with it; `reuse` when the body was read to its end, so the connection may serve again."""


class Transport(Protocol):
    """Sends one JSON request; owns its connections and nothing else."""

    async def send(self, model: str, body: Mapping[str, Any]) -> Opened:
        """POST `body` for `model`; the opened response, whatever its status, or `TransportError`."""

    async def aclose(self) -> None:
        """Release what this transport created; in-flight responses end with `TransportError`."""


def media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()

"""The aiohttp transport of the OpenAI-style adapters: one pooled session, requests as bytes.

The SDK builds request options, an httpx request and a response wrapper for
every call, and importing it costs most of a second; at a thousand concurrent
streams its objects are most of the client's memory. This transport needs
neither: the endpoint (`_openai_endpoint`) is resolved once from our own
settings, and each request is JSON bytes on a pooled connection. It follows
redirects itself, so that no credential header crosses to another origin.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import json
import os
import ssl
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Mapping
from contextlib import suppress
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

if TYPE_CHECKING:
    import aiohttp

from ._errors import is_timeout
from ._openai_endpoint import Endpoint
from ._transport import MAX_ERROR_BODY, Opened, TransportError, media_type

__all__ = ["AiohttpTransport", "env_proxy"]

MAX_CONNECTIONS = 1000  # the SDK's pool size
MAX_REDIRECTS = 10
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class AiohttpTransport:
    """One pooled aiohttp session per adapter, opened in the loop that first uses it."""

    __slots__ = ("__weakref__", "_hook", "_loop", "_open", "_session", "closed", "endpoint")

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.closed = False
        self._open: set[AiohttpOpened] = set()  # responses being read: closing the transport ends them
        self._session: aiohttp.ClientSession | None = None
        self._hook: AsyncGenerator[None, None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:  # never the headers: they hold the key
        return f"AiohttpTransport({self.endpoint.url!r})"

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop:
            # A session belongs to one loop: a second `asyncio.run`, or a test framework
            # with a loop per test, gets its own, and the old one is closed where it can be.
            if self._session is not None and self._hook is not None and self._loop is not None:
                _retire(self._session, self._hook, self._loop)
            endpoint = self.endpoint
            aiohttp = _aiohttp()
            self._session = session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS, ssl=_ssl_context()),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=endpoint.timeout, sock_read=endpoint.timeout),
                # HTTPS_PROXY / NO_PROXY, read once: aiohttp's trust_env looks them up in a thread per request
                proxy=env_proxy(endpoint.url),
            )
            self._hook = _closing(session)
            _start(self._hook)
            self._loop = loop
            _OPEN.add(self)
        return self._session

    async def send(self, model: str, body: Mapping[str, Any]) -> Opened:
        if self.closed:
            raise TransportError("connection", RuntimeError("the transport was closed"))
        session = self._client()
        endpoint = self.endpoint
        url = endpoint.url_for(model)
        headers = await endpoint.request_headers()
        data: bytes | None = _dumps(body).encode()
        method = "POST"
        try:
            for _ in range(MAX_REDIRECTS + 1):
                response = await session.request(
                    method, url, data=data, headers=headers, params=endpoint.query or None, allow_redirects=False
                )
                location = response.headers.get("location")
                if response.status not in (301, 302, 303, 307, 308) or not location:
                    opened = AiohttpOpened(response, self._open)
                    self._open.add(opened)
                    return opened
                response.release()
                target = urljoin(url, location)
                if _origin(target) != _origin(url):  # credentials stay with the origin they were given for
                    headers = endpoint.public_headers()
                if response.status in (301, 302, 303):  # as browsers and httpx: the body is not sent again
                    method, data = "GET", None
                url = target
            raise TransportError("connection", RuntimeError(f"more than {MAX_REDIRECTS} redirects"))
        except _ERRORS as e:
            raise _failure(e) from None

    async def aclose(self) -> None:
        self.closed = True
        for opened in list(self._open):
            opened.abort()
        session, hook, self._session, self._hook = self._session, self._hook, None, None
        _OPEN.discard(self)
        if session is None or hook is None or self._loop is None:
            return
        if self._loop is _running_loop():
            await hook.aclose()  # closes the session, and with it every connection still streaming
        else:
            _retire(session, hook, self._loop)


class AiohttpOpened:
    """An aiohttp response behind the `Opened` protocol."""

    __slots__ = ("_open", "_response", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse, open_set: set[AiohttpOpened]) -> None:
        self._response = response
        self._open = open_set
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    @property
    def content_type(self) -> str:
        return media_type(self.headers)

    async def chunks(self) -> AsyncIterator[bytes]:
        iterator = self._response.content.iter_any().__aiter__()
        while True:
            try:
                chunk = await iterator.__anext__()
            except StopAsyncIteration:
                return
            except _ERRORS as e:
                raise _failure(e) from None
            yield chunk

    async def read(self, limit: int = MAX_ERROR_BODY) -> bytes:
        try:
            return await self._response.content.read(limit)
        except _ERRORS:
            return b""  # the error body itself was cut off: the status still says what happened
        finally:
            self._open.discard(self)
            self._response.close()

    def abort(self) -> None:
        """End the read in progress at once (a reader waiting for bytes gets a connection error)."""
        self._response.content.set_exception(_aiohttp().ClientConnectionError("the transport was closed"))
        self._response.close()

    async def aclose(self, *, reuse: bool = False) -> None:
        self._open.discard(self)
        if reuse:
            self._response.release()  # read to the end: the connection goes back to the pool
        else:
            self._response.close()  # abandoned or failed mid-stream: the connection must not be reused


_ERRORS: tuple[type[BaseException], ...] = (TimeoutError, OSError)  # and aiohttp.ClientError, once imported


def _aiohttp() -> Any:
    """aiohttp, imported when the first request is made, not when an agent is built.

    Importing it costs about 0.3 s and 25 MB here: a script, a CLI or a test
    that builds agents without calling them should not pay it.
    """
    global _ERRORS
    import aiohttp

    _ERRORS = (TimeoutError, aiohttp.ClientError, OSError)
    return aiohttp


def _failure(e: BaseException) -> TransportError:
    return TransportError("timeout" if is_timeout(e) else "connection", e)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


async def _closing(session: aiohttp.ClientSession) -> AsyncGenerator[None, None]:
    """Parked at its `yield` for as long as the session is in use, so that it is closed quietly when ...

    ... the loop shuts down (`asyncio.run` acloses the async generators still alive) or the
    adapter is garbage-collected (the loop then acloses it), without `aclose()`: scripts and
    notebooks rarely close their agents, and aiohttp complains about an unclosed session.
    """
    try:
        yield
    finally:
        if not session.closed:
            await session.close()


def _start(hook: AsyncGenerator[None, None]) -> None:
    """Run a fresh `_closing` to its `yield`: nothing there awaits, so no loop turn is needed."""
    with suppress(StopIteration):
        hook.asend(None).__await__().send(None)


def _retire(
    session: aiohttp.ClientSession,
    hook: AsyncGenerator[None, None],
    loop: asyncio.AbstractEventLoop,
    *,
    wait: float = 0.0,
) -> None:
    """Close a session and its `_closing` hook from outside their loop, running nothing on this one.

    With `wait` (at exit), block up to that long for a loop that runs in another thread, and
    finish the job on a loop that was left stopped but not closed.
    """
    if not session.closed:
        if loop.is_running():  # the blocking API's background loop, for instance
            done = asyncio.run_coroutine_threadsafe(_aclose(hook), loop)
            if wait and _running_loop() is not loop:
                with suppress(Exception):  # a loop too busy to close it in time: leave it
                    done.result(wait)
            return
        if wait and not loop.is_closed() and _running_loop() is None:  # at exit, a loop left stopped: finish there
            with suppress(Exception):
                loop.run_until_complete(_aclose(hook))
                return
        connector = session.connector
        session.detach()
        if connector is not None:
            # On a finished loop, closing only marks the pool closed (its sockets went with the
            # loop), and the awaitable it returns is already done: step it once, run nothing.
            _step(connector.close())
    _step(hook.aclose())  # the session is closed: the hook ends without awaiting anything


async def _aclose(hook: AsyncGenerator[None, None]) -> None:
    await hook.aclose()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _step(awaitable: Awaitable[Any]) -> None:
    step = awaitable.__await__()
    with suppress(StopIteration, RuntimeError):
        step.send(None)
    step.close()


_OPEN: weakref.WeakSet[AiohttpTransport] = weakref.WeakSet()


@atexit.register
def _close_at_exit() -> None:
    """Sessions still open at exit, on a loop that still runs (`chat_sync`'s, in a daemon thread)."""
    for poster in list(_OPEN):
        session, hook, loop = poster._session, poster._hook, poster._loop
        if session is not None and hook is not None and loop is not None:
            _retire(session, hook, loop, wait=2.0)


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`), as httpx would use."""
    from urllib.request import getproxies, proxy_bypass  # with http.client and email: only when a session opens

    parts = urlsplit(url)
    proxy = getproxies().get(parts.scheme)
    if not proxy or proxy_bypass(parts.hostname or ""):
        return None
    return proxy


@functools.cache
def _ssl_context() -> ssl.SSLContext | bool:
    """The system's CAs (aiohttp's own verified context, loaded once), or certifi's where the system has none.

    Loading a CA bundle takes about 0.15 s with OpenSSL 3, so it is done once
    per process, and not a second time when the system store is there.
    """
    paths = ssl.get_default_verify_paths()
    if (paths.cafile and os.path.exists(paths.cafile)) or (paths.capath and os.listdir(paths.capath)):
        return True
    context = ssl.create_default_context()
    try:
        import certifi

        context.load_verify_locations(certifi.where())
    except ImportError:  # pragma: no cover - certifi comes with httpx, which the SDK requires
        pass
    return context

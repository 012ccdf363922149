"""POST a chat request to an OpenAI-style endpoint over one aiohttp session, retried as `_retry` says.

The SDK builds request options, an httpx2 request and a response wrapper for
every call; at a thousand concurrent streams those objects are most of the
client's memory. Here the SDK client still resolves the configuration once
(base URL, auth and custom headers, organisation and project, Azure's
api-version), and each request is just bytes on a pooled connection.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import ssl
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp

from ._retry import RetryPolicy, retry_after

__all__ = ["Endpoint", "HttpPoster", "env_proxy", "retry_after"]

AsyncTokenProvider = Callable[[], Awaitable[str]]

MAX_CONNECTIONS = 1000  # the SDK's pool size


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """Where and how to POST, resolved once from an SDK client's configuration."""

    url: str  # for Azure's dated API, with a `{deployment}` placeholder
    headers: Mapping[str, str]
    query: Mapping[str, str]
    timeout: float | None
    max_retries: int
    token: AsyncTokenProvider | None = None  # sent as `Authorization: Bearer <token>`, fetched per request

    @classmethod
    def of(cls, client: Any, *, token: AsyncTokenProvider | None = None) -> Endpoint:
        """Read an `AsyncOpenAI` / `AsyncAzureOpenAI` client's resolved settings."""
        from openai import AsyncAzureOpenAI, Omit

        base = str(client.base_url)
        if not base.endswith("/"):
            base += "/"
        path = "chat/completions"
        if isinstance(client, AsyncAzureOpenAI) and "/deployments" not in client.base_url.path:
            path = "deployments/{deployment}/chat/completions"  # as the SDK routes the dated API
        headers = {**(client.auth_headers if token is None else {}), **client.default_headers}
        return cls(
            url=base + path,
            headers={k: v for k, v in headers.items() if not isinstance(v, Omit) and k != "X-Stainless-Async"},
            query={k: str(v) for k, v in client.default_query.items() if not isinstance(v, Omit)},
            timeout=_seconds(client.timeout),
            max_retries=client.max_retries,
            token=token,
        )

    def url_for(self, model: str) -> str:
        return self.url.replace("{deployment}", quote(model, safe="")) if "{deployment}" in self.url else self.url


class HttpPoster:
    """One pooled aiohttp session per adapter, opened in the loop that first uses it."""

    __slots__ = ("__weakref__", "_hook", "_loop", "_session", "_ssl", "endpoint", "retry")

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.retry = RetryPolicy(max_retries=endpoint.max_retries)
        self._ssl = _ssl_context()  # loading the CAs takes a while: not in the loop, when that can be helped
        self._session: aiohttp.ClientSession | None = None
        self._hook: AsyncGenerator[None, None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop:
            # A session belongs to one loop: a second `asyncio.run`, or a test framework
            # with a loop per test, gets its own, and the old one is closed where it can be.
            if self._session is not None and self._hook is not None and self._loop is not None:
                _retire(self._session, self._hook, self._loop)
            endpoint = self.endpoint
            self._session = session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS, ssl=self._ssl),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=endpoint.timeout, sock_read=endpoint.timeout),
                headers=endpoint.headers,
                # HTTPS_PROXY / NO_PROXY, read once: aiohttp's trust_env looks them up in a thread per request
                proxy=env_proxy(endpoint.url),
            )
            self._hook = _closing(session)
            _start(self._hook)
            self._loop = loop
            _OPEN.add(self)
        return self._session

    async def post(self, model: str, body: bytes) -> aiohttp.ClientResponse:
        """The response to the last attempt (any status); transport errors raise after the last retry.

        Retried as `RetryPolicy` says; a response it does not retry is the answer.
        """
        session = self._client()
        endpoint, policy = self.endpoint, self.retry
        url = endpoint.url_for(model)
        headers: Mapping[str, str] | None = None  # the session's
        attempt = 0
        while True:
            if endpoint.token is not None:
                headers = {"Authorization": f"Bearer {await endpoint.token()}"}
            try:
                response = await session.post(url, data=body, headers=headers, params=endpoint.query or None)
            except (TimeoutError, aiohttp.ClientConnectionError):
                if not await policy.pause(attempt):
                    raise
            else:
                wait = policy.next_delay(attempt, response.status, response.headers)
                if wait is None:
                    return response
                response.release()
                await asyncio.sleep(wait)
            attempt += 1

    async def aclose(self) -> None:
        session, hook, self._session, self._hook = self._session, self._hook, None, None
        _OPEN.discard(self)
        if session is None or hook is None or self._loop is None:
            return
        if self._loop is asyncio.get_running_loop():
            await hook.aclose()  # closes the session
        else:
            _retire(session, hook, self._loop)


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


_OPEN: weakref.WeakSet[HttpPoster] = weakref.WeakSet()


@atexit.register
def _close_at_exit() -> None:
    """Sessions still open at exit, on a loop that still runs (`chat_sync`'s, in a daemon thread)."""
    for poster in list(_OPEN):
        session, hook, loop = poster._session, poster._hook, poster._loop
        if session is not None and hook is not None and loop is not None:
            _retire(session, hook, loop, wait=2.0)


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`), as httpx would use."""
    parts = urlsplit(url)
    proxy = getproxies().get(parts.scheme)
    if not proxy or proxy_bypass(parts.hostname or ""):
        return None
    return proxy


def _seconds(timeout: Any) -> float | None:
    """The SDK takes a number or an httpx Timeout; the read timeout is what bounds a stream."""
    if timeout is None or isinstance(timeout, int | float):
        return timeout
    return getattr(timeout, "read", None)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """The system's CAs plus certifi's, as the SDK's transport trusts; one for the process, as aiohttp's own."""
    context = ssl.create_default_context()
    try:
        import certifi

        context.load_verify_locations(certifi.where())
    except ImportError:  # pragma: no cover - certifi comes with httpx, which the SDK requires
        pass
    return context

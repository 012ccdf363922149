"""POST a chat request to an OpenAI-style endpoint over one aiohttp session, with the SDK's retry policy.

The SDK builds request options, an httpx2 request and a response wrapper for
every call; at a thousand concurrent streams those objects are most of the
client's memory. Here the SDK client still resolves the configuration once
(base URL, auth and custom headers, organisation and project, Azure's
api-version), and each request is just bytes on a pooled connection.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp

AsyncTokenProvider = Callable[[], Awaitable[str]]

# The SDK's pool size and back-off, so the lean path behaves as the SDK would.
MAX_CONNECTIONS = 1000
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
_RETRY_STATUS = frozenset((408, 409, 429))


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

    __slots__ = ("_loop", "_session", "endpoint")

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop:
            # A session belongs to one loop: a second `asyncio.run`, or a test framework
            # with a loop per test, gets its own, and the old one is closed where it can be.
            if self._session is not None and self._loop is not None:
                _retire(self._session, self._loop)
            endpoint = self.endpoint
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS, ssl=_ssl_context()),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=endpoint.timeout, sock_read=endpoint.timeout),
                headers=endpoint.headers,
                # HTTPS_PROXY / NO_PROXY, read once: aiohttp's trust_env looks them up in a thread per request
                proxy=env_proxy(endpoint.url),
            )
            self._loop = loop
        return self._session

    async def post(self, model: str, body: bytes) -> aiohttp.ClientResponse:
        """The response to the last attempt (any status); transport errors raise after the last retry.

        Retried as the SDK retries: connection errors and timeouts, 408, 409,
        429 and 5xx, unless the server says `x-should-retry: false`.
        """
        session = self._client()
        endpoint = self.endpoint
        url = endpoint.url_for(model)
        headers: Mapping[str, str] | None = None  # the session's
        for attempt in range(endpoint.max_retries + 1):
            if endpoint.token is not None:
                headers = {"Authorization": f"Bearer {await endpoint.token()}"}
            last = attempt == endpoint.max_retries
            try:
                response = await session.post(url, data=body, headers=headers, params=endpoint.query or None)
            except (TimeoutError, aiohttp.ClientConnectionError):
                if last:
                    raise
                await asyncio.sleep(_backoff(attempt))
                continue
            if last or not _should_retry(response):
                return response
            delay = retry_after(response.headers)
            response.release()
            await asyncio.sleep(delay if delay is not None and 0 < delay <= 60 else _backoff(attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is None or self._loop is None:
            return
        if self._loop is asyncio.get_running_loop():
            await session.close()
        else:
            _retire(session, self._loop)


def _retire(session: aiohttp.ClientSession, loop: asyncio.AbstractEventLoop) -> None:
    """Close a session that belongs to another loop, without running anything on this one."""
    if loop.is_running():  # the blocking API's background loop, for instance
        asyncio.run_coroutine_threadsafe(session.close(), loop)
        return
    connector = session.connector
    session.detach()
    if connector is not None:
        # On a finished loop, closing only marks the pool closed (its sockets went with the
        # loop), and the awaitable it returns is already done: step it once, run nothing.
        step = connector.close().__await__()
        with suppress(StopIteration, RuntimeError):
            step.send(None)
        step.close()


def _should_retry(response: aiohttp.ClientResponse) -> bool:
    should = response.headers.get("x-should-retry")
    if should in ("true", "false"):
        return should == "true"
    return response.status in _RETRY_STATUS or response.status >= 500


def _backoff(attempt: int) -> float:
    delay: float = min(INITIAL_RETRY_DELAY * 2.0**attempt, MAX_RETRY_DELAY)
    return delay * (1 - 0.25 * random.random())  # jitter, so a fleet of clients spreads out


def retry_after(headers: Mapping[str, str]) -> float | None:
    """`retry-after-ms`, then `retry-after` in seconds or as an HTTP date."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


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


def _ssl_context() -> ssl.SSLContext:
    """The system's CAs plus certifi's, as the SDK's transport trusts."""
    context = ssl.create_default_context()
    try:
        import certifi

        context.load_verify_locations(certifi.where())
    except ImportError:  # pragma: no cover - certifi comes with httpx, which the SDK requires
        pass
    return context

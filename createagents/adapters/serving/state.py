"""What one server keeps: its agents, options, keys, counters and the requests in flight."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import time
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from ...application.ports import ConversationStore
from ...domain.errors import ConfigurationError
from .agents import ServedAgent
from .errors import ApiError

MiB = 1024 * 1024
KEY_ID = web.RequestKey("createagents.key_id", str)
"""The request item naming the caller's API key: a digest, never the key; "" on a server without keys."""
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx and friends: do not buffer the stream
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerOptions:
    """The server's settings; checked when the app is built."""

    api_keys: tuple[str, ...] = ()
    max_body: int = MiB
    max_concurrent_per_key: int | None = None
    cors_origins: tuple[str, ...] = ()
    allow_insecure_no_auth: bool = False
    background_stale_after: float = 30.0

    def __post_init__(self) -> None:
        if not all(isinstance(k, str) and k.strip() and k == k.strip() for k in self.api_keys):
            raise ConfigurationError("api_keys must be non-empty strings without surrounding spaces")
        if isinstance(self.max_body, bool) or not isinstance(self.max_body, int) or self.max_body < 1:
            raise ConfigurationError(f"max_body must be a whole number of bytes >= 1, got {self.max_body!r}")
        limit = self.max_concurrent_per_key
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ConfigurationError(f"max_concurrent_per_key must be a whole number >= 1 or None, got {limit!r}")
        stale = self.background_stale_after
        if isinstance(stale, bool) or not isinstance(stale, int | float) or not 0 < stale < float("inf"):
            raise ConfigurationError(f"background_stale_after must be a finite number of seconds > 0, got {stale!r}")
        if not all(isinstance(o, str) and o for o in self.cors_origins):
            raise ConfigurationError("cors_origins must be origins like 'https://app.example.com', or '*'")


class ServerState:
    def __init__(self, agents: Mapping[str, ServedAgent], options: ServerOptions) -> None:
        self.agents = dict(agents)
        self.options = options
        self.created = int(time.time())
        self._key_digests = tuple(_digest(k.encode()) for k in options.api_keys)
        self.cors_any = "*" in options.cors_origins
        self.cors_origins = frozenset(options.cors_origins)
        self.stopping = False
        self.requests: dict[tuple[str, str, int], int] = {}
        self.active: dict[int, asyncio.Task[object] | None] = {}  # id(request) -> the task handling it
        self.idle = asyncio.Event()
        self.idle.set()
        self.streams = 0
        self._per_key: dict[int, int] = {}
        self.open_handlers: set[object] = set()  # routes that need no API key

    # -- agents ----------------------------------------------------------------

    def agent(self, name: str) -> ServedAgent:
        agent = self.agents.get(name)
        if agent is None:
            raise ApiError(
                404,
                f"The model `{name}` does not exist or you do not have access to it.",
                param="model",
                code="model_not_found",
            )
        return agent

    def stores(self) -> list[tuple[str, ConversationStore]]:
        """Each distinct store once, with the first name of an agent that uses it."""
        seen: dict[int, tuple[str, ConversationStore]] = {}
        for name, agent in self.agents.items():
            store = agent.store
            seen.setdefault(id(store), (name, store))
        return list(seen.values())

    def distinct_agents(self) -> list[tuple[str, ServedAgent]]:
        seen: dict[int, tuple[str, ServedAgent]] = {}
        for name, agent in self.agents.items():
            seen.setdefault(id(agent), (name, agent))
        return list(seen.values())

    # -- requests in flight ----------------------------------------------------

    def enter(self, request: web.BaseRequest) -> None:
        self.active[id(request)] = asyncio.current_task()
        self.idle.clear()

    def leave(self, request: web.BaseRequest, route: str, status: int) -> None:
        self.active.pop(id(request), None)
        if not self.active:
            self.idle.set()
        method = request.method if request.method in _METHODS else "other"  # a bounded label set
        key = (route, method, status)
        self.requests[key] = self.requests.get(key, 0) + 1

    def cancel_active(self) -> None:
        for task in self.active.values():
            if task is not None and not task.done():
                task.cancel()

    # -- auth and limits -------------------------------------------------------

    def authenticate(self, request: web.BaseRequest) -> int:
        """The index of the request's API key (-1 when the server has none); `ApiError` 401 otherwise."""
        if not self._key_digests:
            if not self.options.allow_insecure_no_auth and not is_loopback(request.remote):
                raise ApiError(
                    401,
                    "this server has no API keys and answers only clients on this machine",
                    code="invalid_api_key",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            return -1
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                401,
                "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'.",
                code="invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        digest = _digest(token.encode())
        found = -1
        for i, key in enumerate(self._key_digests):  # no early exit: the time does not say which key matched
            if hmac.compare_digest(digest, key) and found < 0:
                found = i
        if found < 0:
            raise ApiError(
                401, "Incorrect API key provided.", code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"}
            )
        return found

    def key_id(self, key: int) -> str:
        """A stable name for the key at index `key` (what responses record as their owner): a digest prefix.

        The same key gives the same id on every replica and after a restart,
        whatever order the keys are listed in.
        """
        return "" if key < 0 else self._key_digests[key][:12].hex()

    def acquire(self, key: int) -> bool:
        """Count a request against its key; False when the key is at its concurrency limit."""
        limit = self.options.max_concurrent_per_key
        if limit is None:
            return True
        n = self._per_key.get(key, 0)
        if n >= limit:
            return False
        self._per_key[key] = n + 1
        return True

    def release(self, key: int) -> None:
        if self.options.max_concurrent_per_key is None:
            return
        n = self._per_key.get(key, 0) - 1
        if n > 0:
            self._per_key[key] = n
        else:
            self._per_key.pop(key, None)

    def origin_allowed(self, origin: str) -> bool:
        return self.cors_any or origin in self.cors_origins


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()  # equal lengths: compare_digest then takes the same time for any token


def is_loopback(remote: str | None) -> bool:
    """True for a loopback peer; a Unix socket (no address) counts as local."""
    if remote is None:
        return True
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback

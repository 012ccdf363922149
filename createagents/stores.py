"""Store URLs -> conversation stores: part of the composition root, with `agent.py` and `providers.py`.

    "memory://"                         this process's memory (the default)
    "sqlite:///chats.db"                a file, relative to the working directory
    "sqlite:////var/lib/app/chats.db"   an absolute path
    "redis://127.0.0.1:6379/0"          a Redis shared by many processes (also rediss:// and unix://)

Query parameters set options: `?ttl=3600` (seconds) for every store,
`?prefix=myapp` for Redis, `?max_conversations=50000&idle_ttl=3600` for memory.
Backends are imported only when chosen, so their drivers load only then.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from .application.ports import ConversationStore
from .domain.errors import ConfigurationError

_SCHEMES = ("memory", "sqlite", "redis", "rediss", "unix")


def store_from_url(url: str) -> ConversationStore:
    """The store a URL names; `ConfigurationError` for a URL that names none, or a bad option."""
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(
            "store must be a ConversationStore or a URL like 'sqlite:///chats.db' or 'redis://host:6379/0', "
            f"got {url!r}"
        )
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    if scheme == "memory":
        from .adapters.memory_store import InMemoryConversationStore

        return InMemoryConversationStore(**_take(options, {"max_conversations": int, "idle_ttl": _seconds}, scheme))
    if scheme == "sqlite":
        from .adapters.sqlite_store import SQLiteConversationStore

        path = unquote(parts.netloc + parts.path)
        path = path[1:] if path.startswith("/") else path  # sqlite:///rel.db -> rel.db; sqlite:////abs -> /abs
        if not path:
            raise ConfigurationError("a sqlite store URL needs a file: 'sqlite:///chats.db'")
        return SQLiteConversationStore(path, **_take(options, {"ttl": _seconds}, scheme))
    if scheme in ("redis", "rediss", "unix"):
        from .adapters.redis_store import RedisConversationStore

        taken = _take(options, {"ttl": _seconds, "prefix": str}, scheme, keep_others=True)
        rest = "&".join(f"{k}={v}" for k, v in options.items())
        client_url = urlunsplit((parts.scheme, parts.netloc, parts.path, rest, ""))
        return RedisConversationStore(client_url, **taken)
    raise ConfigurationError(f"unknown store {scheme!r} in {_public(url)!r}; known: {', '.join(_SCHEMES)}")


def _take(
    options: dict[str, str], known: dict[str, Callable[[str], Any]], scheme: str, *, keep_others: bool = False
) -> dict[str, Any]:
    taken: dict[str, Any] = {}
    for name, parse in known.items():
        if name in options:
            raw = options.pop(name)
            try:
                taken[name] = parse(raw)
            except ValueError:
                raise ConfigurationError(f"store option {name}={raw!r} is not valid") from None
    if options and not keep_others:
        raise ConfigurationError(
            f"unknown option(s) {sorted(options)} for a {scheme} store; known: {', '.join(known) or 'none'}"
        )
    return taken


def _seconds(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(raw)
    return value


def _public(url: str) -> str:
    """A URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, f"{parts.username or ''}:***@{netloc}", parts.path, parts.query, ""))

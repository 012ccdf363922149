"""Serve agents over HTTP as an OpenAI-compatible API (Chat Completions and Responses).

    from createagents import CreateAgent
    from createagents.serving import serve

    agent = CreateAgent(provider="openai", model="gpt-4o-mini", tools=[...])
    asyncio.run(serve(agent, api_keys=["sk-my-server-key"]))   # http://127.0.0.1:8080/v1

`app(...)` builds the aiohttp application to mount in your own; `serve(...)`
binds it and runs until SIGTERM / SIGINT. API keys come from `api_keys` and
from the environment variable `CREATEAGENTS_SERVER_API_KEYS` (comma-separated).
See docs/serving.md.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable, Mapping

from aiohttp import web

from .adapters.serving import MiB, ServedAgent, ServerOptions, build_app, run, served_names
from .adapters.structured_logging import register_secret
from .agent import CreateAgent
from .domain.errors import ConfigurationError

API_KEYS_VARIABLE = "CREATEAGENTS_SERVER_API_KEYS"


def app(
    agents: CreateAgent | Mapping[str, CreateAgent],
    *,
    api_keys: Iterable[str] = (),
    max_body: int = MiB,
    max_concurrent_per_key: int | None = None,
    cors_origins: Iterable[str] = (),
    allow_insecure_no_auth: bool = False,
    background_stale_after: float = 30.0,
) -> web.Application:
    """The aiohttp application serving `agents`.

    `agents` is one agent (served under the model names "default" and its
    `model`) or a dict of name -> agent. Requests need `Authorization: Bearer
    <key>` for one of `api_keys` (plus those in `CREATEAGENTS_SERVER_API_KEYS`);
    with no key at all the app answers only loopback clients, unless
    `allow_insecure_no_auth=True`. `max_body` caps a request body (bytes, 413
    past it); `max_concurrent_per_key` caps requests in flight per key (429
    past it); `cors_origins` turns CORS on for those origins ("*" for any).
    A background response whose server stopped proving it alive for
    `background_stale_after` seconds (killed, crashed) is marked `incomplete`
    by any server on the same store, at start and then periodically.
    """
    return build_app(
        _agents(agents),
        _options(
            api_keys, max_body, max_concurrent_per_key, cors_origins, allow_insecure_no_auth, background_stale_after
        ),
    )


async def serve(
    agents: CreateAgent | Mapping[str, CreateAgent],
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    api_keys: Iterable[str] = (),
    max_body: int = MiB,
    max_concurrent_per_key: int | None = None,
    cors_origins: Iterable[str] = (),
    allow_insecure_no_auth: bool = False,
    background_stale_after: float = 30.0,
    shutdown_grace: float = 30.0,
    ready: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve `agents` on `host`:`port` until SIGTERM or SIGINT (or `stop` is set, or the task is cancelled).

    Then it stops accepting connections, lets requests in flight (streams
    included) finish for up to `shutdown_grace` seconds, cancels what is left
    and returns. A second signal skips the rest of the grace period.
    `ready(port)` is called once the socket is bound (port 0 picks a free
    one). Without API keys a host other than loopback is refused with
    `ConfigurationError`, unless `allow_insecure_no_auth=True`. The agents are
    not closed: they are yours.
    """
    application = app(
        agents,
        api_keys=api_keys,
        max_body=max_body,
        max_concurrent_per_key=max_concurrent_per_key,
        cors_origins=cors_origins,
        allow_insecure_no_auth=allow_insecure_no_auth,
        background_stale_after=background_stale_after,
    )
    await run(application, host=host, port=port, shutdown_grace=shutdown_grace, ready=ready, stop=stop)


def api_keys_from_environment() -> tuple[str, ...]:
    """The keys in `CREATEAGENTS_SERVER_API_KEYS`, comma-separated; blanks ignored."""
    raw = os.environ.get(API_KEYS_VARIABLE, "")
    return tuple(k.strip() for k in raw.split(",") if k.strip())


def _agents(agents: object) -> dict[str, ServedAgent]:
    return served_names(agents)


def _options(
    api_keys: Iterable[str],
    max_body: int,
    max_concurrent_per_key: int | None,
    cors_origins: Iterable[str],
    allow_insecure_no_auth: bool,
    background_stale_after: float = 30.0,
) -> ServerOptions:
    if isinstance(api_keys, str) or isinstance(cors_origins, str):
        raise ConfigurationError("api_keys and cors_origins are lists of strings, not one string")
    keys = tuple(dict.fromkeys((*api_keys, *api_keys_from_environment())))
    options = ServerOptions(
        api_keys=keys,
        max_body=max_body,
        max_concurrent_per_key=max_concurrent_per_key,
        cors_origins=tuple(cors_origins),
        allow_insecure_no_auth=allow_insecure_no_auth,
        background_stale_after=background_stale_after,
    )
    for key in keys:
        register_secret(key)  # never in a log line
    return options


__all__ = ["API_KEYS_VARIABLE", "api_keys_from_environment", "app", "serve"]

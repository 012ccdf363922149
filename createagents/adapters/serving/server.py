"""Running the application: bind, serve until SIGTERM / SIGINT (or a stop event), drain gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import signal
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ...domain.errors import ConfigurationError
from .app import state_of
from .state import ServerState

log = logging.getLogger("createagents.server")

_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_AFTER_CANCEL = 5.0  # seconds for cancelled requests to unwind before the connections are closed


def check_bind(host: str, state: ServerState) -> None:
    """Without API keys, only a loopback host, unless the caller said the network is trusted."""
    if state.options.api_keys or state.options.allow_insecure_no_auth:
        return
    if not is_loopback_host(host):
        raise ConfigurationError(
            f"refusing to serve on {host!r} without API keys: anyone who can reach it could spend your model "
            "budget. Set api_keys (or CREATEAGENTS_SERVER_API_KEYS), bind to 127.0.0.1, or pass "
            "allow_insecure_no_auth=True on a network you trust"
        )


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name (or "" / "0.0.0.0": every interface) may reach beyond this machine


async def run(
    app: web.Application,
    *,
    host: str,
    port: int,
    shutdown_grace: float,
    ready: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve `app` until a signal, `stop` or cancellation; then drain for up to `shutdown_grace` seconds."""
    if (
        isinstance(shutdown_grace, bool)
        or not isinstance(shutdown_grace, int | float)
        or not (math.isfinite(shutdown_grace) and shutdown_grace >= 0)
    ):
        raise ConfigurationError(f"shutdown_grace must be a finite number of seconds >= 0, got {shutdown_grace!r}")
    state = state_of(app)
    check_bind(host, state)
    stop = stop or asyncio.Event()
    force = asyncio.Event()
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=_AFTER_CANCEL)
    await runner.setup()
    restore: dict[int, Any] = {}
    try:
        site = web.TCPSite(runner, host, port, backlog=4096)
        await site.start()
        restore = _install_signals(stop, force)
        bound = _bound_port(site, port)
        log.info("serving %s on %s:%d", ", ".join(state.agents), host, bound)
        if ready is not None:
            ready(bound)
        try:
            await stop.wait()
        except asyncio.CancelledError:
            state.stopping = True
            state.cancel_active()
            raise
        await _drain(state, site, shutdown_grace, force)
    finally:
        _restore_signals(restore)
        state.stopping = True
        state.cancel_active()
        await runner.cleanup()


async def _drain(state: ServerState, site: web.TCPSite, grace: float, force: asyncio.Event) -> None:
    """Stop accepting, let requests in flight finish within `grace`, then cancel the rest."""
    state.stopping = True
    await site.stop()  # no new connections; new requests on open ones get 503
    log.info("draining %d request(s) for up to %.1f s", len(state.active), grace)
    waiters = [asyncio.ensure_future(state.idle.wait()), asyncio.ensure_future(force.wait())]
    try:
        await asyncio.wait(waiters, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
    if state.active:
        log.warning("cancelling %d request(s) still running after the grace period", len(state.active))
        state.cancel_active()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.idle.wait(), _AFTER_CANCEL)


def _bound_port(site: web.TCPSite, asked: int) -> int:
    server = getattr(site, "_server", None)
    sockets = getattr(server, "sockets", None) or ()
    for sock in sockets:
        return int(sock.getsockname()[1])
    return asked


def _install_signals(stop: asyncio.Event, force: asyncio.Event) -> dict[int, Any]:
    """SIGTERM / SIGINT stop the server (a second one skips the grace period); the old handlers, to restore."""
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            force.set()
        stop.set()

    installed: dict[int, Any] = {}
    for sig in _SIGNALS:
        try:
            previous = signal.getsignal(sig)
            loop.add_signal_handler(sig, on_signal)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
            continue
        installed[sig] = previous
    return installed


def _restore_signals(installed: dict[int, Any]) -> None:
    if not installed:
        return
    loop = asyncio.get_running_loop()
    for sig, previous in installed.items():
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(sig)
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)

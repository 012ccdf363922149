"""`createagents serve`: the agent(s) over HTTP, through `createagents.serving.serve`."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import Any, TextIO

from ..agent import CreateAgent
from ..domain.errors import ConfigurationError
from ._agents import AgentOptions, Agents, close_all, load_agents, one_line

SERVER_KEYS_VARIABLE = "CREATEAGENTS_SERVER_API_KEYS"
LOG_LEVELS = ("debug", "info", "warning", "error", "off")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeOptions:
    host: str
    port: int
    api_keys: tuple[str, ...]
    max_concurrent_per_key: int | None
    cors_origins: tuple[str, ...]
    shutdown_grace: float
    allow_insecure_no_auth: bool
    log_level: str = "warning"
    log_json: bool = False

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of `serving.serve`; an option not given is left to its default there.

        `serve` adds the keys of CREATEAGENTS_SERVER_API_KEYS to `api_keys` itself.
        """
        found: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "api_keys": list(self.api_keys),
            "shutdown_grace": self.shutdown_grace,
            "cors_origins": list(self.cors_origins),
            "allow_insecure_no_auth": self.allow_insecure_no_auth,
        }
        if self.max_concurrent_per_key is not None:
            found["max_concurrent_per_key"] = self.max_concurrent_per_key
        return found


async def run_server(options: AgentOptions, serve_options: ServeOptions, err: TextIO | None = None) -> None:
    """Serve until SIGTERM or Ctrl-C; the agents are closed when the server has stopped."""
    try:
        serving = importlib.import_module("createagents.serving")  # imported only here: HTTP costs nothing otherwise
    except ImportError as e:
        raise ConfigurationError(f"serve needs createagents.serving, which cannot be imported: {one_line(e)}") from None
    if serve_options.log_level != "off":
        from ..adapters.structured_logging import configure_logging

        configure_logging(serve_options.log_level, json=serve_options.log_json)
    agents = await load_agents(options)
    stream = err or sys.stderr

    def ready(port: int) -> None:
        host = serve_options.host
        shown = f"[{host}]" if ":" in host else host
        stream.write(
            f"createagents: serving {_names(agents)} at http://{shown}:{port}/v1 "
            "(Ctrl-C or SIGTERM stops; a second one skips the grace period)\n"
        )
        stream.flush()

    try:
        await serving.serve(agents, **serve_options.arguments(), ready=ready)
    finally:
        await close_all(agents)


def _names(agents: Agents) -> str:
    """The model names clients use: a dict's keys, or "default" and the model of a single agent."""
    if isinstance(agents, CreateAgent):
        return ", ".join(dict.fromkeys(["default", agents.model]))
    return ", ".join(agents)

"""Model Context Protocol servers as tools: `from createagents.mcp import MCPServer`.

    files = MCPServer.stdio("python", ["-m", "my_mcp_server"])
    search = MCPServer.http("https://mcp.example.com/mcp", headers={"Authorization": "Bearer ..."})
    async with CreateAgent(provider="openai", model="gpt-4o-mini", tools=[files, search, get_weather]) as agent:
        ...

Importing this module does not import the `mcp` SDK (an optional extra:
`pip install 'createagents[mcp]'`); the first connection does. See docs/mcp.md.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .adapters.mcp_client import (
    DEFAULT_CONNECT_TIMEOUT,
    INSTALL_HINT,
    MCPServerError,
    MCPToolset,
    http_label,
    http_opener,
    stdio_label,
    stdio_opener,
)
from .domain.errors import ConfigurationError

__all__ = ["MCPServer", "MCPServerError"]


class MCPServer(MCPToolset):
    """An MCP server whose tools an agent may call; pass it in `tools=[...]` beside functions.

    Build one with `MCPServer.stdio(...)` or `MCPServer.http(...)`. It connects
    on first use (or when the agent is entered with `async with`), is shared
    by every conversation of the agent, and is closed by `agent.aclose()`.

    - `prefix`: a tool whose name another tool of the agent already has is
      offered as `{prefix}_{name}` (default prefix: "mcp").
    - `allow` / `deny`: the server's tool names to offer only / never.
    - `timeout`: seconds per call (default: the agent's `tool_timeout`); a call
      past it is cancelled on the server too, and the model gets an error result.
    - `connect_timeout`: seconds to start and initialise (default 30); past
      it, `MCPServerError` naming the server.
    """

    @classmethod
    def stdio(
        cls,
        command: str,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        *,
        prefix: str | None = None,
        allow: Iterable[str] | None = None,
        deny: Iterable[str] | None = None,
        timeout: float | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> MCPServer:
        """A server run as a subprocess, speaking MCP on its stdin and stdout; `aclose()` ends the process.

        The subprocess gets the SDK's safe default environment (PATH, HOME, ...)
        plus `env`, not the whole of ours: pass the variables it needs.
        """
        _require_sdk()
        if not isinstance(command, str) or not command:
            raise ConfigurationError(f"MCPServer.stdio: command must be a non-empty str, got {command!r}")
        if isinstance(args, str) or not all(isinstance(a, str) for a in args):
            raise ConfigurationError(f"MCPServer.stdio: args must be a list of str, got {args!r}")
        if env is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise ConfigurationError("MCPServer.stdio: env must map str to str")
        args = list(args)
        return cls(
            stdio_opener(command, args, env, cwd),
            label=stdio_label(command, args),
            kind="stdio",
            prefix=prefix,
            allow=allow,
            deny=deny,
            timeout=timeout,
            connect_timeout=connect_timeout,
        )

    @classmethod
    def http(
        cls,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        prefix: str | None = None,
        allow: Iterable[str] | None = None,
        deny: Iterable[str] | None = None,
        timeout: float | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> MCPServer:
        """A server at a streamable HTTP endpoint (`https://host/mcp`); `headers` go with every request."""
        _require_sdk()
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"MCPServer.http: url must start with http:// or https://, got {url!r}")
        return cls(
            http_opener(url, headers),
            label=http_label(url),
            kind="http",
            prefix=prefix,
            allow=allow,
            deny=deny,
            timeout=timeout,
            connect_timeout=connect_timeout,
        )


def _require_sdk() -> None:
    """Whether `mcp` is installed, found without importing it (that waits for the first connection)."""
    if importlib.util.find_spec("mcp") is None:
        raise ConfigurationError(f"MCP servers need the `mcp` package: {INSTALL_HINT}")

"""A small MCP server written with the `mcp` SDK's own server API, for the MCP tests and docs.

Run over stdio (`python -m tests.mcp.server_app`) or streamable HTTP
(`python -m tests.mcp.server_app --http PORT`). Environment switches make
it misbehave on purpose: `SERVER_APP_REFUSE` names a file whose presence
makes it exit at once, `SERVER_APP_HANG=1` makes it never answer, and
`SERVER_APP_PIDFILE` names a file it appends its process id to.
"""

import asyncio
import os
import sys
from typing import Any

try:  # mcp 2.x
    from mcp.server.mcpserver import Context, Image, MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import Context, Image  # type: ignore[no-redef]
    from mcp.server.fastmcp import FastMCP as MCPServer
    from mcp.server.fastmcp.exceptions import ToolError  # type: ignore[no-redef]

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)

server: Any = MCPServer("test-server", log_level="CRITICAL")


@server.tool()
def echo(text: str) -> str:
    """Echo the text back."""
    return f"echo: {text}"


@server.tool()
def add(a: int, b: int) -> dict[str, int]:
    """Add two integers; the answer is structured."""
    return {"sum": a + b}


@server.tool()
def get_weather(city: str) -> str:
    """The weather, as the MCP server knows it."""
    return f"MCP weather: rain in {city}"


@server.tool()
def fail(reason: str) -> str:
    """Always fails, with the reason."""
    raise ToolError(f"refused: {reason}")


@server.tool()
async def slow(seconds: float) -> str:
    """Sleep, then answer."""
    await asyncio.sleep(seconds)
    return "slept"


@server.tool()
def crash() -> str:
    """Kill the server process."""
    os._exit(3)


@server.tool(structured_output=False)
def picture() -> list[Any]:
    """A caption and a 1x1 PNG."""
    return ["a red dot", Image(data=PNG, format="png")]


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool()
async def grow(ctx: Context) -> str:
    """Add the tool `extra` and tell the client the tool list changed."""

    def extra(word: str) -> str:
        """A tool added at run time."""
        return word.upper()

    server.add_tool(extra)
    await ctx.session.send_tool_list_changed()
    return "grown"


def main() -> None:
    pidfile = os.environ.get("SERVER_APP_PIDFILE")
    if pidfile:
        with open(pidfile, "a") as f:
            f.write(f"{os.getpid()}\n")
    refuse = os.environ.get("SERVER_APP_REFUSE")
    if refuse and os.path.exists(refuse):
        sys.exit("server_app: refusing to start")
    if os.environ.get("SERVER_APP_HANG"):
        import time

        time.sleep(3600)
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        port = int(sys.argv[2])
        try:  # mcp 2
            asyncio.run(server.run_streamable_http_async(host="127.0.0.1", port=port))
        except TypeError:  # mcp 1.x: host and port are settings
            server.settings.host, server.settings.port = "127.0.0.1", port
            asyncio.run(server.run_streamable_http_async())
    else:
        server.run()


if __name__ == "__main__":
    main()

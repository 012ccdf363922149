"""An agent served as an MCP server over stdio (`createagents mcp myapp.agents:support`), on the `mcp` SDK.

One tool, `chat`: a message and an optional conversation id. Without an id
each call is a stateless `ask`; with one, the agent's conversation of that id
remembers earlier messages (in the agent's store). A driving adapter: it
calls the agent's public methods only. stdout is the protocol, so logs go to
stderr (the SDK's stdio server also points stray writes to fd 1 at stderr).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any, Protocol

from ..application.reply import Reply
from ..domain.errors import ConfigurationError

_log = logging.getLogger("createagents")

CHAT_DESCRIPTION = (
    "Send a message to the agent and get its answer. Without conversation_id each call is independent; "
    "with one, the agent remembers the earlier messages of that conversation."
)


class _Conversation(Protocol):
    def chat(self, message: str) -> Reply[Any]: ...


class ServedAgent(Protocol):
    """What the server needs of an agent (`CreateAgent` has it)."""

    def ask(self, message: str) -> Reply[Any]: ...

    def conversation(self, conversation_id: str) -> _Conversation: ...


def build_server(agent: ServedAgent, name: str = "createagents") -> Any:
    """An MCP server (the SDK's `MCPServer`, `FastMCP` before mcp 2) whose `chat` tool talks to `agent`."""
    server_class, tool_error = _sdk()
    server = server_class(name, log_level="WARNING")

    async def chat(message: str, conversation_id: str | None = None) -> str:
        try:
            reply = agent.conversation(conversation_id).chat(message) if conversation_id else agent.ask(message)
            await reply
            return reply.text  # the text, also for an agent with structured output (its JSON)
        except Exception as e:  # the client's model reads it as the call's error (isError)
            text = " ".join(str(e).split())
            _log.warning("MCP chat failed: %s: %s", type(e).__name__, text)
            raise tool_error(f"{type(e).__name__}: {text}" if text else type(e).__name__) from e

    server.tool(name="chat", description=CHAT_DESCRIPTION, structured_output=False)(chat)
    return server


async def serve_stdio(agent: ServedAgent, name: str = "createagents") -> None:
    """Serve `agent` on this process's stdin and stdout until the client closes stdin."""
    await build_server(agent, name).run_stdio_async()


def _sdk() -> tuple[Any, type[Exception]]:
    """The SDK's high-level server class and the error its tools raise for an `isError` result."""
    try:
        try:  # mcp 2
            server = importlib.import_module("mcp.server.mcpserver")
            errors = importlib.import_module("mcp.server.mcpserver.exceptions")
            return server.MCPServer, errors.ToolError
        except ImportError:  # mcp 1.x
            server = importlib.import_module("mcp.server.fastmcp")
            errors = importlib.import_module("mcp.server.fastmcp.exceptions")
            return server.FastMCP, errors.ToolError
    except ImportError as e:
        raise ConfigurationError(
            f"serving over MCP needs the `mcp` package: pip install 'createagents[mcp]' ({e})"
        ) from None

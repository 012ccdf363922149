"""`createagents mcp`: an agent as an MCP server on stdio, so any MCP client can call it as a tool.

stdout carries the protocol and nothing else: createagents' logs (at
`--log-level`) and the SDK's go to stderr.
"""

from __future__ import annotations

import logging

from ..adapters.mcp_server import serve_stdio
from ..adapters.structured_logging import configure_logging
from ._agents import AgentOptions, close_all, load_agents, select


async def run_mcp(options: AgentOptions, agent_name: str | None, log_level: str = "warning") -> None:
    """Serve the agent over MCP stdio until the client closes the connection; its toolsets are closed after."""
    if log_level != "off":
        configure_logging(log_level)  # to stderr: stdout is the protocol
        logging.getLogger("createagents").propagate = False  # once: the SDK's server logs the root logger too
    agents = await load_agents(options)
    try:
        agent = select(agents, agent_name)
        name = options.target.rsplit(":", 1)[-1] if options.target else f"createagents {agent.model}"
        await serve_stdio(agent, name=name)
    finally:
        await close_all(agents)

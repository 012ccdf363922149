"""Toolsets: tools known only at run time, from something outside the agent (an MCP server, say).

An agent lists its toolsets' tools when each run starts, so a server that
adds a tool is seen by the next run; a toolset caches its list, as listing
may cost a round trip. Toolsets are shared by every conversation of the
agent and closed with it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from .tools import Tool


class Toolset(ABC):
    """A source of tools; `prefix` renames a tool whose name another tool of the agent already has."""

    prefix: str = "toolset"

    @property
    def name(self) -> str:
        return self.prefix

    @property
    def description(self) -> str:
        return f"the tools of {self!r}, listed when a run starts"

    @abstractmethod
    async def list_tools(self) -> Sequence[Tool]:
        """The tools as they are now; return the same objects while they do not change (it is cached on)."""

    async def start(self) -> None:
        """Connect now rather than at the first run (entering the agent with `async with` calls it)."""

    async def aclose(self) -> None:
        """Release connections and processes; the next `list_tools` may connect again."""

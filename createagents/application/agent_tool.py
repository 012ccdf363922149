"""An agent as a tool of another (`agent.as_tool(name, description)`): a triage agent hands a task to a specialist.

The sub-agent runs its own loop, statelessly, with its own model, tools and
metrics (each agent records its own model calls). Its events reach the
parent run's observers as `NestedEvent`s, so a trace shows which call did
what. Whatever stops the sub-run (a provider error, too many turns) reaches
the parent's model as the call's error result, never as the parent's
failure; cancelling the parent run (or the call's timeout) cancels the sub-run.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Any, Protocol

from ..domain.errors import ConfigurationError, ToolError
from ..domain.events import NestedEvent
from .nesting import parent_run
from .reply import Reply
from .tools import Tool


class SubAgent(Protocol):
    """What a tool needs of an agent: a stateless `ask`, and names for error messages."""

    @property
    def provider(self) -> str: ...

    @property
    def model(self) -> str: ...

    def ask(self, message: str) -> Reply[Any]: ...


def agent_tool(agent: SubAgent, *, name: str, description: str, timeout: float | None = None) -> Tool:
    """A tool that asks `agent` (statelessly) and answers with its final text."""
    if not isinstance(description, str) or not description.strip():
        raise ConfigurationError(
            f"agent tool {name!r}: give a description: the other agent's model reads it to decide when to call it"
        )

    async def ask_agent(task: str) -> str:
        """Args:
        task: The task in words, with everything the agent needs to know (it sees nothing else).
        """
        parent = parent_run()
        try:
            reply = agent.ask(task)
            async with aclosing(reply.events()) as events:
                async for event in events:
                    if parent is not None:
                        parent.notify(
                            NestedEvent(parent_run_id=parent.run_id, call_id=parent.call_id, agent=name, event=event)
                        )
        except Exception as e:  # the sub-agent's failure is the parent model's information
            raise ToolError(
                f"agent {name!r} ({agent.provider} {agent.model}) failed: {type(e).__name__}: {e}", tool_name=name
            ) from e
        if reply.paused is not None:
            raise ToolError(
                f"agent {name!r} stopped to wait for approvals or client tools, which a tool call cannot give it",
                tool_name=name,
            )
        return reply.text

    return Tool(ask_agent, name=name, description=description, timeout=timeout)

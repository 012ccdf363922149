"""Which run a tool call belongs to, for a tool that runs an agent of its own (`agent.as_tool`).

A context variable, set only in the task of each tool call (never in the
caller's context, which an async generator would share), so a sub-agent
started by the tool can report its events to the parent run's observers as
`NestedEvent`s.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from ..domain.events import RunEvent


@dataclass(frozen=True, slots=True)
class ParentRun:
    """The run and the tool call a sub-agent works for; `notify` reaches that run's observers."""

    run_id: str
    call_id: str
    notify: Callable[[RunEvent], None]


PARENT_RUN: ContextVar[ParentRun | None] = ContextVar("createagents_parent_run", default=None)


def parent_run() -> ParentRun | None:
    """The run whose tool call is running now, or None outside a tool call."""
    return PARENT_RUN.get()

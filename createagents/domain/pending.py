"""Tool calls whose result comes from outside the loop: approvals and client-side tools.

Both are one mechanism. The turn pauses with its pending calls; the caller
answers each one (an approval decision, or a client tool's output) and the
turn runs on from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from .messages import ToolCall

PendingKind: TypeAlias = Literal["approval", "client"]


@dataclass(frozen=True, slots=True)
class Deny:
    """A refused approval; the model reads `reason` as the tool's result."""

    reason: str = ""


Decision: TypeAlias = bool | Deny
"""An approval's answer: `True` runs the call, `False` or `Deny(reason)` refuses it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingCall:
    """A tool call waiting for a decision: an approval (`kind="approval"`) or a client tool's output."""

    call: ToolCall
    kind: PendingKind

    @property
    def id(self) -> str:
        return self.call.id

    @property
    def name(self) -> str:
        return self.call.name

    @property
    def arguments(self) -> str:
        return self.call.arguments


@dataclass(frozen=True, slots=True, kw_only=True)
class Paused:
    """A paused turn: what to resume and what it waits for.

    A conversation's paused turn lives in the agent's store, under
    (`conversation_id`, `id`): any agent object sharing the store resumes it,
    once. A stateless turn (`ask`) keeps nothing: its `state` travels here,
    JSON-ready, for the caller to keep and resume once.
    """

    id: str
    conversation_id: str | None
    pending: tuple[PendingCall, ...]
    expires_at: float
    state: Mapping[str, Any] | None = field(default=None, repr=False)

    @property
    def approvals(self) -> tuple[PendingCall, ...]:
        return tuple(p for p in self.pending if p.kind == "approval")

    @property
    def client_calls(self) -> tuple[PendingCall, ...]:
        return tuple(p for p in self.pending if p.kind == "client")

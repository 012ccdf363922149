"""A paused turn as JSON-ready state, and the checks that decide whether decisions can resume it.

The state holds everything the loop needs to go on from the paused round:
the turn's messages so far, what it said and spent, the round's calls with
the results already in, and which calls wait for what. Stores keep it as it
is; `v` lets a later version read it, or refuse what a newer one wrote.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from ..domain.codec import message_from_dict, message_to_dict, messages_from_dicts, messages_to_dicts
from ..domain.errors import ApprovalExpiredError, InvalidDecisionsError, ResumeError
from ..domain.messages import USAGE_FIELDS, Message, ToolCall, ToolMessage, ToolSpec, Usage
from ..domain.pending import Decision, Deny, PendingCall, PendingKind
from ..domain.settings import ModelSettings

STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Output:
    """A client tool's output, as the caller gave it."""

    value: Any


Step = bool | Deny | PendingCall | Output
"""A call's fate in its round: run it (True), refuse it (False, Deny), wait (PendingCall), or use an output."""


@dataclass(slots=True, kw_only=True)
class Progress:
    """What a turn has done so far: carried through a pause in its state."""

    run_id: str
    new: list[Message]
    settings: ModelSettings
    text: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    rounds: int = 0
    elapsed: float = 0.0  # seconds run before this segment (pauses excluded)
    client_tools: list[ToolSpec] = field(default_factory=list)  # declared for this turn: the model still needs them

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Progress:
        _check_version(state)
        try:
            usage = state.get("usage") or {}
            return cls(
                run_id=str(state["run_id"]),
                new=messages_from_dicts(state["messages"]),
                settings=ModelSettings.from_mapping(state.get("settings") or {}),
                text=[str(state.get("text", ""))],
                calls=[_call(c) for c in state.get("tool_calls", ())],
                usage=Usage(**{k: usage[k] for k in USAGE_FIELDS if k in usage}),
                rounds=int(state["rounds"]),
                elapsed=float(state.get("elapsed", 0.0)),
                client_tools=[
                    ToolSpec(name=str(t["name"]), description=str(t.get("description", "")), parameters=t["parameters"])
                    for t in state.get("client_tools", ())
                ],
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ResumeError(f"the paused turn's state is damaged ({type(e).__name__}: {e})") from None


@dataclass(slots=True, kw_only=True)
class Settled:
    """One model response's calls: what each needs, and the results in so far (by position)."""

    calls: list[ToolCall]
    plan: list[Step] = field(default_factory=list)
    results: dict[int, ToolMessage] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.plan:
            self.plan = [True] * len(self.calls)

    @property
    def pending(self) -> tuple[PendingCall, ...]:
        return tuple(step for step in self.plan if isinstance(step, PendingCall))

    def decide(self, approvals: Mapping[str, Decision], outputs: Mapping[str, Any]) -> None:
        """Replace each pending call by its decision (checked beforehand by `check_decisions`)."""
        for i, step in enumerate(self.plan):
            if isinstance(step, PendingCall):
                self.plan[i] = approvals[step.id] if step.kind == "approval" else Output(outputs[step.id])

    def messages(self) -> list[ToolMessage]:
        """The results in the order the model asked for the calls."""
        return [self.results[i] for i in range(len(self.calls))]

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Settled:
        try:
            round_ = state["round"]
            calls = [_call(c) for c in round_["calls"]]
            settled = cls(calls=calls)
            for key, message in round_["results"].items():
                result = message_from_dict(message)
                if not isinstance(result, ToolMessage):
                    raise TypeError("a result is not a tool message")
                settled.results[int(key)] = result
            for entry in round_["pending"]:
                i = int(entry["index"])
                settled.plan[i] = PendingCall(call=calls[i], kind=_kind(entry["kind"]))
            return settled
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise ResumeError(f"the paused turn's state is damaged ({type(e).__name__}: {e})") from None


def pause_state(turn: Progress, settled: Settled, expires_at: float) -> dict[str, Any]:
    """The JSON-ready state of a turn pausing in `settled`'s round."""
    settings = {f.name: getattr(turn.settings, f.name) for f in fields(turn.settings)}
    return {
        "v": STATE_VERSION,
        "run_id": turn.run_id,
        "messages": messages_to_dicts(turn.new),
        "text": "".join(turn.text),
        "tool_calls": [_call_dict(c) for c in turn.calls],
        "usage": {k: getattr(turn.usage, k) for k in USAGE_FIELDS},
        "rounds": turn.rounds,
        "elapsed": turn.elapsed,
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items() if v is not None},
        "client_tools": [
            {"name": t.name, "description": t.description, "parameters": t.parameters} for t in turn.client_tools
        ],
        "round": {
            "calls": [_call_dict(c) for c in settled.calls],
            "results": {str(i): message_to_dict(m) for i, m in settled.results.items()},
            "pending": [
                {"index": i, "kind": step.kind} for i, step in enumerate(settled.plan) if isinstance(step, PendingCall)
            ],
        },
        "expires_at": expires_at,
    }


def pending_of(state: Mapping[str, Any]) -> tuple[PendingCall, ...]:
    """The calls a paused turn waits for, read from its state."""
    return Settled.from_state(state).pending


def check_expiry(state: Mapping[str, Any], now: float | None = None) -> None:
    expires_at = state.get("expires_at")
    if isinstance(expires_at, int | float) and (time.time() if now is None else now) > expires_at:
        raise ApprovalExpiredError(
            "the paused turn waited past its approval timeout and was removed; the history is as it was "
            "before the turn (send the message again to retry)"
        )


@dataclass(frozen=True, slots=True)
class Problem:
    """One way decisions fail a paused turn; each caller words it in its own terms (Python, or wire items)."""

    kind: Literal["unknown_approval", "approval_for_client", "unknown_output", "output_for_approval", "missing"]
    call_id: str
    pending: PendingCall | None = None


def decision_problems(
    pending: Sequence[PendingCall], approvals: Mapping[str, Decision], outputs: Mapping[str, Any]
) -> list[Problem]:
    """What keeps the decisions from answering each pending call once, in the right kind: approvals, outputs, gaps."""
    by_id = {p.id: p for p in pending}
    problems: list[Problem] = []
    for call_id in approvals:
        p = by_id.get(call_id)
        if p is None:
            problems.append(Problem("unknown_approval", call_id))
        elif p.kind != "approval":
            problems.append(Problem("approval_for_client", call_id, p))
    for call_id in outputs:
        p = by_id.get(call_id)
        if p is None:
            problems.append(Problem("unknown_output", call_id))
        elif p.kind != "client":
            problems.append(Problem("output_for_approval", call_id, p))
    problems.extend(Problem("missing", p.id, p) for p in pending if p.id not in approvals and p.id not in outputs)
    return problems


def check_decisions(state: Mapping[str, Any], approvals: Mapping[str, Decision], outputs: Mapping[str, Any]) -> None:
    """`InvalidDecisionsError` unless the decisions answer each pending call, once, in the right kind."""
    _check_version(state)
    pending = pending_of(state)
    problems = [_worded(problem) for problem in decision_problems(pending, approvals, outputs)]
    if problems:
        waiting = ", ".join(f"{p.id} ({p.name}, {p.kind})" for p in pending) or "none"
        raise InvalidDecisionsError(
            "the decisions do not answer the paused turn: " + "; ".join(problems) + f". It waits for: {waiting}"
        )


def _worded(problem: Problem) -> str:
    call_id, p = problem.call_id, problem.pending
    name = p.name if p is not None else ""
    if problem.kind == "unknown_approval":
        return f"{call_id!r} is not a call waiting for approval in this turn"
    if problem.kind == "approval_for_client":
        return f"{call_id!r} is a client tool call ({name}): send its output in outputs"
    if problem.kind == "unknown_output":
        return f"{call_id!r} is not a client tool call waiting in this turn"
    if problem.kind == "output_for_approval":
        return f"{call_id!r} needs an approval ({name}), not an output: send it in approvals"
    where = "approvals" if p is not None and p.kind == "approval" else "outputs"
    return f"{call_id!r} ({name}) has no decision: add it to {where}"


def _check_version(state: Mapping[str, Any]) -> None:
    version = state.get("v")
    if not isinstance(version, int) or version > STATE_VERSION:
        raise ResumeError(
            f"the paused turn's state has format version {version!r}; this createagents reads up to "
            f"{STATE_VERSION}: resume it with the version that paused it, or a newer one"
        )


def _call(data: Mapping[str, Any]) -> ToolCall:
    return ToolCall(id=str(data["id"]), name=str(data["name"]), arguments=str(data.get("arguments", "{}")))


def _call_dict(call: ToolCall) -> dict[str, str]:
    return {"id": call.id, "name": call.name, "arguments": call.arguments}


def _kind(value: Any) -> PendingKind:
    if value == "approval":
        return "approval"
    if value == "client":
        return "client"
    raise ValueError(f"unknown pending kind {value!r}")

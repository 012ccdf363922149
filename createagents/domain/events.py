"""Events: what a model streams (`ModelEvent`) and what a run reports (`RunEvent`).

The `kind` strings are public API. Text, thinking and tool-call deltas are the
same objects in both unions: a run forwards the model's delta as it is, so
the hot path allocates one object per chunk, not two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeAlias

from .messages import AssistantMessage, Message, ProviderItem, ToolCall, Usage
from .pending import Paused


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the answer's text, as it arrives."""

    text: str
    kind: ClassVar[Literal["text_delta"]] = "text_delta"


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    """A piece of a reasoning model's thinking; never part of the answer's text."""

    text: str
    kind: ClassVar[Literal["thinking_delta"]] = "thinking_delta"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallDelta:
    """A fragment of a tool call as the model streams it (for showing a call forming).

    `id` and `name` are set on the fragment that first carries them; `index`
    tells parallel calls apart.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments_delta: str = ""
    kind: ClassVar[Literal["tool_call_delta"]] = "tool_call_delta"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallReady:
    """A complete tool call, assembled by the adapter from its fragments."""

    call: ToolCall
    kind: ClassVar[Literal["tool_call_ready"]] = "tool_call_ready"


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseDone:
    """The model finished this response; the last event of every successful stream."""

    finish_reason: str | None = None
    usage: Usage | None = None
    provider_items: tuple[ProviderItem, ...] = ()  # kept on the assistant message, sent back next turn
    kind: ClassVar[Literal["response_done"]] = "response_done"


@dataclass(frozen=True, slots=True, kw_only=True)
class HostedToolCall:
    """Progress of a tool the provider runs on its side (a web search): shown, never run here.

    `type` is the provider's item type ("web_search_call"), `status` its
    progress ("in_progress", "searching", "completed", "failed"), and `item`
    the provider's whole item (the query, the sources, the code) once known.
    """

    id: str
    type: str
    status: str
    item: dict[str, Any] | None = None
    kind: ClassVar[Literal["hosted_tool_call"]] = "hosted_tool_call"


ModelEvent: TypeAlias = TextDelta | ThinkingDelta | ToolCallDelta | ToolCallReady | HostedToolCall | ResponseDone


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStarted:
    run_id: str
    conversation_id: str
    kind: ClassVar[Literal["run_started"]] = "run_started"


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageStarted:
    """The model starts a response: one assistant message of the run (`index` from 0); deltas follow."""

    index: int
    kind: ClassVar[Literal["message_started"]] = "message_started"


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageCompleted:
    """The model's response is complete: its assistant message (text, thinking, tool calls)."""

    index: int
    message: AssistantMessage
    kind: ClassVar[Literal["message_completed"]] = "message_completed"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallStarted:
    call: ToolCall
    kind: ClassVar[Literal["tool_call_started"]] = "tool_call_started"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallFinished:
    """A tool call ended; `error` is set (and `result` is what the model is told) when it failed."""

    call: ToolCall
    result: str
    duration: float
    error: str | None = None
    kind: ClassVar[Literal["tool_call_finished"]] = "tool_call_finished"

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelCallFinished:
    """One model round trip ended, successfully or not; the source of every model metric."""

    provider: str
    model: str
    conversation_id: str
    latency: float
    time_to_first_token: float | None
    usage: Usage
    tool_calls: int
    finish_reason: str | None = None
    error: str | None = None
    kind: ClassVar[Literal["model_call_finished"]] = "model_call_finished"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFinished:
    """The run answered; `messages` are the turn's messages, now in the history."""

    text: str
    usage: Usage
    tool_calls: tuple[ToolCall, ...]
    messages: tuple[Message, ...]
    duration: float
    output: Any = None  # the validated answer, when the run had an output type
    kind: ClassVar[Literal["run_finished"]] = "run_finished"


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalRequested:
    """A call needs approval before it runs; the turn pauses (after `RunPaused`) until it is decided."""

    call: ToolCall
    turn_id: str
    kind: ClassVar[Literal["approval_requested"]] = "approval_requested"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPaused:
    """The turn waits for approvals or client tool outputs; nothing is in the history yet.

    `text`, `usage` and `tool_calls` hold what the turn did so far;
    `paused.pending` lists what it waits for.
    """

    text: str
    usage: Usage
    tool_calls: tuple[ToolCall, ...]
    paused: Paused
    duration: float
    messages: tuple[Message, ...] = ()
    kind: ClassVar[Literal["run_paused"]] = "run_paused"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFailed:
    """The run stopped with an error, or was cancelled; the history is as it was before the turn.

    A cancelled task, a timeout around the reply, `break` out of its stream or
    `aclose()` all end a run this way, with `error` an `asyncio.CancelledError`.
    """

    error: BaseException
    cancelled: bool = False  # stopped from outside rather than failing
    kind: ClassVar[Literal["run_failed"]] = "run_failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputValidationFailed:
    """The model's answer did not fit the output type: `retrying` when it is asked again, else the run fails."""

    raw: str
    error: str
    attempt: int
    retrying: bool
    kind: ClassVar[Literal["output_validation_failed"]] = "output_validation_failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class NestedEvent:
    """An event of a sub-agent's run that one of this run's tool calls started (`agent.as_tool`).

    `parent_run_id` and `call_id` say which run and call it belongs to;
    `agent` names the sub-agent; `event` is its own event, as it reported it.
    """

    parent_run_id: str
    call_id: str
    agent: str
    event: RunEvent
    kind: ClassVar[Literal["nested_event"]] = "nested_event"


RunEvent: TypeAlias = (
    RunStarted
    | MessageStarted
    | MessageCompleted
    | TextDelta
    | ThinkingDelta
    | ToolCallDelta
    | HostedToolCall
    | ToolCallStarted
    | ToolCallFinished
    | ModelCallFinished
    | ApprovalRequested
    | RunPaused
    | RunFinished
    | RunFailed
    | NestedEvent
    | OutputValidationFailed
)

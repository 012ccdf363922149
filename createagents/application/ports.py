"""The ports the use cases need: the chat model, the conversation store and the run observer.

Adapters implement these; the application never imports an adapter.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..domain.events import ModelEvent, RunEvent
from ..domain.messages import HostedTool, Message, ToolSpec
from ..domain.metrics import MetricsRecord
from ..domain.output import OutputFormat, OutputMode
from ..domain.settings import ModelSettings


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatRequest:
    """Everything one model call needs. New fields get defaults, so adapters never break."""

    model: str
    messages: Sequence[Message]
    tools: Sequence[ToolSpec] = ()
    settings: ModelSettings = field(default_factory=ModelSettings)
    hosted_tools: Sequence[HostedTool] = ()  # run by the provider; only a model whose `hosted_tool_types` has them
    output: OutputFormat | None = None  # the answer's schema, when the run has an output type


class ChatModel(ABC):
    """A model provider: one streaming method; the non-streamed answer is built by draining it.

    `stream` yields text, thinking and tool-call deltas, one `ToolCallReady`
    per complete tool call, and ends with exactly one `ResponseDone`. It raises
    a `ProviderError` subclass when the provider fails, and closes its
    connection when the consumer stops early (`aclose()` on the iterator).
    """

    provider: str = "custom"
    hosted_tool_types: frozenset[str] = frozenset()  # the provider-side tools it can pass through
    output_modes: tuple[OutputMode, ...] = ("tool", "prompted")  # the ways it can be asked for data, best first

    @abstractmethod
    def stream(self, request: ChatRequest) -> AsyncIterator[ModelEvent]:
        """Stream one model response."""

    def check_settings(self, settings: ModelSettings) -> None:
        """Raise `ConfigurationError` for settings this provider cannot honour; called when an agent is built."""

    async def aclose(self) -> None:
        """Release clients and connections; the default has none."""


class ConversationStore(ABC):
    """Where conversation histories live between turns (memory, SQLite, Redis, or yours).

    A turn reads the history once, when it starts (`load`), and when it
    completes adds all its messages with one `append`. `append` must be atomic
    and contiguous: concurrent turns on one conversation (in this process or,
    for a shared store, in others) never interleave their messages and never
    lose one, and a crash or a dropped connection mid-append leaves the
    previous history intact. A failed or cancelled turn calls nothing.
    `createagents.domain.codec` turns messages into versioned JSON and back.

    A paused turn (waiting for approvals or client-side tool outputs) is kept
    beside the history, never in it: `save_paused` stores its state, and
    `take_paused` hands it out exactly once, so a turn cannot be resumed twice.
    """

    @abstractmethod
    async def load(self, conversation_id: str) -> list[Message]:
        """The committed history, oldest first; empty for an unknown id."""

    @abstractmethod
    async def append(self, conversation_id: str, messages: Sequence[Message]) -> None:
        """Add one turn's `messages` after the committed history, in one atomic step."""

    @abstractmethod
    async def clear(self, conversation_id: str) -> None:
        """Forget the history; turns already in flight still append theirs."""

    @abstractmethod
    async def list_ids(self, *, after: str | None = None, limit: int = 100) -> list[str]:
        """Stored conversation ids in ascending order, at most `limit`, each greater than `after` (paging)."""

    async def delete(self, conversation_id: str) -> None:
        """Forget the conversation: its history and its paused turns."""
        await self.clear(conversation_id)
        for turn_id in await self.paused_ids(conversation_id):
            await self.take_paused(conversation_id, turn_id)

    @abstractmethod
    async def save_paused(self, conversation_id: str, turn_id: str, state: Mapping[str, Any]) -> None:
        """Keep a paused turn's state (JSON-ready) until it is taken."""

    @abstractmethod
    async def load_paused(self, conversation_id: str, turn_id: str) -> dict[str, Any] | None:
        """A paused turn's state, left in place; None when there is none. Resuming checks its decisions against it."""

    @abstractmethod
    async def take_paused(self, conversation_id: str, turn_id: str) -> dict[str, Any] | None:
        """Remove and return a paused turn's state atomically; None when there is none (or it was taken)."""

    @abstractmethod
    async def paused_ids(self, conversation_id: str) -> list[str]:
        """Ids of the conversation's paused turns."""

    def hold(self, conversation_id: str) -> None:
        """A turn started on this conversation: a store that evicts must keep it until `release`."""

    def release(self, conversation_id: str) -> None:
        """The turn that called `hold` ended (completed, failed or cancelled)."""

    async def aclose(self) -> None:
        """Release connections; the default has none."""


class RunLog(ABC):
    """Background runs: a status record and a numbered event log per run, shared by every process on the store.

    Records and events are JSON-ready dicts. Only the process running a run
    adds its events, in order; event `n` (0, 1, 2...) is the n-th one added.
    Any process replays a run from any point with `events(after=n)` and
    follows it live by asking again. A record is changed only through
    `update_run`, atomically, so a cancel from one process and a completion
    in another cannot both win.
    """

    @abstractmethod
    async def create_run(self, run_id: str, record: Mapping[str, Any]) -> None:
        """Store a new run's record (its `status` among the fields); the id must be new."""

    @abstractmethod
    async def load_run(self, run_id: str) -> dict[str, Any] | None:
        """The run's record; None for an unknown (or expired, or deleted) run."""

    @abstractmethod
    async def update_run(
        self, run_id: str, changes: Mapping[str, Any], *, statuses: Sequence[str] | None = None
    ) -> dict[str, Any] | None:
        """Merge `changes` into the record, atomically, when its `status` is one of `statuses` (any when None).

        Returns the record as it is after the call, changed or not; None for an unknown run.
        """

    @abstractmethod
    async def add_events(self, run_id: str, events: Sequence[Mapping[str, Any]]) -> int:
        """Append events after the run's last one; returns how many the run has now.

        For an unknown run (deleted, or expired) nothing is stored and it returns 0.
        """

    @abstractmethod
    async def events(self, run_id: str, *, after: int = -1, limit: int = 1000) -> list[dict[str, Any]]:
        """At most `limit` events numbered above `after`, oldest first; empty past the end."""

    @abstractmethod
    async def run_ids(self, *, statuses: Sequence[str]) -> list[str]:
        """Ids of the runs whose status is one of `statuses` (a server looks for runs left behind)."""

    @abstractmethod
    async def delete_run(self, run_id: str) -> None:
        """Forget the run: its record and its events."""


class RunObserver(ABC):
    """Sees the lifecycle events of every run (metrics, logging, tracing).

    Streamed deltas are not sent to observers: they would add a call per
    token on the hot path, and every figure an observer needs is on
    `ModelCallFinished`, `ToolCallFinished`, `RunFinished` and `RunFailed`.
    """

    @abstractmethod
    def observe(self, event: RunEvent) -> None:
        """Called once per lifecycle event, in order, before the consumer sees it; must not raise."""


class MetricsSink(ABC):
    """Receives every metric record as it is made (a store, an exporter, a log)."""

    @abstractmethod
    def record(self, record: MetricsRecord) -> None:
        """Called once per model call and per tool call; must be quick and must not raise."""

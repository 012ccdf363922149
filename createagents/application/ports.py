"""The ports the use cases need: the chat model, the conversation store and the run observer.

Adapters implement these; the application never imports an adapter.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from ..domain.events import ModelEvent, RunEvent
from ..domain.messages import Message, ToolSpec
from ..domain.metrics import MetricsRecord
from ..domain.settings import ModelSettings


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatRequest:
    """Everything one model call needs. New fields get defaults, so adapters never break."""

    model: str
    messages: Sequence[Message]
    tools: Sequence[ToolSpec] = ()
    settings: ModelSettings = field(default_factory=ModelSettings)


class ChatModel(ABC):
    """A model provider: one streaming method; the non-streamed answer is built by draining it.

    `stream` yields text, thinking and tool-call deltas, one `ToolCallReady`
    per complete tool call, and ends with exactly one `ResponseDone`. It raises
    a `ProviderError` subclass when the provider fails, and closes its
    connection when the consumer stops early (`aclose()` on the iterator).
    """

    provider: str = "custom"

    @abstractmethod
    def stream(self, request: ChatRequest) -> AsyncIterator[ModelEvent]:
        """Stream one model response."""

    def check_settings(self, settings: ModelSettings) -> None:
        """Raise `ConfigurationError` for settings this provider cannot honour; called when an agent is built."""

    async def aclose(self) -> None:
        """Release clients and connections; the default has none."""


class ConversationStore(ABC):
    """Where conversation histories live between turns.

    A turn reads the history once, when it starts (`load`), and when it
    completes adds all its messages with one `append`. `append` must be atomic
    and contiguous: concurrent turns on one conversation (in this process or,
    for a shared store, in others) never interleave their messages and never
    lose one. A failed or cancelled turn calls nothing.
    """

    @abstractmethod
    async def load(self, conversation_id: str) -> list[Message]:
        """The committed history, oldest first; empty for an unknown id."""

    @abstractmethod
    async def append(self, conversation_id: str, messages: Sequence[Message], *, max_size: int | None = None) -> None:
        """Add one turn's `messages` after the committed history, in one atomic step.

        With `max_size`, the oldest messages are then dropped by the rule of
        `createagents.domain.history.trim_history`, in the same step.
        """

    @abstractmethod
    async def clear(self, conversation_id: str) -> None:
        """Forget the history; turns already in flight still append theirs."""

    def hold(self, conversation_id: str) -> None:
        """A turn started on this conversation: a store that evicts must keep it until `release`."""

    def release(self, conversation_id: str) -> None:
        """The turn that called `hold` ended (completed, failed or cancelled)."""

    async def aclose(self) -> None:
        """Release connections; the default has none."""


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

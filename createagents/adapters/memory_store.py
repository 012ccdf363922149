"""The default conversation store: histories in this process's memory, bounded.

A server that gives every user a conversation would otherwise keep every
history forever; this store keeps the most recently used ones (LRU) and can
forget idle ones, but never one with a turn in flight.
"""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..application.ports import ConversationStore
from ..domain.errors import ConfigurationError
from ..domain.messages import Message

DEFAULT_MAX_CONVERSATIONS = 10_000


class InMemoryConversationStore(ConversationStore):
    """Histories in a dict; lost when the process ends. Messages are immutable, so sharing is safe.

    `max_conversations` (default 10,000) bounds how many histories are kept:
    the least recently used one is dropped first. `idle_ttl` (seconds, default
    `None`: never) drops a history not read or written for that long. A
    conversation with a turn in flight is never dropped. Every step runs
    without awaiting, so a load or an append is atomic in the event loop.
    """

    def __init__(
        self,
        *,
        max_conversations: int = DEFAULT_MAX_CONVERSATIONS,
        idle_ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(max_conversations, bool) or not isinstance(max_conversations, int) or max_conversations < 1:
            raise ConfigurationError(f"max_conversations must be a whole number >= 1, got {max_conversations!r}")
        if idle_ttl is not None and (
            isinstance(idle_ttl, bool)
            or not isinstance(idle_ttl, int | float)
            or not math.isfinite(idle_ttl)
            or idle_ttl <= 0
        ):
            raise ConfigurationError(f"idle_ttl must be a finite number of seconds > 0 or None, got {idle_ttl!r}")
        self.max_conversations = max_conversations
        self.idle_ttl = idle_ttl
        self._clock = clock
        # id -> (messages, last used); ordered from least to most recently used
        self._histories: OrderedDict[str, tuple[tuple[Message, ...], float]] = OrderedDict()
        self._held: dict[str, int] = {}
        self._paused: dict[str, dict[str, dict[str, Any]]] = {}  # not evicted: a paused turn expires on its own

    def __len__(self) -> int:
        return len(self._histories)

    async def load(self, conversation_id: str) -> list[Message]:
        entry = self._histories.get(conversation_id)
        if entry is None:
            return []
        now = self._clock()
        if self._expired(entry[1], now) and conversation_id not in self._held:
            del self._histories[conversation_id]
            return []
        self._histories[conversation_id] = (entry[0], now)
        self._histories.move_to_end(conversation_id)
        return list(entry[0])

    async def append(self, conversation_id: str, messages: Sequence[Message]) -> None:
        if not messages:
            return
        now = self._clock()
        entry = self._histories.get(conversation_id)
        old: tuple[Message, ...] = () if entry is None else entry[0]
        self._histories[conversation_id] = ((*old, *messages), now)
        self._histories.move_to_end(conversation_id)
        self._evict(now)

    async def clear(self, conversation_id: str) -> None:
        self._histories.pop(conversation_id, None)

    async def list_ids(self, *, after: str | None = None, limit: int = 100) -> list[str]:
        ids = sorted(i for i in {*self._histories, *self._paused} if after is None or i > after)
        return ids[:limit]

    async def save_paused(self, conversation_id: str, turn_id: str, state: Mapping[str, Any]) -> None:
        self._paused.setdefault(conversation_id, {})[turn_id] = json.loads(json.dumps(state))  # a copy, JSON-checked

    async def take_paused(self, conversation_id: str, turn_id: str) -> dict[str, Any] | None:
        turns = self._paused.get(conversation_id)
        if not turns or turn_id not in turns:
            return None
        state = turns.pop(turn_id)
        if not turns:
            del self._paused[conversation_id]
        return state

    async def paused_ids(self, conversation_id: str) -> list[str]:
        return sorted(self._paused.get(conversation_id, ()))

    def hold(self, conversation_id: str) -> None:
        self._held[conversation_id] = self._held.get(conversation_id, 0) + 1

    def release(self, conversation_id: str) -> None:
        count = self._held.get(conversation_id, 0) - 1
        if count > 0:
            self._held[conversation_id] = count
        else:
            self._held.pop(conversation_id, None)

    def _expired(self, last_used: float, now: float) -> bool:
        return self.idle_ttl is not None and now - last_used > self.idle_ttl

    def _evict(self, now: float) -> None:
        """Drop idle histories, then the least recently used ones over the limit, skipping held ones."""
        histories = self._histories
        over = len(histories) - self.max_conversations
        if over <= 0 and self.idle_ttl is None:
            return
        doomed = []
        for conversation_id, (_, last_used) in histories.items():  # oldest first
            expired = self._expired(last_used, now)
            if over <= 0 and not expired:
                break  # the rest were used more recently still
            if conversation_id in self._held:
                continue
            doomed.append(conversation_id)
            over -= 1
        for conversation_id in doomed:
            del histories[conversation_id]

"""The default conversation store: histories, paused turns and background runs in this process's memory, bounded.

A server that gives every user a conversation would otherwise keep every
history forever; this store keeps the most recently used ones (LRU) and can
forget idle ones, but never one with a turn in flight. A paused turn whose
`expires_at` (unix seconds) is more than `PAUSED_GRACE` past is dropped by a
later `save_paused`: the application refuses it anyway, and an abandoned one
must not stay forever. Background runs (`RunLog`) are bounded by
`max_runs`: past it the oldest finished runs go, never a queued or running one.

The run helpers below (validation, JSON, paused-turn deadlines) have exact
copies in the SQLite and Redis stores, so every store refuses the same input alike.
"""

from __future__ import annotations

import copy
import heapq
import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..application.ports import ConversationStore, RunLog
from ..domain.errors import ConfigurationError
from ..domain.messages import Message
from ._runs import (
    ACTIVE_RUN_STATUSES,
    check_run_id,
    check_statuses,
    decode_object,
    decode_objects,
    encode_events,
    encode_json,
    event_window,
    paused_deadline,
    run_changes,
    run_record,
)

DEFAULT_MAX_CONVERSATIONS = 10_000
DEFAULT_MAX_RUNS = 1_000


class InMemoryConversationStore(ConversationStore, RunLog):
    """Histories, paused turns and runs in dicts, lost when the process ends; messages are immutable, so shared safely.

    `max_conversations` (default 10,000) bounds how many histories are kept:
    the least recently used one is dropped first. `idle_ttl` (seconds, default
    `None`: never) drops a history not read or written for that long. A
    conversation with a turn in flight is never dropped. `max_runs` (default
    1,000) bounds the run records: creating one past it drops the oldest
    created runs that are not queued or in progress, with their events. Every
    step runs without awaiting, so each call is atomic in the event loop.
    """

    def __init__(
        self,
        *,
        max_conversations: int = DEFAULT_MAX_CONVERSATIONS,
        idle_ttl: float | None = None,
        max_runs: int = DEFAULT_MAX_RUNS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(max_conversations, bool) or not isinstance(max_conversations, int) or max_conversations < 1:
            raise ConfigurationError(f"max_conversations must be a whole number >= 1, got {max_conversations!r}")
        if isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 1:
            raise ConfigurationError(f"max_runs must be a whole number >= 1, got {max_runs!r}")
        if idle_ttl is not None and (
            isinstance(idle_ttl, bool)
            or not isinstance(idle_ttl, int | float)
            or not math.isfinite(idle_ttl)
            or idle_ttl <= 0
        ):
            raise ConfigurationError(f"idle_ttl must be a finite number of seconds > 0 or None, got {idle_ttl!r}")
        self.max_conversations = max_conversations
        self.idle_ttl = idle_ttl
        self.max_runs = max_runs
        self._clock = clock
        # id -> (messages, last used); ordered from least to most recently used
        self._histories: OrderedDict[str, tuple[tuple[Message, ...], float]] = OrderedDict()
        self._held: dict[str, int] = {}
        self._paused: dict[str, dict[str, dict[str, Any]]] = {}  # not evicted: a paused turn expires on its own
        # (drop after, conversation, turn) of every paused state saved with an `expires_at`, soonest first
        self._deadlines: list[tuple[float, str, str]] = []
        self._runs: dict[str, tuple[str, str]] = {}  # id -> (status, record as JSON), oldest created first
        self._events: dict[str, list[str]] = {}  # id -> its events as JSON, in order

    def __len__(self) -> int:
        return len(self._histories)

    def peek(self, conversation_id: str) -> list[Message]:
        """The history as it is now, read without awaiting (and without counting as a use)."""
        entry = self._histories.get(conversation_id)
        return list(entry[0]) if entry is not None else []

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
        copied = json.loads(json.dumps(state))  # a copy, JSON-checked
        self._drop_abandoned(time.time())
        self._paused.setdefault(conversation_id, {})[turn_id] = copied
        deadline = paused_deadline(copied)
        if deadline is not None:
            heapq.heappush(self._deadlines, (deadline, conversation_id, turn_id))

    async def load_paused(self, conversation_id: str, turn_id: str) -> dict[str, Any] | None:
        state = self._paused.get(conversation_id, {}).get(turn_id)
        return None if state is None else copy.deepcopy(state)

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

    # -- runs ----------------------------------------------------------------------------------------------------

    async def create_run(self, run_id: str, record: Mapping[str, Any]) -> None:
        check_run_id(run_id)
        status, text = run_record(record)
        if run_id in self._runs:
            raise ConfigurationError(f"a run with id {run_id!r} exists already; a new run needs a new id")
        self._runs[run_id] = (status, text)
        self._events[run_id] = []
        self._evict_runs(keep=run_id)

    async def load_run(self, run_id: str) -> dict[str, Any] | None:
        entry = self._runs.get(run_id)
        return None if entry is None else decode_object(entry[1])

    async def update_run(
        self, run_id: str, changes: Mapping[str, Any], *, statuses: Sequence[str] | None = None
    ) -> dict[str, Any] | None:
        wanted = check_statuses(statuses)
        new = run_changes(changes)
        entry = self._runs.get(run_id)
        if entry is None:
            return None
        record = decode_object(entry[1])
        if new and (wanted is None or entry[0] in wanted):
            record.update(new)
            self._runs[run_id] = (record["status"], encode_json(record))
        return record

    async def add_events(self, run_id: str, events: Sequence[Mapping[str, Any]]) -> int:
        encoded = encode_events(events)
        log = self._events.get(run_id)
        if log is None:  # deleted, or never created: nothing to add to
            return 0
        log.extend(encoded)
        return len(log)

    async def events(self, run_id: str, *, after: int = -1, limit: int = 1000) -> list[dict[str, Any]]:
        start, stop = event_window(after, limit)
        return decode_objects(self._events.get(run_id, [])[start:stop])

    async def run_ids(self, *, statuses: Sequence[str]) -> list[str]:
        wanted = check_statuses(statuses) or ()
        return sorted(run_id for run_id, (status, _) in self._runs.items() if status in wanted)

    async def delete_run(self, run_id: str) -> None:
        self._runs.pop(run_id, None)
        self._events.pop(run_id, None)

    def _evict_runs(self, keep: str) -> None:
        """Past `max_runs`, drop the oldest created runs that are finished (never a running one, nor `keep`)."""
        over = len(self._runs) - self.max_runs
        if over <= 0:
            return
        doomed = []
        for run_id, (status, _) in self._runs.items():  # oldest first
            if status in ACTIVE_RUN_STATUSES or run_id == keep:
                continue
            doomed.append(run_id)
            if len(doomed) == over:
                break
        for run_id in doomed:
            del self._runs[run_id]
            del self._events[run_id]

    def _drop_abandoned(self, now: float) -> None:
        """Drop the paused states whose `expires_at` is more than `PAUSED_GRACE` past (a state saved again with
        another `expires_at` has its own entry; the stale one finds it changed and leaves it)."""
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] < now:
            _, conversation_id, turn_id = heapq.heappop(deadlines)
            turns = self._paused.get(conversation_id)
            state = None if turns is None else turns.get(turn_id)
            if turns is None or state is None:
                continue  # taken already
            deadline = paused_deadline(state)
            if deadline is None or deadline >= now:
                continue  # saved again since, with a later deadline or none
            del turns[turn_id]
            if not turns:
                del self._paused[conversation_id]

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

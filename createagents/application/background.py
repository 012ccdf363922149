"""Background runs: a turn that outlives the request that started it.

The turn runs in a task this process owns; its events are numbered and appended
to the `RunLog`, beside a status record. Any process sharing the store reads the
record, replays the events after a sequence number, follows the run live and
cancels it: the log is the truth, the task only writes to it.

Each run has two tasks here. The *pump* consumes the reply and only fills a
buffer, so cancelling it (which closes the provider stream and commits nothing)
can never cut a store write in half. The *driver* (the task kept in the set)
writes the buffer in batches (every `poll` seconds, or at once past 256 events,
so a token stream costs one store write per batch, not per token), refreshes
the record's `heartbeat_at` every `heartbeat` seconds, stops the pump when the
record says the run was cancelled elsewhere, and writes the outcome.

Record fields: `id`, `status` (queued, in_progress, then one of `TERMINAL`),
`owner`, `created_at`, `heartbeat_at` (unix seconds), the caller's own fields,
and at the end what `finish` adds (`result` or `error` by default), `paused`
for a turn that paused, `incomplete_details` for an incomplete run, and
`event_count`: written once the log is closed, it tells followers elsewhere
that no event will come after the last one.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import platform
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import aclosing
from typing import Any

from ..domain.codec import messages_to_dicts
from ..domain.errors import (
    AgentClosedError,
    ConfigurationError,
    InvalidSequenceError,
    RunNotActiveError,
    RunNotFoundError,
)
from ..domain.events import (
    ApprovalRequested,
    HostedToolCall,
    MessageCompleted,
    MessageStarted,
    ModelCallFinished,
    NestedEvent,
    OutputValidationFailed,
    RunEvent,
    RunFailed,
    RunFinished,
    RunPaused,
    RunStarted,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from ..domain.messages import USAGE_FIELDS, ToolCall, Usage
from ..domain.pending import Paused
from .ports import RunLog
from .reply import Reply

ACTIVE = ("queued", "in_progress")
TERMINAL = ("completed", "failed", "cancelled", "incomplete")
BATCH = 256
"""Buffered events that make the driver write at once instead of waiting for the next `poll`."""
PAGE = 1000
"""Events read from the log per call when replaying."""

Encoder = Callable[[RunEvent], Sequence[dict[str, Any]]]
"""JSON-ready log events for one run event (may be empty); each call returns new dicts (they get numbered)."""
Finish = Callable[[RunEvent | None, BaseException | None], Mapping[str, Any]]
"""Record fields for a run's end, from its last event and its error (None when it did not fail)."""

_log = logging.getLogger("createagents")
_FIRST = asyncio.FIRST_COMPLETED


# -- events as JSON ----------------------------------------------------------------------------------------------


def usage_dict(usage: Usage) -> dict[str, Any]:
    return {name: getattr(usage, name) for name in USAGE_FIELDS}


def call_dict(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "name": call.name, "arguments": call.arguments}


def paused_dict(paused: Paused, *, state: bool = False) -> dict[str, Any]:
    """What a paused turn waits for; with `state`, a stateless turn's resumable state too (it lives nowhere else)."""
    out: dict[str, Any] = {
        "id": paused.id,
        "conversation_id": paused.conversation_id,
        "expires_at": paused.expires_at,
        "pending": [{**call_dict(p.call), "kind": p.kind} for p in paused.pending],
    }
    if state and paused.state is not None:
        out["state"] = dict(paused.state)
    return out


def _outcome(e: RunFinished | RunPaused) -> dict[str, Any]:
    return {"text": e.text, "usage": usage_dict(e.usage), "tool_calls": [call_dict(c) for c in e.tool_calls]}


def encode_event(event: RunEvent) -> list[dict[str, Any]]:
    """The default encoder: `{"type": event.kind, ...its fields as JSON}`; an unknown kind is `{"type": kind}`."""
    if type(event) is TextDelta:  # the hot path: one per token
        return [{"type": "text_delta", "text": event.text}]
    out: dict[str, Any]
    match event:
        case ThinkingDelta():
            out = {"type": event.kind, "text": event.text}
        case ToolCallDelta():
            out = {"type": event.kind, "index": event.index, "id": event.id, "name": event.name}
            out["arguments_delta"] = event.arguments_delta
        case RunStarted():
            out = {"type": event.kind, "run_id": event.run_id, "conversation_id": event.conversation_id}
        case OutputValidationFailed():
            out = {"type": event.kind, "raw": event.raw, "error": event.error, "attempt": event.attempt}
            out["retrying"] = event.retrying
        case NestedEvent():
            out = {"type": event.kind, "parent_run_id": event.parent_run_id, "call_id": event.call_id}
            out.update(agent=event.agent, event=encode_event(event.event)[0])
        case MessageStarted():
            out = {"type": event.kind, "index": event.index}
        case MessageCompleted():
            out = {"type": event.kind, "index": event.index, "message": messages_to_dicts([event.message])[0]}
        case HostedToolCall():
            out = {"type": event.kind, "id": event.id, "tool_type": event.type, "status": event.status}
            out["item"] = event.item
        case ToolCallStarted():
            out = {"type": event.kind, "call": call_dict(event.call)}
        case ToolCallFinished():
            out = {"type": event.kind, "call": call_dict(event.call), "result": event.result}
            out.update(duration=event.duration, error=event.error)
        case ModelCallFinished():
            out = {"type": event.kind, "provider": event.provider, "model": event.model}
            out.update(
                conversation_id=event.conversation_id,
                latency=event.latency,
                time_to_first_token=event.time_to_first_token,
                usage=usage_dict(event.usage),
                tool_calls=event.tool_calls,
                finish_reason=event.finish_reason,
                error=event.error,
            )
        case ApprovalRequested():
            out = {"type": event.kind, "call": call_dict(event.call), "turn_id": event.turn_id}
        case RunPaused():
            out = {"type": event.kind, **_outcome(event), "duration": event.duration}
            out["paused"] = paused_dict(event.paused)
        case RunFinished():
            out = {"type": event.kind, **_outcome(event), "duration": event.duration}
            out["messages"] = messages_to_dicts(event.messages)
        case RunFailed():
            out = {"type": event.kind, "error": str(event.error), "error_type": type(event.error).__name__}
            out["cancelled"] = event.cancelled
        case _:
            out = {"type": getattr(event, "kind", type(event).__name__)}
    return [out]


def default_finish(last: RunEvent | None, error: BaseException | None) -> dict[str, Any]:
    """`{"error": {"message", "type"}}` for a failure, `{"result": {"text", "usage", "tool_calls"}}` for an answer.

    A cancellation adds nothing: the status says it all.
    """
    if error is not None:
        if isinstance(error, asyncio.CancelledError):
            return {}
        return {"error": {"message": str(error), "type": type(error).__name__}}
    if type(last) is RunFinished or type(last) is RunPaused:
        return {"result": _outcome(last)}
    return {}


# -- the runs ----------------------------------------------------------------------------------------------------


class _Run:
    """What this process knows of a run it drives; the log has the rest."""

    __slots__ = (
        "buffer",
        "count",
        "error",
        "flushed",
        "flushed_signal",
        "id",
        "last",
        "overflow",
        "pump",
        "stopping",
        "task",
        "wake",
    )

    def __init__(self, run_id: str) -> None:
        self.id = run_id
        self.buffer: list[dict[str, Any]] = []  # numbered, not written yet
        self.count = 0  # events numbered so far
        self.flushed = 0  # events written to the log
        self.last: RunEvent | None = None
        self.error: BaseException | None = None
        self.overflow = False  # more than `max_events`
        self.pump: asyncio.Task[None] | None = None
        self.task: asyncio.Task[None] | None = None
        self.wake: asyncio.Future[None] | None = None  # the driver waits on it for events to write
        self.flushed_signal = asyncio.Event()  # set, and replaced, on every write: local followers wait on it
        self.stopping = False


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return float(value)


class BackgroundRuns:
    """Starts turns in tasks of this process and serves any run on the shared `RunLog`.

    `owner` names this process in the records it creates (default: host, pid
    and a random suffix). `max_events` bounds a run's log: past it the run stops
    as `incomplete`. `heartbeat` (seconds) is how often a running run proves its
    owner alive, and how soon it notices a cancel from another process;
    `stale_after` is how old a heartbeat must be for `recover` to call its run
    abandoned; `poll` is how long the owner gathers events into one write, and
    how often a follower of another process's run asks the log again.
    """

    def __init__(
        self,
        log: RunLog,
        *,
        owner: str | None = None,
        max_events: int = 100_000,
        heartbeat: float = 5.0,
        stale_after: float = 30.0,
        poll: float = 0.05,
    ) -> None:
        if not isinstance(log, RunLog):
            raise ConfigurationError(f"background runs need a store that keeps runs (a RunLog), got {log!r}")
        if isinstance(max_events, bool) or not isinstance(max_events, int) or max_events < 1:
            raise ConfigurationError(f"max_events must be a whole number >= 1, got {max_events!r}")
        self.heartbeat = _positive("heartbeat", heartbeat)
        self.stale_after = _positive("stale_after", stale_after)
        self.poll = _positive("poll", poll)
        if self.stale_after <= self.heartbeat:
            raise ConfigurationError(
                f"stale_after ({stale_after}) must exceed heartbeat ({heartbeat}), or live runs would look abandoned"
            )
        if owner is not None and (not isinstance(owner, str) or not owner):
            raise ConfigurationError(f"owner must be a non-empty string, got {owner!r}")
        self.log = log
        self.owner = owner or f"{platform.node() or 'host'}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.max_events = max_events
        self._runs: dict[str, _Run] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- starting ------------------------------------------------------------------------------------------------

    async def start(
        self,
        run_id: str,
        make_reply: Callable[[], Reply],
        *,
        record: Mapping[str, Any] | None = None,
        encode: Encoder = encode_event,
        finish: Finish | None = None,
    ) -> dict[str, Any]:
        """Create the run's record (queued) and start its task; returns the record.

        `make_reply` is called in the task: an error it raises (bad input) fails
        the run. `record` adds fields of the caller's to the record; `encode`
        turns each run event into log events; `finish` gives the fields the
        record takes at the end (see `default_finish`).
        """
        self._check_open()
        if run_id in self._runs:
            raise ConfigurationError(f"a run with id {run_id!r} exists already; a new run needs a new id")
        now = time.time()
        created: dict[str, Any] = {
            "id": run_id,
            "status": "queued",
            "owner": self.owner,
            "created_at": now,
            "heartbeat_at": now,
            **(record or {}),
        }
        created["id"], created["status"] = run_id, "queued"
        await self.log.create_run(run_id, created)
        if self._closed:  # closed while the record was written: it never runs
            await self.log.update_run(
                run_id, {"status": "incomplete", "incomplete_details": {"reason": "shutdown"}}, statuses=ACTIVE
            )
            self._check_open()
        run = self._runs[run_id] = _Run(run_id)
        task = asyncio.create_task(self._drive(run, make_reply, encode, finish or default_finish))
        run.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return created

    def _check_open(self) -> None:
        if self._closed:
            raise AgentClosedError("these background runs were closed (aclose); they start no new run")

    # -- reading -------------------------------------------------------------------------------------------------

    async def get(self, run_id: str) -> dict[str, Any]:
        """The run's record, as the store has it now."""
        record = await self.log.load_run(run_id)
        if record is None:
            raise RunNotFoundError(f"no background run has the id {run_id!r}")
        return record

    async def events(self, run_id: str, *, after: int = -1) -> AsyncIterator[dict[str, Any]]:
        """Every event numbered above `after`, then the run's new ones as they come, until it ended and all were sent.

        A run of this process wakes its followers on each write; a run of another
        process is asked for every `poll` seconds. Errors come at the first
        iteration: `RunNotFoundError`, and `InvalidSequenceError` for an `after`
        past the end of a finished run.
        """
        if isinstance(after, bool) or not isinstance(after, int) or after < -1:
            raise InvalidSequenceError(f"starting_after must be a whole number >= -1, got {after!r}")
        if run_id not in self._runs:
            record = await self.get(run_id)
            if record.get("status") in TERMINAL:
                count = await self._final_count(run_id, record)
                if count is not None and after > count - 1:
                    raise InvalidSequenceError(f"starting_after {after} is beyond the last event {count - 1}")
        log, final = self.log, False
        while True:
            run = self._runs.get(run_id)
            if run is not None and after >= run.flushed - 1:  # running here, all written was sent: wait for more
                await run.flushed_signal.wait()
                continue
            batch = await log.events(run_id, after=after, limit=PAGE)
            if batch:
                for event in batch:
                    yield event
                after += len(batch)
                continue
            if run_id in self._runs:  # written here, yet not in the log: deleted?
                await self.get(run_id)
                await asyncio.sleep(self.poll)
                continue
            if final:  # read again after the record said the log was closed: nothing more
                return
            record = await self.get(run_id)
            if record.get("status") in TERMINAL and await self._final_count(run_id, record) is not None:
                final = True  # the owner writes its last events before the record: read once more
                continue
            await asyncio.sleep(self.poll)

    async def _final_count(self, run_id: str, record: Mapping[str, Any]) -> int | None:
        """How many events a finished run has, once its log is closed; None while its owner may still write."""
        count = record.get("event_count")
        if isinstance(count, int) and not isinstance(count, bool):
            return count
        if self._stale(record):  # the owner is gone (`recover` writes no count when the store failed)
            return await self._count_events(run_id)
        return None

    async def _count_events(self, run_id: str) -> int:
        """The number of events in the log, in O(log n) one-event reads: the port has no count."""

        async def has(n: int) -> bool:
            return bool(await self.log.events(run_id, after=n - 1, limit=1))

        if not await has(0):
            return 0
        low, high = 0, 1  # has(low), and high is to be tried
        while await has(high):
            low, high = high, high * 2
        while high - low > 1:
            middle = (low + high) // 2
            if await has(middle):
                low = middle
            else:
                high = middle
        return high

    def _stale(self, record: Mapping[str, Any]) -> bool:
        beat = record.get("heartbeat_at", record.get("created_at"))
        if isinstance(beat, bool) or not isinstance(beat, int | float):
            return True
        return time.time() - beat > self.stale_after

    # -- stopping ------------------------------------------------------------------------------------------------

    async def cancel(self, run_id: str) -> dict[str, Any]:
        """Mark an active run cancelled (atomically) and stop it: here at once, in another process at its heartbeat.

        The reply closes its provider stream and commits nothing. An already
        cancelled run's record comes back as it is; `RunNotActiveError` for one
        that ended otherwise.
        """
        run = self._runs.get(run_id)
        if run is not None and run.task is not None and self._answered(run):
            await asyncio.wait([run.task])  # the turn is committed already: its own outcome stands
        record = await self.log.update_run(run_id, {"status": "cancelled"}, statuses=ACTIVE)
        if record is None:
            raise RunNotFoundError(f"no background run has the id {run_id!r}")
        status = record.get("status")
        if status != "cancelled":
            raise RunNotActiveError(f"run {run_id!r} is {status}; only a queued or in-progress run can be cancelled")
        run = self._runs.get(run_id)
        if run is not None:
            self._stop(run)
        return record

    @staticmethod
    def _answered(run: _Run) -> bool:
        return (
            (run.pump is not None and run.pump.done()) or type(run.last) is RunFinished or type(run.last) is RunPaused
        )

    def _stop(self, run: _Run) -> None:
        run.stopping = True
        if run.pump is not None and not run.pump.done():
            run.pump.cancel()

    async def recover(self) -> list[str]:
        """Mark `incomplete` the active runs whose heartbeat is older than `stale_after` (their process died).

        A run with a fresh heartbeat belongs to a live process and is left
        alone. Returns the ids marked. Call it at start and every `stale_after`.
        """
        marked = []
        for run_id in await self.log.run_ids(statuses=ACTIVE):
            if run_id in self._runs:
                continue
            record = await self.log.load_run(run_id)
            if record is None or record.get("status") not in ACTIVE or not self._stale(record):
                continue
            changes = {
                "status": "incomplete",
                "incomplete_details": {"reason": "interrupted"},
                "event_count": await self._count_events(run_id),
            }
            after = await self.log.update_run(run_id, changes, statuses=ACTIVE)
            if after is not None and after.get("incomplete_details") == changes["incomplete_details"]:
                marked.append(run_id)
        return marked

    async def aclose(self) -> None:
        """Stop this process's runs, marking them `incomplete` (reason "shutdown"), and wait for their tasks."""
        self._closed = True
        for run in list(self._runs.values()):
            try:
                await self.log.update_run(
                    run.id, {"status": "incomplete", "incomplete_details": {"reason": "shutdown"}}, statuses=ACTIVE
                )
            except Exception:
                _log.warning("background run %s: could not mark it incomplete at shutdown", run.id, exc_info=True)
            self._stop(run)
        if self._tasks:
            await asyncio.wait(list(self._tasks))

    # -- the tasks -----------------------------------------------------------------------------------------------

    async def _drive(self, run: _Run, make_reply: Callable[[], Reply], encode: Encoder, finish: Finish) -> None:
        """The run's task: start the pump, write its events and heartbeats, then the outcome."""
        interrupted: asyncio.CancelledError | None = None
        store_error: Exception | None = None
        try:
            started = await self.log.update_run(
                run.id, {"status": "in_progress", "heartbeat_at": time.time()}, statuses=("queued",)
            )
            if started is not None and started.get("status") == "in_progress" and not run.stopping:
                run.pump = asyncio.create_task(self._pump(run, make_reply, encode))
                await self._tend(run, run.pump)
        except asyncio.CancelledError as e:  # the event loop is going away
            interrupted = e
        except Exception as e:
            store_error = e
            _log.warning("background run %s: the store failed; stopping the run", run.id, exc_info=True)
        try:
            pump = run.pump
            if pump is not None and not pump.done():
                pump.cancel()
                await asyncio.wait([pump])
            await self._close(run, finish, store_error)
        except asyncio.CancelledError as e:
            interrupted = interrupted or e
        except Exception:
            _log.warning("background run %s: could not record its end", run.id, exc_info=True)
        finally:
            del self._runs[run.id]
            run.flushed_signal.set()  # local followers go on reading the log
        if interrupted is not None:
            raise interrupted

    async def _pump(self, run: _Run, make_reply: Callable[[], Reply], encode: Encoder) -> None:
        """Consume the reply into the buffer. No store I/O here: cancelling this task cuts no write in half."""
        limit = self.max_events
        try:
            events = make_reply().events()
        except Exception as e:  # bad input: a failed run, with its run_failed event
            run.error = e
            try:
                self._number(run, encode(RunFailed(error=e)))
            except Exception:
                _log.warning("background run %s: could not encode its failure", run.id, exc_info=True)
            return
        try:
            async with aclosing(events):
                async for event in events:
                    run.last = event
                    items = encode(event)
                    if not items:
                        continue
                    count = run.count
                    if count + len(items) > limit:
                        run.overflow = True
                        break  # closing the reply closes the provider stream; nothing is committed
                    for item in items:
                        item["sequence_number"] = count
                        count += 1
                    run.count = count
                    buffer = run.buffer
                    buffer.extend(items)
                    size = len(buffer)
                    if size == len(items) or size >= BATCH:  # the first event to write, or a full batch
                        wake = run.wake
                        if wake is not None and not wake.done():
                            wake.set_result(None)
        except (Exception, asyncio.CancelledError) as e:  # a cancellation ends the run here, with its run_failed
            run.error = e

    @staticmethod
    def _number(run: _Run, items: Sequence[dict[str, Any]]) -> None:
        for item in items:
            item["sequence_number"] = run.count
            run.count += 1
        run.buffer.extend(items)

    async def _tend(self, run: _Run, pump: asyncio.Task[None]) -> None:
        """While the pump runs: write its events in batches and keep the heartbeat; the last batch goes in `_close`."""
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + self.heartbeat
        while not pump.done():
            if not run.buffer:  # wait for an event, or the heartbeat
                run.wake = loop.create_future()
                await asyncio.wait((pump, run.wake), timeout=max(0.0, next_beat - loop.time()), return_when=_FIRST)
            if run.buffer and len(run.buffer) < BATCH and not pump.done():  # let the batch fill
                run.wake = loop.create_future()
                await asyncio.wait((pump, run.wake), timeout=self.poll, return_when=_FIRST)
            if run.buffer and not pump.done():
                await self._flush(run)
            if loop.time() >= next_beat and not pump.done():
                record = await self.log.update_run(run.id, {"heartbeat_at": time.time()}, statuses=ACTIVE)
                if record is None or record.get("status") not in ACTIVE:  # cancelled elsewhere, or deleted
                    self._stop(run)
                next_beat = loop.time() + self.heartbeat

    async def _flush(self, run: _Run) -> None:
        batch, run.buffer = run.buffer, []
        total = await self.log.add_events(run.id, batch)
        run.flushed += len(batch)
        signal, run.flushed_signal = run.flushed_signal, asyncio.Event()
        signal.set()
        if total < run.flushed:  # the run was deleted: stop writing into nothing
            self._stop(run)

    async def _close(self, run: _Run, finish: Finish, store_error: Exception | None) -> None:
        """Write the last events, then the outcome: status (if still active), `finish`'s fields, `event_count`."""
        if store_error is not None:  # the log may lack a batch: no `event_count`, and followers stop when it is stale
            await self.log.update_run(
                run.id, {**default_finish(None, store_error), "status": "failed"}, statuses=ACTIVE
            )
            return
        if run.buffer:
            await self._flush(run)
        closed = {"event_count": run.count}
        record: dict[str, Any] | None
        if run.pump is None:  # never started: cancelled or shut down while queued (the status says so already)
            record = await self.log.load_run(run.id)
        else:
            error = run.error
            if error is None and run.pump.cancelled():  # cancelled before it ever ran
                error = run.error = asyncio.CancelledError()
            ending: dict[str, Any] = {"status": "completed"}
            if run.overflow:
                ending = {"status": "incomplete", "incomplete_details": {"reason": "max_events"}}
            elif error is not None:
                ending["status"] = "cancelled" if isinstance(error, asyncio.CancelledError) else "failed"
            elif type(run.last) is RunPaused:
                ending["paused"] = paused_dict(run.last.paused, state=True)
            try:
                fields = dict(finish(run.last, error))
                record = await self.log.update_run(run.id, {**fields, **ending, **closed}, statuses=ACTIVE)
            except Exception:  # `finish` failed, or gave what is not JSON: the default fields instead
                _log.warning("background run %s: its finish fields were refused", run.id, exc_info=True)
                fields = default_finish(run.last, error)
                record = await self.log.update_run(run.id, {**fields, **ending, **closed}, statuses=ACTIVE)
        if record is not None and record.get("event_count") != run.count:
            # someone else ended it first (cancel, shutdown): still close the log for the followers
            await self.log.update_run(run.id, closed)


class BackgroundRun:
    """A handle on one background run, by id: from the agent that started it or any agent on the same store."""

    __slots__ = ("id", "runs")

    def __init__(self, runs: BackgroundRuns, run_id: str) -> None:
        self.runs = runs
        self.id = run_id

    def __repr__(self) -> str:
        return f"BackgroundRun(id={self.id!r})"

    async def record(self) -> dict[str, Any]:
        """The run's record as the store has it now: `status`, and at the end `result`, `error` or `paused`."""
        return await self.runs.get(self.id)

    def events(self, *, after: int = -1) -> AsyncIterator[dict[str, Any]]:
        """The run's events numbered above `after` (`sequence_number`), then the new ones live, until it ends."""
        return self.runs.events(self.id, after=after)

    async def cancel(self) -> dict[str, Any]:
        """Cancel the run if it is active; the turn commits nothing. Returns the record."""
        return await self.runs.cancel(self.id)

    async def wait(self) -> dict[str, Any]:
        """Follow the run to its end; its final record."""
        async with aclosing(self.events()) as events:  # type: ignore[type-var]
            async for _ in events:
                pass
        return await self.record()

"""Background runs on every store (memory, SQLite, a real redis-server), the replica on a second store object."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from createagents import CreateAgent, Message, ResponseDone, ToolSpec, Usage
from createagents.application.background import BackgroundRuns
from createagents.application.ports import ConversationStore, RunLog
from createagents.testing import FunctionModel


def twin(store: ConversationStore, request: pytest.FixtureRequest) -> ConversationStore:
    """A second store object on the same data, as another process would have (memory has only the one)."""
    from createagents.adapters.redis_store import RedisConversationStore
    from createagents.adapters.sqlite_store import SQLiteConversationStore

    if isinstance(store, SQLiteConversationStore):
        return SQLiteConversationStore(store.path)
    if isinstance(store, RedisConversationStore):
        return RedisConversationStore(request.getfixturevalue("redis_url"), prefix=store.prefix)
    return store


@pytest.fixture
async def replica_store(store: ConversationStore, request: pytest.FixtureRequest) -> AsyncIterator[ConversationStore]:
    other = twin(store, request)
    try:
        yield other
    finally:
        if other is not store:
            await other.aclose()


def log_of(store: ConversationStore) -> RunLog:
    assert isinstance(store, RunLog)
    return store


class Words:
    """A model streaming `n` words, `delay` apart; notes when it started and when its stream was closed."""

    def __init__(self, n: int, delay: float) -> None:
        self.n, self.delay = n, delay
        self.started, self.closed = asyncio.Event(), asyncio.Event()

    async def stream(self, messages: list[Message], tools: list[ToolSpec]) -> AsyncIterator[object]:
        try:
            for i in range(self.n):
                if i == 2:
                    self.started.set()
                yield f"w{i} "
                await asyncio.sleep(self.delay)
            yield ResponseDone(finish_reason="stop", usage=Usage(completion_tokens=self.n))
        except (GeneratorExit, asyncio.CancelledError):  # closed, or cancelled while it waited
            self.closed.set()
            raise


async def drain(runs: BackgroundRuns, run_id: str, after: int = -1) -> list[dict[str, Any]]:
    return [e async for e in runs.events(run_id, after=after)]


def numbered(events: list[dict[str, Any]], first: int = 0) -> bool:
    return [e["sequence_number"] for e in events] == list(range(first, first + len(events)))


async def test_a_run_followed_here_and_from_another_replica(
    store: ConversationStore, replica_store: ConversationStore
) -> None:
    owner = BackgroundRuns(log_of(store), poll=0.01)
    replica = BackgroundRuns(log_of(replica_store), poll=0.01)
    conversation = CreateAgent(provider=FunctionModel(Words(80, 0.003).stream), store=store).conversation("c")
    await owner.start("r", lambda: conversation.chat("go"), record={"model": "words"})
    here, there, rest = await asyncio.gather(drain(owner, "r"), drain(replica, "r"), drain(replica, "r", 9))
    assert numbered(here) and here == there and rest == here[10:]
    assert here[0]["type"] == "run_started" and here[-1]["type"] == "run_finished"
    record = await replica.get("r")
    assert record["status"] == "completed" and record["event_count"] == len(here) and record["model"] == "words"
    assert record["result"]["text"] == "".join(f"w{i} " for i in range(80))
    assert len(await replica_store.load("c")) == 2
    await owner.aclose()


async def test_cancel_from_another_replica(store: ConversationStore, replica_store: ConversationStore) -> None:
    owner = BackgroundRuns(log_of(store), heartbeat=0.1, stale_after=1.0)
    replica = BackgroundRuns(log_of(replica_store), poll=0.01)
    model = Words(1000, 0.01)
    conversation = CreateAgent(provider=FunctionModel(model.stream), store=store).conversation("c")
    await owner.start("r", lambda: conversation.chat("go"))
    await model.started.wait()
    assert (await replica.cancel("r"))["status"] == "cancelled"
    await asyncio.wait_for(model.closed.wait(), 1.0)
    events = await drain(replica, "r")
    assert numbered(events) and events[-1]["type"] == "run_failed" and events[-1]["cancelled"] is True
    assert (await replica.get("r"))["event_count"] == len(events)
    assert await replica_store.load("c") == []


async def test_recover_marks_the_runs_of_a_dead_process(store: ConversationStore) -> None:
    log = log_of(store)
    await log.create_run("dead", {"id": "dead", "status": "in_progress", "heartbeat_at": time.time() - 60})
    await log.add_events("dead", [{"type": "x", "sequence_number": i} for i in range(5)])
    runs = BackgroundRuns(log)
    assert await runs.recover() == ["dead"]
    record = await runs.get("dead")
    assert record["status"] == "incomplete" and record["incomplete_details"] == {"reason": "interrupted"}
    assert record["event_count"] == 5 and len(await drain(runs, "dead")) == 5


async def test_replaying_ten_thousand_events(store: ConversationStore, replica_store: ConversationStore) -> None:
    owner = BackgroundRuns(log_of(store))
    text = "word " * 10_000
    began = time.perf_counter()
    await owner.start("r", lambda: CreateAgent(provider=FunctionModel(lambda m, t: text), store=store).chat("go"))
    total = len(await drain(owner, "r"))
    ran = time.perf_counter() - began
    replica = BackgroundRuns(log_of(replica_store))
    timings = []
    for after in (-1, 4_999):
        began = time.perf_counter()
        events = await drain(replica, "r", after)
        timings.append(time.perf_counter() - began)
        assert numbered(events, after + 1) and len(events) == total - after - 1
    print(
        f"\n{type(store).__name__}: ran {total} events in {ran * 1000:.0f} ms; replayed all in "
        f"{timings[0] * 1000:.0f} ms, the second half in {timings[1] * 1000:.0f} ms"
    )
    assert total > 10_000 and timings[0] < 2.0

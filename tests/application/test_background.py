"""Background runs on real agents and the real in-memory store: numbering, replay, following, cancel, recovery."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from createagents import (
    ConfigurationError,
    CreateAgent,
    InMemoryConversationStore,
    Message,
    ProviderUnavailableError,
    ResponseDone,
    RunFailed,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
)
from createagents.application.background import (
    ACTIVE,
    TERMINAL,
    BackgroundRuns,
    encode_event,
)
from createagents.application.ports import RunLog
from createagents.application.reply import Reply
from createagents.domain.errors import (
    AgentClosedError,
    InvalidSequenceError,
    RunNotActiveError,
    RunNotFoundError,
)
from createagents.testing import FunctionModel


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class CountingStore(InMemoryConversationStore):
    """The real memory store, counting the calls a test wants to bound (not a mock: every call goes through)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.writes = 0

    async def events(self, run_id: str, *, after: int = -1, limit: int = 1000) -> list[dict[str, Any]]:
        self.reads += 1
        return await super().events(run_id, after=after, limit=limit)

    async def add_events(self, run_id: str, events: Any) -> int:
        self.writes += 1
        return await super().add_events(run_id, events)


class TimedStore(InMemoryConversationStore):
    """The real memory store, noting when each event was written."""

    def __init__(self) -> None:
        super().__init__()
        self.written: dict[int, float] = {}

    async def add_events(self, run_id: str, events: Any) -> int:
        total = await super().add_events(run_id, events)
        now = time.perf_counter()
        self.written.update((e["sequence_number"], now) for e in events)
        return total


class Words:
    """A model streaming `n` words, `delay` apart, that notes when it starts and when its stream is closed."""

    def __init__(self, n: int, delay: float = 0.005, *, stall: asyncio.Event | None = None) -> None:
        self.n, self.delay, self.stall = n, delay, stall
        self.started, self.closed, self.exited = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self.closed_by: type[BaseException] | None = None

    async def stream(self, messages: list[Message], tools: list[ToolSpec]) -> AsyncIterator[object]:
        try:
            for i in range(self.n):
                if i == 2:
                    self.started.set()
                if i == 1 and self.stall is not None:
                    await self.stall.wait()
                yield f"w{i} "
                if self.delay:
                    await asyncio.sleep(self.delay)
            yield ResponseDone(finish_reason="stop", usage=Usage(prompt_tokens=3, completion_tokens=self.n))
        except (GeneratorExit, asyncio.CancelledError) as e:
            self.closed_by = type(e)
            self.closed.set()
            raise
        finally:
            self.exited.set()


def agent_on(store: InMemoryConversationStore, model: Any = "test", **kw: Any) -> CreateAgent:
    """An agent on `store`: the test model, a `Words` stream, or a FunctionModel script."""
    if isinstance(model, Words):
        model = model.stream
    return CreateAgent(provider=FunctionModel(model) if callable(model) else model, store=store, **kw)


async def drain(runs: BackgroundRuns, run_id: str, after: int = -1) -> list[dict[str, Any]]:
    return [e async for e in runs.events(run_id, after=after)]


async def wait_for_events(log: RunLog, run_id: str, n: int) -> None:
    for _ in range(500):
        if len(await log.events(run_id, limit=n)) >= n:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"run {run_id} never wrote {n} events")


def numbered(events: list[dict[str, Any]], first: int = 0) -> bool:
    return [e["sequence_number"] for e in events] == list(range(first, first + len(events)))


# -- the run and its log ----------------------------------------------------------------------------------------


async def test_a_run_numbers_its_events_from_zero_and_its_record_carries_the_result() -> None:
    store = InMemoryConversationStore()
    agent = agent_on(store, tools=[add])
    conversation = agent.conversation("c1")
    runs = BackgroundRuns(store)
    created = await runs.start("run-1", lambda: conversation.chat("What is 2 + 3?"), record={"model": "test"})
    assert created["status"] == "queued" and created["model"] == "test" and created["owner"] == runs.owner
    assert (await store.load_run("run-1")) == created

    events = await drain(runs, "run-1")
    assert numbered(events) and await store.events("run-1", limit=10_000) == events
    kinds = [e["type"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.index("tool_call_started") < kinds.index("tool_call_finished") < kinds.index("text_delta")
    assert "".join(e["text"] for e in events if e["type"] == "text_delta") == "Tool results: add -> 2."
    finished = events[-1]
    assert [m["role"] for m in finished["messages"]] == ["user", "assistant", "tool", "assistant"]

    record = await runs.get("run-1")
    assert record["status"] == "completed" and record["event_count"] == len(events)
    assert record["result"]["text"] == finished["text"] == "Tool results: add -> 2."
    assert record["result"]["usage"] == finished["usage"] and record["result"]["usage"]["prompt_tokens"] > 0
    assert [c["name"] for c in record["result"]["tool_calls"]] == ["add"]
    assert "error" not in record and record["model"] == "test"
    assert len(await conversation.history()) == 4  # the turn was committed as usual
    await runs.aclose()


async def test_replay_after_n_gives_exactly_the_rest() -> None:
    store = InMemoryConversationStore()
    runs = BackgroundRuns(store)
    agent = agent_on(store, tools=[add])
    await runs.start("r", lambda: agent.chat("go"))
    full = await drain(runs, "r")
    assert len(full) > 8
    for after in (-1, 0, 3, len(full) - 2, len(full) - 1):
        assert await drain(runs, "r", after) == full[after + 1 :]
    assert await drain(BackgroundRuns(store), "r", 4) == full[5:]  # and from a process that did not run it


async def test_store_writes_are_batched_not_one_per_token() -> None:
    store = CountingStore()
    runs = BackgroundRuns(store, poll=0.02)
    agent = agent_on(store, Words(3000, delay=1e-6))
    await runs.start("r", lambda: agent.chat("go"))
    events = await drain(runs, "r")
    assert len(events) > 3000 and numbered(events)
    print(f"\n{len(events)} events in {store.writes} writes")
    assert store.writes <= len(events) // 50  # 256 per batch, or what `poll` gathered


async def test_the_paused_turn_ends_the_run_completed_with_what_it_waits_for() -> None:
    store = InMemoryConversationStore()
    runs = BackgroundRuns(store)
    agent = agent_on(store, tools=[add], require_approval=True)
    conversation = agent.conversation("c")
    await runs.start("r", lambda: conversation.chat("add please"))
    events = await drain(runs, "r")
    assert [e["type"] for e in events][-2:] == ["approval_requested", "run_paused"]
    record = await runs.get("r")
    paused = record["paused"]
    assert record["status"] == "completed" and paused == {**events[-1]["paused"], **paused}
    assert paused["conversation_id"] == "c" and [p["name"] for p in paused["pending"]] == ["add"]
    assert paused["pending"][0]["kind"] == "approval" and await conversation.history() == []

    # the decision comes later, from anywhere: resuming is another background run
    call_id = paused["pending"][0]["id"]
    await runs.start("r2", lambda: conversation.resume(paused["id"], approvals={call_id: True}))
    resumed = await drain(runs, "r2")
    assert resumed[-1]["type"] == "run_finished" and (await runs.get("r2"))["status"] == "completed"
    assert [m.role for m in await conversation.history()] == ["user", "assistant", "tool", "assistant"]

    # a stateless turn keeps its state nowhere else: the record carries it, the event log does not
    await runs.start("r3", lambda: agent.ask("add please"))
    events = await drain(runs, "r3")
    record = await runs.get("r3")
    assert record["paused"]["conversation_id"] is None and isinstance(record["paused"]["state"], dict)
    assert "state" not in events[-1]["paused"]


# -- following live ---------------------------------------------------------------------------------------------


async def test_a_follower_attached_mid_run_gets_the_rest_live_in_order() -> None:
    store = InMemoryConversationStore()
    runs = BackgroundRuns(store, poll=0.01)
    agent = agent_on(store, Words(80, delay=0.004))
    await runs.start("r", lambda: agent.chat("go"))
    await wait_for_events(store, "r", 10)
    statuses = []
    got: list[dict[str, Any]] = []
    async for event in runs.events("r", after=4):
        if not got:
            statuses.append((await runs.get("r"))["status"])
        got.append(event)
    assert statuses == ["in_progress"]  # it was following a live run, not replaying a finished one
    assert numbered(got, 5) and got == (await store.events("r", limit=10_000))[5:]
    assert got[-1]["type"] == "run_finished"


async def test_two_followers_and_one_on_another_replica_see_the_same_events() -> None:
    store = CountingStore()
    owner = BackgroundRuns(store, poll=0.01)
    replica = BackgroundRuns(store, poll=0.01)  # shares the store only: it follows by polling the log
    agent = agent_on(store, Words(60, delay=0.004))
    await owner.start("r", lambda: agent.chat("go"))
    await wait_for_events(store, "r", 3)
    first, second, remote = await asyncio.gather(drain(owner, "r"), drain(owner, "r", 1), drain(replica, "r"))
    full = await store.events("r", limit=10_000)
    assert numbered(full) and full[-1]["type"] == "run_finished"
    assert first == remote == full and second == full[2:]
    assert (await replica.get("r"))["status"] == "completed"


async def test_a_local_follower_sleeps_until_the_next_write_instead_of_polling() -> None:
    store = CountingStore()
    runs = BackgroundRuns(store, poll=0.005)
    stall = asyncio.Event()
    model = Words(5, delay=0, stall=stall)
    agent = agent_on(store, model)
    await runs.start("r", lambda: agent.chat("go"))
    got: list[dict[str, Any]] = []

    async def follow() -> None:
        async for event in runs.events("r"):
            got.append(event)

    follower = asyncio.create_task(follow())
    await wait_for_events(store, "r", 2)  # run_started and "w0 ", then the model stalls
    await asyncio.sleep(0.05)
    reads = store.reads
    await asyncio.sleep(0.2)  # 40 polls' worth
    assert store.reads == reads  # the follower asked the log nothing while nothing was written
    stall.set()
    await follower
    assert numbered(got) and got[-1]["type"] == "run_finished"
    assert "".join(e["text"] for e in got if e["type"] == "text_delta") == "w0 w1 w2 w3 w4 "


async def test_a_local_follower_gets_each_write_at_once() -> None:
    store = TimedStore()
    runs = BackgroundRuns(store, poll=0.1)
    agent = agent_on(store, Words(6, delay=0.15))  # a word every 150 ms: one write each, `poll` after it
    await runs.start("r", lambda: agent.chat("go"))
    late = []
    async for event in runs.events("r"):
        late.append(time.perf_counter() - store.written[event["sequence_number"]])
    print(f"\nlocal follower: at most {max(late) * 1000:.1f} ms after the write")
    assert (
        len(set(store.written.values())) >= 6 and max(late) < 0.03
    )  # a follower polling every 100 ms would lag 0-100 ms


# -- cancelling -------------------------------------------------------------------------------------------------


async def test_cancel_stops_the_run_closes_the_provider_stream_and_commits_nothing() -> None:
    store = InMemoryConversationStore()
    runs = BackgroundRuns(store)
    model = Words(1000, delay=0.01)
    conversation = agent_on(store, model).conversation("c")
    await runs.start("r", lambda: conversation.chat("long story"))
    await model.started.wait()
    record = await runs.cancel("r")
    assert record["status"] == "cancelled"
    events = await drain(runs, "r")
    assert model.closed.is_set() and model.exited.is_set()
    assert numbered(events) and events[-1]["type"] == "run_failed"
    assert events[-1]["cancelled"] is True and events[-1]["error_type"] == "CancelledError"
    assert await conversation.history() == []
    final = await runs.get("r")
    assert final["status"] == "cancelled" and final["event_count"] == len(events) and "error" not in final
    assert await runs.cancel("r") == final  # cancelling again changes nothing


async def test_cancel_from_another_replica_stops_the_owner_within_a_heartbeat() -> None:
    store = InMemoryConversationStore()
    owner = BackgroundRuns(store, heartbeat=0.1, stale_after=1.0)
    replica = BackgroundRuns(store, poll=0.01)
    model = Words(1000, delay=0.01)
    conversation = agent_on(store, model).conversation("c")
    await owner.start("r", lambda: conversation.chat("long story"))
    await model.started.wait()
    began = time.perf_counter()
    assert (await replica.cancel("r"))["status"] == "cancelled"
    await asyncio.wait_for(model.closed.wait(), 1.0)
    stopped = time.perf_counter() - began
    events = await drain(replica, "r")  # ends once the owner closed the log
    print(f"\nremote cancel stopped the owner's stream after {stopped * 1000:.0f} ms (heartbeat 100 ms)")
    assert stopped < 0.5
    assert events[-1]["type"] == "run_failed" and events[-1]["cancelled"] is True and numbered(events)
    assert (await store.load_run("r") or {})["event_count"] == len(events)
    assert await conversation.history() == []


async def test_a_run_cancelled_while_queued_never_starts() -> None:
    store = InMemoryConversationStore()
    runs = BackgroundRuns(store)
    made = []

    def make() -> Reply:
        made.append(1)
        return CreateAgent(provider="test").chat("hi")

    await runs.start("r", make)
    assert (await runs.cancel("r"))["status"] == "cancelled"
    assert await drain(runs, "r") == []
    assert made == [] and (await runs.get("r"))["event_count"] == 0


async def test_a_finished_run_cannot_be_cancelled() -> None:
    store = InMemoryConversationStore()
    runs = BackgroundRuns(store)
    await runs.start("r", lambda: CreateAgent(provider="test").chat("hi"))
    await drain(runs, "r")
    record = await runs.get("r")
    with pytest.raises(RunNotActiveError, match="completed"):
        await runs.cancel("r")
    assert await runs.get("r") == record


# -- failing and stopping short ---------------------------------------------------------------------------------


async def test_a_failing_model_fails_the_run_with_its_error() -> None:
    async def broken(messages: list[Message], tools: list[ToolSpec]) -> AsyncIterator[object]:
        yield "partial "
        raise ProviderUnavailableError("the provider went away", provider="function")

    store = InMemoryConversationStore()
    runs = BackgroundRuns(store)
    conversation = agent_on(store, broken).conversation("c")
    await runs.start("r", lambda: conversation.chat("hi"))
    events = await drain(runs, "r")
    assert events[-1]["type"] == "run_failed" and events[-1]["error_type"] == "ProviderUnavailableError"
    assert events[-1]["cancelled"] is False
    record = await runs.get("r")
    assert record["status"] == "failed" and record["event_count"] == len(events)
    assert record["error"] == {
        "message": "the provider went away (provider=function)",
        "type": "ProviderUnavailableError",
    }
    assert await conversation.history() == []


async def test_a_reply_that_cannot_be_made_fails_the_run() -> None:
    def bad_input() -> Reply:
        raise ConfigurationError("input must be a string")

    runs = BackgroundRuns(InMemoryConversationStore())
    await runs.start("r", bad_input)
    events = await drain(runs, "r")
    assert events == [
        {
            "type": "run_failed",
            "error": "input must be a string",
            "error_type": "ConfigurationError",
            "cancelled": False,
            "sequence_number": 0,
        }
    ]
    record = await runs.get("r")
    assert record["status"] == "failed" and record["error"]["type"] == "ConfigurationError"


async def test_more_than_max_events_stops_the_run_incomplete() -> None:
    store = InMemoryConversationStore()
    runs = BackgroundRuns(store, max_events=10)
    model = Words(100, delay=0.001)
    conversation = agent_on(store, model).conversation("c")
    await runs.start("r", lambda: conversation.chat("go"))
    events = await drain(runs, "r")
    assert len(events) == 10 and numbered(events)
    record = await runs.get("r")
    assert record["status"] == "incomplete" and record["incomplete_details"] == {"reason": "max_events"}
    assert record["event_count"] == 10
    assert model.closed.is_set() and await conversation.history() == []


# -- processes that die, and shutting down ----------------------------------------------------------------------


async def test_recover_marks_stale_runs_incomplete_and_leaves_live_ones() -> None:
    store = InMemoryConversationStore()
    now = time.time()
    # a run whose process died mid-run: active, its heartbeat a minute old, three events written
    await store.create_run("dead", {"id": "dead", "status": "in_progress", "heartbeat_at": now - 60})
    await store.add_events("dead", [{"type": "text_delta", "text": "x", "sequence_number": i} for i in range(3)])
    await store.create_run("dead-queued", {"id": "dead-queued", "status": "queued", "heartbeat_at": now - 60})
    replica = BackgroundRuns(store, heartbeat=0.05, stale_after=0.5)  # a live process, its run waiting on the model
    model = Words(5, delay=0, stall=asyncio.Event())
    await replica.start("live", lambda: agent_on(store, model).chat("go"))
    await wait_for_events(store, "live", 2)
    await asyncio.sleep(0.6)  # no event for longer than stale_after, but the heartbeat kept the run fresh

    runs = BackgroundRuns(store, stale_after=0.5, heartbeat=0.1)
    assert sorted(await runs.recover()) == ["dead", "dead-queued"]
    dead = await runs.get("dead")
    assert dead["status"] == "incomplete" and dead["incomplete_details"] == {"reason": "interrupted"}
    assert dead["event_count"] == 3 and "error" not in dead
    assert [e["sequence_number"] for e in await drain(runs, "dead")] == [0, 1, 2]
    assert (await runs.get("live"))["status"] == "in_progress" and not model.closed.is_set()
    assert await runs.recover() == []  # nothing left to recover
    await replica.aclose()
    assert (await runs.get("live"))["incomplete_details"] == {"reason": "shutdown"}


async def test_aclose_marks_running_runs_incomplete_and_leaves_no_task() -> None:
    before = asyncio.all_tasks()
    store = InMemoryConversationStore()
    runs = BackgroundRuns(store)
    models = [Words(1000, delay=0.01) for _ in range(2)]
    conversation = agent_on(store, models[0]).conversation("c")
    await runs.start("a", lambda: conversation.chat("go"))
    await runs.start("b", lambda: agent_on(store, models[1]).chat("go"))
    await asyncio.gather(*(m.started.wait() for m in models))
    await runs.aclose()
    assert {t for t in asyncio.all_tasks() - before if not t.done()} == {asyncio.current_task()} - before
    for run_id in ("a", "b"):
        record = await runs.get(run_id)
        assert record["status"] == "incomplete" and record["incomplete_details"] == {"reason": "shutdown"}
        events = await drain(runs, run_id)
        assert record["event_count"] == len(events) and events[-1]["cancelled"] is True
    assert all(m.closed.is_set() for m in models) and await conversation.history() == []
    await runs.aclose()  # again: nothing to do
    with pytest.raises(AgentClosedError):
        await runs.start("c", lambda: conversation.chat("go"))


# -- errors -----------------------------------------------------------------------------------------------------


async def test_starting_after_past_the_end_of_a_finished_run_is_refused() -> None:
    runs = BackgroundRuns(InMemoryConversationStore())
    await runs.start("r", lambda: CreateAgent(provider="test").chat("hi"))
    n = len(await drain(runs, "r"))
    assert await drain(runs, "r", n - 1) == []
    with pytest.raises(InvalidSequenceError, match=f"starting_after {n} is beyond the last event {n - 1}"):
        await drain(runs, "r", n)
    for bad in (-2, "3", 1.5, True):
        with pytest.raises(InvalidSequenceError):
            await drain(runs, "r", bad)  # type: ignore[arg-type]
    assert issubclass(InvalidSequenceError, ConfigurationError)


async def test_unknown_runs_are_run_not_found() -> None:
    runs = BackgroundRuns(InMemoryConversationStore())
    with pytest.raises(RunNotFoundError):
        await runs.get("nope")
    with pytest.raises(RunNotFoundError):
        await drain(runs, "nope")
    with pytest.raises(RunNotFoundError):
        await runs.cancel("nope")
    assert issubclass(RunNotFoundError, LookupError)


async def test_settings_are_checked() -> None:
    store = InMemoryConversationStore()
    for bad in ({"heartbeat": 0}, {"poll": float("nan")}, {"max_events": 0}, {"heartbeat": 5, "stale_after": 5}):
        with pytest.raises(ConfigurationError):
            BackgroundRuns(store, **bad)
    with pytest.raises(ConfigurationError, match="RunLog"):
        BackgroundRuns(object())  # type: ignore[arg-type]
    runs = BackgroundRuns(store)
    await runs.start("r", lambda: CreateAgent(provider="test").chat("hi"))
    with pytest.raises(ConfigurationError, match="exists already"):
        await runs.start("r", lambda: CreateAgent(provider="test").chat("hi"))
    await drain(runs, "r")
    assert set(ACTIVE).isdisjoint(TERMINAL)


# -- the default encoder ----------------------------------------------------------------------------------------


def test_encode_event_is_small_and_exact() -> None:
    assert encode_event(TextDelta("hi")) == [{"type": "text_delta", "text": "hi"}]
    assert encode_event(ToolCallDelta(index=1, id="c1", name="add", arguments_delta='{"a"')) == [
        {"type": "tool_call_delta", "index": 1, "id": "c1", "name": "add", "arguments_delta": '{"a"'}
    ]
    assert encode_event(RunFailed(error=ValueError("bad"), cancelled=False)) == [
        {"type": "run_failed", "error": "bad", "error_type": "ValueError", "cancelled": False}
    ]

    class Later:
        kind = "something_new"

    assert encode_event(Later()) == [{"type": "something_new"}]  # type: ignore[arg-type]
    call = ToolCall(id="c", name="add", arguments="{}")
    from createagents.domain.events import ToolCallStarted

    assert encode_event(ToolCallStarted(call=call)) == [
        {"type": "tool_call_started", "call": {"id": "c", "name": "add", "arguments": "{}"}}
    ]


# -- how fast a replay is ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["owner", "replica"])
async def test_replaying_ten_thousand_events_is_fast(where: str) -> None:
    store = InMemoryConversationStore()
    runs = BackgroundRuns(store)
    text = "word " * 10_000
    began = time.perf_counter()
    await runs.start("r", lambda: agent_on(store, lambda m, t: text).chat("go"))
    total = len(await drain(runs, "r"))
    ran = time.perf_counter() - began
    reader = runs if where == "owner" else BackgroundRuns(store)
    began = time.perf_counter()
    events = await drain(reader, "r")
    took = time.perf_counter() - began
    print(f"\nmemory store: ran {total} events in {ran * 1000:.0f} ms; replayed them in {took * 1000:.0f} ms ({where})")
    assert len(events) == total > 10_000 and numbered(events)
    assert took < 2.0

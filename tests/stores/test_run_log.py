"""The run log (`RunLog`), run against every store: background runs' records and numbered events, shared."""

from __future__ import annotations

import asyncio
import json
import math
import os
import sqlite3
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from createagents import ConfigurationError, InMemoryConversationStore
from createagents.application.ports import ConversationStore, RunLog
from createagents.domain.codec import message_to_dict
from createagents.domain.messages import AssistantMessage, Message, UserMessage

from .conftest import make_store

ROOT = Path(__file__).resolve().parents[2]

RECORD: dict[str, Any] = {
    "status": "in_progress",
    "created_at": 1712345678.123456789,  # a float that must come back to the last bit
    "model": "gpt-4o-mini",
    "output": [],  # empty list and empty object stay what they are
    "metadata": {},
    "error": None,
    "usage": {"input_tokens": 12, "output_tokens": 2**53 + 1, "ratio": 0.1 + 0.2},
    "text": 'ünïcödé 😀 "quoted" \\ \n \x00',
}


@pytest.fixture
def runs(store: ConversationStore) -> RunLog:
    assert isinstance(store, RunLog)
    return store


def kind_of(log: RunLog) -> str:
    return {"InMemoryConversationStore": "memory", "SQLiteConversationStore": "sqlite"}.get(type(log).__name__, "redis")


def twin(log: RunLog, request: pytest.FixtureRequest) -> RunLog:
    """A second store object on the same file or Redis prefix, as another process would have."""
    from createagents.adapters.redis_store import RedisConversationStore
    from createagents.adapters.sqlite_store import SQLiteConversationStore

    if isinstance(log, SQLiteConversationStore):
        return SQLiteConversationStore(log.path)
    assert isinstance(log, RedisConversationStore)
    return RedisConversationStore(request.getfixturevalue("redis_url"), prefix=log.prefix)


@pytest.fixture
async def shared(request: pytest.FixtureRequest, tmp_path: Path, kind: str) -> AsyncIterator[tuple[RunLog, RunLog]]:
    first = make_store(kind, request, tmp_path)
    assert isinstance(first, RunLog)
    second = twin(first, request)
    try:
        yield first, second
    finally:
        for made in (first, second):
            assert isinstance(made, ConversationStore)
            await made.aclose()


def event(i: int) -> dict[str, Any]:
    return {"type": "response.output_text.delta", "sequence_number": i, "delta": f"tok{i} ü"}


# -- records -----------------------------------------------------------------------------------------------------


async def test_a_record_comes_back_exactly_and_is_a_copy(runs: RunLog) -> None:
    await runs.create_run("resp_1", RECORD)
    loaded = await runs.load_run("resp_1")
    assert loaded == RECORD
    assert loaded is not None and type(loaded["output"]) is list and type(loaded["metadata"]) is dict
    loaded["status"] = "changed here only"
    loaded["output"].append("x")
    assert await runs.load_run("resp_1") == RECORD
    assert await runs.load_run("resp_unknown") is None


async def test_update_merges_and_returns_the_record_after_the_call(runs: RunLog) -> None:
    await runs.create_run("r", {"status": "queued", "n": 1, "keep": "me"})
    after = await runs.update_run("r", {"status": "in_progress", "n": 2, "new": [1, {"a": None}]})
    expected = {"status": "in_progress", "n": 2, "keep": "me", "new": [1, {"a": None}]}
    assert after == expected and await runs.load_run("r") == expected
    # the condition holds: changed
    assert await runs.update_run("r", {"n": 3}, statuses=["queued", "in_progress"]) == {**expected, "n": 3}
    # it does not: unchanged, and the record is returned as it is
    assert await runs.update_run("r", {"status": "cancelled"}, statuses=["queued"]) == {**expected, "n": 3}
    assert await runs.load_run("r") == {**expected, "n": 3}
    assert await runs.update_run("r", {}, statuses=["nothing"]) == {**expected, "n": 3}  # no changes: just read
    assert await runs.update_run("r", {"status": "completed"}, statuses=None) == {
        **expected,
        "n": 3,
        "status": "completed",
    }
    assert await runs.update_run("r", {"status": "failed"}, statuses=[]) == {**expected, "n": 3, "status": "completed"}
    assert await runs.update_run("unknown", {"status": "completed"}) is None
    assert await runs.update_run("unknown", {"status": "completed"}, statuses=["in_progress"]) is None
    assert await runs.load_run("unknown") is None  # an update never creates a run


async def test_of_a_cancel_and_a_completion_at_once_exactly_one_wins(
    runs: RunLog, request: pytest.FixtureRequest
) -> None:
    other = runs if kind_of(runs) == "memory" else twin(runs, request)  # two connections where there are any
    try:
        winners = []
        for i in range(30):
            await runs.create_run(f"r{i}", {"status": "in_progress"})
            cancel = runs.update_run(f"r{i}", {"status": "cancelled", "by": "cancel"}, statuses=["in_progress"])
            complete = other.update_run(
                f"r{i}", {"status": "completed", "by": "complete", "output": ["done"]}, statuses=["in_progress"]
            )
            a, b = await asyncio.gather(*((cancel, complete) if i % 2 else (complete, cancel)))
            final = await runs.load_run(f"r{i}")
            assert final is not None and a == b == final  # both see the one result
            if final["status"] == "cancelled":
                assert final == {"status": "cancelled", "by": "cancel"}  # nothing of the completion leaked in
            else:
                assert final == {"status": "completed", "by": "complete", "output": ["done"]}
            winners.append(final["by"])
        print(f"\n{kind_of(runs)}: cancel won {winners.count('cancel')} of 30")
    finally:
        if other is not runs:
            assert isinstance(other, ConversationStore)
            await other.aclose()


# -- events ------------------------------------------------------------------------------------------------------


async def test_events_are_numbered_in_order_and_paged(runs: RunLog) -> None:
    await runs.create_run("r", {"status": "in_progress"})
    assert await runs.add_events("r", [event(i) for i in range(5)]) == 5
    assert await runs.add_events("r", []) == 5
    assert await runs.add_events("r", [event(i) for i in range(5, 8)]) == 8
    assert await runs.events("r") == [event(i) for i in range(8)]
    assert await runs.events("r", after=2) == [event(i) for i in range(3, 8)]
    assert await runs.events("r", after=2, limit=2) == [event(3), event(4)]
    assert await runs.events("r", after=-1, limit=1) == [event(0)]
    assert await runs.events("r", after=6) == [event(7)]
    assert await runs.events("r", after=7) == []  # past the end: empty, live followers ask again
    assert await runs.events("r", after=1000) == []
    assert await runs.events("r", limit=0) == []
    assert await runs.events("unknown") == []
    follower: list[dict[str, Any]] = []
    for batch in range(3):  # following live: ask after the last one seen
        await runs.add_events("r", [event(100 + batch)])
        follower += await runs.events("r", after=7 + len(follower))
    assert follower == [event(100), event(101), event(102)]
    loaded = await runs.events("r", after=10)
    assert loaded == [] and await runs.events("r", after=9) == [event(102)]


async def test_events_of_a_run_are_its_own(runs: RunLog) -> None:
    await runs.create_run("a", {"status": "in_progress"})
    await runs.create_run("b", {"status": "in_progress"})
    await asyncio.gather(*(runs.add_events(run_id, [{"run": run_id, "i": i}]) for i in range(20) for run_id in "ab"))
    for run_id in "ab":
        got = await runs.events(run_id)
        assert [e["run"] for e in got] == [run_id] * 20
        assert sorted(e["i"] for e in got) == list(range(20))


async def test_events_for_an_unknown_run_are_not_stored(runs: RunLog) -> None:
    assert await runs.add_events("ghost", [event(0), event(1)]) == 0
    assert await runs.events("ghost") == []
    await runs.create_run("ghost", {"status": "queued"})
    assert await runs.events("ghost") == []  # nothing was waiting for it


async def test_concurrent_batches_never_interleave(runs: RunLog, request: pytest.FixtureRequest) -> None:
    other = runs if kind_of(runs) == "memory" else twin(runs, request)
    try:
        await runs.create_run("r", {"status": "in_progress"})
        counts = await asyncio.gather(
            *(
                log.add_events("r", [{"batch": b, "i": i} for i in range(10)])
                for b in range(20)
                for log in [runs, other]
            )
        )
        assert sorted(counts) == [10 * (n + 1) for n in range(40)]  # each batch got its own numbers
        got = await runs.events("r")
        assert len(got) == 400
        for start in range(0, 400, 10):
            assert [e["i"] for e in got[start : start + 10]] == list(range(10))
            assert len({e["batch"] for e in got[start : start + 10]}) == 1
    finally:
        if other is not runs:
            assert isinstance(other, ConversationStore)
            await other.aclose()


async def test_replaying_ten_thousand_events_is_fast(runs: RunLog, request: pytest.FixtureRequest) -> None:
    await runs.create_run("warm", {"status": "in_progress"})
    await runs.add_events("warm", [event(0)])  # scripts loaded, connections open
    await runs.create_run("r", {"status": "in_progress"})
    many = [event(i) for i in range(10_000)]
    round_trips = await count_round_trips(runs, request)
    started = time.perf_counter()
    assert await runs.add_events("r", many) == 10_000
    appended = time.perf_counter() - started
    assert await round_trips() == 1  # one script call, one transaction

    started = time.perf_counter()
    replay = await runs.events("r", limit=10_000)
    replayed = time.perf_counter() - started
    assert replay == many

    started = time.perf_counter()
    pages: list[dict[str, Any]] = []
    while page := await runs.events("r", after=len(pages) - 1, limit=1000):
        pages += page
    paged = time.perf_counter() - started
    assert pages == many
    print(
        f"\n{kind_of(runs)}: 10,000 events added in {appended * 1000:.1f} ms, replayed in {replayed * 1000:.1f} ms"
        f" at once, {paged * 1000:.1f} ms in pages of 1,000"
    )
    assert replayed < 2.0 and paged < 2.0


async def count_round_trips(log: RunLog, request: pytest.FixtureRequest) -> Any:
    """A function giving the round trips (Redis script calls, SQLite transactions) made since this was called."""
    kind = kind_of(log)
    if kind == "memory":

        async def nothing() -> int:
            return 1

        return nothing
    if kind == "sqlite":
        calls = []
        real = log._transaction  # type: ignore[attr-defined]

        def counting(work: Any) -> Any:
            calls.append(work)
            return real(work)

        request.getfixturevalue("monkeypatch").setattr(log, "_transaction", counting)

        async def transactions() -> int:
            return len(calls)

        return transactions
    import redis.asyncio as redis_asyncio

    raw = redis_asyncio.Redis.from_url(request.getfixturevalue("redis_url"))

    async def scripts() -> int:
        stats = await raw.info("commandstats")
        return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("evalsha", "eval"))

    before = await scripts()

    async def since() -> int:
        try:
            return await scripts() - before
        finally:
            await raw.aclose()

    return since


# -- finding and forgetting runs -----------------------------------------------------------------------------------


async def test_run_ids_finds_runs_by_status(runs: RunLog) -> None:
    statuses = ["queued", "in_progress", "completed", "failed", "in_progress", "cancelled", "queued", "incomplete"]
    for i, status in enumerate(statuses):
        await runs.create_run(f"run-{7 - i}", {"status": status})
    assert await runs.run_ids(statuses=["queued", "in_progress"]) == ["run-1", "run-3", "run-6", "run-7"]  # ascending
    assert await runs.run_ids(statuses=["in_progress"]) == ["run-3", "run-6"]
    assert await runs.run_ids(statuses=["completed", "failed"]) == ["run-4", "run-5"]
    assert await runs.run_ids(statuses=["queued", "incomplete"]) == ["run-0", "run-1", "run-7"]
    assert await runs.run_ids(statuses=[]) == []
    assert await runs.run_ids(statuses=["nothing"]) == []
    await runs.update_run("run-6", {"status": "completed"})
    await runs.update_run("run-4", {"status": "in_progress"})  # back to active (a resumed run)
    assert await runs.run_ids(statuses=["queued", "in_progress"]) == ["run-1", "run-3", "run-4", "run-7"]
    assert await runs.run_ids(statuses=["completed"]) == ["run-5", "run-6"]


async def test_delete_forgets_the_record_and_the_events_and_can_be_repeated(runs: RunLog) -> None:
    await runs.create_run("r", {"status": "in_progress"})
    await runs.add_events("r", [event(0), event(1)])
    await runs.create_run("other", {"status": "in_progress"})
    await runs.add_events("other", [event(0)])
    await runs.delete_run("r")
    assert await runs.load_run("r") is None and await runs.events("r") == []
    assert await runs.run_ids(statuses=["in_progress"]) == ["other"]
    assert await runs.update_run("r", {"status": "completed"}) is None
    await runs.delete_run("r")
    await runs.delete_run("never existed")
    await runs.create_run("r", {"status": "queued"})  # the id is free again, with no events
    assert await runs.events("r") == [] and await runs.add_events("r", [event(5)]) == 1
    assert await runs.events("other") == [event(0)]


# -- bad input -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record",
    [{}, {"status": None}, {"status": 1}, {"status": "queued", "x": object()}, {"status": "queued", "x": math.nan}],
    ids=["no status", "status None", "status int", "not JSON", "NaN"],
)
async def test_a_bad_record_is_a_configuration_error(runs: RunLog, record: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        await runs.create_run("r", record)
    assert await runs.load_run("r") is None


async def test_bad_input_is_a_configuration_error_and_changes_nothing(runs: RunLog) -> None:
    await runs.create_run("r", {"status": "in_progress", "n": 1})
    with pytest.raises(ConfigurationError, match="'r' exists already"):
        await runs.create_run("r", {"status": "queued"})
    with pytest.raises(ConfigurationError):
        await runs.create_run("", {"status": "queued"})
    for changes in ({"status": 3}, {"status": None}, {"n": object()}, {"n": {1, 2}}):
        with pytest.raises(ConfigurationError):
            await runs.update_run("r", changes)
    with pytest.raises(ConfigurationError):
        await runs.update_run("r", {"n": 2}, statuses="in_progress")  # a string, not a list of them
    assert await runs.load_run("r") == {"status": "in_progress", "n": 1}
    await runs.add_events("r", [event(0)])
    bad_batches: list[Any] = [
        [event(1), ["not", "an", "object"]],
        [event(1), "text"],
        [event(1), {"x": object()}],
        [event(1), {"x": math.inf}],
        {"type": "one event, not a list"},
    ]
    for batch in bad_batches:
        with pytest.raises(ConfigurationError):
            await runs.add_events("r", batch)
    assert await runs.events("r") == [event(0)]  # a bad batch adds nothing, not even its good events
    with pytest.raises(ConfigurationError):
        await runs.events("r", after="3")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        await runs.run_ids(statuses="queued")


# -- shared by every store object, in any process ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_two_store_objects_on_one_backend_see_each_others_runs(shared: tuple[RunLog, RunLog]) -> None:
    first, second = shared
    await first.create_run("r", {"status": "queued"})
    assert await second.load_run("r") == {"status": "queued"}
    with pytest.raises(ConfigurationError):
        await second.create_run("r", {"status": "queued"})
    await second.update_run("r", {"status": "in_progress"}, statuses=["queued"])
    assert await first.run_ids(statuses=["in_progress"]) == ["r"]
    assert await first.add_events("r", [event(0), event(1)]) == 2
    assert await second.add_events("r", [event(2)]) == 3
    assert await second.events("r", after=0) == [event(1), event(2)]
    assert await first.update_run("r", {"status": "cancelled"}, statuses=["in_progress"]) == {"status": "cancelled"}
    assert await second.update_run("r", {"status": "completed"}, statuses=["in_progress"]) == {"status": "cancelled"}
    await second.delete_run("r")
    assert await first.load_run("r") is None and await first.events("r") == []


RACER = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from pathlib import Path

    kind, where, prefix, role, count, gate = sys.argv[1:7]

    async def main():
        if kind == "sqlite":
            from createagents.adapters.sqlite_store import SQLiteConversationStore
            store = SQLiteConversationStore(where)
        else:
            from createagents.adapters.redis_store import RedisConversationStore
            store = RedisConversationStore(where, prefix=prefix)
        await store.load_run("warm-up")
        Path(gate, "ready-" + role).touch()
        while not Path(gate, "go").exists():
            time.sleep(0.001)
        won = []
        status = {"cancel": "cancelled", "complete": "completed"}[role]
        async def race(i):
            await store.add_events(f"r{i}", [{"by": role}])
            after = await store.update_run(f"r{i}", {"status": status, "by": role}, statuses=["in_progress"])
            if after["by"] == role:
                won.append(i)
        await asyncio.gather(*(race(i) for i in range(int(count))))
        await store.aclose()
        print(json.dumps(won))

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_of_two_processes_racing_a_cancel_and_a_completion_exactly_one_wins_each_run(
    shared: tuple[RunLog, RunLog], kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    log, _ = shared
    count = 60
    for i in range(count):
        await log.create_run(f"r{i}", {"status": "in_progress"})
    where = str(getattr(log, "path", "")) if kind == "sqlite" else request.getfixturevalue("redis_url")
    prefix = getattr(log, "prefix", "")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [
        await asyncio.create_subprocess_exec(
            *(sys.executable, "-c", RACER, kind, where, prefix, role, str(count), str(tmp_path)),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        for role in ("cancel", "complete")
    ]
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ready-{role}").exists() for role in ("cancel", "complete")):
            assert time.monotonic() < deadline, "the racers did not start"
            assert all(c.returncode is None for c in children), [await c.communicate() for c in children]
            await asyncio.sleep(0.01)
        (tmp_path / "go").touch()
        outputs = [await asyncio.wait_for(c.communicate(), 60) for c in children]
    finally:
        for c in children:
            if c.returncode is None:
                c.kill()
                await c.wait()
    for c, (_, err) in zip(children, outputs, strict=True):
        assert c.returncode == 0, err.decode()
    cancelled, completed = (set(json.loads(out)) for out, _ in outputs)
    assert not cancelled & completed and cancelled | completed == set(range(count))
    for i in range(count):
        record = await log.load_run(f"r{i}")
        assert record is not None
        assert record["by"] == ("cancel" if i in cancelled else "complete")
        assert sorted(e["by"] for e in await log.events(f"r{i}")) == ["cancel", "complete"]
    print(f"\n{kind}: across processes cancel won {len(cancelled)}, completion {len(completed)} of {count}")


# -- the memory store: bounded -------------------------------------------------------------------------------------


async def test_the_memory_store_keeps_at_most_max_runs_but_never_drops_an_active_one() -> None:
    store = InMemoryConversationStore(max_runs=3)

    async def ids() -> list[str]:
        return await store.run_ids(statuses=["queued", "in_progress", "completed", "failed", "cancelled"])

    await store.create_run("r0", {"status": "in_progress"})
    await store.create_run("r1", {"status": "completed"})
    await store.add_events("r1", [event(0)])
    await store.create_run("r2", {"status": "queued"})
    await store.create_run("r3", {"status": "completed"})  # one too many: the oldest finished one goes
    assert await ids() == ["r0", "r2", "r3"]
    assert await store.load_run("r1") is None and await store.events("r1") == []
    await store.create_run("r4", {"status": "in_progress"})
    assert await ids() == ["r0", "r2", "r4"]
    await store.create_run("r5", {"status": "in_progress"})  # nothing finished is left to drop: it grows
    assert await ids() == ["r0", "r2", "r4", "r5"]
    await store.create_run("r6", {"status": "failed"})  # the new run itself stays
    assert await ids() == ["r0", "r2", "r4", "r5", "r6"]
    await store.update_run("r0", {"status": "cancelled"})
    await store.update_run("r2", {"status": "completed"})
    await store.create_run("r7", {"status": "queued"})  # oldest finished first: r0, r2, then r6
    assert await ids() == ["r4", "r5", "r7"]
    for bad in (0, -1, 1.5, True, "3"):
        with pytest.raises(ConfigurationError):
            InMemoryConversationStore(max_runs=bad)  # type: ignore[arg-type]


# -- SQLite: schema version 2, migrated from 1, old runs swept ------------------------------------------------------

V1_SCHEMA = (  # what createagents wrote before runs (schema version 1), as it wrote it
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE conversations (id TEXT PRIMARY KEY, updated_at REAL NOT NULL) WITHOUT ROWID",
    "CREATE INDEX conversations_by_updated_at ON conversations (updated_at)",
    "CREATE TABLE messages (conversation_id TEXT NOT NULL, seq INTEGER NOT NULL, message TEXT NOT NULL,"
    " PRIMARY KEY (conversation_id, seq))",
    "CREATE TABLE paused_turns (conversation_id TEXT NOT NULL, turn_id TEXT NOT NULL, state TEXT NOT NULL,"
    " saved_at REAL NOT NULL, PRIMARY KEY (conversation_id, turn_id))",
    "INSERT INTO meta (key, value) VALUES ('schema_version', '1'), ('application', 'createagents')",
    "PRAGMA application_id = 1667327860",
)


def make_v1_file(path: Path) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        for statement in V1_SCHEMA:
            db.execute(statement)
        db.execute("PRAGMA journal_mode = WAL")
        history: list[Message] = [UserMessage(content="hello"), AssistantMessage(content="hi")]
        for seq, message in enumerate(history, 1):
            db.execute("INSERT INTO messages VALUES ('c', ?, ?)", (seq, json.dumps(message_to_dict(message))))
        db.execute("INSERT INTO conversations VALUES ('c', ?)", (time.time(),))
        db.execute("INSERT INTO paused_turns VALUES ('c', 't1', '{\"pending\": [\"call_1\"]}', ?)", (time.time(),))
    finally:
        db.close()


def schema_of(path: Path) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        return sorted(db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall())
    finally:
        db.close()


async def test_a_version_1_file_is_migrated_in_place_when_opened(tmp_path: Path) -> None:
    from createagents.adapters.sqlite_store import SCHEMA_VERSION, SQLiteConversationStore

    assert SCHEMA_VERSION == 2
    old = tmp_path / "old.db"
    make_v1_file(old)
    # several stores opening it at once (processes starting together): one migrates, none fails
    stores = [SQLiteConversationStore(old) for _ in range(4)]
    try:
        histories = await asyncio.gather(*(store.load("c") for store in stores))
        assert all(h == [UserMessage(content="hello"), AssistantMessage(content="hi")] for h in histories)
        store = stores[0]
        assert await store.load_paused("c", "t1") == {"pending": ["call_1"]}
        await store.create_run("r", {"status": "in_progress"})
        assert await stores[1].add_events("r", [event(0)]) == 1
        assert await stores[2].events("r") == [event(0)]
        await store.save_paused("c", "t2", {"expires_at": 1.0})
        assert await store.take_paused("c", "t1") == {"pending": ["call_1"]}
    finally:
        for store in stores:
            await store.aclose()
    db = sqlite3.connect(old)
    try:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall() == [("2",)]
    finally:
        db.close()
    fresh = tmp_path / "fresh.db"
    store = SQLiteConversationStore(fresh)
    await store.load("c")
    await store.aclose()
    assert schema_of(old) == schema_of(fresh)  # a migrated file is a new file


async def test_a_failed_migration_leaves_the_version_1_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from createagents.adapters import sqlite_store

    old = tmp_path / "old.db"
    make_v1_file(old)
    before = schema_of(old)
    broken = (*sqlite_store._MIGRATIONS[1], "CREATE TABLE runs (oops)")  # fails after the others ran
    monkeypatch.setitem(sqlite_store._MIGRATIONS, 1, broken)
    store = sqlite_store.SQLiteConversationStore(old)
    with pytest.raises(sqlite_store.StoreFileError):
        await store.load("c")
    await store.aclose()
    assert schema_of(old) == before
    monkeypatch.undo()
    store = sqlite_store.SQLiteConversationStore(old)
    try:
        assert len(await store.load("c")) == 2
        await store.create_run("r", {"status": "queued"})
    finally:
        await store.aclose()


class Clock:
    def __init__(self, now: float = 1_000_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("ttl", [None, 7200.0])
async def test_sqlite_sweeps_old_finished_runs_at_most_hourly_but_never_a_running_one(
    tmp_path: Path, ttl: float | None
) -> None:
    from createagents.adapters.sqlite_store import RUN_TTL, SQLiteConversationStore

    clock = Clock()
    start = clock.now
    store = SQLiteConversationStore(tmp_path / "runs.db", ttl=ttl, clock=clock)
    keep = RUN_TTL if ttl is None else ttl  # runs are kept the store's ttl, or RUN_TTL without one
    try:
        await store.create_run("old-done", {"status": "completed"})  # sweeps (nothing yet)
        await store.add_events("old-done", [event(0)])
        await store.create_run("old-running", {"status": "in_progress"})
        clock.now = start + keep + 10
        await store.create_run("x", {"status": "completed"})  # sweeps: the old finished run goes, with its events
        assert await store.load_run("old-done") is None and await store.events("old-done") == []
        assert await store.load_run("old-running") == {"status": "in_progress"}
        clock.now = start + 2 * keep - 100
        await store.create_run("y", {"status": "completed"})  # sweeps: x is not old enough yet
        clock.now = start + 2 * keep + 20
        await store.create_run("z", {"status": "completed"})  # x is too old now, but the last sweep was just now
        assert await store.load_run("x") == {"status": "completed"}
        clock.now = start + 2 * keep - 100 + 3600
        await store.create_run("w", {"status": "completed"})  # an hour after the last sweep: x goes
        assert await store.load_run("x") is None and await store.load_run("y") == {"status": "completed"}
        assert await store.run_ids(statuses=["in_progress"]) == ["old-running"]
    finally:
        await store.aclose()


# -- Redis: the key layout and run retention ------------------------------------------------------------------------


async def test_redis_runs_follow_the_documented_keys_and_expire(redis_url: str) -> None:
    import uuid

    import redis.asyncio as redis_asyncio

    from createagents.adapters.redis_store import RUN_TTL, RedisConversationStore

    prefix = f"test-{uuid.uuid4().hex[:8]}"
    store = RedisConversationStore(redis_url, prefix=prefix)
    brief = RedisConversationStore(redis_url, prefix=prefix, ttl=0.3)
    raw = redis_asyncio.Redis.from_url(redis_url, decode_responses=True)
    try:
        await store.create_run("r", {"status": "in_progress", "n": 1.5})
        await store.add_events("r", [event(0)])
        assert await raw.type(f"{prefix}:run:r") == "hash"
        assert await raw.hgetall(f"{prefix}:run:r") == {"status": '"in_progress"', "n": "1.5"}
        assert await raw.type(f"{prefix}:run_events:r") == "list"
        assert await raw.smembers(f"{prefix}:runs:active") == {"r"}
        for key in (f"{prefix}:run:r", f"{prefix}:run_events:r"):
            assert RUN_TTL * 1000 - 60_000 < await raw.pttl(key) <= RUN_TTL * 1000
        await store.update_run("r", {"status": "completed"})
        assert await raw.smembers(f"{prefix}:runs:active") == set()
        await store.delete_run("r")
        assert await raw.exists(f"{prefix}:run:r", f"{prefix}:run_events:r") == 0

        await brief.create_run("short", {"status": "queued"})
        await brief.add_events("short", [event(0)])
        assert 0 < await raw.pttl(f"{prefix}:run_events:short") <= 300
        assert await brief.run_ids(statuses=["queued"]) == ["short"]
        await asyncio.sleep(0.5)
        assert await brief.load_run("short") is None and await brief.events("short") == []
        assert await brief.run_ids(statuses=["queued"]) == []
        assert await raw.smembers(f"{prefix}:runs:active") == set()  # the expired id left the index
    finally:
        await raw.aclose()
        await store.aclose()
        await brief.aclose()


async def test_redis_finds_finished_runs_under_its_own_prefix_only(redis_url: str) -> None:
    import uuid

    from createagents.adapters.redis_store import RedisConversationStore

    prefix = f"test-{uuid.uuid4().hex[:8]}*[x]"  # glob characters in the prefix match only themselves
    store = RedisConversationStore(redis_url, prefix=prefix)
    other = RedisConversationStore(redis_url, prefix=prefix.replace("*", "yy").replace("[x]", "x"))  # the glob's match
    try:
        for i in range(30):
            await store.create_run(f"id:{i:02d}", {"status": "completed" if i % 3 else "failed"})
        await other.create_run("theirs", {"status": "completed"})
        assert await store.run_ids(statuses=["completed"]) == [f"id:{i:02d}" for i in range(30) if i % 3]
        assert await store.run_ids(statuses=["failed", "queued"]) == [f"id:{i:02d}" for i in range(0, 30, 3)]
    finally:
        await store.aclose()
        await other.aclose()


async def test_redis_a_retried_create_or_batch_is_done_once(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client retrying after a lost reply sends the same command, token and all: the script does nothing more."""
    import uuid

    from createagents.adapters.redis_store import RedisConversationStore

    store = RedisConversationStore(redis_url, prefix=f"test-{uuid.uuid4().hex[:8]}")
    token = [""]
    monkeypatch.setattr(store, "_op_key", lambda: f"{store.prefix}:op:{token[0]}")  # a retry reuses its token
    try:
        token[0] = "create"
        await store.create_run("r", {"status": "in_progress"})
        await store.create_run("r", {"status": "in_progress"})  # the retry: no "exists already"
        token[0] = "add"
        assert await store.add_events("r", [event(0), event(1)]) == 2
        assert await store.add_events("r", [event(0), event(1)]) == 2  # the retry: not added twice
        assert await store.events("r") == [event(0), event(1)]
        token[0] = "create again"  # a new call, a new token
        with pytest.raises(ConfigurationError, match="exists already"):
            await store.create_run("r", {"status": "in_progress"})
        token[0] = "add again"
        assert await store.add_events("r", [event(2)]) == 3
    finally:
        await store.aclose()

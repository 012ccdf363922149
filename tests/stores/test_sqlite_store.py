"""The SQLite store: what only a file shared by processes has to get right (the common contract is test_contract.py)."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from createagents import ConfigurationError, CreateAgent, Message, StoreUnavailableError, ToolError
from createagents.adapters import sqlite_store
from createagents.adapters.sqlite_store import SCHEMA_VERSION, SQLiteConversationStore, StoreFileError
from createagents.domain.codec import message_from_dict
from createagents.domain.messages import AssistantMessage, SystemMessage, ToolCall, ToolMessage, UserMessage

ROOT = Path(__file__).resolve().parents[2]

EVERY_KIND: list[Message] = [
    SystemMessage(content="be brief"),
    UserMessage(content='Lisbon? ünïcödé 😀 \x00 "quoted" \n'),
    AssistantMessage(
        content="Let me check.",
        tool_calls=(
            ToolCall(id="call_1", name="get_weather", arguments='{"city": "Lisbon"}'),
            ToolCall(id="call_2", name="add", arguments='{"a": 1, "b": 2}'),
        ),
        thinking="The user wants the weather; call the tool.",
    ),
    ToolMessage(tool_call_id="call_1", name="get_weather", content="22 C"),
    ToolMessage(tool_call_id="call_2", name="add", content="Error: no such city", is_error=True),
    AssistantMessage(content="22 C and sunny.", thinking="done"),
]


def turn(i: int) -> list[Message]:
    return [UserMessage(content=f"q{i}"), AssistantMessage(content=f"a{i}")]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "chats.db"


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def files_beside(path: Path) -> list[str]:
    """The journal, WAL and shared-memory files SQLite keeps next to the database while it is open."""
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name + "-"))


def rows(path: Path, sql: str, *parameters: object) -> list[tuple[object, ...]]:
    """Read the file as any other SQLite tool would."""
    db = sqlite3.connect(path)
    try:
        return db.execute(sql, parameters).fetchall()
    finally:
        db.close()


# -- a file that outlives the process ----------------------------------------------------------------------


async def test_a_new_store_on_the_same_file_reads_every_message_kind_back(path: Path) -> None:
    first = SQLiteConversationStore(path)
    await first.append("c", EVERY_KIND)
    await first.append("c", turn(1))
    await first.aclose()

    second = SQLiteConversationStore(str(path))
    try:
        assert await second.load("c") == [*EVERY_KIND, *turn(1)]
    finally:
        await second.aclose()
    # versioned codec JSON, numbered 1, 2, 3...: readable without createagents
    stored = rows(path, "SELECT seq, message FROM messages WHERE conversation_id = 'c' ORDER BY seq")
    assert [seq for seq, _ in stored] == list(range(1, len(EVERY_KIND) + 3))
    decoded = [json.loads(str(text)) for _, text in stored]
    assert all(d["v"] == 1 for d in decoded)
    assert [message_from_dict(d) for d in decoded] == [*EVERY_KIND, *turn(1)]
    assert rows(path, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]


async def test_a_new_agent_on_the_same_file_continues_the_conversation(path: Path) -> None:
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"22 C in {city}"

    def broken(city: str) -> str:
        """Always fails."""
        raise ToolError("no such city")

    agent = CreateAgent(provider="test", store=SQLiteConversationStore(path), tools=[get_weather, broken])
    await agent.conversation("user-42").chat("weather?")
    before = await agent.conversation("user-42").history()
    await agent.aclose()
    assert [type(m).__name__ for m in before] == [
        "UserMessage",
        "AssistantMessage",
        "ToolMessage",
        "ToolMessage",
        "AssistantMessage",
    ]
    assert before[1].tool_calls and [m.is_error for m in before[2:4]] == [False, True]  # type: ignore[union-attr]

    again = CreateAgent(provider="test", store=SQLiteConversationStore(path), tools=[get_weather, broken])
    try:
        assert await again.conversation("user-42").history() == before
        await again.conversation("user-42").chat("and tomorrow?")
        assert (await again.conversation("user-42").history())[: len(before)] == before
        assert len(await again.conversation("user-42").history()) == 2 * len(before)
    finally:
        await again.aclose()


# -- several processes, one file ---------------------------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import asyncio, json, pathlib, sys, time
    from createagents.adapters.sqlite_store import SQLiteConversationStore
    from createagents.domain.messages import AssistantMessage, ToolCall, ToolMessage, UserMessage

    path, tag, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    folder = pathlib.Path(path).parent

    async def main():
        store = SQLiteConversationStore(path, busy_timeout=30)
        await store.load("warm-up")  # opens the file (creating the schema if it is first)
        (folder / f"ready-{tag}").touch()
        while not (folder / "go").exists():
            time.sleep(0.001)
        taken = []
        if mode == "append":
            started = time.time()
            for i in range(20):
                await store.append("shared", [
                    UserMessage(content=f"{tag} {i} 0"),
                    AssistantMessage(content=f"{tag} {i} 1", tool_calls=(ToolCall(id=f"{tag}{i}", name="t"),)),
                    *(ToolMessage(tool_call_id=f"{tag}{i}", name="t", content=f"{tag} {i} {j}") for j in range(2, 29)),
                    AssistantMessage(content=f"{tag} {i} 29"),
                ])
            taken = [started, time.time()]
        else:
            for i in range(100) if tag == "A" else reversed(range(100)):  # they meet in the middle
                if await store.take_paused("shared", f"turn-{i}") is not None:
                    taken.append(i)
                await asyncio.sleep(0.001)  # so that a late starter still finds some left
        await store.aclose()
        print(json.dumps(taken))

    asyncio.run(main())
    """
)


def run_workers(path: Path, mode: str, tags: tuple[str, ...] = ("A", "B")) -> list[list[Any]]:
    """Start one OS process per tag, release them together, and wait for them."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(path), tag, mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for tag in tags
    ]
    try:
        deadline = time.monotonic() + 60
        while not all((path.parent / f"ready-{tag}").exists() for tag in tags):
            assert time.monotonic() < deadline, "the workers did not start"
            assert all(p.poll() is None for p in processes), [p.communicate() for p in processes]
            time.sleep(0.01)
        (path.parent / "go").touch()
        results = []
        for p in processes:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            results.append(json.loads(out))
        return results
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()


async def test_two_processes_appending_to_one_conversation_keep_every_turn_whole(path: Path) -> None:
    (a_start, a_end), (b_start, b_end) = await asyncio.to_thread(run_workers, path, "append")
    assert a_start < b_end and b_start < a_end  # they did run at the same time
    store = SQLiteConversationStore(path)
    try:
        history = await store.load("shared")
    finally:
        await store.aclose()
    size = 30
    assert len(history) == 2 * 20 * size
    seen: dict[str, list[int]] = {"A": [], "B": []}
    for start in range(0, len(history), size):
        messages = history[start : start + size]
        tag, i, _ = messages[0].content.split()
        assert [m.content for m in messages] == [f"{tag} {i} {j}" for j in range(size)]
        seen[tag].append(int(i))
    assert seen == {"A": list(range(20)), "B": list(range(20))}  # each process's turns, whole and in its order
    stored = rows(path, "SELECT seq FROM messages WHERE conversation_id = 'shared' ORDER BY seq")
    assert [seq for (seq,) in stored] == list(range(1, 2 * 20 * size + 1))


async def test_two_processes_taking_the_same_paused_turns_get_each_once(path: Path) -> None:
    store = SQLiteConversationStore(path)
    for i in range(100):
        await store.save_paused("shared", f"turn-{i}", {"i": i})
    await store.aclose()
    a, b = await asyncio.to_thread(run_workers, path, "take")
    assert sorted(a + b) == list(range(100)) and not set(a) & set(b)
    assert a and b  # both really took part
    assert rows(path, "SELECT count(*) FROM paused_turns") == [(0,)]


async def test_concurrent_takers_in_one_process_get_a_paused_turn_once(path: Path) -> None:
    first, second = SQLiteConversationStore(path), SQLiteConversationStore(path)  # two connections to one file
    try:
        for i in range(30):
            await first.save_paused("c", f"t{i}", {"i": i, "pending": ["call_1"]})
        takes = [store.take_paused("c", f"t{i}") for i in range(30) for store in (first, second, first, second)]
        got = await asyncio.gather(*takes)
        assert sorted(s["i"] for s in got if s is not None) == list(range(30))
        assert await first.paused_ids("c") == []
    finally:
        await first.aclose()
        await second.aclose()


def first_uses_at_once(path: Path, count: int) -> list[BaseException]:
    """`count` stores, each on its own event loop in its own thread, first used on one file at the same moment."""
    start = threading.Barrier(count, timeout=30)
    errors: list[BaseException] = []

    async def first_use(i: int) -> None:
        store = SQLiteConversationStore(path)
        await asyncio.to_thread(start.wait)
        try:
            await store.append("c", turn(i))
        finally:
            await store.aclose()

    def in_thread(i: int) -> None:
        try:
            asyncio.run(first_use(i))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=in_thread, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def test_many_first_opens_of_a_new_file_at_once_all_succeed(tmp_path: Path) -> None:
    """While one connection sets the file up, SQLite answers the others "busy" at once, busy timeout or not."""
    for trial in range(40):
        path = tmp_path / f"new-{trial}.db"
        assert first_uses_at_once(path, 4) == []
        assert rows(path, "SELECT count(*) FROM messages") == [(8,)]


# -- files it must not touch -------------------------------------------------------------------------------


async def open_fails(path: Path, match: str) -> StoreFileError:
    before = await asyncio.to_thread(path.read_bytes)
    store = SQLiteConversationStore(path)
    try:
        for _ in range(2):  # every use says so, not only the first
            with pytest.raises(StoreFileError, match=match) as caught:
                await store.load("c")
        with pytest.raises(StoreFileError):
            await store.append("c", turn(1))
    finally:
        await store.aclose()
    assert await asyncio.to_thread(path.read_bytes) == before
    assert files_beside(path) == []
    assert isinstance(caught.value, ConfigurationError) and str(path) in str(caught.value)
    return caught.value


async def test_a_file_that_is_not_a_database_is_refused_and_left_alone(path: Path) -> None:
    await asyncio.to_thread(path.write_bytes, os.urandom(16384))
    await open_fails(path, "not a SQLite database")


FOREIGN = {
    "unrelated tables": [
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)",
        "INSERT INTO users VALUES (1, 'ada')",
    ],
    "a meta table of its own": ["CREATE TABLE meta (name TEXT, size INTEGER)", "INSERT INTO meta VALUES ('x', 1)"],
    "no schema version": ["CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)", "INSERT INTO meta VALUES ('a', 'b')"],
    "another application id": [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
        "INSERT INTO meta VALUES ('schema_version', '1')",
        "PRAGMA application_id = 1234",
    ],
    "only pragmas set": ["PRAGMA application_id = 1234"],
}


@pytest.mark.parametrize("kind", list(FOREIGN))
async def test_another_applications_database_is_refused_and_left_alone(path: Path, kind: str) -> None:
    db = sqlite3.connect(path)
    for statement in FOREIGN[kind]:
        db.execute(statement)
    db.commit()
    db.close()
    await open_fails(path, "not a createagents conversation store")


async def test_a_file_from_a_newer_schema_is_refused_and_left_alone(path: Path) -> None:
    store = SQLiteConversationStore(path)
    await store.append("c", turn(1))
    await store.aclose()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    error = await open_fails(path, "newer createagents")
    assert f"schema version {SCHEMA_VERSION + 1}" in str(error) and "upgrade" in str(error)


async def test_without_aiosqlite_the_error_says_what_to_install(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aiosqlite", None)
    with pytest.raises(ConfigurationError, match=r'pip install "createagents\[sqlite\]"'):
        SQLiteConversationStore(path)


@pytest.mark.parametrize(
    "options",
    [{"ttl": 0}, {"ttl": -1.0}, {"ttl": float("nan")}, {"ttl": True}, {"busy_timeout": -1}, {"busy_timeout": "5"}],
)
def test_bad_options_are_a_configuration_error(path: Path, options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        SQLiteConversationStore(path, **options)  # type: ignore[arg-type]


async def test_a_file_that_cannot_be_opened_is_a_clear_error(tmp_path: Path) -> None:
    store = SQLiteConversationStore(tmp_path / "no such folder" / "chats.db")
    with pytest.raises(StoreFileError, match="cannot open the conversation store"):
        await store.load("c")
    await store.aclose()


def test_a_store_in_memory_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="InMemoryConversationStore"):
        SQLiteConversationStore(":memory:")


# -- transactions ------------------------------------------------------------------------------------------


async def test_an_append_that_fails_midway_leaves_the_history_as_it_was(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteConversationStore(path)
    try:
        await store.append("c", turn(1))
        monkeypatch.setattr(sqlite_store, "_TOUCH", "INSERT INTO nowhere VALUES (1)")  # fails after the inserts
        with pytest.raises(StoreUnavailableError):
            await store.append("c", turn(2))
        monkeypatch.undo()
        assert await store.load("c") == turn(1)
        await store.append("c", turn(3))  # the connection is not left inside a transaction
        assert await store.load("c") == [*turn(1), *turn(3)]
    finally:
        await store.aclose()


@pytest.mark.parametrize("stage", ["BEGIN IMMEDIATE", "INSERT INTO messages", "INSERT INTO conversations", "COMMIT"])
async def test_an_append_cancelled_at_any_statement_adds_its_whole_turn_or_nothing(
    path: Path, stage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteConversationStore(path)
    await store.append("c", turn(1))
    appending: asyncio.Task[None] | None = None

    def cancelling(original: Any) -> Any:
        def statement(self: aiosqlite.Connection, sql: str, *args: Any) -> Any:
            queued = original(self, sql, *args)  # runs on the connection's thread once the task awaits it
            if sql.startswith(stage) and asyncio.current_task() is appending:
                appending.cancel()  # the task is cancelled while the statement is in flight
            return queued

        return statement

    for name in ("execute", "executemany"):
        monkeypatch.setattr(aiosqlite.Connection, name, cancelling(getattr(aiosqlite.Connection, name)))
    try:
        appending = asyncio.create_task(store.append("c", turn(2)))
        with pytest.raises(asyncio.CancelledError):
            await appending
        monkeypatch.undo()
        history = await store.load("c")
        assert history == ([*turn(1), *turn(2)] if stage == "COMMIT" else turn(1))  # the commit was under way
        await store.append("c", turn(3))  # never "cannot start a transaction within a transaction"
        assert await store.load("c") == [*history, *turn(3)]
    finally:
        await store.aclose()


async def test_a_load_does_not_wait_for_a_write_blocked_by_another_process(path: Path) -> None:
    store = SQLiteConversationStore(path, busy_timeout=10)
    await store.append("c", turn(1))
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        append = asyncio.create_task(store.append("c", turn(2)))
        await asyncio.sleep(0.1)
        assert not append.done()  # queued behind the lock, off the event loop
        started = time.monotonic()
        assert await asyncio.wait_for(store.load("c"), 2) == turn(1)
        assert time.monotonic() - started < 1
        other.execute("COMMIT")
        await asyncio.wait_for(append, 5)
        assert await store.load("c") == [*turn(1), *turn(2)]
    finally:
        other.close()
        await store.aclose()


async def test_a_write_gives_up_after_the_busy_timeout(path: Path) -> None:
    store = SQLiteConversationStore(path, busy_timeout=0.2)
    await store.load("c")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="locked"):
            await store.append("c", turn(1))
        waited = time.monotonic() - started
        ticker.cancel()
        assert 0.15 < waited < 3
        assert ticks >= 5  # the event loop ran on while the write waited
        other.execute("ROLLBACK")
        await store.append("c", turn(1))
        assert await store.load("c") == turn(1)
    finally:
        other.close()
        await store.aclose()


# -- ttl ---------------------------------------------------------------------------------------------------


async def test_a_conversation_not_appended_to_for_ttl_is_gone(path: Path) -> None:
    clock = Clock()
    store = SQLiteConversationStore(path, ttl=60, clock=clock)
    try:
        await store.append("old", turn(1))
        await store.append("kept", turn(1))
        clock.now += 30
        await store.append("kept", turn(2))
        assert await store.load("old") == turn(1)  # 30 s: within the ttl
        clock.now += 31
        assert await store.load("old") == []  # 61 s since its last append (loads do not count)
        assert await store.load("kept") == [*turn(1), *turn(2)]
        assert await store.list_ids() == ["kept"]
        assert rows(path, "SELECT count(*) FROM messages WHERE conversation_id = 'old'") == [(2,)]  # not yet purged
    finally:
        await store.aclose()


async def test_an_append_to_an_expired_conversation_starts_it_afresh(path: Path) -> None:
    clock = Clock()
    store = SQLiteConversationStore(path, ttl=60, clock=clock)
    try:
        await store.append("other", turn(0))  # a sweep now; the next one is due in 60 s
        clock.now += 10
        await store.append("c", turn(1))
        clock.now += 55
        await store.append("other", turn(0))  # the sweep: "c" is 55 s old, alive
        clock.now += 6
        await store.append("c", turn(2))  # 61 s: gone, and no sweep due; the append purges it itself
        assert await store.load("c") == turn(2)
        assert rows(path, "SELECT count(*) FROM messages WHERE conversation_id = 'c'") == [(2,)]
    finally:
        await store.aclose()


async def test_expired_conversations_are_swept_by_a_later_append(path: Path) -> None:
    clock = Clock()
    store = SQLiteConversationStore(path, ttl=60, clock=clock)
    try:
        for conversation_id in ("a", "b", "c"):
            await store.append(conversation_id, turn(1))
        await store.save_paused("a", "t1", {"waiting": True})
        clock.now += 61
        await store.append("new", turn(4))
        assert rows(path, "SELECT DISTINCT conversation_id FROM messages") == [("new",)]
        assert rows(path, "SELECT id FROM conversations") == [("new",)]
        assert await store.paused_ids("a") == ["t1"]  # paused turns wait until taken or deleted
        assert await store.list_ids() == ["a", "new"]
    finally:
        await store.aclose()


async def test_a_turn_in_flight_keeps_its_conversation_alive(path: Path) -> None:
    clock = Clock()
    store = SQLiteConversationStore(path, ttl=60, clock=clock)
    try:
        await store.append("c", turn(1))
        clock.now += 50
        store.hold("c")  # a turn starts while the history is alive...
        clock.now += 500  # ...and runs long
        assert await store.load("c") == turn(1)
        await store.append("d", turn(9))  # a sweep meanwhile spares it
        await store.append("c", turn(2))
        store.release("c")
        assert await store.load("c") == [*turn(1), *turn(2)]
        clock.now += 61
        assert await store.load("c") == []
    finally:
        await store.aclose()


async def test_without_ttl_nothing_expires(path: Path) -> None:
    clock = Clock()
    store = SQLiteConversationStore(path, clock=clock)
    try:
        await store.append("c", turn(1))
        clock.now += 10 * 365 * 24 * 3600
        await store.append("d", turn(2))
        assert await store.load("c") == turn(1)
        assert await store.list_ids() == ["c", "d"]
    finally:
        await store.aclose()


async def test_list_ids_includes_conversations_with_only_paused_turns(path: Path) -> None:
    store = SQLiteConversationStore(path)
    try:
        await store.append("b", turn(1))
        await store.save_paused("a", "t1", {})
        await store.save_paused("c", "t1", {})
        await store.save_paused("c", "t2", {})
        assert await store.list_ids() == ["a", "b", "c"]
        assert await store.list_ids(after="a", limit=1) == ["b"]
        await store.clear("b")
        assert await store.list_ids() == ["a", "c"]
        assert await store.list_ids(limit=0) == []
    finally:
        await store.aclose()


# -- connections and event loops ---------------------------------------------------------------------------


async def test_aclose_closes_the_file_and_a_later_use_opens_it_again(path: Path) -> None:
    store = SQLiteConversationStore(path)
    await store.append("c", turn(1))
    assert files_beside(path) == ["chats.db-shm", "chats.db-wal"]  # open, in WAL mode
    await store.aclose()
    assert files_beside(path) == []  # the last connection out folded the log into the file
    await store.aclose()  # twice is fine
    await store.append("c", turn(2))
    assert await store.load("c") == [*turn(1), *turn(2)]
    await store.aclose()
    assert files_beside(path) == []


def test_one_store_across_event_loops_one_after_another(path: Path) -> None:
    store = SQLiteConversationStore(path)

    async def busy(base: int) -> None:
        await asyncio.gather(*(store.append("c", turn(base + i)) for i in range(10)))  # contends for the lock

    asyncio.run(busy(0))
    assert files_beside(path) == []  # the loop closed its connections when it shut down
    asyncio.run(busy(10))
    history = asyncio.run(store.load("c"))
    assert sorted(int(m.content[1:]) for m in history[::2]) == list(range(20))
    asyncio.run(store.aclose())


QUIET_EXIT = textwrap.dedent(
    """
    import asyncio, sys
    from createagents import CreateAgent
    from createagents.adapters.sqlite_store import SQLiteConversationStore

    store = SQLiteConversationStore(sys.argv[1])  # never closed
    agent = CreateAgent(provider="test", store=store)

    async def main():
        await agent.conversation("c").chat("one")

    asyncio.run(main())
    asyncio.run(main())
    agent.conversation("c").chat_sync("two")  # on the blocking API's loop, which never shuts down
    loop = asyncio.new_event_loop()
    loop.run_until_complete(main())
    loop.close()  # without shutting down: nothing closed the store there
    """
)


@pytest.mark.parametrize("flags", [(), ("-W", "default")])
def test_a_script_that_never_closes_the_store_exits_quietly_and_leaves_no_log(
    path: Path, flags: tuple[str, ...]
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, *flags, "-c", QUIET_EXIT, str(path)], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert files_beside(path) == []  # every connection was closed: the log is folded into the file
    assert rows(path, "SELECT count(*) FROM messages") == [(8,)]  # four turns, on four event loops


STUCK_LOOP = textwrap.dedent(
    """
    import asyncio, sys, threading, time
    from createagents.adapters.sqlite_store import SQLiteConversationStore

    store = SQLiteConversationStore(sys.argv[1])
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    asyncio.run_coroutine_threadsafe(store.load("c"), loop).result()
    loop.call_soon_threadsafe(time.sleep, 60)  # that loop is stuck: nothing can close the store there
    """
)


def test_a_script_exits_even_when_the_store_cannot_be_closed(path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", STUCK_LOOP, str(path)], capture_output=True, text=True, env=env, timeout=50
    )
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - started < 30  # gave up closing after a moment; no thread kept the process alive


def threads_settle_at(count: int) -> int:
    """The number of threads, once it reaches `count` (aiosqlite's end just after a close is answered)."""
    for _ in range(200):
        if threading.active_count() == count:
            break
        time.sleep(0.005)
    return threading.active_count()


def test_a_new_event_loop_closes_what_an_ended_one_left_open(path: Path) -> None:
    store = SQLiteConversationStore(path)
    before = threading.active_count()
    loop = asyncio.new_event_loop()
    loop.run_until_complete(store.append("c", turn(1)))
    loop.close()  # without shutting down its async generators: its connections stay open
    assert threads_settle_at(before + 2) == before + 2  # a writer and a reader, each on its own thread

    async def use() -> None:
        assert await store.load("c") == turn(1)
        # this loop's two connections and the thread `to_thread` runs on; the ended loop's two are gone
        assert await asyncio.to_thread(threads_settle_at, before + 3) == before + 3

    asyncio.run(use())
    assert threads_settle_at(before) == before


def test_one_store_from_two_event_loops_at_once(path: Path) -> None:
    """`chat_sync` runs on a loop of its own, in a thread, while async code may use the same store."""
    store = SQLiteConversationStore(path)
    both_open = threading.Barrier(2, timeout=30)
    errors: list[BaseException] = []

    async def busy(prefix: str) -> None:
        await store.load("c")
        await asyncio.to_thread(both_open.wait)
        for batch in range(10):
            await asyncio.gather(
                *(
                    store.append("c", [UserMessage(content=f"{prefix}{batch}-{i}"), AssistantMessage(content=prefix)])
                    for i in range(10)
                )
            )

    def in_thread() -> None:
        try:
            asyncio.run(asyncio.wait_for(busy("T"), 30))
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=in_thread)
    thread.start()
    try:
        asyncio.run(asyncio.wait_for(busy("M"), 30))
    finally:
        thread.join(60)
    assert errors == []
    history = asyncio.run(store.load("c"))
    assert len(history) == 2 * 2 * 10 * 10
    assert all(u.content[0] == a.content for u, a in zip(history[::2], history[1::2], strict=True))
    asyncio.run(store.aclose())

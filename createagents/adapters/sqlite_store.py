"""Conversation histories and background runs in one SQLite file: they survive restarts and are shared by the
processes of one machine.

    store = SQLiteConversationStore("chats.db", ttl=30 * 24 * 3600)   # pip install "createagents[sqlite]"
    agent = CreateAgent(provider="openai", model="gpt-4o-mini", store=store)

The file is plain SQLite, schema version 2, readable by any SQLite tool:

    meta(key, value)                             'schema_version' -> '2', 'application' -> 'createagents'
    conversations(id, updated_at)                one row per stored history; unix time of its last append
    messages(conversation_id, seq, message)      seq 1, 2, 3... per conversation; `message` is the versioned
                                                 JSON of `createagents.domain.codec` (`message_from_dict`)
    paused_turns(conversation_id, turn_id, state, saved_at, expires_at)
                                                 `state` is JSON; `expires_at` is its "expires_at" (or NULL)
    runs(id, record, status, created_at)         a background run: `record` is JSON, `status` a copy of its
                                                 "status" (indexed, for `run_ids`), `created_at` unix time
    run_events(run_id, seq, event)               seq 0, 1, 2... per run; `event` is JSON

Version 1 (before runs) is migrated in place when a store opens it: one
transaction adds the run tables and the `expires_at` column. A process of an
older createagents refuses the migrated file (it is newer than it reads).

How it keeps the store contract:

- The event loop never waits on the disk: `aiosqlite` runs each connection on
  its own thread. Each event loop gets its own two connections, opened on
  first use: a writer, whose transactions one `asyncio.Lock` keeps whole, and
  a reader, so a `load` never waits behind a writer blocked by another
  process. A store used from a new event loop (a second `asyncio.run`, the
  blocking API's loop) opens connections there. A loop closes its
  connections when it shuts down (as it does its async generators), and what
  is left open at exit is closed then: a script that never calls `aclose()`
  still exits at once, with the log folded back into the file.
- The file is in WAL mode with `synchronous=NORMAL`: readers never block the
  writer and a commit does not wait for the disk (a power cut may lose the
  last turns, never corrupt the file or split a turn). Writers from any number
  of processes queue on SQLite's lock for up to `busy_timeout` seconds.
- `append` is one `BEGIN IMMEDIATE` transaction: it takes the write lock
  before it reads the last sequence number, inserts the turn's messages with
  consecutive numbers after it, and commits, so turns from several tasks or
  processes never interleave or get lost, and a crash mid-append leaves the
  previous history as it was. A cancelled append adds nothing, unless its
  commit was already under way: then it adds the whole turn.
- `take_paused` is one `DELETE ... RETURNING`: of two takers, in any
  processes, exactly one gets the state.
- `update_run` is one `BEGIN IMMEDIATE` transaction (read the status, check
  it, merge, write): of a cancel and a completion, in any processes, exactly
  one wins. `add_events` numbers a batch after the run's last event and
  inserts it in one transaction; `events` is one indexed range read.
- Opening checks before it writes anything: an empty file gets the schema; a
  file with a newer schema version, another application's database, or a file
  that is not a database (or is damaged) raises `StoreFileError` and is left
  byte for byte as it was.

`ttl` (seconds, default `None`: never) forgets a conversation whose last
*append* is older than that. Only appends count, not loads: a load stays a
plain read, and every completed turn appends, so a conversation in use stays
alive. An expired history reads as empty and leaves `list_ids` at once; its
rows are purged lazily, by the next append to it (in the same transaction,
so it starts afresh) and by a sweep that runs inside an append at most once
per `ttl`. A turn in flight in this process (`hold`) keeps its conversation
alive until it ends, as the memory store does. Paused turns do not expire
with the history: they wait until taken or `delete`d, except that one whose
`expires_at` is more than `PAUSED_GRACE` (a day) past is dropped by the next
`save_paused` (of any conversation): the application refuses it anyway.

Runs are kept `ttl` seconds after they were created, or `RUN_TTL` (30 days)
without a `ttl`: `create_run` sweeps older ones, at most once an hour, so a
run may outlive that by up to an hour. A run still queued or in progress is
never swept: the server that finds it left behind (`run_ids`) finishes it first.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import json
import math
import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ..application.ports import ConversationStore, RunLog
from ..domain.codec import UnreadableMessageError, message_from_dict, message_to_dict
from ..domain.errors import ConfigurationError, StoreUnavailableError
from ..domain.messages import Message
from ._runs import (
    ACTIVE_RUN_STATUSES,
    PAUSED_GRACE,
    check_run_id,
    check_statuses,
    decode_object,
    decode_objects,
    encode_events,
    event_window,
    paused_deadline,
    run_changes,
    run_record,
)

if TYPE_CHECKING:
    import aiosqlite

T = TypeVar("T")

__all__ = ["PAUSED_GRACE", "RUN_TTL", "SCHEMA_VERSION", "SQLiteConversationStore", "StoreFileError"]

RUN_TTL = 30 * 24 * 3600
"""Seconds a run is kept when the store has no `ttl` of its own (as OpenAI keeps responses)."""


SCHEMA_VERSION = 2
APPLICATION_ID = 0x63616774  # "cagt" in the SQLite header (`PRAGMA application_id`): this file is a createagents store
_RUN_SWEEP_EVERY = 3600.0  # seconds between two sweeps of old runs by one store

# version -> the tables a file of that version has
_TABLES_OF = {
    1: frozenset({"meta", "conversations", "messages", "paused_turns"}),
    2: frozenset({"meta", "conversations", "messages", "paused_turns", "runs", "run_events"}),
}
_TABLES = _TABLES_OF[SCHEMA_VERSION]

_SCHEMA_V1 = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE conversations (id TEXT PRIMARY KEY, updated_at REAL NOT NULL) WITHOUT ROWID",
    "CREATE INDEX conversations_by_updated_at ON conversations (updated_at)",
    "CREATE TABLE messages (conversation_id TEXT NOT NULL, seq INTEGER NOT NULL, message TEXT NOT NULL,"
    " PRIMARY KEY (conversation_id, seq))",
    "CREATE TABLE paused_turns (conversation_id TEXT NOT NULL, turn_id TEXT NOT NULL, state TEXT NOT NULL,"
    " saved_at REAL NOT NULL, PRIMARY KEY (conversation_id, turn_id))",
)
# version -> the statements that take a file from it to the next version (meta is updated beside them)
_MIGRATIONS = {
    1: (
        "ALTER TABLE paused_turns ADD COLUMN expires_at REAL",
        "CREATE INDEX paused_turns_by_expires_at ON paused_turns (expires_at)",
        "CREATE TABLE runs (id TEXT PRIMARY KEY, record TEXT NOT NULL, status TEXT NOT NULL, created_at REAL NOT NULL)",
        "CREATE INDEX runs_by_status ON runs (status)",
        "CREATE INDEX runs_by_created_at ON runs (created_at)",
        "CREATE TABLE run_events (run_id TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL,"
        " PRIMARY KEY (run_id, seq))",
    ),
}
# a new file is a version-1 file migrated: one schema, however a file came to it
_SCHEMA = (*_SCHEMA_V1, *(s for v in range(1, SCHEMA_VERSION) for s in _MIGRATIONS[v]))

_LOAD = "SELECT message FROM messages WHERE conversation_id = ?1 ORDER BY seq"
_LOAD_LIVE = (
    "SELECT message FROM messages WHERE conversation_id = ?1"
    " AND (SELECT updated_at FROM conversations WHERE id = ?1) >= ?2 ORDER BY seq"
)
# one statement per message, all in one transaction: each goes right after the last one committed or inserted
_INSERT = (
    "INSERT INTO messages (conversation_id, seq, message)"
    " SELECT ?1, coalesce(max(seq), 0) + 1, ?2 FROM messages WHERE conversation_id = ?1"
)
_TOUCH = (
    "INSERT INTO conversations (id, updated_at) VALUES (?1, ?2)"
    " ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at"
)
_PURGE_IF_EXPIRED = (
    "DELETE FROM messages WHERE conversation_id = ?1 AND (SELECT updated_at FROM conversations WHERE id = ?1) < ?2"
)
_SWEEP_MESSAGES = "DELETE FROM messages WHERE conversation_id IN (SELECT id FROM conversations WHERE updated_at < ?1)"
_SWEEP_CONVERSATIONS = "DELETE FROM conversations WHERE updated_at < ?1"
_CLEAR_MESSAGES = "DELETE FROM messages WHERE conversation_id = ?1"
_CLEAR_CONVERSATION = "DELETE FROM conversations WHERE id = ?1"
_DELETE_PAUSED = "DELETE FROM paused_turns WHERE conversation_id = ?1"
_LIST = (
    "SELECT id FROM (SELECT id FROM conversations WHERE id > ?1 AND updated_at >= ?2 ORDER BY id LIMIT ?3)"
    " UNION SELECT conversation_id FROM"
    " (SELECT DISTINCT conversation_id FROM paused_turns WHERE conversation_id > ?1 ORDER BY 1 LIMIT ?3)"
    " ORDER BY 1 LIMIT ?3"
)
_LIST_FIRST = (
    "SELECT id FROM (SELECT id FROM conversations WHERE updated_at >= ?2 ORDER BY id LIMIT ?3)"
    " UNION SELECT conversation_id FROM (SELECT DISTINCT conversation_id FROM paused_turns ORDER BY 1 LIMIT ?3)"
    " ORDER BY 1 LIMIT ?3"
)
_SAVE_PAUSED = (
    "INSERT INTO paused_turns (conversation_id, turn_id, state, saved_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)"
    " ON CONFLICT (conversation_id, turn_id) DO UPDATE"
    " SET state = excluded.state, saved_at = excluded.saved_at, expires_at = excluded.expires_at"
)
_DROP_ABANDONED = "DELETE FROM paused_turns WHERE expires_at < ?1"
_LOAD_PAUSED = "SELECT state FROM paused_turns WHERE conversation_id = ?1 AND turn_id = ?2"
_TAKE_PAUSED = "DELETE FROM paused_turns WHERE conversation_id = ?1 AND turn_id = ?2 RETURNING state"
_PAUSED_IDS = "SELECT turn_id FROM paused_turns WHERE conversation_id = ?1 ORDER BY turn_id"

_ACTIVE = ", ".join(f"'{status}'" for status in sorted(ACTIVE_RUN_STATUSES))
_CREATE_RUN = (
    "INSERT INTO runs (id, record, status, created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id) DO NOTHING RETURNING 1"
)
_SWEEP_RUN_EVENTS = (
    f"DELETE FROM run_events WHERE run_id IN (SELECT id FROM runs WHERE created_at < ?1 AND status NOT IN ({_ACTIVE}))"
)
_SWEEP_RUNS = f"DELETE FROM runs WHERE created_at < ?1 AND status NOT IN ({_ACTIVE})"
_LOAD_RUN = "SELECT record FROM runs WHERE id = ?1"
_READ_RUN = "SELECT status, record FROM runs WHERE id = ?1"
_WRITE_RUN = "UPDATE runs SET record = ?2, status = ?3 WHERE id = ?1"
_NEXT_SEQ = (
    "SELECT (SELECT 1 FROM runs WHERE id = ?1), (SELECT coalesce(max(seq), -1) + 1 FROM run_events WHERE run_id = ?1)"
)
_ADD_EVENT = "INSERT INTO run_events (run_id, seq, event) VALUES (?, ?, ?)"
_EVENTS = "SELECT event FROM run_events WHERE run_id = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3"
_DELETE_RUN_EVENTS = "DELETE FROM run_events WHERE run_id = ?1"
_DELETE_RUN = "DELETE FROM runs WHERE id = ?1"

_encode = json.JSONEncoder(separators=(",", ":")).encode  # ASCII-only: lone surrogates survive too
_decode = json.JSONDecoder().decode


class StoreFileError(ConfigurationError):
    """The file cannot be used as a conversation store: not a database, damaged, another application's, or newer.

    Raised when the store opens, before anything is written: the file is left as it was.
    """


@dataclass(slots=True, eq=False)
class _Link:
    """One event loop's connections to the file."""

    loop: asyncio.AbstractEventLoop
    writer: aiosqlite.Connection
    reader: aiosqlite.Connection
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # keeps the writer's transactions whole in the loop
    hook: AsyncGenerator[None, None] | None = None  # closes the connections when the loop shuts down
    closed: bool = False


class SQLiteConversationStore(ConversationStore, RunLog):
    """Histories, paused turns and background runs in one SQLite file, for one machine and any number of processes.

    `path` is the file (created with the schema when missing or empty).
    `ttl`: seconds after its last append when a conversation is gone, and
    after its creation when a run is (see the module documentation); `None`
    keeps histories for ever and runs for `RUN_TTL`. `busy_timeout`: seconds a
    write waits for another process's transaction before failing with
    `StoreUnavailableError` ("database is locked"); nothing of it is written. `clock` gives the time
    for `ttl` in seconds since the epoch (wall clock, so processes agree).

    Connections open on first use; `aclose()` closes them, and a later use
    opens new ones.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        ttl: float | None = None,
        busy_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._aiosqlite = _import_aiosqlite()
        if sqlite3.sqlite_version_info < (3, 35, 0):
            raise ConfigurationError(
                f"SQLiteConversationStore needs SQLite 3.35 or newer; this Python has {sqlite3.sqlite_version}"
            )
        name = os.fspath(path)
        if not isinstance(name, str) or not name or name == ":memory:":
            raise ConfigurationError(
                f"path must name a file, got {path!r} (for a store in memory use InMemoryConversationStore)"
            )
        if ttl is not None and not _positive(ttl):
            raise ConfigurationError(f"ttl must be a finite number of seconds > 0 or None, got {ttl!r}")
        if not _positive(busy_timeout, zero=True):
            raise ConfigurationError(f"busy_timeout must be a finite number of seconds >= 0, got {busy_timeout!r}")
        self.path = os.path.abspath(name)
        self.ttl: float | None = None if ttl is None else float(ttl)
        self.busy_timeout = float(busy_timeout)
        self._clock = clock
        self._guard = threading.Lock()  # the event loops using the store may run in several threads
        self._links: dict[asyncio.AbstractEventLoop, _Link] = {}
        self._opening: dict[asyncio.AbstractEventLoop, asyncio.Task[_Link]] = {}
        self._holds: dict[str, tuple[int, float]] = {}  # conversation -> (turns in flight, when the first began)
        self._next_sweep = 0.0
        self._next_run_sweep = 0.0

    def __repr__(self) -> str:
        return f"SQLiteConversationStore({self.path!r}, ttl={self.ttl!r})"

    # -- the port ------------------------------------------------------------------------------------------

    async def load(self, conversation_id: str) -> list[Message]:
        link = self._links.get(asyncio.get_running_loop()) or await self._connect()
        if self.ttl is None:
            rows = await link.reader.execute_fetchall(_LOAD, (conversation_id,))
        else:
            cutoff = self._cutoff(self._clock(), conversation_id)
            rows = await link.reader.execute_fetchall(_LOAD_LIVE, (conversation_id, cutoff))
        return [_decode_message(text) for (text,) in rows]

    async def append(self, conversation_id: str, messages: Sequence[Message]) -> None:
        if not messages:
            return
        rows = [(conversation_id, _encode(message_to_dict(m))) for m in messages]  # encoding errors write nothing
        now = self._clock()
        ttl = self.ttl

        async def work(db: aiosqlite.Connection) -> None:
            if ttl is not None:
                if now >= self._next_sweep:
                    self._next_sweep = now + ttl
                    sweep = (self._cutoff(now),)
                    await db.execute(_SWEEP_MESSAGES, sweep)
                    await db.execute(_SWEEP_CONVERSATIONS, sweep)
                await db.execute(_PURGE_IF_EXPIRED, (conversation_id, self._cutoff(now, conversation_id)))
            await db.executemany(_INSERT, rows)
            await db.execute(_TOUCH, (conversation_id, now))

        await self._transaction(work)

    async def clear(self, conversation_id: str) -> None:
        async def work(db: aiosqlite.Connection) -> None:
            await db.execute(_CLEAR_MESSAGES, (conversation_id,))
            await db.execute(_CLEAR_CONVERSATION, (conversation_id,))

        await self._transaction(work)

    async def delete(self, conversation_id: str) -> None:
        async def work(db: aiosqlite.Connection) -> None:
            await db.execute(_CLEAR_MESSAGES, (conversation_id,))
            await db.execute(_CLEAR_CONVERSATION, (conversation_id,))
            await db.execute(_DELETE_PAUSED, (conversation_id,))

        await self._transaction(work)

    async def list_ids(self, *, after: str | None = None, limit: int = 100) -> list[str]:
        if limit < 1:
            return []
        link = self._links.get(asyncio.get_running_loop()) or await self._connect()
        cutoff = -math.inf if self.ttl is None else self._cutoff(self._clock())
        rows = await link.reader.execute_fetchall(_LIST_FIRST if after is None else _LIST, (after, cutoff, limit))
        return [conversation_id for (conversation_id,) in rows]

    async def save_paused(self, conversation_id: str, turn_id: str, state: Mapping[str, Any]) -> None:
        text = _encode(dict(state))  # JSON-checked before anything is written
        deadline = paused_deadline(state)
        expires_at = None if deadline is None else deadline - PAUSED_GRACE
        now = self._clock()

        async def work(db: aiosqlite.Connection) -> None:
            await db.execute(_DROP_ABANDONED, (now - PAUSED_GRACE,))  # indexed: nothing to drop costs nothing
            await db.execute(_SAVE_PAUSED, (conversation_id, turn_id, text, now, expires_at))

        await self._transaction(work)

    async def load_paused(self, conversation_id: str, turn_id: str) -> dict[str, Any] | None:
        link = self._links.get(asyncio.get_running_loop()) or await self._connect()
        rows = list(await link.reader.execute_fetchall(_LOAD_PAUSED, (conversation_id, turn_id)))
        return self._paused_state(rows, turn_id)

    async def take_paused(self, conversation_id: str, turn_id: str) -> dict[str, Any] | None:
        return self._paused_state(await self._statement(_TAKE_PAUSED, (conversation_id, turn_id)), turn_id)

    def _paused_state(self, rows: list[Any], turn_id: str) -> dict[str, Any] | None:
        if not rows:
            return None
        state = _decode(rows[0][0])
        if not isinstance(state, dict):
            raise StoreFileError(f"the paused turn {turn_id!r} in {self.path} is damaged: its state is not an object")
        return state

    async def paused_ids(self, conversation_id: str) -> list[str]:
        link = self._links.get(asyncio.get_running_loop()) or await self._connect()
        rows = await link.reader.execute_fetchall(_PAUSED_IDS, (conversation_id,))
        return [turn_id for (turn_id,) in rows]

    # -- runs ----------------------------------------------------------------------------------------------------

    async def create_run(self, run_id: str, record: Mapping[str, Any]) -> None:
        check_run_id(run_id)
        status, text = run_record(record)
        now = self._clock()
        retention = RUN_TTL if self.ttl is None else self.ttl

        async def work(db: aiosqlite.Connection) -> bool:
            if now >= self._next_run_sweep:
                self._next_run_sweep = now + min(retention, _RUN_SWEEP_EVERY)
                await db.execute(_SWEEP_RUN_EVENTS, (now - retention,))
                await db.execute(_SWEEP_RUNS, (now - retention,))
            return bool(await db.execute_fetchall(_CREATE_RUN, (run_id, text, status, now)))

        if not await self._transaction(work):
            raise ConfigurationError(
                f"a run with id {run_id!r} exists already in {self.path}; a new run needs a new id"
            )

    async def load_run(self, run_id: str) -> dict[str, Any] | None:
        link = self._links.get(asyncio.get_running_loop()) or await self._connect()
        rows = list(await link.reader.execute_fetchall(_LOAD_RUN, (run_id,)))
        return decode_object(rows[0][0]) if rows else None

    async def update_run(
        self, run_id: str, changes: Mapping[str, Any], *, statuses: Sequence[str] | None = None
    ) -> dict[str, Any] | None:
        wanted = check_statuses(statuses)
        new = run_changes(changes)

        async def work(db: aiosqlite.Connection) -> dict[str, Any] | None:
            rows = list(await db.execute_fetchall(_READ_RUN, (run_id,)))
            if not rows:
                return None
            status, text = rows[0]
            record = decode_object(text)
            if new and (wanted is None or status in wanted):
                record.update(new)
                await db.execute(_WRITE_RUN, (run_id, _encode(record), record["status"]))
            return record

        return await self._transaction(work)

    async def add_events(self, run_id: str, events: Sequence[Mapping[str, Any]]) -> int:
        encoded = encode_events(events)

        async def work(db: aiosqlite.Connection) -> int:
            ((exists, start),) = await db.execute_fetchall(_NEXT_SEQ, (run_id,))
            if exists is None:  # deleted, or never created: nothing to add to
                return 0
            await db.executemany(_ADD_EVENT, [(run_id, start + i, event) for i, event in enumerate(encoded)])
            return int(start) + len(encoded)

        return await self._transaction(work)

    async def events(self, run_id: str, *, after: int = -1, limit: int = 1000) -> list[dict[str, Any]]:
        start, stop = event_window(after, limit)
        if stop <= start:
            return []
        link = self._links.get(asyncio.get_running_loop()) or await self._connect()
        rows = await link.reader.execute_fetchall(_EVENTS, (run_id, start, stop - start))
        return decode_objects(text for (text,) in rows)

    async def run_ids(self, *, statuses: Sequence[str]) -> list[str]:
        wanted = sorted(check_statuses(statuses) or ())
        if not wanted:
            return []
        link = self._links.get(asyncio.get_running_loop()) or await self._connect()
        sql = f"SELECT id FROM runs WHERE status IN ({', '.join('?' * len(wanted))}) ORDER BY id"
        return [run_id for (run_id,) in await link.reader.execute_fetchall(sql, wanted)]

    async def delete_run(self, run_id: str) -> None:
        async def work(db: aiosqlite.Connection) -> None:
            await db.execute(_DELETE_RUN_EVENTS, (run_id,))
            await db.execute(_DELETE_RUN, (run_id,))

        await self._transaction(work)

    # -- holds -----------------------------------------------------------------------------------------------

    def hold(self, conversation_id: str) -> None:
        with self._guard:
            count, since = self._holds.get(conversation_id, (0, math.inf))
            self._holds[conversation_id] = (count + 1, min(since, self._clock()))

    def release(self, conversation_id: str) -> None:
        with self._guard:
            count, since = self._holds.get(conversation_id, (1, 0.0))
            if count > 1:
                self._holds[conversation_id] = (count - 1, since)
            else:
                self._holds.pop(conversation_id, None)

    async def aclose(self) -> None:
        """Close the connections of every event loop; the store opens new ones if used again."""
        with self._guard:
            links = list(self._links.values())
            self._links.clear()
        for link in links:
            await _close_link(link)

    # -- connections ---------------------------------------------------------------------------------------

    async def _connect(self) -> _Link:
        """This event loop's connections, opened (once, however many tasks ask) if need be."""
        loop = asyncio.get_running_loop()
        with self._guard:
            stale = [self._links.pop(lp) for lp in [lp for lp in self._links if lp.is_closed()]]
            for lp in [lp for lp in self._opening if lp.is_closed()]:
                del self._opening[lp]
            opening = self._opening.get(loop)
            if opening is None:
                opening = self._opening[loop] = loop.create_task(self._open(loop))
                opening.add_done_callback(self._opened)
        for link in stale:  # their loop ended without shutting down its async generators
            await _close_link(link, wait=1.0)
        return await asyncio.shield(opening)  # a cancelled caller does not cancel the opening others wait for

    def _opened(self, task: asyncio.Task[_Link]) -> None:
        with self._guard:
            for loop, opening in list(self._opening.items()):
                if opening is task:
                    del self._opening[loop]
        if not task.cancelled():
            task.exception()  # retrieved: whoever awaited it got it; nobody else needs a log line

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Link:
        writer = await self._open_connection()
        try:
            await self._prepare(writer)
            reader = await self._open_connection()
        except BaseException:
            await _close_quietly(writer)
            raise
        link = _Link(loop=loop, writer=writer, reader=reader)
        # The loop closes the connections when it shuts down (the end of `asyncio.run`, of the blocking API's
        # loop), as it does its async generators: a script that never closes the store still exits cleanly.
        link.hook = _closing(link, weakref.ref(self))
        await link.hook.asend(None)
        with self._guard:
            self._links[loop] = link
        _OPEN.add(self)
        return link

    def _forget(self, link: _Link) -> None:
        with self._guard:
            if self._links.get(link.loop) is link:
                del self._links[link.loop]

    async def _open_connection(self) -> aiosqlite.Connection:
        connection: aiosqlite.Connection = self._aiosqlite.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None
        )
        # aiosqlite's worker thread would keep a script that never closed the store from exiting; a process
        # that ends mid-transaction is a crash SQLite recovers from, so it may run as a daemon.
        thread = getattr(connection, "_thread", connection)
        if isinstance(thread, threading.Thread) and not thread.is_alive():
            thread.daemon = True
        try:
            return await connection
        except sqlite3.Error as e:
            if isinstance(thread, threading.Thread):  # it is stopping: let it answer while this loop still runs
                for _ in range(1000):
                    if not thread.is_alive():
                        break
                    await asyncio.sleep(0.001)
            raise StoreFileError(f"cannot open the conversation store {self.path}: {e}") from e

    async def _prepare(self, db: aiosqlite.Connection) -> None:
        """Check the file is a store this version reads, creating the schema in an empty one; then set it up."""
        deadline = time.monotonic() + self.busy_timeout
        for attempt in itertools.count():
            try:
                if await _is_empty(db):
                    await self._create(db)
                if await self._check(db) < SCHEMA_VERSION:
                    await self._migrate(db)
                await db.execute("PRAGMA journal_mode = WAL")
                await db.execute("PRAGMA synchronous = NORMAL")
                return
            except sqlite3.OperationalError as e:
                if (getattr(e, "sqlite_errorcode", None) or 0) & 0xFF not in (
                    sqlite3.SQLITE_BUSY,
                    sqlite3.SQLITE_LOCKED,
                ):
                    raise StoreFileError(f"cannot open the conversation store {self.path}: {e}") from e
                # Several first opens at once: while one changes the journal mode or builds the WAL index,
                # SQLite answers the others "busy" without waiting. Try again, as a busy timeout would.
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(min(0.001 * 2**attempt, 0.05) * (0.5 + random.random()))
            except sqlite3.DatabaseError as e:  # not a database, or a damaged one
                raise StoreFileError(
                    f"{self.path} is not a createagents conversation store: it is not a SQLite database, or it is "
                    f"damaged ({e}); it was left unchanged"
                ) from e

    async def _create(self, db: aiosqlite.Connection) -> None:
        await db.execute("BEGIN IMMEDIATE")
        try:
            if await _is_empty(db):  # still: another process may have created it meanwhile
                for statement in _SCHEMA:
                    await db.execute(statement)
                await db.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("schema_version", str(SCHEMA_VERSION)), ("application", "createagents")],
                )
                await db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            await db.execute("COMMIT")
        except BaseException:
            await _rollback(db)
            raise

    async def _check(self, db: aiosqlite.Connection) -> int:
        """The file's schema version, once it is sure the file is a createagents store this version can read."""
        (application_id,) = next(iter(await db.execute_fetchall("PRAGMA application_id")))
        tables = {name for (name,) in await db.execute_fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if application_id not in (0, APPLICATION_ID) or "meta" not in tables:
            raise StoreFileError(
                f"{self.path} is a SQLite database but not a createagents conversation store; it was left unchanged"
            )
        try:
            rows = list(await db.execute_fetchall("SELECT value FROM meta WHERE key = 'schema_version'"))
        except sqlite3.OperationalError:  # a `meta` table of some other shape
            rows = []
        version = _int(rows[0][0]) if rows else None
        if version is None:
            raise StoreFileError(
                f"{self.path} is a SQLite database but not a createagents conversation store (no schema version); "
                "it was left unchanged"
            )
        if version > SCHEMA_VERSION:
            raise StoreFileError(
                f"{self.path} was written by a newer createagents (store schema version {version}; this version "
                f"reads up to {SCHEMA_VERSION}): upgrade createagents to use it; it was left unchanged"
            )
        if version < 1 or not _TABLES_OF[version].issubset(tables):
            raise StoreFileError(
                f"{self.path} is a damaged createagents conversation store (schema version {version}, tables "
                f"{sorted(tables)}); it was left unchanged"
            )
        return version

    async def _migrate(self, db: aiosqlite.Connection) -> None:
        """Bring an older file to this schema version in one transaction: all of it, or (on any error) none."""
        await db.execute("BEGIN IMMEDIATE")
        try:
            # again, under the write lock: another process may have migrated it meanwhile
            rows = list(await db.execute_fetchall("SELECT value FROM meta WHERE key = 'schema_version'"))
            version = _int(rows[0][0]) if rows else None
            if version is not None and 1 <= version < SCHEMA_VERSION:
                for step in range(version, SCHEMA_VERSION):
                    for statement in _MIGRATIONS[step]:
                        await db.execute(statement)
                await db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
            await db.execute("COMMIT")
        except BaseException:
            await _rollback(db)
            raise

    # -- writing -------------------------------------------------------------------------------------------

    async def _transaction(self, work: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """Run `work` in one BEGIN IMMEDIATE transaction: all of it is committed, or none of it."""
        link = self._links.get(asyncio.get_running_loop()) or await self._connect()
        db = link.writer
        async with link.lock:
            try:
                await db.execute("BEGIN IMMEDIATE")
                result = await work(db)
                await db.execute("COMMIT")
                return result
            except BaseException as e:
                # Also when cancelled: statements already queued still run on the connection's thread, in
                # order, so this ROLLBACK comes after them and before the next task's transaction.
                await _rollback(db)
                if isinstance(e, sqlite3.OperationalError):  # locked past busy_timeout, disk full, I/O error
                    raise StoreUnavailableError(f"SQLite store {self.path}: {e}", operation="write") from e
                raise

    async def _statement(self, sql: str, parameters: Sequence[Any]) -> list[Any]:
        """One write statement: a transaction of its own, never inside another task's."""
        link = self._links.get(asyncio.get_running_loop()) or await self._connect()
        async with link.lock:
            return list(await link.writer.execute_fetchall(sql, parameters))

    def _cutoff(self, now: float, conversation_id: str | None = None) -> float:
        """Histories last appended before this are gone; a turn in flight keeps its conversation alive."""
        assert self.ttl is not None
        start = now
        with self._guard:
            if conversation_id is None:
                for _, since in self._holds.values():
                    start = min(start, since)
            elif conversation_id in self._holds:
                start = min(start, self._holds[conversation_id][1])
        return start - self.ttl


def _import_aiosqlite() -> Any:
    try:
        import aiosqlite
    except ImportError as e:
        raise ConfigurationError(
            'SQLiteConversationStore needs the aiosqlite package: pip install "createagents[sqlite]"'
        ) from e
    return aiosqlite


def _decode_message(text: str) -> Message:
    try:
        data = _decode(text)
    except ValueError:
        raise UnreadableMessageError(f"a stored message is not JSON: {text!r:.200}") from None
    return message_from_dict(data)


async def _is_empty(db: aiosqlite.Connection) -> bool:
    """No tables, indexes or views, and no application id: nobody's database yet."""
    rows = await db.execute_fetchall(
        "SELECT (SELECT count(*) FROM sqlite_master), (SELECT application_id FROM pragma_application_id)"
    )
    return tuple(next(iter(rows))) == (0, 0)


async def _rollback(db: aiosqlite.Connection) -> None:
    with contextlib.suppress(Exception):  # "no transaction is active" when BEGIN itself failed
        await db.execute("ROLLBACK")


async def _close_quietly(db: aiosqlite.Connection, wait: float = 10.0) -> None:
    """Close a connection, waiting at most `wait` seconds; one whose thread has died is left to the collector."""
    thread = getattr(db, "_thread", None)
    if isinstance(thread, threading.Thread) and not thread.is_alive():
        return  # it died with a loop closed under it: nothing is left to answer a close
    closing = asyncio.ensure_future(db.close())
    # not wait_for: on a timeout it would wait for the cancelled close, which may never end
    await asyncio.wait({closing}, timeout=wait)
    if closing.done() and not closing.cancelled():
        closing.exception()  # retrieved; a close that fails has nothing left to release


async def _close_link(link: _Link, wait: float = 10.0) -> None:
    """Close a loop's connections, from any loop; the second time does nothing and awaits nothing."""
    if link.closed:
        return
    link.closed = True
    await _close_quietly(link.reader, wait)
    await _close_quietly(link.writer, wait)  # the last connection out checkpoints the log into the file
    if link.hook is not None:  # done: its loop has nothing left to close
        step = link.hook.aclose().__await__()
        with contextlib.suppress(StopIteration, RuntimeError):  # RuntimeError: it is the hook closing us
            step.send(None)
        step.close()


async def _closing(link: _Link, store: weakref.ref[SQLiteConversationStore]) -> AsyncGenerator[None, None]:
    """Suspended for the connections' life; its loop closes it when it shuts down, and it closes them."""
    try:
        yield
    finally:
        owner = store()
        if owner is not None:
            owner._forget(link)
        await _close_link(link)


_OPEN: weakref.WeakSet[SQLiteConversationStore] = weakref.WeakSet()


@atexit.register
def _close_at_exit() -> None:
    """Connections still open at exit: on a loop that still runs (`chat_sync`'s, in a daemon thread) or one
    that was closed without shutting down. Left open, they would leave the log beside the file."""
    for store in list(_OPEN):
        with store._guard:
            links = list(store._links.values())
        for link in links:
            if link.closed:
                continue
            with contextlib.suppress(Exception):  # a loop too busy to close them in time: leave them
                if link.loop.is_running():
                    asyncio.run_coroutine_threadsafe(_close_link(link, 1.0), link.loop).result(2.5)
                else:  # aiosqlite answers on whichever loop asks: a loop of our own will do
                    closer = asyncio.new_event_loop()
                    try:
                        closer.run_until_complete(_close_link(link, 1.0))
                    finally:
                        closer.close()


def _positive(value: object, *, zero: bool = False) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    return value >= 0 if zero else value > 0


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None

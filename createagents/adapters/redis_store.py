"""A conversation store and run log in Redis, shared by every process and machine that points at it.

    store = RedisConversationStore("redis://127.0.0.1:6379/0", prefix="myapp", ttl=7 * 24 * 3600)

Needs the official client: `pip install "createagents[redis]"` (imported only
when a Redis store is made). A single Redis server, or a primary behind
Sentinel; not Redis Cluster (one turn touches keys of several hash slots).

Key layout, everything under `{prefix}:` so one Redis can host several apps:

    {prefix}:conversations        sorted set, every member score 0: the ids that have a history or a
                                  paused turn, in byte order (`list_ids` pages it with ZRANGEBYLEX)
    {prefix}:history:{id}         list: the history, one message per item, oldest first, as the versioned
                                  JSON of `createagents.domain.codec` ({"v": 1, "role": ...})
    {prefix}:paused:{id}          hash: paused turn id -> its state as JSON
    {prefix}:op:{token}           string: marks one write as done, kept `OP_TTL` seconds (below)
    {prefix}:run:{id}             hash: a background run's record, field -> its value as JSON
                                  (`status` -> '"in_progress"')
    {prefix}:run_events:{id}      list: the run's events as JSON; the index of an item is its number
    {prefix}:runs:active          set: the ids of the runs queued or in progress (`run_ids`)

Every write is one Lua script, so it is atomic: `append` adds the id to the
index, pushes the turn's messages and sets the expiry in one step; two
processes appending to one conversation never interleave or lose a turn, and
a connection dropped mid-request leaves nothing half-written (Redis runs a
script only once it has all of it). `take_paused` reads and deletes in one
script, so of two takers, in any processes, exactly one gets the state.

`update_run` is one script too (read the status, check it, write the changed
fields, keep `runs:active` in step): of a cancel and a completion, in any
processes, exactly one wins. `add_events` pushes a whole batch in one script;
`events` is one LRANGE.

Retries never duplicate a write: `append`, `take_paused`, `create_run` and
`add_events` carry a random token, and a script that sees its token's `op` key again (a client retrying
after its reply was lost) does nothing more (`take_paused` answers the state
it took). A store built from a URL retries twice on a dropped connection or a
timeout; a client you pass keeps its own retry policy.

With `ttl`, the history and the paused turns of a conversation expire `ttl`
seconds after its last write (`append`, `save_paused`); `list_ids` drops ids
whose keys expired. Keep `ttl` well above the longest turn: a history that
expires while a turn runs is gone when the turn appends. Without `ttl`, the
paused turns that have an `expires_at` (unix seconds) expire `PAUSED_GRACE` (a
day) after the latest of them, and `save_paused` drops those of its
conversation more than that past: the application refuses them anyway. A
paused turn without `expires_at` keeps them all until taken.

A run's keys expire `ttl` seconds after its last write (`create_run`,
`update_run`, `add_events`), or `RUN_TTL` (30 days) without a `ttl`;
`run_ids` drops expired ids from `runs:active`. `run_ids` for other statuses
than queued and in progress scans the keys under the prefix: fine for a
server starting up, not for every request.

A store built from a URL owns its connections: one pool per event loop that
uses it, so it serves one `asyncio.run` after another (or loops in several
threads); a pool is closed quietly when its loop shuts down, and `aclose`
closes them all. A client you pass stays yours: the store uses it as it is
and `aclose` leaves it open (a redis-py client closed at the end of one
`asyncio.run` connects again in the next).
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import json
import math
import re
import secrets
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any

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
    encode_json,
    event_window,
    paused_deadline,
    run_changes,
    run_record,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["OP_TTL", "PAUSED_GRACE", "RUN_TTL", "RedisConversationStore", "StoreUnavailableError"]

RUN_TTL = 30 * 24 * 3600
"""Seconds a run is kept when the store has no `ttl` of its own (as OpenAI keeps responses)."""


OP_TTL = 120.0
"""Seconds a done-marker of an append or a take is kept: longer than any client's retries last."""

_RETRIES = 2  # for a client this store makes: retries after a dropped connection or a timeout
_CONNECT_TIMEOUT = 5.0
_SOCKET_TIMEOUT = 30.0
_MAX_CONNECTIONS = 64  # per event loop; a command beyond them waits for a free connection (up to _SOCKET_TIMEOUT)
_CHUNK = 4000  # messages per RPUSH inside the script: Lua's unpack() has a stack limit near 8000 (keep it even)
_SCAN_COUNT = 1000


class _Script:
    """A Lua script run by its SHA1 (EVALSHA), sent whole (EVAL) only when the server does not know it yet."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, client: Redis, keys: Sequence[str], args: Sequence[str | bytes]) -> Any:
        from redis.exceptions import NoScriptError

        try:
            return await _command(client, "EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:  # a new or restarted server: EVAL runs it and caches it
            return await _command(client, "EVAL", self.source, len(keys), *keys, *args)


# KEYS: history, index, op marker. ARGV: id, ttl in ms ("0": none), op ttl in ms, the messages.
# The index first: should a push fail (a key of the wrong type) nothing of the turn is stored,
# and `list_ids` drops an id that has no keys.
_APPEND = _Script(
    f"""
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('ZADD', KEYS[2], 0, ARGV[1])
for i = 4, #ARGV, {_CHUNK} do
  redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + {_CHUNK - 1}, #ARGV)))
end
if ARGV[2] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
return 1
"""
)

# Paused turns with a deadline (`expires_at` + grace, in ms): the hash of a conversation's paused turns lives
# until the latest deadline among them, or for ever when one of them has none.
_PAUSED_DEADLINES = """
-- Drop the states in hash `key` (but `skip`) whose deadline is past; return the latest deadline of the rest
-- (0: none) and whether one of them has no deadline.
local function sweep_paused(key, now, grace, skip)
  local latest, forever = 0, false
  local saved = redis.call('HGETALL', key)
  for i = 1, #saved, 2 do
    if saved[i] ~= skip then
      local ok, state = pcall(cjson.decode, saved[i + 1])
      local at = ok and type(state) == 'table' and state['expires_at']
      if type(at) ~= 'number' then
        forever = true
      elseif at * 1000 + grace < now then
        redis.call('HDEL', key, saved[i])
      elseif at * 1000 + grace > latest then
        latest = at * 1000 + grace
      end
    end
  end
  return latest, forever
end

-- Keep hash `key` until `latest` (ms), never less than it has already; for ever when `forever`.
local function keep_paused(key, latest, forever, now)
  if forever then
    redis.call('PERSIST', key)
    return
  end
  local want = math.max(math.floor(latest - now), 1)
  if redis.call('PTTL', key) < want then redis.call('PEXPIRE', key, want) end
end
"""

# KEYS: paused, index. ARGV: id, turn id, state, ttl in ms ("0": none), now in ms, grace in ms, this state's
# deadline in ms ("": none). Idempotent: no marker needed.
_SAVE_PAUSED = _Script(
    _PAUSED_DEADLINES
    + """
local now = tonumber(ARGV[5])
local latest, forever = sweep_paused(KEYS[1], now, tonumber(ARGV[6]), ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
if ARGV[4] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
elseif ARGV[7] == '' then
  keep_paused(KEYS[1], latest, true, now)
else
  keep_paused(KEYS[1], math.max(latest, tonumber(ARGV[7])), forever, now)
end
return 1
"""
)

# KEYS: paused, history, index, op marker. ARGV: id, turn id, op ttl in ms, ttl in ms ("0": none), now in ms,
# grace in ms. The state or nil; a retry of a take that succeeded gets the same state again, nobody else does.
# Without a ttl, a hash kept for ever may no longer need to be once a state without a deadline is taken.
_TAKE_PAUSED = _Script(
    _PAUSED_DEADLINES
    + """
local done = redis.call('GET', KEYS[4])
if done then return done end
local state = redis.call('HGET', KEYS[1], ARGV[2])
if not state then return false end
redis.call('HDEL', KEYS[1], ARGV[2])
if ARGV[4] == '0' and redis.call('PTTL', KEYS[1]) == -1 then
  local now = tonumber(ARGV[5])
  local latest, forever = sweep_paused(KEYS[1], now, tonumber(ARGV[6]), false)
  keep_paused(KEYS[1], latest, forever, now)
end
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[3], ARGV[1])
end
redis.call('SET', KEYS[4], state, 'PX', ARGV[3])
return state
"""
)

# KEYS: history, paused, index. ARGV: id. Forgets the history; the id stays while paused turns do.
_CLEAR = _Script(
    """
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('ZREM', KEYS[3], ARGV[1]) end
return 1
"""
)

# KEYS: history, paused, index. ARGV: id.
_DELETE = _Script(
    """
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
"""
)

# KEYS: history, paused, index. ARGV: id. Drops an id from the index when its keys expired.
_FORGET_IF_GONE = _Script(
    """
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[2]) == 0 then
  return redis.call('ZREM', KEYS[3], ARGV[1])
end
return 0
"""
)


_ACTIVE_JSON = " or ".join(f"now == '{encode_json(status)}'" for status in sorted(ACTIVE_RUN_STATUSES))

# KEYS: run, events, active, op marker. ARGV: id, retention in ms, op ttl in ms, "1" when active, then field
# and value pairs. 1 when created (or a retry of this creation), 0 when the id is taken.
_CREATE_RUN = _Script(
    f"""
if redis.call('EXISTS', KEYS[4]) == 1 then return 1 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2])
for i = 5, #ARGV, {_CHUNK} do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + {_CHUNK - 1}, #ARGV)))
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if ARGV[4] == '1' then redis.call('SADD', KEYS[3], ARGV[1]) end
redis.call('SET', KEYS[4], '1', 'PX', ARGV[3])
return 1
"""
)

# KEYS: run, events, active. ARGV: id, retention in ms, how many statuses (-1: any), the statuses as JSON, then
# field and value pairs. The record after the call as field and value pairs; nil for an unknown run.
_UPDATE_RUN = _Script(
    f"""
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return false end
local n = tonumber(ARGV[3])
local first = 4 + math.max(n, 0)
local allowed = n < 0
for i = 4, first - 1 do
  if ARGV[i] == status then allowed = true end
end
if allowed and #ARGV >= first then
  for i = first, #ARGV, {_CHUNK} do
    redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + {_CHUNK - 1}, #ARGV)))
  end
  local now = redis.call('HGET', KEYS[1], 'status')
  if {_ACTIVE_JSON} then
    redis.call('SADD', KEYS[3], ARGV[1])
  else
    redis.call('SREM', KEYS[3], ARGV[1])
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return redis.call('HGETALL', KEYS[1])
"""
)

# KEYS: run, events, op marker. ARGV: retention in ms, op ttl in ms, the events. How many events the run has
# now; 0 for an unknown run (nothing is added).
_ADD_EVENTS = _Script(
    f"""
if redis.call('EXISTS', KEYS[3]) == 1 then return redis.call('LLEN', KEYS[2]) end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if #ARGV < 3 then return redis.call('LLEN', KEYS[2]) end
for i = 3, #ARGV, {_CHUNK} do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + {_CHUNK - 1}, #ARGV)))
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[2])
return redis.call('LLEN', KEYS[2])
"""
)

# KEYS: run, events, active. ARGV: id.
_DELETE_RUN = _Script(
    """
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
"""
)

# KEYS: run, active. ARGV: id. Drops an id from the active runs when its record expired.
_FORGET_RUN_IF_GONE = _Script(
    """
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.call('SREM', KEYS[2], ARGV[1]) end
return 0
"""
)


class RedisConversationStore(ConversationStore, RunLog):
    """Histories, paused turns and background runs in Redis; see the module docstring for the keys and guarantees.

    `url_or_client` is a URL (`redis://host:6379/0`, `rediss://...`,
    `unix:///path.sock`; its query options go to the client) or a
    `redis.asyncio.Redis` you made. `prefix` starts every key. `ttl`
    (seconds, default `None`: never) lets a conversation expire that long
    after its last write, and a run (`RUN_TTL` without it).
    """

    def __init__(self, url_or_client: str | Redis, *, prefix: str = "createagents", ttl: float | None = None) -> None:
        redis_asyncio = _import_redis()
        if not isinstance(prefix, str) or not prefix:
            raise ConfigurationError(f"prefix must be a non-empty string, got {prefix!r}")
        if ttl is not None and (
            isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl) or ttl <= 0
        ):
            raise ConfigurationError(f"ttl must be a finite number of seconds > 0 or None, got {ttl!r}")
        self.prefix = prefix
        self.ttl = ttl
        self._ttl_ms = "0" if ttl is None else str(max(1, round(ttl * 1000)))
        self._op_ttl_ms = str(round(OP_TTL * 1000))
        self._run_ttl_ms = str(max(1, round((RUN_TTL if ttl is None else ttl) * 1000)))
        self._index = f"{prefix}:conversations"
        self._active = f"{prefix}:runs:active"
        self._url: str | None = None
        self._given: Redis | None = None
        if isinstance(url_or_client, str):
            self._connect(url_or_client)  # a bad URL fails here, not at the first turn
            self._url = url_or_client
        elif isinstance(url_or_client, redis_asyncio.Redis):
            self._given = url_or_client
        else:
            raise ConfigurationError(
                f"RedisConversationStore needs a Redis URL or a redis.asyncio.Redis client, got {url_or_client!r}"
            )
        self._guard = threading.Lock()  # the event loops using the store may run in several threads
        self._links: dict[asyncio.AbstractEventLoop, _Link] = {}

    def __repr__(self) -> str:  # never the URL: it may hold a password
        return f"RedisConversationStore(prefix={self.prefix!r}, ttl={self.ttl!r})"

    # -- the port ---------------------------------------------------------------------------------------------

    async def load(self, conversation_id: str) -> list[Message]:
        client = self._redis()
        try:
            raw = await _command(client, "LRANGE", self._history_key(conversation_id), 0, -1)
        except Exception as e:
            _raise_unavailable(e, "load")
            raise
        return _decode_history(raw)

    async def append(self, conversation_id: str, messages: Sequence[Message]) -> None:
        if not messages:
            return
        encoded = [json.dumps(message_to_dict(m), separators=(",", ":")) for m in messages]
        keys = (self._history_key(conversation_id), self._index, self._op_key())
        await self._run(_APPEND, keys, (conversation_id, self._ttl_ms, self._op_ttl_ms, *encoded), "append")

    async def clear(self, conversation_id: str) -> None:
        keys = (self._history_key(conversation_id), self._paused_key(conversation_id), self._index)
        await self._run(_CLEAR, keys, (conversation_id,), "clear")

    async def delete(self, conversation_id: str) -> None:
        keys = (self._history_key(conversation_id), self._paused_key(conversation_id), self._index)
        await self._run(_DELETE, keys, (conversation_id,), "delete")

    async def list_ids(self, *, after: str | None = None, limit: int = 100) -> list[str]:
        ids: list[str] = []
        low = "-" if after is None else f"({after}"
        while len(ids) < limit:
            want = limit - len(ids)
            client = self._redis()
            try:
                page = [
                    _text(i) for i in await _command(client, "ZRANGEBYLEX", self._index, low, "+", "LIMIT", 0, want)
                ]
                if not page:
                    break
                async with client.pipeline(transaction=False) as pipe:
                    for conversation_id in page:
                        pipe.exists(self._history_key(conversation_id), self._paused_key(conversation_id))
                    alive = await pipe.execute()
            except Exception as e:
                _raise_unavailable(e, "list_ids")
                raise
            for conversation_id, count in zip(page, alive, strict=True):
                if count:
                    ids.append(conversation_id)
                else:  # its keys expired (ttl): drop it from the index, unless it came back meanwhile
                    keys = (self._history_key(conversation_id), self._paused_key(conversation_id), self._index)
                    await self._run(_FORGET_IF_GONE, keys, (conversation_id,), "list_ids")
            if len(page) < want:
                break
            low = f"({page[-1]}"
        return ids

    async def save_paused(self, conversation_id: str, turn_id: str, state: Mapping[str, Any]) -> None:
        data = json.dumps(state, separators=(",", ":"))  # TypeError for what is not JSON-ready, as in memory
        deadline = paused_deadline(state)
        keys = (self._paused_key(conversation_id), self._index)
        args = (
            conversation_id,
            turn_id,
            data,
            self._ttl_ms,
            _now_ms(),
            str(PAUSED_GRACE * 1000),
            "" if deadline is None else str(math.ceil(deadline * 1000)),
        )
        await self._run(_SAVE_PAUSED, keys, args, "save_paused")

    async def load_paused(self, conversation_id: str, turn_id: str) -> dict[str, Any] | None:
        client = self._redis()
        try:
            raw = await _command(client, "HGET", self._paused_key(conversation_id), turn_id)
        except Exception as e:
            _raise_unavailable(e, "load_paused")
            raise
        return None if raw is None else _paused_state(raw, turn_id)

    async def take_paused(self, conversation_id: str, turn_id: str) -> dict[str, Any] | None:
        keys = (
            self._paused_key(conversation_id),
            self._history_key(conversation_id),
            self._index,
            self._op_key(),
        )
        args = (conversation_id, turn_id, self._op_ttl_ms, self._ttl_ms, _now_ms(), str(PAUSED_GRACE * 1000))
        raw = await self._run(_TAKE_PAUSED, keys, args, "take_paused")
        return None if raw is None else _paused_state(raw, turn_id)

    async def paused_ids(self, conversation_id: str) -> list[str]:
        client = self._redis()
        try:
            raw = await _command(client, "HKEYS", self._paused_key(conversation_id))
        except Exception as e:
            _raise_unavailable(e, "paused_ids")
            raise
        return sorted(_text(i) for i in raw)

    # -- runs -----------------------------------------------------------------------------------------------------

    async def create_run(self, run_id: str, record: Mapping[str, Any]) -> None:
        check_run_id(run_id)
        status, text = run_record(record)
        fields = _fields(decode_object(text))
        active = "1" if status in ACTIVE_RUN_STATUSES else "0"
        keys = (self._run_key(run_id), self._events_key(run_id), self._active, self._op_key())
        args = (run_id, self._run_ttl_ms, self._op_ttl_ms, active, *fields)
        if not await self._run(_CREATE_RUN, keys, args, "create_run"):
            raise ConfigurationError(f"a run with id {run_id!r} exists already; a new run needs a new id")

    async def load_run(self, run_id: str) -> dict[str, Any] | None:
        client = self._redis()
        try:
            raw = await _command(client, "HGETALL", self._run_key(run_id))
        except Exception as e:
            _raise_unavailable(e, "load_run")
            raise
        return _record(raw)

    async def update_run(
        self, run_id: str, changes: Mapping[str, Any], *, statuses: Sequence[str] | None = None
    ) -> dict[str, Any] | None:
        wanted = check_statuses(statuses)
        fields = _fields(run_changes(changes))
        condition = ["-1"] if wanted is None else [str(len(wanted)), *(encode_json(s) for s in sorted(wanted))]
        keys = (self._run_key(run_id), self._events_key(run_id), self._active)
        raw = await self._run(_UPDATE_RUN, keys, (run_id, self._run_ttl_ms, *condition, *fields), "update_run")
        return None if raw is None else _record(raw)

    async def add_events(self, run_id: str, events: Sequence[Mapping[str, Any]]) -> int:
        encoded = encode_events(events)
        keys = (self._run_key(run_id), self._events_key(run_id), self._op_key())
        count = await self._run(_ADD_EVENTS, keys, (self._run_ttl_ms, self._op_ttl_ms, *encoded), "add_events")
        return int(count)

    async def events(self, run_id: str, *, after: int = -1, limit: int = 1000) -> list[dict[str, Any]]:
        start, stop = event_window(after, limit)
        if stop <= start:
            return []
        client = self._redis()
        try:
            raw = await _command(client, "LRANGE", self._events_key(run_id), start, stop - 1)
        except Exception as e:
            _raise_unavailable(e, "events")
            raise
        return decode_objects(raw)

    async def run_ids(self, *, statuses: Sequence[str]) -> list[str]:
        wanted = check_statuses(statuses) or frozenset()
        if not wanted:
            return []
        client = self._redis()
        try:
            if wanted <= ACTIVE_RUN_STATUSES:
                candidates = [_text(i) for i in await _command(client, "SMEMBERS", self._active)]
            else:  # finished runs are in no index: look at every run under the prefix
                pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix) + ":run:*"
                start = len(self.prefix) + len(":run:")
                candidates = [
                    _text(key)[start:] async for key in client.scan_iter(pattern, count=_SCAN_COUNT, _type="hash")
                ]
            async with client.pipeline(transaction=False) as pipe:
                for run_id in candidates:
                    pipe.hget(self._run_key(run_id), "status")
                found = await pipe.execute()
        except Exception as e:
            _raise_unavailable(e, "run_ids")
            raise
        ids = []
        encoded = {encode_json(s) for s in wanted}
        for run_id, status in zip(candidates, found, strict=True):
            if status is None:  # expired (or deleted meanwhile): keep the index small
                await self._run(_FORGET_RUN_IF_GONE, (self._run_key(run_id), self._active), (run_id,), "run_ids")
            elif _text(status) in encoded:
                ids.append(run_id)
        return sorted(set(ids))

    async def delete_run(self, run_id: str) -> None:
        keys = (self._run_key(run_id), self._events_key(run_id), self._active)
        await self._run(_DELETE_RUN, keys, (run_id,), "delete_run")

    async def aclose(self) -> None:
        """Close the connections this store made (in every event loop); a client you passed stays open.

        The store stays usable: it connects again when it is used again.
        """
        if self._url is None:
            return
        with self._guard:
            links = list(self._links.items())
            self._links.clear()
        current = asyncio.get_running_loop()
        for loop, link in links:
            if loop is current:
                await _aclose(link.hook)
            elif loop.is_running():  # a loop in another thread (the blocking API's): close it there
                await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_aclose(link.hook), loop))
            # a loop that has ended closed its connections when it shut down (see `_closing`)

    # -- helpers ----------------------------------------------------------------------------------------------

    def _history_key(self, conversation_id: str) -> str:
        return f"{self.prefix}:history:{conversation_id}"

    def _paused_key(self, conversation_id: str) -> str:
        return f"{self.prefix}:paused:{conversation_id}"

    def _run_key(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}"

    def _events_key(self, run_id: str) -> str:
        return f"{self.prefix}:run_events:{run_id}"

    def _op_key(self) -> str:
        return f"{self.prefix}:op:{secrets.token_hex(12)}"

    def _redis(self) -> Redis:
        """The client of the running event loop: a client that was passed, or one made for this loop."""
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        link = self._links.get(loop)
        return link.client if link is not None else self._link(loop).client

    def _link(self, loop: asyncio.AbstractEventLoop) -> _Link:
        assert self._url is not None
        with self._guard:
            for ended in [lp for lp in self._links if lp.is_closed()]:
                del self._links[ended]  # its connections were closed as that loop shut down (see `_closing`)
            link = self._links.get(loop)
            if link is not None:
                return link
            client = self._connect(self._url)
            link = self._links[loop] = _Link(client, _closing(client))
            _OPEN.add(self)
        _start(link.hook)
        return link

    def _connect(self, url: str) -> Redis:
        redis_asyncio = _import_redis()
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialBackoff

        try:
            # blocking: a thousand concurrent turns wait for one of the pool's connections, rather than
            # failing with "Too many connections" as redis-py's default pool does past 100
            pool = redis_asyncio.BlockingConnectionPool.from_url(
                url,
                max_connections=_MAX_CONNECTIONS,
                timeout=_SOCKET_TIMEOUT,
                socket_connect_timeout=_CONNECT_TIMEOUT,
                socket_timeout=_SOCKET_TIMEOUT,
                retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), _RETRIES),
            )
            client: Redis = redis_asyncio.Redis.from_pool(pool)  # the client owns the pool
            return client
        except ValueError as e:
            raise ConfigurationError(f"not a usable Redis URL: {e}") from None

    async def _run(self, script: _Script, keys: Sequence[str], args: Sequence[str | bytes], operation: str) -> Any:
        client = self._redis()
        try:
            return await script(client, keys, args)
        except Exception as e:
            _raise_unavailable(e, operation)
            raise


class _Link:
    """One event loop's client, and the hook that closes it with the loop."""

    __slots__ = ("client", "hook")

    def __init__(self, client: Redis, hook: AsyncGenerator[None, None]) -> None:
        self.client = client
        self.hook = hook


async def _closing(client: Redis) -> AsyncGenerator[None, None]:
    """Parked at its `yield` while the client is in use, so that the client is closed quietly when ...

    ... its loop shuts down (`asyncio.run` acloses the async generators still alive) or the store
    is garbage-collected (the loop then acloses it), without `aclose()`: scripts rarely close
    their stores, and redis-py warns about unclosed connections.
    """
    try:
        yield
    finally:
        with suppress(Exception):  # a server gone already: nothing left to close
            await client.aclose()


def _start(hook: AsyncGenerator[None, None]) -> None:
    """Run a fresh `_closing` to its `yield` (nothing there awaits); the running loop now tracks it."""
    with suppress(StopIteration):
        hook.asend(None).__await__().send(None)


async def _aclose(hook: AsyncGenerator[None, None]) -> None:
    await hook.aclose()


_OPEN: weakref.WeakSet[RedisConversationStore] = weakref.WeakSet()


@atexit.register
def _close_at_exit() -> None:
    """Clients still open at exit on a loop that still runs in another thread (the blocking API's)."""
    for store in list(_OPEN):
        with store._guard:
            links = list(store._links.items())
        for loop, link in links:
            if loop.is_running() and not loop.is_closed():
                with suppress(Exception):  # a loop too busy to close it in time: leave it
                    asyncio.run_coroutine_threadsafe(_aclose(link.hook), loop).result(2.0)


async def _command(client: Redis, *args: Any) -> Any:
    """One Redis command; `execute_command` is untyped in redis-py."""
    execute: Callable[..., Awaitable[Any]] = client.execute_command
    return await execute(*args)


def _import_redis() -> Any:
    try:
        import redis.asyncio as redis_asyncio
    except ImportError:
        raise ConfigurationError(
            'the Redis conversation store needs the redis client: pip install "createagents[redis]"'
        ) from None
    return redis_asyncio


def _raise_unavailable(e: Exception, operation: str) -> None:
    """Raise a Redis or socket failure as `StoreUnavailableError`; return for anything else (a bug: re-raise it)."""
    from redis.exceptions import RedisError

    if isinstance(e, RedisError | OSError):
        raise StoreUnavailableError(f"Redis {operation} failed: {type(e).__name__}: {e}", operation=operation) from e


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _now_ms() -> str:
    return str(math.floor(time.time() * 1000))


def _paused_state(raw: str | bytes, turn_id: str) -> dict[str, Any]:
    state = json.loads(raw)
    if not isinstance(state, dict):
        raise UnreadableMessageError(f"the stored state of paused turn {turn_id!r} is not a JSON object")
    return state


def _fields(record: Mapping[str, Any]) -> list[str]:
    """A record as the field and value pairs of its hash: each value as JSON."""
    return [item for name, value in record.items() for item in (name, encode_json(value))]


def _record(raw: list[Any] | dict[Any, Any] | None) -> dict[str, Any] | None:
    """A run's hash (HGETALL: pairs from a script, a dict from the client) as its record; None when it is gone."""
    if not raw:
        return None
    pairs = raw.items() if isinstance(raw, dict) else zip(raw[::2], raw[1::2], strict=True)
    return {_text(name): json.loads(value) for name, value in pairs}


def _decode_history(raw: list[bytes] | list[str]) -> list[Message]:
    """The stored items as messages, with one JSON parse for the whole history (`decode_objects`)."""
    try:
        data = decode_objects(raw)
    except ValueError:  # a damaged item: find it, and say which, as a message
        return [_decode_message(item) for item in raw]
    return [message_from_dict(d) for d in data]


def _decode_message(raw: str | bytes) -> Message:
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise UnreadableMessageError(f"a stored message is not JSON ({e}): {raw!r:.200}") from None
    if not isinstance(data, dict):
        raise UnreadableMessageError(f"a stored message is not a JSON object: {raw!r:.200}")
    return message_from_dict(data)

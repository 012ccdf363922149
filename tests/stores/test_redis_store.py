"""The Redis store against a private redis-server: atomic turns across processes, dropped connections,
expiry, exact round trips, exactly-once takes, and a store that outlives its event loop.

The cases every store shares are in the contract suite; these are Redis's own.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stores.redis_server import RedisServer, on_ci, start_redis

if not on_ci():  # on CI a missing client is a failure, as a missing server is
    pytest.importorskip("redis", reason='the Redis store needs the redis client: pip install "createagents[redis]"')

import redis.asyncio as redis_asyncio

from createagents.adapters.memory_store import InMemoryConversationStore
from createagents.adapters.redis_store import RedisConversationStore, StoreUnavailableError
from createagents.domain.codec import UnreadableMessageError
from createagents.domain.errors import ConfigurationError, CreateAgentsError
from createagents.domain.messages import AssistantMessage, Message, SystemMessage, ToolCall, ToolMessage, UserMessage

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with start_redis() as running:
        yield running


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def store(server: RedisServer, prefix: str) -> AsyncIterator[RedisConversationStore]:
    made = RedisConversationStore(server.url, prefix=prefix)
    yield made
    await made.aclose()


@pytest.fixture
async def raw(server: RedisServer) -> AsyncIterator[redis_asyncio.Redis]:
    """A plain client, to look at what the store wrote."""
    client = redis_asyncio.Redis.from_url(server.url, decode_responses=True)
    yield client
    await client.aclose()


def turn(who: str, i: int) -> list[Message]:
    return [UserMessage(content=f"{who} question {i}"), AssistantMessage(content=f"{who} answer {i}")]


# -- many processes ---------------------------------------------------------------------------------------------

CHILD = """
import asyncio, json, sys
import redis.asyncio as redis_asyncio
from createagents.adapters.redis_store import RedisConversationStore
from createagents.domain.messages import AssistantMessage, UserMessage

url, prefix, mode, who, count = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])

async def main():
    store = RedisConversationStore(url, prefix=prefix)
    await store.load("warm-up")  # connected before the start signal, so both processes start together
    gate = redis_asyncio.Redis.from_url(url)
    await gate.rpush(f"{prefix}:test:ready", who)
    assert await gate.blpop([f"{prefix}:test:go"], timeout=30), "no start signal"
    got = []
    if mode == "append":  # all at once, on as many connections
        await asyncio.gather(*(
            store.append("shared", [
                UserMessage(content=f"{who} question {i}"), AssistantMessage(content=f"{who} answer {i}"),
            ])
            for i in range(count)
        ))
    else:
        states = await asyncio.gather(*(store.take_paused("shared", f"turn-{i}") for i in range(count)))
        got = [i for i, state in enumerate(states) if state is not None]
    print(json.dumps(got))
    await gate.aclose()
    await store.aclose()

asyncio.run(main())
"""


async def run_children(url: str, prefix: str, raw: redis_asyncio.Redis, mode: str, count: int) -> list[list[int]]:
    """Two OS processes doing `mode` at once: each waits, connected, for one start signal."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD,
            url,
            prefix,
            mode,
            who,
            str(count),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        for who in ("A", "B")
    ]
    try:
        for _ in children:
            assert await raw.blpop([f"{prefix}:test:ready"], timeout=60), "a child did not start"
        await raw.rpush(f"{prefix}:test:go", "go", "go")  # one push: both children wake together
        outputs = [await asyncio.wait_for(child.communicate(), 60) for child in children]
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.wait()
    for child, (_, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err.decode()
    return [json.loads(out) for out, _ in outputs]


async def test_two_processes_appending_to_one_conversation_never_interleave_or_lose_a_turn(
    server: RedisServer, prefix: str, raw: redis_asyncio.Redis, store: RedisConversationStore
) -> None:
    await run_children(server.url, prefix, raw, "append", 10)

    history = await store.load("shared")
    assert len(history) == 40  # 20 turns
    turns = [(history[i], history[i + 1]) for i in range(0, 40, 2)]
    for question, answer in turns:  # every question is followed by its own answer
        assert isinstance(question, UserMessage) and isinstance(answer, AssistantMessage)
        assert answer.content == question.content.replace("question", "answer")
    assert sorted(q.content for q, _ in turns) == sorted(f"{who} question {i}" for who in "AB" for i in range(10))


async def test_of_two_processes_taking_the_same_paused_turns_exactly_one_gets_each(
    server: RedisServer, prefix: str, raw: redis_asyncio.Redis, store: RedisConversationStore
) -> None:
    for i in range(50):
        await store.save_paused("shared", f"turn-{i}", {"turn": i})

    a, b = await run_children(server.url, prefix, raw, "take", 50)

    assert not set(a) & set(b)
    assert sorted(a + b) == list(range(50))
    assert await store.paused_ids("shared") == []


async def test_of_two_tasks_taking_a_paused_turn_exactly_one_gets_it(server: RedisServer, prefix: str) -> None:
    one, two = RedisConversationStore(server.url, prefix=prefix), RedisConversationStore(server.url, prefix=prefix)
    try:
        for i in range(50):
            state = {"turn": i, "calls": [{"id": "c1", "approved": None}]}
            await one.save_paused("c", f"t{i}", state)
            got = await asyncio.gather(one.take_paused("c", f"t{i}"), two.take_paused("c", f"t{i}"))
            assert sorted(got, key=lambda s: s is None) == [state, None]
        assert await one.take_paused("c", "t0") is None
        assert await one.list_ids() == []  # nothing left of "c"
    finally:
        await one.aclose()
        await two.aclose()


# -- dropped connections ----------------------------------------------------------------------------------------


class Proxy:
    """TCP between the store and Redis, which can cut a request in half or lose the reply to one."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.mode = "pass"  # "cut": every request from now on; "lose-reply": the next request's reply
        self.cut: list[bytes] = []  # what the cut requests held in full
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        server_in, server_out = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers |= {client_out, server_out}
        lose_next_reply = asyncio.Event()

        async def upstream() -> None:
            while data := await client_in.read(1 << 16):
                if self.mode == "cut":
                    self.cut.append(data)
                    server_out.write(data[: len(data) // 2])  # Redis gets half a request, then the end
                    await server_out.drain()
                    return
                if self.mode == "lose-reply":
                    self.mode = "pass"
                    lose_next_reply.set()
                server_out.write(data)
                await server_out.drain()

        async def downstream() -> None:
            while data := await server_in.read(1 << 16):
                if lose_next_reply.is_set():
                    return  # Redis ran the request and answered; the answer never arrives
                client_out.write(data)
                await client_out.drain()

        try:
            pumps = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            for writer in (client_out, server_out):
                writer.close()
                self._writers.discard(writer)
            self._tasks.discard(task)


@pytest.fixture
async def proxy(server: RedisServer) -> AsyncIterator[Proxy]:
    made = Proxy(server.port)
    await made.start()
    yield made
    await made.stop()


async def test_a_connection_dropped_mid_append_is_a_typed_error_and_writes_nothing(
    proxy: Proxy, prefix: str, raw: redis_asyncio.Redis
) -> None:
    store = RedisConversationStore(proxy.url, prefix=prefix)
    try:
        await store.append("c", turn("first", 0))
        before = await raw.lrange(f"{prefix}:history:c", 0, -1)
        proxy.mode = "cut"
        third = ToolMessage(tool_call_id="x", name="t", content="a tool result " * 20)
        with pytest.raises(StoreUnavailableError) as caught:
            await store.append("c", [*turn("second", 1), third])
        assert isinstance(caught.value, CreateAgentsError) and caught.value.operation == "append"
        assert b"EVALSHA" in proxy.cut[0] and b"second question 1" in proxy.cut[0]  # cut inside the append
        proxy.mode = "pass"
        assert await raw.lrange(f"{prefix}:history:c", 0, -1) == before  # nothing of the turn
        assert await store.load("c") == turn("first", 0)  # and the store works again
    finally:
        await store.aclose()


async def test_an_append_whose_reply_is_lost_is_retried_and_stored_once(
    proxy: Proxy, prefix: str, store: RedisConversationStore
) -> None:
    through = RedisConversationStore(proxy.url, prefix=prefix)
    try:
        await through.append("c", turn("first", 0))
        proxy.mode = "lose-reply"
        await through.append("c", turn("second", 1))  # ran, answer lost, sent again: a no-op the second time
        assert proxy.mode == "pass"  # the reply was lost indeed
        assert await store.load("c") == turn("first", 0) + turn("second", 1)

        await through.save_paused("c", "t1", {"n": 1})
        assert await through.take_paused("c", "t0") is None  # Redis knows the script now: EVALSHA runs it
        proxy.mode = "lose-reply"
        assert await through.take_paused("c", "t1") == {"n": 1}  # the retry hands back what the lost reply held
        assert proxy.mode == "pass"
        assert await through.take_paused("c", "t1") is None
    finally:
        await through.aclose()


async def test_a_server_that_cannot_be_reached_is_a_typed_error(prefix: str) -> None:
    from tests.stores.redis_server import _free_port

    store = RedisConversationStore(f"redis://127.0.0.1:{_free_port()}/0", prefix=prefix)
    try:
        for call in (store.load("c"), store.append("c", turn("x", 0)), store.list_ids(), store.take_paused("c", "t")):
            with pytest.raises(StoreUnavailableError):
                await call
    finally:
        await store.aclose()


# -- expiry, key layout, round trips ----------------------------------------------------------------------------


async def test_ttl_sets_an_expiry_on_every_write_and_expired_ids_leave_the_listing(
    server: RedisServer, prefix: str, raw: redis_asyncio.Redis, store: RedisConversationStore
) -> None:
    lasting = RedisConversationStore(server.url, prefix=prefix, ttl=3600)
    brief = RedisConversationStore(server.url, prefix=prefix, ttl=0.2)
    try:
        await lasting.append("kept", turn("k", 0))
        await lasting.save_paused("kept", "t1", {"n": 1})
        for key in (f"{prefix}:history:kept", f"{prefix}:paused:kept"):
            assert 3_500_000 < await raw.pttl(key) <= 3_600_000
        await store.append("forever", turn("f", 0))  # no ttl: no expiry
        assert await raw.pttl(f"{prefix}:history:forever") == -1

        await brief.append("expired", turn("e", 0))
        await brief.save_paused("expired", "t1", {"n": 1})
        assert await brief.list_ids() == ["expired", "forever", "kept"]
        await asyncio.sleep(0.4)
        assert await brief.list_ids(limit=2) == ["forever", "kept"]  # a page that lost an id is filled up
        assert await raw.zrange(f"{prefix}:conversations", 0, -1) == ["forever", "kept"]  # the index forgot it
        assert await brief.load("expired") == []
        assert await brief.paused_ids("expired") == []
        assert await brief.list_ids() == ["forever", "kept"]
    finally:
        await lasting.aclose()
        await brief.aclose()


async def test_keys_follow_the_documented_layout_under_the_prefix(
    server: RedisServer, prefix: str, raw: redis_asyncio.Redis, store: RedisConversationStore
) -> None:
    await store.append("user:42", turn("u", 0))
    await store.save_paused("user:42", "t1", {"n": 1})
    assert await raw.type(f"{prefix}:conversations") == "zset"
    assert await raw.type(f"{prefix}:history:user:42") == "list"
    assert await raw.hgetall(f"{prefix}:paused:user:42") == {"t1": '{"n":1}'}
    stored = [json.loads(item) for item in await raw.lrange(f"{prefix}:history:user:42", 0, -1)]
    assert stored == [
        {"v": 1, "role": "user", "content": "u question 0"},
        {"v": 1, "role": "assistant", "content": "u answer 0"},
    ]
    index = f"{prefix}:conversations"
    assert await raw.zrange(index, 0, -1, withscores=True) == [("user:42", 0.0)]
    await store.clear("user:42")
    assert await raw.zrange(index, 0, -1) == ["user:42"]  # a paused turn keeps the id
    assert await store.take_paused("user:42", "t1") == {"n": 1}
    assert await raw.zrange(index, 0, -1) == []  # the last of it went: so did the id
    assert await raw.exists(f"{prefix}:history:user:42", f"{prefix}:paused:user:42") == 0
    await store.append("user:42", turn("u", 0))
    await store.save_paused("user:42", "t1", {"n": 1})
    await store.delete("user:42")
    assert await raw.zrange(index, 0, -1) == []
    assert await raw.exists(f"{prefix}:history:user:42", f"{prefix}:paused:user:42") == 0
    markers = [key async for key in raw.scan_iter(f"{prefix}:op:*")]
    assert len(markers) == 3  # two appends and a take, each marked done for a while
    for marker in markers:
        assert 0 < await raw.pttl(marker) <= 120_000
    other = RedisConversationStore(server.url, prefix=f"{prefix}-other")
    try:  # one Redis, several apps
        assert await other.list_ids() == [] and await other.load("user:42") == []
    finally:
        await other.aclose()


EVERY_KIND: list[Message] = [
    SystemMessage(content="You are concise.\nNever 'guess'."),
    UserMessage(content='Unicode: Ünïcödé 🙂 中文, a lone surrogate \ud800, NUL \x00, "quotes" \\ and {"json": 1}'),
    AssistantMessage(
        content="Let me check.",
        thinking="The user wants the weather; call the tool.",
        tool_calls=(
            ToolCall(id="call_1", name="get_weather", arguments='{"city": "Lisbon", "unit": "C"}'),
            ToolCall(id="call_2", name="noop"),
            ToolCall(id="call_3", name="broken", arguments='{"not json'),
        ),
    ),
    ToolMessage(tool_call_id="call_1", name="get_weather", content="22 C and sunny"),
    ToolMessage(tool_call_id="call_2", name="noop", content="", is_error=False),
    ToolMessage(tool_call_id="call_3", name="broken", content="Error: bad arguments", is_error=True),
    AssistantMessage(),  # empty: no content, no calls, no thinking
    AssistantMessage(content="", thinking="only thinking"),
    UserMessage(content=""),
    UserMessage(content="x" * 1_000_000),
]


async def test_every_message_kind_round_trips_exactly(store: RedisConversationStore) -> None:
    await store.append("every kind", EVERY_KIND)
    await store.append("every kind", EVERY_KIND[:2])
    assert await store.load("every kind") == [*EVERY_KIND, *EVERY_KIND[:2]]


@pytest.mark.parametrize(
    ("items", "match"),
    [
        (['{"v":1,"role":"user","content":"fine"}', "not json"], "not JSON"),
        (['{"v":99,"role":"user","content":"from the future"}'], "upgrade createagents"),
        (['{"v":1,"role":"user","content":"a"', '"x":1}'], "not JSON"),  # two halves that join into one object
        (['{"v":1,"role":"wizard","content":"?"}'], "unknown role"),
        (["[1, 2]"], "not a JSON object"),
    ],
)
async def test_damaged_or_newer_stored_messages_are_refused(
    store: RedisConversationStore, raw: redis_asyncio.Redis, prefix: str, items: list[str], match: str
) -> None:
    await raw.rpush(f"{prefix}:history:c", *items)
    with pytest.raises(UnreadableMessageError, match=match):
        await store.load("c")


async def test_a_turn_of_many_messages_is_one_step(store: RedisConversationStore) -> None:
    many: list[Message] = [UserMessage(content=str(i)) for i in range(20_000)]  # past Lua's unpack() limit
    await store.append("long", many)
    assert await store.load("long") == many


async def test_the_store_keeps_the_port_as_the_memory_store_does(store: RedisConversationStore) -> None:
    reference = InMemoryConversationStore()
    steps: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
        ("append", ("b", turn("b", 0)), {}),
        ("append", ("a", turn("a", 0)), {}),
        ("append", ("c", []), {}),  # an empty turn stores nothing
        ("save_paused", ("d", "t2", {"x": [1, None, "y"]}), {}),
        ("save_paused", ("d", "t1", {}), {}),
        ("list_ids", (), {}),
        ("list_ids", (), {"limit": 2}),
        ("list_ids", (), {"after": "a", "limit": 2}),
        ("list_ids", (), {"after": "d"}),
        ("list_ids", (), {"limit": 0}),
        ("paused_ids", ("d",), {}),
        ("save_paused", ("b", "t1", {"b": True}), {}),
        ("clear", ("b",), {}),  # the history goes, the paused turn and the id stay
        ("load", ("b",), {}),
        ("list_ids", (), {}),
        ("clear", ("a",), {}),  # nothing paused: the id goes
        ("list_ids", (), {}),
        ("take_paused", ("d", "t1"), {}),
        ("take_paused", ("d", "t1"), {}),
        ("take_paused", ("d", "nope"), {}),
        ("list_ids", (), {}),
        ("take_paused", ("d", "t2"), {}),
        ("list_ids", (), {}),
        ("append", ("b", turn("b", 1)), {}),
        ("delete", ("b",), {}),
        ("load", ("b",), {}),
        ("paused_ids", ("b",), {}),
        ("list_ids", (), {}),
    ]
    for name, args, kwargs in steps:
        expected = await getattr(reference, name)(*args, **kwargs)
        assert await getattr(store, name)(*args, **kwargs) == expected, (name, args, kwargs)


async def test_ids_page_in_byte_order_across_many_conversations(store: RedisConversationStore) -> None:
    ids = sorted({f"user-{i:03d}" for i in range(250)} | {"Zed", "émile", "🙂", "a:b"})
    for conversation_id in ids:
        await store.append(conversation_id, turn(conversation_id, 0))
    seen: list[str] = []
    after: str | None = None
    while page := await store.list_ids(after=after, limit=100):
        seen += page
        after = page[-1]
    assert seen == ids


async def test_a_client_that_is_passed_is_used_and_left_open(
    server: RedisServer, prefix: str, raw: redis_asyncio.Redis
) -> None:
    client = redis_asyncio.Redis.from_url(server.url, decode_responses=True)  # str replies work too
    store = RedisConversationStore(client, prefix=prefix)
    await store.append("c", EVERY_KIND[:3])
    await store.save_paused("c", "t", {"n": 1})
    assert await store.load("c") == EVERY_KIND[:3]
    assert await store.list_ids() == ["c"] and await store.paused_ids("c") == ["t"]
    await store.aclose()
    assert await client.ping()  # still open: it is the caller's
    await client.aclose()


async def test_aclose_closes_the_connections_the_store_made_in_every_loop(
    server: RedisServer, prefix: str, raw: redis_asyncio.Redis
) -> None:
    async def connections() -> int:
        return len(await raw.client_list())

    start = await connections()
    store = RedisConversationStore(server.url, prefix=prefix)
    other = asyncio.new_event_loop()  # a loop in another thread, as the blocking API runs one
    thread = threading.Thread(target=other.run_forever, daemon=True)
    thread.start()
    try:
        await asyncio.gather(*(store.load(f"c{i}") for i in range(3)))  # a few pooled connections
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(store.load("c"), other))
        assert await connections() >= start + 2
        busy = threading.Event()
        other.call_soon_threadsafe(busy.wait, 10)  # the other loop is busy for a moment ...
        asyncio.get_running_loop().call_later(0.2, busy.set)
        await store.aclose()
        assert busy.is_set()  # ... and aclose waited for it to close its connections there
        other.call_soon_threadsafe(other.stop)
        thread.join(10)
        for _ in range(100):
            if await connections() == start:
                break
            await asyncio.sleep(0.01)
        assert await connections() == start
        assert await store.load("c0") == []  # usable again: it connects anew
        await store.aclose()
    finally:
        if other.is_running():
            other.call_soon_threadsafe(other.stop)
            thread.join(10)
        other.close()


# -- event loops ------------------------------------------------------------------------------------------------


def test_a_second_asyncio_run_reuses_the_store(server: RedisServer, prefix: str) -> None:
    store = RedisConversationStore(server.url, prefix=prefix)

    async def one_turn(i: int) -> list[Message]:
        await store.append("c", turn("run", i))
        return await store.load("c")

    assert asyncio.run(one_turn(0)) == turn("run", 0)  # not closed: its loop ends with connections open
    assert asyncio.run(one_turn(1)) == turn("run", 0) + turn("run", 1)
    assert asyncio.run(one_turn(2))[-2:] == turn("run", 2)
    asyncio.run(store.aclose())


NEVER_CLOSED = {
    "two asyncio.run": """
        import asyncio, sys
        from createagents.adapters.redis_store import RedisConversationStore
        from createagents.domain.messages import UserMessage

        store = RedisConversationStore(sys.argv[1], prefix=sys.argv[2])

        async def main():
            await asyncio.gather(*(store.append("c", [UserMessage(content="hi")]) for _ in range(4)))
            print(len(await store.load("c")))

        asyncio.run(main())
        asyncio.run(main())
    """,
    "a loop in another thread": """
        import asyncio, sys, threading
        from createagents.adapters.redis_store import RedisConversationStore
        from createagents.domain.messages import UserMessage

        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()  # as the blocking API runs one
        store = RedisConversationStore(sys.argv[1], prefix=sys.argv[2])

        async def main():
            await asyncio.gather(*(store.append("c", [UserMessage(content="hi")]) for _ in range(4)))
            print(len(await store.load("c")))

        asyncio.run_coroutine_threadsafe(main(), loop).result()
        asyncio.run_coroutine_threadsafe(main(), loop).result()
    """,
}


@pytest.mark.parametrize("name", list(NEVER_CLOSED))
def test_a_store_never_closed_exits_quietly(server: RedisServer, prefix: str, name: str) -> None:
    out = subprocess.run(
        [sys.executable, "-W", "default", "-c", textwrap.dedent(NEVER_CLOSED[name]), server.url, prefix],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["4", "8"]
    assert out.stderr == ""  # no "unclosed Connection", no "Event loop is closed"


def test_a_passed_client_closed_after_each_run_serves_the_next(server: RedisServer, prefix: str) -> None:
    client = redis_asyncio.Redis.from_url(server.url)
    store = RedisConversationStore(client, prefix=prefix)

    async def one_turn(i: int) -> list[Message]:
        await store.append("c", turn("x", i))
        history = await store.load("c")
        await store.aclose()  # leaves the client to its owner, who closes it with the loop
        await client.aclose()
        return history

    assert asyncio.run(one_turn(0)) == turn("x", 0)
    assert asyncio.run(one_turn(1)) == turn("x", 0) + turn("x", 1)


# -- setup ------------------------------------------------------------------------------------------------------


def test_bad_arguments_are_configuration_errors(server: RedisServer) -> None:
    with pytest.raises(ConfigurationError, match="ttl"):
        RedisConversationStore(server.url, ttl=0)
    with pytest.raises(ConfigurationError, match="ttl"):
        RedisConversationStore(server.url, ttl=float("nan"))
    with pytest.raises(ConfigurationError, match="prefix"):
        RedisConversationStore(server.url, prefix="")
    with pytest.raises(ConfigurationError, match="URL"):
        RedisConversationStore("http://example.com")
    with pytest.raises(ConfigurationError, match=r"URL or a redis\.asyncio\.Redis"):
        RedisConversationStore(42)  # type: ignore[arg-type]
    secret = RedisConversationStore("redis://:s3cret@127.0.0.1:1/0")
    assert "s3cret" not in repr(secret)


def test_without_the_redis_package_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # `import redis` now fails as if it were not installed
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(ConfigurationError, match=r'pip install "createagents\[redis\]"'):
        RedisConversationStore("redis://127.0.0.1:6379/0")


def test_importing_the_adapter_does_not_import_redis() -> None:
    code = "import sys, createagents, createagents.adapters.redis_store; print('redis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


# -- the test server helper -------------------------------------------------------------------------------------


def test_the_server_helper_starts_and_stops_only_its_own_server() -> None:
    with start_redis() as one, start_redis() as two:
        assert one.port != two.port and one.ping() and two.ping()
        one.stop()
        assert not one.running and not one.ping()
        assert two.ping()  # the other server is untouched
        one.stop()  # idempotent
    assert not two.running


async def test_the_server_helper_is_an_async_context_manager() -> None:
    async with start_redis() as running:
        assert running.url == f"redis://127.0.0.1:{running.port}/0" and running.ping()
    assert not running.running


def test_a_missing_server_skips_the_test_or_fails_it_on_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    def outcome() -> pytest.ExceptionInfo[BaseException]:
        with pytest.raises(BaseException) as caught:  # Skipped and Failed are BaseExceptions
            start_redis(binary="/nonexistent/redis-server")
        return caught

    monkeypatch.delenv("CI", raising=False)
    skipped = outcome()
    assert skipped.type is pytest.skip.Exception and "redis-server" in str(skipped.value)
    monkeypatch.setenv("CI", "false")
    assert outcome().type is pytest.skip.Exception
    monkeypatch.setenv("CI", "true")
    failed = outcome()
    assert failed.type is pytest.fail.Exception and "CI is set" in str(failed.value)
    monkeypatch.delenv("CI")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("REDIS_SERVER", raising=False)
    with pytest.raises(BaseException) as caught:
        start_redis()
    assert caught.type is pytest.skip.Exception and "not installed" in str(caught.value)


async def test_a_thousand_concurrent_conversations_wait_for_a_connection(redis_url: str) -> None:
    """Past the pool's connections, a turn waits for one: no "Too many connections", no lost turn."""
    import asyncio
    import uuid

    from createagents.adapters.redis_store import RedisConversationStore
    from createagents.domain.messages import AssistantMessage, UserMessage

    store = RedisConversationStore(redis_url, prefix=f"many-{uuid.uuid4().hex[:8]}")
    try:

        async def turn(i: int) -> None:
            await store.load(f"c{i}")
            await store.append(f"c{i}", [UserMessage(content=f"q{i}"), AssistantMessage(content=f"a{i}")])

        await asyncio.gather(*(turn(i) for i in range(1000)))
        histories = await asyncio.gather(*(store.load(f"c{i}") for i in range(1000)))
        assert all(len(h) == 2 and h[0].content == f"q{i}" for i, h in enumerate(histories))
    finally:
        await store.aclose()

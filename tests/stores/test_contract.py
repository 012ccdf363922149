"""The store contract, run against every store (memory, SQLite, Redis): what an agent relies on, in one place."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from createagents import CreateAgent, Message, ToolSpec
from createagents.adapters._runs import PAUSED_GRACE
from createagents.application.ports import ConversationStore
from createagents.domain.messages import AssistantMessage, SystemMessage, ToolCall, ToolMessage, UserMessage
from createagents.testing import FunctionModel

from .conftest import make_store

EVERY_KIND: list[Message] = [
    SystemMessage(content="be brief"),
    UserMessage(content='weather in Lisbon? ünïcödé ✓ \n and "quotes"'),
    AssistantMessage(
        content="",
        tool_calls=(
            ToolCall(id="call_1", name="get_weather", arguments='{"city": "Lisbon"}'),
            ToolCall(id="call/odd 2", name="add", arguments=""),
        ),
        thinking="I should look it up.",
    ),
    ToolMessage(tool_call_id="call_1", name="get_weather", content="22 C"),
    ToolMessage(tool_call_id="call/odd 2", name="add", content="Error: bad", is_error=True),
    AssistantMessage(content="22 C and sunny."),
]


def turn(i: int) -> list[Message]:
    return [UserMessage(content=f"q{i}"), AssistantMessage(content=f"a{i}")]


async def test_an_unknown_conversation_is_empty(store: ConversationStore) -> None:
    assert await store.load("nobody") == []


async def test_every_message_kind_comes_back_equal(store: ConversationStore) -> None:
    await store.append("c", EVERY_KIND)
    assert await store.load("c") == EVERY_KIND


async def test_appends_are_contiguous_and_in_order(store: ConversationStore) -> None:
    for i in range(5):
        await store.append("c", turn(i))
    assert await store.load("c") == [m for i in range(5) for m in turn(i)]
    await store.append("c", [])  # nothing to add: nothing changes
    assert len(await store.load("c")) == 10


async def test_concurrent_appends_never_interleave_or_lose_a_turn(store: ConversationStore) -> None:
    await asyncio.gather(*(store.append("c", turn(i)) for i in range(50)))
    history = await store.load("c")
    assert len(history) == 100
    pairs = list(zip(history[::2], history[1::2], strict=True))
    assert all(u.content[1:] == a.content[1:] for u, a in pairs)  # each question followed by its own answer
    assert sorted(int(u.content[1:]) for u, _ in pairs) == list(range(50))


async def test_conversations_are_independent(store: ConversationStore) -> None:
    await store.append("a", turn(1))
    await store.append("b", turn(2))
    assert await store.load("a") == turn(1) and await store.load("b") == turn(2)


async def test_clear_forgets_one_history(store: ConversationStore) -> None:
    await store.append("a", turn(1))
    await store.append("b", turn(2))
    await store.clear("a")
    assert await store.load("a") == [] and await store.load("b") == turn(2)
    await store.append("a", turn(3))
    assert await store.load("a") == turn(3)


async def test_list_ids_pages_in_order(store: ConversationStore) -> None:
    ids = [f"user-{i:03d}" for i in range(25)]
    for conversation_id in reversed(ids):
        await store.append(conversation_id, turn(0))
    pages: list[str] = []
    after = None
    while True:
        page = await store.list_ids(after=after, limit=10)
        if not page:
            break
        assert len(page) <= 10
        pages += page
        after = page[-1]
    assert pages == ids


async def test_delete_removes_history_and_paused_turns(store: ConversationStore) -> None:
    await store.append("a", turn(1))
    await store.save_paused("a", "t1", {"pending": ["call_1"]})
    await store.delete("a")
    assert await store.load("a") == [] and await store.paused_ids("a") == []
    assert "a" not in await store.list_ids()
    assert await store.take_paused("a", "t1") is None


async def test_a_paused_turn_is_taken_exactly_once(store: ConversationStore) -> None:
    state = {"messages": [{"role": "user", "content": "pay 500"}], "pending": {"call_1": {"amount": 500}}, "n": 1.5}
    await store.save_paused("c", "turn-1", state)
    await store.save_paused("c", "turn-2", {"x": None})
    assert await store.paused_ids("c") == ["turn-1", "turn-2"]
    assert await store.load("c") == []  # beside the history, never in it
    taken = await asyncio.gather(*(store.take_paused("c", "turn-1") for _ in range(5)))
    assert [t for t in taken if t is not None] == [state]
    assert await store.take_paused("c", "turn-1") is None
    assert await store.take_paused("c", "unknown") is None
    assert await store.paused_ids("c") == ["turn-2"]


async def test_a_paused_turn_can_be_looked_at_and_is_still_taken_exactly_once(store: ConversationStore) -> None:
    state = {"pending": {"call_1": {"amount": 500}}, "expires_at": time.time() + 600, "text": "ü 😀"}
    await store.save_paused("c", "turn-1", state)
    peeked = await store.load_paused("c", "turn-1")
    assert peeked == state
    assert peeked is not None
    peeked["pending"]["call_1"]["amount"] = 1  # a copy: changing it changes nothing stored
    assert await store.load_paused("c", "turn-1") == state  # a peek leaves it in place, however often
    assert await store.paused_ids("c") == ["turn-1"]
    taken = await asyncio.gather(*(store.take_paused("c", "turn-1") for _ in range(5)))
    assert [t for t in taken if t is not None] == [state]
    assert await store.load_paused("c", "turn-1") is None
    assert await store.load_paused("c", "unknown") is None
    assert await store.load_paused("unknown", "turn-1") is None


async def test_a_paused_turn_long_past_its_expiry_is_dropped_by_a_later_save(store: ConversationStore) -> None:
    now = time.time()
    kept: dict[str, dict[str, Any]] = {
        "open": {"expires_at": now + 600},
        "recently expired": {"expires_at": now - 600},  # refused by the application, kept a while by the store
        "no expiry": {"n": 1},
        "odd expiry": {"expires_at": "tomorrow"},
    }
    await store.save_paused("c", "open", kept["open"])
    await store.save_paused("c", "abandoned", {"expires_at": now - PAUSED_GRACE - 600})
    assert await store.paused_ids("c") == ["abandoned", "open"]  # until the next save
    for turn_id, state in kept.items():
        await store.save_paused("c", turn_id, state)
    assert await store.load_paused("c", "abandoned") is None
    assert await store.take_paused("c", "abandoned") is None
    assert await store.paused_ids("c") == sorted(kept)
    for turn_id, state in kept.items():
        assert await store.load_paused("c", turn_id) == state


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_a_save_in_any_conversation_drops_abandoned_paused_turns(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    store = make_store(kind, request, tmp_path)
    try:
        await store.save_paused("a", "t1", {"expires_at": time.time() - PAUSED_GRACE - 1})
        await store.save_paused("b", "t1", {"n": 1})
        assert await store.paused_ids("a") == [] and await store.list_ids() == ["b"]
    finally:
        await store.aclose()


async def test_redis_keeps_paused_turns_until_a_day_past_the_latest_expiry(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    import redis.asyncio as redis_asyncio

    from createagents.adapters.redis_store import RedisConversationStore

    url = request.getfixturevalue("redis_url")
    store = RedisConversationStore(url, prefix=f"test-{uuid.uuid4().hex[:8]}")
    with_ttl = RedisConversationStore(url, prefix=store.prefix, ttl=3600)
    raw = redis_asyncio.Redis.from_url(url)
    key = f"{store.prefix}:paused:c"

    async def left() -> float:
        """Seconds the conversation's paused turns are kept from now on, -1 for ever."""
        ms: int = await raw.pttl(key)
        return -1 if ms == -1 else ms / 1000 - PAUSED_GRACE

    try:
        now = time.time()
        await store.save_paused("c", "t1", {"expires_at": now + 100})
        assert 90 < await left() <= 100
        await store.save_paused("c", "t2", {"expires_at": now + 50})  # sooner: the later one still counts
        assert 90 < await left() <= 100
        await store.save_paused("c", "t3", {"expires_at": now + 200})
        assert 190 < await left() <= 200
        await store.save_paused("c", "t4", {"pending": ["call_1"]})  # no expiry: all are kept for ever
        assert await left() == -1
        await store.take_paused("c", "t2")
        assert await left() == -1
        await store.take_paused("c", "t4")  # the last one without an expiry went: back to the latest expiry
        assert 190 < await left() <= 200
        await raw.pexpire(key, (PAUSED_GRACE + 5000) * 1000)  # kept longer already (by someone else): not shortened
        await store.save_paused("c", "t5", {"expires_at": now + 10})
        assert 4900 < await left() <= 5000
        assert await store.paused_ids("c") == ["t1", "t3", "t5"]
        await with_ttl.save_paused("c", "t6", {"expires_at": now + 10})  # a store with a ttl: its ttl rules
        assert 3500 < await raw.pttl(key) / 1000 <= 3600
    finally:
        await raw.aclose()
        await store.aclose()
        await with_ttl.aclose()


async def test_text_that_is_hard_to_store(store: ConversationStore) -> None:
    hard = [UserMessage(content=text) for text in ("", " ", "\x00nul", "a" * 200_000, "😀" * 1000, "\\u0000", "'); --")]
    await store.append("weird id: ü/\\ \n*", hard)
    assert await store.load("weird id: ü/\\ \n*") == hard


# -- through an agent --------------------------------------------------------------------------------------


def echo() -> FunctionModel:
    async def answer(messages: list[Message], tools: list[ToolSpec]) -> AsyncIterator[object]:
        await asyncio.sleep(0.001)
        yield f"re {messages[-1].content}"

    return FunctionModel(answer)


async def test_an_agent_on_the_store_keeps_whole_turns_under_load(store: ConversationStore) -> None:
    agent = CreateAgent(provider=echo(), store=store)
    await asyncio.gather(*(agent.conversation(f"c{i % 10}").chat(f"m{i}") for i in range(100)))
    for c in range(10):
        history = await agent.conversation(f"c{c}").history()
        assert len(history) == 20
        assert all(a.content == f"re {u.content}" for u, a in zip(history[::2], history[1::2], strict=True))


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_a_new_agent_picks_up_where_the_last_left_off(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    first = make_store(kind, request, tmp_path)
    agent = CreateAgent(provider=echo(), store=first)
    await agent.conversation("user-42").chat("remember 7")
    await agent.aclose()
    second = make_store(kind, request, tmp_path)
    if kind == "redis":  # the same keys: the prefix of the first store
        second = type(first)(request.getfixturevalue("redis_url"), prefix=first.prefix)  # type: ignore[call-arg, attr-defined]
    agent2 = CreateAgent(provider=echo(), store=second)
    try:
        assert [m.content for m in await agent2.conversation("user-42").history()] == ["remember 7", "re remember 7"]
        await agent2.conversation("user-42").chat("and then")
        assert len(await agent2.conversation("user-42").history()) == 4
    finally:
        await agent2.aclose()

"""Choosing a store by URL, listing and deleting conversations, and history budgets on what is sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from createagents import ConfigurationError, CreateAgent, InMemoryConversationStore, Message, ToolSpec
from createagents.domain.history import estimate_tokens, trim_history
from createagents.domain.messages import AssistantMessage, ToolCall, ToolMessage, UserMessage
from createagents.stores import store_from_url
from createagents.testing import FunctionModel


def test_memory_url_with_options() -> None:
    store = store_from_url("memory://?max_conversations=5&idle_ttl=60")
    assert isinstance(store, InMemoryConversationStore)
    assert store.max_conversations == 5 and store.idle_ttl == 60.0


def test_sqlite_urls_relative_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from createagents.adapters.sqlite_store import SQLiteConversationStore

    monkeypatch.chdir(tmp_path)
    relative = store_from_url("sqlite:///chats.db?ttl=30")
    absolute = store_from_url(f"sqlite:///{tmp_path}/other.db")
    assert isinstance(relative, SQLiteConversationStore) and isinstance(absolute, SQLiteConversationStore)
    assert Path(str(relative.path)).name == "chats.db" and relative.ttl == 30.0
    assert Path(str(absolute.path)) == tmp_path / "other.db"


def test_redis_url_keeps_client_options_and_takes_ours() -> None:
    from createagents.adapters.redis_store import RedisConversationStore

    store = store_from_url("redis://127.0.0.1:6399/2?prefix=myapp&ttl=3600")
    assert isinstance(store, RedisConversationStore)
    assert store.prefix == "myapp" and store.ttl == 3600.0


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("chats.db", "URL"),
        ("mongodb://x", "unknown store 'mongodb'"),
        ("sqlite://", "needs a file"),
        ("memory://?colour=red", "unknown option"),
        ("memory://?idle_ttl=nan", "not valid"),
        ("sqlite:///x.db?ttl=-1", "not valid"),
        ("postgres://ana:hunter2-secret@db/x", "unknown store"),
    ],
)
def test_bad_store_urls_are_clear_errors(url: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as e:
        CreateAgent(provider="test", store=url)
    assert "hunter2-secret" not in str(e.value)


async def test_conversations_are_listed_in_pages_and_deleted() -> None:
    agent = CreateAgent(provider="test")
    for name in ("carol", "ana", "bob"):
        await agent.conversation(name).chat("hi")
    assert await agent.conversations() == ["ana", "bob", "carol"]
    assert await agent.conversations(limit=2) == ["ana", "bob"]
    assert await agent.conversations(after="bob") == ["carol"]
    await agent.delete_conversation("bob")
    assert await agent.conversations() == ["ana", "carol"]
    assert await agent.conversation("bob").history() == []
    with pytest.raises(ConfigurationError):
        await agent.conversations(limit=0)
    with pytest.raises(ConfigurationError):
        await agent.delete_conversation("")


def turn(i: int, words: int = 1) -> list[Message]:
    return [UserMessage(content=" ".join([f"q{i}"] * words)), AssistantMessage(content=f"a{i}")]


def test_a_token_budget_cuts_at_user_messages() -> None:
    history = turn(1, words=100) + turn(2) + turn(3)
    small = sum(estimate_tokens(m) for m in turn(2) + turn(3))
    assert trim_history(history, None, small) == turn(2) + turn(3)
    assert trim_history(history, None, small - 1) == turn(3)
    assert trim_history(history, None, 1) == turn(3)  # the last turn is kept whole, over budget or not
    assert trim_history(history, None, 10_000) == history
    assert trim_history(history, 4, 10_000) == turn(2) + turn(3)  # both budgets hold


def test_a_token_budget_never_splits_a_call_from_its_result() -> None:
    call = ToolCall(id="c1", name="lookup", arguments='{"q": "' + "x" * 400 + '"}')
    tool_turn = [
        UserMessage(content="look it up"),
        AssistantMessage(tool_calls=(call,)),
        ToolMessage(tool_call_id="c1", name="lookup", content="y" * 400),
        AssistantMessage(content="found"),
    ]
    history = turn(0) + tool_turn
    kept = trim_history(history, None, 50)
    assert kept == tool_turn  # whole, although over budget: never the result without its call
    assert estimate_tokens(tool_turn[1]) > 100  # tool-call arguments count


async def test_history_max_tokens_trims_what_is_sent_not_what_is_stored() -> None:
    seen: list[list[str]] = []

    def model(messages: list[Message], tools: list[ToolSpec]) -> Any:
        seen.append([m.content for m in messages])
        return "ok"

    agent = CreateAgent(provider=FunctionModel(model), instructions="Be brief.", history_max_tokens=12)
    await agent.chat("first " * 50)
    await agent.chat("second")
    await agent.chat("third")
    assert seen[-1] == ["Be brief.", "second", "ok", "third"]
    assert len(await agent.history()) == 6
    with pytest.raises(ConfigurationError, match="history_max_tokens"):
        CreateAgent(provider="test", history_max_tokens=0)

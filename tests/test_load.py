"""Load through ONE agent against the fake OpenAI server, whose default script echoes the last user message.

A thousand conversations at once; a thousand turns at once on one
conversation (each reads the history committed when it started and appends
its own two messages, atomically and contiguously); and afterwards no task
(the autouse fixture in conftest.py) and no connection left behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from createagents import CreateAgent
from tests.fakes.openai_server import FakeOpenAIServer

N = 1000
SECRET = "sk-load-0123456789"


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    server = FakeOpenAIServer(api_key=SECRET)
    await server.start()
    yield server
    await server.stop()


def agent_for(server: FakeOpenAIServer) -> CreateAgent:
    # no retries: every error the load causes must show
    return CreateAgent(provider="openai", model="m", base_url=server.v1, api_key=SECRET, max_retries=0)


def errors_of(results: list[Any]) -> list[str]:
    return [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]


def wire(history: list[Any]) -> list[dict[str, str]]:
    """A history as the OpenAI adapter sends it (plain user and assistant messages)."""
    return [{"role": m.role, "content": m.content} for m in history]


async def test_a_thousand_conversations_at_once(server: FakeOpenAIServer) -> None:
    agent = agent_for(server)
    try:
        results = await asyncio.gather(
            *(agent.conversation(f"c{i}").chat(f"hello number {i}") for i in range(N)), return_exceptions=True
        )
        assert errors_of(results) == []
        assert [str(r) for r in results] == [f"hello number {i} " for i in range(N)]
        for i in range(N):
            history = await agent.conversation(f"c{i}").history()
            assert wire(history) == [
                {"role": "user", "content": f"hello number {i}"},
                {"role": "assistant", "content": f"hello number {i} "},
            ]
        assert len(server.requests) == N
        calls = [r for r in agent.metrics() if r.kind == "model_call"]
        assert len(calls) == N and all(r.success for r in calls)
        assert server.open_connections > 0  # kept alive in the agent's pool until it closes
    finally:
        await agent.aclose()
    assert await server.wait_no_connections() == 0, "connections left open after aclose()"


async def test_a_thousand_turns_at_once_on_one_conversation(server: FakeOpenAIServer) -> None:
    agent = agent_for(server)
    try:
        results = await asyncio.gather(*(agent.chat(f"q{i}") for i in range(N)), return_exceptions=True)
        assert errors_of(results) == []
        assert [str(r) for r in results] == [f"q{i} " for i in range(N)]
        history = wire(await agent.history())
    finally:
        await agent.aclose()
    assert await server.wait_no_connections() == 0, "connections left open after aclose()"

    # every turn is there exactly once, as its user message immediately followed by its own answer
    assert len(history) == 2 * N
    users, answers = history[0::2], history[1::2]
    assert all(m["role"] == "user" for m in users) and all(m["role"] == "assistant" for m in answers)
    assert all(a["content"] == u["content"] + " " for u, a in zip(users, answers, strict=True))
    assert sorted(m["content"] for m in users) == sorted(f"q{i}" for i in range(N))

    # each turn read a committed history (a prefix of the final one: whole turns only), then sent its message
    assert len(server.requests) == N
    read_lengths = set()
    for request in server.requests:
        *read, own = request.body["messages"]
        assert own["role"] == "user" and read == history[: len(read)] and len(read) % 2 == 0
        read_lengths.add(len(read))
    # one at a time, the k-th turn would read all k - 1 before it: every turn a different length
    assert len(read_lengths) < N, "the turns on one conversation ran one at a time"

"""Closing an Ollama agent ends its chats in flight promptly, with `AgentClosedError`."""

from __future__ import annotations

import asyncio

import pytest

from createagents import AgentClosedError, CreateAgent
from tests.adapters.test_openai_hostile import until
from tests.fakes.ollama_server import FakeOllamaServer, OllamaScript


async def test_aclose_during_a_retry_wait(ollama_server: FakeOllamaServer) -> None:
    ollama_server.add(OllamaScript(status=503, headers={"Retry-After": "60"}), OllamaScript(text=["late"]))
    agent = CreateAgent(provider="ollama", model="llama3.2", base_url=ollama_server.url, max_retries=2)
    task = asyncio.create_task(agent.chat("hi"))
    await until(lambda: bool(ollama_server.requests))
    await asyncio.sleep(0.05)
    await agent.aclose()
    with pytest.raises(AgentClosedError):
        await asyncio.wait_for(task, 5)  # not the 60 s Retry-After, and typed
    assert len(ollama_server.requests) == 1


async def test_aclose_mid_stream(ollama_server: FakeOllamaServer) -> None:
    ollama_server.add(OllamaScript(text=["a ", "b ", "c ", "d "], chunk_delay=0.5))
    agent = CreateAgent(provider="ollama", model="llama3.2", base_url=ollama_server.url, max_retries=0)
    got: list[str] = []

    async def consume() -> None:
        async for token in agent.chat("hi"):
            got.append(token)

    task = asyncio.create_task(consume())
    await until(lambda: bool(got))
    await agent.aclose()
    with pytest.raises(AgentClosedError):
        await asyncio.wait_for(task, 5)
    assert await agent._runtime.store.load("default") == []

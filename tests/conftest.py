from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.fakes.ollama_server import FakeOllamaServer
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.responses_server import FakeResponsesServer

SECRET = "sk-test-SECRET-0123456789"  # the fake servers' key: every error and log must mask it


@pytest.fixture(autouse=True)
async def no_task_left_running() -> AsyncIterator[None]:
    """Every test must leave no task behind (a leaked stream or tool call).

    Generator finalizers that asyncio schedules itself get a moment to finish first.
    """
    before = asyncio.all_tasks()
    yield
    for _ in range(50):
        left = {t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()}
        if not left:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"tasks left running: {left}")


@pytest.fixture
async def openai_server() -> AsyncIterator[FakeOpenAIServer]:
    server = FakeOpenAIServer(api_key=SECRET)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def ollama_server() -> AsyncIterator[FakeOllamaServer]:
    server = FakeOllamaServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def responses_server() -> AsyncIterator[FakeResponsesServer]:
    server = FakeResponsesServer(api_key=SECRET)
    await server.start()
    yield server
    await server.stop()

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.ollama_server import FakeOllamaServer
from tests.fakes.openai_server import FakeOpenAIServer

SECRET = "sk-test-SECRET-0123456789"


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

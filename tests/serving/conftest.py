"""A real server on 127.0.0.1 (random port) through `createagents.serving.serve`, driven by the `openai` SDK."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from openai import AsyncOpenAI

from createagents import AssistantMessage, CreateAgent, ToolCall, ToolMessage, UserMessage, tool
from createagents.serving import serve
from createagents.testing import FunctionModel
from tests.fakes.openai_server import FakeOpenAIServer

KEY = "sk-server-key-0123456789"
OTHER_KEY = "sk-server-key-other-9876543210"
UPSTREAM_KEY = "sk-upstream-SECRET-0123456789"


class Running:
    """A server started by `serve(...)` in a task: its URL, and how to stop it."""

    def __init__(self, task: asyncio.Task[None], port: int, stop: asyncio.Event) -> None:
        self.task = task
        self.port = port
        self.stop = stop

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"

    def client(self, key: str = KEY, **kw: Any) -> AsyncOpenAI:
        return AsyncOpenAI(base_url=self.v1, api_key=key, max_retries=0, **kw)


@asynccontextmanager
async def running(agents: CreateAgent | Mapping[str, CreateAgent], **options: Any) -> AsyncIterator[Running]:
    options.setdefault("api_keys", [KEY, OTHER_KEY])
    loop = asyncio.get_running_loop()
    bound: asyncio.Future[int] = loop.create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(agents, port=0, ready=bound.set_result, stop=stop, **options))
    done, _ = await asyncio.wait([bound, task], return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        bound.cancel()
        await task  # raises what serve raised
    server = Running(task, bound.result(), stop)
    try:
        yield server
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def upstream() -> AsyncIterator[FakeOpenAIServer]:
    server = FakeOpenAIServer(api_key=UPSTREAM_KEY)
    await server.start()
    yield server
    await server.stop()


async def sse_events(response: aiohttp.ClientResponse) -> list[str]:
    """The data lines of an event stream, in order."""
    body = (await response.read()).decode()
    return [line[len("data: ") :] for line in body.split("\n") if line.startswith("data: ")]


class Bench:
    """A scripted agent with an auto tool (`add`) and one that needs approval (`delete_file`).

    A user message gets `calls` (with `text`); tool results get them back, in
    order. `ran` records what ran, `seen` the messages and `tools_seen` the
    tool names of each model call.
    """

    def __init__(self, calls: list[ToolCall], text: str = "", **agent_options: Any) -> None:
        self.ran: list[str] = []
        self.seen: list[list[Any]] = []
        self.tools_seen: list[list[str]] = []

        def add(a: int, b: int) -> int:
            """Add two integers."""
            self.ran.append("add")
            return a + b

        @tool(requires_approval=True)
        def delete_file(path: str) -> str:
            """Delete a file."""
            self.ran.append(f"delete {path}")
            return f"deleted {path}"

        def script(messages: list[Any], tools: list[Any]) -> Any:
            self.seen.append(list(messages))
            self.tools_seen.append([t.name for t in tools])
            if isinstance(messages[-1], UserMessage):
                return AssistantMessage(content=text, tool_calls=tuple(calls))
            return "results: " + " | ".join(m.content for m in messages if isinstance(m, ToolMessage))

        self.agent = CreateAgent(provider=FunctionModel(script), tools=[add, delete_file], **agent_options)


def call(call_id: str, name: str, **arguments: Any) -> ToolCall:
    return ToolCall(id=call_id, name=name, arguments=json.dumps(arguments))

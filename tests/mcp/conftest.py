from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from createagents import CreateAgent
from createagents.mcp import MCPServer
from tests.conftest import SECRET
from tests.fakes.openai_server import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[2]
SERVER_ARGS = ["-m", "tests.mcp.server_app"]


def agent_for(server: FakeOpenAIServer, model: str = "gpt-test", **kw: Any) -> CreateAgent:
    kw.setdefault("max_retries", 0)
    return CreateAgent(provider="openai", model=model, base_url=server.v1, api_key=SECRET, **kw)


def stdio(**kw: Any) -> MCPServer:
    """The test server (`server_app.py`) as a stdio MCP server."""
    env = kw.pop("env", None)
    return MCPServer.stdio(sys.executable, SERVER_ARGS, env=env, cwd=ROOT, **kw)


@pytest.fixture
async def servers() -> AsyncIterator[Callable[..., MCPServer]]:
    """Build stdio test servers; every one is closed after the test, whatever it did."""
    made: list[MCPServer] = []

    def make(**kw: Any) -> MCPServer:
        made.append(stdio(**kw))
        return made[-1]

    yield make
    for server in made:
        await server.aclose()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    """The test server over streamable HTTP, in a subprocess on 127.0.0.1."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, *SERVER_ARGS, "--http", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError("the HTTP MCP server exited") from None
                time.sleep(0.05)
        else:
            raise RuntimeError("the HTTP MCP server did not listen")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(10)

"""A script that never closes its agent exits quietly: no "Unclosed client session" / "Unclosed connector".

Each script runs in a fresh interpreter against a fake OpenAI server in this test's loop, with
ResourceWarnings shown (`-W default`) as well as without.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAIServer

ROOT = Path(__file__).resolve().parent.parent

SCRIPTS = {
    "asyncio.run": """
        import asyncio, sys
        from createagents import CreateAgent

        async def main():
            agent = CreateAgent(provider="openai", model="m", base_url=sys.argv[1], api_key="k")
            print(await agent.chat("hello there"))

        asyncio.run(main())
    """,
    "chat_sync": """
        import sys
        from createagents import CreateAgent

        agent = CreateAgent(provider="openai", model="m", base_url=sys.argv[1], api_key="k")
        print(agent.chat_sync("hello there"))
    """,
    "two asyncio.run": """
        import asyncio, sys
        from createagents import CreateAgent

        agent = CreateAgent(provider="openai", model="m", base_url=sys.argv[1], api_key="k")

        async def main():
            print(await agent.chat("hello there"))

        asyncio.run(main())
        asyncio.run(main())
    """,
    "dropped while the loop runs": """
        import asyncio, gc, sys
        from createagents import CreateAgent

        async def main():
            agent = CreateAgent(provider="openai", model="m", base_url=sys.argv[1], api_key="k")
            print(await agent.chat("hello there"))
            session = agent._model.transport._session
            del agent  # a notebook cell run again
            gc.collect()
            await asyncio.sleep(0.1)
            assert session.closed  # by the loop, which still runs

        asyncio.run(main())
    """,
}


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    server = FakeOpenAIServer(api_key="k")
    await server.start()
    yield server
    await server.stop()


async def run(script: str, url: str, *flags: str) -> tuple[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PYTHON"))}
    env["PYTHONPATH"] = str(ROOT)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *flags,
        "-c",
        textwrap.dedent(script),
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode(), err.decode()


@pytest.mark.parametrize("name", list(SCRIPTS))
async def test_an_agent_never_closed_exits_quietly(server: FakeOpenAIServer, name: str) -> None:
    plain, warnings = await asyncio.gather(
        run(SCRIPTS[name], server.v1), run(SCRIPTS[name], server.v1, "-W", "default")
    )
    for out, err in (plain, warnings):
        assert out.startswith("hello there")
        assert err == ""


def test_closing_a_blocking_agent_closes_its_event_loop() -> None:
    script = (
        "import gc, time\nfrom createagents import CreateAgent\n"
        "a = CreateAgent(provider='test')\na.chat_sync('hi')\na.close()\ntime.sleep(0.1)\ndel a\ngc.collect()\n"
    )
    out = subprocess.run([sys.executable, "-X", "dev", "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "Warning" not in out.stderr, out.stderr

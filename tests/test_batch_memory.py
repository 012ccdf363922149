"""`chat_many` holds 10,000 prompts against the fake OpenAI server with flat memory: a fixed pool of runs."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from createagents import CreateAgent
from tests.adapters.conftest import SECRET
from tests.fakes.openai_server import FakeOpenAIServer

PROMPTS = 10_000
CONCURRENCY = 8


def rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096


async def test_ten_thousand_prompts_with_flat_memory() -> None:
    server = FakeOpenAIServer(api_key=SECRET)
    await server.start()
    agent = CreateAgent(provider="openai", model="m", base_url=server.v1, api_key=SECRET)
    tasks_seen: list[int] = []
    objects: dict[int, int] = {}
    memory: dict[int, int] = {}
    served = 0

    def progress(done: int, total: int) -> None:
        nonlocal served
        if done % 500 == 0:
            served += len(server.requests)
            server.requests.clear()  # the fake server's own record is not the client's memory
            tasks_seen.append(len(asyncio.all_tasks()))
        if done in (1_000, PROMPTS):
            gc.collect()
            objects[done] = len(gc.get_objects())
            memory[done] = rss()

    try:
        await agent.chat("warm up")  # the pool, the session and lazy imports exist before we measure
        tasks_before = len(asyncio.all_tasks())
        answers = await agent.chat_many(
            [f"prompt {i}" for i in range(PROMPTS)], concurrency=CONCURRENCY, progress=progress
        )
    finally:
        await agent.aclose()
        await server.stop()
    assert answers[0] == "prompt 0 " and answers[-1] == f"prompt {PROMPTS - 1} "
    assert served + len(server.requests) == PROMPTS + 1
    # at most `concurrency` runs at a time: our workers plus the fake server's two tasks per connection
    assert max(tasks_seen) <= tasks_before + 3 * CONCURRENCY
    # flat: what grows is the list of answers (an Answer, its attribute dict, its Usage: about 4 objects each),
    # not runs, tasks or connections (a run left behind would keep dozens)
    kept = (objects[PROMPTS] - objects[1_000]) / (PROMPTS - 1_000)
    assert kept < 6, f"{kept:.1f} objects kept per prompt"
    grown = (memory[PROMPTS] - memory[1_000]) / (PROMPTS - 1_000)
    assert grown < 3_000, f"{grown:.0f} bytes of RSS per prompt"

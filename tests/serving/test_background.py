"""Background responses through the real `openai` SDK: poll, replay and follow, cancel, keys, replicas, restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import openai
import pytest

from createagents import CreateAgent, InMemoryConversationStore, Message, ToolSpec
from createagents.testing import FunctionModel
from tests.serving.conftest import KEY, OTHER_KEY, Bench, call, running

STORY = " ".join(f"word{i}" for i in range(40))


def slow_agent(store: Any = None, delay: float = 0.02) -> CreateAgent:
    def story(messages: list[Message], tools: list[ToolSpec]) -> str:
        return STORY

    return CreateAgent(provider=FunctionModel(story, delay=delay), store=store)


async def wait_for(client: Any, response_id: str, statuses: tuple[str, ...], within: float = 10.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        response = await client.responses.retrieve(response_id)
        if response.status in statuses:
            return response
        assert time.monotonic() < deadline, f"still {response.status}"
        await asyncio.sleep(0.05)


def text_of(events: list[Any]) -> str:
    return "".join(e.delta for e in events if e.type == "response.output_text.delta")


async def test_a_background_response_returns_at_once_and_completes_on_the_server() -> None:
    async with running(slow_agent()) as server:
        client = server.client()
        started = time.monotonic()
        response = await client.responses.create(model="default", input="Tell me a story", background=True)
        assert time.monotonic() - started < 0.5  # the story takes 0.8 s: it was not waited for
        assert response.status in ("queued", "in_progress") and response.background
        done = await wait_for(client, response.id, ("completed",))
        assert done.output_text == STORY and done.background
        events = [e async for e in await client.responses.retrieve(response.id, stream=True)]
        assert [e.sequence_number for e in events] == list(range(len(events)))
        assert events[0].type == "response.created" and events[-1].type == "response.completed"
        assert text_of(events) == STORY
        tail = [e async for e in await client.responses.retrieve(response.id, stream=True, starting_after=10)]
        assert [e.sequence_number for e in tail] == list(range(11, len(events)))


async def test_a_dropped_stream_is_picked_up_where_it_left_off() -> None:
    async with running(slow_agent()) as server:
        client = server.client()
        seen: list[Any] = []
        stream = await client.responses.create(model="default", input="story", background=True, stream=True)
        async for event in stream:
            seen.append(event)
            if len(seen) == 8:
                break  # the client goes away; the run does not
        await stream.close()
        response_id = seen[0].response.id
        rest = [
            e
            async for e in await client.responses.retrieve(
                response_id, stream=True, starting_after=seen[-1].sequence_number
            )
        ]
        events = seen + rest
        assert [e.sequence_number for e in events] == list(range(len(events)))
        assert text_of(events) == STORY and events[-1].type == "response.completed"


async def test_cancel_stops_the_run_and_only_an_active_one() -> None:
    agent = slow_agent(delay=0.05)
    async with running(agent) as server:
        client = server.client()
        response = await client.responses.create(model="default", input="story", background=True, conversation="c1")
        await wait_for(client, response.id, ("in_progress",))
        cancelled = await client.responses.cancel(response.id)
        assert cancelled.status == "cancelled"
        await asyncio.sleep(0.2)
        assert (await client.responses.retrieve(response.id)).status == "cancelled"
        assert await agent.conversation("c1").history() == []  # nothing of a cancelled turn is committed
        again = await client.responses.cancel(response.id)  # cancelled already: it says so again
        assert again.status == "cancelled"


async def test_a_completed_response_cannot_be_cancelled_and_bad_requests_are_refused() -> None:
    async with running(slow_agent(delay=0)) as server:
        client = server.client()
        response = await client.responses.create(model="default", input="story", background=True)
        await wait_for(client, response.id, ("completed",))
        with pytest.raises(openai.BadRequestError, match="not in progress"):
            await client.responses.cancel(response.id)
        with pytest.raises(openai.BadRequestError, match="starting_after"):
            async for _ in await client.responses.retrieve(response.id, stream=True, starting_after=10_000):
                pass
        with pytest.raises(openai.BadRequestError, match="store"):
            await client.responses.create(model="default", input="x", background=True, store=False)
        with pytest.raises(openai.NotFoundError):
            await client.responses.cancel("resp_" + "0" * 32)
        await client.responses.delete(response.id)
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(response.id)


async def test_only_the_key_that_created_it_sees_a_background_response() -> None:
    async with running(slow_agent(delay=0)) as server:
        mine, theirs = server.client(KEY), server.client(OTHER_KEY)
        response = await mine.responses.create(model="default", input="story", background=True)
        await wait_for(mine, response.id, ("completed",))
        with pytest.raises(openai.NotFoundError):
            await theirs.responses.retrieve(response.id)
        with pytest.raises(openai.NotFoundError):
            await theirs.responses.cancel(response.id)
        with pytest.raises(openai.NotFoundError):
            async for _ in await theirs.responses.retrieve(response.id, stream=True):
                pass


async def test_a_replica_that_did_not_run_it_replays_and_follows_it(tmp_path: Path) -> None:
    from createagents.adapters.sqlite_store import SQLiteConversationStore

    path = tmp_path / "shared.db"
    first, second = slow_agent(SQLiteConversationStore(path)), slow_agent(SQLiteConversationStore(path))
    async with running(first) as a, running(second) as b:
        response = await a.client().responses.create(model="default", input="story", background=True)
        events = [e async for e in await b.client().responses.retrieve(response.id, stream=True)]
        assert text_of(events) == STORY and events[-1].type == "response.completed"
        assert [e.sequence_number for e in events] == list(range(len(events)))
        assert (await b.client().responses.retrieve(response.id)).output_text == STORY
    await first.aclose()
    await second.aclose()


SERVER = textwrap.dedent(
    """
    import asyncio, sys
    from createagents import CreateAgent
    from createagents.adapters.sqlite_store import SQLiteConversationStore
    from createagents.serving import serve
    from createagents.testing import FunctionModel

    agent = CreateAgent(
        provider=FunctionModel(lambda m, t: " ".join(f"w{i}" for i in range(400)), delay=0.02),
        store=SQLiteConversationStore(sys.argv[1]),
    )
    asyncio.run(serve(agent, port=0, api_keys=["KEY"], background_stale_after=1.0,
                      ready=lambda port: print(port, flush=True)))
    """
).replace("KEY", KEY)


def start_server(script: Path, db: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, str(script), str(db)], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2]
    )
    assert process.stdout is not None
    port = process.stdout.readline().strip()
    assert port.isdigit(), port
    return process, f"http://127.0.0.1:{port}/v1"


async def test_a_run_whose_server_was_killed_is_marked_incomplete_on_restart(tmp_path: Path) -> None:
    script, db = tmp_path / "server.py", tmp_path / "runs.db"
    script.write_text(SERVER)
    process, url = start_server(script, db)
    try:
        client = openai.AsyncOpenAI(base_url=url, api_key=KEY, max_retries=0)
        response = await client.responses.create(model="default", input="long story", background=True)
        await wait_for(client, response.id, ("in_progress",))
        seen = []
        stream = await client.responses.retrieve(response.id, stream=True)
        async for event in stream:
            seen.append(event)
            if len(seen) == 20:
                break
        await stream.close()
        os.kill(process.pid, signal.SIGKILL)  # mid-run: no shutdown, no last write
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    process, url = start_server(script, db)  # the restart, on the same store
    try:
        client = openai.AsyncOpenAI(base_url=url, api_key=KEY, max_retries=0)
        after = await wait_for(client, response.id, ("incomplete",), within=15)
        assert after.incomplete_details is not None and after.incomplete_details.reason == "interrupted"
        replay = [e async for e in await client.responses.retrieve(response.id, stream=True)]
        assert len(replay) >= 20 and [e.sequence_number for e in replay[:20]] == [e.sequence_number for e in seen]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)


async def test_a_background_response_is_usable_as_previous_response_the_moment_it_completes() -> None:
    class SlowRecords(InMemoryConversationStore):
        async def append(self, conversation_id: str, messages: Any) -> None:
            if conversation_id.endswith(":meta"):  # the response's record: written last, and slowly here
                await asyncio.sleep(0.3)
            await super().append(conversation_id, messages)

    bench = Bench([call("c1", "delete_file", path="/tmp/x")], text="Deleting.", store=SlowRecords())
    async with running(bench.agent) as server:
        client = server.client()
        response = await client.responses.create(model="default", input="delete /tmp/x", background=True)
        stream = await client.responses.retrieve(response.id, stream=True)
        events = [e async for e in stream]
        assert events[-1].type == "response.completed"
        request = events[-1].response.output[-1]  # type: ignore[union-attr]
        assert request.type == "mcp_approval_request" and bench.ran == []
        # at once, as a client does on seeing response.completed: the paused turn is already saved
        answered = await client.responses.create(
            model="default",
            previous_response_id=response.id,
            input=[{"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}],
        )
        assert answered.output_text == "results: deleted /tmp/x" and bench.ran == ["delete /tmp/x"]


async def test_an_answer_whose_run_never_starts_leaves_the_turn_waiting() -> None:
    class RunsFailToStart(InMemoryConversationStore):
        async def update_run(self, run_id: str, changes: Any, *, statuses: Any = None) -> Any:
            if changes.get("status") == "in_progress":
                raise ConnectionError("the store went away")
            return await super().update_run(run_id, changes, statuses=statuses)

    bench = Bench([call("c1", "delete_file", path="/tmp/x")], store=RunsFailToStart())
    answer = [{"type": "mcp_approval_response", "approval_request_id": "mcpr_c1", "approve": True}]
    async with running(bench.agent) as server:
        client = server.client()
        paused = await client.responses.create(model="default", input="delete /tmp/x")
        background = await client.responses.create(
            model="default", previous_response_id=paused.id, input=answer, background=True
        )
        assert (await wait_for(client, background.id, ("failed",))).status == "failed"  # it never ran
        assert bench.ran == []
        answered = await client.responses.create(model="default", previous_response_id=paused.id, input=answer)
        assert answered.output_text == "results: deleted /tmp/x" and bench.ran == ["delete /tmp/x"]

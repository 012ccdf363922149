"""`agent.background(...)` and `agent.attach(id)`: a run that outlives its caller, followed from another agent."""

from __future__ import annotations

from pathlib import Path

import pytest

from createagents import ConfigurationError, CreateAgent, Message, ToolSpec
from createagents.testing import FunctionModel


def story(messages: list[Message], tools: list[ToolSpec]) -> str:
    return "once upon a time there was an agent"


async def test_a_background_turn_is_followed_from_another_agent_on_the_store(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    async with CreateAgent(provider=FunctionModel(story, delay=0.01), store=store) as agent:
        run = await agent.background("tell me a story", conversation="kid")
        async with CreateAgent(provider=FunctionModel(story), store=store) as other:
            events = [e async for e in other.attach(run.id).events()]
            assert [e["sequence_number"] for e in events] == list(range(len(events)))
            assert "".join(e["text"] for e in events if e["type"] == "text_delta") == story([], [])
            record = await other.attach(run.id).record()
            assert record["status"] == "completed" and record["result"]["text"] == story([], [])
            tail = [e async for e in other.attach(run.id).events(after=len(events) - 3)]
            assert tail == events[-2:]
        assert len(await agent.conversation("kid").history()) == 2


async def test_cancel_and_bad_input() -> None:
    agent = CreateAgent(provider=FunctionModel(story, delay=0.05))
    run = await agent.background("story")
    record = await run.cancel()
    assert record["status"] == "cancelled" and (await run.wait())["status"] == "cancelled"
    with pytest.raises(ConfigurationError):
        await agent.background("")
    with pytest.raises(ConfigurationError):
        agent.attach("")
    await agent.aclose()

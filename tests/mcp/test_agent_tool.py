"""An agent as a tool of another: nested events, each agent's own metrics, failures as tool errors."""

from __future__ import annotations

import asyncio
import json

from createagents import CreateAgent, NestedEvent, RunEvent
from createagents.domain.metrics import ModelCallRecord
from tests.fakes.openai_server import FakeOpenAIServer, FakeToolCall, Script

from .conftest import agent_for


def research_call(task: str, id: str = "call_r1") -> Script:
    return Script(tool_calls=[FakeToolCall("research", [json.dumps({"task": task})], id=id)])


def model_calls(agent: CreateAgent) -> list[ModelCallRecord]:
    return [r for r in agent.metrics() if isinstance(r, ModelCallRecord)]


async def test_a_sub_agent_runs_its_own_loop_with_nested_events_and_its_own_metrics(
    openai_server: FakeOpenAIServer,
) -> None:
    # requests in order: lead (calls research), researcher (answers), lead (answers)
    openai_server.add(research_call("Find X"), Script(text=["X is ", "42"]), Script(text=["The answer is 42"]))
    events: list[RunEvent] = []
    researcher = agent_for(openai_server, model="gpt-researcher", instructions="You research.")
    lead = agent_for(
        openai_server,
        model="gpt-lead",
        tools=[researcher.as_tool("research", "Research a topic in depth")],
        observers=[events.append],
    )
    async with researcher, lead:
        assert await lead.chat("What is X?") == "The answer is 42"
    offered = openai_server.requests[0].body["tools"][0]["function"]
    assert offered["name"] == "research" and offered["description"] == "Research a topic in depth"
    assert offered["parameters"]["required"] == ["task"]
    sub_request = openai_server.requests[1].body
    assert sub_request["model"] == "gpt-researcher"
    assert [m["content"] for m in sub_request["messages"]] == ["You research.", "Find X"]
    assert [m["content"] for m in openai_server.requests[2].body["messages"] if m["role"] == "tool"] == ["X is 42"]

    run_id = next(e.run_id for e in events if e.kind == "run_started")  # type: ignore[union-attr]
    nested = [e for e in events if isinstance(e, NestedEvent)]
    assert nested and all(e.parent_run_id == run_id and e.call_id == "call_r1" for e in nested)
    assert all(e.agent == "research" for e in nested)
    kinds = [e.event.kind for e in nested]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert "text_delta" in kinds and "model_call_finished" in kinds

    assert [(r.model, r.success) for r in model_calls(lead)] == [("gpt-lead", True), ("gpt-lead", True)]
    assert [(r.model, r.success) for r in model_calls(researcher)] == [("gpt-researcher", True)]


async def test_a_failing_sub_agent_is_a_tool_error_for_the_parent_model(openai_server: FakeOpenAIServer) -> None:
    openai_server.add(
        research_call("Find X"),
        Script(status=500, error={"message": "boom", "type": "server_error"}),
        Script(text=["I could not research it"]),
    )
    events: list[RunEvent] = []
    researcher = agent_for(openai_server, model="gpt-researcher")
    lead = agent_for(openai_server, tools=[researcher.as_tool("research", "Research")], observers=[events.append])
    async with researcher, lead:
        assert await lead.chat("What is X?") == "I could not research it"
    finished = [e for e in events if e.kind == "tool_call_finished"]
    assert [e.error for e in finished] == ["ToolError"]  # type: ignore[union-attr]
    result = finished[0].result  # type: ignore[union-attr]
    assert result.startswith("Error: agent 'research' (openai gpt-researcher) failed: ProviderUnavailableError")
    assert [r.success for r in model_calls(researcher)] == [False]


async def test_a_timed_out_sub_agent_is_cancelled_and_the_parent_goes_on(openai_server: FakeOpenAIServer) -> None:
    sub_events: list[RunEvent] = []
    slow = CreateAgent(
        provider="test", provider_options={"text": "one two three four", "delay": 0.5}, observers=[sub_events.append]
    )
    openai_server.add(research_call("Slowly"), Script(text=["gave up"]))
    lead = agent_for(openai_server, tools=[slow.as_tool("research", "Research", timeout=0.3)])
    async with slow, lead:
        assert await lead.chat("go") == "gave up"
    tool_results = [m["content"] for m in openai_server.requests[1].body["messages"] if m["role"] == "tool"]
    assert tool_results == ["Error: tool 'research' timed out after 0.3 s"]
    for _ in range(500):  # up to 5 s, under load too
        if any(e.kind == "run_failed" for e in sub_events):
            break
        await asyncio.sleep(0.01)
    failed = [e for e in sub_events if e.kind == "run_failed"]
    assert failed and failed[0].cancelled  # type: ignore[union-attr]

"""Toolsets: tools listed when each run starts, merged with the agent's own, under the agent's rules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from createagents import CreateAgent, Tool, Toolset
from createagents.testing import FunctionModel, tool_call


def remote(city: str) -> str:
    return f"remote weather in {city}"


class Listed(Toolset):
    """A toolset whose list the test changes; it counts what the agent asks of it."""

    def __init__(self, *tools: Tool, prefix: str = "remote", fail_start: bool = False) -> None:
        self.tools = list(tools)
        self.prefix = prefix
        self.fail_start = fail_start
        self.listed = self.started = self.closed = 0

    async def list_tools(self) -> Sequence[Tool]:
        self.listed += 1
        return self.tools

    async def start(self) -> None:
        if self.fail_start:
            raise RuntimeError("cannot start")
        self.started += 1

    async def aclose(self) -> None:
        self.closed += 1


def schema_tool(name: str = "weather") -> Tool:
    parameters = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    return Tool(remote, name=name, description="Weather, from afar.", parameters=parameters)


async def test_a_toolsets_tools_are_offered_and_run_beside_the_agents_own() -> None:
    def weather(city: str) -> str:
        """Local weather."""
        return f"local weather in {city}"

    seen: list[list[str]] = []

    def model(messages: list[Any], tools: list[Any]) -> Any:
        seen.append([t.name for t in tools])
        if len(seen) == 1:
            return [tool_call("weather", city="Lisbon"), tool_call("remote_weather", city="Porto")]
        return "done"

    toolset = Listed(schema_tool())
    agent = CreateAgent(provider=FunctionModel(model), tools=[weather, toolset])
    reply = agent.chat("?")
    await reply
    assert seen[0] == ["weather", "remote_weather"]  # the listed tool's name was taken: it got the prefix
    results = [m.content for m in reply.messages if m.role == "tool"]
    assert results == ["local weather in Lisbon", "remote weather in Porto"]
    await agent.aclose()
    assert toolset.closed == 1


async def test_the_list_is_asked_each_run_and_the_merged_box_reused_while_it_is_the_same() -> None:
    toolset = Listed(schema_tool())
    agent = CreateAgent(provider="test", tools=[toolset])
    box = agent._runtime.spec.toolbox
    first = await box.resolved()
    assert await box.resolved() is first and toolset.listed == 2
    toolset.tools = [schema_tool("forecast")]
    second = await box.resolved()
    assert second is not first and list(second.tools) == ["forecast"]


@pytest.mark.parametrize("require", [True, ["weather"]])
async def test_the_agents_approval_rules_cover_a_toolsets_tools(require: Any) -> None:
    model = FunctionModel(lambda messages, tools: [tool_call("weather", city="Lisbon")])
    agent = CreateAgent(provider=model, tools=[Listed(schema_tool())], require_approval=require)
    reply = agent.chat("?")
    await reply
    assert reply.paused is not None and [p.name for p in reply.pending] == ["weather"]


async def test_entering_the_agent_starts_toolsets_and_a_failed_start_closes_the_others() -> None:
    good = Listed(schema_tool("a"))
    async with CreateAgent(provider="test", tools=[good]):
        assert good.started == 1
    assert good.closed == 1
    first, broken = Listed(schema_tool("a")), Listed(schema_tool("b"), prefix="other", fail_start=True)
    agent = CreateAgent(provider="test", tools=[first, broken])
    with pytest.raises(RuntimeError, match="cannot start"):
        async with agent:
            pass  # pragma: no cover
    assert first.started == 1 and first.closed == 1


def test_a_name_taken_even_with_the_prefix_is_a_clear_error() -> None:
    import asyncio

    from createagents import ConfigurationError

    def remote_weather(city: str) -> str:
        return city

    def weather(city: str) -> str:
        return city

    agent = CreateAgent(provider="test", tools=[weather, remote_weather, Listed(schema_tool())])
    with pytest.raises(ConfigurationError, match="another prefix"):
        asyncio.run(agent._runtime.spec.toolbox.resolved())

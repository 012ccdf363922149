"""POST /v1/chat/completions through the official openai SDK: stateless turns, streamed and not."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from createagents import AssistantMessage, CreateAgent, SystemMessage, ToolCall, ToolMessage, UserMessage
from createagents.testing import FunctionModel, TestModel, tool_call

from .conftest import KEY, running, sse_events

HEADERS = {"Authorization": f"Bearer {KEY}"}


def recording(answer: str = "Hello there friend") -> tuple[FunctionModel, list[list[Any]]]:
    seen: list[list[Any]] = []

    def model(messages: list[Any], tools: list[Any]) -> str:
        seen.append(list(messages))
        return answer

    return FunctionModel(model), seen


async def test_a_completion_answers_with_the_history_after_the_agents_instructions() -> None:
    model, seen = recording("Paris, of course.")
    agent = CreateAgent(provider=model, instructions="You are the agent.")
    async with running(agent) as server, server.client() as client:
        completion = await client.chat.completions.create(
            model="default",
            messages=[
                {"role": "system", "content": "Client rules."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": [{"type": "text", "text": "Capital of France?"}]},
            ],
        )
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-") and completion.model == "default"
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and choice.message.content == "Paris, of course."
    assert choice.finish_reason == "stop"
    assert seen == [
        [
            SystemMessage(content="You are the agent."),
            SystemMessage(content="Client rules."),
            UserMessage(content="Hi"),
            AssistantMessage(content="Hello!"),
            UserMessage(content="Capital of France?"),
        ]
    ]
    assert await agent.conversations() == []  # stateless: nothing stored


async def test_a_streamed_completion_sends_openai_chunks_then_usage_then_done(http: aiohttp.ClientSession) -> None:
    agent = CreateAgent(provider="test")
    async with running(agent) as server, server.client() as client:
        stream = await client.chat.completions.create(
            model="test",
            messages=[{"role": "user", "content": "one two three"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
        raw = await http.post(
            f"{server.v1}/chat/completions",
            json={"model": "test", "messages": [{"role": "user", "content": "four five"}], "stream": True},
            headers=HEADERS,
        )
        assert raw.headers["Content-Type"].startswith("text/event-stream")
        assert raw.headers["X-Accel-Buffering"] == "no" and raw.headers["Cache-Control"] == "no-cache"
        data = await sse_events(raw)
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].choices[0].delta.content == ""
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: one two three"
    assert len({c.id for c in chunks}) == 1 and all(c.object == "chat.completion.chunk" for c in chunks)
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finish] == ["stop"] and finish[0] is chunks[-2]
    assert all(c.usage is None for c in chunks[:-1])
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None and usage.completion_tokens == 5
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    # without stream_options: no usage chunk, no "usage" key; the stream ends with [DONE]
    assert data[-1] == "[DONE]"
    parsed = [json.loads(d) for d in data[:-1]]
    assert all("usage" not in p for p in parsed)
    assert "".join(p["choices"][0]["delta"].get("content") or "" for p in parsed) == "You said: four five"


async def test_request_settings_apply_to_that_request_only() -> None:
    model = TestModel()
    agent = CreateAgent(provider=model, config={"temperature": 0.9, "max_tokens": 50})
    async with running(agent) as server, server.client() as client:
        await client.chat.completions.create(
            model="default",
            messages=[{"role": "user", "content": "hi"}],
            temperature=0.2,
            top_p=0.5,
            max_completion_tokens=7,
            stop=["END"],
            seed=42,
        )
        await client.chat.completions.create(model="default", messages=[{"role": "user", "content": "hi"}])
    first, second = model.requests[0].settings, model.requests[1].settings
    assert (first.temperature, first.top_p, first.max_tokens, first.stop, first.seed) == (0.2, 0.5, 7, ("END",), 42)
    assert (second.temperature, second.top_p, second.max_tokens, second.stop, second.seed) == (
        0.9,
        None,
        50,
        None,
        None,
    )


async def test_tool_calls_and_results_in_the_request_map_to_domain_messages() -> None:
    model, seen = recording("It is sunny.")
    agent = CreateAgent(provider=model)
    async with running(agent) as server, server.client() as client:
        await client.chat.completions.create(
            model="default",
            messages=[
                {"role": "user", "content": "Weather in Lisbon?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Lisbon"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "22 C"},
                {"role": "user", "content": "And tomorrow?"},
            ],
        )
    assert seen[0] == [
        UserMessage(content="Weather in Lisbon?"),
        AssistantMessage(tool_calls=(ToolCall(id="call_1", name="get_weather", arguments='{"city": "Lisbon"}'),)),
        ToolMessage(tool_call_id="call_1", name="get_weather", content="22 C"),
        UserMessage(content="And tomorrow?"),
    ]


@pytest.mark.parametrize("stream", [False, True])
async def test_the_agents_tools_run_on_the_server(stream: bool) -> None:
    ran: list[tuple[int, int]] = []

    def add(a: int, b: int) -> int:
        """Add two integers."""
        ran.append((a, b))
        return a + b

    def script(messages: list[Any], tools: list[Any]) -> Any:
        if isinstance(messages[-1], UserMessage):
            return [tool_call("add", a=2, b=3)]
        return f"The sum is {messages[-1].content}."

    agent = CreateAgent(provider=FunctionModel(script), tools=[add])
    async with running(agent) as server, server.client() as client:
        messages: Any = [{"role": "user", "content": "2 + 3?"}]
        if stream:
            chunks = [
                c async for c in await client.chat.completions.create(model="default", messages=messages, stream=True)
            ]
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            finish = chunks[-1].choices[0].finish_reason
            assert not any(c.choices[0].delta.tool_calls for c in chunks)  # the server's calls stay on the server
        else:
            completion = await client.chat.completions.create(model="default", messages=messages)
            text, finish = completion.choices[0].message.content or "", completion.choices[0].finish_reason
            assert completion.choices[0].message.tool_calls is None
    assert ran == [(2, 3)]
    assert text == "The sum is 5." and finish == "stop"

"""Client-side tools through the openai SDK: function calls the client runs, over Responses and Chat Completions."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import openai
import pytest

from createagents import AssistantMessage, ToolMessage

from .conftest import KEY, Bench, call, running

LOCATION_SCHEMA = {"type": "object", "properties": {"precision": {"type": "string"}}, "required": ["precision"]}
CHAT_TOOL: Any = {
    "type": "function",
    "function": {"name": "get_location", "description": "Where the user is.", "parameters": LOCATION_SCHEMA},
}
RESPONSES_TOOL: Any = {
    "type": "function",
    "name": "get_location",
    "description": "Where the user is.",
    "parameters": LOCATION_SCHEMA,
    "strict": False,
}
REFUSAL = "this call needs approval, which Chat Completions cannot ask for; use the Responses API (POST /v1/responses)"


# -- Responses -----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_a_responses_function_tool_comes_back_as_a_function_call_and_its_output_goes_on(stream: bool) -> None:
    bench = Bench([call("c1", "get_location", precision="city")], text="Let me look.")
    async with running(bench.agent) as server, server.client() as client:
        first: Any
        if stream:
            events = [
                e
                async for e in await client.responses.create(
                    model="default", input="where am I?", tools=[RESPONSES_TOOL], stream=True
                )
            ]
            first = events[-1].response  # type: ignore[union-attr]
        else:
            first = await client.responses.create(model="default", input="where am I?", tools=[RESPONSES_TOOL])
        assert first.status == "completed" and first.output_text == "Let me look."
        function_call = first.output[1]
        assert function_call.type == "function_call"
        assert (function_call.call_id, function_call.name) == ("c1", "get_location")
        assert json.loads(function_call.arguments) == {"precision": "city"}
        assert first.tools[0].type == "function" and first.tools[0].name == "get_location"
        assert bench.tools_seen[0] == ["add", "delete_file", "get_location"]
        done = await client.responses.create(
            model="default",
            previous_response_id=first.id,
            input=[{"type": "function_call_output", "call_id": function_call.call_id, "output": "Lisbon"}],
            tools=[RESPONSES_TOOL],
        )
    assert done.output_text == "results: Lisbon"
    assert bench.seen[-1][-2:] == [
        AssistantMessage(content="Let me look.", tool_calls=(call("c1", "get_location", precision="city"),)),
        ToolMessage(tool_call_id="c1", name="get_location", content="Lisbon"),
    ]


async def test_a_client_that_keeps_its_own_input_replays_it_with_the_output() -> None:
    """`store: false` clients send the whole input again, the function call and its output included."""
    bench = Bench([call("c1", "get_location", precision="city")])
    async with running(bench.agent) as server, server.client() as client:
        first = await client.responses.create(model="default", input="where am I?", tools=[RESPONSES_TOOL], store=False)
        fc = first.output[0]
        assert fc.type == "function_call"
        done = await client.responses.create(
            model="default",
            tools=[RESPONSES_TOOL],
            store=False,
            input=[
                {"role": "user", "content": "where am I?"},
                {"type": "function_call", "call_id": fc.call_id, "name": fc.name, "arguments": fc.arguments},
                {"type": "function_call_output", "call_id": fc.call_id, "output": "Faro"},
            ],
        )
    assert done.output_text == "results: Faro"
    assert await bench.agent.conversations() == []


# -- Chat Completions ------------------------------------------------------------------------


async def test_a_chat_client_tool_ends_with_tool_calls_and_the_tool_message_continues() -> None:
    bench = Bench([call("c1", "add", a=1, b=2), call("c2", "get_location", precision="city")], text="Looking.")
    async with running(bench.agent) as server, server.client() as client:
        messages: list[Any] = [{"role": "user", "content": "where am I?"}]
        first = await client.chat.completions.create(model="default", messages=messages, tools=[CHAT_TOOL])
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.content == "Looking."
        calls = choice.message.tool_calls
        assert calls is not None and len(calls) == 1  # only the client's call: the agent's own ran on the server
        assert (calls[0].id, calls[0].type, calls[0].function.name) == ("c2", "function", "get_location")  # type: ignore[union-attr]
        assert json.loads(calls[0].function.arguments) == {"precision": "city"}  # type: ignore[union-attr]
        assert bench.ran == ["add"]
        messages += [
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": "c2", "content": "Lisbon"},
        ]
        done = await client.chat.completions.create(model="default", messages=messages, tools=[CHAT_TOOL])
    assert done.choices[0].finish_reason == "stop"
    assert done.choices[0].message.content == "results: Lisbon" and done.choices[0].message.tool_calls is None
    assert bench.seen[-1][-1] == ToolMessage(tool_call_id="c2", name="get_location", content="Lisbon")


async def test_a_streamed_chat_client_tool_sends_tool_call_deltas_the_sdk_accumulates() -> None:
    bench = Bench([call("c1", "get_location", precision="city"), call("c2", "get_location", precision="street")])
    async with running(bench.agent) as server, server.client() as client:
        stream = await client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "where?"}], tools=[CHAT_TOOL], stream=True
        )
        calls: dict[int, dict[str, str]] = {}
        finish = None
        async for chunk in stream:
            for delta in chunk.choices[0].delta.tool_calls or []:
                entry = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] += delta.id or ""
                entry["name"] += (delta.function and delta.function.name) or ""
                entry["arguments"] += (delta.function and delta.function.arguments) or ""
            finish = chunk.choices[0].finish_reason or finish
        assert finish == "tool_calls"
        assert calls == {
            0: {"id": "c1", "name": "get_location", "arguments": '{"precision": "city"}'},
            1: {"id": "c2", "name": "get_location", "arguments": '{"precision": "street"}'},
        }
        strict: Any = {
            **CHAT_TOOL,
            "function": {**CHAT_TOOL["function"], "strict": True},
        }  # the helper parses strict tools
        async with client.chat.completions.stream(
            model="default", messages=[{"role": "user", "content": "where?"}], tools=[strict]
        ) as helper:
            final = await helper.get_final_completion()
    message = final.choices[0].message
    assert final.choices[0].finish_reason == "tool_calls"
    assert [(c.id, c.function.parsed_arguments) for c in message.tool_calls or []] == [  # type: ignore[union-attr]
        ("c1", {"precision": "city"}),
        ("c2", {"precision": "street"}),
    ]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_call_needing_approval_over_chat_completions_is_refused_and_the_model_reads_why(stream: bool) -> None:
    bench = Bench([call("c1", "delete_file", path="/x")])
    async with running(bench.agent) as server, server.client() as client:
        messages: Any = [{"role": "user", "content": "delete /x"}]
        text: str | None
        if stream:
            chunks = [
                c async for c in await client.chat.completions.create(model="default", messages=messages, stream=True)
            ]
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            finish = chunks[-1].choices[0].finish_reason
        else:
            completion = await client.chat.completions.create(model="default", messages=messages)
            text, finish = completion.choices[0].message.content, completion.choices[0].finish_reason
    assert bench.ran == []
    assert text == f"results: Tool call denied: {REFUSAL}" and finish == "stop"


# -- bad tools ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "param", "code"),
    [
        ({"tools": [{"type": "custom", "name": "x"}]}, "tools[0].type", "unsupported_parameter"),
        ({"tools": [{"type": "function"}]}, "tools[0].function", None),
        ({"tools": [{"type": "function", "function": {"name": "bad name!"}}]}, "tools[0].function", "invalid_value"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}]},
            "tools[0].function",
            "invalid_value",
        ),
        ({"tools": [CHAT_TOOL, CHAT_TOOL]}, "tools[1]", None),
        ({"tools": [{"type": "function", "function": {"name": "add"}}]}, "tools[0]", "invalid_value"),
        ({"tools": {"type": "function"}}, "tools", None),
        ({"tools": [CHAT_TOOL], "tool_choice": "required"}, "tool_choice", "unsupported_parameter"),
        (
            {"tools": [CHAT_TOOL], "tool_choice": {"type": "function", "function": {"name": "get_location"}}},
            "tool_choice",
            "unsupported_parameter",
        ),
        ({"functions": [{"name": "f"}]}, "functions", "unsupported_parameter"),
    ],
    ids=[
        "custom-type",
        "no-function",
        "bad-name",
        "array-schema",
        "twice",
        "agents-own-name",
        "not-a-list",
        "required",
        "named",
        "functions",
    ],
)
async def test_bad_chat_tools_are_400(
    http: aiohttp.ClientSession, extra: dict[str, Any], param: str, code: str | None
) -> None:
    bench = Bench([])
    body = {"model": "default", "messages": [{"role": "user", "content": "hi"}], **extra}
    async with (
        running(bench.agent) as server,
        http.post(f"{server.v1}/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}) as r,
    ):
        assert r.status == 400
        error = (await r.json())["error"]
    assert error["param"] == param and error["code"] == code and error["type"] == "invalid_request_error"
    assert bench.seen == []


@pytest.mark.parametrize(
    ("tools", "param", "code", "says"),
    [
        ([{"type": "web_search"}], "tools[0].type", "unsupported_parameter", "'web_search'"),
        (
            [{"type": "mcp", "server_label": "x", "server_url": "https://x"}],
            "tools[0].type",
            "unsupported_parameter",
            "'mcp'",
        ),
        (
            [{"type": "function", "name": "add", "parameters": None, "strict": False}],
            "tools[0]",
            "invalid_value",
            "'add'",
        ),
        ([{"type": "function", "name": "f", "parameters": None, "strict": "yes"}], "tools[0].strict", None, "strict"),
        ([{"type": "function", "parameters": None, "strict": False}], "tools[0].name", None, "name"),
    ],
    ids=["web-search", "mcp", "agents-own-name", "strict-not-bool", "no-name"],
)
async def test_bad_responses_tools_are_400(tools: list[Any], param: str, code: str | None, says: str) -> None:
    bench = Bench([])
    async with running(bench.agent) as server, server.client() as client:
        with pytest.raises(openai.BadRequestError) as e:
            await client.responses.create(model="default", input="hi", tools=tools)
    body: Any = e.value.body
    assert (body["param"], body["code"]) == (param, code) and says in body["message"]
    assert bench.seen == []


async def test_tool_choice_none_leaves_the_client_tools_out() -> None:
    bench = Bench([])
    async with running(bench.agent) as server, server.client() as client:
        await client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "hi"}], tools=[CHAT_TOOL], tool_choice="none"
        )
        await client.responses.create(model="default", input="hi", tools=[RESPONSES_TOOL], tool_choice="none")
    assert bench.tools_seen == [["add", "delete_file"], ["add", "delete_file"]]

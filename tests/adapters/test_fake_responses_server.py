"""The fake Responses API server is faithful: the real `openai` SDK parses every event it sends into its typed class.

Each stream is also read raw and every event validated strictly (pydantic validation, not the
SDK's lenient construction) against the SDK's event class, its `sequence_number`s checked and
its item events checked against the `output_item.added` they belong to.
"""

from __future__ import annotations

import json
import typing
from typing import Any

import aiohttp
import openai
import pytest
from openai.types.responses import Response, ResponseStreamEvent, ResponseUsage

from tests.fakes.responses_server import FakeResponsesServer, RFunctionCall, RScript

from .conftest import SECRET

MODEL = "gpt-fake-1"
ENC = ["reasoning.encrypted_content"]

# "response.output_text.delta" -> ResponseTextDeltaEvent, for every event type the SDK knows
EVENT_CLASSES: dict[str, type[Any]] = {
    typing.get_args(cls.model_fields["type"].annotation)[0]: cls
    for cls in typing.get_args(typing.get_args(ResponseStreamEvent)[0])
}
TERMINAL = {"response.completed", "response.incomplete", "response.failed", "error"}
LIFECYCLE = {"response.created", "response.in_progress", "response.completed", "response.incomplete", "response.failed"}


@pytest.fixture
def server(responses_server: FakeResponsesServer) -> FakeResponsesServer:
    return responses_server


def client(server: FakeResponsesServer, **kw: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.v1, api_key=SECRET, max_retries=0, **kw)


async def sdk_events(c: openai.AsyncOpenAI, **kw: Any) -> list[Any]:
    args: dict[str, Any] = {"model": MODEL, "input": "hi", "include": ENC, "store": False, **kw}
    stream = await c.responses.create(stream=True, **args)
    events = [event async for event in stream]
    await c.close()
    return events


async def raw_events(server: FakeResponsesServer, body: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """POST to the fake and split the SSE stream into its events, checking the framing on the way."""
    body = {"model": MODEL, "input": "hi", "stream": True, "include": ENC, "store": False, **(body or {})}
    headers = {"Authorization": f"Bearer {SECRET}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{server.v1}/responses", json=body, headers=headers) as r,
    ):
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/event-stream"
        assert r.headers["x-request-id"]
        text = await r.text()
    assert "[DONE]" not in text  # the Responses stream has no sentinel
    assert text.endswith("\n\n")
    events = []
    for frame in text[:-2].split("\n\n"):
        name_line, data_line = frame.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: ")
        data = json.loads(data_line.removeprefix("data: "))
        assert data["type"] == name_line.removeprefix("event: ")
        events.append(data)
    return events


def assert_faithful(events: list[dict[str, Any]]) -> None:
    """Every event validates strictly against the SDK's class, and the stream is ordered as documented."""
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    for e in events:
        EVENT_CLASSES[e["type"]].model_validate(e)  # strict: raises on a missing or mistyped field
        if e["type"] in LIFECYCLE:
            Response.model_validate(e["response"])
            assert e["response"]["id"] == events[0]["response"]["id"]
            assert e["response"]["model"] == MODEL
    added: dict[int, dict[str, Any]] = {}
    done: dict[int, dict[str, Any]] = {}
    for e in events[2:]:
        if e["type"] == "response.output_item.added":
            assert e["output_index"] == len(added) and not set(added) - set(done)  # one item at a time, in order
            added[e["output_index"]] = e["item"]
        elif e["type"] == "response.output_item.done":
            assert e["item"]["id"] == added[e["output_index"]]["id"]
            assert e["item"]["type"] == added[e["output_index"]]["type"]
            done[e["output_index"]] = e["item"]
        elif "item_id" in e:
            assert e["output_index"] in added and e["output_index"] not in done
            assert e["item_id"] == added[e["output_index"]]["id"]
    assert set(added) == set(done)
    last = events[-1]
    if last["type"] in LIFECYCLE - {"response.created", "response.in_progress"}:
        assert last["response"]["output"] == [done[i] for i in sorted(done)]
        assert last["response"]["status"] == last["type"].removeprefix("response.")


def names(events: list[Any]) -> list[str]:
    return [type(e).__name__ for e in events]


def assert_typed(events: list[Any]) -> None:
    """The SDK built each event as its own class, not a generic or neighbouring one."""
    for e in events:
        assert type(e) is EVENT_CLASSES[e.type], (e.type, type(e).__name__)


SCRIPTS = {
    "text": RScript(text=["Hel", "lo", "!"]),
    "refusal": RScript(refusal=["I can't ", "help with that."]),
    "reasoning": RScript(reasoning_summary=["Thinking ", "hard"], text=["42"]),
    "reasoning_text": RScript(reasoning_text=["raw ", "thoughts"], text=["ok"]),
    "reasoning_only": RScript(reasoning=True, text=["ok"]),
    "calls": RScript(
        function_calls=[RFunctionCall("get_weather", ['{"city":', '"Paris"}'], "call_w"), RFunctionCall("now", [])]
    ),
    "hosted": RScript(
        hosted=[
            {"type": "web_search_call", "action": {"type": "search", "query": "weather paris"}},
            {"type": "file_search_call", "queries": ["q"], "results": [{"file_id": "f1", "text": "t", "score": 0.5}]},
            {"type": "code_interpreter_call", "code": ["print(", "1)"], "outputs": [{"type": "logs", "logs": "1"}]},
            {"type": "image_generation_call", "result": None},
        ],
        text=["done"],
    ),
    "everything": RScript(
        reasoning_summary=["s"],
        reasoning_text=["r"],
        hosted=[{"type": "web_search_call"}],
        text=["t"],
        refusal=["no"],
        function_calls=[RFunctionCall("f", ["{}"])],
        order=["function_calls", "message", "hosted", "reasoning"],
    ),
    "incomplete": RScript(text=["cut"], incomplete="max_output_tokens"),
    "content_filter": RScript(text=["bad"], incomplete="content_filter"),
    "failed": RScript(text=["par"], failed={"code": "server_error", "message": "The model crashed."}),
    "error_event": RScript(text=["x"], error_event={"code": "rate_limit_exceeded", "message": "Slow down."}),
    "empty": RScript(),
}


@pytest.mark.parametrize("name", list(SCRIPTS))
async def test_every_event_is_faithful(server: FakeResponsesServer, name: str) -> None:
    server.add(SCRIPTS[name], SCRIPTS[name])
    assert_faithful(await raw_events(server))
    events = await sdk_events(client(server))
    assert_typed(events)
    assert events[-1].type in TERMINAL


async def test_text_sequence(server: FakeResponsesServer) -> None:
    server.add(RScript(text=["Hel", "lo"]))
    events = await sdk_events(client(server))
    assert names(events) == [
        "ResponseCreatedEvent",
        "ResponseInProgressEvent",
        "ResponseOutputItemAddedEvent",
        "ResponseContentPartAddedEvent",
        "ResponseTextDeltaEvent",
        "ResponseTextDeltaEvent",
        "ResponseTextDoneEvent",
        "ResponseContentPartDoneEvent",
        "ResponseOutputItemDoneEvent",
        "ResponseCompletedEvent",
    ]
    created = events[0].response
    assert created.id.startswith("resp_") and created.object == "response" and created.status == "in_progress"
    assert created.model == MODEL and created.output == [] and created.store is False
    item = events[2].item
    assert item.type == "message" and item.status == "in_progress" and item.role == "assistant" and item.content == []
    deltas = events[4:6]
    assert [d.delta for d in deltas] == ["Hel", "lo"]
    assert all(d.item_id == item.id and d.output_index == 0 and d.content_index == 0 for d in deltas)
    assert all(d.logprobs == [] for d in deltas)
    assert events[6].text == "Hello" and events[7].part.text == "Hello"
    assert events[8].item.status == "completed" and events[8].item.content[0].text == "Hello"
    final = events[-1].response
    assert final.status == "completed" and final.output_text == "Hello" and final.completed_at
    assert [e.sequence_number for e in events] == list(range(len(events)))


async def test_completed_response_validates_with_usage(server: FakeResponsesServer) -> None:
    server.add(RScript(text=["a"]))
    events = await raw_events(server, {"tools": [{"type": "function", "name": "f", "parameters": {}}]})
    final = Response.model_validate(events[-1]["response"])
    assert final.usage == ResponseUsage.model_validate(
        {
            "input_tokens": 11,
            "input_tokens_details": {"cached_tokens": 3, "cache_write_tokens": 0},
            "output_tokens": 7,
            "output_tokens_details": {"reasoning_tokens": 2},
            "total_tokens": 18,
        }
    )
    assert final.tools[0].type == "function" and final.tools[0].name == "f"  # the request's tools, echoed
    assert events[0]["response"]["usage"] is None


async def test_custom_usage(server: FakeResponsesServer) -> None:
    usage = {
        "input_tokens": 1,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 2,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 3,
    }
    server.add(RScript(text=["a"], usage=usage))
    events = await sdk_events(client(server))
    assert events[-1].response.usage.total_tokens == 3


async def test_reasoning_summary_with_encrypted_content(server: FakeResponsesServer) -> None:
    server.add(RScript(reasoning_summary=["Let me ", "think"], text=["4"]))
    events = await sdk_events(client(server), reasoning={"effort": "low", "summary": "auto"})
    assert names(events)[2:10] == [
        "ResponseOutputItemAddedEvent",
        "ResponseReasoningSummaryPartAddedEvent",
        "ResponseReasoningSummaryTextDeltaEvent",
        "ResponseReasoningSummaryTextDeltaEvent",
        "ResponseReasoningSummaryTextDoneEvent",
        "ResponseReasoningSummaryPartDoneEvent",
        "ResponseOutputItemDoneEvent",
        "ResponseOutputItemAddedEvent",  # the message comes after the reasoning
    ]
    added, part_added, d1, d2, text_done, part_done, done = events[2:9]
    assert added.item.type == "reasoning" and added.item.summary == [] and added.item.encrypted_content is None
    assert part_added.summary_index == 0 and part_added.part.type == "summary_text" and part_added.part.text == ""
    assert [d1.delta, d2.delta] == ["Let me ", "think"] and d1.summary_index == 0 and d1.item_id == added.item.id
    assert text_done.text == "Let me think" and part_done.part.text == "Let me think"
    assert done.item.summary[0].text == "Let me think" and done.item.encrypted_content == "enc_abc"
    final = events[-1].response
    assert final.output[0].encrypted_content == "enc_abc" and final.output[1].type == "message"
    assert final.reasoning.effort == "low" and final.reasoning.summary == "auto"


async def test_encrypted_content_only_when_included(server: FakeResponsesServer) -> None:
    server.add(RScript(reasoning_summary=["s"], text=["a"]))
    events = await sdk_events(client(server), include=[])
    dones = [e for e in events if e.type == "response.output_item.done"]
    assert dones[0].item.type == "reasoning" and dones[0].item.encrypted_content is None
    assert events[-1].response.output[0].encrypted_content is None
    raw = server.requests[-1].body
    assert raw["include"] == [] and raw["store"] is False and raw["stream"] is True


async def test_reasoning_item_without_summary(server: FakeResponsesServer) -> None:
    server.add(RScript(reasoning=True, text=["a"], encrypted_content="enc_xyz"))
    events = await sdk_events(client(server))
    assert names(events)[2:4] == ["ResponseOutputItemAddedEvent", "ResponseOutputItemDoneEvent"]
    assert events[3].item.summary == [] and events[3].item.encrypted_content == "enc_xyz"


async def test_raw_reasoning_text(server: FakeResponsesServer) -> None:
    server.add(RScript(reasoning_text=["The user ", "greets."], text=["Hi"]))
    events = await sdk_events(client(server), model="gpt-oss-120b")
    assert names(events)[3:8] == [
        "ResponseContentPartAddedEvent",
        "ResponseReasoningTextDeltaEvent",
        "ResponseReasoningTextDeltaEvent",
        "ResponseReasoningTextDoneEvent",
        "ResponseContentPartDoneEvent",
    ]
    assert events[3].part.type == "reasoning_text"
    assert [e.delta for e in events[4:6]] == ["The user ", "greets."] and events[4].content_index == 0
    assert events[6].text == "The user greets."
    item = events[8].item
    assert item.type == "reasoning" and item.content[0].text == "The user greets." and item.summary == []


async def test_refusal(server: FakeResponsesServer) -> None:
    server.add(RScript(refusal=["I can't ", "do that."]))
    events = await sdk_events(client(server))
    assert names(events)[2:9] == [
        "ResponseOutputItemAddedEvent",
        "ResponseContentPartAddedEvent",
        "ResponseRefusalDeltaEvent",
        "ResponseRefusalDeltaEvent",
        "ResponseRefusalDoneEvent",
        "ResponseContentPartDoneEvent",
        "ResponseOutputItemDoneEvent",
    ]
    assert events[3].part.type == "refusal" and events[6].refusal == "I can't do that."
    assert events[-1].response.output[0].content[0].refusal == "I can't do that."


async def test_function_calls(server: FakeResponsesServer) -> None:
    server.add(
        RScript(
            function_calls=[RFunctionCall("get_weather", ['{"city"', ':"Paris"}'], "call_1"), RFunctionCall("x", [])]
        )
    )
    events = await sdk_events(client(server))
    assert names(events)[2:7] == [
        "ResponseOutputItemAddedEvent",
        "ResponseFunctionCallArgumentsDeltaEvent",
        "ResponseFunctionCallArgumentsDeltaEvent",
        "ResponseFunctionCallArgumentsDoneEvent",
        "ResponseOutputItemDoneEvent",
    ]
    added, d1, d2, args_done, done = events[2:7]
    assert added.item.type == "function_call" and added.item.arguments == "" and added.item.name == "get_weather"
    assert added.item.call_id == "call_1" and added.item.id.startswith("fc_") and added.item.status == "in_progress"
    assert [d1.delta, d2.delta] == ['{"city"', ':"Paris"}'] and d1.item_id == added.item.id
    assert args_done.arguments == '{"city":"Paris"}'
    assert (
        done.item.arguments == '{"city":"Paris"}' and done.item.call_id == "call_1" and done.item.status == "completed"
    )
    second = [e for e in events if e.type == "response.output_item.done"][1].item
    assert second.arguments == "" and second.call_id == "call_1_abc" and second.name == "x"
    final = events[-1].response
    assert [o.type for o in final.output] == ["function_call", "function_call"] and final.output_text == ""


async def test_sdk_stream_helper_accumulates(server: FakeResponsesServer) -> None:
    """`client.responses.stream()` checks item identities across the stream and builds the final response."""
    server.add(SCRIPTS["everything"], RScript(text=["a", "b"], function_calls=[RFunctionCall("f", ['{"x":', "1}"])]))
    for _ in range(2):
        c = client(server)
        async with c.responses.stream(model=MODEL, input="hi", include=ENC, store=False) as stream:
            seen = [event async for event in stream]
            final = await stream.get_final_response()
        await c.close()
        assert seen[-1].type == "response.completed"
        snapshots = [
            e.snapshot
            for e in seen
            if e.type in ("response.output_text.delta", "response.function_call_arguments.delta")
        ]
        assert snapshots
    assert final.output_text == "ab"
    assert snapshots == ["a", "ab", '{"x":', '{"x":1}']
    assert final.output[1].type == "function_call" and final.output[1].arguments == '{"x":1}'


async def test_hosted_tools(server: FakeResponsesServer) -> None:
    server.add(SCRIPTS["hosted"])
    events = await sdk_events(client(server), tools=[{"type": "web_search"}])
    types = [e.type for e in events]
    assert types[2:16] == [
        "response.output_item.added",
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
        "response.output_item.done",
        "response.output_item.added",
        "response.file_search_call.in_progress",
        "response.file_search_call.searching",
        "response.file_search_call.completed",
        "response.output_item.done",
        "response.output_item.added",
        "response.code_interpreter_call.in_progress",
        "response.code_interpreter_call_code.delta",
        "response.code_interpreter_call_code.delta",
    ]
    assert types[16:22] == [
        "response.code_interpreter_call_code.done",
        "response.code_interpreter_call.interpreting",
        "response.code_interpreter_call.completed",
        "response.output_item.done",
        "response.output_item.added",
        "response.image_generation_call.in_progress",
    ]
    ws_added, ws_done = events[2].item, events[6].item
    assert ws_added.type == "web_search_call" and ws_added.status == "in_progress" and ws_added.id.startswith("ws_")
    assert ws_done.status == "completed" and ws_done.action.query == "weather paris"
    fs_done = events[11].item
    assert fs_done.queries == ["q"] and fs_done.results[0].file_id == "f1" and fs_done.status == "completed"
    assert [e.delta for e in events[14:16]] == ["print(", "1)"] and events[16].code == "print(1)"
    ci_done = events[19].item
    assert ci_done.code == "print(1)" and ci_done.container_id and ci_done.outputs[0].logs == "1"
    final = events[-1].response
    assert [o.type for o in final.output] == [
        "web_search_call",
        "file_search_call",
        "code_interpreter_call",
        "image_generation_call",
        "message",
    ]
    assert final.tools[0].type == "web_search"


async def test_explicit_order(server: FakeResponsesServer) -> None:
    server.add(SCRIPTS["everything"])
    events = await sdk_events(client(server))
    added = [e.item.type for e in events if e.type == "response.output_item.added"]
    assert added == ["function_call", "message", "web_search_call", "reasoning"]
    assert [o.type for o in events[-1].response.output] == added
    message = events[-1].response.output[1]
    assert [c.type for c in message.content] == ["output_text", "refusal"]


@pytest.mark.parametrize("reason", ["max_output_tokens", "content_filter"])
async def test_incomplete(server: FakeResponsesServer, reason: str) -> None:
    server.add(RScript(text=["trunc"], incomplete=reason))
    events = await sdk_events(client(server))
    assert names(events)[-1] == "ResponseIncompleteEvent"
    assert "response.completed" not in [e.type for e in events]
    final = events[-1].response
    assert final.status == "incomplete" and final.incomplete_details.reason == reason
    assert final.usage.output_tokens == 7 and final.output[0].status == "incomplete"


async def test_failed(server: FakeResponsesServer) -> None:
    server.add(RScript(text=["par"], failed={"code": "server_error", "message": "The model crashed."}))
    events = await sdk_events(client(server))
    assert names(events)[-1] == "ResponseFailedEvent"
    final = events[-1].response
    assert (
        final.status == "failed" and final.error.code == "server_error" and final.error.message == "The model crashed."
    )
    assert final.output[0].content[0].text == "par"


async def test_error_event_ends_the_stream(server: FakeResponsesServer) -> None:
    server.add(RScript(text=["x"], error_event={"code": "rate_limit_exceeded", "message": "Slow down."}))
    events = await sdk_events(client(server))
    assert names(events)[-2:] == ["ResponseOutputItemDoneEvent", "ResponseErrorEvent"]
    error = events[-1]
    assert error.type == "error" and error.code == "rate_limit_exceeded" and error.message == "Slow down."
    assert error.param is None and error.sequence_number == len(events) - 1


async def test_obfuscation_by_default_and_on_request_off(server: FakeResponsesServer) -> None:
    server.add(RScript(text=["a"], function_calls=[RFunctionCall("f", ["{}"])]), RScript(text=["a"]))
    deltas = [e for e in await raw_events(server) if e["type"].endswith(".delta")]
    assert deltas and all(isinstance(e["obfuscation"], str) for e in deltas)
    deltas = [
        e
        for e in await raw_events(server, {"stream_options": {"include_obfuscation": False}})
        if e["type"].endswith(".delta")
    ]
    assert deltas and all("obfuscation" not in e for e in deltas)


async def test_echo_when_queue_is_empty(server: FakeResponsesServer) -> None:
    events = await sdk_events(client(server), input="hello there")
    assert events[-1].response.output_text == "hello there "
    conversation = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "input_text", "text": "second"}, {"type": "input_text", "text": "part"}]},
    ]
    events = await sdk_events(client(server), input=conversation)
    assert events[-1].response.output_text == "second part "


async def test_requests_are_recorded(server: FakeResponsesServer) -> None:
    server.add(RScript(text=["a"]))
    await sdk_events(client(server), instructions="Be brief.")
    rec = server.requests[-1]
    assert rec.path == "/v1/responses" and rec.query == {}
    assert rec.headers["authorization"] == f"Bearer {SECRET}"
    assert rec.body["model"] == MODEL and rec.body["instructions"] == "Be brief." and rec.body["include"] == ENC
    assert rec.peer is not None


# -- Azure -----------------------------------------------------------------------


async def test_azure_dated_path(server: FakeResponsesServer) -> None:
    server.add(RScript(text=["az"]))
    c = openai.AsyncAzureOpenAI(
        azure_endpoint=server.url, api_key=SECRET, api_version="2025-04-01-preview", max_retries=0
    )
    events = await sdk_events(c, model="my-deployment")
    assert_typed(events)
    assert events[-1].response.output_text == "az" and events[-1].response.model == "my-deployment"
    rec = server.requests[-1]
    assert rec.path == "/openai/responses" and rec.query["api-version"] == "2025-04-01-preview"
    assert rec.headers["api-key"] == SECRET and rec.body["model"] == "my-deployment"


async def test_azure_v1_path(server: FakeResponsesServer) -> None:
    server.add(RScript(text=["v1"]))
    c = openai.AsyncOpenAI(
        base_url=f"{server.url}/openai/v1", api_key="unused", default_headers={"api-key": SECRET}, max_retries=0
    )
    events = await sdk_events(c, model="my-deployment")
    assert_typed(events)
    assert events[-1].response.output_text == "v1"
    assert server.requests[-1].path == "/openai/v1/responses"


async def test_azure_wrong_key_and_missing_api_version(server: FakeResponsesServer) -> None:
    c = openai.AsyncAzureOpenAI(
        azure_endpoint=server.url, api_key="wrong", api_version="2025-04-01-preview", max_retries=0
    )
    with pytest.raises(openai.AuthenticationError):
        await sdk_events(c)
    async with aiohttp.ClientSession() as session:
        body = {"model": "d", "input": "hi", "stream": True}
        async with session.post(f"{server.url}/openai/responses", json=body, headers={"api-key": SECRET}) as r:
            assert r.status == 404
            assert (await r.json())["error"]["code"] == "404"


# -- errors and faults -------------------------------------------------------------


async def test_wrong_key(server: FakeResponsesServer) -> None:
    c = openai.AsyncOpenAI(base_url=server.v1, api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        await sdk_events(c)
    assert info.value.status_code == 401 and info.value.code == "invalid_api_key"
    assert info.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    assert not server.requests


async def test_not_streaming_is_400(server: FakeResponsesServer) -> None:
    c = client(server)
    with pytest.raises(openai.BadRequestError) as info:
        await c.responses.create(model=MODEL, input="hi")
    await c.close()
    assert info.value.param == "stream" and info.value.type == "invalid_request_error"
    assert server.requests[-1].body.get("stream") is None


async def test_non_json_is_422(server: FakeResponsesServer) -> None:
    headers = {"Authorization": f"Bearer {SECRET}", "Content-Type": "text/plain"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{server.v1}/responses", data="hi", headers=headers) as r,
    ):
        assert r.status == 422
        assert (await r.json())["error"]["message"]


async def test_status_with_error_body(server: FakeResponsesServer) -> None:
    error = {"message": "Rate limit reached.", "type": "requests", "param": None, "code": "rate_limit_exceeded"}
    server.add(RScript(status=429, error=error, headers={"retry-after": "1"}))
    with pytest.raises(openai.RateLimitError) as info:
        await sdk_events(client(server))
    assert info.value.code == "rate_limit_exceeded" and info.value.response.headers["retry-after"] == "1"
    assert info.value.request_id == "req_fault"


async def test_raw_error_body(server: FakeResponsesServer) -> None:
    server.add(RScript(status=502, raw_error_body="<html>Bad Gateway</html>", raw_content_type="text/html"))
    with pytest.raises(openai.InternalServerError) as info:
        await sdk_events(client(server))
    assert info.value.status_code == 502 and "Bad Gateway" in info.value.response.text


async def test_headers_and_gzip(server: FakeResponsesServer) -> None:
    server.add(RScript(text=["zip"], gzip=True, headers={"x-ratelimit-remaining-requests": "9"}))
    c = client(server)
    raw = await c.responses.with_raw_response.create(model=MODEL, input="hi", stream=True)
    assert raw.headers["content-encoding"] == "gzip" and raw.headers["x-ratelimit-remaining-requests"] == "9"
    assert raw.headers["x-request-id"] and raw.headers["content-type"] == "text/event-stream"
    events = [e async for e in raw.parse()]
    await c.close()
    assert events[-1].response.output_text == "zip"


async def test_delays(server: FakeResponsesServer) -> None:
    server.add(RScript(text=["a", "b"], first_byte_delay=0.05, chunk_delay=0.01))
    events = await sdk_events(client(server))
    assert events[-1].response.output_text == "ab"


async def test_omit_completed(server: FakeResponsesServer) -> None:
    server.add(RScript(text=["a"], omit_completed=True), RScript(text=["a"], omit_completed=True))
    events = await sdk_events(client(server))
    assert events[-1].type == "response.output_item.done"
    c = client(server)
    with pytest.raises(RuntimeError, match=r"response\.completed"):
        async with c.responses.stream(model=MODEL, input="hi") as stream:
            await stream.get_final_response()
    await c.close()


@pytest.mark.parametrize("fault", ["disconnect_after", "reset_after"])
async def test_connection_dropped_mid_stream(server: FakeResponsesServer, fault: str) -> None:
    server.add(RScript(text=["a", "b", "c"], **{fault: 4}))
    c = client(server)
    stream = await c.responses.create(model=MODEL, input="hi", stream=True)
    got = []
    with pytest.raises(openai.APIConnectionError):
        async for event in stream:
            got.append(event.type)
    await c.close()
    assert got[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert "response.completed" not in got


async def test_malformed_event(server: FakeResponsesServer) -> None:
    server.add(RScript(text=["a"], malformed_after=3))
    c = client(server)
    stream = await c.responses.create(model=MODEL, input="hi", stream=True)
    got = []
    with pytest.raises(json.JSONDecodeError):
        async for event in stream:
            got.append(event.type)
    await c.close()
    assert len(got) == 3


async def test_stall_and_never_answer_time_out(server: FakeResponsesServer) -> None:
    server.add(RScript(text=["a"], stall_after=2), RScript(never_answer=True))
    c = client(server, timeout=0.3)
    stream = await c.responses.create(model=MODEL, input="hi", stream=True)
    with pytest.raises(openai.APITimeoutError):
        async for _ in stream:
            pass
    with pytest.raises(openai.APITimeoutError):
        await c.responses.create(model=MODEL, input="hi", stream=True)
    await c.close()
    assert await server.wait_no_connections() == 0

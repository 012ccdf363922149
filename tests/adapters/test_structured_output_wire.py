"""Structured output on the wire: each provider is asked in its native shape, over HTTP, through the fake servers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from createagents import CreateAgent, OutputValidationError
from tests.fakes.ollama_server import FakeOllamaServer, OllamaScript
from tests.fakes.openai_server import FakeOpenAIServer, FakeToolCall, Script
from tests.fakes.responses_server import FakeResponsesServer, RFunctionCall, RScript

from .conftest import SECRET

LISBON = {"name": "Lisbon", "country": "Portugal", "population": 545000}
TEXT = json.dumps(LISBON)
CHUNKS = [TEXT[i : i + 6] for i in range(0, len(TEXT), 6)]
GROWING = json.dumps({"population": 545000, "country": "Portugal", "name": "Lisbon"})  # the string last grows
GROWING_CHUNKS = [GROWING[i : i + 6] for i in range(0, len(GROWING), 6)]


class City(BaseModel):
    name: str
    country: str
    population: int


class Draft(BaseModel):
    title: str
    notes: str = ""  # a default: OpenAI's strict mode cannot take this schema


def openai_agent(server: FakeOpenAIServer, **kw: Any) -> CreateAgent[Any]:
    return CreateAgent(provider="openai", model="m", base_url=server.v1, api_key=SECRET, max_retries=0, **kw)


async def test_openai_native_sends_a_strict_json_schema_and_the_answer_is_typed(
    openai_server: FakeOpenAIServer,
) -> None:
    openai_server.add(Script(text=CHUNKS))
    async with openai_agent(openai_server, output_type=City, output_mode="native") as agent:
        assert await agent.chat("Largest city in Portugal?") == City(**LISBON)
    body = openai_server.requests[0].body
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "City"
    assert fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["required"] == ["name", "country", "population"] and schema["additionalProperties"] is False


async def test_a_schema_strict_mode_cannot_take_is_sent_without_strict(openai_server: FakeOpenAIServer) -> None:
    openai_server.add(Script(text=['{"title": "x"}']))
    async with openai_agent(openai_server, output_type=Draft, output_mode="native") as agent:
        assert await agent.chat("?") == Draft(title="x")
    assert openai_server.requests[0].body["response_format"]["json_schema"]["strict"] is False


async def test_openai_itself_is_asked_natively_by_default() -> None:
    from createagents.adapters._openai_wire import COMPATIBLE, OPENAI

    assert OPENAI.output_modes[0] == "native" and COMPATIBLE.output_modes[0] == "prompted"


async def test_a_compatible_server_gets_json_mode_and_the_schema_in_the_prompt(openai_server: FakeOpenAIServer) -> None:
    openai_server.add(Script(text=CHUNKS))
    async with openai_agent(openai_server, output_type=City) as agent:  # 127.0.0.1: a compatible server
        assert await agent.chat("?") == City(**LISBON)
    body = openai_server.requests[0].body
    assert body["response_format"] == {"type": "json_object"}
    system = body["messages"][0]
    assert system["role"] == "system" and '"population"' in system["content"]


async def test_tool_mode_on_openai_calls_the_answer_tool(openai_server: FakeOpenAIServer) -> None:
    openai_server.add(Script(tool_calls=[FakeToolCall("final_answer", CHUNKS, id="c1")]))
    async with openai_agent(openai_server, output_type=City, output_mode="tool") as agent:
        reply = agent.chat("?")
        partials = [p async for p in reply.partial()]
    assert partials[-1] == City(**LISBON)
    body = openai_server.requests[0].body
    assert body["tools"][0]["function"]["name"] == "final_answer" and "response_format" not in body


async def test_an_invalid_answer_is_retried_with_its_error_over_http(openai_server: FakeOpenAIServer) -> None:
    openai_server.add(Script(text=['{"name": "Lisbon"}']), Script(text=CHUNKS))
    async with openai_agent(openai_server, output_type=City, output_mode="native") as agent:
        assert await agent.chat("?") == City(**LISBON)
        assert len(await agent.history()) == 4  # the question, the bad answer, the correction, the answer
    retry = openai_server.requests[1].body["messages"]
    assert retry[-2] == {"role": "assistant", "content": '{"name": "Lisbon"}'}
    assert retry[-1]["role"] == "user" and "population: Field required" in retry[-1]["content"]


async def test_a_persistently_invalid_answer_raises_with_the_history_unchanged(openai_server: FakeOpenAIServer) -> None:
    openai_server.add(Script(text=["no"]), Script(text=['{"name": 5}']))
    async with openai_agent(openai_server, output_type=City, output_mode="native") as agent:
        with pytest.raises(OutputValidationError) as e:
            await agent.chat("?")
        assert await agent.history() == []
    assert e.value.raw == '{"name": 5}' and e.value.attempts == 2


async def test_partial_values_arrive_before_the_final_one_over_http(openai_server: FakeOpenAIServer) -> None:
    openai_server.add(Script(text=GROWING_CHUNKS))
    async with openai_agent(openai_server, output_type=City, output_mode="native") as agent:
        reply = agent.chat("?")
        partials = [p async for p in reply.partial()]
    assert partials[-1] == City(**LISBON) and len(partials) >= 2 and partials[0] != partials[-1]


async def test_the_responses_api_sends_text_format(responses_server: FakeResponsesServer) -> None:
    responses_server.add(RScript(text=CHUNKS))
    config = {"verbosity": "low"}
    async with CreateAgent(
        provider="openai",
        model="m",
        api="responses",
        base_url=responses_server.v1,
        api_key=SECRET,
        output_type=City,
        config=config,
    ) as agent:
        assert await agent.chat("?") == City(**LISBON)
    text = responses_server.requests[0].body["text"]
    assert text["verbosity"] == "low"
    assert text["format"]["type"] == "json_schema" and text["format"]["name"] == "City"
    assert text["format"]["strict"] is True and text["format"]["schema"]["additionalProperties"] is False


async def test_the_responses_api_in_tool_mode(responses_server: FakeResponsesServer) -> None:
    responses_server.add(RScript(function_calls=[RFunctionCall("final_answer", CHUNKS, call_id="c1")]))
    async with CreateAgent(
        provider="openai",
        model="m",
        api="responses",
        base_url=responses_server.v1,
        api_key=SECRET,
        output_mode="tool",
    ) as agent:
        assert await agent.chat("?", output_type=City) == City(**LISBON)
    body = responses_server.requests[0].body
    assert body["tool_choice"] == "required" and body["tools"][0]["name"] == "final_answer"
    assert "text" not in body


async def test_ollama_sends_the_schema_as_format(ollama_server: FakeOllamaServer) -> None:
    ollama_server.add(OllamaScript(text=GROWING_CHUNKS))
    async with CreateAgent(provider="ollama", model="llama3.2", base_url=ollama_server.url) as agent:
        reply = agent.chat("?", output_type=City)
        partials = [p async for p in reply.partial()]
    assert partials[-1] == City(**LISBON) and partials[0] != partials[-1]
    fmt = ollama_server.requests[0].body["format"]
    assert fmt["type"] == "object" and set(fmt["required"]) == {"name", "country", "population"}


async def test_ollama_prompted_mode_sends_json(ollama_server: FakeOllamaServer) -> None:
    ollama_server.add(OllamaScript(text=CHUNKS))
    async with CreateAgent(
        provider="ollama", model="llama3.2", base_url=ollama_server.url, output_type=City, output_mode="prompted"
    ) as agent:
        assert await agent.chat("?") == City(**LISBON)
    body = ollama_server.requests[0].body
    assert body["format"] == "json" and '"population"' in body["messages"][0]["content"]

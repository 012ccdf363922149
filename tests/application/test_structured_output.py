"""Structured output through the loop, on scripted models: validation, retries, modes, partial values, history."""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import AsyncIterator
from typing import (
    Any,
    Literal,
    NotRequired,  # pydantic needs it on Python < 3.12
)

import pytest
from pydantic import BaseModel
from typing_extensions import TypedDict

from createagents import (
    AssistantMessage,
    ChatModel,
    ChatRequest,
    ConfigurationError,
    CreateAgent,
    ModelEvent,
    OutputValidationError,
    OutputValidationFailed,
    ResponseDone,
    RunFailed,
    RunFinished,
    SystemMessage,
    TextDelta,
    ToolMessage,
    UserMessage,
)
from createagents.testing import FunctionModel, tool_call

LISBON = {"name": "Lisbon", "country": "Portugal", "population": 545000}


class City(BaseModel):
    """A city and where it is."""

    name: str
    country: str
    population: int


def scripted(*answers: str | list[Any]) -> FunctionModel:
    """A model answering each request with the next item: JSON text, or a list of tool calls."""
    queue = list(answers)

    def answer(messages: list[Any], tools: list[Any]) -> Any:
        return queue.pop(0)

    return FunctionModel(answer)


async def test_a_valid_answer_is_the_typed_value_and_the_history_keeps_its_json() -> None:
    agent = CreateAgent(provider=scripted(json.dumps(LISBON)), output_type=City)
    city = await agent.chat("The largest city in Portugal?")
    assert city == City(**LISBON)
    history = await agent.history()
    assert history == [
        UserMessage(content="The largest city in Portugal?"),
        AssistantMessage(content=json.dumps(LISBON)),
    ]
    request = agent._model.requests[0]  # type: ignore[attr-defined]
    assert request.output.mode == "native" and request.output.name == "City"
    assert request.output.strict and request.output.schema["additionalProperties"] is False


async def test_an_invalid_answer_is_sent_back_with_its_errors_and_the_retry_succeeds() -> None:
    model = scripted('{"name": "Lisbon"}', json.dumps(LISBON))
    agent = CreateAgent(provider=model, output_type=City)
    reply = agent.chat("?")
    events = [e async for e in reply.events()]
    assert reply.output == City(**LISBON) and reply.text == json.dumps(LISBON)
    failed = [e for e in events if isinstance(e, OutputValidationFailed)]
    assert [(f.raw, f.attempt, f.retrying) for f in failed] == [('{"name": "Lisbon"}', 1, True)]
    assert "country" in failed[0].error and "population" in failed[0].error
    retry = model.requests[1].messages
    assert retry[-2] == AssistantMessage(content='{"name": "Lisbon"}')
    assert isinstance(retry[-1], UserMessage) and "country: Field required" in retry[-1].content
    assert agent.metrics_summary()["output_validation"] == {"retried": 1, "failed": 0}
    assert [type(e) for e in events if isinstance(e, RunFinished)] == [RunFinished]
    assert events[-1].output == City(**LISBON)  # type: ignore[union-attr]


async def test_a_persistently_invalid_answer_raises_and_leaves_the_history_unchanged() -> None:
    agent = CreateAgent(provider=scripted("not json", "nope", '{"name": 1}'), output_type=City)
    await agent.conversation("c").chat("first", output_type=str)  # "not json" as text: fine
    reply = agent.conversation("c").chat("?")
    with pytest.raises(OutputValidationError) as e:
        await reply
    assert e.value.raw == '{"name": 1}' and e.value.attempts == 2
    assert {err["loc"][0] for err in e.value.errors} == {"name", "country", "population"}
    assert await agent.conversation("c").history() == [
        UserMessage(content="first"),
        AssistantMessage(content="not json"),
    ]
    assert agent.metrics_summary()["output_validation"] == {"retried": 1, "failed": 1}


async def test_no_retries_fails_on_the_first_invalid_answer() -> None:
    agent = CreateAgent(provider=scripted("[1, 2]"), output_type=City, output_retries=0)
    reply = agent.chat("?")
    events: list[Any] = []
    with pytest.raises(OutputValidationError, match="after 1 attempt"):
        async for event in reply.events():
            events.append(event)
    assert isinstance(events[-1], RunFailed) and isinstance(events[-1].error, OutputValidationError)
    assert [e.retrying for e in events if isinstance(e, OutputValidationFailed)] == [False]


async def test_tools_run_first_then_the_answer_tool_and_no_call_dangles_in_the_history() -> None:
    def population(city: str) -> int:
        """How many people live in a city."""
        return 545000

    model = scripted(
        [tool_call("population", city="Lisbon")],
        [tool_call("final_answer", **LISBON)],
    )
    agent = CreateAgent(provider=model, tools=[population], output_type=City, output_mode="tool")
    reply = agent.chat("?")
    assert await reply == City(**LISBON)
    first = model.requests[0]
    assert [t.name for t in first.tools] == ["population", "final_answer"]
    assert first.tools[1].parameters == first.output.schema  # type: ignore[union-attr]
    history = await agent.history()
    assert isinstance(history[2], ToolMessage) and history[2].content == "545000"
    assert history[-1] == AssistantMessage(content=json.dumps(LISBON, separators=(",", ":")))
    assert not any(getattr(m, "tool_calls", ()) and m.tool_calls[0].name == "final_answer" for m in history)


async def test_an_answer_tool_call_that_does_not_fit_gets_an_error_result_and_a_retry() -> None:
    model = scripted([tool_call("final_answer", name="Lisbon")], [tool_call("final_answer", **LISBON)])
    agent = CreateAgent(provider=model, output_type=City, output_mode="tool")
    assert await agent.chat("?") == City(**LISBON)
    retry = model.requests[1].messages
    assert isinstance(retry[-1], ToolMessage) and retry[-1].is_error and "final_answer" in retry[-1].content
    assert "population: Field required" in retry[-1].content


async def test_in_tool_mode_a_text_answer_that_fits_is_taken_and_one_that_does_not_asks_for_the_tool() -> None:
    model = scripted("Lisbon, I think.", json.dumps(LISBON))
    agent = CreateAgent(provider=model, output_type=City, output_mode="tool")
    assert await agent.chat("?") == City(**LISBON)
    nudge = model.requests[1].messages[-1]
    assert isinstance(nudge, UserMessage) and "call the final_answer tool" in nudge.content


async def test_prompted_mode_puts_the_schema_in_the_instructions() -> None:
    model = scripted("```json\n" + json.dumps(LISBON) + "\n```")  # a fenced answer is read too
    agent = CreateAgent(provider=model, instructions="Be exact.", output_type=City, output_mode="prompted")
    assert await agent.chat("?") == City(**LISBON)
    system = [m for m in model.requests[0].messages if isinstance(m, SystemMessage)]
    assert system[0].content == "Be exact." and '"population"' in system[1].content
    assert "JSON" in system[1].content


async def test_a_call_overrides_the_agents_output_type_either_way() -> None:
    model = scripted(json.dumps(LISBON), "just text", json.dumps({"response": [LISBON]}))
    plain = CreateAgent(provider=model)
    assert await plain.chat("?", output_type=City) == City(**LISBON)
    typed = CreateAgent(provider=model, output_type=City)
    assert await typed.chat("?", output_type=str) == "just text"
    assert await typed.ask("?", output_type=list[City]) == [City(**LISBON)]


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Movie(TypedDict):
    title: str
    year: int


@pytest.mark.parametrize(
    ("output_type", "answer", "value"),
    [
        (list[City], {"response": [LISBON, LISBON]}, [City(**LISBON)] * 2),
        (Literal["spam", "ham"], {"response": "ham"}, "ham"),
        (Mood, {"response": "sad"}, Mood.SAD),
        (Point, {"x": 1, "y": 2}, Point(1, 2)),
        (Movie, {"title": "Up", "year": 2009}, {"title": "Up", "year": 2009}),
        (int, {"response": 7}, 7),
        (list[City], [LISBON], [City(**LISBON)]),  # the bare value, not wrapped, is taken too
    ],
)
async def test_every_kind_of_output_type_validates(output_type: Any, answer: Any, value: Any) -> None:
    agent = CreateAgent(provider=scripted(json.dumps(answer)))
    assert await agent.chat("?", output_type=output_type) == value


async def test_the_test_model_answers_with_valid_data_in_every_mode() -> None:
    for mode in ("native", "tool", "prompted"):
        agent = CreateAgent(provider="test", output_type=City, output_mode=mode)  # type: ignore[arg-type]
        city = await agent.chat("?")
        assert isinstance(city, City), mode


async def test_partial_values_form_as_the_json_streams_in() -> None:
    text = json.dumps({"population": 545000, "country": "Portugal", "name": "Lisbon"})  # a string last: it grows

    async def stream(messages: list[Any], tools: list[Any]) -> AsyncIterator[str]:
        for i in range(0, len(text), 4):
            yield text[i : i + 4]

    agent = CreateAgent(provider=FunctionModel(stream), output_type=City)
    reply = agent.chat("?")
    partials = [p async for p in reply.partial()]
    assert partials[-1] == City(**LISBON) == reply.output
    assert len(partials) >= 2 and all(isinstance(p, City) for p in partials)
    assert partials[0] != partials[-1]  # at least one incomplete value came first
    assert all(p.population == 545000 for p in partials)  # a number shows only once it is whole
    assert [p.name for p in partials] == ["L", "Lisbo", "Lisbon"]


async def test_partial_values_of_a_list_grow_item_by_item_in_tool_mode() -> None:
    arguments = json.dumps({"response": [LISBON, {**LISBON, "name": "Porto"}]})

    async def stream(messages: list[Any], tools: list[Any]) -> AsyncIterator[Any]:
        from createagents import ToolCall, ToolCallDelta, ToolCallReady

        yield ToolCallDelta(index=0, id="c1", name="final_answer", arguments_delta="")
        for i in range(0, len(arguments), 7):
            yield ToolCallDelta(index=0, arguments_delta=arguments[i : i + 7])
        yield ToolCallReady(call=ToolCall(id="c1", name="final_answer", arguments=arguments))
        yield ResponseDone(finish_reason="tool_calls")

    agent = CreateAgent(provider=FunctionModel(stream), output_type=list[City], output_mode="tool")
    partials = [p async for p in agent.chat("?").partial()]
    assert len(partials[0]) < 2 and partials[-1][1].name == "Porto"


async def test_partial_needs_an_output_type() -> None:
    agent = CreateAgent(provider="test")
    reply = agent.chat("?")
    with pytest.raises(ConfigurationError, match="output type"):
        async for _ in reply.partial():
            pass
    reply.close()


def test_bad_output_settings_are_refused_when_the_agent_is_built() -> None:
    with pytest.raises(ConfigurationError, match="output_type"):
        CreateAgent(provider="test", output_type=5)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="output_mode"):
        CreateAgent(provider="test", output_mode="json")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="output_retries"):
        CreateAgent(provider="test", output_retries=-1)


class ToolsOnly(ChatModel):
    """A custom model that can only be asked for data through a tool (the port's default modes)."""

    async def stream(self, request: ChatRequest) -> AsyncIterator[ModelEvent]:
        yield TextDelta(json.dumps(LISBON))
        yield ResponseDone(finish_reason="stop")


async def test_a_model_gets_its_best_mode_and_a_mode_it_lacks_is_refused() -> None:
    agent = CreateAgent(provider=ToolsOnly(), output_type=City)
    assert await agent.chat("?") == City(**LISBON)  # "tool" mode, and a text answer that fits is taken
    with pytest.raises(ConfigurationError, match="'native' is not supported"):
        CreateAgent(provider=ToolsOnly(), output_type=City, output_mode="native")
    with pytest.raises(ConfigurationError, match="'native' is not supported"):
        CreateAgent(provider=ToolsOnly(), output_mode="native").chat("?", output_type=City)


class Optional_(TypedDict):
    title: str
    year: NotRequired[int]


class Tagged(BaseModel):
    tags: dict[str, int]


async def test_a_fenced_answer_still_shows_partial_values() -> None:
    text = "```json\n" + json.dumps({"population": 545000, "country": "Portugal", "name": "Lisbon"}) + "\n```"

    async def stream(messages: list[Any], tools: list[Any]) -> AsyncIterator[str]:
        for i in range(0, len(text), 5):
            yield text[i : i + 5]

    agent = CreateAgent(provider=FunctionModel(stream), output_type=City, output_mode="prompted")
    partials = [p async for p in agent.chat("?").partial()]
    assert len(partials) >= 2 and partials[0].name != "Lisbon" and partials[-1] == City(**LISBON)


async def test_a_number_at_the_end_is_never_shown_half_written() -> None:
    text = json.dumps(LISBON)  # population last: it arrives digit by digit

    async def stream(messages: list[Any], tools: list[Any]) -> AsyncIterator[str]:
        for i in range(0, len(text), 3):
            yield text[i : i + 3]

    agent = CreateAgent(provider=FunctionModel(stream), output_type=City)
    partials = [p async for p in agent.chat("?").partial()]
    assert partials and all(p.population == 545000 for p in partials)


def test_strict_only_when_openai_can_enforce_the_schema_exactly() -> None:

    from createagents.application.output import OutputSpec

    class Optional_(TypedDict):
        title: str
        year: NotRequired[int]

    class Tagged(BaseModel):
        tags: dict[str, int]

    assert OutputSpec(City).strict_schema is not None
    assert OutputSpec(Optional_).strict_schema is None  # a property that may be left out
    assert OutputSpec(Tagged).strict_schema is None  # an open dict: strict would force it empty
    wrapped = OutputSpec(list[City]).format("native").schema
    ref = wrapped["properties"]["response"]["items"]["$ref"]
    assert ref == "#/$defs/City" and "City" in wrapped["$defs"]  # every $ref resolves in what is sent


def test_tool_mode_requires_a_tool_call_on_openai_and_azure_but_not_elsewhere() -> None:
    from createagents.adapters._openai_wire import AZURE, COMPATIBLE, OPENAI
    from createagents.application.output import OutputSpec

    fmt = OutputSpec(City).format("tool")
    for profile, choice in ((OPENAI, "required"), (AZURE, "required"), (COMPATIBLE, "auto")):
        body = profile.params("m", [UserMessage(content="?")], [], __import__("createagents").ModelSettings(), fmt)
        assert body.get("tool_choice", "auto") == choice, profile

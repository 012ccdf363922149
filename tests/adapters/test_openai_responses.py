"""The Responses API adapter, driven over HTTP against the fake Responses server, on both transports."""

from __future__ import annotations

import json
from typing import Any

import pytest

from createagents import (
    AuthenticationError,
    ConfigurationError,
    ContentFilterError,
    ContextLengthError,
    CreateAgent,
    HostedToolCall,
    InMemoryConversationStore,
    ModelCallFinished,
    ProviderError,
    ProviderUnavailableError,
    RateLimitError,
    ResponseFormatError,
    ThinkingDelta,
    ToolCallDelta,
    openai_tools,
)
from tests.fakes.openai_server import FakeOpenAIServer, FakeToolCall, Script
from tests.fakes.responses_server import FakeResponsesServer, RFunctionCall, RScript

from .conftest import SECRET

WEB_SEARCH = {"type": "web_search_call", "action": {"type": "search", "query": "Lisbon weather"}}


async def get_weather(city: str) -> str:
    """Weather for a city."""
    return f"sunny in {city}"


@pytest.fixture(autouse=True)
def request_path(both_transports: str) -> str:
    return both_transports


def agent_for(server: FakeResponsesServer | FakeOpenAIServer, **kw: Any) -> CreateAgent:
    kw.setdefault("max_retries", 0)
    kw.setdefault("api", "responses")
    return CreateAgent(provider="openai", model="gpt-5-mini", base_url=server.v1, api_key=SECRET, **kw)


async def test_text_streams_token_for_token_and_the_request_keeps_history_here(
    responses_server: FakeResponsesServer,
) -> None:
    served = ["Hel", "lo", ", ", "wor", "ld", "ß∑😀"]
    responses_server.add(RScript(text=served))
    async with agent_for(responses_server, instructions="Be brief.") as agent:
        tokens = [t async for t in agent.chat("hi")]
    assert tokens == served
    r = responses_server.requests[0]
    assert r.path == "/v1/responses" and r.headers["Authorization"] == f"Bearer {SECRET}"
    assert r.body["stream"] is True and r.body["store"] is False
    assert r.body["include"] == ["reasoning.encrypted_content"]
    assert r.body["input"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert "messages" not in r.body and "tools" not in r.body


async def test_reasoning_summaries_are_thinking_and_usage_counts_every_kind(
    responses_server: FakeResponsesServer,
) -> None:
    usage = {
        "input_tokens": 120,
        "input_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 0},
        "output_tokens": 30,
        "output_tokens_details": {"reasoning_tokens": 12},
        "total_tokens": 150,
    }
    responses_server.add(RScript(reasoning_summary=["Plan ", "the trip."], text=["Go ", "by train."], usage=usage))
    config = {"reasoning_effort": "low", "reasoning_summary": "auto"}
    async with agent_for(responses_server, config=config) as agent:
        reply = agent.chat("Plan a trip")
        events = [e async for e in reply.events()]
    assert [e.text for e in events if isinstance(e, ThinkingDelta)] == ["Plan ", "the trip."]
    assert reply.text == "Go by train."
    assert reply.messages[-1].thinking == "Plan the trip."  # type: ignore[union-attr]
    u = reply.usage
    assert (u.prompt_tokens, u.completion_tokens, u.cached_tokens, u.reasoning_tokens) == (120, 30, 100, 12)
    assert [e.finish_reason for e in events if isinstance(e, ModelCallFinished)] == ["stop"]
    assert responses_server.requests[0].body["reasoning"] == {"effort": "low", "summary": "auto"}


async def test_the_second_turn_carries_the_first_turns_encrypted_reasoning(
    responses_server: FakeResponsesServer,
) -> None:
    responses_server.add(RScript(reasoning_summary=["Hmm."], text=["Lisbon."]), RScript(text=["Yes."]))
    async with agent_for(responses_server) as agent:
        await agent.chat("Capital of Portugal?")
        await agent.chat("Sure?")
    second = responses_server.requests[1].body["input"]
    assert [i.get("role") or i["type"] for i in second] == ["user", "reasoning", "assistant", "user"]
    reasoning = second[1]
    assert reasoning["encrypted_content"] == "enc_abc"
    assert reasoning["summary"] == [{"type": "summary_text", "text": "Hmm."}]
    assert second[2] == {"role": "assistant", "content": "Lisbon."}


async def test_a_tool_round_trip_keeps_reasoning_before_the_call(responses_server: FakeResponsesServer) -> None:
    call = RFunctionCall("get_weather", ['{"ci', 'ty": "Lis', 'bon"}'], call_id="call_w1")
    responses_server.add(RScript(reasoning=True, function_calls=[call]), RScript(text=["Sunny."]))
    async with agent_for(responses_server, tools=[get_weather]) as agent:
        reply = agent.chat("Weather in Lisbon?")
        deltas = [e async for e in reply.events() if isinstance(e, ToolCallDelta)]
    assert reply.text == "Sunny."
    assert [(c.id, c.name, json.loads(c.arguments)) for c in reply.tool_calls] == [
        ("call_w1", "get_weather", {"city": "Lisbon"})
    ]
    assert deltas[0].id == "call_w1" and deltas[0].name == "get_weather"
    assert "".join(d.arguments_delta for d in deltas) == '{"city": "Lisbon"}'
    first, second = (r.body for r in responses_server.requests)
    assert first["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city.",
            "parameters": first["tools"][0]["parameters"],
            "strict": False,
        }
    ]
    assert first["tools"][0]["parameters"]["properties"]["city"]["type"] == "string"
    kinds = [i.get("type") or i["role"] for i in second["input"]]
    assert kinds == ["user", "reasoning", "function_call", "function_call_output"]
    assert second["input"][2] == {
        "type": "function_call",
        "call_id": "call_w1",
        "name": "get_weather",
        "arguments": '{"city": "Lisbon"}',
    }
    assert second["input"][3] == {"type": "function_call_output", "call_id": "call_w1", "output": "sunny in Lisbon"}


async def test_a_hosted_tool_passes_through_and_its_progress_is_events(responses_server: FakeResponsesServer) -> None:
    responses_server.add(RScript(hosted=[WEB_SEARCH], text=["It is sunny."]), RScript(text=["ok"]))
    tools = [get_weather, openai_tools.web_search(search_context_size="low")]
    async with agent_for(responses_server, tools=tools) as agent:
        reply = agent.chat("Weather in Lisbon?")
        hosted = [e async for e in reply.events() if isinstance(e, HostedToolCall)]
        await agent.chat("Thanks")
    assert reply.text == "It is sunny." and reply.tool_calls == ()  # nothing ran here
    assert [e.status for e in hosted] == ["in_progress", "in_progress", "searching", "completed", "completed"]
    assert {e.type for e in hosted} == {"web_search_call"} and len({e.id for e in hosted}) == 1
    assert hosted[-1].item is not None and hosted[-1].item["action"]["query"] == "Lisbon weather"
    first = responses_server.requests[0].body
    assert [t["type"] for t in first["tools"]] == ["function", "web_search"]
    assert first["tools"][1] == {"type": "web_search", "search_context_size": "low"}
    second = responses_server.requests[1].body["input"]
    assert [i.get("type") or i["role"] for i in second] == ["user", "web_search_call", "assistant", "user"]


@pytest.mark.parametrize(
    "kw",
    [
        {"provider": "openai", "api": "chat", "base_url": "http://127.0.0.1:9/v1", "api_key": "k"},
        {"provider": "ollama"},
        {"provider": "test"},
    ],
)
def test_a_hosted_tool_on_a_provider_that_cannot_run_it_is_refused_at_construction(kw: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="web_search"):
        CreateAgent(model="m", tools=[openai_tools.web_search()], **kw)


def test_api_responses_is_only_for_openai_and_azure() -> None:
    with pytest.raises(ConfigurationError, match="api='chat'"):
        CreateAgent(provider="ollama", model="m", api="responses")
    with pytest.raises(ConfigurationError, match="'chat' or 'responses'"):
        CreateAgent(provider="openai", model="m", api="assistants", base_url="http://127.0.0.1:9/v1")


async def test_settings_only_the_responses_api_has_are_mapped(responses_server: FakeResponsesServer) -> None:
    config = {
        "temperature": 0.3,
        "top_p": 0.9,
        "max_output_tokens": 50,
        "think": "high",
        "verbosity": "low",
        "truncation": "auto",
        "service_tier": "flex",
    }
    async with agent_for(responses_server, config=config) as agent:
        await agent.chat("hi")
    body = responses_server.requests[0].body
    assert (body["temperature"], body["top_p"], body["max_output_tokens"]) == (0.3, 0.9, 50)
    assert body["reasoning"] == {"effort": "high"}  # think on OpenAI's scale
    assert (body["text"], body["truncation"], body["service_tier"]) == ({"verbosity": "low"}, "auto", "flex")


@pytest.mark.parametrize(("api", "setting"), [("responses", "stop"), ("responses", "seed"), ("responses", "top_k")])
def test_chat_only_settings_are_refused_with_api_responses(api: str, setting: str) -> None:
    value: Any = ["END"] if setting == "stop" else 3
    with pytest.raises(ConfigurationError, match=f"{setting}.*api='chat'"):
        CreateAgent(provider="openai", model="m", api=api, api_key="k", config={setting: value})


@pytest.mark.parametrize("setting", ["reasoning_summary", "truncation"])
def test_responses_only_settings_are_refused_with_api_chat(setting: str) -> None:
    value = "auto"
    with pytest.raises(ConfigurationError, match=f"{setting}.*api='responses'"):
        CreateAgent(provider="openai", model="m", api_key="k", config={setting: value})


# -- Azure ----------------------------------------------------------------------


async def test_azure_v1_responses_path(responses_server: FakeResponsesServer) -> None:
    responses_server.add(RScript(text=["hi"]))
    async with CreateAgent(
        provider="azure", model="my-deployment", api="responses", base_url=responses_server.url, api_key=SECRET
    ) as agent:
        assert await agent.chat("x") == "hi"
    r = responses_server.requests[0]
    assert r.path == "/openai/v1/responses" and "api-version" not in r.query
    assert r.headers["api-key"] == SECRET and r.body["model"] == "my-deployment"


async def test_azure_dated_responses_path_names_the_deployment_in_the_body(
    responses_server: FakeResponsesServer,
) -> None:
    responses_server.add(RScript(text=["hi"]))
    async with CreateAgent(
        provider="azure",
        model="my-deployment",
        api="responses",
        base_url=responses_server.url,
        api_key=SECRET,
        api_version="2025-04-01-preview",
    ) as agent:
        assert await agent.chat("x") == "hi"
    r = responses_server.requests[0]
    assert r.path == "/openai/responses" and r.query == {"api-version": "2025-04-01-preview"}
    assert r.body["model"] == "my-deployment"


# -- errors -----------------------------------------------------------------------


def _status(code: int, message: str, error_code: str | None = None) -> RScript:
    return RScript(status=code, error={"message": message, "type": "invalid_request_error", "code": error_code})


@pytest.mark.parametrize(
    ("script", "error"),
    [
        (_status(401, f"Incorrect API key provided: {SECRET}.", "invalid_api_key"), AuthenticationError),
        (_status(429, "Slow down"), RateLimitError),
        (_status(400, "Too long.", "context_length_exceeded"), ContextLengthError),
        (_status(500, "Oops"), ProviderUnavailableError),
        (
            RScript(text=["par"], failed={"code": "server_error", "message": "The model failed."}),
            ProviderUnavailableError,
        ),
        (RScript(failed={"code": "rate_limit_exceeded", "message": "Too many tokens."}), RateLimitError),
        (RScript(text=["a"], error_event={"code": "invalid_prompt", "message": "No."}), ProviderError),
        (RScript(text=["a"], incomplete="content_filter"), ContentFilterError),
        (RScript(text=["a", "b", "c"], malformed_after=4), ResponseFormatError),
        (RScript(text=["a", "b", "c"], disconnect_after=4), ProviderUnavailableError),
        (RScript(text=["a", "b"], omit_completed=True), ProviderUnavailableError),
    ],
)
async def test_errors_are_the_chat_adapters_typed_errors_and_history_is_untouched(
    responses_server: FakeResponsesServer, script: RScript, error: type[ProviderError]
) -> None:
    responses_server.add(script)
    async with agent_for(responses_server) as agent:
        with pytest.raises(error) as e:
            await agent.chat("hi")
        assert await agent.history() == []
    assert isinstance(e.value, error) and e.value.provider == "openai" and e.value.model == "gpt-5-mini"
    assert SECRET not in str(e.value)


async def test_an_in_stream_error_keeps_its_message(responses_server: FakeResponsesServer) -> None:
    responses_server.add(RScript(text=["a"], error_event={"code": "invalid_prompt", "message": "Prompt refused."}))
    async with agent_for(responses_server) as agent:
        with pytest.raises(ProviderError, match="Prompt refused"):
            await agent.chat("hi")


async def test_max_output_tokens_is_finish_reason_length_and_the_text_is_kept(
    responses_server: FakeResponsesServer,
) -> None:
    responses_server.add(RScript(text=["Once ", "upon"], incomplete="max_output_tokens"))
    async with agent_for(responses_server, config={"max_tokens": 2}) as agent:
        reply = agent.chat("Tell me a story")
        finished = [e async for e in reply.events() if isinstance(e, ModelCallFinished)]
    assert reply.text == "Once upon" and finished[0].finish_reason == "length"


async def test_a_refusal_is_the_answer(responses_server: FakeResponsesServer) -> None:
    responses_server.add(RScript(refusal=["I can't ", "help with that."]))
    async with agent_for(responses_server) as agent:
        assert await agent.chat("?") == "I can't help with that."


async def test_raw_reasoning_text_is_thinking(responses_server: FakeResponsesServer) -> None:
    responses_server.add(RScript(reasoning_text=["step 1, ", "step 2"], text=["done"]))
    async with agent_for(responses_server) as agent:
        reply = agent.chat("?")
        thinking = [e.text async for e in reply.events() if isinstance(e, ThinkingDelta)]
    assert "".join(thinking) == "step 1, step 2" and reply.text == "done"


# -- switching APIs -----------------------------------------------------------------


async def test_one_conversation_switches_between_the_chat_and_responses_apis(
    responses_server: FakeResponsesServer, openai_server: FakeOpenAIServer
) -> None:
    """The history is ours: a turn on either API is replayed on the other; Responses items never reach Chat."""
    store = InMemoryConversationStore()
    chat = CreateAgent(
        provider="openai",
        model="gpt-5-mini",
        base_url=openai_server.v1,
        api_key=SECRET,
        store=store,
        tools=[get_weather],
    )
    responses = agent_for(responses_server, store=store, tools=[get_weather])
    openai_server.add(Script(tool_calls=[FakeToolCall("get_weather", ['{"city": "Porto"}'], id="call_c1")]))
    openai_server.add(Script(text=["Sunny in Porto."]), Script(text=["Bye."]))
    responses_server.add(RScript(reasoning_summary=["Recall."], text=["Porto, sunny."]))
    async with chat, responses:
        await chat.conversation("u1").chat("Weather in Porto?")
        await responses.conversation("u1").chat("Where was that?")
        await chat.conversation("u1").chat("Thanks")
    replayed = responses_server.requests[0].body["input"]
    assert [i.get("role") or i["type"] for i in replayed] == [
        "user",
        "function_call",
        "function_call_output",
        "assistant",
        "user",
    ]
    assert replayed[1]["call_id"] == "call_c1" and replayed[2]["output"] == "sunny in Porto"
    back = openai_server.requests[2].body["messages"]
    assert [m["role"] for m in back] == ["user", "assistant", "tool", "assistant", "user", "assistant", "user"]
    assert back[5] == {"role": "assistant", "content": "Porto, sunny."}  # no reasoning item, no thinking
    assert "enc_abc" not in json.dumps(back)


async def test_a_users_own_sdk_client_speaks_the_responses_api(responses_server: FakeResponsesServer) -> None:
    from openai import AsyncOpenAI

    from createagents.adapters.openai_responses import OpenAIResponsesModel

    responses_server.add(RScript(text=["from ", "my client"]))
    client = AsyncOpenAI(base_url=responses_server.v1, api_key=SECRET, max_retries=0)
    async with CreateAgent(provider=OpenAIResponsesModel(client), model="gpt-5-mini") as agent:
        assert await agent.chat("hi") == "from my client"
    assert responses_server.requests[0].path == "/v1/responses"
    await client.close()


async def test_the_chat_api_takes_reasoning_effort_verbosity_and_service_tier(openai_server: FakeOpenAIServer) -> None:
    config = {"think": True, "reasoning_effort": "minimal", "verbosity": "high", "service_tier": "priority"}
    async with agent_for(openai_server, api="chat", config=config) as agent:
        await agent.chat("hi")
    body = openai_server.requests[0].body
    assert (body["reasoning_effort"], body["verbosity"], body["service_tier"]) == ("minimal", "high", "priority")


# -- what goes back, and what does not -------------------------------------------------


async def test_a_model_that_does_not_reason_is_not_asked_for_encrypted_reasoning(
    responses_server: FakeResponsesServer,
) -> None:
    """gpt-4o and its kind refuse `include: ["reasoning.encrypted_content"]` with a 400."""
    async with (
        agent_for(responses_server) as reasoning,
        CreateAgent(
            provider="openai", model="gpt-4o-mini", api="responses", base_url=responses_server.v1, api_key=SECRET
        ) as plain,
        CreateAgent(
            provider="openai",
            model="my-finetune",
            api="responses",
            base_url=responses_server.v1,
            api_key=SECRET,
            config={"reasoning_effort": "low"},
        ) as configured,
    ):
        for agent in (reasoning, plain, configured):
            await agent.chat("hi")
    includes = [r.body.get("include") for r in responses_server.requests]
    assert includes == [["reasoning.encrypted_content"], None, ["reasoning.encrypted_content"]]


async def test_reasoning_that_cannot_go_back_is_left_out(responses_server: FakeResponsesServer) -> None:
    """An incomplete reasoning item, one with nothing after it, or one not encrypted: the API refuses each."""
    from createagents import AssistantMessage, ProviderItem, UserMessage

    def reasoning(**extra: Any) -> ProviderItem:
        return ProviderItem(api="openai-responses", data={"type": "reasoning", "id": "rs_1", "summary": [], **extra})

    history = [
        UserMessage(content="a"),
        AssistantMessage(content="", provider_items=(reasoning(encrypted_content="e1"),)),  # nothing after it
        AssistantMessage(content="b", provider_items=(reasoning(encrypted_content="e2", status="incomplete"),)),
        AssistantMessage(content="c", provider_items=(reasoning(),)),  # not encrypted: store=false cannot find it
        AssistantMessage(content="d", provider_items=(reasoning(encrypted_content="e3"),)),  # fine
        AssistantMessage(content="e", provider_items=(ProviderItem(api="another-api", data={"type": "x"}),)),
    ]
    async with agent_for(responses_server) as agent:
        await agent.ask("f", history=history)
    sent = responses_server.requests[0].body["input"]
    assert [i.get("encrypted_content") for i in sent if i.get("type") == "reasoning"] == ["e3"]
    assert not any(i.get("type") == "x" for i in sent)  # another API's items never travel


async def test_two_calls_in_one_response_keep_their_order_and_indices(responses_server: FakeResponsesServer) -> None:
    calls = [
        RFunctionCall("get_weather", ['{"city": ', '"Lisbon"}'], call_id="c1"),
        RFunctionCall("get_weather", ['{"city": "Porto"}'], call_id="c2"),
    ]
    responses_server.add(RScript(function_calls=calls), RScript(text=["ok"]))
    async with agent_for(responses_server, tools=[get_weather]) as agent:
        reply = agent.chat("?")
        events = [e async for e in reply.events()]
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert [(d.index, d.id) for d in deltas if d.id] == [(0, "c1"), (1, "c2")]
    assert [c.id for c in reply.tool_calls] == ["c1", "c2"]
    finishes = [e.finish_reason for e in events if isinstance(e, ModelCallFinished)]
    assert finishes == ["tool_calls", "stop"]


async def test_in_stream_errors_are_the_exact_class_their_code_means(responses_server: FakeResponsesServer) -> None:
    from createagents import BadRequestError

    responses_server.add(
        RScript(text=["a"], error_event={"code": "invalid_prompt", "message": "No."}),
        RScript(failed={"code": "server_error", "message": "Oops."}),
    )
    async with agent_for(responses_server) as agent:
        with pytest.raises(BadRequestError) as bad:
            await agent.chat("x")
        with pytest.raises(ProviderUnavailableError) as down:
            await agent.chat("y")
    assert type(bad.value) is BadRequestError and bad.value.status_code == 400
    assert type(down.value) is ProviderUnavailableError and down.value.status_code == 500


async def test_prompted_structured_output_uses_json_mode(responses_server: FakeResponsesServer) -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        """The answer."""

        value: int

    responses_server.add(RScript(text=['{"value": 4}']), RScript(text=['{"value": 5}']))
    async with agent_for(responses_server, output_type=Answer, output_mode="prompted") as agent:
        assert await agent.chat("2+2?") == Answer(value=4)
    async with agent_for(responses_server, output_type=Answer) as agent:
        assert await agent.chat("2+3?") == Answer(value=5)
    prompted, native = (r.body["text"]["format"] for r in responses_server.requests)
    assert prompted == {"type": "json_object"}
    assert native["type"] == "json_schema" and native["description"] == "The answer."

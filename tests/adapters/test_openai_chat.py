"""The OpenAI adapter, driven through the real `openai` SDK over HTTP against the fake server."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest

from createagents import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ContentFilterError,
    ContextLengthError,
    CreateAgent,
    ModelNotFoundError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
    ResponseFormatError,
    ThinkingDelta,
    ToolCallDelta,
)
from tests.fakes.openai_server import FakeOpenAIServer, FakeToolCall, Script

from .conftest import SECRET

WEATHER_CALLS = [
    FakeToolCall("get_weather", ['{"ci', 'ty": "Lis', 'bon"}'], id="call_w1"),
    FakeToolCall("add", ['{"a": 2, ', '"b": 3}'], id="call/odd id 2"),
]


async def get_weather(city: str) -> str:
    """Weather for a city."""
    return f"sunny in {city}"


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@pytest.fixture(autouse=True)
def request_path(both_transports: str) -> str:
    return both_transports


def agent_for(server: FakeOpenAIServer, **kw: Any) -> CreateAgent:
    kw.setdefault("max_retries", 0)
    return CreateAgent(provider="openai", model="gpt-test", base_url=server.v1, api_key=SECRET, **kw)


async def test_streamed_text_equals_the_served_text_token_for_token(openai_server: FakeOpenAIServer) -> None:
    served = ["Hel", "lo", ", ", "wor", "ld", "! ", "ß∑😀"]
    openai_server.add(Script(text=served))
    async with agent_for(openai_server) as agent:
        tokens = [t async for t in agent.chat("hi")]
    assert tokens == served
    body = openai_server.requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert "tools" not in body and "tool_choice" not in body
    assert openai_server.requests[0].headers["Authorization"] == f"Bearer {SECRET}"


async def test_tool_run_with_two_parallel_calls_in_fragments(openai_server: FakeOpenAIServer) -> None:
    openai_server.add(Script(tool_calls=WEATHER_CALLS), Script(text=["Sunny, ", "and 5."]))
    async with agent_for(openai_server, tools=[get_weather, add], instructions="Be brief.") as agent:
        reply = agent.chat("Weather in Lisbon and 2+3?")
        deltas = [e async for e in reply.events() if isinstance(e, ToolCallDelta)]
    assert reply.text == "Sunny, and 5."
    assert [(c.id, c.name, json.loads(c.arguments)) for c in reply.tool_calls] == [
        ("call_w1", "get_weather", {"city": "Lisbon"}),
        ("call/odd id 2", "add", {"a": 2, "b": 3}),
    ]
    assert "".join(d.arguments_delta for d in deltas if d.index == 0) == '{"city": "Lisbon"}'
    first, second = (r.body for r in openai_server.requests)
    assert first["tool_choice"] == "auto"
    assert [t["function"]["name"] for t in first["tools"]] == ["get_weather", "add"]
    assert first["tools"][1]["function"]["parameters"]["properties"]["a"]["type"] == "integer"
    # the follow-up carries the assistant tool-call message, then each result, in the order the API requires
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool", "tool"]
    assistant = second["messages"][2]
    assert assistant["content"] == ""  # not null: some servers reject null
    assert [c["id"] for c in assistant["tool_calls"]] == ["call_w1", "call/odd id 2"]
    assert assistant["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Lisbon"}'}
    assert second["messages"][3] == {"role": "tool", "tool_call_id": "call_w1", "content": "sunny in Lisbon"}
    assert second["messages"][4] == {"role": "tool", "tool_call_id": "call/odd id 2", "content": "5"}


async def test_usage_with_cached_and_reasoning_tokens_reaches_the_reply(openai_server: FakeOpenAIServer) -> None:
    usage = {
        "prompt_tokens": 120,
        "completion_tokens": 30,
        "total_tokens": 150,
        "prompt_tokens_details": {"cached_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 12},
    }
    openai_server.add(Script(text=["ok"], usage=usage))
    async with agent_for(openai_server) as agent:
        text = await agent.chat("hi")
    assert (text.usage.prompt_tokens, text.usage.completion_tokens, text.usage.total_tokens) == (120, 30, 150)
    assert (text.usage.cached_tokens, text.usage.reasoning_tokens) == (100, 12)


async def test_settings_are_mapped_to_the_wire(openai_server: FakeOpenAIServer) -> None:
    config = {"temperature": 0.3, "top_p": 0.9, "max_tokens": 50, "stop": ["END"], "seed": 1, "top_k": 5}
    async with agent_for(openai_server, config={**config, "think": "high"}) as agent:
        await agent.chat("hi")
    body = openai_server.requests[0].body
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["stop"], body["seed"]) == (
        0.3,
        0.9,
        50,
        ["END"],
        1,
    )
    assert body["top_k"] == 5 and body["reasoning_effort"] == "high"


@pytest.mark.parametrize("provider", ["openai", "azure"])
def test_top_k_is_refused_when_the_agent_is_built(provider: str) -> None:
    # config is validated per provider at construction, not at the first chat
    with pytest.raises(ConfigurationError, match="top_k"):
        CreateAgent(
            provider=provider,
            model="gpt-4o-mini",
            api_key="sk-x",
            base_url="https://example.openai.azure.com" if provider == "azure" else None,
            config={"top_k": 3},
        )


async def test_thinking_is_kept_apart_from_the_text(openai_server: FakeOpenAIServer) -> None:
    openai_server.add(Script(reasoning=["Let me ", "think."], text=["42"]))
    async with agent_for(openai_server) as agent:
        reply = agent.chat("?")
        thinking = [e.text async for e in reply.events() if isinstance(e, ThinkingDelta)]
    assert thinking == ["Let me ", "think."] and reply.text == "42"
    assert reply.messages[-1].thinking == "Let me think."  # type: ignore[union-attr]


# -- Azure ----------------------------------------------------------------------


async def test_azure_v1_endpoint_path_and_api_key_header(openai_server: FakeOpenAIServer) -> None:
    openai_server.add(Script(text=["hi"]))
    async with CreateAgent(
        provider="azure", model="my-deployment", base_url=openai_server.url, api_key=SECRET, max_retries=0
    ) as agent:
        assert await agent.chat("x") == "hi"
    r = openai_server.requests[0]
    assert r.path == "/openai/v1/chat/completions" and "api-version" not in r.query
    assert r.headers["api-key"] == SECRET and r.body["model"] == "my-deployment"


async def test_azure_dated_api_version_uses_the_deployment_path(openai_server: FakeOpenAIServer) -> None:
    openai_server.add(Script(text=["hi"]))
    async with CreateAgent(
        provider="azure",
        model="my-deployment",
        base_url=openai_server.url,
        api_key=SECRET,
        api_version="2024-10-21",
        max_retries=0,
        config={"max_tokens": 9},
    ) as agent:
        assert await agent.chat("x") == "hi"
    r = openai_server.requests[0]
    assert r.path == "/openai/deployments/my-deployment/chat/completions"
    assert r.query == {"api-version": "2024-10-21"} and r.headers["api-key"] == SECRET
    assert r.body["max_completion_tokens"] == 9


async def test_azure_with_an_entra_id_token_provider() -> None:
    server = FakeOpenAIServer()
    await server.start()
    try:
        for api_version in (None, "2024-10-21"):
            async with CreateAgent(
                provider="azure",
                model="dep",
                base_url=server.url,
                api_key=lambda: "entra-token",
                api_version=api_version,
                max_retries=0,
            ) as agent:
                await agent.chat("x")
            assert server.requests[-1].headers["Authorization"] == "Bearer entra-token"
    finally:
        await server.stop()


def test_missing_configuration_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        CreateAgent(provider="openai", model="gpt-4o-mini")
    with pytest.raises(ConfigurationError, match="needs a model"):
        CreateAgent(provider="openai", api_key="k")
    with pytest.raises(ConfigurationError, match="AZURE_OPENAI_ENDPOINT"):
        CreateAgent(provider="azure", model="d", api_key="k")
    with pytest.raises(ConfigurationError, match="AZURE_OPENAI_API_KEY"):
        CreateAgent(provider="azure", model="d", base_url="https://r.openai.azure.com")


async def test_environment_variables_configure_the_providers(
    openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.v1)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", openai_server.url)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", SECRET)
    async with CreateAgent(provider="openai", model="m", max_retries=0) as agent:
        await agent.chat("a")
    async with CreateAgent(provider="azure", model="d", max_retries=0) as agent:
        await agent.chat("b")
    assert [r.path for r in openai_server.requests] == ["/v1/chat/completions", "/openai/v1/chat/completions"]


# -- errors -----------------------------------------------------------------------


def status(
    code: int, message: str, error_code: Any = None, headers: dict[str, str] | None = None, **err: Any
) -> Script:
    return Script(
        status=code,
        error={"message": message, "type": "invalid_request_error", "param": None, "code": error_code, **err},
        headers=headers or {},
    )


CONTENT_FILTER_400 = status(
    400,
    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
    "content_filter",
    innererror={
        "code": "ResponsibleAIPolicyViolation",
        "content_filter_result": {
            "hate": {"filtered": False, "severity": "safe"},
            "violence": {"filtered": True, "severity": "medium"},
            "self_harm": {"filtered": True, "severity": "high"},
        },
    },
)


@pytest.mark.parametrize(
    ("script", "error", "check"),
    [
        (status(401, f"Incorrect API key provided: {SECRET}.", "invalid_api_key"), AuthenticationError, None),
        (status(403, "Forbidden"), AuthenticationError, None),
        (status(429, "Slow down", headers={"retry-after-ms": "1500"}), RateLimitError, ("retry_after", 1.5)),
        (status(429, "Slow down", headers={"retry-after": "7"}), RateLimitError, ("retry_after", 7.0)),
        (status(429, "Slow down"), RateLimitError, ("retry_after", None)),
        (
            status(400, "This model's maximum context length is 8192 tokens.", "context_length_exceeded"),
            ContextLengthError,
            None,
        ),
        (CONTENT_FILTER_400, ContentFilterError, ("categories", ("violence", "self_harm"))),
        (status(400, "Invalid value for 'temperature'.", "invalid_value"), BadRequestError, None),
        (status(400, "bad thing", 400), BadRequestError, None),  # numeric code (vLLM)
        (status(404, "The model `nope` does not exist", "model_not_found"), ModelNotFoundError, None),
        (status(500, "The server had an error"), ProviderUnavailableError, None),
        (status(503, "Overloaded"), ProviderUnavailableError, None),
    ],
)
async def test_status_errors_are_typed(
    openai_server: FakeOpenAIServer, script: Script, error: type[ProviderError], check: tuple[str, Any] | None
) -> None:
    openai_server.add(script)
    async with agent_for(openai_server) as agent:
        with pytest.raises(error) as e:
            await agent.chat("hi")
        assert await agent.history() == []
    assert type(e.value) is error
    assert (e.value.provider, e.value.model, e.value.status_code) == ("openai", "gpt-test", script.status)
    assert e.value.request_id == "req_fault"
    assert SECRET not in str(e.value) and SECRET not in repr(e.value.args)
    if check:
        assert getattr(e.value, check[0]) == check[1]


async def test_content_filter_finish_reason_names_the_categories(openai_server: FakeOpenAIServer) -> None:
    results = {"hate": {"filtered": True, "severity": "high"}, "sexual": {"filtered": False, "severity": "safe"}}
    openai_server.add(Script(text=["I "], finish_reason="content_filter", content_filter_results=results))
    async with agent_for(openai_server) as agent:
        with pytest.raises(ContentFilterError, match=r"content filter \(hate\)") as e:
            await agent.chat("x")
    assert e.value.categories == ("hate",)


@pytest.mark.parametrize(
    ("script", "error"),
    [
        (Script(text=["a", "b", "c"], disconnect_after=2), ProviderUnavailableError),
        (Script(text=["a", "b"], omit_done=True), ProviderUnavailableError),
        (Script(text=["a", "b"], malformed_after=2), ResponseFormatError),
        (Script(text=["a"], in_stream_error={"message": "model crashed", "type": "server_error"}), ProviderError),
        (Script(text=["a"], in_stream_error={"object": "error", "message": "bad", "code": 400}), BadRequestError),
    ],
)
async def test_broken_streams_are_errors_never_lost_text(
    openai_server: FakeOpenAIServer, script: Script, error: type[ProviderError]
) -> None:
    openai_server.add(script)
    async with agent_for(openai_server) as agent:
        with pytest.raises(error):
            await agent.chat("hi")
        assert await agent.history() == []


async def test_connection_refused_is_provider_unavailable() -> None:
    server = FakeOpenAIServer()
    await server.start()
    url = server.v1
    await server.stop()
    async with CreateAgent(provider="openai", model="m", base_url=url, api_key="k", max_retries=0) as agent:
        with pytest.raises(ProviderUnavailableError, match="cannot reach"):
            await agent.chat("hi")


async def test_slow_first_byte_times_out(openai_server: FakeOpenAIServer) -> None:
    openai_server.add(Script(text=["late"], first_byte_delay=2))
    async with agent_for(openai_server, timeout=0.2) as agent:
        with pytest.raises(ProviderTimeoutError):
            await agent.chat("hi")


async def test_a_server_error_is_retried_then_succeeds(openai_server: FakeOpenAIServer) -> None:
    openai_server.add(status(500, "boom", headers={"retry-after-ms": "10"}), Script(text=["ok"]))
    async with agent_for(openai_server, max_retries=1) as agent:
        assert await agent.chat("hi") == "ok"
    assert len(openai_server.requests) == 2


@pytest.mark.parametrize(
    ("scripts", "error", "requests"),
    [
        ([status(503, "busy", headers={"retry-after-ms": "1"})] * 3, ProviderUnavailableError, 3),
        ([status(429, "slow", headers={"retry-after-ms": "1"})] * 3, RateLimitError, 3),
        ([status(500, "no", headers={"x-should-retry": "false"})], ProviderUnavailableError, 1),
        ([status(400, "bad request")], BadRequestError, 1),
        ([status(401, "who are you")], AuthenticationError, 1),
    ],
)
async def test_retries_follow_the_sdk_policy_and_stop_at_max_retries(
    openai_server: FakeOpenAIServer, scripts: list[Script], error: type[ProviderError], requests: int
) -> None:
    openai_server.add(*scripts)
    async with agent_for(openai_server, max_retries=2) as agent:
        with pytest.raises(error):
            await agent.chat("hi")
        assert await agent.history() == []
    assert len(openai_server.requests) == requests


async def test_an_error_page_that_is_not_json_keeps_its_status_and_text(openai_server: FakeOpenAIServer) -> None:
    openai_server.add(Script(status=502, raw_error_body="<html>502 Bad Gateway</html>"))
    async with agent_for(openai_server) as agent:
        with pytest.raises(ProviderUnavailableError, match="Bad Gateway") as e:
            await agent.chat("hi")
    assert e.value.status_code == 502


async def test_sequential_chats_reuse_one_connection(openai_server: FakeOpenAIServer) -> None:
    async with agent_for(openai_server) as agent:
        for n in range(3):
            await agent.chat(f"message {n}")
    assert len({r.peer for r in openai_server.requests}) == 1


async def test_custom_headers_organization_and_sdk_identity_reach_the_server(
    openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, request_path: str
) -> None:
    monkeypatch.setenv("OPENAI_ORG_ID", "org-42")
    async with agent_for(openai_server, provider_options={"headers": {"HTTP-Referer": "https://example.org"}}) as agent:
        await agent.chat("hi")
    headers = openai_server.requests[0].headers
    assert headers["HTTP-Referer"] == "https://example.org" and headers["OpenAI-Organization"] == "org-42"
    assert headers["Authorization"] == f"Bearer {SECRET}"
    if request_path == "lean":
        assert headers["User-Agent"].startswith("createagents/")  # who calls, for the provider's logs


async def test_a_token_provider_is_asked_on_every_request(openai_server: FakeOpenAIServer) -> None:
    tokens = iter([SECRET, SECRET, "sk-expired"])
    async with CreateAgent(
        provider="openai", model="m", base_url=openai_server.v1, api_key=lambda: next(tokens), max_retries=0
    ) as agent:
        await agent.chat("a")
        await agent.chat("b")
        with pytest.raises(AuthenticationError):
            await agent.chat("c")


def test_one_agent_across_event_loops(request_path: str) -> None:
    """A module-level agent used by `asyncio.run` twice (or a loop per test), then by the blocking API."""
    if request_path == "sdk":
        pytest.skip("an SDK client keeps the connections of the first loop it ran in")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = FakeOpenAIServer()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result()
    try:
        agent = CreateAgent(provider="openai", model="m", base_url=server.v1, api_key="k", max_retries=0)
        assert asyncio.run(agent.chat("one")).strip() == "one"
        assert asyncio.run(agent.chat("two")).strip() == "two"
        assert agent.chat_sync("three").strip() == "three"
        agent.close()
        assert agent.closed
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


async def test_a_key_quoted_back_is_masked_in_the_error_and_its_traceback(openai_server: FakeOpenAIServer) -> None:
    import traceback

    openai_server.add(status(401, f"Incorrect API key provided: {SECRET}"))
    async with agent_for(openai_server) as agent:
        with pytest.raises(AuthenticationError) as e:
            await agent.chat("hi")
    printed = "".join(traceback.format_exception(e.value))
    assert "Incorrect API key provided: ***" in printed and SECRET not in printed


async def test_a_refusal_is_the_answer(openai_server: FakeOpenAIServer) -> None:
    openai_server.add(Script(refusal=["I can't ", "help with that."]))
    async with agent_for(openai_server) as agent:
        assert await agent.chat("something bad") == "I can't help with that."


async def test_an_async_token_provider_is_awaited(openai_server: FakeOpenAIServer) -> None:
    async def token() -> str:
        await asyncio.sleep(0)
        return SECRET

    async with CreateAgent(
        provider="openai", model="m", base_url=openai_server.v1, api_key=token, max_retries=0
    ) as agent:
        assert (await agent.chat("one")).strip() == "one"
    assert openai_server.requests[0].headers["Authorization"] == f"Bearer {SECRET}"


async def test_a_404_that_is_not_about_the_model_hints_at_base_url(openai_server: FakeOpenAIServer) -> None:
    openai_server.add(status(404, "Not Found"))
    async with agent_for(openai_server) as agent:
        with pytest.raises(BadRequestError) as e:
            await agent.chat("hi")
    assert "is base_url right?" in str(e.value) and e.value.status_code == 404


# -- servers that differ from OpenAI -------------------------------------------------


async def test_id_and_name_repeated_in_every_fragment(openai_server: FakeOpenAIServer) -> None:
    openai_server.add(Script(tool_calls=WEATHER_CALLS, repeat_id_and_name=True), Script(text=["done"]))
    async with agent_for(openai_server, tools=[get_weather, add]) as agent:
        reply = agent.chat("x")
        await reply
    assert [json.loads(c.arguments) for c in reply.tool_calls] == [{"city": "Lisbon"}, {"a": 2, "b": 3}]
    assert [c.name for c in reply.tool_calls] == ["get_weather", "add"]


async def test_tool_calls_with_finish_reason_stop_still_run(openai_server: FakeOpenAIServer) -> None:
    openai_server.add(Script(tool_calls=WEATHER_CALLS[:1], finish_reason="stop"), Script(text=["done"]))
    async with agent_for(openai_server, tools=[get_weather]) as agent:
        assert await agent.chat("x") == "done"
    assert openai_server.requests[1].body["messages"][-1]["content"] == "sunny in Lisbon"


@pytest.mark.parametrize(
    "variant",
    [
        {"usage_in_last_choice_chunk": True},
        {"no_usage_chunk": True},
        {"role_on_every_chunk": True},
        {"headers": {"x-extra": "1"}},
    ],
)
async def test_lenient_parsing_of_compatible_servers(openai_server: FakeOpenAIServer, variant: dict[str, Any]) -> None:
    openai_server.add(Script(text=["a", "b"], **variant))
    async with agent_for(openai_server) as agent:
        reply = agent.chat("x")
        assert [t async for t in reply] == ["a", "b"]
    expected = 0 if variant.get("no_usage_chunk") else 18
    assert reply.usage.total_tokens == expected


async def test_closing_a_reply_mid_stream_closes_the_connection(openai_server: FakeOpenAIServer) -> None:
    openai_server.add(Script(text=[f"t{i} " for i in range(200)], chunk_delay=0.01))
    async with agent_for(openai_server) as agent:
        async with agent.chat("long") as reply:
            async for token in reply:
                if token == "t3 ":
                    break
        for _ in range(100):
            if openai_server.connections_closed:
                break
            await asyncio.sleep(0.01)
        assert openai_server.connections_closed == 1
        assert await agent.history() == []


async def test_the_environment_proxy_is_used_and_no_proxy_is_honoured(
    openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    unreachable = "http://127.0.0.2:9/v1"  # nothing listens there: only the proxy can answer
    monkeypatch.setenv("HTTP_PROXY", openai_server.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with CreateAgent(provider="openai", model="m", base_url=unreachable, api_key=SECRET, max_retries=0) as agent:
        assert (await agent.chat("via the proxy")).strip() == "via the proxy"
    assert openai_server.requests[0].path == "/v1/chat/completions"
    monkeypatch.setenv("NO_PROXY", "127.0.0.2")
    async with CreateAgent(provider="openai", model="m", base_url=unreachable, api_key=SECRET, max_retries=0) as agent:
        with pytest.raises(ProviderUnavailableError, match="cannot reach"):
            await agent.chat("direct")
    assert len(openai_server.requests) == 1


async def test_a_gzip_compressed_event_stream_is_read(openai_server: FakeOpenAIServer) -> None:
    served = ["com", "pressed ", "tokens"]
    openai_server.add(Script(text=served, gzip=True))
    async with agent_for(openai_server) as agent:
        assert await agent.chat("hi") == "compressed tokens"


async def test_an_error_status_whose_body_is_cut_off_is_still_typed() -> None:
    async def half_an_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b'HTTP/1.1 503 Service Unavailable\r\nContent-Length: 200\r\n\r\n{"error": {"mess')
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(half_an_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with CreateAgent(
            provider="openai", model="m", base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0
        ) as agent:
            with pytest.raises(ProviderUnavailableError):
                await agent.chat("hi")
            assert await agent.history() == []
    finally:
        server.close()
        await server.wait_closed()

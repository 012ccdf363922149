"""The Ollama adapter, driven through the real `ollama` client over HTTP against the fake server."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from createagents import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    CreateAgent,
    ModelCallFinished,
    ModelNotFoundError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
    ResponseFormatError,
    ThinkingDelta,
)
from createagents.adapters._retry import RetryPolicy
from tests.fakes.ollama_server import FakeOllamaServer, OllamaScript

from .test_retry import start_on

NO_RETRY = RetryPolicy(max_retries=0)
FAST = RetryPolicy(max_retries=2, initial_delay=0.01)


async def get_weather(city: str) -> str:
    """Weather for a city."""
    return f"sunny in {city}"


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@pytest.fixture(autouse=True, params=["lean", "public"])
def read_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs on both ways of reading the stream: the lean one and the client's public chat()."""
    if request.param == "public":
        from createagents.adapters.ollama_chat import OllamaChatModel

        monkeypatch.setattr(OllamaChatModel, "_parts", OllamaChatModel._public_parts)
    return str(request.param)


def agent_for(
    server: FakeOllamaServer, model: str = "llama3.2", retry: RetryPolicy | None = None, **kw: Any
) -> CreateAgent:
    agent = CreateAgent(provider="ollama", model=model, base_url=server.url, **kw)
    if retry is not None:  # the policy's delays, shorter than a test wants to wait
        agent._model.retry = retry  # type: ignore[attr-defined]
    return agent


async def test_streamed_text_equals_the_served_text(ollama_server: FakeOllamaServer) -> None:
    served = ["The", " sky", " is", " blue", ". ", "😀"]
    ollama_server.add(OllamaScript(text=served))
    async with agent_for(ollama_server, instructions="Be brief.") as agent:
        tokens = [t async for t in agent.chat("Why?")]
    assert tokens == served
    body = ollama_server.requests[0].body
    assert body["stream"] is True and body["model"] == "llama3.2"
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why?"}]


async def test_tool_run_with_two_calls_in_one_message_and_one_more_later(ollama_server: FakeOllamaServer) -> None:
    ollama_server.add(
        OllamaScript(
            tool_calls=[
                [
                    {"function": {"name": "get_weather", "arguments": {"city": "Lisbon"}}},
                    {"function": {"name": "add", "arguments": {"a": 2, "b": 3}}},
                ],
                [{"function": {"name": "add", "arguments": {"a": 1, "b": 1}}}],  # a later chunk: keep reading
            ],
            done_reason="stop",
        ),
        OllamaScript(text=["Sunny; 5 and 2."]),
    )
    async with agent_for(ollama_server, tools=[get_weather, add]) as agent:
        reply = agent.chat("go")
        assert await reply == "Sunny; 5 and 2."
    assert [(c.name, json.loads(c.arguments)) for c in reply.tool_calls] == [
        ("get_weather", {"city": "Lisbon"}),
        ("add", {"a": 2, "b": 3}),
        ("add", {"a": 1, "b": 1}),
    ]
    first, second = (r.body for r in ollama_server.requests)
    assert [t["function"]["name"] for t in first["tools"]] == ["get_weather", "add"]
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "tool", "tool", "tool"]
    assert second["messages"][1]["tool_calls"][0] == {
        "function": {"name": "get_weather", "arguments": {"city": "Lisbon"}}
    }
    assert second["messages"][2] == {"role": "tool", "content": "sunny in Lisbon", "tool_name": "get_weather"}
    assert [m["content"] for m in second["messages"][3:]] == ["5", "2"]


async def test_thinking_is_kept_apart(ollama_server: FakeOllamaServer) -> None:
    ollama_server.add(OllamaScript(thinking=["Hmm, ", "let me see."], text=["42"]))
    async with agent_for(ollama_server, model="qwen3", config={"think": True}) as agent:
        reply = agent.chat("?")
        thinking = [e.text async for e in reply.events() if isinstance(e, ThinkingDelta)]
    assert thinking == ["Hmm, ", "let me see."] and reply.text == "42"
    assert ollama_server.requests[0].body["think"] is True


@pytest.mark.parametrize(
    ("effort", "think"), [("none", False), ("minimal", "low"), ("medium", "medium"), ("xhigh", "high")]
)
async def test_reasoning_effort_is_translated_to_think(
    ollama_server: FakeOllamaServer, effort: str, think: object
) -> None:
    async with agent_for(ollama_server, model="qwen3", config={"reasoning_effort": effort}) as agent:
        await agent.chat("?")
    assert ollama_server.requests[0].body["think"] == think


@pytest.mark.parametrize("setting", ["reasoning_summary", "verbosity", "truncation", "service_tier"])
def test_openai_only_settings_are_refused_when_the_agent_is_built(setting: str) -> None:
    value = {"reasoning_summary": "auto", "verbosity": "low", "truncation": "auto", "service_tier": "flex"}[setting]
    with pytest.raises(ConfigurationError, match=setting):
        CreateAgent(provider="ollama", model="m", config={setting: value})


async def test_settings_map_to_ollama_options_and_keep_alive(ollama_server: FakeOllamaServer) -> None:
    config = {"temperature": 0.1, "top_p": 0.5, "top_k": 20, "max_tokens": 64, "stop": ["\n\n"], "seed": 3}
    async with agent_for(ollama_server, config=config, provider_options={"keep_alive": "10m"}) as agent:
        await agent.chat("x")
    body = ollama_server.requests[0].body
    assert body["options"] == {
        "temperature": 0.1,
        "top_p": 0.5,
        "top_k": 20,
        "num_predict": 64,
        "stop": ["\n\n"],
        "seed": 3,
    }
    assert body["keep_alive"] == "10m" and "think" not in body


async def test_usage_and_durations_reach_the_model_call_event(ollama_server: FakeOllamaServer) -> None:
    ollama_server.add(OllamaScript(text=["ok"]))
    async with agent_for(ollama_server) as agent:
        events = [e async for e in agent.chat("x").events()]
    call = next(e for e in events if isinstance(e, ModelCallFinished))
    u = call.usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (26, 12, 38)
    assert (u.load_duration, u.prompt_eval_duration, u.eval_duration) == pytest.approx((0.0015, 0.342, 0.453))
    assert call.provider == "ollama" and call.finish_reason == "stop"


async def test_model_not_found_says_to_pull_it(ollama_server: FakeOllamaServer) -> None:
    async with agent_for(ollama_server, model="mistral") as agent:
        with pytest.raises(ModelNotFoundError, match="ollama pull mistral") as e:
            await agent.chat("x")
    assert e.value.status_code == 404 and ollama_server.url in str(e.value)


async def test_server_down_names_the_host() -> None:
    server = FakeOllamaServer()
    await server.start()
    url = server.url
    await server.stop()
    async with agent_for(server, retry=FAST) as agent:
        with pytest.raises(ProviderUnavailableError, match=f"cannot reach Ollama at {url}"):
            await agent.chat("x")


@pytest.mark.parametrize(
    ("script", "error"),
    [
        (OllamaScript(status=401, error="unauthorized"), AuthenticationError),
        (OllamaScript(status=400, error="invalid options"), BadRequestError),
        (OllamaScript(status=500, error="llama runner process has terminated"), ProviderUnavailableError),
        (OllamaScript(text=["a", "b"], disconnect_after=1), ProviderUnavailableError),
        (OllamaScript(text=["a", "b"], malformed_after=1), ResponseFormatError),
        (OllamaScript(text=["a"], in_stream_error="model runner stopped"), ProviderUnavailableError),
    ],
)
async def test_faults_are_typed_errors(ollama_server: FakeOllamaServer, script: OllamaScript, error: type) -> None:
    ollama_server.add(script)
    async with agent_for(ollama_server, retry=NO_RETRY) as agent:
        with pytest.raises(error) as e:
            await agent.chat("x")
        assert await agent.history() == []
    assert type(e.value) is error and e.value.provider == "ollama"


async def test_slow_server_times_out(ollama_server: FakeOllamaServer) -> None:
    ollama_server.add(OllamaScript(text=["late"], first_byte_delay=2))
    async with agent_for(ollama_server, timeout=0.2, retry=NO_RETRY) as agent:
        with pytest.raises(ProviderTimeoutError):
            await agent.chat("x")


async def test_a_cancelled_stream_closes_the_connection(ollama_server: FakeOllamaServer) -> None:
    ollama_server.add(OllamaScript(text=[f"t{i} " for i in range(300)], chunk_delay=0.01))
    async with agent_for(ollama_server) as agent:
        task = asyncio.create_task(agent.chat("long"))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):
            if ollama_server.connections_closed:
                break
            await asyncio.sleep(0.01)
        assert ollama_server.connections_closed == 1
        assert await agent.history() == []


async def test_one_client_per_agent_reused_and_closed(ollama_server: FakeOllamaServer) -> None:
    agent = agent_for(ollama_server)
    client = agent._model.client  # type: ignore[attr-defined]
    await agent.chat("a")
    await agent.chat("b")
    assert agent._model.client is client  # type: ignore[attr-defined]
    await agent.aclose()
    assert client._client.is_closed


def test_ollama_host_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "gpu-box:11434")
    agent = CreateAgent(provider="ollama", model="llama3.2")
    assert agent._model.host == "http://gpu-box:11434"  # type: ignore[attr-defined]


# -- retries: the policy the OpenAI path uses (see test_retry.py), before anything of the answer was read -----


def test_the_retry_policy_is_the_shared_default() -> None:
    assert CreateAgent(provider="ollama", model="llama3.2")._model.retry == RetryPolicy()  # type: ignore[attr-defined]


def test_max_retries_reaches_the_adapter() -> None:
    agent = CreateAgent(provider="ollama", model="llama3.2", max_retries=5)
    assert agent._model.retry.max_retries == 5  # type: ignore[attr-defined]


async def test_a_503_is_retried_then_answers(ollama_server: FakeOllamaServer) -> None:
    ollama_server.add(OllamaScript(status=503, error="server busy"), OllamaScript(text=["ok"]))
    async with agent_for(ollama_server, retry=FAST) as agent:
        assert await agent.chat("x") == "ok"
    assert len(ollama_server.requests) == 2


async def test_429s_with_retry_after_0_are_retried_up_to_max_retries(ollama_server: FakeOllamaServer) -> None:
    slow_down = OllamaScript(status=429, error="too many requests", headers={"Retry-After": "0"})
    ollama_server.add(slow_down, slow_down, OllamaScript(text=["ok"]))
    async with agent_for(ollama_server) as agent:  # the default policy: 2 retries
        started = time.monotonic()
        assert await agent.chat("x") == "ok"
    assert time.monotonic() - started < 0.3  # waited as asked: not at all
    assert len(ollama_server.requests) == 3


async def test_retries_stop_at_max_retries(ollama_server: FakeOllamaServer) -> None:
    ollama_server.add(*[OllamaScript(status=503, error="busy")] * 3, OllamaScript(text=["never"]))
    async with agent_for(ollama_server, retry=FAST) as agent:
        with pytest.raises(ProviderUnavailableError) as e:
            await agent.chat("x")
        assert await agent.history() == []
    assert e.value.status_code == 503 and len(ollama_server.requests) == 3


async def test_a_429_without_retries_carries_retry_after(ollama_server: FakeOllamaServer) -> None:
    ollama_server.add(OllamaScript(status=429, error="too many requests", headers={"Retry-After": "7"}))
    async with agent_for(ollama_server, retry=NO_RETRY) as agent:
        with pytest.raises(RateLimitError) as e:
            await agent.chat("x")
    assert e.value.retry_after == 7.0 and e.value.status_code == 429 and len(ollama_server.requests) == 1


async def test_a_wait_beyond_max_wait_is_not_retried(ollama_server: FakeOllamaServer) -> None:
    ollama_server.add(
        OllamaScript(status=429, error="quota", headers={"Retry-After": "200"}), OllamaScript(text=["no"])
    )
    async with agent_for(ollama_server) as agent:
        with pytest.raises(RateLimitError) as e:
            await agent.chat("x")
    assert e.value.retry_after == 200.0 and len(ollama_server.requests) == 1


async def test_a_client_error_is_not_retried(ollama_server: FakeOllamaServer) -> None:
    ollama_server.add(OllamaScript(status=400, error="invalid options"), OllamaScript(text=["no"]))
    async with agent_for(ollama_server, retry=FAST) as agent:
        with pytest.raises(BadRequestError):
            await agent.chat("x")
    assert len(ollama_server.requests) == 1


async def test_a_stream_that_has_started_is_never_retried(ollama_server: FakeOllamaServer) -> None:
    ollama_server.add(OllamaScript(text=["a", "b"], disconnect_after=1), OllamaScript(text=["again"]))
    async with agent_for(ollama_server, retry=FAST) as agent:
        reply = agent.chat("x")
        tokens: list[str] = []
        with pytest.raises(ProviderUnavailableError):
            async for token in reply:
                tokens.append(token)
        assert await agent.history() == []
    assert tokens == ["a"] and len(ollama_server.requests) == 1


async def test_a_connection_dropped_before_the_first_line_is_retried(ollama_server: FakeOllamaServer) -> None:
    ollama_server.add(OllamaScript(text=["lost"], disconnect_after=0), OllamaScript(text=["ok"]))
    async with agent_for(ollama_server, retry=FAST) as agent:
        assert await agent.chat("x") == "ok"
    assert len(ollama_server.requests) == 2


async def test_a_timeout_before_the_first_line_is_retried(ollama_server: FakeOllamaServer) -> None:
    ollama_server.add(OllamaScript(text=["late"], first_byte_delay=0.5), OllamaScript(text=["ok"]))
    async with agent_for(ollama_server, timeout=0.2, retry=FAST) as agent:
        assert await agent.chat("x") == "ok"
    assert len(ollama_server.requests) == 2


async def test_a_refused_connection_is_retried_until_the_server_answers() -> None:
    server = FakeOllamaServer()
    await server.start()
    port = server.port
    await server.stop()
    server.add(OllamaScript(text=["up"]))

    async def later() -> Any:
        await asyncio.sleep(0.05)  # the first attempt is refused, the second finds the server
        return await start_on(server, port)

    starting = asyncio.create_task(later())
    try:
        async with agent_for(server, retry=RetryPolicy(max_retries=2, initial_delay=0.3)) as agent:
            assert await agent.chat("x") == "up"
    finally:
        await (await starting).cleanup()
    assert len(server.requests) == 1

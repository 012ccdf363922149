"""Faults on the wire and in tools, through the public API, against the fake OpenAI and Ollama servers.

For each fault: the outcome (the recovered answer, or exactly which typed
error), the history unchanged on failure (a turn is committed first, so it is
not empty), a metrics record of the failed model call, and how many requests
the server saw. Retry waits are kept short with `retry-after-ms: 1`; the
back-off without a header is 0.5 s * 2^attempt, so those cases use one retry.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from createagents import (
    CreateAgent,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
    ResponseFormatError,
)
from createagents.domain.messages import Message
from tests.fakes.ollama_server import FakeOllamaServer, OllamaScript
from tests.fakes.openai_server import FakeOpenAIServer, FakeToolCall, Script

from .conftest import SECRET

FAST = {"retry-after-ms": "1"}
BAD_GATEWAY = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>nginx</body></html>"
LOGIN_PAGE = "<!DOCTYPE html><html><body><form>Sign in to continue</form></body></html>"


class Backend:
    """One fake server and how to script it, so that each fault is written once for both providers."""

    def __init__(self, name: str, server: FakeOpenAIServer | FakeOllamaServer) -> None:
        self.name = name
        self.server = server
        self.first_text = 1 if name == "openai" else 0  # OpenAI's stream opens with a role-only chunk

    def agent(self, **kw: Any) -> CreateAgent:
        kw.setdefault("max_retries", 0)
        if isinstance(self.server, FakeOpenAIServer):
            return CreateAgent(provider="openai", model="m", base_url=self.server.v1, api_key=SECRET, **kw)
        return CreateAgent(provider="ollama", model="llama3.2", base_url=self.server.url, **kw)

    def script(self, **kw: Any) -> Any:
        return Script(**kw) if self.name == "openai" else OllamaScript(**kw)

    def add(self, *scripts: Any) -> None:
        self.server.add(*scripts)

    def ok(self, *text: str) -> Any:
        return self.script(text=list(text))

    def status(self, code: int, headers: dict[str, str] | None = None) -> Any:
        return self.script(status=code, headers=dict(headers or {}))

    def tool_call(self, name: str, arguments: dict[str, Any]) -> Any:
        if self.name == "openai":
            return Script(tool_calls=[FakeToolCall(name, [json.dumps(arguments)], id="call_1")])
        return OllamaScript(tool_calls=[[{"function": {"name": name, "arguments": arguments}}]])

    @property
    def requests(self) -> list[Any]:
        return self.server.requests

    def tool_results(self, request: int) -> list[str]:
        """The contents of the tool messages the model was sent in request number `request`."""
        return [m["content"] for m in self.requests[request].body["messages"] if m["role"] == "tool"]


@pytest.fixture(params=["openai", "ollama"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    server: FakeOpenAIServer | FakeOllamaServer = (
        FakeOpenAIServer(api_key=SECRET) if request.param == "openai" else FakeOllamaServer()
    )
    await server.start()
    try:
        yield Backend(str(request.param), server)
        # every test closes its agent: no connection may be left behind, whatever the fault did
        assert await server.wait_no_connections() == 0, "a connection was left open"
    finally:
        await server.stop()


openai_only = pytest.mark.parametrize("backend", ["openai"], indirect=True)


async def warm_up(agent: CreateAgent, backend: Backend, *faults: Any) -> list[Message]:
    """Commit one good turn (so the history is not empty), with `faults` queued for the next requests."""
    backend.add(backend.ok("first ", "answer"), *faults)
    assert await agent.chat("hello") == "first answer"
    history = await agent.history()
    assert len(history) == 2
    return history


async def fails(
    agent: CreateAgent,
    backend: Backend,
    error: type[ProviderError],
    *,
    requests: int,
    exact: bool = True,
    stream: bool = False,
) -> tuple[ProviderError, list[str]]:
    """The next turn fails with `error` after `requests` requests, leaving the history as it was.

    Returns the error and the tokens that reached the caller (when streamed).
    """
    before = await agent.history()
    assert before, "commit a turn first"
    seen, kept = len(backend.requests), len(agent.metrics())
    tokens: list[str] = []
    with pytest.raises(ProviderError) as e:
        if stream:
            async for token in agent.chat("question"):
                tokens.append(token)
        else:
            await agent.chat("question")
    if exact:
        assert type(e.value) is error, f"{type(e.value).__name__}: {e.value}"
    else:
        assert isinstance(e.value, error), f"{type(e.value).__name__}: {e.value}"
    assert await agent.history() == before
    calls = [r for r in agent.metrics()[kept:] if r.kind == "model_call"]
    assert calls, "no metrics record of the failed model call"
    assert calls[-1].success is False and calls[-1].error_type == type(e.value).__name__
    assert len(backend.requests) - seen == requests
    return e.value, tokens


async def recovers(agent: CreateAgent, backend: Backend, *, requests: int) -> None:
    """The next turn answers after `requests` requests and is committed."""
    before = await agent.history()
    seen, kept = len(backend.requests), len(agent.metrics())
    assert await agent.chat("question") == "recovered answer"
    assert len(backend.requests) - seen == requests
    assert len(await agent.history()) == len(before) + 2
    calls = [r for r in agent.metrics()[kept:] if r.kind == "model_call"]
    assert [c.success for c in calls] == [True]


def gap(backend: Backend) -> float:
    """Seconds between the last two requests: how long the client waited before retrying."""
    return backend.requests[-1].at - backend.requests[-2].at


RECOVERED = ("recovered ", "answer")


# -- rate limits --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "headers", "low", "high"),
    [
        ("openai", {"retry-after": "1"}, 0.9, 3.0),  # longer than any back-off: the header was obeyed
        ("openai", {"retry-after-ms": "50"}, 0.03, 0.3),  # shorter than any back-off
        ("openai", {}, 0.3, 0.9),  # the back-off: 0.5 s less up to 25 % jitter
        ("ollama", {"retry-after": "1"}, 0.9, 3.0),
    ],
    indirect=["backend"],
    ids=["openai-retry-after", "openai-retry-after-ms", "openai-no-header", "ollama-retry-after"],
)
async def test_429_waits_as_told_then_recovers(
    backend: Backend, headers: dict[str, str], low: float, high: float
) -> None:
    async with backend.agent(max_retries=1) as agent:
        await warm_up(agent, backend, backend.status(429, headers), backend.ok(*RECOVERED))
        await recovers(agent, backend, requests=2)
    assert low <= gap(backend) <= high, gap(backend)


async def test_429_on_every_attempt_is_a_rate_limit_error_after_max_retries(backend: Backend) -> None:
    async with backend.agent(max_retries=2) as agent:
        await warm_up(agent, backend, *[backend.status(429, FAST)] * 3)
        error, _ = await fails(agent, backend, RateLimitError, requests=3)
    assert error.status_code == 429


@pytest.mark.parametrize(("headers", "seconds"), [({"retry-after": "2"}, 2.0), ({"retry-after-ms": "1500"}, 1.5)])
async def test_rate_limit_error_says_how_long_to_wait(
    backend: Backend, headers: dict[str, str], seconds: float
) -> None:
    async with backend.agent(max_retries=0) as agent:
        await warm_up(agent, backend, backend.status(429, headers))
        error, _ = await fails(agent, backend, RateLimitError, requests=1)
    assert isinstance(error, RateLimitError) and error.retry_after == seconds


@pytest.mark.parametrize(("code", "error"), [(429, RateLimitError), (503, ProviderUnavailableError)])
async def test_a_requested_wait_over_120_s_is_not_retried(
    backend: Backend, code: int, error: type[ProviderError]
) -> None:
    async with backend.agent(max_retries=2) as agent:
        await warm_up(agent, backend, *[backend.status(code, {"retry-after": "600"})] * 3)
        started = time.monotonic()
        raised, _ = await fails(agent, backend, error, requests=1)
    assert time.monotonic() - started < 2
    if isinstance(raised, RateLimitError):
        assert raised.retry_after == 600.0


# -- server errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [500, 502, 503, 504])
async def test_a_server_error_is_retried_and_the_next_attempt_answers(backend: Backend, code: int) -> None:
    async with backend.agent(max_retries=2) as agent:
        await warm_up(agent, backend, backend.status(code, FAST), backend.ok(*RECOVERED))
        await recovers(agent, backend, requests=2)


@pytest.mark.parametrize("code", [500, 502, 503, 504])
async def test_a_server_error_on_every_attempt_is_typed_after_max_retries(backend: Backend, code: int) -> None:
    async with backend.agent(max_retries=2) as agent:
        await warm_up(agent, backend, *[backend.status(code, FAST)] * 3)
        error, _ = await fails(agent, backend, ProviderUnavailableError, requests=3)
    assert error.status_code == code


async def test_an_html_error_page_from_a_gateway(backend: Backend) -> None:
    page = backend.script(status=502, raw_error_body=BAD_GATEWAY, raw_content_type="text/html", headers=FAST)
    async with backend.agent(max_retries=1) as agent:
        await warm_up(agent, backend, page, page)
        error, _ = await fails(agent, backend, ProviderUnavailableError, requests=2)
    assert error.status_code == 502 and "Bad Gateway" in str(error)


async def test_an_html_page_with_status_200_is_a_typed_error(backend: Backend) -> None:
    page = backend.script(status=200, raw_error_body=LOGIN_PAGE, raw_content_type="text/html")
    async with backend.agent(max_retries=2) as agent:
        await warm_up(agent, backend, page)
        await fails(agent, backend, ProviderError, requests=1, exact=False)


# -- connections --------------------------------------------------------------------------------


async def test_connection_refused(backend: Backend) -> None:
    async with backend.agent(max_retries=0) as agent:
        await warm_up(agent, backend)
        await backend.server.stop()  # nobody listens on the port any more
        await fails(agent, backend, ProviderUnavailableError, requests=0)


async def test_a_reset_before_the_first_byte_is_retried(backend: Backend) -> None:
    async with backend.agent(max_retries=1) as agent:
        await warm_up(agent, backend, backend.script(reset_before_first_byte=True), backend.ok(*RECOVERED))
        await recovers(agent, backend, requests=2)


async def test_a_reset_before_the_first_byte_on_every_attempt(backend: Backend) -> None:
    async with backend.agent(max_retries=0) as agent:
        await warm_up(agent, backend, backend.script(reset_before_first_byte=True))
        await fails(agent, backend, ProviderUnavailableError, requests=1)


async def test_a_reset_after_tokens_reached_the_caller_is_not_retried(backend: Backend) -> None:
    cut = backend.script(text=["a ", "b ", "c "], reset_after=backend.first_text + 2)
    async with backend.agent(max_retries=2) as agent:
        await warm_up(agent, backend, cut, backend.ok("never ", "sent"))
        _, tokens = await fails(agent, backend, ProviderUnavailableError, requests=1, stream=True)
    assert tokens == ["a ", "b "]  # what came, once


async def test_a_truncated_stream(backend: Backend) -> None:
    async with backend.agent(max_retries=2) as agent:
        await warm_up(agent, backend, backend.script(text=["a ", "b "], omit_done=True))
        await fails(agent, backend, ProviderUnavailableError, requests=1)


async def test_a_malformed_chunk(backend: Backend) -> None:
    async with backend.agent(max_retries=2) as agent:
        await warm_up(agent, backend, backend.script(text=["a ", "b "], malformed_after=backend.first_text + 1))
        await fails(agent, backend, ResponseFormatError, requests=1)


async def test_a_stream_that_stalls_midway_times_out(backend: Backend) -> None:
    stall = backend.script(text=["a ", "b ", "c "], stall_after=backend.first_text + 1)
    async with backend.agent(max_retries=2, timeout=0.5) as agent:
        await warm_up(agent, backend, stall)
        started = time.monotonic()
        await fails(agent, backend, ProviderTimeoutError, requests=1)
        assert time.monotonic() - started < 3


async def test_a_server_that_never_answers_times_out(backend: Backend) -> None:
    async with backend.agent(max_retries=1, timeout=0.5) as agent:
        await warm_up(agent, backend, *[backend.script(never_answer=True)] * 2)
        started = time.monotonic()
        await fails(agent, backend, ProviderTimeoutError, requests=2)  # a timeout before any byte is retried
        assert time.monotonic() - started < 4


# -- tools ---------------------------------------------------------------------------------------


def explode(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"tool blew up: {reason}")


async def wait_forever() -> str:
    """Never returns."""
    await asyncio.sleep(3600)
    return "never"


def nap() -> str:
    """Returns a little after its timeout."""
    time.sleep(0.3)
    return "late"


def opaque() -> object:
    """Returns something JSON cannot encode."""
    return object()


HUGE = "x" * 1_000_000


def huge() -> str:
    """Returns a megabyte."""
    return HUGE


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


async def tool_turn(backend: Backend, call: Any, **kw: Any) -> tuple[str, Any]:
    """A turn in which the model makes `call` and then answers: the tool's result and its metrics record."""
    backend.add(call, backend.ok(*RECOVERED))
    async with backend.agent(**kw) as agent:
        started = time.monotonic()
        assert await agent.chat("use the tool") == "recovered answer"
        elapsed = time.monotonic() - started
        history = await agent.history()
        records = [r for r in agent.metrics() if r.kind == "tool_call"]
    assert elapsed < 5
    assert [m.role for m in history] == ["user", "assistant", "tool", "assistant"]
    assert len(backend.requests) == 2
    (result,) = backend.tool_results(1)
    assert history[2].content == result  # type: ignore[union-attr]
    (record,) = records
    return result, record


async def test_a_tool_that_raises(backend: Backend) -> None:
    result, record = await tool_turn(backend, backend.tool_call("explode", {"reason": "disk"}), tools=[explode])
    assert result.startswith("Error:") and "RuntimeError" in result and "tool blew up: disk" in result
    assert (record.success, record.error_type) == (False, "RuntimeError")


async def test_an_async_tool_that_hangs_past_tool_timeout(backend: Backend) -> None:
    result, record = await tool_turn(
        backend, backend.tool_call("wait_forever", {}), tools=[wait_forever], tool_timeout=0.2
    )
    assert result.startswith("Error:") and "timed out" in result
    assert (record.success, record.error_type) == (False, "ToolTimeoutError")


async def test_a_sync_tool_that_runs_past_tool_timeout(backend: Backend) -> None:
    result, record = await tool_turn(backend, backend.tool_call("nap", {}), tools=[nap], tool_timeout=0.15)
    assert result.startswith("Error:") and "timed out" in result
    assert (record.success, record.error_type) == (False, "ToolTimeoutError")
    await asyncio.sleep(0.2)  # let the worker thread finish its nap


async def test_a_tool_that_returns_something_not_json_serializable(backend: Backend) -> None:
    result, record = await tool_turn(backend, backend.tool_call("opaque", {}), tools=[opaque])
    if result.startswith("Error:"):
        assert record.success is False
    else:
        assert "object" in result and record.success is True


async def test_a_tool_that_returns_a_megabyte(backend: Backend) -> None:
    result, record = await tool_turn(backend, backend.tool_call("huge", {}), tools=[huge])
    assert result == HUGE or result.startswith("Error:")
    assert record.success is (result == HUGE)


async def test_the_model_calls_an_unknown_tool(backend: Backend) -> None:
    result, record = await tool_turn(backend, backend.tool_call("teleport", {"to": "Mars"}), tools=[add])
    assert result.startswith("Error:") and "teleport" in result and "add" in result
    assert (record.success, record.error_type) == (False, "UnknownToolError")


@openai_only
async def test_the_model_sends_arguments_that_are_not_json(backend: Backend) -> None:
    call = Script(tool_calls=[FakeToolCall("add", ["{bad"], id="call_1")])
    result, record = await tool_turn(backend, call, tools=[add])
    assert result.startswith("Error:") and "not valid JSON" in result
    assert (record.success, record.error_type) == (False, "InvalidArgumentsError")
    tool_message = next(m for m in backend.requests[1].body["messages"] if m["role"] == "tool")
    assert tool_message["tool_call_id"] == "call_1"

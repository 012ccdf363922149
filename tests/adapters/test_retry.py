"""The retry policy every provider shares: a table of decisions, then the OpenAI lean path on the wire.

(The Ollama adapter's retries are in test_ollama_chat.py, on both of its read paths.)
"""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate
from typing import Any

import pytest
from aiohttp import web
from multidict import CIMultiDict

from createagents import CreateAgent, ProviderUnavailableError, RateLimitError
from createagents.adapters._retry import RetryPolicy, retry_after
from tests.fakes._base import FakeServer
from tests.fakes.openai_server import FakeOpenAIServer, Script

from .conftest import SECRET

BACKOFF_0 = (0.375, 0.5)  # 0.5 s less up to 25 % jitter
BACKOFF_1 = (0.75, 1.0)
CAPPED = (6.0, 8.0)
NO = None  # not retried


def _date(offset: float) -> str:
    return f"@{offset}"  # made an HTTP date when the test runs, not when it is collected


def _headers(headers: dict[str, str]) -> CIMultiDict[str]:
    return CIMultiDict(
        (k, formatdate(time.time() + float(v[1:]), usegmt=True) if v.startswith("@") else v) for k, v in headers.items()
    )


# (status or None for a connection error / timeout, headers, attempt, max_retries) -> delay range or NO
TABLE: list[tuple[int | None, dict[str, str], int, int, tuple[float, float] | None]] = [
    (None, {}, 0, 2, BACKOFF_0),
    (None, {}, 1, 2, BACKOFF_1),
    (None, {}, 2, 2, NO),  # max_retries retries, so max_retries + 1 requests
    (None, {}, 0, 0, NO),
    (408, {}, 0, 2, BACKOFF_0),
    (409, {}, 0, 2, BACKOFF_0),
    (429, {}, 0, 2, BACKOFF_0),
    (429, {}, 1, 2, BACKOFF_1),
    (429, {}, 2, 2, NO),
    (500, {}, 0, 2, BACKOFF_0),
    (502, {}, 0, 2, BACKOFF_0),
    (503, {}, 0, 2, BACKOFF_0),
    (504, {}, 1, 2, BACKOFF_1),
    (599, {}, 0, 2, BACKOFF_0),
    (500, {}, 4, 10, CAPPED),  # 0.5 * 2**4 = 8: the cap
    (500, {}, 9, 10, CAPPED),
    (500, {}, 5000, 10_000, CAPPED),  # no overflow
    (400, {}, 0, 2, NO),
    (401, {}, 0, 2, NO),
    (403, {}, 0, 2, NO),
    (404, {}, 0, 2, NO),
    (422, {}, 0, 2, NO),
    # x-should-retry overrides the status, not the retry count
    (400, {"x-should-retry": "true"}, 0, 2, BACKOFF_0),
    (400, {"x-should-retry": "true"}, 2, 2, NO),
    (503, {"x-should-retry": "false"}, 0, 2, NO),
    (429, {"x-should-retry": "false", "retry-after": "1"}, 0, 2, NO),
    (503, {"x-should-retry": "maybe"}, 0, 2, BACKOFF_0),
    # the server's wait
    (429, {"retry-after": "3"}, 0, 2, (3.0, 3.0)),
    (429, {"Retry-After": "3"}, 1, 2, (3.0, 3.0)),  # any case
    (429, {"retry-after": "2.5"}, 0, 2, (2.5, 2.5)),
    (429, {"retry-after": "0"}, 0, 2, (0.0, 0.0)),
    (503, {"retry-after-ms": "10"}, 0, 2, (0.01, 0.01)),
    (429, {"retry-after-ms": "10", "retry-after": "5"}, 0, 2, (0.01, 0.01)),  # ms first
    (429, {"retry-after-ms": "soon", "retry-after": "2"}, 0, 2, (2.0, 2.0)),
    (429, {"retry-after": _date(30)}, 0, 2, (27.0, 30.0)),  # an HTTP date (second resolution)
    (429, {"retry-after": _date(-30)}, 0, 2, (0.0, 0.0)),  # a date already past: now
    (429, {"retry-after": "120"}, 0, 2, (120.0, 120.0)),  # max_wait is still waited for
    # beyond max_wait: not waited for, not retried
    (429, {"retry-after": "121"}, 0, 2, NO),
    (429, {"retry-after": "200"}, 0, 2, NO),
    (429, {"retry-after-ms": "200000"}, 0, 2, NO),
    (429, {"retry-after": _date(3600)}, 0, 2, NO),
    (503, {"x-should-retry": "true", "retry-after": "200"}, 0, 2, NO),
    # unusable values: back-off
    (429, {"retry-after": "-1"}, 0, 2, BACKOFF_0),
    (429, {"retry-after-ms": "-5"}, 0, 2, BACKOFF_0),
    (429, {"retry-after": "soon"}, 0, 2, BACKOFF_0),
    (429, {"retry-after": "nan"}, 0, 2, BACKOFF_0),
    (429, {"retry-after": "inf"}, 0, 2, BACKOFF_0),
    (429, {"retry-after": ""}, 0, 2, BACKOFF_0),
]


@pytest.mark.parametrize(("status", "headers", "attempt", "max_retries", "expected"), TABLE)
def test_policy_table(
    status: int | None, headers: dict[str, str], attempt: int, max_retries: int, expected: tuple[float, float] | None
) -> None:
    policy = RetryPolicy(max_retries=max_retries)
    for _ in range(20):  # the jitter is random
        delay = policy.next_delay(attempt, status, _headers(headers))
        if expected is None:
            assert delay is None
        else:
            assert delay is not None and expected[0] <= delay <= expected[1]


def test_policy_parts_and_limits() -> None:
    policy = RetryPolicy(max_retries=3, initial_delay=0.1, max_delay=0.3, max_wait=5.0)
    assert policy.should_retry(503, {}) and not policy.should_retry(400, {})
    assert policy.delay(0, {"retry-after": "5"}) == 5.0
    assert policy.delay(0, {"retry-after": "6"}) is None
    assert 0.075 <= policy.backoff(0) <= 0.1 and 0.225 <= policy.backoff(3) <= 0.3
    assert RetryPolicy() == RetryPolicy(max_retries=2, initial_delay=0.5, max_delay=8.0, max_wait=120.0)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({}, None),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "200"}, 200.0),  # what the server asked, even beyond max_wait: the error says so
        ({"retry-after": "-3"}, None),
        ({"retry-after": "whenever"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": _date(-10)}, 0.0),
    ],
)
def test_retry_after_for_the_error(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after(_headers(headers)) == seconds


def test_the_openai_errors_read_retry_after_from_the_policy_module() -> None:
    from createagents.adapters import _openai_errors

    assert _openai_errors.retry_after is retry_after


# -- on the wire: the OpenAI lean path, counted by the fake server --------------------------------------------


def status(code: int, **headers: str) -> Script:
    return Script(status=code, error={"message": "busy", "type": "server_error", "code": None}, headers=headers)


def agent_for(server: FakeOpenAIServer, **kw: Any) -> CreateAgent:
    return CreateAgent(provider="openai", model="m", base_url=server.v1, api_key=SECRET, **kw)


async def test_a_wait_beyond_max_wait_is_not_retried_and_the_error_says_it(openai_server: FakeOpenAIServer) -> None:
    openai_server.add(status(429, **{"retry-after": "200"}), Script(text=["never"]))
    async with agent_for(openai_server, max_retries=1) as agent:
        started = time.monotonic()
        with pytest.raises(RateLimitError) as e:
            await agent.chat("hi")
    assert time.monotonic() - started < 5
    assert len(openai_server.requests) == 1 and e.value.retry_after == 200.0


async def test_retry_after_ms_is_waited_then_answered(openai_server: FakeOpenAIServer) -> None:
    openai_server.add(status(429, **{"retry-after-ms": "10"}), Script(text=["ok"]))
    async with agent_for(openai_server, max_retries=1) as agent:
        assert await agent.chat("hi") == "ok"
    assert len(openai_server.requests) == 2


async def test_retry_after_zero_is_retried_at_once(openai_server: FakeOpenAIServer) -> None:
    openai_server.add(*[status(503, **{"retry-after": "0"})] * 2, Script(text=["ok"]))
    async with agent_for(openai_server, max_retries=2) as agent:
        started = time.monotonic()
        assert await agent.chat("hi") == "ok"
    assert time.monotonic() - started < 0.3  # no back-off
    assert len(openai_server.requests) == 3


async def test_x_should_retry_true_retries_any_status(openai_server: FakeOpenAIServer) -> None:
    openai_server.add(status(400, **{"x-should-retry": "true", "retry-after-ms": "1"}), Script(text=["ok"]))
    async with agent_for(openai_server, max_retries=1) as agent:
        assert await agent.chat("hi") == "ok"
    assert len(openai_server.requests) == 2


async def test_the_last_answer_is_raised_with_its_retry_after(openai_server: FakeOpenAIServer) -> None:
    openai_server.add(*[status(429, **{"retry-after-ms": "1"})] * 2, status(429, **{"retry-after": "7"}))
    async with agent_for(openai_server, max_retries=2) as agent:
        with pytest.raises(RateLimitError) as e:
            await agent.chat("hi")
    assert len(openai_server.requests) == 3 and e.value.retry_after == 7.0


async def start_on(server: FakeServer, port: int) -> web.AppRunner:
    """`server`'s routes on a given port (the fakes take any free port)."""
    app = web.Application()
    server.routes(app)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    server.port = port
    return runner


async def free_port() -> int:
    probe = FakeOpenAIServer()
    await probe.start()
    port = probe.port
    await probe.stop()
    return port


async def test_a_refused_connection_is_retried_until_the_server_answers() -> None:
    server = FakeOpenAIServer(api_key=SECRET)
    port = await free_port()
    agent = CreateAgent(provider="openai", model="m", base_url=f"http://127.0.0.1:{port}/v1", api_key=SECRET)
    agent._model.retry = RetryPolicy(max_retries=2, initial_delay=0.3)  # type: ignore[attr-defined]
    server.add(Script(text=["up"]))

    async def later() -> web.AppRunner:
        await asyncio.sleep(0.05)  # the first attempt is refused, the second finds the server
        return await start_on(server, port)

    starting = asyncio.create_task(later())
    try:
        async with agent:
            assert await agent.chat("hi") == "up"
    finally:
        await (await starting).cleanup()
    assert len(server.requests) == 1


async def test_a_refused_connection_fails_after_max_retries() -> None:
    port = await free_port()
    agent = CreateAgent(provider="openai", model="m", base_url=f"http://127.0.0.1:{port}/v1", api_key=SECRET)
    agent._model.retry = RetryPolicy(max_retries=2, initial_delay=0.01)  # type: ignore[attr-defined]
    async with agent:
        with pytest.raises(ProviderUnavailableError, match="cannot reach"):
            await agent.chat("hi")

"""Disconnects, graceful shutdown, signals, binding rules, CORS, health and metrics."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from createagents import ConfigurationError, CreateAgent
from createagents.serving import app, serve
from createagents.testing import FunctionModel

from .conftest import KEY, running

HEADERS = {"Authorization": f"Bearer {KEY}"}


class SlowWords:
    """A model streaming `n` words `delay` seconds apart, that tells when its generator was closed."""

    def __init__(self, n: int, delay: float) -> None:
        self.n, self.delay = n, delay
        self.started = asyncio.Event()
        self.closed = asyncio.Event()
        self.finished = False

    async def __call__(self, messages: Any, tools: Any) -> AsyncIterator[str]:
        self.started.set()
        try:
            for i in range(self.n):
                await asyncio.sleep(self.delay)
                yield f"w{i} "
            self.finished = True
        finally:
            self.closed.set()

    def agent(self) -> CreateAgent:
        async def model(messages: Any, tools: Any) -> AsyncIterator[str]:  # an async generator function
            async for word in self(messages, tools):
                yield word

        return CreateAgent(provider=FunctionModel(model))


# -- client disconnects -------------------------------------------------------------------


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_a_client_that_disconnects_cancels_its_run(api: str) -> None:
    slow = SlowWords(n=200, delay=0.02)
    agent = slow.agent()
    async with running(agent) as server, server.client() as client:
        if api == "chat":
            stream: Any = await client.chat.completions.create(
                model="default", messages=[{"role": "user", "content": "go"}], stream=True
            )
        else:
            stream = await client.responses.create(model="default", input="go", stream=True)
        for _ in range(3):
            await stream.__anext__()
        await stream.close()  # the HTTP stream goes away mid-answer
        await asyncio.wait_for(slow.closed.wait(), 2)  # the provider stream was closed
        assert not slow.finished
        async with aiohttp.ClientSession() as http:
            metrics = await (await http.get(f"{server.url}/metrics", headers=HEADERS)).text()
    assert await agent.conversations() == []  # nothing saved
    assert "createagents_server_streams_in_flight 0" in metrics
    failed = [r for r in agent.metrics() if not r.success]
    assert failed and failed[-1].error_type == "CancelledError"


async def test_a_disconnect_while_the_model_is_silent_cancels_at_once() -> None:
    """No next token to fail a write on: the server notices the closed connection itself."""
    slow = SlowWords(n=3, delay=30.0)  # the first word comes only after 30 s
    agent = slow.agent()
    async with running(agent) as server, server.client() as client:
        with pytest.raises(openai.APITimeoutError):  # a non-streamed request the client gives up on
            await client.responses.create(model="default", input="think hard", timeout=0.3)
        await asyncio.wait_for(slow.closed.wait(), 2.0)  # long before the 30 s word
    assert not slow.finished and await agent.conversations() == []


# -- graceful shutdown ---------------------------------------------------------------------


async def _start(agent: CreateAgent, **kw: Any) -> tuple[asyncio.Task[None], int, asyncio.Event]:
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(agent, port=0, api_keys=[KEY], ready=bound.set_result, stop=stop, **kw))
    return task, await bound, stop


async def test_shutdown_lets_a_stream_in_flight_finish_within_the_grace_period() -> None:
    slow = SlowWords(n=10, delay=0.05)
    task, port, stop = await _start(slow.agent(), shutdown_grace=5.0)
    async with openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0) as client:
        stream = await client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "go"}], stream=True
        )
        chunks = [await stream.__anext__()]
        stop.set()  # as SIGTERM does
        await asyncio.sleep(0.05)
        with pytest.raises(OSError):  # no new connections once draining
            await asyncio.open_connection("127.0.0.1", port)
        chunks += [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "".join(f"w{i} " for i in range(10)) and slow.finished
    assert chunks[-1].choices[0].finish_reason == "stop"
    await asyncio.wait_for(task, 2)  # returned normally: exit 0


async def test_shutdown_cancels_a_stream_that_outlasts_the_grace_period() -> None:
    slow = SlowWords(n=500, delay=0.02)  # ten seconds of words
    task, port, stop = await _start(slow.agent(), shutdown_grace=0.3)
    async with openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0) as client:
        stream = await client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "go"}], stream=True
        )
        await stream.__anext__()
        started = time.monotonic()
        stop.set()
        with pytest.raises(openai.APIError) as e:
            async for _ in stream:
                pass
        assert 0.25 < time.monotonic() - started < 3.0  # the grace period, then cancelled (not the 10 s answer)
    assert e.value.body == {
        "message": "the server is shutting down",
        "type": "server_error",
        "param": None,
        "code": "server_shutting_down",
    }
    await asyncio.wait_for(task, 6)
    assert slow.closed.is_set() and not slow.finished


async def test_sigterm_stops_the_server_gracefully_and_restores_the_handler() -> None:
    fallback_calls: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda *a: fallback_calls.append(1))
    try:
        installed = signal.getsignal(signal.SIGTERM)
        task, port, _ = await _start(CreateAgent(provider="test"), shutdown_grace=1.0)
        async with openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0) as c:
            assert (await c.models.list()).data
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(task, 3)
        assert fallback_calls == []  # the server's handler took it
        assert signal.getsignal(signal.SIGTERM) is installed  # and gave the old one back
    finally:
        signal.signal(signal.SIGTERM, previous)


async def test_cancelling_serve_stops_it() -> None:
    task, port, _ = await _start(CreateAgent(provider="test"))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


# -- binding without keys ---------------------------------------------------------------------


async def test_no_keys_refuses_a_non_loopback_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREATEAGENTS_SERVER_API_KEYS", raising=False)
    agent = CreateAgent(provider="test")
    for host in ("0.0.0.0", "::", "example.com", ""):
        with pytest.raises(ConfigurationError, match="without API keys"):
            await serve(agent, host=host, port=0)
    for kw in ({"allow_insecure_no_auth": True}, {"api_keys": [KEY]}, {"host": "127.0.0.1"}):
        options: dict[str, Any] = {"host": "0.0.0.0", **kw}
        assert await _bind_and_stop(agent, **options) > 0, kw


async def _bind_and_stop(agent: CreateAgent, **options: Any) -> int:
    """The port `serve` bound, after stopping it at once."""
    stop = asyncio.Event()
    bound: list[int] = []

    def ready(port: int) -> None:
        bound.append(port)
        stop.set()

    await asyncio.wait_for(serve(agent, port=0, ready=ready, stop=stop, **options), 3)
    return bound[0]


async def test_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREATEAGENTS_SERVER_API_KEYS", " sk-env-key-0123456789 , ,sk-env-key-two-0123456789")
    async with running(CreateAgent(provider="test"), api_keys=(), host="0.0.0.0") as server:
        for key in ("sk-env-key-0123456789", "sk-env-key-two-0123456789"):
            async with server.client(key) as client:
                assert (await client.models.list()).data
        async with server.client("sk-not-it-0123456789") as client:
            with pytest.raises(openai.AuthenticationError):
                await client.models.list()


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # no packet is sent: this picks the outgoing interface
            address: str = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


async def test_without_keys_the_app_answers_only_local_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREATEAGENTS_SERVER_API_KEYS", raising=False)
    address = _non_loopback_address()
    if address is None:
        pytest.skip("no non-loopback interface here")
    for insecure, expected in ((False, 401), (True, 200)):
        runner = web.AppRunner(app(CreateAgent(provider="test"), allow_insecure_no_auth=insecure))
        await runner.setup()
        try:
            site = web.TCPSite(runner, "0.0.0.0", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://{address}:{port}/v1/models") as r:
                    assert r.status == expected
                async with http.get(f"http://127.0.0.1:{port}/v1/models") as r:
                    assert r.status == 200
        finally:
            await runner.cleanup()


# -- CORS -----------------------------------------------------------------------------------------

PREFLIGHT = {
    "Origin": "https://app.example",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


async def test_cors_is_off_by_default(http: aiohttp.ClientSession) -> None:
    async with running(CreateAgent(provider="test")) as server:
        async with http.options(f"{server.v1}/chat/completions", headers=PREFLIGHT) as r:
            assert r.status in (401, 405) and "Access-Control-Allow-Origin" not in r.headers
        async with http.get(f"{server.v1}/models", headers={**HEADERS, "Origin": "https://app.example"}) as r:
            assert r.status == 200 and "Access-Control-Allow-Origin" not in r.headers


async def test_cors_origins_enable_preflight_and_headers(http: aiohttp.ClientSession) -> None:
    async with running(CreateAgent(provider="test"), cors_origins=["https://app.example"]) as server:
        async with http.options(f"{server.v1}/chat/completions", headers=PREFLIGHT) as r:
            assert r.status == 204
            assert r.headers["Access-Control-Allow-Origin"] == "https://app.example"
            assert "POST" in r.headers["Access-Control-Allow-Methods"]
            assert r.headers["Access-Control-Allow-Headers"] == "authorization, content-type"
            assert r.headers["Vary"] == "Origin"
        async with http.options(
            f"{server.v1}/chat/completions", headers={**PREFLIGHT, "Origin": "https://evil.example"}
        ) as r:
            assert r.status == 403 and "Access-Control-Allow-Origin" not in r.headers
        body = {"model": "default", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        async with http.post(
            f"{server.v1}/chat/completions", json=body, headers={**HEADERS, "Origin": "https://app.example"}
        ) as r:
            assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == "https://app.example"
            await r.read()
        async with http.post(
            f"{server.v1}/chat/completions", json=body, headers={"Origin": "https://app.example"}
        ) as r:
            assert r.status == 401 and r.headers["Access-Control-Allow-Origin"] == "https://app.example"


# -- metrics and models ---------------------------------------------------------------------------


async def test_metrics_merge_every_agent_and_count_requests(http: aiohttp.ClientSession) -> None:
    agents = {"support": CreateAgent(provider="test"), "sales": CreateAgent(provider="test")}
    async with running(agents) as server, server.client() as client:
        assert [m.id for m in (await client.models.list()).data] == ["support", "sales"]
        await client.chat.completions.create(model="support", messages=[{"role": "user", "content": "hi"}])
        await client.chat.completions.create(model="sales", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="nobody", messages=[{"role": "user", "content": "hi"}])
        async with http.get(f"{server.url}/metrics") as r:
            assert r.status == 401  # metrics need a key too
        async with http.get(f"{server.url}/metrics", headers=HEADERS) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = await r.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}  # a valid exposition: one family per name
    calls = {(s.labels["agent"], s.labels["status"]): s.value for s in families["createagents_model_calls"].samples}
    assert calls == {("support", "ok"): 1.0, ("sales", "ok"): 1.0}
    requests = {
        (s.labels["route"], s.labels["status"]): s.value for s in families["createagents_server_requests"].samples
    }
    assert requests[("/v1/chat/completions", "200")] == 2.0 and requests[("/v1/chat/completions", "404")] == 1.0
    assert requests[("/metrics", "401")] == 1.0
    assert families["createagents_server_streams_in_flight"].samples[0].value == 0.0
    assert text.count("# HELP createagents_model_calls_total ") == 1


async def test_health_reports_draining_while_shutting_down() -> None:
    slow = SlowWords(n=20, delay=0.05)
    task, port, stop = await _start(slow.agent(), shutdown_grace=5.0)
    async with aiohttp.ClientSession() as streaming, aiohttp.ClientSession() as probe:
        async with probe.get(f"http://127.0.0.1:{port}/healthz") as r:  # this connection stays open
            assert r.status == 200 and await r.json() == {"status": "ok"}
        stream = await streaming.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={"model": "default", "messages": [{"role": "user", "content": "go"}], "stream": True},
            headers=HEADERS,
        )
        await stream.content.readline()
        stop.set()
        await asyncio.sleep(0.05)
        async with probe.get(f"http://127.0.0.1:{port}/healthz") as r:  # over the kept-alive connection
            assert r.status == 503 and await r.json() == {"status": "draining"}
        async with probe.post(f"http://127.0.0.1:{port}/v1/responses", json={}, headers=HEADERS) as r:
            assert r.status == 503 and (await r.json())["error"]["code"] == "server_shutting_down"
        body = await stream.read()
        assert body.endswith(b"data: [DONE]\n\n")
    await asyncio.wait_for(task, 3)


async def test_mounted_under_another_app_the_limits_and_open_routes_still_hold() -> None:
    root = web.Application()
    root.add_subapp("/agents", app(CreateAgent(provider="test"), api_keys=[KEY], max_body=4096))
    runner = web.AppRunner(root)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/agents"  # type: ignore[union-attr]

        async def chunked() -> AsyncIterator[bytes]:  # no Content-Length, under the root's 1 MiB default
            for _ in range(10):
                yield b" " * 1000

        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as r:
                assert r.status == 200
            async with http.get(f"{base}/v1/models") as r:
                assert r.status == 401
            async with http.post(f"{base}/v1/chat/completions", data=chunked(), headers=HEADERS) as r:
                assert r.status == 413
            body = {"model": "default", "messages": [{"role": "user", "content": "hi"}]}
            async with http.post(f"{base}/v1/chat/completions", json=body, headers=HEADERS) as r:
                assert r.status == 200 and (await r.json())["choices"][0]["message"]["content"] == "You said: hi"
    finally:
        await runner.cleanup()


async def test_an_agent_with_a_name_is_served_under_it() -> None:
    async with running(CreateAgent(provider="test", name="support")) as server, server.client(KEY) as client:
        ids = {m.id for m in (await client.models.list()).data}
        assert {"default", "support", "test"} <= ids
        answer = await client.chat.completions.create(model="support", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content == "You said: hi"

"""The OpenAI adapter against servers that misbehave on purpose, on both transports (ours and a user's SDK client)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from createagents import (
    AgentClosedError,
    ConfigurationError,
    CreateAgent,
    ProviderError,
    RateLimitError,
    ResponseFormatError,
)
from createagents.adapters._openai_errors import ErrorContext
from createagents.adapters._openai_stream import StreamReader
from createagents.adapters._openai_wire import WireProfile
from createagents.adapters.openai_chat import OpenAIChatModel
from createagents.domain.settings import ModelSettings
from tests.fakes.openai_server import FakeOpenAIServer, Script

from .conftest import SECRET, sdk_transport_like

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture(params=["lean", "sdk"])
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "sdk":
        from createagents import providers

        monkeypatch.setattr(providers, "_transport", sdk_transport_like)
    return str(request.param)


async def serve(handler: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    for _ in range(int(within / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


def sse(*chunks: dict[str, Any] | str) -> bytes:
    return b"".join(b"data: " + (c if isinstance(c, str) else json.dumps(c)).encode() + b"\n\n" for c in chunks)


def text_chunk(text: str, finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}


async def chat(url: str, message: str = "hi", **kw: Any) -> str:
    kw.setdefault("max_retries", 0)
    async with CreateAgent(provider="openai", model="m", base_url=url, api_key=SECRET, **kw) as agent:
        answer = await agent.chat(message)
        assert len(await agent.history()) == 2
        return answer


# -- the same answer, the same requests, on both transports -----------------------------------------------


async def test_a_requested_wait_beyond_120_s_is_not_retried_on_either_transport(
    openai_server: FakeOpenAIServer, transport: str
) -> None:
    error = {"message": "slow down", "type": "rate_limit", "code": None}
    openai_server.add(Script(status=429, error=error, headers={"retry-after": "200"}), Script(text=["never"]))
    with pytest.raises(RateLimitError) as e:
        await chat(openai_server.v1, max_retries=1)
    assert len(openai_server.requests) == 1 and e.value.retry_after == 200.0


def test_a_client_built_for_openai_gets_openais_wire_profile() -> None:
    from openai import AsyncOpenAI

    model = OpenAIChatModel(AsyncOpenAI(base_url="https://api.openai.com/v1", api_key="sk-abcdefgh12345678"))
    assert model.profile == WireProfile.for_url("https://api.openai.com/v1")
    body = model.profile.params("gpt", [], [], ModelSettings(max_tokens=9))
    assert body["max_completion_tokens"] == 9 and "max_tokens" not in body
    with pytest.raises(ConfigurationError, match="top_k"):
        CreateAgent(provider=model, config={"top_k": 3})
    local = OpenAIChatModel(AsyncOpenAI(base_url="http://127.0.0.1:8000/v1", api_key="x"))
    assert local.profile.params("m", [], [], ModelSettings(max_tokens=9, top_k=3))["max_tokens"] == 9


# -- redirects never carry credentials to another origin --------------------------------------------------


@pytest.mark.parametrize("api_version", [None, "2024-10-21"])
@pytest.mark.parametrize("status", [307, 308, 301])
async def test_credentials_do_not_follow_a_redirect_to_another_origin(api_version: str | None, status: int) -> None:
    seen: list[dict[str, str]] = []

    async def elsewhere(request: web.Request) -> web.StreamResponse:
        seen.append(dict(request.headers))
        return web.Response(body=sse(text_chunk("moved", "stop"), "[DONE]"), content_type="text/event-stream")

    async for other in serve(elsewhere):

        async def redirect(request: web.Request, other: str = other) -> web.StreamResponse:
            raise _redirect(status, other + request.path_qs)

        async for origin in serve(redirect):
            async with CreateAgent(
                provider="azure",
                model="dep",
                base_url=origin,
                api_key=SECRET,
                api_version=api_version,
                max_retries=0,
                provider_options={"headers": {"X-Custom-Auth": "token-1234567890"}},
            ) as agent:
                with contextlib.suppress(ProviderError):  # a 301 turns the POST into a GET: what was sent matters
                    await agent.chat("hi")
    assert seen, "the redirect was not followed"
    for headers in seen:
        lowered = {k.lower(): v for k, v in headers.items()}
        assert "api-key" not in lowered and "authorization" not in lowered and "x-custom-auth" not in lowered
        assert SECRET not in json.dumps(headers)


def _redirect(status: int, location: str) -> web.HTTPException:
    classes: dict[int, type[web.HTTPException]] = {
        301: web.HTTPMovedPermanently,
        307: web.HTTPTemporaryRedirect,
        308: web.HTTPPermanentRedirect,
    }
    return classes[status](location)  # type: ignore[call-arg]


async def test_credentials_do_follow_a_redirect_on_the_same_origin() -> None:
    seen: list[str] = []

    async def moved(request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/old/"):
            raise web.HTTPPermanentRedirect(str(request.url.origin()) + "/v1/" + request.path.removeprefix("/old/"))
        seen.append(request.headers.get("Authorization", ""))
        return web.Response(body=sse(text_chunk("ok", "stop"), "[DONE]"), content_type="text/event-stream")

    async for url in serve(moved):
        assert await chat(url + "/old") == "ok"
    assert seen == [f"Bearer {SECRET}"]


# -- closing the agent ends chats in flight --------------------------------------------------------------


async def test_aclose_ends_a_streaming_chat_promptly(openai_server: FakeOpenAIServer, transport: str) -> None:
    openai_server.add(Script(text=["a ", "b ", "c "], stall_after=2))
    agent = CreateAgent(provider="openai", model="m", base_url=openai_server.v1, api_key=SECRET, timeout=30)
    got: list[str] = []

    async def consume() -> None:
        async for token in agent.chat("hi"):
            got.append(token)

    task = asyncio.create_task(consume())
    await until(lambda: bool(got))
    await agent.aclose()
    with pytest.raises((AgentClosedError, ProviderError)):
        await asyncio.wait_for(task, 5)  # not the 30 s timeout, and never untyped
    assert agent.closed


async def test_aclose_during_a_retry_wait_ends_the_chat_with_agent_closed(
    openai_server: FakeOpenAIServer, transport: str
) -> None:
    openai_server.add(Script(status=503, headers={"retry-after": "60"}), Script(text=["late"]))
    agent = CreateAgent(provider="openai", model="m", base_url=openai_server.v1, api_key=SECRET, max_retries=2)
    task = asyncio.create_task(agent.chat("hi"))
    await until(lambda: bool(openai_server.requests))
    await asyncio.sleep(0.05)
    await agent.aclose()
    with pytest.raises(AgentClosedError):
        await asyncio.wait_for(task, 5)  # not the 60 s Retry-After
    assert len(openai_server.requests) == 1


async def test_aclose_while_awaiting_headers_is_typed(openai_server: FakeOpenAIServer, transport: str) -> None:
    openai_server.add(Script(never_answer=True))
    agent = CreateAgent(provider="openai", model="m", base_url=openai_server.v1, api_key=SECRET, timeout=30)
    task = asyncio.create_task(agent.chat("hi"))
    await until(lambda: bool(openai_server.requests))
    await agent.aclose()
    with pytest.raises((AgentClosedError, ProviderError)):
        await asyncio.wait_for(task, 5)


async def test_closing_an_agent_leaves_a_client_the_user_built_open(openai_server: FakeOpenAIServer) -> None:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=openai_server.v1, api_key=SECRET, max_retries=0)
    try:
        for _ in range(2):  # two agents sharing one client, one after the other
            async with CreateAgent(provider=OpenAIChatModel(client), model="m") as agent:
                assert (await agent.chat("one two")).strip() == "one two"
        assert not client.is_closed()
    finally:
        await client.close()


# -- secrets -------------------------------------------------------------------------------------------------


async def test_a_user_built_clients_key_is_in_no_traceback(openai_server: FakeOpenAIServer) -> None:
    from openai import AsyncOpenAI

    openai_server.add(Script(status=401, error={"message": f"Incorrect API key provided: {SECRET}", "code": "x"}))
    client = AsyncOpenAI(base_url=openai_server.v1, api_key=SECRET, max_retries=0)
    try:
        agent = CreateAgent(provider=OpenAIChatModel(client), model="m")
        with pytest.raises(ProviderError) as e:
            await agent.chat("hi")
        printed = "".join(traceback.format_exception(e.value))
        assert SECRET not in printed and "***" in printed
    finally:
        await client.close()


async def test_userinfo_in_base_url_is_used_and_never_shown() -> None:
    seen: list[str] = []

    async def check(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers.get("Authorization", ""))
        return web.json_response({"error": {"message": "nope"}}, status=500)

    async for url in serve(check):
        host = url.removeprefix("http://")
        with pytest.raises(ProviderError) as e:
            async with CreateAgent(
                provider="openai", model="m", base_url=f"http://ana:s3cret-pass-word@{host}/v1", max_retries=0
            ) as agent:
                await agent.chat("hi")
    assert seen and seen[0].startswith("Basic ")
    printed = "".join(traceback.format_exception(e.value))
    assert "s3cret-pass-word" not in printed


async def test_no_local_of_a_failed_request_shows_the_key(transport: str) -> None:
    """Tracebacks that capture locals (Sentry, rich, `capture_locals=True`) print reprs: none may hold the key."""

    async def failing(request: web.Request) -> web.StreamResponse:
        return web.json_response({"error": {"message": "down"}}, status=500)

    async for url in serve(failing):
        with pytest.raises(ProviderError) as e:
            await chat(url)
    frames = traceback.TracebackException.from_exception(e.value, capture_locals=True)
    printed = "".join(frames.format())
    assert "self =" in printed or "context =" in printed  # locals were captured
    assert SECRET not in printed


@pytest.mark.parametrize("url", ["example.org/v1", "ftp://example.org/v1", "http://", "https:///v1", "http://h:port/"])
def test_a_base_url_we_cannot_use_is_refused_at_construction(url: str) -> None:
    with pytest.raises(ConfigurationError, match="URL"):
        CreateAgent(provider="openai", model="m", base_url=url, api_key="x")


# -- wrongly shaped answers ------------------------------------------------------------------------------


MALFORMED = [
    {"choices": {"0": {"delta": {"content": "x"}}}},  # choices as an object
    {"choices": [{"delta": {"content": 5}}]},  # content a number
    {"choices": [{"delta": {"tool_calls": {"index": 0}}}]},  # tool_calls an object
    {"choices": [{"delta": {"tool_calls": [{"index": "0", "function": {"name": "f"}}]}}]},
    {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"name": 5}}]}}]},
    {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": 7}}]}}]},
    {"choices": [{"delta": {"tool_calls": ["x"]}}]},
    {"choices": [{"delta": {"reasoning_content": ["x"]}}]},
    {"choices": [{"delta": "text"}]},
    {"choices": ["x"]},
    {"choices": [{"delta": {}, "finish_reason": 1}]},
    {"choices": [], "usage": {"prompt_tokens": "12"}},
    {"choices": [], "usage": {"prompt_tokens": -3}},
    {"choices": [], "usage": {"completion_tokens_details": {"reasoning_tokens": "a"}}},
    {"choices": [], "usage": "lots"},
    [1, 2, 3],
    "a string",
]


@pytest.mark.parametrize("chunk", MALFORMED, ids=[json.dumps(c)[:40] for c in MALFORMED])
async def test_every_malformed_chunk_is_a_response_format_error(chunk: Any, transport: str) -> None:
    async def answer(request: web.Request) -> web.StreamResponse:
        body = sse(text_chunk("ok "), chunk, text_chunk("", "stop"), "[DONE]")
        return web.Response(body=body, content_type="text/event-stream")

    async for url in serve(answer):
        with pytest.raises(ResponseFormatError):
            await chat(url)


async def test_json_nested_too_deep_is_a_response_format_error(transport: str) -> None:
    async def answer(request: web.Request) -> web.StreamResponse:
        deep = "[" * 100_000 + "]" * 100_000
        return web.Response(body=sse(text_chunk("ok "), deep, "[DONE]"), content_type="text/event-stream")

    async for url in serve(answer):
        with pytest.raises(ResponseFormatError):
            await chat(url)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)
shapes = st.fixed_dictionaries(
    {},
    optional={
        "choices": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "delta": st.fixed_dictionaries(
                        {},
                        optional={
                            "content": json_values,
                            "reasoning_content": json_values,
                            "refusal": json_values,
                            "tool_calls": json_values
                            | st.lists(
                                st.fixed_dictionaries(
                                    {},
                                    optional={
                                        "index": json_values,
                                        "id": json_values,
                                        "function": json_values
                                        | st.fixed_dictionaries(
                                            {}, optional={"name": json_values, "arguments": json_values}
                                        ),
                                    },
                                ),
                                max_size=2,
                            ),
                        },
                    )
                    | json_values,
                    "finish_reason": json_values,
                },
            )
            | json_values,
            max_size=2,
        )
        | json_values,
        "usage": json_values,
        "error": json_values,
    },
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.lists(shapes | json_values, min_size=1, max_size=4))
def test_the_stream_parser_raises_only_typed_errors(chunks: list[Any]) -> None:
    reader = StreamReader(ErrorContext("openai", "m"))
    try:
        events = [e for chunk in chunks for e in reader.feed(json.dumps(chunk).encode())]
        events += reader.finish()
    except ProviderError:
        return
    for event in events:  # what passes is well typed: text is text, usage is counts
        if event.kind in ("text_delta", "thinking_delta"):
            assert isinstance(event.text, str)  # type: ignore[union-attr]
        if event.kind == "response_done" and event.usage is not None:  # type: ignore[union-attr]
            assert event.usage.total_tokens >= 0  # type: ignore[union-attr]


# -- what is not an answer ----------------------------------------------------------------------------------


async def test_content_after_done_is_not_part_of_the_answer(transport: str) -> None:
    async def answer(request: web.Request) -> web.StreamResponse:
        body = sse(text_chunk("real"), text_chunk("", "stop"), "[DONE]", text_chunk(" injected"))
        return web.Response(body=body, content_type="text/event-stream")

    async for url in serve(answer):
        assert await chat(url) == "real"


async def test_a_200_html_page_names_its_content_type(transport: str) -> None:
    async def portal(request: web.Request) -> web.StreamResponse:
        return web.Response(text="<html><body>Please log in to the proxy</body></html>", content_type="text/html")

    async for url in serve(portal):
        with pytest.raises(ResponseFormatError) as e:
            await chat(url)
    assert "text/html" in str(e.value) and "log in" in str(e.value)


async def test_an_error_given_as_a_string_keeps_its_text(transport: str) -> None:
    async def boom(request: web.Request) -> web.StreamResponse:
        return web.json_response({"error": "boom: the model crashed"}, status=500)

    async for url in serve(boom):
        with pytest.raises(ProviderError) as e:
            await chat(url)
    assert "boom: the model crashed" in str(e.value) and e.value.status_code == 500


async def test_a_huge_error_message_is_capped(transport: str) -> None:
    async def huge(request: web.Request) -> web.StreamResponse:
        return web.json_response({"error": {"message": "x" * 5_000_000}}, status=400)

    async for url in serve(huge):
        with pytest.raises(ProviderError) as e:
            await chat(url)
    assert len(str(e.value)) < 3_000


async def test_a_gzip_bomb_in_an_error_body_is_not_read_whole() -> None:
    # our transport only: a client the user built reads error bodies the SDK's way, whole
    bomb = gzip.compress(b'{"error": {"message": "' + b"a" * 200_000_000 + b'"}}', compresslevel=9)

    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(body=bomb, status=500, headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})

    async for url in serve(answer):
        before = _rss()
        with pytest.raises(ProviderError) as e:
            await chat(url)
        grown = _rss() - before
    assert grown < 50_000_000, f"{grown / 1e6:.0f} MB for an error body"
    assert len(str(e.value)) < 3_000


def _rss() -> int:
    from pathlib import Path

    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096

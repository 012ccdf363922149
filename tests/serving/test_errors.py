"""Errors: bad requests, auth, limits, and provider failures (a real OpenAI adapter against the fake server)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
import openai
import pytest

from createagents import CreateAgent
from createagents.testing import FunctionModel
from tests.fakes.openai_server import FakeOpenAIServer, Script

from .conftest import KEY, OTHER_KEY, UPSTREAM_KEY, running

HEADERS = {"Authorization": f"Bearer {KEY}"}
USER = [{"role": "user", "content": "hi"}]


def assert_openai_error(body: Any, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    return error


def upstream_agent(upstream: FakeOpenAIServer, **kw: Any) -> CreateAgent:
    return CreateAgent("openai", "gpt-4o-mini", base_url=upstream.v1, api_key=UPSTREAM_KEY, max_retries=0, **kw)


# -- provider errors ------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_an_upstream_429_is_a_429_with_retry_after(upstream: FakeOpenAIServer, stream: bool) -> None:
    upstream.add(Script(status=429, headers={"retry-after": "7"}, error={"message": "slow down", "code": None}))
    async with running(upstream_agent(upstream)) as server, server.client() as client:
        with pytest.raises(openai.RateLimitError) as e:
            await client.chat.completions.create(model="default", messages=USER, stream=stream)  # type: ignore[call-overload]
    assert e.value.status_code == 429 and e.value.response.headers["retry-after"] == "7"
    raw = e.value.response.text
    assert_openai_error(json.loads(raw), code="rate_limit_exceeded")
    assert str(upstream.port) not in raw and UPSTREAM_KEY not in raw
    assert len(upstream.requests) == 1


@pytest.mark.parametrize(
    ("script", "status", "code"),
    [
        (Script(status=503), 503, "upstream_unavailable"),
        (Script(status=500), 502, "upstream_unavailable"),
        (Script(status=401, error={"message": f"bad key {UPSTREAM_KEY}", "code": "invalid_api_key"}), 502, None),
        (Script(status=400, error={"message": "flagged", "code": "content_filter"}), 400, "content_filter"),
        (Script(status=400, error={"message": "too long", "code": "context_length_exceeded"}), 400, None),
        (Script(never_answer=True), 504, "upstream_timeout"),
    ],
    ids=["503", "500", "upstream-401", "content-filter", "context-length", "timeout"],
)
async def test_provider_errors_map_to_statuses(
    upstream: FakeOpenAIServer, script: Script, status: int, code: str | None
) -> None:
    upstream.add(script)
    agent = upstream_agent(upstream, timeout=0.3)
    async with running(agent) as server, server.client() as client:
        with pytest.raises(openai.APIStatusError) as e:
            await client.chat.completions.create(model="default", messages=USER)
    assert e.value.status_code == status
    raw = e.value.response.text
    error = assert_openai_error(json.loads(raw), code=code)
    assert str(upstream.port) not in raw and UPSTREAM_KEY not in raw and "Traceback" not in raw
    if status == 502 and code is None:  # the server's own key was refused: never a 401 to the client
        assert error["code"] == "upstream_error" and "key" not in error["message"]


async def test_a_failure_after_the_stream_started_is_an_error_event(upstream: FakeOpenAIServer) -> None:
    upstream.add(Script(text=["one ", "two ", "three "], disconnect_after=3))
    async with running(upstream_agent(upstream)) as server, server.client() as client:
        stream = await client.chat.completions.create(model="default", messages=USER, stream=True)
        got: list[str] = []
        with pytest.raises(openai.APIError) as e:
            async for chunk in stream:
                got.append(chunk.choices[0].delta.content or "")
    assert "".join(got) == "one two "  # what arrived before the cut
    assert e.value.body == {
        "message": "the model provider is unavailable",
        "type": "server_error",
        "param": None,
        "code": "upstream_unavailable",
    }


async def test_a_failure_mid_response_stream_is_an_error_event() -> None:
    async def model(messages: Any, tools: Any) -> Any:
        yield "partial "
        raise openai_like_error()

    def openai_like_error() -> Exception:
        from createagents import ProviderUnavailableError

        return ProviderUnavailableError("upstream http://10.0.0.9:8000 reset", status_code=502)

    agent = CreateAgent(provider=FunctionModel(model))
    async with running(agent) as server, server.client() as client:
        stream = await client.responses.create(model="default", input="hi", stream=True)
        types: list[str] = []
        with pytest.raises(openai.APIError) as e:
            async for event in stream:
                types.append(event.type)
    assert types[-1] == "response.output_text.delta" and "response.completed" not in types
    assert e.value.message == "the model provider is unavailable" and "10.0.0.9" not in json.dumps(e.value.body)
    assert await agent.conversations() == []


async def test_an_unexpected_error_is_a_generic_500_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    def broken(messages: Any, tools: Any) -> str:
        raise RuntimeError("internal detail /srv/app secrets")

    async with running(CreateAgent(provider=FunctionModel(broken))) as server, server.client() as client:
        with (
            caplog.at_level(logging.ERROR, logger="createagents.server"),
            pytest.raises(openai.InternalServerError) as e,
        ):
            await client.chat.completions.create(model="default", messages=USER)
    raw = e.value.response.text
    assert_openai_error(json.loads(raw))
    assert "internal detail" not in raw and "Traceback" not in raw and "RuntimeError" not in raw
    assert any(r.exc_info and "internal detail" in str(r.exc_info[1]) for r in caplog.records)


# -- bad requests -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (b'{"model": "default"}', "messages"),
        (b'{"model": "default", "messages": []}', "messages"),
        (b'{"model": "default", "messages": "hi"}', "messages"),
        (b'{"model": "default", "messages": [{"role": "wizard", "content": "hi"}]}', "messages[0].role"),
        (b'{"model": "default", "messages": [{"role": "assistant", "content": "hi"}]}', "messages"),
        (b'{"model": "default", "messages": [{"role": "user", "content": "   "}]}', "messages"),
        (b'{"model": "default", "messages": [{"role": "user", "content": 5}]}', "messages[0].content"),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', "model"),
        (b'{"model": "default", "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}', "temperature"),
        (b'{"model": "default", "messages": [{"role": "user", "content": "hi"}], "temperature": 9}', "temperature"),
        (b'{"model": "default", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}', "stream"),
        (b'{"model": "default", "messages": [{"role": "user", "content": "hi"}], "n": 2}', "n"),
        (
            b'{"model": "default", "messages": [{"role": "tool", "tool_call_id": "x", "content": "r"},'
            b' {"role": "user", "content": "hi"}]}',
            "messages[0].tool_call_id",
        ),
    ],
    ids=lambda v: v.decode()[:40] if isinstance(v, bytes) else str(v),
)
async def test_bad_requests_are_400_with_the_field_named(
    http: aiohttp.ClientSession, body: bytes, param: str | None
) -> None:
    model_calls: list[Any] = []
    agent = CreateAgent(provider=FunctionModel(lambda m, t: model_calls.append(m) or "x"))
    async with (
        running(agent) as server,
        http.post(
            f"{server.v1}/chat/completions", data=body, headers={**HEADERS, "Content-Type": "application/json"}
        ) as response,
    ):
        assert response.status == 400
        error = assert_openai_error(await response.json(), param=param)
    assert error["type"] == "invalid_request_error"
    assert model_calls == []


async def test_a_bad_responses_request_is_400(http: aiohttp.ClientSession) -> None:
    async with running(CreateAgent(provider="test")) as server, server.client() as client:
        with pytest.raises(openai.BadRequestError) as e:
            await client.responses.create(
                model="default", input=[{"role": "user", "content": [{"type": "input_image"}]}]
            )
        assert e.value.body["param"] == "input[0].content[0]"  # type: ignore[index]
        with pytest.raises(openai.BadRequestError) as e:
            await client.responses.create(model="default", input="x", previous_response_id="resp_x", conversation="c")
        assert e.value.body["param"] == "conversation"  # type: ignore[index]


async def test_an_unknown_model_or_path_is_404_and_a_wrong_method_405(http: aiohttp.ClientSession) -> None:
    async with running(CreateAgent(provider="test")) as server, server.client() as client:
        with pytest.raises(openai.NotFoundError) as e:
            await client.chat.completions.create(model="gpt-5", messages=USER)  # type: ignore[arg-type]
        assert_openai_error(e.value.body and {"error": e.value.body}, code="model_not_found", param="model")
        with pytest.raises(openai.NotFoundError):
            await client.models.retrieve("gpt-5")
        assert (await client.models.retrieve("test")).id == "test"
        async with http.get(f"{server.v1}/nothing-here", headers=HEADERS) as response:
            assert response.status == 404
            assert_openai_error(await response.json())
        async with http.get(f"{server.v1}/chat/completions", headers=HEADERS) as response:
            assert response.status == 405 and response.headers["Allow"] == "POST"
            assert_openai_error(await response.json(), code="method_not_allowed")


async def test_a_body_over_the_limit_is_413(http: aiohttp.ClientSession) -> None:
    agent = CreateAgent(provider="test")
    big = "x" * 5000
    async with running(agent, max_body=4096) as server, server.client() as client:
        with pytest.raises(openai.APIStatusError) as e:
            await client.chat.completions.create(model="default", messages=[{"role": "user", "content": big}])
        assert e.value.status_code == 413
        assert_openai_error(e.value.body and {"error": e.value.body}, code="request_too_large")

        async def chunked() -> Any:  # no Content-Length: the limit holds while reading
            for _ in range(10):
                yield b" " * 1000

        async with http.post(f"{server.v1}/chat/completions", data=chunked(), headers=HEADERS) as response:
            assert response.status == 413
            assert_openai_error(await response.json(), code="request_too_large")
        small = await client.chat.completions.create(model="default", messages=[{"role": "user", "content": "ok"}])
        assert small.choices[0].message.content == "You said: ok"


# -- auth and limits ----------------------------------------------------------------------


async def test_requests_need_a_valid_bearer_key(http: aiohttp.ClientSession) -> None:
    async with running(CreateAgent(provider="test")) as server:
        for key in ("wrong-key-0123456789", KEY + "x", KEY[:-1]):
            async with server.client(key) as client:
                with pytest.raises(openai.AuthenticationError) as e:
                    await client.chat.completions.create(model="default", messages=USER)
                assert e.value.status_code == 401 and e.value.body["code"] == "invalid_api_key"  # type: ignore[index]
        async with http.post(f"{server.v1}/chat/completions", json={"model": "default", "messages": USER}) as r:
            assert r.status == 401 and r.headers["WWW-Authenticate"] == "Bearer"
            assert_openai_error(await r.json(), code="invalid_api_key")
        async with http.get(f"{server.v1}/models", headers={"Authorization": f"Basic {KEY}"}) as r:
            assert r.status == 401
        async with http.get(f"{server.url}/healthz") as r:  # probes need no key
            assert r.status == 200 and await r.json() == {"status": "ok"}
        for key in (KEY, OTHER_KEY):
            async with server.client(key) as client:
                assert [m.id for m in (await client.models.list()).data] == ["default", "test"]


async def test_a_key_at_its_concurrency_limit_gets_429(http: aiohttp.ClientSession) -> None:
    agent = CreateAgent(provider="test", provider_options={"delay": 0.05})
    async with running(agent, max_concurrent_per_key=1) as server, server.client() as client:
        stream = await client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "a b c d e f"}], stream=True
        )
        first = await stream.__anext__()
        assert first.choices[0].delta.role == "assistant"
        with pytest.raises(openai.RateLimitError) as e:
            await client.chat.completions.create(model="default", messages=USER)
        assert e.value.response.headers["retry-after"] == "1"
        assert e.value.body["code"] == "concurrency_limit_exceeded"  # type: ignore[index]
        async with server.client(OTHER_KEY) as other:  # another key is not limited by this one
            assert (await other.chat.completions.create(model="default", messages=USER)).choices
        rest = [c async for c in stream]
        assert rest[-1].choices[0].finish_reason == "stop"
        await asyncio.sleep(0.01)
        assert (await client.chat.completions.create(model="default", messages=USER)).choices  # released


async def test_a_store_that_is_down_is_a_503() -> None:
    from createagents import InMemoryConversationStore, StoreUnavailableError

    class Down(InMemoryConversationStore):
        down = False

        async def load(self, conversation_id: str) -> Any:
            if self.down:
                raise StoreUnavailableError("redis://:secret@10.0.0.5 refused", operation="load")
            return await super().load(conversation_id)

    store = Down()
    agent = CreateAgent(provider="test", store=store)
    async with running(agent) as server, server.client() as client:
        first = await client.responses.create(model="default", input="hi")
        store.down = True
        for call in (
            client.responses.retrieve(first.id),
            client.responses.create(model="default", input="again", previous_response_id=first.id),
        ):
            with pytest.raises(openai.InternalServerError) as e:
                await call
            assert e.value.status_code == 503 and e.value.response.headers["retry-after"] == "1"
            assert e.value.body["code"] == "store_unavailable" and "secret" not in e.value.response.text  # type: ignore[index]

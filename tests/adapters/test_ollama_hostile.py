"""The Ollama adapter against servers that misbehave on purpose: every fault is a typed error, nothing leaks.

Each failing case checks the error's type and text, that the history is as
it was, and that the connection the bad answer came on was closed (not put
back into the pool). Tests marked `both` run on the lean read path and on the
`ollama` client's public `chat()`; the rest on the lean path, which is the one
`CreateAgent` uses (the public path is the fallback for a client whose
internals differ, and reads bodies the client's way).
"""

from __future__ import annotations

import base64
import json
import time
import tracemalloc
import uuid
import zlib
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from createagents import (
    AuthenticationError,
    CreateAgent,
    ModelCallFinished,
    ModelNotFoundError,
    ProviderError,
    ProviderUnavailableError,
    ResponseFormatError,
)
from createagents.adapters._retry import RetryPolicy
from createagents.adapters.ollama_chat import (
    MAX_ERROR_MESSAGE,
    OllamaChatModel,
    _ChunkReader,
    _error_start,
    ollama_client,
)
from createagents.application.ports import ChatRequest
from createagents.domain.events import ResponseDone, TextDelta, ThinkingDelta, ToolCallDelta, ToolCallReady
from createagents.domain.messages import UserMessage
from tests.fakes.ollama_server import FakeOllamaServer, OllamaScript, chunk, done_chunk

KIB = 1024
MIB = 1024 * KIB
NO_RETRY = RetryPolicy(max_retries=0)
LOGIN_PAGE = (
    "<!DOCTYPE html><html><head><title>Proxy</title></head><body><form>Sign in to continue</form></body></html>"
)


@pytest.fixture(params=["lean", "public"])
def read_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "public":
        monkeypatch.setattr(OllamaChatModel, "_parts", OllamaChatModel._public_parts)
    return str(request.param)


both = pytest.mark.usefixtures("read_path")


def agent_for(server: FakeOllamaServer, model: str = "llama3.2", **kw: Any) -> CreateAgent:
    kw.setdefault("base_url", server.url)
    agent = CreateAgent(provider="ollama", model=model, **kw)
    agent._model.retry = NO_RETRY  # type: ignore[attr-defined]
    return agent


def raw(*pieces: bytes, **kw: Any) -> OllamaScript:
    return OllamaScript(raw_body=list(pieces), **kw)


async def warm_up(agent: CreateAgent, server: FakeOllamaServer) -> list[Any]:
    """One good turn first, so that the history is not empty (and a kept-alive connection is in the pool)."""
    server.scripts.insert(0, OllamaScript(text=["first"]))
    assert await agent.chat("hello") == "first"
    history = await agent.history()
    assert len(history) == 2
    return history


async def fails(
    agent: CreateAgent, server: FakeOllamaServer, error: type[ProviderError], *, exact: bool = True
) -> ProviderError:
    """The next turn fails with `error`; the history is unchanged and the connection it came on is closed."""
    history = await warm_up(agent, server)
    with pytest.raises(ProviderError) as e:
        await agent.chat("question")
    if exact:
        assert type(e.value) is error, f"{type(e.value).__name__}: {e.value}"
    else:
        assert isinstance(e.value, error), f"{type(e.value).__name__}: {e.value}"
    assert e.value.provider == "ollama" and e.value.model == "llama3.2"
    assert await agent.history() == history
    assert await server.wait_no_connections() == 0, "the connection was not closed"
    return e.value


# -- lines -------------------------------------------------------------------------------------------------


async def test_a_line_that_never_ends_is_a_response_format_error(ollama_server: FakeOllamaServer) -> None:
    ollama_server.add(
        raw(chunk(content="a"), b'{"message": {"content": "', raw_repeat=b"x" * (64 * KIB), raw_repeat_times=1000)
    )
    async with agent_for(ollama_server) as agent:
        agent._model.max_line = MIB  # type: ignore[attr-defined]
        error = await fails(agent, ollama_server, ResponseFormatError)
    assert "max_line" in str(error) and ollama_server.url in str(error)
    assert ollama_server.connections_closed == 1  # the server saw the client go, long before its 64 MB


def test_the_cap_is_16_mib_by_default() -> None:
    assert CreateAgent(provider="ollama", model="m")._model.max_line == 16 * MIB  # type: ignore[attr-defined]


async def _cpu_for_a_line(server: FakeOllamaServer, agent: CreateAgent, size: int) -> float:
    server.add(raw(b'{"message": {"content": "', b"x" * size, b'"}, "done": false}\n', done_chunk()))
    started = time.process_time()
    text = await agent.conversation(uuid.uuid4().hex).chat("x")  # a fresh history: not sent back
    cpu = time.process_time() - started
    assert len(text) == size
    return cpu


async def test_a_long_line_costs_time_linear_in_its_length(ollama_server: FakeOllamaServer) -> None:
    # `pending + chunk` per read made a 48 MB line cost 47 s: 8x the bytes was up to 64x the time
    async with agent_for(ollama_server) as agent:
        await _cpu_for_a_line(ollama_server, agent, MIB)  # warm up
        small = min([await _cpu_for_a_line(ollama_server, agent, 3 * MIB // 2) for _ in range(2)])
        large = min([await _cpu_for_a_line(ollama_server, agent, 12 * MIB) for _ in range(2)])
    assert large / max(small, 1e-3) < 20, (small, large)


@both
async def test_lines_may_end_with_crlf(ollama_server: FakeOllamaServer) -> None:
    crlf = [piece.replace(b"\n", b"\r\n") for piece in (chunk(content="a"), chunk(content="b"), done_chunk())]
    ollama_server.add(raw(*crlf))
    async with agent_for(ollama_server) as agent:
        assert await agent.chat("x") == "ab"


async def test_blank_lines_are_skipped(ollama_server: FakeOllamaServer) -> None:
    ollama_server.add(raw(chunk(content="a"), b"\r\n", b"\n  \n", chunk(content="b"), done_chunk()))
    async with agent_for(ollama_server) as agent:
        assert await agent.chat("x") == "ab"


# -- shapes -------------------------------------------------------------------------------------------------


def _line(value: Any) -> bytes:
    return json.dumps(value).encode() + b"\n"


def _message(**message: Any) -> bytes:
    return _line({"model": "llama3.2", "message": {"role": "assistant", **message}, "done": False})


def _call(**call: Any) -> bytes:
    return _message(content="", tool_calls=[call])


SHAPES = {
    "not an object": _line([1, 2, 3]),
    "a string": _line("hello"),
    "message a string": _line({"message": "hi", "done": False}),
    "message a list": _line({"message": ["hi"], "done": False}),
    "content a number": _message(content=5),
    "content an object": _message(content={"text": "hi"}),
    "thinking a number": _message(content="", thinking=1),
    "tool_calls an object": _message(content="", tool_calls={"function": {"name": "f", "arguments": {}}}),
    "tool_calls a number": _message(content="", tool_calls=5),
    "tool_calls a string": _message(content="", tool_calls="get_weather"),
    "tool_calls of numbers": _message(content="", tool_calls=[1, 2]),
    "tool_calls of strings": _message(content="", tool_calls=["get_weather"]),
    "function a string": _call(function="get_weather"),
    "function missing": _call(id="call_1"),
    "name a number": _call(function={"name": 7, "arguments": {}}),
    "arguments a number": _call(function={"name": "f", "arguments": 5}),
    "arguments a list": _call(function={"name": "f", "arguments": [1]}),
    "id an object": _call(id={"x": 1}, function={"name": "f", "arguments": {}}),
    "done a string": _line({"message": {"role": "assistant", "content": ""}, "done": "perhaps"}),
    "done a number": _line({"message": {"role": "assistant", "content": ""}, "done": 1}),
    "done_reason a number": done_chunk(done_reason=3),
    "eval_count a string": done_chunk(eval_count="12"),
    "prompt_eval_count a float": done_chunk(prompt_eval_count=2.5),
    "eval_duration a string": done_chunk(eval_duration="453ms"),
    "nested 100,000 deep": b"[" * 100_000 + b"]" * 100_000 + b"\n",
    "content nested 100,000 deep": b'{"message": {"content": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}\n",
    "not JSON": b'{"message": {"content": "tru\n',
    "not UTF-8": b'{"message": {"content": "\xff\xfe"}, "done": false}\n',
}


@pytest.mark.parametrize("shape", SHAPES)
async def test_a_chunk_not_in_ollamas_format_is_a_response_format_error(
    ollama_server: FakeOllamaServer, read_path: str, shape: str
) -> None:
    ollama_server.add(raw(chunk(content="a "), SHAPES[shape], chunk(content="b"), done_chunk()))
    async with agent_for(ollama_server) as agent:
        if read_path == "lean":
            error = await fails(agent, ollama_server, ResponseFormatError)
            assert "not Ollama's format" in str(error) or "malformed" in str(error)
            assert len(str(error)) < 1_000
        else:  # the client's pydantic models take some shapes ("done": 1 is true to them): typed, either way
            history = await warm_up(agent, ollama_server)
            try:
                await agent.chat("question")
            except ProviderError:
                assert await agent.history() == history
                assert await ollama_server.wait_no_connections() == 0


async def test_usage_that_is_negative_or_not_finite_counts_as_zero(ollama_server: FakeOllamaServer) -> None:
    final = done_chunk(prompt_eval_count=-5, eval_count=-1, load_duration=-7, eval_duration=-1.5)
    final = final.replace(b'"prompt_eval_duration":342000000', b'"prompt_eval_duration":Infinity')
    ollama_server.add(raw(chunk(content="ok"), final))
    async with agent_for(ollama_server) as agent:
        events = [e async for e in agent.chat("x").events()]
        records = agent.metrics()
    call = next(e for e in events if isinstance(e, ModelCallFinished))
    u = call.usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (0, 0, 0)
    assert (u.load_duration, u.prompt_eval_duration, u.eval_duration) == (0.0, 0.0, 0.0)
    assert all(getattr(r, "prompt_tokens", 0) >= 0 and getattr(r, "completion_tokens", 0) >= 0 for r in records)


# -- the `done` chunk ---------------------------------------------------------------------------------------


@both
@pytest.mark.parametrize("together", [False, True], ids=["separate", "one-read"])
async def test_nothing_after_the_done_chunk_is_read_as_the_answer(
    ollama_server: FakeOllamaServer, together: bool
) -> None:
    after = [chunk(content=" injected"), done_chunk(), b"garbage that is not JSON\n"]
    pieces = [chunk(content="real"), done_chunk(), *after]
    ollama_server.add(raw(b"".join(pieces)) if together else raw(*pieces))
    async with agent_for(ollama_server) as agent:
        assert await agent.chat("x") == "real"
        assert [m.content for m in await agent.history()] == ["x", "real"]
        assert await ollama_server.wait_no_connections() == 0  # not read on, and not reused either


@both
async def test_a_server_that_holds_the_connection_after_done_does_not_hold_the_answer(
    ollama_server: FakeOllamaServer,
) -> None:
    ollama_server.add(raw(chunk(content="real"), done_chunk(), hold_after_raw=True))
    async with agent_for(ollama_server, timeout=30) as agent:
        started = time.monotonic()
        assert await agent.chat("x") == "real"
        assert time.monotonic() - started < 3
        assert await ollama_server.wait_no_connections() == 0  # the held connection was given up


async def test_a_well_behaved_server_keeps_its_connection_after_done(ollama_server: FakeOllamaServer) -> None:
    async with agent_for(ollama_server) as agent:
        await agent.chat("one")
        await agent.chat("two")
    first, second = ollama_server.requests
    assert first.peer == second.peer  # read to its end, the connection went back to the pool


# -- secrets -----------------------------------------------------------------------------------------------


def _key() -> str:
    return f"olk-{uuid.uuid4().hex}"  # unique: not registered by another test


@both
async def test_an_api_key_echoed_in_an_error_body_is_masked(ollama_server: FakeOllamaServer) -> None:
    key = _key()
    ollama_server.add(OllamaScript(status=401, error=f"invalid api key {key}; ask your admin"))
    async with agent_for(ollama_server, api_key=key) as agent:
        with pytest.raises(AuthenticationError) as e:
            await agent.chat("x")
    assert key not in str(e.value) and key not in repr(e.value.args)
    assert "invalid api key *** ; ask your admin".replace(" ;", ";") in str(e.value)


@both
@pytest.mark.parametrize("how", ["secrets", "bearer header"])
async def test_the_adapter_masks_the_key_it_was_given(ollama_server: FakeOllamaServer, how: str) -> None:
    key = _key()
    headers = {"authorization": f"Bearer {key}"} if how == "bearer header" else {}
    client = ollama_client(host=ollama_server.url, timeout=10, headers=headers)
    model = OllamaChatModel(client, host=ollama_server.url, max_retries=0, secrets=(key,) if how == "secrets" else ())
    ollama_server.add(OllamaScript(text=["a"], in_stream_error=f"runner died holding {key}"))
    ollama_server.add(OllamaScript(status=403, error=f"forbidden: {key}"))
    request = ChatRequest(model="llama3.2", messages=[UserMessage(content="x")])
    try:
        for expected in (ProviderUnavailableError, AuthenticationError):
            with pytest.raises(expected) as e:
                async for _ in model.stream(request):
                    pass
            assert key not in str(e.value) and "***" in str(e.value)
    finally:
        await model.aclose()


@both
async def test_a_password_in_the_base_url_is_never_shown(ollama_server: FakeOllamaServer) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    base_url = f"http://alice:{password}@127.0.0.1:{ollama_server.port}"
    ollama_server.add(OllamaScript(status=502, error=f"upstream refused {password}"))
    async with agent_for(ollama_server, base_url=base_url) as agent:
        assert agent._model.host == ollama_server.url  # type: ignore[attr-defined]
        with pytest.raises(ProviderUnavailableError) as e:
            await agent.chat("x")
    async with agent_for(ollama_server, base_url=base_url, model="mistral") as agent:
        with pytest.raises(ModelNotFoundError) as missing:  # the message names the host
            await agent.chat("x")
    for error in (e.value, missing.value):
        assert password not in str(error) and "alice" not in str(error)
    assert f"server at {ollama_server.url};" in str(missing.value)
    # and the credentials are sent, as HTTP basic auth, the way curl and Go's client send them
    sent = ollama_server.requests[0].headers.get("Authorization", "")
    assert sent == "Basic " + base64.b64encode(f"alice:{password}".encode()).decode()


# -- error bodies ------------------------------------------------------------------------------------------


@both
@pytest.mark.parametrize(
    "body", [{"error": "boom: the runner crashed"}, {"error": {"message": "boom: the runner crashed"}}]
)
async def test_an_error_keeps_its_text(ollama_server: FakeOllamaServer, body: dict[str, Any]) -> None:
    ollama_server.add(OllamaScript(status=500, raw_error_body=json.dumps(body), raw_content_type="application/json"))
    async with agent_for(ollama_server) as agent:
        with pytest.raises(ProviderUnavailableError) as e:
            await agent.chat("x")
    assert e.value.message == "Ollama: boom: the runner crashed" and e.value.status_code == 500


@both
@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
async def test_a_huge_error_message_is_cut(ollama_server: FakeOllamaServer, as_json: bool) -> None:
    text = "boom " * 1_000_000
    body = json.dumps({"error": text}) if as_json else text
    ollama_server.add(OllamaScript(status=400, raw_error_body=body, raw_content_type="text/plain"))
    async with agent_for(ollama_server) as agent:
        with pytest.raises(ProviderError) as e:
            await agent.chat("x")
    assert e.value.message.startswith("Ollama: boom boom")  # the error's text, even from JSON cut off unread
    assert len(e.value.message) <= MAX_ERROR_MESSAGE + 50


@cache
def gzip_bomb() -> bytes:
    """About 1 MB of gzip that unpacks to 256 MiB of JSON."""
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)
    block = b"a" * MIB
    parts = [packer.compress(b'{"error": "'), *(packer.compress(block) for _ in range(256))]
    return b"".join([*parts, packer.compress(b'"}'), packer.flush()])


async def test_a_gzip_bomb_in_an_error_body_is_not_read_whole(ollama_server: FakeOllamaServer) -> None:
    bomb = gzip_bomb()
    assert len(bomb) < 2 * MIB
    ollama_server.add(raw(bomb, status=500, raw_content_type="application/json", headers={"Content-Encoding": "gzip"}))
    async with agent_for(ollama_server) as agent:
        await warm_up(agent, ollama_server)
        tracemalloc.start()
        try:
            with pytest.raises(ProviderUnavailableError) as e:
                await agent.chat("x")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert await ollama_server.wait_no_connections() == 0  # not read to its end: the connection is dropped
    assert peak < 16 * MIB, f"{peak / MIB:.0f} MiB for an error body"
    assert e.value.status_code == 500 and e.value.message.startswith("Ollama: ")
    assert len(e.value.message) <= MAX_ERROR_MESSAGE + 50


# -- not NDJSON at all ---------------------------------------------------------------------------------------


async def test_a_200_html_page_names_its_content_type_and_how_it_starts(ollama_server: FakeOllamaServer) -> None:
    ollama_server.add(OllamaScript(status=200, raw_error_body=LOGIN_PAGE, raw_content_type="text/html"))
    async with agent_for(ollama_server) as agent:
        error = await fails(agent, ollama_server, ResponseFormatError)
    assert "text/html" in str(error) and "<!DOCTYPE html><html><head><title>Proxy" in str(error)
    assert "malformed" not in str(error)


async def test_a_200_of_another_content_type_that_is_not_ndjson_names_it(ollama_server: FakeOllamaServer) -> None:
    ollama_server.add(raw(b"Service temporarily in maintenance\n", raw_content_type="text/plain"))
    async with agent_for(ollama_server) as agent:
        error = await fails(agent, ollama_server, ResponseFormatError)
    assert "text/plain" in str(error) and "Service temporarily in maintenance" in str(error)


# -- the chunk reader, fed anything JSON can be ---------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=8,
)


def _shaped(keys: tuple[str, ...], values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with some of Ollama's keys, each holding anything."""
    return st.fixed_dictionaries({}, optional=dict.fromkeys(keys, values))


FUNCTIONS = _shaped(("name", "arguments"), JSON | st.text(max_size=8) | st.dictionaries(st.text(max_size=3), JSON))
CALLS = _shaped(("id", "function"), FUNCTIONS | JSON)
MESSAGES = _shaped(("role", "content", "thinking", "tool_calls"), st.lists(CALLS | JSON, max_size=3) | JSON)
USAGE = ("prompt_eval_count", "eval_count", "load_duration", "prompt_eval_duration", "eval_duration")
CHUNKS = _shaped(("message", "done", "done_reason", "error", *USAGE), MESSAGES | JSON) | JSON


def _mostly(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually a well-formed value, sometimes anything: streams that go wrong in one place, deep inside."""
    return st.integers(0, 9).flatmap(lambda n: JSON if n == 0 else good)


TEXT = st.text(max_size=8)
FUNCTION = st.fixed_dictionaries(
    {"name": _mostly(TEXT), "arguments": _mostly(st.dictionaries(st.text(max_size=3), JSON, max_size=3) | TEXT)}
)
CALL = st.fixed_dictionaries({"function": _mostly(FUNCTION)}, optional={"id": _mostly(TEXT)})
MESSAGE = st.fixed_dictionaries(
    {"role": st.just("assistant"), "content": _mostly(TEXT)},
    optional={"thinking": _mostly(TEXT), "tool_calls": _mostly(st.lists(_mostly(CALL), max_size=2))},
)
NUMBER = st.integers(min_value=-(10**6), max_value=10**15) | st.floats()
DONE = st.fixed_dictionaries(
    {"message": _mostly(MESSAGE), "done": st.just(True)},
    optional={
        "done_reason": _mostly(TEXT),
        **dict.fromkeys(USAGE[:2], _mostly(st.integers(min_value=-(10**6), max_value=10**15))),
        **dict.fromkeys(USAGE[2:], _mostly(NUMBER)),
    },
)
STREAMS = st.tuples(
    st.lists(
        _mostly(st.fixed_dictionaries({"message": _mostly(MESSAGE), "done": _mostly(st.just(False))})), max_size=5
    ),
    _mostly(DONE),
).map(lambda stream: [*stream[0], stream[1]])


def _reader() -> _ChunkReader:
    return _ChunkReader(OllamaChatModel(None, host="http://u:pw-123456789@h:1"), "llama3.2")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=STREAMS | st.lists(CHUNKS, max_size=6))
def test_any_json_in_any_shape_gives_events_or_a_typed_error(chunks: list[Any]) -> None:
    reader = _reader()
    events: list[Any] = []
    try:
        for part in chunks:
            out = reader.feed(part)
            assert isinstance(out, list)
            events += out
        events += reader.finish()
    except ProviderError as e:
        assert isinstance(e, ResponseFormatError | ProviderUnavailableError), repr(e)
        assert e.provider == "ollama" and "pw-123456789" not in str(e)
        return
    for event in events:  # what passes is well typed
        if isinstance(event, TextDelta | ThinkingDelta):
            assert isinstance(event.text, str) and event.text
        elif isinstance(event, ToolCallDelta):
            assert isinstance(event.name, str) and isinstance(event.arguments_delta, str)
        elif isinstance(event, ToolCallReady):
            assert isinstance(event.call.arguments, str) and isinstance(event.call.id, str)
        else:
            assert isinstance(event, ResponseDone)
            u = event.usage
            assert isinstance(u.prompt_tokens, int) and u.prompt_tokens >= 0 and u.completion_tokens >= 0
            assert all(0 <= d < float("inf") for d in (u.load_duration, u.prompt_eval_duration, u.eval_duration))


def test_arguments_too_deep_to_write_back_are_a_response_format_error() -> None:
    deep: dict[str, Any] = {}
    for _ in range(100_000):
        deep = {"a": deep}
    with pytest.raises(ResponseFormatError, match="arguments"):
        _reader().feed(
            {
                "message": {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"function": {"name": "f", "arguments": deep}}],
                }
            }
        )


def test_a_well_formed_stream_through_the_reader() -> None:
    reader = _reader()
    events = [
        *reader.feed({"message": {"role": "assistant", "content": "", "thinking": "hm"}, "done": False}),
        *reader.feed({"message": {"role": "assistant", "content": "hi"}, "done": False}),
        *reader.feed(
            {
                "message": {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}],
                },
                "done": False,
            }
        ),
        *reader.feed(json.loads(done_chunk())),
        *reader.feed({"message": {"role": "assistant", "content": "after done"}, "done": False}),
        *reader.finish(),
    ]
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["ThinkingDelta", "TextDelta", "ToolCallDelta", "ToolCallReady", "ResponseDone"]
    done = events[-1]
    assert isinstance(done, ResponseDone) and done.usage.prompt_tokens == 26 and done.finish_reason == "stop"


@pytest.mark.parametrize(
    ("cut", "start"),
    [
        ('{"error": "boom", "details": {"trace": "aaa', "boom"),
        ('{"error": {"message": "caf\\u00e9 ferm\\u00', "café ferm"),  # an escape cut in two is left out
        ('  {"error":"line one\\nline', "line one\nline"),
        ('{"detail": "boom', None),
    ],
)
def test_the_error_of_a_json_body_cut_off_is_still_read(cut: str, start: str | None) -> None:
    assert _error_start(cut) == start

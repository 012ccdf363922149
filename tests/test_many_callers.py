"""One agent, many callers: stateless calls, batches, the bounded memory store, and the defects a new user hit."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import AsyncIterator
from typing import Any

import pytest

from createagents import (
    AgentClosedError,
    ConfigurationError,
    CreateAgent,
    CreateAgentsError,
    EventHandler,
    InMemoryConversationStore,
    MaxTurnsExceededError,
    Message,
    ProviderError,
    ProviderUnavailableError,
    RateLimitError,
    ReplyConsumedError,
    RunEvent,
    RunFailed,
    ToolError,
    ToolSpec,
)
from createagents.adapters._secrets import mask_secrets
from createagents.domain.messages import AssistantMessage, SystemMessage, UserMessage
from createagents.testing import FunctionModel


def echo_model(delay: float = 0.0) -> FunctionModel:
    async def answer(messages: list[Message], tools: list[ToolSpec]) -> AsyncIterator[object]:
        if delay:
            await asyncio.sleep(delay)
        yield f"re {messages[-1].content}"

    return FunctionModel(answer)


# -- stateless calls ---------------------------------------------------------


async def test_ask_reads_and_writes_no_history() -> None:
    model = echo_model()
    agent = CreateAgent(provider=model)
    await agent.chat("remember me")
    assert await agent.ask("one-shot") == "re one-shot"
    assert [m.content for m in model.requests[-1].messages] == ["one-shot"]  # the history was not read
    assert [m.content for m in await agent.history()] == ["remember me", "re remember me"]  # nor written
    reply = agent.ask("stream me")
    assert [t async for t in reply] == ["re stream me"] and reply.text == "re stream me"
    events = [e.kind async for e in agent.ask("events").events()]
    assert events[0] == "run_started" and events[-1] == "run_finished"


async def test_ask_in_parallel_keeps_nothing() -> None:
    store = InMemoryConversationStore()
    agent = CreateAgent(provider=echo_model(delay=0.2), store=store)
    started = asyncio.get_running_loop().time()
    answers = await asyncio.gather(*(agent.ask(f"q{i}") for i in range(10)))
    assert asyncio.get_running_loop().time() - started < 1.0  # parallel, not 10 x 0.2 s
    assert answers == [f"re q{i}" for i in range(10)] and len(store) == 0


# -- batches -----------------------------------------------------------------


async def test_chat_many_keeps_input_order_and_the_concurrency_limit() -> None:
    active = peak = 0

    async def model(messages: list[Message], tools: list[ToolSpec]) -> AsyncIterator[object]:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        n = int(str(messages[-1].content))
        await asyncio.sleep(0.001 * (n % 5))  # finish out of order
        active -= 1
        yield f"#{n}"

    agent = CreateAgent(provider=FunctionModel(model))
    seen: list[tuple[int, int]] = []
    answers = await agent.chat_many(
        [str(i) for i in range(40)], concurrency=3, progress=lambda d, t: seen.append((d, t))
    )
    assert answers == [f"#{i}" for i in range(40)]
    assert peak == 3
    assert seen == [(i, 40) for i in range(1, 41)]
    assert await agent.history() == []  # stateless


async def test_chat_many_raises_the_first_failure_and_cancels_the_rest() -> None:
    started: list[str] = []

    async def model(messages: list[Message], tools: list[ToolSpec]) -> AsyncIterator[object]:
        text = str(messages[-1].content)
        started.append(text)
        if text == "bad":
            raise RateLimitError("slow down", provider="function")
        await asyncio.sleep(0.05)
        yield "ok"

    agent = CreateAgent(provider=FunctionModel(model))
    with pytest.raises(RateLimitError):
        await agent.chat_many(["a", "bad", *["x"] * 50], concurrency=2)
    assert len(started) < 10  # the rest was not sent
    results = await agent.chat_many(["a", "bad", "c"], concurrency=2, return_exceptions=True)
    assert results[0] == "ok" and isinstance(results[1], RateLimitError) and results[2] == "ok"


async def test_chat_many_async_progress_and_bad_arguments() -> None:
    agent = CreateAgent(provider=echo_model())
    calls: list[int] = []

    async def progress(done: int, total: int) -> None:
        calls.append(done)

    assert await agent.chat_many(("a", "b"), progress=progress) == ["re a", "re b"]
    assert calls == [1, 2]
    assert await agent.chat_many([]) == []
    for bad, match in [
        ({"prompts": "abc"}, "list of str"),
        ({"prompts": ["ok", ""]}, "empty"),
        ({"prompts": ["ok", 3]}, "must be a str"),
        ({"prompts": ["ok"], "concurrency": 0}, "concurrency"),
        ({"prompts": ["ok"], "progress": 5}, "progress"),
    ]:
        with pytest.raises(ConfigurationError, match=match):
            await agent.chat_many(**bad)  # type: ignore[arg-type]


async def test_chat_many_is_cancelled_cleanly() -> None:
    agent = CreateAgent(provider=echo_model(delay=10))
    task = asyncio.create_task(agent.chat_many(["a"] * 20, concurrency=4))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task  # the autouse fixture then checks that no worker is left


# -- the bounded in-memory store -----------------------------------------------


async def test_memory_store_evicts_the_least_recently_used() -> None:
    store = InMemoryConversationStore(max_conversations=2)
    agent = CreateAgent(provider=echo_model(), store=store)
    await agent.conversation("a").chat("1")
    await agent.conversation("b").chat("2")
    await agent.conversation("a").history()  # a is now the most recent
    await agent.conversation("c").chat("3")
    assert await agent.conversation("b").history() == []
    assert len(await agent.conversation("a").history()) == 2 and len(store) == 2


async def test_memory_store_never_evicts_a_conversation_with_a_turn_in_flight() -> None:
    release = asyncio.Event()

    async def model(messages: list[Message], tools: list[ToolSpec]) -> AsyncIterator[object]:
        if messages[-1].content == "slow":
            await release.wait()
        yield "ok"

    store = InMemoryConversationStore(max_conversations=1)
    agent = CreateAgent(provider=FunctionModel(model), store=store)
    await agent.conversation("busy").chat("first")
    slow = asyncio.create_task(agent.conversation("busy").chat("slow"))
    await asyncio.sleep(0.01)
    for i in range(3):
        await agent.conversation(f"other{i}").chat("x")  # over the limit: "busy" is held, others go
    release.set()
    await slow
    assert [m.content for m in await agent.conversation("busy").history()] == ["first", "ok", "slow", "ok"]


async def test_memory_store_forgets_idle_conversations() -> None:
    now = [0.0]
    store = InMemoryConversationStore(idle_ttl=60, clock=lambda: now[0])
    agent = CreateAgent(provider=echo_model(), store=store)
    await agent.conversation("old").chat("1")
    now[0] = 30
    await agent.conversation("young").chat("2")
    now[0] = 70  # "old" idle for 70 s, "young" for 40 s
    await agent.conversation("new").chat("3")
    assert len(store) == 2
    assert await agent.conversation("old").history() == [] and len(await agent.conversation("young").history()) == 2
    now[0] = 200
    assert await agent.conversation("young").history() == []  # expired on read, too


@pytest.mark.parametrize(
    "kwargs", [{"max_conversations": 0}, {"max_conversations": 1.5}, {"idle_ttl": 0}, {"idle_ttl": float("nan")}]
)
def test_memory_store_bad_limits(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        InMemoryConversationStore(**kwargs)


async def test_history_max_size_trims_what_is_sent_and_the_store_keeps_it_all() -> None:
    model = echo_model()
    agent = CreateAgent(provider=model, history_max_size=3)
    await agent.chat("one")
    await agent.chat("two")
    await agent.chat("three")  # five messages before it: the first turn goes, whole, then the second
    assert [m.content for m in model.requests[-1].messages] == ["two", "re two", "three"]
    assert len(await agent.history()) == 6  # stored whole


# -- defects reported by a new user --------------------------------------------


def test_short_keys_are_not_masked_inside_words_and_real_keys_are() -> None:
    assert mask_secrets("SocketTimeoutError: Timeout on reading data from socket", ["k"]) == (
        "SocketTimeoutError: Timeout on reading data from socket"
    )
    key = "sk-proj-0123456789abcdef"
    assert mask_secrets(f"Incorrect API key provided: {key}.", [key]) == "Incorrect API key provided: ***."
    assert mask_secrets(f"x{key}y", [key]) == f"x{key}y"  # not a whole token: some other string


async def test_a_provider_quoting_the_key_back_is_masked() -> None:
    from tests.adapters.conftest import SECRET
    from tests.fakes.openai_server import FakeOpenAIServer, Script

    server = FakeOpenAIServer(api_key=SECRET)
    await server.start()
    try:
        server.add(Script(status=401, error={"message": f"Incorrect API key provided: {SECRET}", "code": "x"}))
        async with CreateAgent(provider="openai", model="m", base_url=server.v1, api_key=SECRET) as agent:
            with pytest.raises(ProviderError) as e:
                await agent.chat("hi")
        assert SECRET not in str(e.value) and "***" in str(e.value)
        async with CreateAgent(provider="openai", model="m", base_url="http://127.0.0.1:9/v1", api_key="k") as agent:
            with pytest.raises(ProviderUnavailableError) as e2:
                await agent.chat("hi")
        assert "***" not in str(e2.value)  # a one-letter key masks nothing
    finally:
        await server.stop()


async def test_a_reply_never_consumed_warns_like_a_coroutine() -> None:
    model = echo_model()
    agent = CreateAgent(provider=model)
    with pytest.warns(RuntimeWarning, match="never awaited"):
        agent.chat("forgotten")
        gc.collect()
    assert model.requests == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        await agent.chat("awaited")
        task = asyncio.create_task(agent.chat("cancelled before it ran"))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with agent.chat("closed unread"):
            pass
        gc.collect()


class Recorder(EventHandler):
    def __init__(self) -> None:
        self.failed: list[RunFailed] = []

    async def on_run_failed(self, event: RunFailed) -> None:
        self.failed.append(event)


@pytest.mark.parametrize("how", ["cancel", "wait_for", "break", "aclose", "events_cancel"])
async def test_handlers_observers_and_events_see_a_cancellation(how: str) -> None:
    observed: list[RunEvent] = []
    agent = CreateAgent(provider=echo_model(delay=10) if how != "break" else "test", observers=[observed.append])
    handler = Recorder()
    reply = agent.chat("slow" if how != "break" else "one two three", handler=handler)
    events_seen: list[RunEvent] = []
    if how == "cancel":
        task = asyncio.create_task(reply)
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    elif how == "wait_for":
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reply, 0.05)
    elif how == "break":
        async for _ in reply:
            break
        await reply.aclose()
    elif how == "aclose":
        stream = reply.events()
        await anext(stream)
        await stream.aclose()
    else:

        async def consume() -> None:
            async for event in reply.events():
                events_seen.append(event)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert isinstance(events_seen[-1], RunFailed) and events_seen[-1].cancelled
    assert len(handler.failed) == 1 and handler.failed[0].cancelled
    assert isinstance(handler.failed[0].error, asyncio.CancelledError)
    failed = [e for e in observed if isinstance(e, RunFailed)]
    assert len(failed) == 1 and failed[0].cancelled
    assert await agent.history() == []


async def test_a_failure_is_not_reported_as_a_cancellation() -> None:
    async def broken(messages: list[Message], tools: list[ToolSpec]) -> AsyncIterator[object]:
        raise ProviderUnavailableError("down")
        yield ""

    handler = Recorder()
    with pytest.raises(ProviderUnavailableError):
        await CreateAgent(provider=FunctionModel(broken)).chat("x", handler=handler)
    assert len(handler.failed) == 1 and not handler.failed[0].cancelled


async def test_finishing_then_stopping_reports_no_cancellation() -> None:
    handler = Recorder()
    agent = CreateAgent(provider=echo_model())
    async for event in agent.chat("x", handler=handler).events():
        if event.kind == "run_finished":
            break
    assert handler.failed == [] and len(await agent.history()) == 2


@pytest.mark.parametrize("message", ["", "   ", "\n\t"])
async def test_empty_messages_are_refused_before_any_request(message: str) -> None:
    model = echo_model()
    agent = CreateAgent(provider=model)
    for send in (agent.chat, agent.ask, agent.conversation("c").chat):
        with pytest.raises(ConfigurationError, match="empty"):
            send(message)
    with pytest.raises(ConfigurationError, match="empty"):
        agent.chat_sync(message)
    assert model.requests == []


def test_every_error_has_a_message() -> None:
    errors: list[CreateAgentsError] = [
        ConfigurationError("bad"),
        ToolError("bad", tool_name="t"),
        MaxTurnsExceededError("bad"),
        ReplyConsumedError("bad"),
        AgentClosedError("bad"),
        ProviderUnavailableError("bad", provider="p"),
    ]
    assert [e.message for e in errors] == ["bad"] * 6
    assert CreateAgentsError().message == ""


async def test_tools_none_means_no_tools() -> None:
    agent = CreateAgent(provider="test", tools=None)
    assert agent.tools == () and await agent.chat("hi")


async def test_clear_history_works_with_and_without_await() -> None:
    agent = CreateAgent(provider=echo_model())
    await agent.chat("one")
    agent.clear_history()  # the shape the original package used: no await
    await asyncio.sleep(0)
    assert await agent.history() == []
    await agent.chat("two")
    await agent.clear_history()
    assert await agent.history() == []


def test_clear_history_in_a_plain_script() -> None:
    agent = CreateAgent(provider=echo_model())
    agent.chat_sync("one")
    agent.clear_history()  # no loop running: it clears before returning
    agent.chat_sync("two")
    assert [m.content for m in agent._runtime.sync.run(agent.history())] == ["two", "re two"]
    agent.close()


def test_handler_methods_that_match_no_event_are_refused() -> None:
    class Ported(EventHandler):
        def on_message_delta(self, event: Any) -> None: ...
        def on_done(self, event: Any) -> None: ...
        def on_text_delta(self, event: Any) -> None: ...

    with pytest.raises(ConfigurationError) as e:
        Ported()
    assert "on_done, on_message_delta" in str(e.value) and "text_delta" in str(e.value)

    class Fine(EventHandler):
        def on_run_finished(self, event: Any) -> None: ...
        def helper(self) -> None: ...

    assert isinstance(Fine(), EventHandler)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"timeout": float("nan")}, "timeout"),
        ({"timeout": float("inf")}, "timeout"),
        ({"tool_timeout": float("nan")}, "tool_timeout"),
    ],
)
def test_non_finite_limits_are_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        CreateAgent(provider="test", **kwargs)


# -- a served request's history and settings ------------------------------------


async def test_ask_with_a_given_history_and_per_call_settings() -> None:
    model = echo_model()
    agent = CreateAgent(provider=model, instructions="Be brief.", config={"temperature": 0.2, "max_tokens": 50})
    earlier = [UserMessage(content="hi"), AssistantMessage(content="hello"), SystemMessage(content="client rule")]
    assert await agent.ask("again", history=earlier, config={"temperature": 1.5}) == "re again"
    request = model.requests[-1]
    assert [m.content for m in request.messages] == ["Be brief.", "hi", "hello", "client rule", "again"]
    assert request.settings.temperature == 1.5 and request.settings.max_tokens == 50  # overridden, kept
    assert agent.settings.temperature == 0.2  # the agent's own settings are untouched
    await agent.chat("x", config={"seed": 7})
    assert model.requests[-1].settings.seed == 7 and await agent.history() != []
    assert await agent.ask("plain") == "re plain" and model.requests[-1].settings.seed is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"history": "hi"}, "history"),
        ({"history": [{"role": "user", "content": "x"}]}, "history"),
        ({"config": {"temperature": 9}}, "temperature"),
        ({"config": {"colour": 1}}, "unknown setting"),
    ],
)
def test_ask_refuses_bad_history_and_settings(kwargs: dict[str, Any], match: str) -> None:
    model = echo_model()
    with pytest.raises(ConfigurationError, match=match):
        CreateAgent(provider=model).ask("x", **kwargs)
    assert model.requests == []


def test_per_call_settings_are_checked_for_the_provider() -> None:
    agent = CreateAgent(provider="openai", model="gpt-4o-mini", api_key="sk-abcdefgh12345678")
    with pytest.raises(ConfigurationError, match="top_k"):
        agent.ask("x", config={"top_k": 3})


async def test_ask_takes_history_from_a_generator() -> None:
    model = echo_model()
    earlier = (m for m in [UserMessage(content="hi"), AssistantMessage(content="hello")])
    await CreateAgent(provider=model).ask("again", history=earlier)
    assert [m.content for m in model.requests[-1].messages] == ["hi", "hello", "again"]

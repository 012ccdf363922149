"""The agent loop, replies and conversations, driven through the facade on scripted models."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from createagents import (
    AssistantMessage,
    CreateAgent,
    EventHandler,
    MaxTurnsExceededError,
    Message,
    ModelCallFinished,
    ProviderUnavailableError,
    ReplyConsumedError,
    ResponseDone,
    RunFailed,
    RunFinished,
    RunStarted,
    TextDelta,
    ToolCallDelta,
    ToolCallFinished,
    ToolCallStarted,
    ToolMessage,
    ToolSpec,
    Usage,
    UserMessage,
)
from createagents.testing import FunctionModel, tool_call


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def adder_script(messages: list[Message], tools: list[ToolSpec]) -> object:
    """Asks for add(2, 3) then reports the result."""
    last = messages[-1]
    if isinstance(last, UserMessage):
        return [tool_call("add", a=2, b=3)]
    assert isinstance(last, ToolMessage)
    return f"The sum is {last.content}."


async def test_the_user_contract_on_the_test_model() -> None:
    agent = CreateAgent(provider="test", model="test", instructions="Be brief.", tools=[add])
    text = await agent.chat("What is 2 + 3?")
    assert isinstance(text, str) and text == "Tool results: add -> 2."
    tokens = [t async for t in agent.chat("Again")]
    assert len(tokens) > 1 and "".join(tokens) == text
    assert text.usage.total_tokens > 0 and [c.name for c in text.tool_calls] == ["add"]


async def test_tool_round_trip_events_and_history() -> None:
    model = FunctionModel(adder_script)
    agent = CreateAgent(provider=model, tools=[add], instructions="sys")
    reply = agent.chat("2+3?")
    events = [e async for e in reply.events()]
    kinds = [e.kind for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.index("tool_call_delta") < kinds.index("tool_call_started") < kinds.index("tool_call_finished")
    assert next(e for e in events if isinstance(e, ToolCallFinished)).result == "5"
    assert reply.text == "The sum is 5." and reply.tool_calls[0].name == "add"
    history = await agent.history()
    assert [m.role for m in history] == ["user", "assistant", "tool", "assistant"]
    assert isinstance(history[1], AssistantMessage) and history[1].tool_calls[0].name == "add"
    # the second model call saw the system prompt, the user message, the call and its result, in order
    assert [m.role for m in model.requests[1].messages] == ["system", "user", "assistant", "tool"]


async def test_model_call_events_carry_usage_and_timing() -> None:
    agent = CreateAgent(provider="test", tools=[add])
    events = [e async for e in agent.chat("hi").events()]
    calls = [e for e in events if isinstance(e, ModelCallFinished)]
    assert len(calls) == 2 and all(c.error is None for c in calls)
    assert all(c.time_to_first_token is not None and c.time_to_first_token <= c.latency for c in calls)
    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert finished.usage == calls[0].usage + calls[1].usage


async def test_tool_failure_goes_back_to_the_model_and_the_run_recovers() -> None:
    def broken(x: int) -> int:
        raise ValueError("bad x")

    def script(messages: list[Message], tools: list[ToolSpec]) -> object:
        last = messages[-1]
        if isinstance(last, UserMessage):
            return [tool_call("broken", x=1), tool_call("missing"), tool_call("broken", x="nope")]
        results = [m for m in messages if isinstance(m, ToolMessage)]
        return " | ".join(r.content for r in results)

    agent = CreateAgent(provider=FunctionModel(script), tools=[broken])
    text = await agent.chat("go")
    assert "tool 'broken' failed: ValueError: bad x" in text
    assert "unknown tool 'missing'" in text
    assert "invalid arguments for 'broken'" in text
    assert all(m.is_error for m in await agent.history() if isinstance(m, ToolMessage))


async def test_max_turns_raises_with_the_partial_run_and_keeps_history_clean() -> None:
    def forever(messages: list[Message], tools: list[ToolSpec]) -> object:
        return AssistantMessage(content="thinking... ", tool_calls=(tool_call("add", a=1, b=1),))

    agent = CreateAgent(provider=FunctionModel(forever), tools=[add], max_turns=3)
    with pytest.raises(MaxTurnsExceededError) as e:
        await agent.chat("loop")
    assert e.value.text == "thinking... " * 3
    assert [m.role for m in e.value.messages] == ["user"] + ["assistant", "tool"] * 3
    assert await agent.history() == []


async def test_provider_failure_leaves_history_unchanged_and_reports_run_failed() -> None:
    calls = 0

    async def flaky(messages: list[Message], tools: list[ToolSpec]) -> AsyncIterator[object]:
        nonlocal calls
        calls += 1
        yield "partial "
        if calls == 2:
            raise ProviderUnavailableError("connection dropped", provider="fake")
        yield "answer"

    agent = CreateAgent(provider=FunctionModel(flaky))
    assert await agent.chat("one") == "partial answer"
    before = await agent.history()
    reply = agent.chat("two")
    seen = []
    with pytest.raises(ProviderUnavailableError):
        async for event in reply.events():
            seen.append(event)
    assert isinstance(seen[-1], RunFailed) and isinstance(seen[-1].error, ProviderUnavailableError)
    failed_call = [e for e in seen if isinstance(e, ModelCallFinished)]
    assert failed_call == []  # a failed call is reported to observers, not as a finished call event
    assert await agent.history() == before
    assert isinstance(reply.error, ProviderUnavailableError)
    with pytest.raises(RuntimeError, match="failed"):
        _ = reply.text


async def test_observers_see_failed_model_calls_with_their_error_type() -> None:
    seen: list[object] = []

    async def down(messages: list[Message], tools: list[ToolSpec]) -> AsyncIterator[object]:
        raise ProviderUnavailableError("down")
        yield  # pragma: no cover

    agent = CreateAgent(provider=FunctionModel(down), observers=[seen.append])
    with pytest.raises(ProviderUnavailableError):
        await agent.chat("x")
    kinds = [getattr(e, "kind", None) for e in seen]
    assert kinds == ["run_started", "message_started", "model_call_finished", "run_failed"]
    assert isinstance(seen[2], ModelCallFinished) and seen[2].error == "ProviderUnavailableError"


async def test_a_reply_is_consumed_once() -> None:
    agent = CreateAgent(provider="test")
    reply = agent.chat("hi")
    assert await reply == "You said: hi"
    with pytest.raises(ReplyConsumedError):
        await reply
    with pytest.raises(ReplyConsumedError):
        [t async for t in reply]
    assert reply.text == "You said: hi"


def slow_stream(closed: asyncio.Event, started: asyncio.Event):  # type: ignore[no-untyped-def]
    async def stream(messages: list[Message], tools: list[ToolSpec]) -> AsyncIterator[object]:
        try:
            for i in range(1000):
                if i == 2:
                    started.set()
                yield f"w{i} "
                await asyncio.sleep(0.01)
            yield ResponseDone(finish_reason="stop", usage=Usage(completion_tokens=1000))
        finally:
            closed.set()

    return stream


async def test_aclose_mid_stream_closes_the_provider_stream_and_keeps_history() -> None:
    closed, started = asyncio.Event(), asyncio.Event()
    agent = CreateAgent(provider=FunctionModel(slow_stream(closed, started)))
    async with agent.chat("long story") as reply:
        async for token in reply:
            if token == "w3 ":
                break
    assert closed.is_set()
    assert await agent.history() == []
    assert reply.done and isinstance(reply.error, asyncio.CancelledError)  # closed early counts as cancelled
    with pytest.raises(RuntimeError, match="failed"):
        reply.text  # noqa: B018


async def test_cancelling_the_task_closes_the_stream_and_keeps_history() -> None:
    closed, started = asyncio.Event(), asyncio.Event()
    agent = CreateAgent(provider=FunctionModel(slow_stream(closed, started)))
    task = asyncio.create_task(agent.chat("long story"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert closed.is_set()
    assert await agent.history() == []
    # the conversation is free again
    agent2_text = await CreateAgent(provider="test").chat("ok")
    assert agent2_text == "You said: ok"


async def test_cancelling_during_a_tool_call_cancels_the_tool() -> None:
    tool_started, tool_cancelled = asyncio.Event(), asyncio.Event()

    async def wait_forever() -> str:
        tool_started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            tool_cancelled.set()
            raise
        return "x"

    agent = CreateAgent(provider="test", tools=[wait_forever])
    task = asyncio.create_task(agent.chat("go"))
    await tool_started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert tool_cancelled.is_set() and await agent.history() == []


async def test_event_handler_sync_and_async_methods() -> None:
    log: list[str] = []

    class Handler(EventHandler):
        def on_run_started(self, event: RunStarted) -> None:
            log.append("start")

        async def on_text_delta(self, event: TextDelta) -> None:
            log.append(event.text)

        def on_tool_call_started(self, event: ToolCallStarted) -> None:
            log.append(f"call {event.call.name}")

        async def on_run_finished(self, event: RunFinished) -> None:
            log.append("end")

    agent = CreateAgent(provider=FunctionModel(adder_script), tools=[add])
    await agent.chat("x", handler=Handler())
    assert log == ["start", "call add", "The ", "sum ", "is ", "5.", "end"]


async def test_handler_gets_unknown_kinds_and_failures() -> None:
    got: list[str] = []

    class Handler(EventHandler):
        def on_unknown_event(self, event: object) -> None:
            got.append(type(event).__name__)

        def on_run_failed(self, event: RunFailed) -> None:
            got.append(f"failed {type(event.error).__name__}")

    class Odd:
        kind = "something_new"

    await Handler()._dispatch(Odd())  # type: ignore[arg-type]

    def boom(messages: list[Message], tools: list[ToolSpec]) -> object:
        raise ProviderUnavailableError("down")

    with pytest.raises(ProviderUnavailableError):
        await CreateAgent(provider=FunctionModel(boom)).chat("x", handler=Handler())
    assert got == ["Odd", "failed ProviderUnavailableError"]  # message_started has its own method: not unknown


async def test_tool_call_deltas_are_forwarded() -> None:
    agent = CreateAgent(provider="test", tools=[add])
    deltas = [e async for e in agent.chat("x").events() if isinstance(e, ToolCallDelta)]
    assert deltas and deltas[0].name == "add" and deltas[0].index == 0

"""The agent loop: stream from the model, run the tools it asks for, repeat until it answers.

It exists once, here, for every provider. It is an async generator of run
events that never touches the history: the caller commits `RunFinished.messages`
when, and only when, the run finishes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field

from ..domain.errors import MaxTurnsExceededError
from ..domain.events import (
    ModelCallFinished,
    ResponseDone,
    RunEvent,
    RunFailed,
    RunFinished,
    RunStarted,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallReady,
    ToolCallStarted,
)
from ..domain.messages import AssistantMessage, Message, SystemMessage, ToolCall, ToolMessage, Usage
from ..domain.settings import ModelSettings
from .ports import ChatModel, ChatRequest
from .tools import ToolBox

Notify = Callable[[RunEvent], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSpec:
    """What an agent fixes for all its runs."""

    model: ChatModel
    model_name: str
    instructions: str | None
    toolbox: ToolBox
    settings: ModelSettings
    max_turns: int


@dataclass(slots=True)
class _Round:
    """What one model response has said so far."""

    text: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    first_event_at: float | None = None
    latency: float = 0.0
    done: ResponseDone | None = None

    def message(self) -> AssistantMessage:
        return AssistantMessage(
            content="".join(self.text), tool_calls=tuple(self.calls), thinking="".join(self.thinking)
        )


async def run_turn(
    spec: AgentSpec,
    history: Sequence[Message],
    new_messages: Sequence[Message],
    *,
    conversation_id: str,
    notify: Notify,
) -> AsyncGenerator[RunEvent, None]:
    """Run one user turn; `notify` sees each lifecycle event (never a delta) before it is yielded."""
    started = time.perf_counter()
    prefix: list[Message] = [SystemMessage(content=spec.instructions)] if spec.instructions else []
    prefix.extend(history)
    new: list[Message] = list(new_messages)
    text: list[str] = []
    usage = Usage()
    all_calls: list[ToolCall] = []
    try:
        event: RunEvent = RunStarted(run_id=uuid.uuid4().hex, conversation_id=conversation_id)
        notify(event)
        yield event
        for _ in range(spec.max_turns):
            round_ = _Round()
            async with aclosing(_stream_model(spec, prefix + new, round_, conversation_id, notify)) as deltas:
                async for delta in deltas:
                    yield delta
            assert round_.done is not None
            finished = ModelCallFinished(
                provider=spec.model.provider,
                model=spec.model_name,
                conversation_id=conversation_id,
                latency=round_.latency,
                time_to_first_token=round_.first_event_at,
                usage=round_.done.usage or Usage(),
                tool_calls=len(round_.calls),
                finish_reason=round_.done.finish_reason,
            )
            notify(finished)
            yield finished
            usage = usage + finished.usage
            text.extend(round_.text)
            new.append(round_.message())
            if not round_.calls:
                event = RunFinished(
                    text="".join(text),
                    usage=usage,
                    tool_calls=tuple(all_calls),
                    messages=tuple(new),
                    duration=time.perf_counter() - started,
                )
                notify(event)
                yield event
                return
            all_calls.extend(round_.calls)
            async with aclosing(_run_tools(spec.toolbox, round_.calls, new, notify)) as tool_events:
                async for tool_event in tool_events:
                    yield tool_event
        raise MaxTurnsExceededError(
            f"the run made {spec.max_turns} model calls without a final answer (max_turns={spec.max_turns})",
            messages=new,
            text="".join(text),
        )
    except BaseException as e:
        notify(RunFailed(error=_stopped(e)))
        raise


async def _stream_model(
    spec: AgentSpec,
    messages: list[Message],
    round_: _Round,
    conversation_id: str,
    notify: Notify,
) -> AsyncGenerator[RunEvent, None]:
    """One model call: forward deltas, collect the rest into `round_`; report a failure before raising."""
    request = ChatRequest(model=spec.model_name, messages=messages, tools=spec.toolbox.specs, settings=spec.settings)
    start = time.perf_counter()
    text = round_.text
    try:
        events = spec.model.stream(request)
        try:
            async for event in events:
                if type(event) is TextDelta:  # the hot path: one check, one append
                    if round_.first_event_at is None:
                        round_.first_event_at = time.perf_counter() - start
                    text.append(event.text)
                    yield event
                elif type(event) is ThinkingDelta or type(event) is ToolCallDelta:
                    if round_.first_event_at is None:
                        round_.first_event_at = time.perf_counter() - start
                    if type(event) is ThinkingDelta:
                        round_.thinking.append(event.text)
                    yield event
                elif type(event) is ToolCallReady:
                    round_.calls.append(event.call)
                elif type(event) is ResponseDone:
                    round_.done = event
                else:
                    raise TypeError(f"{type(spec.model).__name__}.stream yielded {event!r}, not a ModelEvent")
        finally:
            aclose = getattr(events, "aclose", None)  # the port promises an iterator; generators close
            if aclose is not None:
                await aclose()
        round_.latency = time.perf_counter() - start
        if round_.done is None:  # a lenient default for hand-written models that end without it
            round_.done = ResponseDone()
    except BaseException as e:
        notify(
            ModelCallFinished(
                provider=spec.model.provider,
                model=spec.model_name,
                conversation_id=conversation_id,
                latency=time.perf_counter() - start,
                time_to_first_token=round_.first_event_at,
                usage=Usage(),
                tool_calls=len(round_.calls),
                error=type(_stopped(e)).__name__,
            )
        )
        raise


async def _run_tools(
    toolbox: ToolBox, calls: list[ToolCall], new: list[Message], notify: Notify
) -> AsyncGenerator[RunEvent, None]:
    """Run one turn's calls concurrently; results go into `new` in the order the model asked."""
    for call in calls:
        started = ToolCallStarted(call=call)
        notify(started)
        yield started
    results: dict[int, ToolMessage] = {}
    async with aclosing(toolbox.run_calls(calls)) as finished_calls:
        async for finished in finished_calls:
            notify(finished)
            yield finished
            results[id(finished.call)] = ToolMessage(
                tool_call_id=finished.call.id,
                name=finished.call.name,
                content=finished.result,
                is_error=finished.error is not None,
            )
    new.extend(results[id(call)] for call in calls)


def _stopped(e: BaseException) -> BaseException:
    """A consumer closing the reply is reported as a cancellation, the way a cancelled task is."""
    return asyncio.CancelledError("the reply was closed") if isinstance(e, GeneratorExit) else e

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
from typing import Protocol

from ..domain.errors import MaxTurnsExceededError
from ..domain.events import (
    ModelCallFinished,
    ModelEvent,
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
    started: float = 0.0
    done: ResponseDone | None = None

    def take(self, event: ModelEvent) -> bool:
        """Record a non-text model event; True when the caller should see it too."""
        if type(event) is ThinkingDelta or type(event) is ToolCallDelta:
            if self.first_event_at is None:
                self.first_event_at = time.perf_counter() - self.started
            if type(event) is ThinkingDelta:
                self.thinking.append(event.text)
            return True
        if type(event) is ToolCallReady:
            self.calls.append(event.call)
        elif type(event) is ResponseDone:
            self.done = event
        else:
            raise TypeError(f"a ChatModel yielded {event!r}, which is not a ModelEvent")
        return False

    def finished(self, spec: AgentSpec, conversation_id: str, error: str | None = None) -> ModelCallFinished:
        done = self.done or ResponseDone()  # lenient with hand-written models that end without it
        return ModelCallFinished(
            provider=spec.model.provider,
            model=spec.model_name,
            conversation_id=conversation_id,
            latency=time.perf_counter() - self.started,
            time_to_first_token=self.first_event_at,
            usage=(done.usage or Usage()) if error is None else Usage(),
            tool_calls=len(self.calls),
            finish_reason=done.finish_reason if error is None else None,
            error=error,
        )

    def message(self) -> AssistantMessage:
        return AssistantMessage(
            content="".join(self.text), tool_calls=tuple(self.calls), thinking="".join(self.thinking)
        )


class TurnScope(Protocol):
    """The history a turn reads when it starts and appends its messages to when it completes."""

    async def __aenter__(self) -> Sequence[Message]: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def commit(self, messages: Sequence[Message]) -> None: ...


async def run_turn(
    spec: AgentSpec,
    scope: TurnScope,
    message: Message,
    *,
    conversation_id: str,
    notify: Notify,
) -> AsyncGenerator[RunEvent, None]:
    """Run one user turn; `notify` sees each lifecycle event (never a delta) before it is yielded.

    One generator from the model's stream to the caller: every layer between
    them would cost each token a generator hop.
    """
    started = time.perf_counter()
    new: list[Message] = [message]
    text: list[str] = []
    usage = Usage()
    all_calls: list[ToolCall] = []
    try:
        async with scope as history:
            event: RunEvent = RunStarted(run_id=uuid.uuid4().hex, conversation_id=conversation_id)
            notify(event)
            yield event
            prefix: list[Message] = [SystemMessage(content=spec.instructions)] if spec.instructions else []
            prefix.extend(history)
            for _ in range(spec.max_turns):
                request = ChatRequest(
                    model=spec.model_name, messages=prefix + new, tools=spec.toolbox.specs, settings=spec.settings
                )
                round_ = _Round(started=time.perf_counter())
                parts = round_.text
                stream = spec.model.stream(request)
                try:
                    try:
                        async for model_event in stream:
                            if type(model_event) is TextDelta:  # the hot path: one check, one append
                                if round_.first_event_at is None:
                                    round_.first_event_at = time.perf_counter() - round_.started
                                parts.append(model_event.text)
                                yield model_event
                            elif round_.take(model_event):
                                yield model_event  # type: ignore[misc]
                    finally:
                        aclose = getattr(stream, "aclose", None)  # the port promises an iterator; generators close
                        if aclose is not None:
                            await aclose()
                except BaseException as e:
                    notify(round_.finished(spec, conversation_id, error=type(_stopped(e)).__name__))
                    raise
                finished = round_.finished(spec, conversation_id)
                notify(finished)
                yield finished
                usage = usage + finished.usage
                text.extend(parts)
                new.append(round_.message())
                if not round_.calls:
                    event = RunFinished(
                        text="".join(text),
                        usage=usage,
                        tool_calls=tuple(all_calls),
                        messages=tuple(new),
                        duration=time.perf_counter() - started,
                    )
                    await scope.commit(new)  # before anyone can stop us
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
        notify(RunFailed(error=_stopped(e), cancelled=isinstance(e, asyncio.CancelledError | GeneratorExit)))
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

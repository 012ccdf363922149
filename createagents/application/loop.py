"""The agent loop: stream from the model, run the tools it asks for, repeat until it answers.

It exists once, here, for every provider. It is an async generator of run
events that never touches the history: the caller commits `RunFinished.messages`
when, and only when, the run finishes.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ..domain.errors import MaxTurnsExceededError, OutputValidationError
from ..domain.events import (
    ApprovalRequested,
    HostedToolCall,
    MessageCompleted,
    MessageStarted,
    ModelCallFinished,
    ModelEvent,
    OutputValidationFailed,
    ResponseDone,
    RunEvent,
    RunFailed,
    RunFinished,
    RunPaused,
    RunStarted,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallFinished,
    ToolCallReady,
    ToolCallStarted,
)
from ..domain.messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolCall,
    ToolMessage,
    ToolSpec,
    Usage,
    UserMessage,
)
from ..domain.output import ANSWER_TOOL, OutputFormat, OutputMode
from ..domain.pending import Decision, Deny, Paused, PendingCall
from ..domain.settings import ModelSettings
from .nesting import ParentRun
from .output import OutputInvalid, OutputSpec, retry_prompt
from .pausing import Progress, Settled, pause_state
from .ports import ChatModel, ChatRequest
from .tools import ClientTool, ToolBox, encodable, to_text

Notify = Callable[[RunEvent], None]
Approver = Callable[[PendingCall], "Decision | Awaitable[Decision | None] | None"]
"""Decides an approval as code: True or False / `Deny(...)`, or None to leave it to a person."""

_log = logging.getLogger("createagents")
DEFAULT_APPROVAL_TIMEOUT = 24 * 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSpec:
    """What an agent fixes for all its runs."""

    model: ChatModel
    model_name: str
    instructions: str | None
    toolbox: ToolBox
    settings: ModelSettings
    max_turns: int
    approver: Approver | None = None
    approval_timeout: float = DEFAULT_APPROVAL_TIMEOUT
    output: OutputSpec | None = None  # the answer's type, when it is data rather than text


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
        elif type(event) is HostedToolCall:
            return True
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
            content="".join(self.text),
            tool_calls=tuple(self.calls),
            thinking="".join(self.thinking),
            provider_items=self.done.provider_items if self.done is not None else (),
        )


class TurnScope(Protocol):
    """The history a turn reads when it starts, appends its messages to when it completes, and pauses in."""

    async def __aenter__(self) -> Sequence[Message]: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def commit(self, messages: Sequence[Message]) -> None: ...
    async def pause(self, state: dict[str, Any], pending: tuple[PendingCall, ...], expires_at: float) -> Paused: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Resume:
    """How a paused turn goes on: `obtain` checks the decisions and takes the turn's state, exactly once."""

    obtain: Callable[[], Awaitable[Mapping[str, Any]]]
    approvals: Mapping[str, Decision]
    outputs: Mapping[str, Any]


async def run_turn(
    spec: AgentSpec,
    scope: TurnScope,
    start: Message | Resume | None,
    *,
    conversation_id: str,
    notify: Notify,
) -> AsyncGenerator[RunEvent, None]:
    """Run one user turn, or resume a paused one; `notify` sees each lifecycle event (never a delta) first.

    One generator from the model's stream to the caller: every layer between
    them would cost each token a generator hop.
    """
    started = time.perf_counter()
    try:
        async with scope as history:
            if isinstance(start, Resume):
                state = await start.obtain()
                turn = Progress.from_state(state)
                if turn.settings != spec.settings:
                    spec = replace(spec, settings=turn.settings)
                if turn.client_tools:
                    client = [ClientTool(t.name, t.description, t.parameters) for t in turn.client_tools]
                    spec = replace(spec, toolbox=spec.toolbox.with_client_tools(client, skip_known=True))
            else:  # None: go on from the history as it is (after a client's tool results)
                turn = Progress(run_id=uuid.uuid4().hex, new=[] if start is None else [start], settings=spec.settings)
                turn.client_tools = [t.spec for t in spec.toolbox.client.values()]
            if spec.toolbox.toolsets:  # their tools as they are now (an MCP server's list may change)
                spec = replace(spec, toolbox=await spec.toolbox.resolved())
            new, text, all_calls = turn.new, turn.text, turn.calls
            event: RunEvent = RunStarted(run_id=turn.run_id, conversation_id=conversation_id)
            notify(event)
            yield event
            prefix: list[Message] = [SystemMessage(content=spec.instructions)] if spec.instructions else []
            tools = spec.toolbox.specs
            output = spec.output
            fmt = output.asked if output is not None else None  # how the model is asked for the answer
            attempts = 0  # answers that did not fit the output type
            if output is not None:
                if output.asked.mode == "tool":
                    answer_tool = ToolSpec(
                        name=ANSWER_TOOL, description=output.answer_tool_description(), parameters=output.asked.schema
                    )
                    tools = (*tools, answer_tool)
                elif output.asked.mode == "prompted":
                    prefix.append(SystemMessage(content=output.asked.instructions()))
            prefix.extend(history)
            if isinstance(start, Resume):  # the paused round: its decisions, then on as if it had not paused
                settled = Settled.from_state(state)
                settled.decide(start.approvals, start.outputs)
                async with aclosing(_settle(spec.toolbox, settled, notify, turn.run_id)) as tool_events:
                    async for tool_event in tool_events:
                        yield tool_event
                new.extend(settled.messages())
            while turn.rounds < spec.max_turns:
                turn.rounds += 1
                request = ChatRequest(
                    model=spec.model_name,
                    messages=prefix + new,
                    tools=tools,
                    settings=spec.settings,
                    hosted_tools=spec.toolbox.hosted,
                    output=fmt,
                )
                index = turn.rounds - 1
                event = MessageStarted(index=index)
                notify(event)
                yield event
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
                message = round_.message()
                event = MessageCompleted(index=index, message=message)
                notify(event)
                yield event
                turn.usage = turn.usage + finished.usage
                if output is not None:
                    answer = _answer_of(output.asked, round_)
                    if answer is not None:
                        raw, call = answer
                        try:
                            value = output.validate(raw)
                        except OutputInvalid as e:
                            attempts += 1
                            retrying = attempts <= output.retries
                            event = OutputValidationFailed(raw=raw, error=str(e), attempt=attempts, retrying=retrying)
                            notify(event)
                            yield event
                            if not retrying:
                                raise OutputValidationError(
                                    f"the answer did not fit {output.name} after {attempts} attempt(s): {e}",
                                    raw=raw,
                                    errors=e.errors,
                                    attempts=attempts,
                                ) from None
                            new.append(message)
                            new.extend(_retry_messages(message, call, e.errors, output.asked.mode))
                            continue
                        if call is not None:  # the answer tool's call becomes the answer's text: no dangling call
                            message = AssistantMessage(content=output.dump(value), thinking=message.thinking)
                        new.append(message)
                        event = RunFinished(
                            text=message.content,
                            usage=turn.usage,
                            tool_calls=tuple(all_calls),
                            messages=tuple(new),
                            duration=turn.elapsed + time.perf_counter() - started,
                            output=value,
                        )
                        await scope.commit(new)
                        notify(event)
                        yield event
                        return
                text.extend(parts)
                new.append(message)
                if not round_.calls:
                    event = RunFinished(
                        text="".join(text),
                        usage=turn.usage,
                        tool_calls=tuple(all_calls),
                        messages=tuple(new),
                        duration=turn.elapsed + time.perf_counter() - started,
                    )
                    await scope.commit(new)  # before anyone can stop us
                    notify(event)
                    yield event
                    return
                all_calls.extend(round_.calls)
                settled = await _plan(spec, round_.calls)
                async with aclosing(_settle(spec.toolbox, settled, notify, turn.run_id)) as tool_events:
                    async for tool_event in tool_events:
                        yield tool_event
                if settled.pending:
                    expires_at = time.time() + spec.approval_timeout
                    turn.elapsed += time.perf_counter() - started
                    paused = await scope.pause(pause_state(turn, settled, expires_at), settled.pending, expires_at)
                    for pending in paused.approvals:
                        event = ApprovalRequested(call=pending.call, turn_id=paused.id)
                        notify(event)
                        yield event
                    event = RunPaused(
                        text="".join(text),
                        usage=turn.usage,
                        tool_calls=tuple(all_calls),
                        paused=paused,
                        duration=turn.elapsed,
                    )
                    notify(event)
                    yield event
                    return
                new.extend(settled.messages())
            raise MaxTurnsExceededError(
                f"the run made {spec.max_turns} model calls without a final answer (max_turns={spec.max_turns})",
                messages=new,
                text="".join(text),
            )
    except BaseException as e:
        notify(RunFailed(error=_stopped(e), cancelled=isinstance(e, asyncio.CancelledError | GeneratorExit)))
        raise


def _answer_of(fmt: OutputFormat, round_: _Round) -> tuple[str, ToolCall | None] | None:
    """The round's answer (its JSON, and the answer tool's call in "tool" mode); None when it called tools."""
    if fmt.mode == "tool":
        call = next((c for c in round_.calls if c.name == ANSWER_TOOL), None)
        if call is not None:
            return call.arguments, call
    if round_.calls:
        return None
    return "".join(round_.text), None  # in "tool" mode too: an answer in text that fits is taken


def _retry_messages(
    message: AssistantMessage, call: ToolCall | None, errors: list[dict[str, Any]], mode: OutputMode
) -> list[Message]:
    """What tells the model its answer did not fit: the answer tool's error result, or a user message."""
    if call is None:
        return [UserMessage(content=retry_prompt(errors, mode))]
    return [
        ToolMessage(
            tool_call_id=c.id,
            name=c.name,
            content=retry_prompt(errors, mode) if c is call else "Not run: tools come before the final answer.",
            is_error=True,
        )
        for c in message.tool_calls
    ]


async def _plan(spec: AgentSpec, calls: list[ToolCall]) -> Settled:
    """What each call of a model response needs: to run now, an approval, or a client's output.

    The approver, when the agent has one, decides approvals first; what it
    leaves undecided (None) waits for a person.
    """
    settled = Settled(calls=calls)
    for i, call in enumerate(calls):
        kind = await spec.toolbox.pending_kind(call)
        if kind is None:
            continue
        pending = PendingCall(call=call, kind=kind)
        if kind == "approval" and spec.approver is not None:
            decision = await ask_approver(spec.approver, pending)
            if decision is not None:
                settled.plan[i] = decision
                continue
        settled.plan[i] = pending
    return settled


async def ask_approver(approver: Approver, pending: PendingCall) -> Decision | None:
    """The approver's decision; None (a person decides) when it fails or answers anything but a decision."""
    try:
        decision = approver(pending)
        if inspect.isawaitable(decision):
            decision = await decision
    except Exception:
        _log.exception("the approver failed on %s (%s); leaving the call to a person", pending.name, pending.id)
        return None
    if decision is None or isinstance(decision, bool | Deny):
        return decision
    _log.error("the approver answered %r for %s; expected True, False, Deny or None", decision, pending.name)
    return None


async def _settle(toolbox: ToolBox, settled: Settled, notify: Notify, run_id: str) -> AsyncGenerator[RunEvent, None]:
    """Resolve every call that can be: run the approved ones concurrently, write refusals and client outputs."""
    calls = settled.calls
    runnable = [i for i, step in enumerate(settled.plan) if step is True and i not in settled.results]
    for i in runnable:
        started = ToolCallStarted(call=calls[i])
        notify(started)
        yield started
    for i, step in enumerate(settled.plan):
        if i in settled.results or isinstance(step, PendingCall) or step is True:
            continue
        call = calls[i]
        started = ToolCallStarted(call=call)
        notify(started)
        yield started
        if isinstance(step, Deny) or step is False:
            reason = step.reason if isinstance(step, Deny) else ""
            result, error = (f"Tool call denied: {reason}" if reason else "Tool call denied."), "ApprovalDenied"
        else:  # a client tool's output
            result, error = encodable(to_text(step.value)), None
        finished = ToolCallFinished(call=call, result=result, duration=0.0, error=error)
        notify(finished)
        yield finished
        settled.results[i] = ToolMessage(
            tool_call_id=call.id, name=call.name, content=result, is_error=error is not None
        )
    if not runnable:
        return
    by_call = {id(calls[i]): i for i in runnable}
    tool_calls = [calls[i] for i in runnable]
    parents = [ParentRun(run_id, call.id, notify) for call in tool_calls]
    async with aclosing(toolbox.run_calls(tool_calls, parents)) as finished_calls:
        async for finished in finished_calls:
            notify(finished)
            yield finished
            settled.results[by_call[id(finished.call)]] = ToolMessage(
                tool_call_id=finished.call.id,
                name=finished.call.name,
                content=finished.result,
                is_error=finished.error is not None,
            )


def _stopped(e: BaseException) -> BaseException:
    """A consumer closing the reply is reported as a cancellation, the way a cancelled task is."""
    return asyncio.CancelledError("the reply was closed") if isinstance(e, GeneratorExit) else e

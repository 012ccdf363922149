"""The reply to one chat message: awaitable, async-iterable, closable, consumed once."""

from __future__ import annotations

import asyncio
import inspect
import warnings
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator
from contextlib import aclosing
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Generic

from typing_extensions import TypeVar

from ..domain.errors import ConfigurationError, ReplyConsumedError
from ..domain.events import (
    ApprovalRequested,
    HostedToolCall,
    MessageCompleted,
    MessageStarted,
    ModelCallFinished,
    NestedEvent,
    OutputValidationFailed,
    RunEvent,
    RunFailed,
    RunFinished,
    RunPaused,
    RunStarted,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from ..domain.messages import Message, ToolCall, Usage
from ..domain.output import ANSWER_TOOL
from ..domain.pending import Paused, PendingCall

if TYPE_CHECKING:
    from .output import OutputSpec


class Answer(str):
    """The final text of a run, as a `str` that also carries the run's usage and tool calls.

    `paused` is set when the turn paused for approvals or client tool
    outputs: the text is then what the model said before it paused.
    """

    usage: Usage
    tool_calls: tuple[ToolCall, ...]
    paused: Paused | None

    def __new__(cls, finished: RunFinished | RunPaused) -> Answer:
        answer = super().__new__(cls, finished.text)
        answer.usage = finished.usage
        answer.tool_calls = finished.tool_calls
        answer.paused = finished.paused if type(finished) is RunPaused else None
        return answer

    async def __aiter__(self) -> AsyncGenerator[str, None]:
        """The text, already whole: createagents 0.3 code iterates the awaited answer (`async for t in r`).

        To see tokens as they arrive, iterate the reply instead: `async for t in agent.chat(m)`.
        """
        yield str(self)


OutT = TypeVar("OutT", default=Answer)
"""What awaiting a reply gives: the text (`Answer`), or the value of the run's output type."""


class EventHandler:
    """Callback-style consumption of a reply: override the `on_<kind>` methods you need.

    Methods may be plain or `async def`; `on_unknown_event` receives kinds
    this class does not name (added in later versions). Pass it as
    `agent.chat(msg, handler=...)`, then consume the reply as usual. A
    cancelled or closed run reaches `on_run_failed` with `event.cancelled` set.
    A subclass with an `on_*` method that names no event kind is refused when
    it is instantiated: ported code would otherwise never be called.
    """

    _checked: ClassVar[set[type]] = set()

    def __new__(cls, *args: Any, **kwargs: Any) -> EventHandler:
        if cls not in EventHandler._checked:
            _check_handler_class(cls)
            EventHandler._checked.add(cls)
        return super().__new__(cls)

    def on_run_started(self, event: RunStarted) -> Any: ...
    def on_message_started(self, event: MessageStarted) -> Any: ...
    def on_message_completed(self, event: MessageCompleted) -> Any: ...
    def on_text_delta(self, event: TextDelta) -> Any: ...
    def on_thinking_delta(self, event: ThinkingDelta) -> Any: ...
    def on_tool_call_delta(self, event: ToolCallDelta) -> Any: ...
    def on_hosted_tool_call(self, event: HostedToolCall) -> Any: ...
    def on_tool_call_started(self, event: ToolCallStarted) -> Any: ...
    def on_tool_call_finished(self, event: ToolCallFinished) -> Any: ...
    def on_model_call_finished(self, event: ModelCallFinished) -> Any: ...
    def on_approval_requested(self, event: ApprovalRequested) -> Any: ...
    def on_run_paused(self, event: RunPaused) -> Any: ...
    def on_run_finished(self, event: RunFinished) -> Any: ...
    def on_run_failed(self, event: RunFailed) -> Any: ...
    def on_nested_event(self, event: NestedEvent) -> Any: ...
    def on_output_validation_failed(self, event: OutputValidationFailed) -> Any: ...
    def on_unknown_event(self, event: Any) -> Any: ...

    async def _dispatch(self, event: RunEvent) -> None:
        method = getattr(self, "on_" + event.kind, None) or self.on_unknown_event
        result = method(event)
        if inspect.isawaitable(result):
            await result


def _check_handler_class(cls: type) -> None:
    known = {name for name in vars(EventHandler) if name.startswith("on_")}
    unknown = sorted(
        name
        for klass in cls.__mro__
        if klass is not EventHandler and klass is not object
        for name, value in vars(klass).items()
        if name.startswith("on_") and name not in known and callable(value)
    )
    if unknown:
        kinds = ", ".join(sorted(k.removeprefix("on_") for k in known))
        raise ConfigurationError(
            f"{cls.__name__} defines {', '.join(unknown)}, which match no event kind; "
            f"handler methods are on_<kind> for the kinds {kinds}"
        )


class Reply(Coroutine[Any, Any, OutT], Generic[OutT]):
    """What `agent.chat(msg)` returns; the run starts when it is first consumed.

    - `await reply` -> the final text (an `Answer`, a `str`), or with an
      output type the validated value (`output`); being a coroutine, it also
      goes straight to `asyncio.run` and `asyncio.create_task`;
    - `async for partial in reply.partial()` -> with an output type, the value
      as it forms (each one validated, the last the final one);
    - `async for token in reply` -> text as it arrives;
    - `async for event in reply.events()` -> typed run events;
    - `async with reply:` / `await reply.aclose()` -> stop early, closing the provider stream.

    Once finished, `text`, `usage`, `tool_calls`, `messages` and `duration` hold the run's outcome.
    A turn that paused for approvals or client tool outputs finishes too:
    `paused` (and `pending`) say what it waits for, and `messages` is empty,
    as nothing is in the history until the resumed turn completes.
    """

    def __init__(
        self,
        run: Callable[[], AsyncGenerator[RunEvent, None]],
        *,
        handler: EventHandler | None = None,
        label: str = "",
        output: OutputSpec | None = None,
    ) -> None:
        self._run = run
        self._output = output
        self._handler = handler
        self._label = label
        self._events: AsyncGenerator[RunEvent, None] | None = None
        self._stream: AsyncGenerator[Any, None] | None = None
        self._consumed = False
        self._finished: RunFinished | RunPaused | None = None
        self.run_id: str | None = None  # known once the run starts (its `RunStarted` event)
        self._waiter: Coroutine[Any, Any, OutT] | None = None
        self.error: BaseException | None = None

    # -- outcome -------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self._finished is not None or self.error is not None

    def _outcome(self) -> RunFinished | RunPaused:
        if self._finished is None:
            state = "failed" if self.error else "has not finished"
            raise RuntimeError(f"the reply {state}; its outcome is there only after it finishes")
        return self._finished

    @property
    def text(self) -> str:
        return self._outcome().text

    @property
    def usage(self) -> Usage:
        return self._outcome().usage

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return self._outcome().tool_calls

    @property
    def messages(self) -> tuple[Message, ...]:
        return self._outcome().messages

    @property
    def duration(self) -> float:
        return self._outcome().duration

    @property
    def output(self) -> Any:
        """The validated answer of a run with an output type; None without one, or when the turn paused."""
        outcome = self._outcome()
        return outcome.output if type(outcome) is RunFinished else None

    @property
    def paused(self) -> Paused | None:
        """The paused turn, when the run stopped to wait for decisions; None when it completed."""
        outcome = self._outcome()
        return outcome.paused if type(outcome) is RunPaused else None

    @property
    def pending(self) -> tuple[PendingCall, ...]:
        """The calls the paused turn waits for (approvals and client tools); empty when it completed."""
        paused = self.paused
        return paused.pending if paused is not None else ()

    # -- consumption ---------------------------------------------------------

    def _start(self) -> AsyncGenerator[RunEvent, None]:
        if self._consumed:
            raise ReplyConsumedError(
                "this reply was consumed already; a reply streams once (call agent.chat again for a new one)"
            )
        self._consumed = True
        self._events = self._run()
        return self._events

    def events(self) -> AsyncGenerator[RunEvent, None]:
        """Typed run events; on failure a `RunFailed` event comes last, then the error is raised.

        A cancellation of the consuming task comes as a `RunFailed` with
        `cancelled` set, then the `CancelledError` is raised.
        """
        self._stream = self._events_stream()
        return self._stream

    async def _events_stream(self) -> AsyncGenerator[RunEvent, None]:
        events = self._start()
        handler = self._handler
        try:
            async with aclosing(events):
                async for event in events:
                    if handler is not None:
                        await handler._dispatch(event)
                    if type(event) is RunFinished or type(event) is RunPaused:
                        self._finished = event
                    elif type(event) is RunStarted:
                        self.run_id = event.run_id
                    yield event
        except Exception as e:
            yield await self._failed(e)
            raise
        except asyncio.CancelledError as e:
            if self._finished is None:
                failed = await self._failed(e)
                try:
                    yield failed
                finally:
                    raise e  # even when the consumer stops here: a cancellation is never swallowed
            raise
        except GeneratorExit as e:
            if self._finished is None:  # the consumer stopped before the end
                await self._failed(e)
            raise

    async def _tokens(self) -> AsyncGenerator[str, None]:
        # events() inlined: one generator hop per token fewer
        events = self._start()
        handler = self._handler
        try:
            async with aclosing(events):
                async for event in events:
                    if handler is not None:
                        await handler._dispatch(event)
                    if type(event) is TextDelta:
                        yield event.text
                    elif type(event) is RunFinished or type(event) is RunPaused:
                        self._finished = event
                    elif type(event) is RunStarted:
                        self.run_id = event.run_id
        except (Exception, asyncio.CancelledError, GeneratorExit) as e:
            await self._failed(e)
            raise

    async def _failed(self, e: BaseException) -> RunFailed:
        """Record the failure and tell the handler; a stop from outside is reported as a cancellation."""
        cancelled = isinstance(e, asyncio.CancelledError | GeneratorExit)
        error = asyncio.CancelledError("the reply was closed") if isinstance(e, GeneratorExit) else e
        self.error = error
        failed = RunFailed(error=error, cancelled=cancelled)
        if self._handler is not None:
            await self._handler._dispatch(failed)
        return failed

    def __aiter__(self) -> AsyncGenerator[str, None]:
        self._stream = self._tokens()
        return self._stream

    async def partial(self) -> AsyncGenerator[OutT, None]:
        """The answer as it forms, for a run with an output type: each value validated, the last the final one.

        A value shows once its JSON can be one (every required field begun:
        make fields optional to see them sooner); strings may still be growing.
        An answer that failed validation and was retried may have shown values
        the final one replaces.
        """
        spec = self._output
        if spec is None:
            raise ConfigurationError("partial() is for replies with an output type: chat(..., output_type=MyModel)")
        text: list[str] = []
        answer_index: int | None = None  # the answer tool's call, in "tool" mode
        last: Any = None
        async with aclosing(self.events()) as events:
            async for event in events:
                kind = type(event)
                if kind is TextDelta:
                    text.append(event.text)  # type: ignore[union-attr]
                elif kind is ToolCallDelta:
                    if event.name == ANSWER_TOOL:  # type: ignore[union-attr]
                        answer_index, text = event.index, [event.arguments_delta]  # type: ignore[union-attr]
                    elif event.index == answer_index and event.name is None:  # type: ignore[union-attr]
                        text.append(event.arguments_delta)  # type: ignore[union-attr]
                    else:
                        continue
                elif kind is ModelCallFinished:  # the next response starts its own answer
                    text, answer_index = [], None
                    continue
                elif kind is RunFinished:
                    if event.output is not None and event.output != last:  # type: ignore[union-attr]
                        yield event.output  # type: ignore[union-attr]
                    continue
                else:
                    continue
                value = spec.partial("".join(text))
                if value is not None and value != last:
                    last = value
                    yield value

    async def _wait(self) -> OutT:
        async with aclosing(self._tokens()) as tokens:
            async for _ in tokens:
                pass
        if self._output is not None:
            return self.output  # type: ignore[no-any-return]
        return Answer(self._outcome())  # type: ignore[return-value]

    def __await__(self) -> Generator[Any, None, OutT]:
        return self._wait().__await__()

    # the coroutine protocol, for asyncio.run / create_task, delegating to one `_wait()`
    def _coroutine(self) -> Coroutine[Any, Any, OutT]:
        if self._waiter is None:
            self._waiter = self._wait()
        return self._waiter

    def send(self, value: Any) -> Any:
        return self._coroutine().send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:  # type: ignore[override]
        if self._events is None:
            self._consumed = True  # a task cancelled before it ran: it never started, as for a coroutine
        return self._coroutine().throw(typ, val, tb)

    def close(self) -> None:
        self._consumed = True  # closed before it ran: nothing to warn about, as for a coroutine
        if self._waiter is not None:
            self._waiter.close()

    async def aclose(self) -> None:
        """Stop the run: the provider stream is closed and the history stays as it was."""
        self._consumed = True
        if self._stream is not None:  # what the consumer iterates: closing it tells the handler too
            await self._stream.aclose()
        if self._events is not None:
            await self._events.aclose()

    def __del__(self) -> None:
        if not getattr(self, "_consumed", True):  # as Python warns for a coroutine nobody awaited
            text = self._label if len(self._label) <= 40 else self._label[:37] + "..."
            warnings.warn(
                f"the reply to {text!r} was never awaited or iterated, so nothing was sent; "
                "use `await agent.chat(...)` or `async for token in agent.chat(...)`",
                RuntimeWarning,
                stacklevel=2,
            )

    async def __aenter__(self) -> Reply[OutT]:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

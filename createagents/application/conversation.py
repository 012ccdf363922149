"""Conversations: one history each; turns run concurrently and each appends its messages once, when it completes."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar, overload

from ..domain.codec import messages_from_dicts, messages_to_dicts
from ..domain.errors import AgentClosedError, ConfigurationError, ResumeError, TurnNotPausedError
from ..domain.history import trim_history
from ..domain.messages import Message, UserMessage
from ..domain.output import OutputMode
from ..domain.pending import Decision, Deny, Paused, PendingCall
from ..domain.settings import ModelSettings
from .loop import AgentSpec, Approver, Notify, Resume, TurnScope, run_turn
from .output import OutputSpec
from .pausing import check_decisions, check_expiry, pending_of
from .ports import ConversationStore
from .reply import EventHandler, OutT, Reply
from .tools import ClientTool

T = TypeVar("T")


class SyncRunner:
    """One background event loop per agent for the blocking API.

    Every blocking call runs there, so provider clients stay on one loop, and
    it works the same in a plain script and where a loop already runs (a
    notebook): no nested loops, no `asyncio.run` per call.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        self.closed = False

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._guard:
            if self.closed:
                coro.close()
                raise AgentClosedError("this agent was closed; create a new one")
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=_serve, args=(self._loop,), name="createagents-sync", daemon=True
                )
                self._thread.start()
            loop = self._loop
        if self._thread is threading.current_thread():
            coro.close()
            raise RuntimeError("a blocking createagents call was made from inside its own event loop")
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def iterate(self, items: AsyncIterator[T]) -> Iterator[T]:
        """An async iterator's items, one blocking step at a time; stopping early closes it on its loop.

        An abandoned iterator found at interpreter exit, or after the agent
        closed, is not closed here: its loop is gone (or going), and the loop's
        own shutdown finishes async generators.
        """

        async def step() -> T:
            return await items.__anext__()

        finished = False
        loop = None
        try:
            while True:
                try:
                    item = self.run(step())
                except StopAsyncIteration:
                    finished = True
                    return
                loop = loop or self._loop
                yield item
        finally:
            aclose = getattr(items, "aclose", None)
            live = loop is not None and loop is self._loop and self._thread is not None and self._thread.is_alive()
            if not finished and aclose is not None and live and not sys.is_finalizing():
                self.run(aclose())

    def close(self) -> None:
        with self._guard:
            self.closed = True
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if thread is not threading.current_thread():  # closing from inside: the loop just stops
            thread.join()
            loop.close()


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    """The blocking API's loop: run until stopped, then close it here, whoever stopped it."""
    try:
        loop.run_forever()
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


class Unset:
    """The marker of an argument not given, where None is a value (no approver)."""


UNSET = Unset()


@dataclass(slots=True, kw_only=True)
class Runtime:
    """What the conversations of one agent share."""

    spec: AgentSpec
    store: ConversationStore
    notify: Notify
    history_max_size: int | None = None
    history_max_tokens: int | None = None
    sync: SyncRunner = field(default_factory=SyncRunner)
    closed: bool = False
    output_mode: OutputMode | None = None  # how a per-call output type is asked for (None: the model's best)
    output_retries: int = 1
    _outputs: dict[Any, OutputSpec] = field(default_factory=dict)

    def output_for(self, output_type: Any) -> OutputSpec | None:
        """The spec of a call's `output_type` (`str`: plain text), built once per type and checked for the model."""
        if output_type is str:
            return None
        try:
            spec = self._outputs.get(output_type)
        except TypeError:  # an unhashable type expression: built each time
            spec = None
        if spec is None:
            model = self.spec.model
            spec = OutputSpec(
                output_type,
                mode=self.output_mode,
                retries=self.output_retries,
                supported=model.output_modes,
                provider=model.provider,
            )
            with contextlib.suppress(TypeError):
                if len(self._outputs) < 256:
                    self._outputs[output_type] = spec
        return spec

    def ensure_open(self) -> None:
        if self.closed:
            raise AgentClosedError("this agent was closed; create a new one")

    def settings_for(self, config: Mapping[str, Any] | None) -> ModelSettings:
        """The agent's settings with a turn's overrides, checked as they are when the agent is built."""
        settings = self.spec.settings.overridden(config)
        if settings is not self.spec.settings:
            self.spec.model.check_settings(settings)
        return settings

    def reply(
        self,
        message: str | None,
        handler: EventHandler | None,
        conversation_id: str,
        scope: TurnScope,
        settings: ModelSettings | None = None,
        client_tools: Sequence[ClientTool] = (),
        approver: Approver | Unset | None = UNSET,
        output: OutputSpec | Unset | None = UNSET,
        instructions: str | None = None,
    ) -> Reply[Any]:
        """A reply that runs one turn in `scope`; a bad message or handler is refused before anything is sent.

        `settings` replace the agent's for this turn only (a served request's
        temperature, say); `client_tools` are added to the agent's for this
        turn; `approver` replaces the agent's. A `message` of None goes on from
        the history as it is (it ends with a client's tool results).
        """
        if message is not None:
            check_message(message)
        if handler is not None and not isinstance(handler, EventHandler):
            raise ConfigurationError("handler must be an instance of an EventHandler subclass")
        self.ensure_open()
        spec, notify = self.spec, self.notify
        if settings is not None and settings is not spec.settings:
            spec = replace(spec, settings=settings)
        if client_tools:
            if not all(isinstance(t, ClientTool) for t in client_tools):
                raise ConfigurationError("client_tools must be ClientTool objects (createagents.client_tool(...))")
            spec = replace(spec, toolbox=spec.toolbox.with_client_tools(client_tools))
        if not isinstance(approver, Unset):
            if approver is not None and not callable(approver):
                raise ConfigurationError(f"approver must be a function of the pending call, got {approver!r}")
            spec = replace(spec, approver=approver)
        if not isinstance(output, Unset):
            spec = replace(spec, output=output)
        if instructions is not None:
            if not isinstance(instructions, str) or not instructions.strip():
                raise ConfigurationError("instructions must be a non-empty str")
            spec = replace(spec, instructions=instructions)
        start = None if message is None else UserMessage(content=message)
        return Reply(
            lambda: run_turn(spec, scope, start, conversation_id=conversation_id, notify=notify),
            handler=handler,
            label=message or "a continuation",
            output=spec.output,
        )

    def resume(
        self,
        paused: Paused | str,
        conversation_id: str,
        approvals: Mapping[str, Decision] | None,
        outputs: Mapping[str, Any] | None,
        handler: EventHandler | None,
    ) -> Reply[Any]:
        """A reply that resumes a paused turn with decisions; bad arguments are refused here, the rest when run.

        A conversation's turn is taken from the store exactly once, after the
        decisions are checked against it; a stateless turn's state comes with
        `paused`.
        """
        approvals, outputs = _decisions(approvals, outputs)
        if handler is not None and not isinstance(handler, EventHandler):
            raise ConfigurationError("handler must be an instance of an EventHandler subclass")
        self.ensure_open()
        scope: TurnScope
        if isinstance(paused, Paused) and paused.conversation_id is None:
            if paused.state is None:
                raise ConfigurationError("this Paused has no state: a stateless turn's Paused carries its own")
            state = paused.state
            scope = Stateless(messages_from_dicts(state.get("history", ())))
            obtain = _inline(state, approvals, outputs)
            conversation_id = ""
        else:
            turn_id = paused.id if isinstance(paused, Paused) else paused
            if not isinstance(turn_id, str) or not turn_id:
                raise ConfigurationError("resume takes a Paused (reply.paused) or a paused turn's id")
            scope = _Scope(self, conversation_id)
            obtain = _stored(self.store, conversation_id, turn_id, approvals, outputs)
        resume = Resume(obtain=obtain, approvals=approvals, outputs=outputs)
        spec, notify = self.spec, self.notify
        return Reply(
            lambda: run_turn(spec, scope, resume, conversation_id=conversation_id, notify=notify),
            handler=handler,
            label=f"resume of a paused turn in {conversation_id or 'a stateless call'}",
            output=spec.output,
        )


def _decisions(
    approvals: Mapping[str, Decision] | None, outputs: Mapping[str, Any] | None
) -> tuple[dict[str, Decision], dict[str, Any]]:
    if approvals is not None and not isinstance(approvals, Mapping):
        raise ConfigurationError("approvals must be a dict of call id -> True, False or Deny(reason)")
    if outputs is not None and not isinstance(outputs, Mapping):
        raise ConfigurationError("outputs must be a dict of call id -> the client tool's output")
    approvals, outputs = dict(approvals or {}), dict(outputs or {})
    for call_id, decision in approvals.items():
        if not isinstance(call_id, str) or not isinstance(decision, bool | Deny):
            raise ConfigurationError(f"approvals[{call_id!r}] must be True, False or Deny(reason), got {decision!r}")
    if not all(isinstance(call_id, str) for call_id in outputs):
        raise ConfigurationError("outputs must be keyed by call id (str)")
    return approvals, outputs


def _stored(
    store: ConversationStore,
    conversation_id: str,
    turn_id: str,
    approvals: Mapping[str, Decision],
    outputs: Mapping[str, Any],
) -> Callable[[], Awaitable[Mapping[str, Any]]]:
    async def obtain() -> Mapping[str, Any]:
        state = await store.load_paused(conversation_id, turn_id)
        if state is None:
            raise TurnNotPausedError(
                f"conversation {conversation_id!r} has no paused turn {turn_id!r}: "
                "it was resumed already, never paused there, or was deleted"
            )
        try:
            check_expiry(state)
        except ResumeError:
            await store.take_paused(conversation_id, turn_id)
            raise
        check_decisions(state, approvals, outputs)  # before the take: bad decisions change nothing
        taken = await store.take_paused(conversation_id, turn_id)
        if taken is None:
            raise TurnNotPausedError(f"the paused turn {turn_id!r} was resumed already, by another caller")
        return taken

    return obtain


def _inline(
    state: Mapping[str, Any], approvals: Mapping[str, Decision], outputs: Mapping[str, Any]
) -> Callable[[], Awaitable[Mapping[str, Any]]]:
    async def obtain() -> Mapping[str, Any]:
        check_expiry(state)
        check_decisions(state, approvals, outputs)
        return state

    return obtain


def check_message(message: object) -> None:
    """A user message must be text with something in it: an empty one would cost a model call for nothing."""
    if not isinstance(message, str):
        raise ConfigurationError(f"message must be a str, got {type(message).__name__}")
    if not message.strip():
        raise ConfigurationError("message is empty; send some text")
    try:
        message.encode("utf-8")
    except UnicodeEncodeError as e:  # a lone surrogate: no provider can be sent this
        raise ConfigurationError(
            f"message cannot be encoded as UTF-8 ({e.reason} at position {e.start}); "
            "decode your input with errors='replace' first"
        ) from None


class Conversation(Generic[OutT]):
    """An independent history on an agent's settings.

    Turns on it run concurrently: each reads the history committed when it
    starts and, when it completes, appends its messages in one atomic step.
    """

    __slots__ = ("__weakref__", "_runtime", "id")

    def __init__(self, conversation_id: str, runtime: Runtime) -> None:
        self.id = conversation_id
        self._runtime = runtime

    @overload
    def chat(
        self,
        message: str,
        *,
        handler: EventHandler | None = None,
        config: Mapping[str, Any] | None = None,
        client_tools: Sequence[ClientTool] = (),
        output_type: None = None,
        instructions: str | None = None,
    ) -> Reply[OutT]: ...
    @overload
    def chat(
        self,
        message: str,
        *,
        handler: EventHandler | None = None,
        config: Mapping[str, Any] | None = None,
        client_tools: Sequence[ClientTool] = (),
        output_type: type[T],
        instructions: str | None = None,
    ) -> Reply[T]: ...
    @overload
    def chat(
        self,
        message: str,
        *,
        handler: EventHandler | None = None,
        config: Mapping[str, Any] | None = None,
        client_tools: Sequence[ClientTool] = (),
        output_type: Any,
        instructions: str | None = None,
    ) -> Reply[Any]: ...
    def chat(
        self,
        message: str,
        *,
        handler: EventHandler | None = None,
        config: Mapping[str, Any] | None = None,
        client_tools: Sequence[ClientTool] = (),
        output_type: Any = None,
        instructions: str | None = None,
    ) -> Reply[Any]:
        """Send a user message; the returned reply runs the turn when consumed.

        `config` overrides the agent's model settings for this turn only;
        `client_tools` adds tools the caller runs (the turn pauses when the
        model calls one); `output_type` and `instructions` replace the agent's
        for this turn (`output_type=str`: plain text).
        """
        runtime = self._runtime
        settings = runtime.settings_for(config)
        output = UNSET if output_type is None else runtime.output_for(output_type)
        scope = _Scope(runtime, self.id)
        return runtime.reply(message, handler, self.id, scope, settings, client_tools, UNSET, output, instructions)

    def resume(
        self,
        paused: Paused | str,
        *,
        approvals: Mapping[str, Decision] | None = None,
        outputs: Mapping[str, Any] | None = None,
        handler: EventHandler | None = None,
    ) -> Reply[OutT]:
        """Resume this conversation's paused turn (`reply.paused`, or its id) with decisions.

        `approvals` maps each call waiting for approval to True, False or
        `Deny(reason)`; `outputs` maps each client tool call to its output.
        Every pending call needs its answer. The reply runs the turn on and,
        when it completes, appends the whole turn to the history.
        """
        if isinstance(paused, Paused) and paused.conversation_id not in (None, self.id):
            raise ConfigurationError(
                f"this turn paused in conversation {paused.conversation_id!r}, not {self.id!r}: "
                "resume it there (agent.resume(paused) finds it)"
            )
        return self._runtime.resume(paused, self.id, approvals, outputs, handler)

    async def paused(self) -> list[Paused]:
        """This conversation's paused turns, in turn id order (each with what it waits for)."""
        store = self._runtime.store
        found = []
        for turn_id in await store.paused_ids(self.id):
            state = await store.load_paused(self.id, turn_id)
            if state is not None:
                found.append(
                    Paused(
                        id=turn_id,
                        conversation_id=self.id,
                        pending=pending_of(state),
                        expires_at=float(state.get("expires_at", 0.0)),
                    )
                )
        return found

    @overload
    def chat_sync(
        self,
        message: str,
        *,
        handler: EventHandler | None = None,
        config: Mapping[str, Any] | None = None,
        output_type: None = None,
        instructions: str | None = None,
    ) -> OutT: ...
    @overload
    def chat_sync(
        self,
        message: str,
        *,
        handler: EventHandler | None = None,
        config: Mapping[str, Any] | None = None,
        output_type: type[T],
        instructions: str | None = None,
    ) -> T: ...
    @overload
    def chat_sync(
        self,
        message: str,
        *,
        handler: EventHandler | None = None,
        config: Mapping[str, Any] | None = None,
        output_type: Any,
        instructions: str | None = None,
    ) -> Any: ...
    def chat_sync(
        self,
        message: str,
        *,
        handler: EventHandler | None = None,
        config: Mapping[str, Any] | None = None,
        output_type: Any = None,
        instructions: str | None = None,
    ) -> Any:
        """The blocking `chat`, for scripts and notebooks."""
        reply: Reply[Any] = self.chat(
            message, handler=handler, config=config, output_type=output_type, instructions=instructions
        )
        return self._runtime.sync.run(_await(reply))

    async def history(self) -> list[Message]:
        return await self._runtime.store.load(self.id)

    def clear_history(self) -> Awaitable[None]:
        """Forget the history. Await it; called without `await`, it clears all the same.

        In async code the clearing is scheduled at once (and awaiting waits for
        it); in a plain script, with no event loop running, it runs to the end
        before returning. Turns already in flight still append their messages.
        """
        runtime = self._runtime
        runtime.ensure_open()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            runtime.sync.run(runtime.store.clear(self.id))
            return _Done()
        task = loop.create_task(runtime.store.clear(self.id))
        _pending.add(task)
        task.add_done_callback(_pending.discard)
        return task


_pending: set[asyncio.Task[None]] = set()  # clears nobody awaited, kept until they finish


class _Done:
    """An awaitable that is already complete."""

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


class _Scope:
    """One turn's view of a conversation: the history as committed when it starts, one append at the end."""

    __slots__ = ("_id", "_runtime")

    def __init__(self, runtime: Runtime, conversation_id: str) -> None:
        self._runtime = runtime
        self._id = conversation_id

    async def __aenter__(self) -> list[Message]:
        runtime = self._runtime
        runtime.ensure_open()
        runtime.store.hold(self._id)
        try:
            history = await runtime.store.load(self._id)
        except BaseException:
            runtime.store.release(self._id)
            raise
        # what is sent; the store keeps it whole
        return trim_history(history, runtime.history_max_size, runtime.history_max_tokens)

    async def __aexit__(self, *exc: object) -> None:
        self._runtime.store.release(self._id)

    async def commit(self, messages: Sequence[Message]) -> None:
        await self._runtime.store.append(self._id, messages)

    async def pause(self, state: dict[str, Any], pending: tuple[PendingCall, ...], expires_at: float) -> Paused:
        turn_id = f"turn_{uuid.uuid4().hex}"
        await self._runtime.store.save_paused(self._id, turn_id, state)
        return Paused(id=turn_id, conversation_id=self._id, pending=pending, expires_at=expires_at)


class Stateless:
    """The scope of a one-shot call: the history it is given (none by default), nothing appended."""

    __slots__ = ("_history",)

    def __init__(self, history: Sequence[Message] = ()) -> None:
        self._history = history

    async def __aenter__(self) -> Sequence[Message]:
        return self._history

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def commit(self, messages: Sequence[Message]) -> None:
        return None

    async def pause(self, state: dict[str, Any], pending: tuple[PendingCall, ...], expires_at: float) -> Paused:
        """Nothing is stored: the state, with the history it was given, goes to the caller."""
        state["history"] = messages_to_dicts(self._history)
        return Paused(
            id=f"turn_{uuid.uuid4().hex}", conversation_id=None, pending=pending, expires_at=expires_at, state=state
        )


async def _await(reply: Reply[T]) -> T:
    return await reply

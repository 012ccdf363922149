"""Conversations: one history each, one turn at a time, committed only when a turn completes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..domain.errors import AgentClosedError, ConfigurationError
from ..domain.events import RunEvent
from ..domain.messages import Message, UserMessage
from .loop import AgentSpec, Notify, run_turn
from .ports import ConversationStore
from .reply import EventHandler, Reply

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

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._guard:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="createagents-sync", daemon=True)
                self._thread.start()
            loop = self._loop
        if self._thread is threading.current_thread():
            coro.close()
            raise RuntimeError("a blocking createagents call was made from inside its own event loop")
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def close(self) -> None:
        with self._guard:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if thread is not threading.current_thread():  # closing from inside: the loop just stops
            thread.join()
            loop.close()


@dataclass(slots=True, kw_only=True)
class Runtime:
    """What the conversations of one agent share."""

    spec: AgentSpec
    store: ConversationStore
    notify: Notify
    history_max_size: int | None = None
    sync: SyncRunner = field(default_factory=SyncRunner)
    closed: bool = False

    def ensure_open(self) -> None:
        if self.closed:
            raise AgentClosedError("this agent was closed; create a new one")


class Conversation:
    """An independent history on an agent's settings; concurrent turns on it are serialized."""

    __slots__ = ("__weakref__", "_lock", "_runtime", "id")

    def __init__(self, conversation_id: str, runtime: Runtime) -> None:
        self.id = conversation_id
        self._runtime = runtime
        self._lock = asyncio.Lock()

    def chat(self, message: str, *, handler: EventHandler | None = None) -> Reply:
        """Send a user message; the returned reply runs the turn when consumed."""
        if not isinstance(message, str):
            raise ConfigurationError(f"message must be a str, got {type(message).__name__}")
        if handler is not None and not isinstance(handler, EventHandler):
            raise ConfigurationError("handler must be an instance of an EventHandler subclass")
        self._runtime.ensure_open()
        return Reply(lambda: self._turn(message), handler=handler)

    def chat_sync(self, message: str) -> str:
        """The blocking `chat`, for scripts and notebooks."""
        reply = self.chat(message)
        return self._runtime.sync.run(_await(reply))

    async def history(self) -> list[Message]:
        return await self._runtime.store.load(self.id)

    async def clear_history(self) -> None:
        async with self._lock:
            await self._runtime.store.save(self.id, [])

    def _turn(self, message: str) -> AsyncGenerator[RunEvent, None]:
        return run_turn(
            self._runtime.spec,
            _Scope(self),
            UserMessage(content=message),
            conversation_id=self.id,
            notify=self._runtime.notify,
        )


class _Scope:
    """One turn's hold on a conversation: the lock, the history read at the start, the commit."""

    __slots__ = ("_conversation", "_history")

    def __init__(self, conversation: Conversation) -> None:
        self._conversation = conversation
        self._history: list[Message] = []

    async def __aenter__(self) -> list[Message]:
        conversation = self._conversation
        await conversation._lock.acquire()
        try:
            conversation._runtime.ensure_open()
            self._history = await conversation._runtime.store.load(conversation.id)
        except BaseException:
            conversation._lock.release()
            raise
        return self._history

    async def __aexit__(self, *exc: object) -> None:
        self._conversation._lock.release()

    async def commit(self, messages: Sequence[Message]) -> None:
        runtime = self._conversation._runtime
        kept = trim_history([*self._history, *messages], runtime.history_max_size)
        await runtime.store.save(self._conversation.id, kept)


async def _await(reply: Reply) -> str:
    return await reply


def trim_history(messages: Sequence[Message], max_size: int | None) -> list[Message]:
    """Keep at most `max_size` messages, cut at a user message so no tool result loses its call.

    When even the last turn is longer than `max_size`, that whole turn is kept.
    """
    if max_size is None or len(messages) <= max_size:
        return list(messages)
    user_starts = [i for i, m in enumerate(messages) if isinstance(m, UserMessage)]
    for i in user_starts:
        if len(messages) - i <= max_size:
            return list(messages[i:])
    return list(messages[user_starts[-1] :]) if user_starts else list(messages[-max_size:])

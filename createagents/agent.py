"""The facade and composition root: `CreateAgent` wires adapters into the use cases.

The only module that knows every layer, and the only place that reads
environment variables.
"""

from __future__ import annotations

import logging
import math
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from .adapters.structured_logging import LoggingSink, register_secret
from .application.batch import run_many
from .application.conversation import Conversation, Runtime, Stateless
from .application.loop import AgentSpec
from .application.metrics import MetricsRecorder
from .application.ports import ChatModel, ConversationStore, MetricsSink, RunObserver
from .application.reply import Answer, EventHandler, Reply
from .application.tool_threads import DEFAULT_TOOL_THREADS, ToolThreads
from .application.tools import Tool, ToolBox, to_tool
from .domain.errors import ConfigurationError
from .domain.events import RunEvent
from .domain.messages import Message
from .domain.metrics import MetricsRecord
from .domain.settings import ModelSettings
from .providers import ApiKey, ProviderOptions, build_model

_log = logging.getLogger("createagents")

DEFAULT_CONVERSATION = "default"


class CreateAgent:
    """An agent: a model, instructions, tools and settings, with one history per conversation.

    `provider` is a name ("openai", "azure", "ollama", "test", or one
    registered under the `createagents.providers` entry point group) or a
    `ChatModel` object. `config` holds model settings (see `ModelSettings`);
    `provider_options` holds what only one provider understands (Ollama's
    `keep_alive`, for one).
    """

    def __init__(
        self,
        provider: str | ChatModel = "test",
        model: str | None = None,
        instructions: str | None = None,
        tools: Iterable[object] | None = None,
        config: Mapping[str, Any] | None = None,
        *,
        base_url: str | None = None,
        api_key: ApiKey | None = None,
        api_version: str | None = None,
        timeout: float = 600.0,
        max_retries: int = 2,
        provider_options: Mapping[str, Any] | None = None,
        max_turns: int = 10,
        tool_timeout: float = 60.0,
        tool_threads: int = DEFAULT_TOOL_THREADS,
        history_max_size: int | None = None,
        store: ConversationStore | None = None,
        observers: Iterable[RunObserver | Callable[[RunEvent], None]] = (),
        metrics_sinks: Iterable[MetricsSink | Callable[[MetricsRecord], None]] = (),
        metrics_limit: int = 10_000,
    ) -> None:
        _check_positive("max_turns", max_turns, int)
        _check_positive("tool_timeout", tool_timeout, (int, float))
        _check_positive("timeout", timeout, (int, float))
        _check_positive("metrics_limit", metrics_limit, int)
        _check_positive("tool_threads", tool_threads, int)
        if history_max_size is not None:
            _check_positive("history_max_size", history_max_size, int)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError(f"max_retries must be a whole number >= 0, got {max_retries!r}")
        if instructions is not None and not isinstance(instructions, str):
            raise ConfigurationError(f"instructions must be a str, got {type(instructions).__name__}")
        if tools is None:
            tools = ()
        if isinstance(tools, str | bytes) or not isinstance(tools, Iterable):
            raise ConfigurationError("tools must be a list of functions, tools or built-in tool names")

        if isinstance(api_key, str):
            register_secret(api_key)
        self.settings = ModelSettings.from_mapping(config)
        self.tools: tuple[Tool, ...] = tuple(_resolve_tool(t) for t in tools)
        self._model = build_model(
            provider,
            ProviderOptions(
                model=model,
                base_url=base_url,
                api_key=api_key,
                api_version=api_version,
                timeout=float(timeout),
                max_retries=max_retries,
                extra=dict(provider_options or {}),
            ),
        )
        self._model.check_settings(self.settings)  # what the provider cannot take fails now, not at the first chat
        self.model = model or getattr(self._model, "model", None) or "test"
        self.provider = self._model.provider
        self.instructions = instructions
        sinks = list(metrics_sinks)
        if not all(isinstance(s, MetricsSink) or callable(s) for s in sinks):
            raise ConfigurationError("metrics_sinks must be MetricsSink objects or callables taking a record")
        threads = ToolThreads(tool_threads)
        self._metrics = MetricsRecorder(limit=metrics_limit, sinks=[LoggingSink(), *sinks], tool_threads=threads)
        self._observers: list[Callable[[RunEvent], None]] = [self._metrics.observe]
        self._observers += [o.observe if isinstance(o, RunObserver) else o for o in observers]
        if not all(callable(o) for o in self._observers):
            raise ConfigurationError("observers must be RunObserver objects or callables taking an event")
        if store is None:
            from .adapters.memory_store import InMemoryConversationStore

            store = InMemoryConversationStore()
        self._stateless = Stateless()
        self._runtime = Runtime(
            spec=AgentSpec(
                model=self._model,
                model_name=self.model,
                instructions=instructions,
                toolbox=ToolBox(self.tools, default_timeout=float(tool_timeout), threads=threads),
                settings=self.settings,
                max_turns=max_turns,
            ),
            store=store,
            notify=self._notify,
            history_max_size=history_max_size,
        )
        # weak: a server that talks to millions of users must not keep a Conversation per id forever;
        # a conversation in use (by a caller or a running reply) stays the same object, and so keeps its lock
        self._conversations: weakref.WeakValueDictionary[str, Conversation] = weakref.WeakValueDictionary()
        self._default = self.conversation(DEFAULT_CONVERSATION)

    def __repr__(self) -> str:
        return f"CreateAgent(provider={self.provider!r}, model={self.model!r}, tools={[t.name for t in self.tools]})"

    # -- chatting ------------------------------------------------------------

    def conversation(self, conversation_id: str) -> Conversation:
        """An independent history with this agent's settings; the same id gives the same conversation."""
        if not isinstance(conversation_id, str) or not conversation_id:
            raise ConfigurationError("conversation_id must be a non-empty str")
        self._runtime.ensure_open()
        conv = self._conversations.get(conversation_id)
        if conv is None:
            conv = self._conversations[conversation_id] = Conversation(conversation_id, self._runtime)
        return conv

    def chat(self, message: str, *, handler: EventHandler | None = None) -> Reply:
        """Send a message on the default conversation: await the reply for text, iterate it for tokens.

        Calls started together run concurrently; each sees the history committed
        when it started and appends its own turn when it completes.
        """
        self._runtime.ensure_open()
        return self._default.chat(message, handler=handler)

    def ask(self, message: str, *, handler: EventHandler | None = None) -> Reply:
        """A one-shot call that reads and writes no history: the same `Reply` as `chat`.

        For independent questions, fan-outs with `asyncio.gather`, and servers
        that keep no per-user memory: nothing is stored, however many calls.
        """
        return self._runtime.reply(message, handler, "", self._stateless)

    async def chat_many(
        self,
        prompts: Iterable[str],
        *,
        concurrency: int = 8,
        return_exceptions: bool = False,
        progress: Callable[[int, int], Any] | None = None,
    ) -> list[Answer | Exception]:
        """Stateless calls (as `ask`) for many prompts, at most `concurrency` at a time; answers in input order.

        The first failure cancels the rest and is raised; with `return_exceptions=True`
        a failed prompt's exception takes its place in the list instead. `progress`
        (plain or async) is called with (done, total) after each prompt.
        """
        self._runtime.ensure_open()
        return await run_many(
            self._ask_answer,
            prompts,
            concurrency=concurrency,
            return_exceptions=return_exceptions,
            progress=progress,
        )

    async def _ask_answer(self, message: str) -> Answer:
        return await self.ask(message)

    def chat_sync(self, message: str) -> str:
        """The blocking `chat`, for scripts; works where an event loop already runs (notebooks)."""
        self._runtime.ensure_open()
        return self._default.chat_sync(message)

    async def history(self) -> list[Message]:
        return await self._default.history()

    def clear_history(self) -> Awaitable[None]:
        """Forget the default conversation's history; `await` it (a plain call clears all the same)."""
        return self._default.clear_history()

    # -- metrics -------------------------------------------------------------

    def metrics(self) -> list[MetricsRecord]:
        """The kept metric records, oldest first: one per model call and per tool call."""
        return list(self._metrics.records)

    def metrics_summary(self) -> dict[str, Any]:
        """Counts, error rates, latency / time-to-first-token percentiles (p50, p95, p99), token totals."""
        return self._metrics.summary()

    def export_metrics_json(self, path: str | Path | None = None) -> str:
        """The summary and the records as JSON; also written to `path` when given."""
        from .adapters.metrics_export import to_json

        return to_json(self._metrics, path)

    def export_metrics_prometheus(self, path: str | Path | None = None) -> str:
        """Prometheus text exposition of the running totals; also written to `path` when given."""
        from .adapters.metrics_export import to_prometheus

        return to_prometheus(self._metrics, path)

    # -- lifecycle -----------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._runtime.closed

    async def aclose(self) -> None:
        """Release the provider client and the store; later use raises `AgentClosedError`."""
        if self._runtime.closed:
            return
        self._runtime.closed = True
        try:
            await self._model.aclose()
            await self._runtime.store.aclose()
        finally:
            self._runtime.sync.close()

    def close(self) -> None:
        """The blocking `aclose`, for scripts that used `chat_sync`."""
        if not self._runtime.closed:
            self._runtime.sync.run(self.aclose())

    async def __aenter__(self) -> CreateAgent:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- internals -----------------------------------------------------------

    def _notify(self, event: RunEvent) -> None:
        for observe in self._observers:
            try:
                observe(event)
            except Exception:  # an observer's bug must not break the user's run
                _log.exception("run observer %r failed on %s", observe, event.kind)


def _resolve_tool(obj: object) -> Tool:
    if isinstance(obj, str):
        from .adapters.builtin_tools import builtin_tool

        return builtin_tool(obj)
    return to_tool(obj)


def _check_positive(name: str, value: object, types: type | tuple[type, ...]) -> None:
    """NaN passes `> 0` checks the wrong way and infinity overflows timers: both are refused."""
    if (
        isinstance(value, bool)
        or not isinstance(value, types)
        or not math.isfinite(value)  # type: ignore[arg-type]
        or value <= 0  # type: ignore[operator]
    ):
        raise ConfigurationError(f"{name} must be a finite number greater than 0, got {value!r}")


__all__: Sequence[str] = ["CreateAgent"]

"""The facade and composition root: `CreateAgent` wires adapters into the use cases.

The only module that knows every layer. It reads `CREATEAGENTS_PROVIDER`
and `CREATEAGENTS_MODEL` when no provider is given; each provider reads its
own variables in `providers.py`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeVar, overload

from .adapters.structured_logging import LoggingSink, register_secret
from .application.background import BackgroundRun, BackgroundRuns
from .application.batch import run_many
from .application.conversation import UNSET, Conversation, Runtime, Stateless, Unset
from .application.loop import DEFAULT_APPROVAL_TIMEOUT, AgentSpec, Approver
from .application.metrics import MetricsRecorder
from .application.output import check_options as check_output_options
from .application.ports import ChatModel, ConversationStore, MetricsSink, RunLog, RunObserver
from .application.reply import EventHandler, OutT, Reply
from .application.tool_threads import ToolThreads
from .application.tools import ClientTool, Tool, ToolBox, to_tools
from .application.toolsets import Toolset
from .domain.errors import ConfigurationError
from .domain.events import RunEvent
from .domain.limits import RunLimits
from .domain.messages import AssistantMessage, HostedTool, Message, SystemMessage, ToolMessage, UserMessage
from .domain.metrics import MetricsRecord, ModelCallRecord
from .domain.output import OutputMode
from .domain.pending import Decision, Paused
from .domain.settings import ModelSettings
from .environment import configure_logging_from_environment, environment_limits
from .providers import ApiKey, ProviderOptions, build_model

_log = logging.getLogger("createagents")

T = TypeVar("T")
DEFAULT_CONVERSATION = "default"
PROVIDER_VARIABLE = "CREATEAGENTS_PROVIDER"
MODEL_VARIABLE = "CREATEAGENTS_MODEL"
_DEFAULTS = RunLimits()
_MESSAGE_TYPES = (SystemMessage, UserMessage, AssistantMessage, ToolMessage)


class CreateAgent(Generic[OutT]):
    """An agent: a model, instructions, tools and settings, with one history per conversation.

    `provider` is a name ("openai", "azure", "ollama", "test", or one
    registered under the `createagents.providers` entry point group) or a
    `ChatModel` object. Without it, the environment variable
    `CREATEAGENTS_PROVIDER` names the provider (and `CREATEAGENTS_MODEL` the
    model, when `model` is not given); with neither, building the agent is a
    `ConfigurationError`. Every other argument is keyword-only. `config` holds
    model settings (see `ModelSettings`); `provider_options` holds what only
    one provider understands (Ollama's `keep_alive`, for one); the numeric
    limits are checked by `RunLimits`. `api` chooses OpenAI's API for
    "openai" and "azure": "chat" (Chat Completions, the default, which every
    OpenAI-compatible server speaks) or "responses" (the Responses API:
    reasoning kept across turns, hosted tools from `createagents.openai_tools`).

    Approvals: a tool made with `@tool(requires_approval=...)`, or named by
    `require_approval` (True: every tool), pauses its turn before it runs;
    `approver` (plain or async, given the `PendingCall`) may decide as code
    (True, False, `Deny(reason)`) or return None to leave it to a person. A
    paused turn waits at most `approval_timeout` seconds (default 24 hours).

    Structured output: with `output_type` (a pydantic model, a dataclass, a
    `TypedDict`, a list of those, a `Literal` or an enum) awaiting a reply
    gives a validated value of that type instead of text. The model is asked
    in its provider's strongest way, or as `output_mode` says ("native",
    "tool", "prompted"); an answer that does not fit is sent back with the
    errors up to `output_retries` times, then `OutputValidationError`.
    """

    def __init__(
        self,
        provider: str | ChatModel | None = None,
        model: str | None = None,
        name: str | None = None,
        instructions: str | None = None,
        config: Mapping[str, Any] | None = None,
        tools: Iterable[object] | None = None,
        history_max_size: int | None = _DEFAULTS.history_max_size,
        *,
        base_url: str | None = None,
        api_key: ApiKey | None = None,
        api_version: str | None = None,
        api: str = "chat",
        timeout: float | None = None,
        max_retries: int | None = None,
        provider_options: Mapping[str, Any] | None = None,
        max_turns: int | None = None,
        tool_timeout: float = _DEFAULTS.tool_timeout,
        tool_threads: int = _DEFAULTS.tool_threads,
        history_max_tokens: int | None = _DEFAULTS.history_max_tokens,
        store: ConversationStore | str | None = None,
        observers: Iterable[RunObserver | Callable[[RunEvent], None]] = (),
        metrics_sinks: Iterable[MetricsSink | Callable[[MetricsRecord], None]] = (),
        metrics_limit: int = _DEFAULTS.metrics_limit,
        require_approval: bool | Iterable[str] = False,
        approver: Approver | None = None,
        approval_timeout: float = DEFAULT_APPROVAL_TIMEOUT,
        output_type: type[OutT] | None = None,
        output_mode: OutputMode | None = None,
        output_retries: int = 1,
    ) -> None:
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ConfigurationError(f"name must be a non-empty str, got {name!r}")
        self.name = name
        provider, model = _provider_and_model(provider, model)
        if isinstance(provider, str):
            provider = provider.strip().lower()  # "OpenAI" and "openai" are one provider, as in createagents 0.3
        from_env = environment_limits(provider if isinstance(provider, str) else "")
        self.limits = limits = RunLimits(
            max_turns=_first(max_turns, from_env.get("max_turns"), _DEFAULTS.max_turns),
            tool_timeout=tool_timeout,
            tool_threads=tool_threads,
            history_max_size=history_max_size,
            history_max_tokens=history_max_tokens,
            metrics_limit=metrics_limit,
            timeout=_first(timeout, from_env.get("timeout"), _DEFAULTS.timeout),
            max_retries=_first(max_retries, from_env.get("max_retries"), _DEFAULTS.max_retries),
        )
        configure_logging_from_environment()
        self.instructions = _instructions(instructions)
        self.settings = ModelSettings.from_mapping(config)
        self.tools: tuple[Tool | ClientTool | Toolset | HostedTool, ...] = to_tools(tools, _builtin_tool)
        if approver is not None and not callable(approver):
            raise ConfigurationError(f"approver must be a function of the pending call, got {approver!r}")
        if (
            isinstance(approval_timeout, bool)
            or not isinstance(approval_timeout, int | float)
            or not 0 < approval_timeout < float("inf")
        ):
            raise ConfigurationError(
                f"approval_timeout must be a finite number of seconds > 0, got {approval_timeout!r}"
            )
        self.approver = approver  # a server consults it before refusing an approval over Chat Completions
        if isinstance(api_key, str):
            register_secret(api_key)
        self._model = build_model(
            provider,
            ProviderOptions(
                model=model,
                base_url=base_url,
                api_key=api_key,
                api_version=api_version,
                timeout=limits.timeout,
                max_retries=limits.max_retries,
                api=api,
                extra=dict(provider_options or {}),
            ),
        )
        self._model.check_settings(self.settings)  # what the provider cannot take fails now, not at the first chat
        _check_hosted(self._model, self.tools)
        self.model = model or getattr(self._model, "model", None) or "test"
        self.provider = self._model.provider
        threads = ToolThreads(limits.tool_threads)
        self._metrics = MetricsRecorder(
            limit=limits.metrics_limit, sinks=[LoggingSink(name), *metrics_sinks], tool_threads=threads
        )
        self._observers: list[Callable[[RunEvent], None]] = [self._metrics.observe, *_observer_callables(observers)]
        store = _store(store)
        self._stateless = Stateless()
        self._runtime = Runtime(
            spec=AgentSpec(
                model=self._model,
                model_name=self.model,
                instructions=self.instructions,
                toolbox=ToolBox(
                    self.tools,
                    default_timeout=limits.tool_timeout,
                    threads=threads,
                    require_approval=require_approval,
                ),
                settings=self.settings,
                max_turns=limits.max_turns,
                approver=approver,
                approval_timeout=float(approval_timeout),
            ),
            store=store,
            notify=self._notify,
            history_max_size=limits.history_max_size,
            history_max_tokens=limits.history_max_tokens,
            output_mode=output_mode,
            output_retries=output_retries,
        )
        check_output_options(output_mode, output_retries)
        if output_type is not None:
            self._runtime.spec = dataclasses.replace(self._runtime.spec, output=self._runtime.output_for(output_type))
        self.output_type = output_type
        # weak: a server that talks to millions of users must not keep a Conversation per id forever;
        # a conversation in use (by a caller or a running reply) stays the same object, and so keeps its lock
        self._conversations: weakref.WeakValueDictionary[str, Conversation[OutT]] = weakref.WeakValueDictionary()
        self._default = self.conversation(DEFAULT_CONVERSATION)
        self._background: BackgroundRuns | None = None

    def __repr__(self) -> str:
        named = f"name={self.name!r}, " if self.name else ""
        tools = [t.name for t in self.tools]
        return f"CreateAgent({named}provider={self.provider!r}, model={self.model!r}, tools={tools})"

    # -- chatting ------------------------------------------------------------

    def as_tool(self, name: str, description: str, *, timeout: float | None = None) -> Tool:
        """This agent as a tool of another: the model of the other agent hands it a task in words.

        The sub-agent runs its own loop with its own model, tools and metrics,
        statelessly; its events reach the parent run's observers as
        `NestedEvent`s, and its failure reaches the parent model as a tool error.
        """
        from .application.agent_tool import agent_tool

        return agent_tool(self, name=name, description=description, timeout=timeout)

    def conversation(self, conversation_id: str) -> Conversation[OutT]:
        """An independent history with this agent's settings; the same id gives the same conversation."""
        if not isinstance(conversation_id, str) or not conversation_id:
            raise ConfigurationError("conversation_id must be a non-empty str")
        self._runtime.ensure_open()
        conv = self._conversations.get(conversation_id)
        if conv is None:
            conv = self._conversations[conversation_id] = Conversation(conversation_id, self._runtime)
        return conv

    @overload
    def chat(
        self,
        message: str,
        *,
        handler: EventHandler | None = None,
        config: Mapping[str, Any] | None = None,
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
        output_type: Any,
        instructions: str | None = None,
    ) -> Reply[Any]: ...
    def chat(
        self,
        message: str,
        *,
        handler: EventHandler | None = None,
        config: Mapping[str, Any] | None = None,
        output_type: Any = None,
        instructions: str | None = None,
    ) -> Reply[Any]:
        """Send a message on the default conversation: await the reply for text, iterate it for tokens.

        Calls started together run concurrently; each sees the history committed
        when it started and appends its own turn when it completes. `config`
        overrides the agent's model settings, `output_type` its output type
        (`str`: text) and `instructions` its instructions, for this call only.
        """
        self._runtime.ensure_open()
        return self._default.chat(
            message, handler=handler, config=config, output_type=output_type, instructions=instructions
        )

    @overload
    def ask(
        self,
        message: str | None,
        *,
        handler: EventHandler | None = None,
        history: Sequence[Message] = (),
        config: Mapping[str, Any] | None = None,
        client_tools: Sequence[ClientTool] = (),
        approver: Approver | Unset | None = UNSET,
        output_type: None = None,
        instructions: str | None = None,
    ) -> Reply[OutT]: ...
    @overload
    def ask(
        self,
        message: str | None,
        *,
        handler: EventHandler | None = None,
        history: Sequence[Message] = (),
        config: Mapping[str, Any] | None = None,
        client_tools: Sequence[ClientTool] = (),
        approver: Approver | Unset | None = UNSET,
        output_type: type[T],
        instructions: str | None = None,
    ) -> Reply[T]: ...
    @overload
    def ask(
        self,
        message: str | None,
        *,
        handler: EventHandler | None = None,
        history: Sequence[Message] = (),
        config: Mapping[str, Any] | None = None,
        client_tools: Sequence[ClientTool] = (),
        approver: Approver | Unset | None = UNSET,
        output_type: Any,
        instructions: str | None = None,
    ) -> Reply[Any]: ...
    def ask(
        self,
        message: str | None,
        *,
        handler: EventHandler | None = None,
        history: Sequence[Message] = (),
        config: Mapping[str, Any] | None = None,
        client_tools: Sequence[ClientTool] = (),
        approver: Approver | Unset | None = UNSET,
        output_type: Any = None,
        instructions: str | None = None,
    ) -> Reply[Any]:
        """A one-shot call that stores nothing: the same `Reply` as `chat`.

        For independent questions, fan-outs with `asyncio.gather`, and servers
        that keep no per-user memory: nothing is stored, however many calls.
        `history` is what the model sees before `message` (a served request's
        earlier messages, say); with `message=None` the turn goes on from a
        history that ends with client tool results. `config` overrides model
        settings, `client_tools` adds tools the caller runs, and `approver`,
        `output_type` and `instructions` replace the agent's, for this call only. A paused stateless turn
        keeps its state in `reply.paused`, for `resume`.
        """
        runtime = self._runtime
        if isinstance(history, str | bytes) or not isinstance(history, Iterable):
            raise ConfigurationError("history must be a list of messages (UserMessage, AssistantMessage, ...)")
        history = tuple(history)  # once: a generator would be used up by the check
        if not all(isinstance(m, _MESSAGE_TYPES) for m in history):
            raise ConfigurationError("history must be a list of messages (UserMessage, AssistantMessage, ...)")
        if message is None and not (history and isinstance(history[-1], ToolMessage)):
            raise ConfigurationError("ask(None) goes on from tool results: the history must end with a ToolMessage")
        scope = Stateless(history) if history else self._stateless
        output = UNSET if output_type is None else runtime.output_for(output_type)
        settings = runtime.settings_for(config)
        return runtime.reply(message, handler, "", scope, settings, client_tools, approver, output, instructions)

    async def chat_many(
        self,
        prompts: Iterable[str],
        *,
        concurrency: int = 8,
        return_exceptions: bool = False,
        progress: Callable[[int, int], Any] | None = None,
    ) -> list[OutT | Exception]:
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

    async def _ask_answer(self, message: str) -> OutT:
        return await self.ask(message)

    def resume(
        self,
        paused: Paused | str,
        *,
        approvals: Mapping[str, Decision] | None = None,
        outputs: Mapping[str, Any] | None = None,
        handler: EventHandler | None = None,
    ) -> Reply[OutT]:
        """Resume a paused turn with decisions: `reply.paused`, or a turn id of the default conversation.

        `approvals` maps each call waiting for approval to True, False or
        `Deny(reason)` (the model reads the reason as the tool's result);
        `outputs` maps each client tool call to its output. A conversation's
        turn resumes once, from any agent sharing the store; a stateless
        (`ask`) turn travels in its `Paused`. Errors: `TurnNotPausedError`,
        `InvalidDecisionsError` (nothing changed), `ApprovalExpiredError`.
        """
        if isinstance(paused, Paused) and paused.conversation_id is not None:
            return self.conversation(paused.conversation_id).resume(
                paused, approvals=approvals, outputs=outputs, handler=handler
            )
        if isinstance(paused, Paused):
            return self._runtime.resume(paused, "", approvals, outputs, handler)
        return self._default.resume(paused, approvals=approvals, outputs=outputs, handler=handler)

    async def background(
        self, message: str, *, conversation: str | None = None, config: Mapping[str, Any] | None = None
    ) -> BackgroundRun:
        """Start a turn that runs on in this process whatever happens to the caller; a handle to it.

        Its events are numbered and kept in the agent's store (which must keep
        runs: memory, SQLite and Redis do), so `agent.attach(run.id)`, from any
        agent on the same store, replays them after a sequence number and
        follows the run live. With `conversation` the turn appends to that
        conversation when it completes; without, it is stateless (as `ask`).
        """
        runs = self._runs()

        def make_reply() -> Reply[Any]:
            if conversation is None:
                return self.ask(message, config=config)
            return self.conversation(conversation).chat(message, config=config)

        make_reply().close()  # bad input is refused here, not in the run; a run cancelled while queued makes none
        run_id = f"run_{uuid.uuid4().hex}"
        await runs.start(run_id, make_reply)
        return BackgroundRun(runs, run_id)

    def attach(self, run_id: str) -> BackgroundRun:
        """A handle on a background run started by any agent on this agent's store."""
        if not isinstance(run_id, str) or not run_id:
            raise ConfigurationError("run_id must be a non-empty str")
        return BackgroundRun(self._runs(), run_id)

    def _runs(self) -> BackgroundRuns:
        self._runtime.ensure_open()
        if self._background is None:
            store = self._runtime.store
            if not isinstance(store, RunLog):
                raise ConfigurationError(
                    f"background runs need a store that keeps runs (memory, SQLite, Redis); this agent's store "
                    f"is a {type(store).__name__}"
                )
            self._background = BackgroundRuns(store)
        return self._background

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
        """The blocking `chat`, for scripts; works where an event loop already runs (notebooks)."""
        self._runtime.ensure_open()
        return self._default.chat_sync(
            message, handler=handler, config=config, output_type=output_type, instructions=instructions
        )

    @property
    def store(self) -> ConversationStore:
        """Where this agent's conversations live (the store port; a server keeps its response snapshots there)."""
        return self._runtime.store

    async def conversations(self, *, after: str | None = None, limit: int = 100) -> list[str]:
        """Stored conversation ids in order, a page of at most `limit` after the id `after`."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigurationError(f"limit must be a whole number >= 1, got {limit!r}")
        self._runtime.ensure_open()
        return await self._runtime.store.list_ids(after=after, limit=limit)

    async def delete_conversation(self, conversation_id: str) -> None:
        """Forget a conversation everywhere its store keeps it: history and paused turns."""
        if not isinstance(conversation_id, str) or not conversation_id:
            raise ConfigurationError("conversation_id must be a non-empty str")
        self._runtime.ensure_open()
        await self._runtime.store.delete(conversation_id)

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

    def export_metrics_json(self, path: str | Path | None = None, *, filepath: str | Path | None = None) -> str:
        """The summary and the records as JSON; also written to `path` (0.3's `filepath`) when given."""
        from .adapters.metrics_export import to_json

        return to_json(self._metrics, path if path is not None else filepath)

    def export_metrics_prometheus(self, path: str | Path | None = None, *, filepath: str | Path | None = None) -> str:
        """Prometheus text exposition of the running totals; also written to `path` (or `filepath`) when given."""
        from .adapters.metrics_export import to_prometheus

        return to_prometheus(self._metrics, path if path is not None else filepath)

    # -- createagents 0.3's names (docs/migrating.md) -------------------------

    def get_configs(self) -> dict[str, Any]:
        """The agent's configuration, keyed as createagents 0.3 keyed it.

        `history` is the default conversation's (a list of `{"role", "content"}`)
        when the store can be read without awaiting (the in-memory one), else None:
        `await agent.history()` reads any store.
        """
        from .adapters.memory_store import InMemoryConversationStore

        store = self._runtime.store
        history = (
            [{"role": m.role, "content": m.content} for m in store.peek(DEFAULT_CONVERSATION)]
            if isinstance(store, InMemoryConversationStore)
            else None
        )
        settings = {k: v for k, v in dataclasses.asdict(self.settings).items() if v is not None}
        return {
            "provider": self.provider,
            "model": self.model,
            "name": self.name,
            "instructions": self.instructions,
            "config": settings,
            "tools": [t.name for t in self.tools] or None,
            "history": history,
            "history_max_size": self.limits.history_max_size,
        }

    def get_system_available_tools(self) -> dict[str, str]:
        """The built-in tools, by name: their descriptions (`tools=["currentdate"]` picks one)."""
        from .adapters.builtin_tools import BUILTIN_TOOLS

        return {name: t.description for name, t in BUILTIN_TOOLS.items()}

    def get_all_available_tools(self) -> dict[str, str]:
        """The built-in tools and this agent's own, by name: their descriptions."""
        tools = self.get_system_available_tools()
        for t in self.tools:
            tools.setdefault(t.name, t.description)
        return tools

    def get_metrics(self) -> list[ModelCallRecord]:
        """createagents 0.3's `get_metrics`: the model-call records (`latency_ms`, `tokens_used`... as aliases)."""
        return [r for r in self._metrics.records if isinstance(r, ModelCallRecord)]

    def start_cli(self) -> None:
        """The interactive chat of `createagents chat`, on this agent, in the terminal (blocking).

        Commands: /help, /metrics, /configs, /tools, /clear, and exit (or /exit, Ctrl-D).
        Call it from a plain script, not from inside a running event loop.
        """
        import asyncio

        from .cli._chat import Repl, _read_line

        with asyncio.Runner() as runner:
            Repl(self, runner, read=_read_line, out=sys.stdout, err=sys.stderr).loop()

    # -- synchronous and AI-SDK-style calls -----------------------------------

    def chat_sync_stream(self, message: str, **kw: Any) -> Iterator[str]:
        """The tokens of `chat(message)` for code that is not async: `for token in agent.chat_sync_stream(msg)`."""
        return self._runtime.sync.iterate(self.chat(message, **kw).__aiter__())

    def events_sync(self, message: str, **kw: Any) -> Iterator[RunEvent]:
        """The events of `chat(message)` for code that is not async."""
        return self._runtime.sync.iterate(self.chat(message, **kw).events())

    @overload
    async def acall(
        self,
        message: str,
        *,
        handler: EventHandler | None = None,
        config: Mapping[str, Any] | None = None,
        output_type: None = None,
        instructions: str | None = None,
    ) -> OutT: ...
    @overload
    async def acall(
        self,
        message: str,
        *,
        handler: EventHandler | None = None,
        config: Mapping[str, Any] | None = None,
        output_type: type[T],
        instructions: str | None = None,
    ) -> T: ...
    @overload
    async def acall(
        self,
        message: str,
        *,
        handler: EventHandler | None = None,
        config: Mapping[str, Any] | None = None,
        output_type: Any,
        instructions: str | None = None,
    ) -> Any: ...
    async def acall(
        self,
        message: str,
        *,
        handler: EventHandler | None = None,
        config: Mapping[str, Any] | None = None,
        output_type: Any = None,
        instructions: str | None = None,
    ) -> Any:
        """`await agent.chat(message)`, under an AI SDK client's name."""
        return await self.chat(
            message, handler=handler, config=config, output_type=output_type, instructions=instructions
        )

    call = chat_sync  # an AI SDK client's name for the blocking call

    def astream(self, message: str, **kw: Any) -> AsyncIterator[str]:
        """`async for token in agent.chat(message)`, under an AI SDK client's name."""
        return self.chat(message, **kw).__aiter__()

    stream = chat_sync_stream  # an AI SDK client's name for the blocking stream

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
            if self._background is not None:
                await self._background.aclose()
            await self._model.aclose()
            await self._runtime.store.aclose()
            for toolset in self._runtime.spec.toolbox.toolsets:
                await toolset.aclose()
        finally:
            self._runtime.spec.toolbox.threads.close()
            self._runtime.sync.close()

    def close(self) -> None:
        """The blocking `aclose`, for scripts that used `chat_sync`."""
        if not self._runtime.closed:
            self._runtime.sync.run(self.aclose())

    async def __aenter__(self) -> CreateAgent[OutT]:
        """Connect the agent's toolsets (MCP servers) now, rather than at the first run."""
        try:
            for toolset in self._runtime.spec.toolbox.toolsets:
                await toolset.start()
        except BaseException:  # the ones started before it stop too: __aexit__ will not run
            await self.aclose()
            raise
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


def _provider_and_model(provider: str | ChatModel | None, model: str | None) -> tuple[str | ChatModel, str | None]:
    """The provider and model as given, else as `CREATEAGENTS_PROVIDER` and `CREATEAGENTS_MODEL` name them."""
    if provider is not None:
        return provider, model
    named = os.environ.get(PROVIDER_VARIABLE)
    if not named:
        raise ConfigurationError(
            'CreateAgent needs a provider: provider="openai" | "azure" | "ollama" | "test", '
            f"or a ChatModel object (or set the environment variable {PROVIDER_VARIABLE})"
        )
    return named, model or os.environ.get(MODEL_VARIABLE) or None


def _store(store: ConversationStore | str | None) -> ConversationStore:
    """The default in-memory store, a store object, or the store a URL names (`createagents.stores`)."""
    if store is None:
        from .adapters.memory_store import InMemoryConversationStore

        return InMemoryConversationStore()
    if isinstance(store, ConversationStore):
        return store
    from .stores import store_from_url

    return store_from_url(store)


def _check_hosted(model: ChatModel, tools: Iterable[object]) -> None:
    for t in tools:
        if isinstance(t, HostedTool) and t.type not in model.hosted_tool_types:
            offered = ", ".join(sorted(model.hosted_tool_types)) or "none"
            raise ConfigurationError(
                f"the hosted tool {t.type!r} runs on the provider's side, and {model.provider!r} "
                f"({type(model).__name__}) does not run it; hosted tools it runs: {offered}"
                + ("; OpenAI's hosted tools need api='responses'" if model.provider in ("openai", "azure") else "")
            )


def _instructions(instructions: object) -> str | None:
    if instructions is not None and not isinstance(instructions, str):
        raise ConfigurationError(f"instructions must be a str, got {type(instructions).__name__}")
    return instructions


def _first(*values: Any) -> Any:
    return next(v for v in values if v is not None)


def _builtin_tool(name: str) -> Tool:
    from .adapters.builtin_tools import builtin_tool

    return builtin_tool(name)


def _observer_callables(
    observers: Iterable[RunObserver | Callable[[RunEvent], None]],
) -> list[Callable[[RunEvent], None]]:
    found = [o.observe if isinstance(o, RunObserver) else o for o in observers]
    if not all(callable(o) for o in found):
        raise ConfigurationError("observers must be RunObserver objects or callables taking an event")
    return found


__all__: Sequence[str] = ["CreateAgent"]

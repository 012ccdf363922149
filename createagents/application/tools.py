"""Tools: turning Python callables into tool specs, and running the calls a model asks for.

A tool is a plain function (sync or async), a function decorated with
`@tool`, or a `BaseTool` subclass. The JSON schema comes from the type hints
and the docstring, through pydantic (imported on first use, so that
`import createagents` stays fast). Inside a run, whatever goes wrong in a
call (bad arguments, an unknown name, an exception, a timeout) becomes an
error result for the model: the run goes on and the model can recover. A
direct call (`await my_tool({...})`) raises `ToolError` or
`ToolTimeoutError` instead.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import copy
import dataclasses
import datetime
import enum
import inspect
import json
import logging
import math
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias, overload

from ..domain.errors import ConfigurationError, ToolError, ToolTimeoutError
from ..domain.events import ToolCallFinished
from ..domain.messages import HostedTool, ToolCall, ToolSpec
from ..domain.pending import PendingKind
from .nesting import PARENT_RUN, ParentRun
from .tool_threads import Job, ToolThreads

if TYPE_CHECKING:
    from .toolsets import Toolset

ApprovalRule: TypeAlias = bool | Callable[[dict[str, Any]], bool | Awaitable[bool]]
"""When a tool needs approval: always, never, or when a predicate over its validated arguments says so."""

_log = logging.getLogger("createagents")
_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")  # the providers' rule, matched in full (`$` allows a final newline)


class Tool:
    """A callable the model may use: its spec, its argument validator and its function."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
        secret_args: Iterable[str] = (),
        requires_approval: ApprovalRule = False,
        parameters: Mapping[str, Any] | None = None,
    ) -> None:
        if not callable(fn):
            raise ConfigurationError(f"a tool must be callable, got {fn!r}")
        self.fn = fn
        self.name: str = name or str(getattr(fn, "__name__", type(fn).__name__))
        if not _NAME.fullmatch(self.name):
            raise ConfigurationError(
                f"tool name {self.name!r} must be 1-64 letters, digits, '_' or '-'; name it with @tool(name=...)"
            )
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout < math.inf
        ):
            raise ConfigurationError(f"tool {self.name!r}: timeout must be a finite number > 0, got {timeout!r}")
        self.timeout = timeout
        self.secret_args = frozenset(secret_args)
        if not isinstance(requires_approval, bool) and not callable(requires_approval):
            raise ConfigurationError(
                f"tool {self.name!r}: requires_approval must be True, False or a function of the arguments, "
                f"got {requires_approval!r}"
            )
        self.requires_approval = requires_approval
        doc_summary, arg_docs = _parse_docstring(inspect.getdoc(fn) or "")
        self.description = description if description is not None else doc_summary
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - an object whose __call__ is async
        )
        if parameters is None:
            self._model: Any = _arguments_model(self.name, fn, arg_docs)
            schema = _without_titles(self._model.model_json_schema())
            schema.setdefault("properties", {})
        else:  # the schema is given (an MCP server's tool, a 0.3 `BaseTool`): the function validates
            self._model = None
            schema = _object_schema(self.name, parameters)
        self.spec = ToolSpec(name=self.name, description=self.description, parameters=schema)

    def renamed(self, name: str) -> Tool:
        """This tool under another name (two sources offered the same one); the function is shared."""
        if not _NAME.fullmatch(name):
            raise ConfigurationError(f"tool name {name!r} must be 1-64 letters, digits, '_' or '-'")
        clone = copy.copy(self)
        clone.name = name
        clone.spec = dataclasses.replace(self.spec, name=name)
        return clone

    def __repr__(self) -> str:
        return f"Tool(name={self.name!r})"

    def scrub(self, text: str, arguments: Mapping[str, Any]) -> str:
        """`text` with the values of secret arguments masked."""
        for name in self.secret_args:
            value = arguments.get(name)
            if value is not None and str(value):
                text = text.replace(str(value), "***")
        return text

    def bind(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments for the function, validated (and coerced) by the schema."""
        if self._model is None:
            return dict(arguments)
        validated = self._model.model_validate(arguments)
        return {k: getattr(validated, k) for k in type(validated).model_fields}

    async def __call__(self, arguments: Mapping[str, Any]) -> Any:
        """Validate `arguments` and call the function, for direct use; in a run, the agent's `ToolBox` calls it.

        Raises `ToolError` when the schema refuses the arguments and
        `ToolTimeoutError` past the tool's own `timeout` (a sync function's
        thread cannot be stopped and runs on; its result is dropped). What
        the function raises propagates as it is; a `ToolError` it raises
        gets this tool's name as `tool_name` when it has none.
        """
        try:
            kwargs = self.bind(arguments)
        except Exception as e:
            if not _is_validation_error(e):
                raise
            raise ToolError(_invalid_arguments(self.name, e), tool_name=self.name) from e
        deadline = asyncio.timeout(self.timeout)  # None: no limit
        try:
            async with deadline:
                return await self._invoke(kwargs)
        except TimeoutError as e:
            if self.timeout is None or not deadline.expired():  # the function's own TimeoutError
                raise
            raise ToolTimeoutError(_timed_out(self.name, self.timeout), tool_name=self.name) from e
        except ToolError as e:
            if not e.tool_name:
                e.tool_name = self.name
            raise

    async def _invoke(self, kwargs: dict[str, Any]) -> Any:
        if self.is_async:
            return await self.fn(**kwargs)
        result = await asyncio.to_thread(self.fn, **kwargs)
        if inspect.isawaitable(result):  # a sync wrapper around a coroutine function
            return await result
        return result


class BaseTool:
    """Subclass for tools that hold state or configuration.

    Write `run` (plain or `async def`): its signature and docstring make the
    schema. Or, as createagents 0.3 tools do, write `execute(**kwargs)` and a
    `parameters` JSON schema: that schema is then what the model sees, as it is.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    parameters: ClassVar[dict[str, Any] | None] = None
    timeout: ClassVar[float | None] = None
    requires_approval: ClassVar[ApprovalRule] = False

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Do the work; may be `async def`."""
        raise NotImplementedError

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        """createagents 0.3's name for `run`."""
        raise NotImplementedError

    def as_tool(self) -> Tool:
        cls = type(self)
        name = self.name or _snake(cls.__name__)
        description = self.description or inspect.getdoc(cls) or ""
        # read from the class, not the instance: a function there would be bound as a method
        rule = next((vars(k)["requires_approval"] for k in cls.__mro__ if "requires_approval" in vars(k)), False)
        if isinstance(rule, staticmethod):
            rule = rule.__func__
        if cls.run is not BaseTool.run:
            fn = self.run
        elif cls.execute is not BaseTool.execute:
            fn = self.execute
        else:
            raise ConfigurationError(f"tool class {cls.__name__} needs a `run` method (or 0.3's `execute`)")
        return Tool(
            fn,
            name=name,
            description=description,
            timeout=self.timeout,
            requires_approval=rule,
            parameters=self.parameters,
        )


class ClientTool:
    """A tool the caller runs: a name, a description and a JSON schema, no implementation.

    When the model calls it, the turn pauses with the call pending; the caller
    runs it wherever it lives (a browser, another service) and resumes the
    turn with its output.
    """

    def __init__(self, name: str, description: str = "", parameters: Mapping[str, Any] | None = None) -> None:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigurationError(f"client tool name {name!r} must be 1-64 letters, digits, '_' or '-'")
        if not isinstance(description, str):
            raise ConfigurationError(f"client tool {name!r}: description must be a str")
        schema = dict(parameters) if parameters is not None else {"type": "object", "properties": {}}
        if not isinstance(parameters, Mapping | None) or schema.get("type") != "object":
            raise ConfigurationError(
                f"client tool {name!r}: parameters must be a JSON schema object ({{'type': 'object', ...}})"
            )
        self.name = name
        self.description = description
        self.spec = ToolSpec(name=name, description=description, parameters=schema)

    def __repr__(self) -> str:
        return f"ClientTool(name={self.name!r})"


def client_tool(name: str, description: str = "", parameters: Mapping[str, Any] | None = None) -> ClientTool:
    """Declare a tool the caller runs (see `ClientTool`); `parameters` is its JSON schema."""
    return ClientTool(name, description, parameters)


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...
@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    secret_args: Iterable[str] = (),
    requires_approval: ApprovalRule = False,
) -> Callable[[Callable[..., Any]], Tool]: ...
def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    secret_args: Iterable[str] = (),
    requires_approval: ApprovalRule = False,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a tool of a function, as `@tool` or `@tool(name=..., description=..., timeout=...)`.

    The decorated object stays callable as a tool (`await t({"a": 1})`); the
    original function is `t.fn`. With `requires_approval` (True, or a
    function of the validated arguments), a run pauses before the call until
    someone approves it; a direct call runs at once, its caller decided.
    """

    def wrap(f: Callable[..., Any]) -> Tool:
        return Tool(
            f,
            name=name,
            description=description,
            timeout=timeout,
            secret_args=secret_args,
            requires_approval=requires_approval,
        )

    return wrap(fn) if fn is not None else wrap


def to_tool(obj: object) -> Tool | ClientTool | Toolset | HostedTool:
    """Normalise what a user passes in `tools=[...]`."""
    from .toolsets import Toolset

    if isinstance(obj, Tool | ClientTool | Toolset | HostedTool):
        return obj
    if isinstance(obj, BaseTool):
        return obj.as_tool()
    if isinstance(obj, type) and issubclass(obj, BaseTool):
        return obj().as_tool()
    if callable(obj):
        return Tool(obj)
    raise ConfigurationError(
        f"cannot use {obj!r} as a tool: pass a function, a @tool, a BaseTool or a built-in tool name"
    )


def to_tools(
    objs: Iterable[object] | None, builtin: Callable[[str], Tool]
) -> tuple[Tool | ClientTool | Toolset | HostedTool, ...]:
    """Normalise a user's `tools=[...]`; `builtin` resolves the names of built-in tools."""
    if objs is None:
        return ()
    if isinstance(objs, str | bytes) or not isinstance(objs, Iterable):
        raise ConfigurationError("tools must be a list of functions, tools or built-in tool names")
    return tuple(builtin(obj) if isinstance(obj, str) else to_tool(obj) for obj in objs)


class ToolBox:
    """The tools of one agent, by name, and the running of a model turn's calls.

    Sync tools run on `threads`, a bounded pool of the agent's own (see
    `tool_threads`), never on the event loop's default executor.
    """

    def __init__(
        self,
        tools: Iterable[Tool | ClientTool | Toolset | HostedTool],
        *,
        default_timeout: float,
        threads: ToolThreads | None = None,
        require_approval: bool | Iterable[str] = False,
    ) -> None:
        from .toolsets import Toolset

        self.tools: dict[str, Tool] = {}
        self.client: dict[str, ClientTool] = {}
        toolsets: list[Toolset] = []
        hosted: list[HostedTool] = []
        specs = []
        for t in tools:
            if isinstance(t, Toolset):
                toolsets.append(t)
                continue
            if isinstance(t, HostedTool):
                hosted.append(t)
                continue
            if t.name in self.tools or t.name in self.client:
                raise ConfigurationError(f"two tools are named {t.name!r}; tool names must be unique")
            if isinstance(t, ClientTool):
                self.client[t.name] = t
            else:
                self.tools[t.name] = t
            specs.append(t.spec)
        self.specs = tuple(specs)
        self.toolsets = tuple(toolsets)
        self.hosted = tuple(hosted)  # run by the provider: passed through to it, never called here
        self.default_timeout = default_timeout
        self.threads = threads or ToolThreads()
        # a toolset's tools are known only when it is listed: names may be theirs
        self.approve_all, self.approve_names = _approval_policy(require_approval, self.tools, bool(toolsets))
        self._listed: tuple[tuple[Tool, ...], ToolBox] | None = None

    async def resolved(self) -> ToolBox:
        """This toolbox with its toolsets' current tools in it (itself when it has none), for one run.

        A listed tool whose name is taken gets its toolset's prefix
        (`files_read`); a name still taken then is a `ConfigurationError`.
        """
        if not self.toolsets:
            return self
        listed = [(ts, await ts.list_tools()) for ts in self.toolsets]
        key = tuple(t for _, ts_tools in listed for t in ts_tools)  # held: no id can be reused while cached
        cached = self._listed
        if (
            cached is not None
            and len(cached[0]) == len(key)
            and all(a is b for a, b in zip(cached[0], key, strict=True))
        ):
            return cached[1]
        merged: list[Tool | ClientTool | HostedTool] = [*self.tools.values(), *self.client.values(), *self.hosted]
        taken = {t.name for t in merged if not isinstance(t, HostedTool)}
        for ts, ts_tools in listed:
            for t in ts_tools:
                if t.name in taken:
                    t = t.renamed(f"{ts.prefix}_{t.name}"[:64])
                    if t.name in taken:
                        raise ConfigurationError(
                            f"two tools are named {t.name!r}, even with the toolset's prefix; give it another prefix"
                        )
                taken.add(t.name)
                merged.append(t)
        box = ToolBox(merged, default_timeout=self.default_timeout, threads=self.threads)
        box.approve_all, box.approve_names = self.approve_all, self.approve_names
        self._listed = (key, box)
        return box

    def with_client_tools(self, client: Iterable[ClientTool], *, skip_known: bool = False) -> ToolBox:
        """This toolbox plus `client` tools (a served request's own), sharing the threads; names stay unique.

        `skip_known` leaves out a client tool this toolbox has by that name
        already (a resumed turn's, declared again).
        """
        client = [c for c in client if not skip_known or c.name not in self.client]
        if not client:
            return self
        box = ToolBox(
            [*self.tools.values(), *self.client.values(), *self.toolsets, *self.hosted, *client],
            default_timeout=self.default_timeout,
            threads=self.threads,
        )
        box.approve_all, box.approve_names = self.approve_all, self.approve_names
        return box

    async def pending_kind(self, call: ToolCall) -> PendingKind | None:
        """Whether the call's result must come from outside: a client tool's output, or an approval first.

        A predicate that raises asks for approval (a person decides, rather
        than nobody); arguments the schema refuses need none, as the call
        fails without running.
        """
        if call.name in self.client:
            return "client"
        t = self.tools.get(call.name)
        if t is None:
            return None
        if self.approve_all or call.name in self.approve_names or t.requires_approval is True:
            return "approval"
        rule = t.requires_approval
        if rule is False:
            return None
        try:
            arguments = json.loads(call.arguments or "{}")
            kwargs = t.bind(arguments) if isinstance(arguments, dict) else None
        except Exception:
            return None
        if kwargs is None:
            return None
        try:
            needed = rule(kwargs)  # type: ignore[operator]
            if inspect.isawaitable(needed):
                needed = await needed
        except Exception:
            _log.exception("the requires_approval rule of tool %r failed; asking for approval", call.name)
            return "approval"
        return "approval" if needed else None

    async def run_calls(
        self, calls: Sequence[ToolCall], parents: Sequence[ParentRun] = ()
    ) -> AsyncGenerator[ToolCallFinished, None]:
        """Run the calls concurrently, yielding each result as it finishes.

        Each call's task knows its `parents` entry (`nesting.parent_run()`),
        so a tool that runs an agent can report to this run. Stopping the
        iteration early cancels the calls still running (a sync tool's thread
        cannot be stopped; its result is dropped).
        """
        loop = asyncio.get_running_loop()
        tasks = []
        for i, call in enumerate(calls):
            if i < len(parents):
                context = contextvars.copy_context()
                context.run(PARENT_RUN.set, parents[i])
                tasks.append(loop.create_task(self._run_one(call), context=context))
            else:
                tasks.append(loop.create_task(self._run_one(call)))
        try:
            for next_done in asyncio.as_completed(tasks):
                yield await next_done
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _run_one(self, call: ToolCall) -> ToolCallFinished:
        start = time.perf_counter()
        result, error = await self._outcome(call)
        return ToolCallFinished(call=call, result=encodable(result), error=error, duration=time.perf_counter() - start)

    async def _outcome(self, call: ToolCall) -> tuple[str, str | None]:
        t = self.tools.get(call.name)
        if t is None and call.name in self.client:
            return _error(f"{call.name!r} is a client tool: its caller runs it", "ToolError")
        if t is None:
            known = ", ".join(self.tools) or "none"
            return _error(f"unknown tool {call.name!r}; available tools: {known}", "UnknownToolError")
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError as e:
            return _error(f"arguments of {call.name!r} are not valid JSON: {e}", "InvalidArgumentsError")
        if not isinstance(arguments, dict):
            return _error(f"arguments of {call.name!r} must be a JSON object", "InvalidArgumentsError")
        timeout = t.timeout or self.default_timeout
        job: Job | None = None
        deadline = asyncio.timeout(timeout)
        try:
            kwargs = t.bind(arguments)
            async with deadline:  # in this task, not a new one: a tool's SystemExit is caught below
                if t.is_async:
                    value = await t.fn(**kwargs)
                else:
                    job = self.threads.submit(t.fn, **kwargs)
                    value = await job.future
                if inspect.isawaitable(value):  # a sync wrapper around a coroutine function
                    value = await value
        except TimeoutError as e:
            if not deadline.expired():  # the tool's own TimeoutError (a socket timeout, say)
                return _failed(t, call, e, arguments)
            if job is not None and not job.started:
                threads = self.threads
                return _error(
                    f"tool {call.name!r} did not run: all {threads.size} tool threads stayed busy for "
                    f"{timeout:g} s ({threads.stuck} of them with calls stuck past their timeout)",
                    "ToolError",
                )
            return _error(_timed_out(call.name, timeout), "ToolTimeoutError")
        except (asyncio.CancelledError, GeneratorExit) as e:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the run is being cancelled: not the tool's doing
            return _failed(t, call, e, arguments)  # a library's own timeout inside the tool, for one
        except SystemExit as e:  # argparse in a tool, say: the tool failed, the application goes on
            return _failed(t, call, e, arguments)
        except ToolError as e:  # raised on purpose: its message is what the model should read
            return _error(t.scrub(str(e), arguments) or f"tool {call.name!r} failed", type(e).__name__)
        except Exception as e:  # a tool's failure is the model's information, not the run's end
            if _is_validation_error(e):
                return _error(_invalid_arguments(call.name, e), "InvalidArgumentsError")
            return _failed(t, call, e, arguments)
        finally:
            if job is not None:
                self.threads.abandon(job)
        try:
            return to_text(value), None
        except (TypeError, ValueError) as e:  # a circular structure, for one
            return _error(f"the result of {call.name!r} cannot be written as JSON: {e}", "ToolResultError")


def _object_schema(tool_name: str, parameters: Any) -> dict[str, Any]:
    if not isinstance(parameters, Mapping) or parameters.get("type", "object") != "object":
        raise ConfigurationError(
            f"tool {tool_name!r}: parameters must be a JSON schema object ({{'type': 'object', ...}}), "
            f"got {parameters!r}"
        )
    schema = {"type": "object", **parameters}
    schema.setdefault("properties", {})
    return schema


def _approval_policy(
    require: bool | Iterable[str], tools: Mapping[str, Tool], open_ended: bool = False
) -> tuple[bool, frozenset[str]]:
    """An agent-wide `require_approval`: every tool (True), none (False), or the named ones."""
    if isinstance(require, bool):
        return require, frozenset()
    if isinstance(require, str) or not isinstance(require, Iterable):
        raise ConfigurationError("require_approval must be True, False or a list of tool names")
    names = frozenset(require)
    unknown = sorted(n for n in names if n not in tools)
    if unknown and not open_ended:
        raise ConfigurationError(
            f"require_approval names {', '.join(map(repr, unknown))}, which are not tools of this agent; "
            f"its tools: {', '.join(tools) or 'none'}"
        )
    return False, names


def _failed(t: Tool, call: ToolCall, e: BaseException, arguments: Mapping[str, Any]) -> tuple[str, str]:
    return _error(f"tool {call.name!r} failed: {type(e).__name__}: {t.scrub(str(e), arguments)}", type(e).__name__)


def to_text(value: Any) -> str:
    """What the model reads of a tool's return value: a str as it is, anything else as JSON.

    Dataclasses and pydantic models become objects, sets and tuples lists,
    dates and times ISO 8601 strings, enums their value, bytes base64; what
    JSON cannot say otherwise is written with `str()`.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    dump = getattr(value, "model_dump_json", None)
    if callable(dump) and not isinstance(value, type):
        return str(dump())
    return json.dumps(value, default=_jsonable, ensure_ascii=False)


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        return dump(mode="json")
    if isinstance(value, set | frozenset):
        try:
            return sorted(value)
        except TypeError:  # mixed types: any order will do
            return list(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    return str(value)


def encodable(text: str) -> str:
    """`text` as it is when it encodes to UTF-8; else with lone surrogates escaped (`\\udcff`).

    A file name that is not UTF-8 comes back from `os.listdir` with such a
    surrogate, and would make the next request fail to encode.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _error(message: str, error_type: str) -> tuple[str, str]:
    return f"Error: {message}", error_type


def _invalid_arguments(tool_name: str, e: Exception) -> str:
    return f"invalid arguments for {tool_name!r}: {_summarise(e)}"


def _timed_out(tool_name: str, seconds: float) -> str:
    return f"tool {tool_name!r} timed out after {seconds:g} s"


def _is_validation_error(e: Exception) -> bool:
    return type(e).__name__ == "ValidationError" and type(e).__module__.startswith("pydantic")


def _summarise(e: Any) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}" for err in e.errors())


def _without_titles(schema: Any) -> Any:
    """pydantic's generated `title`s tell the model nothing the names do not, and cost tokens on every call."""
    if isinstance(schema, list):
        return [_without_titles(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "properties" and isinstance(value, dict):  # keys here are argument names, one may be "title"
            out[key] = {name: _without_titles(sub) for name, sub in value.items()}
        elif not (key == "title" and isinstance(value, str)):
            out[key] = _without_titles(value)
    return out


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The text before the first section, and argument descriptions from a Google-style `Args:`."""
    summary: list[str] = []
    args: dict[str, str] = {}
    section = ""
    for line in doc.splitlines():
        stripped = line.strip()
        if re.match(r"^[A-Z][a-zA-Z ]*:$", stripped):
            section = stripped[:-1].lower()
        elif not section:
            summary.append(line)
        elif section in ("args", "arguments", "parameters") and stripped:
            m = re.match(r"^(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$", stripped)
            if m:
                args[m.group(1)] = m.group(2)
    return "\n".join(summary).strip(), args


def _arguments_model(tool_name: str, fn: Callable[..., Any], arg_docs: dict[str, str]) -> Any:
    from pydantic import ConfigDict, Field, create_model

    try:
        signature = inspect.signature(fn)
        hints = _type_hints(fn)
    except (TypeError, ValueError) as e:
        raise ConfigurationError(f"tool {tool_name!r}: cannot read the signature: {e}") from e
    fields: dict[str, Any] = {}
    for p in signature.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ConfigurationError(
                f"tool {tool_name!r}: *args and **kwargs cannot be described to a model; name each argument"
            )
        annotation = hints.get(p.name, Any)
        default = ... if p.default is p.empty else p.default
        fields[p.name] = (annotation, Field(default, description=arg_docs.get(p.name)))
    try:
        return create_model(  # type: ignore[call-overload]
            f"{tool_name}_arguments", __config__=ConfigDict(extra="forbid"), **fields
        )
    except Exception as e:
        raise ConfigurationError(f"tool {tool_name!r}: cannot build a schema: {e}") from e


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    import typing

    target = fn if inspect.isfunction(fn) or inspect.ismethod(fn) else getattr(fn, "__call__", fn)  # noqa: B004
    try:
        return typing.get_type_hints(target)
    except NameError as e:
        raise ConfigurationError(f"cannot resolve a type hint of {fn!r}: {e}") from e

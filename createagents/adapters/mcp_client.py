"""MCP servers as toolsets: the tools of a Model Context Protocol server, called through the official `mcp` SDK.

One connection per server, shared by every conversation of the agent. It is
opened on first use (or by `async with agent`) in a task of its own: the
SDK's transports and session are anyio context managers whose cancel scopes
must be entered and exited in one task, which a caller's task (a run, a tool
call that may be cancelled) cannot promise. The tool list is fetched once
per connection and again only after the server says it changed
(`notifications/tools/list_changed`). A server that dies is started again
on the next use, once; what cannot be fixed that way is an `MCPServerError`
that names the server. The `mcp` SDK is imported only when a connection opens.

Results are text for the model: text blocks joined by newlines; structured
content as JSON when there is no text (the spec has servers send both, the
text being the JSON); other blocks as placeholders such as
`[image: image/png, 1234 bytes]`. A result with `isError` raises `ToolError`
with its text, so the model reads it as the call's error.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import math
import os
import re
import shlex
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, TextIO, TypeAlias
from urllib.parse import urlsplit, urlunsplit

from ..application.tools import Tool
from ..application.toolsets import Toolset
from ..domain.errors import ConfigurationError, ToolError

_log = logging.getLogger("createagents")

Streams: TypeAlias = tuple[Any, Any]
Opener: TypeAlias = Callable[[], AbstractAsyncContextManager[Streams]]
"""Opens a transport: an async context manager that yields the session's (read, write) streams."""

INSTALL_HINT = "pip install 'createagents[mcp]'"
DEFAULT_CONNECT_TIMEOUT = 30.0
_CLOSE_TIMEOUT = 10.0  # the SDK's stdio shutdown waits 2 s, then SIGTERM, 2 s, SIGKILL: bounded well below this
_CONNECTION_CLOSED = -32000  # the JSON-RPC code the SDK uses for a connection that ended
_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_PREFIX = re.compile(r"[a-zA-Z0-9_-]{1,32}")


class MCPServerError(ToolError):
    """An MCP server could not start, stopped, or could not be started again; `server` names it.

    A `ToolError`: inside a run, a call that meets it gives the model an error
    result with this message; raised from `async with agent` or at the start
    of a run when the server cannot start at all.
    """

    def __init__(self, message: str, *, server: str = "", tool_name: str = "") -> None:
        self.server = server
        super().__init__(message, tool_name=tool_name)


def require_sdk() -> None:
    """Fail clearly, before any connection, when the optional `mcp` SDK is not installed."""
    try:
        import mcp  # noqa: F401
    except ImportError as e:
        raise ConfigurationError(f"MCP servers need the `mcp` package: {INSTALL_HINT} ({e})") from None


def stdio_opener(command: str, args: Sequence[str], env: Mapping[str, str] | None, cwd: str | Path | None) -> Opener:
    """Start the server as a subprocess speaking MCP on its stdin and stdout (its stderr is ours)."""

    def open_streams() -> AbstractAsyncContextManager[Streams]:
        from mcp.client.stdio import StdioServerParameters, stdio_client

        params = StdioServerParameters(
            command=command, args=list(args), env=dict(env) if env is not None else None, cwd=cwd
        )
        return _two_streams(stdio_client(params, errlog=_errlog()))

    return open_streams


def _errlog() -> TextIO:
    """Where the server's stderr goes: ours, when it is a real file (not a notebook's or a test's stand-in)."""
    for stream in (sys.stderr, sys.__stderr__):
        try:
            if stream is not None:
                stream.fileno()
                return stream
        except (AttributeError, OSError, ValueError):
            continue
    devnull = _DEVNULL[0]
    if devnull is None:
        devnull = _DEVNULL[0] = open(os.devnull, "w")  # noqa: SIM115 - kept for the life of the process
    return devnull


_DEVNULL: list[TextIO | None] = [None]


def http_opener(url: str, headers: Mapping[str, str] | None) -> Opener:
    """Connect to a streamable HTTP endpoint, sending `headers` (an Authorization header, say) on every request."""

    @asynccontextmanager
    async def open_streams() -> AsyncIterator[Streams]:
        from mcp.client import streamable_http

        modern = getattr(streamable_http, "streamable_http_client", None)
        if modern is None:  # mcp < 1.24: the client took the headers itself
            legacy: Any = getattr(streamable_http, "streamablehttp_client")  # noqa: B009
            async with _two_streams(legacy(url, headers=dict(headers or {}))) as streams:
                yield streams
            return
        from mcp.shared._httpx_utils import create_mcp_http_client

        async with (
            create_mcp_http_client(headers=dict(headers or {})) as client,
            _two_streams(modern(url, http_client=client)) as streams,
        ):
            yield streams

    return open_streams


@asynccontextmanager
async def _two_streams(transport: AbstractAsyncContextManager[Any]) -> AsyncIterator[Streams]:
    """(read, write) of a transport; older HTTP clients yield a third item (a session id getter)."""
    async with transport as streams:
        yield streams[0], streams[1]


def stdio_label(command: str, args: Sequence[str]) -> str:
    """How errors name a stdio server: its command line."""
    text = shlex.join([command, *args])
    return text if len(text) <= 200 else text[:197] + "..."


def http_label(url: str) -> str:
    """How errors name an HTTP server: its URL without credentials, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class _Connection:
    """One session with a server, owned by a task of its own from opening to closing."""

    def __init__(self, opener: Opener, label: str, verb: str = "start") -> None:
        self._opener = opener
        self._label = label
        self._verb = verb  # "start" (a subprocess) or "connect" (a URL), for error messages
        self.session: Any = None
        self.dead = False
        self.cause = ""
        self.stale = True  # the tool list must be fetched
        self._stop = asyncio.Event()
        self._ready: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return not self.dead and self._task is not None and not self._task.done()

    async def open(self, within: float) -> None:
        """Start the session task and wait until the server answered `initialize`, at most `within` seconds."""
        loop = asyncio.get_running_loop()
        self._ready = ready = loop.create_future()
        # a fresh context: the connection outlives the run or tool call that happened to open it
        self._task = loop.create_task(self._run(), name=f"mcp {self._label}", context=contextvars.Context())
        try:
            async with asyncio.timeout(within):
                await asyncio.shield(ready)
        except TimeoutError:
            await self.close()
            raise MCPServerError(
                f"MCP server {self._label!r} did not {self._verb} within {within:g} s (connect_timeout)",
                server=self._label,
            ) from None
        except Exception as e:
            await self.close()
            why = describe(e)
            if self._verb == "start" and _connection_lost(e) and not isinstance(e, OSError):
                why = f"it closed the connection before answering (did it exit? its stderr says why) ({why})"
            raise MCPServerError(f"MCP server {self._label!r} could not {self._verb}: {why}", server=self._label) from e
        except BaseException:  # the caller was cancelled: do not leave a half-open server behind
            await self.close()
            raise

    async def _run(self) -> None:
        from mcp import ClientSession

        ready = self._ready
        assert ready is not None
        try:
            async with (
                self._opener() as (read, write),
                ClientSession(read, write, message_handler=self._on_message) as session,
            ):
                await session.initialize()
                self.session = session
                if ready.done():  # the opener gave up waiting (a timeout, a cancelled caller)
                    return
                ready.set_result(None)
                await self._stop.wait()
        except Exception as e:
            self.cause = describe(e)
            if not ready.done():
                ready.set_exception(e)
            elif not self._stop.is_set():
                _log.warning("MCP server %r: the connection failed: %s", self._label, self.cause)
        finally:
            self.dead = True
            if not ready.done():
                ready.cancel()

    async def _on_message(self, message: Any) -> None:
        """Server notifications (the session's message handler); runs in the session's task, so no I/O here."""
        if isinstance(message, Exception):
            _log.debug("MCP server %r: transport error: %s", self._label, describe(message))
            return
        message = getattr(message, "root", message)  # mcp 1.x wraps notifications in a RootModel
        if getattr(message, "method", None) == "notifications/tools/list_changed":
            self.stale = True

    def lost(self, cause: str) -> None:
        self.dead = True
        self.cause = self.cause or cause

    async def close(self) -> None:
        """End the session and its transport (a stdio server's process with it), in the task that opened them."""
        self._stop.set()
        if self._ready is not None and not self._ready.done():
            self._ready.cancel()
        task = self._task
        if task is None:
            return
        if not task.done():
            if self.session is None:  # still starting (a hung server, say): nothing to wind down politely
                task.cancel()
            _, pending = await asyncio.wait({task}, timeout=_CLOSE_TIMEOUT)
            if pending:
                task.cancel()
                await asyncio.wait({task})  # the SDK's shutdown under cancellation is bounded
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: the connection's failure was reported already


class MCPToolset(Toolset):
    """The tools of one MCP server, for `CreateAgent(tools=[...])`; built by `createagents.mcp.MCPServer`."""

    def __init__(
        self,
        opener: Opener,
        *,
        label: str,
        kind: str,
        prefix: str | None = None,
        allow: Iterable[str] | None = None,
        deny: Iterable[str] | None = None,
        timeout: float | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        self._opener = opener
        self.label = label
        self._kind = kind
        self.prefix = "mcp" if prefix is None else prefix
        if not isinstance(self.prefix, str) or not _PREFIX.fullmatch(self.prefix):
            raise ConfigurationError(f"MCP server {label!r}: prefix must be 1-32 letters, digits, '_' or '-'")
        self.allow = _names(allow, "allow", label)
        self.deny = _names(deny, "deny", label) or frozenset()
        self.timeout = _seconds(timeout, "timeout", label) if timeout is not None else None
        self.connect_timeout = _seconds(connect_timeout, "connect_timeout", label)
        self._conn: _Connection | None = None
        self._connecting = asyncio.Lock()
        self._listing = asyncio.Lock()
        self._tools: tuple[Tool, ...] | None = None
        self._listed_on: _Connection | None = None
        self._made: dict[str, Tool] = {}  # by the tool's definition: an unchanged tool stays the same object
        self._restarts_left = 1
        self._gone: str | None = None  # why the server is not started again, once it is past saving

    def __repr__(self) -> str:
        return f"MCPServer.{self._kind}({self.label!r})"

    @property
    def name(self) -> str:
        return self.label

    @property
    def description(self) -> str:
        return f"the tools of the MCP server {self.label}"

    # -- the Toolset port ------------------------------------------------------

    async def start(self) -> None:
        """Connect and list the tools now (`async with agent`), so that the first run does not wait."""
        await self.list_tools()

    async def list_tools(self) -> Sequence[Tool]:
        """The server's tools (after allow/deny), fetched once per connection and after `list_changed`."""
        try:
            conn, session = await self._session()
        except MCPServerError:
            if self._tools is not None and self._gone is not None:
                return self._tools  # the server is gone for good: its calls say so, the other tools still work
            raise
        if self._tools is not None and self._listed_on is conn and not conn.stale:
            return self._tools
        async with self._listing:
            if self._tools is not None and self._listed_on is conn and not conn.stale:
                return self._tools
            conn.stale = False  # before listing: a change announced meanwhile marks it stale again
            try:
                listed = await _list_all(session)
            except Exception as e:
                if _connection_lost(e):
                    conn.lost(describe(e))
                raise MCPServerError(
                    f"MCP server {self.label!r} could not list its tools: {describe(e)}", server=self.label
                ) from e
            self._tools = self._make_tools(listed)
            self._listed_on = conn
            return self._tools

    async def aclose(self) -> None:
        """Close the session and end a stdio server's process; a later use connects again."""
        async with self._connecting:
            conn, self._conn = self._conn, None
            self._tools, self._listed_on, self._gone, self._restarts_left = None, None, None, 1
            if conn is not None:
                await conn.close()

    # -- internals ---------------------------------------------------------------

    async def _session(self) -> tuple[_Connection, Any]:
        """The live connection; opens it, or opens it again once after the server died."""
        conn = self._conn
        if conn is not None and conn.alive:
            return conn, conn.session
        async with self._connecting:
            conn = self._conn
            if conn is not None and conn.alive:
                return conn, conn.session
            if self._gone is not None:
                raise MCPServerError(self._gone, server=self.label)
            if conn is None:
                self._conn = await self._open()
                return self._conn, self._conn.session
            self._conn = None
            await conn.close()
            cause = conn.cause or "the connection closed"
            if self._restarts_left <= 0:
                self._gone = (
                    f"MCP server {self.label!r} stopped again ({cause}) right after it was restarted; "
                    "it is not restarted again until the agent is closed"
                )
                raise MCPServerError(self._gone, server=self.label)
            self._restarts_left -= 1
            _log.warning("MCP server %r stopped (%s); starting it again", self.label, cause)
            try:
                self._conn = await self._open()
            except MCPServerError as e:
                self._gone = f"MCP server {self.label!r} stopped ({cause}) and could not be restarted: {e}"
                raise MCPServerError(self._gone, server=self.label) from e
            return self._conn, self._conn.session

    async def _open(self) -> _Connection:
        require_sdk()
        conn = _Connection(self._opener, self.label, "start" if self._kind == "stdio" else "connect")
        await conn.open(self.connect_timeout)
        return conn

    async def call(self, name: str, arguments: dict[str, Any]) -> str:
        """Call the server's tool `name`; its result as text, or `ToolError` for a failure the model should read."""
        conn, session = await self._session()
        try:
            result = await session.call_tool(name, arguments)
        except Exception as e:
            if _connection_lost(e):
                conn.lost(describe(e))
                then = (
                    "it is started again on the next call"
                    if self._restarts_left > 0
                    else "it was restarted once already and is not started again"
                )
                raise MCPServerError(
                    f"MCP server {self.label!r} stopped before answering the call ({describe(e)}); {then}",
                    server=self.label,
                    tool_name=name,
                ) from e
            if _error_code(e) is not None:  # the server answered with a JSON-RPC error: unknown tool, bad params
                raise ToolError(f"MCP server {self.label!r}: {e}", tool_name=name) from e
            raise
        self._restarts_left = 1  # a call worked: a later death may be restarted again
        data = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        text = result_text(data)
        if data.get("isError"):
            raise ToolError(text or f"MCP tool {name!r} failed", tool_name=name)
        return text

    def _make_tools(self, listed: Sequence[Mapping[str, Any]]) -> tuple[Tool, ...]:
        tools: list[Tool] = []
        seen: set[str] = set()
        made: dict[str, Tool] = {}
        names = {str(spec.get("name", "")) for spec in listed}
        for missing in sorted((self.allow or frozenset()) - names):
            _log.warning("MCP server %r has no tool %r (named in allow)", self.label, missing)
        for spec in listed:
            remote = str(spec.get("name", ""))
            if (self.allow is not None and remote not in self.allow) or remote in self.deny:
                continue
            key = json.dumps([remote, spec.get("description"), spec.get("inputSchema")], sort_keys=True, default=str)
            t = self._made.get(key)
            if t is None:
                try:
                    t = Tool(
                        self._caller(remote),
                        name=tool_name(remote),
                        description=str(spec.get("description") or ""),
                        parameters=spec.get("inputSchema") or {"type": "object"},
                        timeout=self.timeout,
                    )
                except ConfigurationError as e:
                    _log.warning("MCP server %r: skipping tool %r: %s", self.label, remote, e)
                    continue
            if t.name in seen:
                _log.warning("MCP server %r: skipping tool %r: its name %r is taken", self.label, remote, t.name)
                continue
            seen.add(t.name)
            made[key] = t
            tools.append(t)
        self._made = made
        return tuple(tools)

    def _caller(self, remote: str) -> Callable[..., Any]:
        async def call_mcp_tool(**arguments: Any) -> str:
            return await self.call(remote, arguments)

        return call_mcp_tool


async def _list_all(session: Any) -> list[dict[str, Any]]:
    """Every page of `tools/list`, as wire dicts (camelCase in every SDK version)."""
    tools: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(1000):  # a server that pages forever is a bug; stop rather than spin
        if cursor is None:
            page = await session.list_tools()
        else:
            from mcp import types

            try:
                page = await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor))
            except TypeError:  # mcp < 1.13 took the cursor itself
                page = await session.list_tools(cursor=cursor)
        data = page.model_dump(mode="json", by_alias=True, exclude_none=True)
        tools.extend(data.get("tools") or [])
        cursor = data.get("nextCursor")
        if not cursor:
            break
    return tools


def result_text(result: Mapping[str, Any]) -> str:
    """What the model reads of a `tools/call` result (a wire dict); see the module's docstring."""
    texts: list[str] = []
    others: list[str] = []
    for block in result.get("content") or []:
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        else:
            others.append(block_placeholder(block))
    structured = result.get("structuredContent")
    if not texts and structured is not None:
        texts.append(json.dumps(structured, ensure_ascii=False))
    return "\n".join([*texts, *others])


def block_placeholder(block: Mapping[str, Any]) -> str:
    """A content block that is not text, as a line of text: `[image: image/png, 1234 bytes]`."""
    kind = str(block.get("type", "content"))
    if kind in ("image", "audio"):
        return f"[{kind}: {block.get('mimeType', 'unknown type')}, {_decoded_size(block.get('data'))} bytes]"
    if kind == "resource":
        resource = block.get("resource") or {}
        uri = resource.get("uri", "")
        if "text" in resource:
            return f"[resource: {uri}]\n{resource['text']}"
        size = _decoded_size(resource.get("blob"))
        return f"[resource: {uri}, {resource.get('mimeType', 'unknown type')}, {size} bytes]"
    if kind == "resource_link":
        name = block.get("name")
        return f"[resource link: {block.get('uri', '')}{f' ({name})' if name else ''}]"
    return f"[{kind}]"


def _decoded_size(data: Any) -> int:
    """The size of base64 `data` once decoded, without decoding it (an image may be megabytes)."""
    if not isinstance(data, str):
        return 0
    data = "".join(data.split())
    return len(data) * 3 // 4 - (len(data) - len(data.rstrip("=")))


def tool_name(remote: str) -> str:
    """An MCP tool's name as the providers accept it: 1-64 letters, digits, '_' or '-'."""
    if _NAME.fullmatch(remote):
        return remote
    return re.sub(r"[^a-zA-Z0-9_-]", "_", remote)[:64] or "tool"


def describe(error: BaseException) -> str:
    """`Type: message` of the first leaf of an exception group (anyio task groups wrap what failed)."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _error_code(error: BaseException) -> int | None:
    code = getattr(getattr(error, "error", None), "code", None)
    return code if isinstance(code, int) else None


def _connection_lost(error: BaseException) -> bool:
    """Whether a failure means the connection is gone (as opposed to the server refusing one request)."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    if _error_code(error) == _CONNECTION_CLOSED:
        return True
    import anyio

    return isinstance(error, anyio.ClosedResourceError | anyio.BrokenResourceError | anyio.EndOfStream | OSError)


def _names(names: Iterable[str] | None, what: str, label: str) -> frozenset[str] | None:
    if names is None:
        return None
    if isinstance(names, str) or not isinstance(names, Iterable):
        raise ConfigurationError(f"MCP server {label!r}: {what} must be a list of tool names, got {names!r}")
    found = frozenset(names)
    if not all(isinstance(n, str) and n for n in found):
        raise ConfigurationError(f"MCP server {label!r}: {what} must hold tool names (non-empty str)")
    return found


def _seconds(value: object, what: str, label: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ConfigurationError(f"MCP server {label!r}: {what} must be a finite number of seconds > 0, got {value!r}")
    return float(value)

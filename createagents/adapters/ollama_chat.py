"""Ollama's native `/api/chat`, through the official `ollama.AsyncClient`.

Native rather than Ollama's OpenAI-compatible `/v1`, so thinking, `keep_alive`,
Ollama's options and its load / prompt-eval / eval timings are all available.
Ollama sends whole tool calls (arguments as objects), possibly several per
message and spread over several chunks: the stream is read to its `done`
chunk before the calls are handed over.

What a server gets to do to us, and what it gets back:

- The NDJSON is split by `_lines.LineSplitter`: linear in a line's length,
  and a line over `max_line` bytes (16 MiB by default) is a
  `ResponseFormatError`.
- Every chunk is checked against Ollama's format (`_ChunkReader`, pure, fed
  any JSON value by a property test): a chunk that is not an object, a
  `message` that is not one, text that is not a string, tool calls that are
  not a list of objects with a `function` object, arguments that are neither
  an object nor a string, usage numbers that are not numbers, `done` that is
  not a boolean, JSON nested deeper than Python parses: all
  `ResponseFormatError`, never a `KeyError` or a `RecursionError`. Usage
  numbers that are numbers but negative (or not finite) are counted as 0:
  the answer itself is whole, and a nonsense counter must neither fail it nor
  reach the usage and the metrics.
- Reading stops at the `done: true` chunk: what follows is not read as the
  answer. The rest of the body is read only while it is blank, short and
  quick (so that a well-behaved server's connection goes back to the pool).
- Error bodies are read up to `ERROR_BODY_LIMIT` bytes off the wire and
  decoded (gzip, deflate) up to as many, never whole; error messages are cut
  to `MAX_ERROR_MESSAGE` characters, and have the API key (and the password
  of a `http://user:password@host` base URL) masked; the host is named
  without its user information.
- A 200 answer that is an HTML page (a proxy's login page) is a
  `ResponseFormatError` naming the content type and how the page starts.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing, suppress
from typing import Any
from urllib.parse import unquote

from ..application.ports import ChatModel, ChatRequest
from ..domain.errors import (
    AgentClosedError,
    ConfigurationError,
    ModelNotFoundError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    ResponseFormatError,
)
from ..domain.events import ModelEvent, ResponseDone, TextDelta, ThinkingDelta, ToolCallDelta, ToolCallReady
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
from ..domain.settings import ModelSettings
from ._errors import error_for_status, is_timeout, is_transport_error
from ._lines import MAX_LINE, LineSplitter
from ._retry import RetryPolicy, RetryWaits, retry_after
from ._secrets import mask_secrets, register_secret

DEFAULT_HOST = "http://localhost:11434"
ERROR_BODY_LIMIT = 64 * 1024  # bytes of an error body read off the wire, and kept once decoded
MAX_ERROR_MESSAGE = 2_000  # characters of the server's text in an error message
END_GRACE = 0.25  # seconds to wait for the end of the body after the `done` chunk, for the connection's sake
_END_LIMIT = 4096  # blank bytes read after the `done` chunk before giving up on the connection
_EXCERPT = 200  # characters of an unexpected body quoted in an error
_NS = 1e-9
_loads = json.loads
_decode = json.JSONDecoder().decode  # on str: `json.loads` on bytes first guesses their encoding, each time
_raw_decode = json.JSONDecoder().raw_decode
_ids = itertools.count(1)
_HTML = ("text/html", "application/xhtml")
_ERROR_START = re.compile(r'\s*\{\s*"error"\s*:\s*(?:\{\s*"message"\s*:\s*)?"')


class _StatusError(Exception):
    """An error status from either way of reading the stream, with what the retry policy needs to see."""

    def __init__(self, status: int | None, message: str, headers: Mapping[str, str] | None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers: Mapping[str, str] = headers if headers is not None else {}


class OllamaChatModel(ChatModel):
    """The chat-model port over one `ollama.AsyncClient`, reused for every call and closed with the agent.

    Requests are retried as `RetryPolicy` says, as long as nothing of the answer was read.
    `secrets` (the API key) are masked in every error message, as are the
    bearer token the client sends and the password in `host`; `host` is
    shown without its user information. `max_line` caps one NDJSON line, in
    bytes (see `_lines`).
    """

    provider = "ollama"

    def __init__(
        self,
        client: Any,
        *,
        host: str,
        keep_alive: float | str | None = None,
        max_retries: int = 2,
        secrets: Sequence[str] = (),
        max_line: int = MAX_LINE,
    ) -> None:
        self.client = client
        self.host, userinfo = _split_userinfo(host)
        # the password, or a user name alone (a token, then), is masked, in logs too
        credentials = () if userinfo is None else (userinfo[1] or userinfo[0],)
        for credential in credentials:
            register_secret(credential)
        self.keep_alive = keep_alive
        self.retry = RetryPolicy(max_retries=max_retries)
        self._closed = False
        self._waits = RetryWaits()
        self.max_line = max_line
        self._secrets = tuple(s for s in (*secrets, *credentials, _bearer_token(client)) if isinstance(s, str) and s)

    async def aclose(self) -> None:
        """End every chat in flight (`AgentClosedError`), also one waiting out a Retry-After, and close the client."""
        self._closed = True
        self._waits.wake_all()
        await self.client.close()

    def scrub(self, text: str) -> str:
        """`text` with the secrets masked, then cut to `MAX_ERROR_MESSAGE` characters (masked first: no key is cut
        into a piece the mask no longer recognises)."""
        text = mask_secrets(text, self._secrets)
        return text if len(text) <= MAX_ERROR_MESSAGE else text[:MAX_ERROR_MESSAGE] + " [...]"

    output_modes = ("native", "tool", "prompted")  # `format` takes a JSON schema, or "json"

    def check_settings(self, settings: ModelSettings) -> None:
        for key in _OPENAI_ONLY:
            if getattr(settings, key) is not None:
                raise ConfigurationError(
                    f"setting {key!r} is OpenAI's; Ollama has no such option "
                    "(reasoning_effort is translated to Ollama's think level)"
                )

    async def stream(self, request: ChatRequest) -> AsyncIterator[ModelEvent]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [_map_message(m) for m in request.messages],
            "stream": True,
        }
        if request.tools:
            body["tools"] = [_map_tool(t) for t in request.tools]
        options = _map_options(request.settings)
        if options:
            body["options"] = options
        if request.output is not None and request.output.mode != "tool":
            body["format"] = request.output.schema if request.output.mode == "native" else "json"
        think = _think(request.settings)
        if think is not None:
            body["think"] = think
        if self.keep_alive is not None:
            body["keep_alive"] = self.keep_alive
        reader = _ChunkReader(self, request.model)
        feed = reader.feed
        try:
            async with aclosing(self._retried_parts(body)) as parts:
                async for part in parts:
                    # The common case inline: a text chunk, {"message": {"role": ..., "content": "..."}, "done": false}.
                    # (Nothing comes after the `done` chunk: both ways of reading stop there.)
                    if part.__class__ is dict:
                        message = part.get("message")
                        if message.__class__ is dict and len(message) < 3 and part.get("done") is False:
                            content = message.get("content")
                            if content.__class__ is str:
                                if content:
                                    yield TextDelta(content)
                                continue
                    for event in feed(part):  # anything else, checked
                        yield event
        except Exception as e:
            failure = self._failure(e, request.model)
            if failure is e:
                raise
            raise failure from (None if isinstance(failure, AgentClosedError) else e)
        for event in reader.finish():
            yield event

    def _failure(self, e: Exception, model: str) -> Exception:
        """What a failure of the request or the stream is to the caller; `e` itself when it is already ours."""
        if self._closed and not isinstance(e, AgentClosedError):
            return AgentClosedError("the agent was closed while this chat was running")
        if isinstance(e, ProviderError | AgentClosedError):
            return e
        if isinstance(e, _StatusError):
            return self._status_error(e.status, e.message, model, e.headers)
        if isinstance(e, ValueError | RecursionError):  # the public path: a chunk the client could not parse
            return self._format_error(f"sent a malformed chunk ({type(e).__name__})", model)
        if isinstance(e, ConnectionError):  # the client's own "failed to connect"
            return self._unreachable(model, e)
        if not is_transport_error(e):
            return e
        if is_timeout(e):
            return ProviderTimeoutError(f"Ollama at {self.host} did not answer in time", provider="ollama", model=model)
        return self._unreachable(model, e)

    async def _pause(self, attempt: int, status: int | None = None, headers: Any = None) -> bool:
        """Wait before a retry as the policy says (False: do not retry); `aclose()` ends the wait."""
        wait = self.retry.next_delay(attempt, status, headers or {})
        if wait is None:
            return False
        await self._waits.sleep(wait)
        if self._closed:
            raise AgentClosedError("the agent was closed while this chat was running")
        return True

    async def _retried_parts(self, body: dict[str, Any]) -> AsyncGenerator[Any, None]:
        """`_parts`, opened again while the policy says so and nothing was read yet; then as it comes."""
        attempt = 0
        while True:
            parts = self._parts(body)
            try:
                first = await anext(parts)
            except StopAsyncIteration:
                return
            except _StatusError as e:
                await parts.aclose()
                if e.status is None or not await self._pause(attempt, e.status, e.headers):
                    raise
            except Exception as e:
                await parts.aclose()
                if not (_is_connection_failure(e) and await self._pause(attempt)):
                    raise
            else:
                break
            attempt += 1
        async with aclosing(parts):
            yield first
            async for part in parts:
                yield part

    async def _parts(self, body: dict[str, Any]) -> AsyncGenerator[Any, None]:
        """The response's NDJSON values (objects, when the server keeps to its format), up to the `done` chunk.

        Read through the HTTP client the `ollama` client configured (host,
        headers, timeout), without building its pydantic object per chunk:
        that alone costs most of a token's client time. Falls back to the
        client's public `chat()` when its internals are not as expected.
        """
        http = getattr(self.client, "_client", None)
        if http is None or not hasattr(http, "stream"):
            async for part in self._public_parts(body):
                yield part
            return
        model = body["model"]
        async with http.stream("POST", "/api/chat", json=body) as response:
            if response.status_code >= 400:
                raw = await _read_capped(response, ERROR_BODY_LIMIT)
                raise _StatusError(response.status_code, self._error_text(raw), response.headers)
            content_type = response.headers.get("content-type", "")
            if content_type.lower().startswith(_HTML):
                start = await _read_capped(response, 4 * _EXCERPT, to_the_end=False)  # the connection is not reused
                raise self._format_error(
                    f"answered with a page of {content_type!r}, not an NDJSON stream (a proxy's page?): "
                    f"{_excerpt(start)}",
                    model,
                )
            splitter = LineSplitter(self.max_line)
            feed = splitter.feed
            async with aclosing(response.aiter_bytes()) as chunks:
                async for chunk in chunks:
                    try:
                        lines = feed(chunk)
                    except ResponseFormatError:
                        raise self._format_error(
                            f"sent a line longer than max_line ({self.max_line:,} bytes)", model
                        ) from None
                    for line in lines:
                        if line:
                            try:
                                part = _decode(line.decode())  # NDJSON is UTF-8
                            except (ValueError, RecursionError) as e:
                                if line.isspace():
                                    continue
                                raise self._malformed(e, line, content_type, model) from None
                            yield part
                            if part.__class__ is dict and part.get("done") is True:
                                # (an equal line before this one would have been `done` too: `index` finds this one)
                                after = lines[lines.index(line) + 1 :]
                                if not any(rest.strip() for rest in after) and not splitter.rest().strip():
                                    await _read_to_the_end(chunks)
                                return
                line = splitter.rest()  # the last line, when the body ended without its line end
                if line.strip():
                    try:
                        yield _decode(line.decode())
                    except (ValueError, RecursionError) as e:
                        raise self._malformed(e, line, content_type, model) from None

    async def _public_parts(self, body: dict[str, Any]) -> AsyncGenerator[Any, None]:
        from ollama import ResponseError

        try:
            parts = await self.client.chat(**body)
            async with aclosing(parts):
                while True:
                    try:
                        part = await anext(parts)
                    except StopAsyncIteration:
                        return
                    except (ResponseError, ConnectionError, ProviderError):
                        raise
                    except (ValueError, TypeError, AttributeError, KeyError, RecursionError) as e:
                        # the client's own parsing of a chunk not in Ollama's format
                        raise self._format_error(
                            f"sent a chunk the ollama client could not read ({type(e).__name__})", body["model"]
                        ) from e
                    value = part.model_dump(exclude_none=True)
                    yield value
                    if value.get("done") is True:
                        # as `_parts`: nothing after `done`; the rest only if it ends at once
                        with suppress(Exception):
                            async with asyncio.timeout(END_GRACE):
                                await anext(parts, None)
                        return
        except ResponseError as e:
            # the client raises it `from None`, inside its handler of httpx's error, which has the response
            response = getattr(e.__context__, "response", None)
            status = e.status_code if e.status_code and e.status_code > 0 else None
            error = e.error
            if isinstance(error, Mapping):  # it parsed {"error": {...}} itself
                error = error.get("message", error)
            raise _StatusError(status, self.scrub(str(error)), getattr(response, "headers", None)) from e

    # -- errors --------------------------------------------------------------

    def _error_text(self, raw: bytes) -> str:
        """The message of an error body: its JSON `error` (a string, or an object's `message`), else its text."""
        text = raw.decode("utf-8", "replace")
        try:
            body = _loads(text)
        except (ValueError, RecursionError):
            body = None
        message: object = text
        if isinstance(body, dict) and "error" in body:
            error = body["error"]
            if isinstance(error, dict):
                error = error.get("message")
            if isinstance(error, str) and error.strip():
                message = error
        elif body is None and len(raw) >= ERROR_BODY_LIMIT:  # cut off where the read stopped: its error's start
            message = _error_start(text) or text
        return self.scrub(str(message).strip()) or "unknown error"

    def _format_error(self, what: str, model: str) -> ResponseFormatError:
        return ResponseFormatError(self.scrub(f"Ollama at {self.host} {what}"), provider="ollama", model=model)

    def _malformed(self, e: Exception, line: bytes, content_type: str, model: str) -> ResponseFormatError:
        kind = "JSON nested too deep" if isinstance(e, RecursionError) else str(e)
        served = "" if "json" in content_type.lower() else f" (served as {content_type or 'no content type'!r})"
        return self._format_error(f"sent a malformed chunk{served}: {kind}: {_excerpt(line)}", model)

    def _status_error(
        self, status: int | None, message: str, model: str, headers: Mapping[str, str] | None = None
    ) -> Exception:
        status = status if status and status > 0 else None
        message = self.scrub(message)
        if status == 404 and "not found" in message.lower():
            return ModelNotFoundError(
                f"model {model!r} is not on the Ollama server at {self.host}; pull it first: ollama pull {model}",
                provider="ollama",
                model=model,
                status_code=404,
            )
        wait = retry_after(headers) if headers is not None else None
        return error_for_status(status, f"Ollama: {message}", retry_after=wait, provider="ollama", model=model)

    def _unreachable(self, model: str, e: BaseException) -> ProviderUnavailableError:
        return ProviderUnavailableError(
            f"cannot reach Ollama at {self.host} ({type(e).__name__}); is `ollama serve` running there?",
            provider="ollama",
            model=model,
        )


class _ChunkReader:
    """The events of one stream, chunk by chunk, checked against Ollama's format; pure: no I/O.

    `feed` takes one parsed NDJSON value (anything JSON can be) and returns
    its events, or raises a `ProviderError`: `ResponseFormatError` for a
    value not in Ollama's format, `ProviderUnavailableError` for an error the
    server reports in the stream. `finish` returns the closing events once
    the `done` chunk was read. Whole tool calls are collected and handed
    over at the end.
    """

    __slots__ = ("_model", "calls", "final", "model")

    def __init__(self, model: OllamaChatModel, name: str) -> None:
        self._model = model
        self.model = name
        self.calls: list[ToolCall] = []
        self.final: ResponseDone | None = None

    def feed(self, part: Any) -> list[ModelEvent]:
        if part.__class__ is not dict:
            raise self._bad(f"a chunk that is {_kind(part)}, not an object")
        if self.final is not None:  # nothing counts after `done`
            return []
        events: list[ModelEvent] = []
        message = part.get("message")
        if message is not None:
            if message.__class__ is not dict:
                raise self._bad(f"a message that is {_kind(message)}, not an object")
            content = message.get("content")
            if content.__class__ is str:
                if content:  # the common case: a text chunk
                    events.append(TextDelta(content))
            elif content is not None:
                raise self._bad(f"message content that is {_kind(content)}, not a string")
            if len(message) > 2:  # more than role and content: thinking, tool calls
                self._extras(message, events)
        elif "error" in part:
            error = part["error"]
            if isinstance(error, dict):
                error = error.get("message", error)
            raise ProviderUnavailableError(self._model.scrub(f"Ollama: {error}"), provider="ollama", model=self.model)
        done = part.get("done")
        if done is not None and done is not False:
            if done is not True:
                raise self._bad(f"`done` that is {_kind(done)}, not true or false")
            reason = part.get("done_reason")
            if reason is not None and reason.__class__ is not str:
                raise self._bad(f"`done_reason` that is {_kind(reason)}, not a string")
            self.final = ResponseDone(finish_reason=reason or "stop", usage=self._usage(part))
        return events

    def finish(self) -> list[ModelEvent]:
        if self.final is None:
            raise ProviderUnavailableError(
                f"Ollama at {self._model.host} ended the stream before its final chunk",
                provider="ollama",
                model=self.model,
            )
        return [*(ToolCallReady(call=call) for call in self.calls), self.final]

    def _extras(self, message: dict[str, Any], events: list[ModelEvent]) -> None:
        """Thinking and tool calls of one chunk; whole calls, so each is complete when it arrives."""
        thinking = message.get("thinking")
        if thinking.__class__ is str:
            if thinking:
                events.append(ThinkingDelta(thinking))
        elif thinking is not None:
            raise self._bad(f"thinking that is {_kind(thinking)}, not a string")
        tool_calls = message.get("tool_calls")
        if tool_calls is None:
            return
        if tool_calls.__class__ is not list:
            raise self._bad(f"tool_calls that is {_kind(tool_calls)}, not a list")
        for tool_call in tool_calls:
            call = self._call(tool_call)
            events.append(
                ToolCallDelta(index=len(self.calls), id=call.id, name=call.name, arguments_delta=call.arguments)
            )
            self.calls.append(call)

    def _call(self, tool_call: Any) -> ToolCall:
        if tool_call.__class__ is not dict:
            raise self._bad(f"a tool call that is {_kind(tool_call)}, not an object")
        function = tool_call.get("function")
        if function.__class__ is not dict:
            raise self._bad(f"a tool call whose function is {_kind(function)}, not an object")
        name = function.get("name")
        if name.__class__ is not str:
            raise self._bad(f"a tool call whose name is {_kind(name)}, not a string")
        arguments = function.get("arguments")
        if arguments is None:
            arguments = "{}"
        elif arguments.__class__ is dict:
            try:
                arguments = json.dumps(arguments)
            except (ValueError, RecursionError) as e:
                raise self._bad(f"tool call arguments that cannot be written back as JSON ({type(e).__name__})") from e
        elif arguments.__class__ is not str:
            raise self._bad(f"tool call arguments that are {_kind(arguments)}, not an object")
        call_id = tool_call.get("id")
        if call_id is None or call_id == "":
            call_id = f"call_{next(_ids)}"
        elif call_id.__class__ is not str:
            raise self._bad(f"a tool call id that is {_kind(call_id)}, not a string")
        return ToolCall(id=call_id, name=name, arguments=arguments)

    def _usage(self, final: dict[str, Any]) -> Usage:
        return Usage(
            prompt_tokens=self._count(final, "prompt_eval_count"),
            completion_tokens=self._count(final, "eval_count"),
            load_duration=self._duration(final, "load_duration"),
            prompt_eval_duration=self._duration(final, "prompt_eval_duration"),
            eval_duration=self._duration(final, "eval_duration"),
        )

    def _count(self, final: dict[str, Any], key: str) -> int:
        """A token count: a whole number; a negative one counts as 0."""
        value = final.get(key)
        if value is None:
            return 0
        if value.__class__ is not int:
            raise self._bad(f"`{key}` that is {_kind(value)}, not a whole number")
        return value if value > 0 else 0

    def _duration(self, final: dict[str, Any], key: str) -> float:
        """Nanoseconds -> seconds; a negative or infinite one counts as 0."""
        value = final.get(key)
        if value is None:
            return 0.0
        if value.__class__ is not int and value.__class__ is not float:
            raise self._bad(f"`{key}` that is {_kind(value)}, not a number")
        seconds = float(value) * _NS
        return seconds if seconds > 0 and math.isfinite(seconds) else 0.0

    def _bad(self, what: str) -> ResponseFormatError:
        return self._model._format_error(f"sent {what}, which is not Ollama's format", self.model)


def _kind(value: object) -> str:
    """What a parsed JSON value is, in JSON's words."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _excerpt(raw: bytes) -> str:
    """How a body starts, on one line, for an error message (masked with the rest of the message)."""
    text = " ".join(raw[: 4 * _EXCERPT].decode("utf-8", "replace").split())
    return repr(text if len(text) <= _EXCERPT else text[:_EXCERPT] + "...")


async def _read_capped(response: Any, limit: int, *, to_the_end: bool = True) -> bytes:
    """At most `limit` bytes of an httpx response's body, decoded, reading at most about `limit` bytes off the wire.

    httpx would decode (gunzip) each piece whole, however much it grows:
    here gzip and deflate are decoded by hand, up to `limit`. A body in
    another encoding is not shown (b""). A body cut off short is what came.
    A short body is read to its end, so that the connection can be reused,
    unless `to_the_end` is false: then only what the first read brings, and
    the connection is closed with the response.
    """
    encoding = response.headers.get("content-encoding", "").strip().lower()
    decoder: Any = None
    if encoding in ("gzip", "x-gzip", "deflate"):
        decoder = zlib.decompressobj(zlib.MAX_WBITS | 32)  # a gzip or a zlib header, whichever it is
    elif encoding not in ("", "identity"):
        return b""
    out = bytearray()
    read = 0
    try:
        async for raw in response.aiter_raw():
            read += len(raw)
            out += decoder.decompress(raw, limit - len(out)) if decoder is not None else raw[: limit - len(out)]
            if len(out) >= limit or read >= limit or (decoder is not None and decoder.eof) or not to_the_end:
                break
    except zlib.error:
        pass
    except Exception as e:  # the body was cut off: the status still says what happened
        if not is_transport_error(e):
            raise
    return bytes(out)


def _error_start(text: str) -> str | None:
    """The (start of the) `error` string of a JSON error body that was cut off: `{"error": "...` or
    `{"error": {"message": "...`; None if it does not start so."""
    match = _ERROR_START.match(text)
    if match is None:
        return None
    try:
        return str(_raw_decode(text, match.end() - 1)[0])  # the string ends before the cut
    except ValueError:
        pass
    rest = text[match.end() :]
    for cut in range(len(rest), max(len(rest) - 12, -1), -1):  # back off over an escape cut in two (at most 12)
        with suppress(ValueError):
            return str(_loads(f'"{rest[:cut]}"'))
    return None


async def _read_to_the_end(chunks: AsyncIterator[bytes]) -> None:
    """After the `done` chunk: read on to the end of the body only while what comes is blank, short and quick.

    A server that ends its body there (Ollama does) gets its connection back
    into the pool; one that sends more, or holds the connection open, has
    that connection closed: nothing of it is read as the answer.
    """
    seen = 0
    with suppress(Exception):
        async with asyncio.timeout(END_GRACE):
            async for chunk in chunks:
                seen += len(chunk)
                if seen > _END_LIMIT or not chunk.isspace():
                    return


def _split_userinfo(host: str) -> tuple[str, tuple[str, str] | None]:
    """`host` without its `user:password@`, and the (user, password) that were there, unquoted."""
    scheme, sep, rest = host.partition("://")
    if not sep:
        scheme, rest = "", host
    end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    userinfo, at, hostport = rest[:end].rpartition("@")
    if not at:
        return host, None
    user, _, password = userinfo.partition(":")
    return f"{scheme}{sep}{hostport}{rest[end:]}", (unquote(user), unquote(password))


def _bearer_token(client: Any) -> str | None:
    """The token the client sends (`Authorization: Bearer ...`), for a client the adapter was handed ready-made."""
    headers = getattr(getattr(client, "_client", None), "headers", None)
    value = headers.get("authorization") if isinstance(headers, Mapping) else None
    if isinstance(value, str) and value[:7].lower() == "bearer ":
        return value[7:].strip()
    return None


def _is_connection_failure(e: Exception) -> bool:
    """Refused, reset or timed out before the answer's first line: worth another attempt."""
    if isinstance(e, ConnectionError | TimeoutError):  # the client's own "failed to connect" is a ConnectionError
        return True
    if not type(e).__module__.startswith("httpx"):
        return False
    import httpx

    return isinstance(e, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)


_OPENAI_ONLY = ("reasoning_summary", "verbosity", "truncation", "service_tier")
_EFFORT_TO_THINK: dict[str, bool | str] = {
    "none": False,
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
}


def _think(s: ModelSettings) -> bool | str | None:
    """`think` as given; else OpenAI's `reasoning_effort` on Ollama's scale (false, low, medium, high)."""
    if s.think is not None:
        return s.think
    return _EFFORT_TO_THINK[s.reasoning_effort] if s.reasoning_effort is not None else None


def _map_options(s: ModelSettings) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if s.temperature is not None:
        options["temperature"] = s.temperature
    if s.top_p is not None:
        options["top_p"] = s.top_p
    if s.top_k is not None:
        options["top_k"] = s.top_k
    if s.max_tokens is not None:
        options["num_predict"] = s.max_tokens
    if s.stop is not None:
        options["stop"] = list(s.stop)
    if s.seed is not None:
        options["seed"] = s.seed
    return options


def _map_message(m: Message) -> dict[str, Any]:
    match m:
        case SystemMessage() | UserMessage():
            return {"role": m.role, "content": m.content}
        case AssistantMessage():
            out: dict[str, Any] = {"role": "assistant", "content": m.content}
            if m.tool_calls:
                out["tool_calls"] = [{"function": {"name": c.name, "arguments": _arguments(c)}} for c in m.tool_calls]
            return out
        case ToolMessage():
            return {"role": "tool", "content": m.content, "tool_name": m.name}
    raise ConfigurationError(f"cannot send {type(m).__name__} to Ollama")


def _arguments(call: ToolCall) -> Mapping[str, Any]:
    """Ollama wants the arguments object back; a model's invalid JSON is replayed as an empty object."""
    try:
        value = json.loads(call.arguments or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _map_tool(t: ToolSpec) -> dict[str, Any]:
    return {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}


def ollama_client(*, host: str, timeout: float, headers: Mapping[str, str] | None = None) -> Any:
    """An `ollama.AsyncClient`; `user:password@` in `host` is sent as HTTP basic auth, as curl and Go would.

    (The client itself drops it from the URL.) An `authorization` header, from an API key, wins.
    """
    from ollama import AsyncClient

    headers = dict(headers or {})
    kwargs: dict[str, Any] = {}
    _, userinfo = _split_userinfo(host)
    if userinfo is not None and not any(k.lower() == "authorization" for k in headers):
        import httpx

        kwargs["auth"] = httpx.BasicAuth(*userinfo)
    return AsyncClient(host=host, timeout=timeout, headers=headers, **kwargs)

"""The data of a Chat Completions event stream -> model events.

Lenient where compatible servers are known to differ from OpenAI (vLLM,
llama.cpp, LiteLLM, LM Studio, Ollama's /v1: ids repeated in every fragment,
tool calls with `finish_reason: stop`, usage on the last choice chunk or
missing, numeric error codes, extra keys) and strict where text could be lost
or a wrong type could travel on: anything that is not the documented shape is
a `ResponseFormatError`, never a `KeyError` or a `TypeError` from deep inside.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..domain.errors import ContentFilterError, ProviderUnavailableError, ResponseFormatError
from ..domain.events import ModelEvent, ResponseDone, TextDelta, ThinkingDelta, ToolCallDelta, ToolCallReady
from ..domain.messages import ToolCall, Usage
from ._openai_errors import ErrorContext, filtered, map_error_body

_loads = json.loads
_PLAIN_DELTA = frozenset(("content", "role"))
_SHAPE_ERRORS = (KeyError, IndexError, TypeError, AttributeError, ValueError, RecursionError)


class _Malformed(Exception):
    """A chunk that is JSON but not in the documented shape."""


class StreamReader:
    """Turns the SSE data of one response into model events; `done` once `[DONE]` arrived.

    Tool calls are keyed by `index`; a call's id and name are set once (some
    servers repeat them in every fragment) and only arguments accumulate.
    """

    __slots__ = ("_calls", "_context", "_filtered", "_finish", "_usage", "done")

    def __init__(self, context: ErrorContext) -> None:
        self._context = context
        self._calls: dict[int, list[Any]] = {}  # index -> [id, name, argument fragments]
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._filtered: list[str] = []
        self.done = False

    def feed(self, data: bytes) -> list[ModelEvent]:
        if data == b"[DONE]":
            self.done = True
            return []
        try:
            chunk = _loads(data)
            if chunk.__class__ is not dict:
                raise _Malformed("not a JSON object")
            return self._chunk(chunk)
        except (*_SHAPE_ERRORS, _Malformed) as e:  # JSONDecodeError is a ValueError
            what = "is not JSON" if isinstance(e, json.JSONDecodeError | RecursionError) else f"is malformed ({e})"
            raise self._context.error(ResponseFormatError, f"a stream chunk {what}: {data[:200]!r}") from None

    def _chunk(self, chunk: dict[str, Any]) -> list[ModelEvent]:
        usage = chunk.get("usage")
        if usage:  # its own chunk at OpenAI; on the last choice chunk at some servers
            self._usage = _usage(usage)
        choices = chunk.get("choices")
        if choices:
            choice = choices[0]
            delta = choice.get("delta")
            events: list[ModelEvent] = []
            if delta:
                content = delta.get("content")
                if content:  # the common case: one text delta per chunk
                    if content.__class__ is not str:
                        raise _Malformed("content is not a string")
                    events.append(TextDelta(content))
                if not _PLAIN_DELTA.issuperset(delta):
                    self._other_delta(delta, events)
            finish = choice.get("finish_reason")
            if finish:
                if finish.__class__ is not str:
                    raise _Malformed("finish_reason is not a string")
                self._finish = finish
                if finish == "content_filter":
                    self._filtered = filtered(choice.get("content_filter_results"))
            return events
        if "error" in chunk:
            raise map_error_body(self._context, chunk, status=None)
        return []

    def _other_delta(self, delta: Mapping[str, Any], events: list[ModelEvent]) -> None:
        thinking = delta.get("reasoning_content") or delta.get("reasoning")
        if thinking:
            events.append(ThinkingDelta(_text(thinking, "reasoning")))
        refusal = delta.get("refusal")
        if refusal:
            events.append(TextDelta(_text(refusal, "refusal")))
        tool_calls = delta.get("tool_calls")
        if not tool_calls:
            return
        if tool_calls.__class__ is not list:
            raise _Malformed("tool_calls is not a list")
        for position, fragment in enumerate(tool_calls):
            index = fragment.get("index", position)
            if index.__class__ is not int:
                raise _Malformed("a tool call index is not an integer")
            function = fragment.get("function") or {}
            arguments = function.get("arguments") or ""
            if arguments.__class__ is not str:
                if not isinstance(arguments, dict):
                    raise _Malformed("tool call arguments are neither a string nor an object")
                arguments = json.dumps(arguments)  # a few servers send the object itself
            call = self._calls.get(index)
            if call is None:
                call = self._calls[index] = [
                    _optional_text(fragment.get("id")),
                    _optional_text(function.get("name")),
                    [],
                ]
                events.append(ToolCallDelta(index=index, id=call[0], name=call[1], arguments_delta=arguments))
            else:
                call[0] = call[0] or _optional_text(fragment.get("id"))
                call[1] = call[1] or _optional_text(function.get("name"))
                events.append(ToolCallDelta(index=index, arguments_delta=arguments))
            if arguments:
                call[2].append(arguments)

    def finish(self) -> list[ModelEvent]:
        context = self._context
        if not self.done and self._finish is None:
            raise context.error(ProviderUnavailableError, "the stream ended before the response was complete")
        if self._finish == "content_filter":
            categories = ", ".join(self._filtered) or "unspecified"
            raise context.error(
                ContentFilterError,
                f"the answer was stopped by a content filter ({categories})",
                categories=self._filtered,
            )
        events: list[ModelEvent] = []
        for index in sorted(self._calls):
            call_id, name, fragments = self._calls[index]
            if not name:
                raise context.error(ResponseFormatError, f"tool call {index} has no function name")
            events.append(
                ToolCallReady(call=ToolCall(id=call_id or f"call_{index}", name=name, arguments="".join(fragments)))
            )
        events.append(ResponseDone(finish_reason=self._finish, usage=self._usage))
        return events


def _text(value: Any, what: str) -> str:
    if value.__class__ is not str:
        raise _Malformed(f"{what} is not a string")
    return str(value)


def _optional_text(value: Any) -> str | None:
    if value is None or value.__class__ is str:
        return value  # type: ignore[no-any-return]
    raise _Malformed("a tool call id or name is not a string")


def _count(raw: Mapping[str, Any], key: str) -> int:
    value = raw.get(key)
    if value is None:
        return 0
    if value.__class__ is float and value.is_integer():
        value = int(value)
    if value.__class__ is not int or value < 0:
        raise _Malformed(f"usage {key} is not a whole number >= 0")
    return int(value)


def _usage(raw: Any) -> Usage:
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    return Usage(
        prompt_tokens=_count(raw, "prompt_tokens"),
        completion_tokens=_count(raw, "completion_tokens"),
        cached_tokens=_count(prompt_details, "cached_tokens"),
        reasoning_tokens=_count(completion_details, "reasoning_tokens"),
    )

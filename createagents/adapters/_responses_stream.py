"""The events of a streamed Responses API answer -> model events.

Text, refusal, reasoning (summary or raw) and function-call argument deltas
pass on as they arrive; a hosted tool's progress (web search, file search,
code interpreter) becomes `HostedToolCall` events; the completed items that
the API wants back next turn (encrypted reasoning, hosted tool calls) ride
on `ResponseDone` as provider items. `response.completed` and
`response.incomplete` end the stream; `response.failed` and `error` raise the
same typed errors as the Chat Completions adapter. Anything that is not the
documented shape is a `ResponseFormatError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..domain.errors import ContentFilterError, ProviderUnavailableError, ResponseFormatError
from ..domain.events import (
    HostedToolCall,
    ModelEvent,
    ResponseDone,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallReady,
)
from ..domain.messages import ProviderItem, ToolCall, Usage
from ._openai_errors import ErrorContext, map_error_body
from ._responses_wire import API

_loads = json.loads
_SHAPE_ERRORS = (KeyError, IndexError, TypeError, AttributeError, ValueError, RecursionError)
_TEXT = "response.output_text.delta"
_THINKING = frozenset(("response.reasoning_summary_text.delta", "response.reasoning_text.delta"))
_PROGRESS = frozenset(("in_progress", "searching", "interpreting", "generating", "completed", "failed"))
_FINISH = {"max_output_tokens": "length", "content_filter": "content_filter"}
_KEPT = frozenset(("reasoning", "web_search_call", "file_search_call", "code_interpreter_call"))  # sent back


class _Malformed(Exception):
    """An event that is JSON but not in the documented shape."""


class ResponsesReader:
    """Turns the SSE data of one Responses API stream into model events; `done` once it ended.

    Function calls are keyed by their item id; their index is the order in
    which they started, as Chat Completions numbers them.
    """

    __slots__ = ("_calls", "_context", "_finish", "_items", "_usage", "done")

    def __init__(self, context: ErrorContext) -> None:
        self._context = context
        self._calls: dict[str, list[Any]] = {}  # item id -> [call id, name, argument fragments, index, final]
        self._items: list[ProviderItem] = []
        self._finish: str | None = None
        self._usage: Usage | None = None
        self.done = False

    def feed(self, data: bytes) -> list[ModelEvent]:
        try:
            event = _loads(data)
            if event.__class__ is not dict:
                raise _Malformed("not a JSON object")
            kind = event["type"]
            if kind == _TEXT:  # the hot path: one text delta per event
                delta = event["delta"]
                if delta.__class__ is not str:
                    raise _Malformed("delta is not a string")
                return [TextDelta(delta)] if delta else []
            return self._other(kind, event)
        except (*_SHAPE_ERRORS, _Malformed) as e:  # JSONDecodeError is a ValueError
            what = "is not JSON" if isinstance(e, json.JSONDecodeError | RecursionError) else f"is malformed ({e})"
            raise self._context.error(ResponseFormatError, f"a stream event {what}: {data[:200]!r}") from None

    def _other(self, kind: Any, event: dict[str, Any]) -> list[ModelEvent]:
        if kind in _THINKING:
            return [ThinkingDelta(_text(event["delta"], "delta"))]
        if kind == "response.refusal.delta":
            return [TextDelta(_text(event["delta"], "delta"))]
        if kind == "response.function_call_arguments.delta":
            call = self._call(event["item_id"])
            delta = _text(event["delta"], "delta")
            call[2].append(delta)
            return [ToolCallDelta(index=call[3], arguments_delta=delta)]
        if kind == "response.function_call_arguments.done":
            self._call(event["item_id"])[4] = _text(event["arguments"], "arguments")
            return []
        if kind == "response.output_item.added":
            return self._added(_object(event["item"], "item"))
        if kind == "response.output_item.done":
            return self._item_done(_object(event["item"], "item"))
        if kind == "response.reasoning_summary_part.added" and event.get("summary_index"):
            return [ThinkingDelta("\n\n")]  # summary parts are paragraphs
        if kind in ("response.completed", "response.incomplete"):
            self._end(_object(event["response"], "response"))
            return []
        if kind == "response.failed":
            response = _object(event["response"], "response")
            raise map_error_body(self._context, {"error": response.get("error") or {}}, status=None)
        if kind == "error":
            raise map_error_body(self._context, {"error": event}, status=None)
        if kind.__class__ is not str:
            raise _Malformed("type is not a string")
        head, _, status = kind.rpartition(".")
        if status in _PROGRESS and head.endswith("_call") and head.startswith("response."):
            return [HostedToolCall(id=_text(event["item_id"], "item_id"), type=head[9:], status=status)]
        return []  # created, in_progress, content parts, annotations...: nothing we pass on

    def _added(self, item: dict[str, Any]) -> list[ModelEvent]:
        kind = item["type"]
        if kind == "function_call":
            call_id, name = _text(item["call_id"], "call_id"), _text(item["name"], "name")
            index = len(self._calls)
            arguments = item.get("arguments") or ""
            self._calls[_text(item["id"], "id")] = [call_id, name, [arguments] if arguments else [], index, None]
            return [ToolCallDelta(index=index, id=call_id, name=name, arguments_delta=_text(arguments, "arguments"))]
        if kind.__class__ is str and kind.endswith("_call"):  # a hosted tool at work
            return [HostedToolCall(id=_text(item["id"], "id"), type=kind, status=str(item.get("status") or ""))]
        return []

    def _item_done(self, item: dict[str, Any]) -> list[ModelEvent]:
        kind = item["type"]
        if kind == "function_call":
            item_id = _text(item["id"], "id")
            events: list[ModelEvent] = []
            call = self._calls.get(item_id)
            if call is None:  # never announced: the whole call at once
                events = self._added(item)
                call = self._calls[item_id]
            call[0] = _text(item.get("call_id") or call[0], "call_id")
            call[4] = _text(item.get("arguments", call[4] if call[4] is not None else ""), "arguments")
            return events
        if kind in _KEPT:  # an image's base64 or an MCP server's listing is not worth sending back each turn
            self._items.append(ProviderItem(api=API, data=item))
        if kind == "reasoning":
            return []
        if kind.__class__ is str and kind.endswith("_call"):
            status = str(item.get("status") or "completed")
            return [HostedToolCall(id=_text(item["id"], "id"), type=kind, status=status, item=item)]
        return []

    def _call(self, item_id: Any) -> list[Any]:
        call = self._calls.get(item_id)
        if call is None:
            raise _Malformed(f"arguments for a function call that never started ({item_id!r})")
        return call

    def _end(self, response: dict[str, Any]) -> None:
        self.done = True
        usage = response.get("usage")
        if usage:
            self._usage = _usage(usage)
        if response.get("status") == "incomplete":
            details = response.get("incomplete_details") or {}
            reason = str(details.get("reason") or "incomplete")
            self._finish = _FINISH.get(reason, reason)
        else:
            self._finish = "tool_calls" if self._calls else "stop"

    def finish(self) -> list[ModelEvent]:
        context = self._context
        if not self.done:
            raise context.error(ProviderUnavailableError, "the stream ended before the response was complete")
        if self._finish == "content_filter":
            raise context.error(ContentFilterError, "the answer was stopped by a content filter", categories=[])
        events: list[ModelEvent] = []
        for call_id, name, fragments, _, final in sorted(self._calls.values(), key=lambda c: c[3]):
            arguments = final if final is not None else "".join(fragments)
            events.append(ToolCallReady(call=ToolCall(id=call_id, name=name, arguments=arguments)))
        events.append(ResponseDone(finish_reason=self._finish, usage=self._usage, provider_items=tuple(self._items)))
        return events


def _text(value: Any, what: str) -> str:
    if value.__class__ is not str:
        raise _Malformed(f"{what} is not a string")
    return str(value)


def _object(value: Any, what: str) -> dict[str, Any]:
    if value.__class__ is not dict:
        raise _Malformed(f"{what} is not an object")
    return value  # type: ignore[no-any-return]


def _count(raw: Mapping[str, Any], key: str) -> int:
    value = raw.get(key)
    if value is None:
        return 0
    if value.__class__ is not int or value < 0:
        raise _Malformed(f"usage {key} is not a whole number >= 0")
    return int(value)


def _usage(raw: Any) -> Usage:
    raw = _object(raw, "usage")
    return Usage(
        prompt_tokens=_count(raw, "input_tokens"),
        completion_tokens=_count(raw, "output_tokens"),
        cached_tokens=_count(raw.get("input_tokens_details") or {}, "cached_tokens"),
        reasoning_tokens=_count(raw.get("output_tokens_details") or {}, "reasoning_tokens"),
    )

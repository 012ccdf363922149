"""Server-sent events as precomputed byte templates: per token, only the delta text is JSON-encoded.

A chunk is `head + quote(text) + tail`, where head and tail hold the
request's fixed envelope (id, created, model) as bytes made once per
request; `quote` is the C string encoder `json` itself uses.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as quote  # type: ignore[attr-defined]  # the C encoder
from typing import Any

from ...domain.messages import Usage

DONE = b"data: [DONE]\n\n"

__all__ = ["DONE", "ChatChunks", "ResponseEvents", "chat_usage", "data_event", "error_event", "quote", "response_usage"]


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def data_event(payload: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {_dump(payload)}\n\n".encode()


def error_event(body: dict[str, Any]) -> bytes:
    """The chat completions error chunk: `data: {"error": {...}}`."""
    return data_event(body)


def chat_usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def response_usage(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


class ChatChunks:
    """The `chat.completion.chunk` events of one streamed completion."""

    __slots__ = ("_base", "_usage_null", "head", "tail")

    def __init__(self, completion_id: str, created: int, model: str, *, include_usage: bool) -> None:
        self._base = (
            f'data: {{"id":{quote(completion_id)},"object":"chat.completion.chunk","created":{created},'
            f'"model":{quote(model)},"system_fingerprint":null,"choices":['
        )
        # with include_usage, every chunk but the last carries "usage": null, as OpenAI sends them
        self._usage_null = ',"usage":null' if include_usage else ""
        self.head = self._base + '{"index":0,"delta":{"content":'
        self.tail = '},"logprobs":null,"finish_reason":null}]' + self._usage_null + "}\n\n"

    def text(self, text: str) -> bytes:
        return f"{self.head}{quote(text)}{self.tail}".encode()

    def role(self) -> bytes:
        return (
            self._base
            + '{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]'
            + self._usage_null
            + "}\n\n"
        ).encode()

    def finish(self, reason: str) -> bytes:
        return (
            self._base
            + f'{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":{quote(reason)}}}]'
            + self._usage_null
            + "}\n\n"
        ).encode()

    def usage(self, usage: Usage) -> bytes:
        return f'{self._base}],"usage":{_dump(chat_usage(usage))}}}\n\n'.encode()

    def tool_calls(self, calls: list[dict[str, Any]]) -> bytes:
        """One delta per tool call (index, id, type, name and arguments), as the SDKs accumulate them."""
        chunks = []
        for i, call in enumerate(calls):
            delta = {"tool_calls": [{"index": i, **call}]}
            chunks.append(
                f'{self._base}{{"index":0,"delta":{_dump(delta)},"logprobs":null,"finish_reason":null}}]'
                f"{self._usage_null}}}\n\n"
            )
        return "".join(chunks).encode()


class ResponseEvents:
    """The Responses API events of one streamed response, numbered by `sequence_number`."""

    __slots__ = ("delta_head", "delta_tail", "item_id", "seq")

    def __init__(self, item_id: str) -> None:
        self.item_id = item_id
        self.seq = 0
        self.delta_head = (
            'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
            f'"item_id":{quote(item_id)},"output_index":0,"content_index":0,"delta":'
        )
        self.delta_tail = ',"logprobs":[],"sequence_number":'

    def delta(self, text: str) -> bytes:
        seq = self.seq
        self.seq = seq + 1
        return f"{self.delta_head}{quote(text)}{self.delta_tail}{seq}}}\n\n".encode()

    def event(self, kind: str, fields: dict[str, Any]) -> bytes:
        payload = {"type": kind, **fields, "sequence_number": self.seq}
        self.seq += 1
        return data_event(payload, kind)

    def error(self, body: dict[str, Any]) -> bytes:
        """An `error` event that also carries the `{"error": {...}}` object clients look for."""
        error = body["error"]
        payload = {
            "type": "error",
            "code": error["code"],
            "message": error["message"],
            "param": error["param"],
            "sequence_number": self.seq,
            "error": error,
        }
        self.seq += 1
        return data_event(payload, "error")

    def start(self, response: dict[str, Any]) -> bytes:
        """created and in_progress: what goes out as soon as the run shows a sign of success."""
        return self.event("response.created", {"response": response}) + self.event(
            "response.in_progress", {"response": response}
        )

    def message_added(self) -> bytes:
        """The message item (output 0) and its text part: everything before the first delta."""
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        item = {"id": self.item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
        return self.event("response.output_item.added", {"output_index": 0, "item": item}) + self.event(
            "response.content_part.added",
            {"item_id": self.item_id, "output_index": 0, "content_index": 0, "part": part},
        )

    def message_done(self, item: dict[str, Any]) -> bytes:
        """The text, its part and the message item done."""
        part = item["content"][0]
        where = {"item_id": self.item_id, "output_index": 0, "content_index": 0}
        return b"".join(
            (
                self.event("response.output_text.done", {**where, "text": part["text"], "logprobs": []}),
                self.event("response.content_part.done", {**where, "part": part}),
                self.event("response.output_item.done", {"output_index": 0, "item": item}),
            )
        )

    def pending_item(self, index: int, item: dict[str, Any]) -> bytes:
        """An item the client must answer (`mcp_approval_request`, `function_call`), added and done.

        A function call's arguments arrive as OpenAI sends them: one delta, then done.
        """
        if item["type"] != "function_call":
            return self.event("response.output_item.added", {"output_index": index, "item": item}) + self.event(
                "response.output_item.done", {"output_index": index, "item": item}
            )
        where = {"item_id": item["id"], "output_index": index}
        added = {**item, "arguments": "", "status": "in_progress"}
        return b"".join(
            (
                self.event("response.output_item.added", {"output_index": index, "item": added}),
                self.event("response.function_call_arguments.delta", {**where, "delta": item["arguments"]}),
                self.event("response.function_call_arguments.done", {**where, "arguments": item["arguments"]}),
                self.event("response.output_item.done", {"output_index": index, "item": item}),
            )
        )

    def completed(self, response: dict[str, Any]) -> bytes:
        return self.event("response.completed", {"response": response})

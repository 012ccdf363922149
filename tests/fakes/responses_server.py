"""A fake OpenAI server (aiohttp) faithful to the Responses API streaming wire format.

Serves `POST /v1/responses` (OpenAI), Azure's v1 path `POST /openai/v1/responses`
and Azure's dated path `POST /openai/responses?api-version=` (the deployment is
the body's `model`). Only streaming is served: the body must say `"stream": true`.

Each request takes the next `RScript` from the queue (or echoes the last user
input), and every request is recorded. The stream is what the API documents and
the `openai` SDK parses: `event: <type>` / `data: <json>` frames with a
`sequence_number` from 0, `response.created` and `response.in_progress`, then
per output item `response.output_item.added`, its own events and
`response.output_item.done`, and a terminal `response.completed`,
`response.incomplete` or `response.failed`. There is no `[DONE]` line.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from ._base import FakeServer
from .openai_server import Recorded

__all__ = ["DEFAULT_ORDER", "FakeResponsesServer", "RFunctionCall", "RScript", "Recorded"]

DEFAULT_ORDER = ("reasoning", "hosted", "message", "function_calls")
OBFUSCATION = "Zm4k3Pad"  # stands for the random padding OpenAI puts on delta events by default


def _default_usage() -> dict[str, Any]:
    return {
        "input_tokens": 11,
        # `cache_write_tokens` is required by the SDK's `InputTokensDetails`
        "input_tokens_details": {"cached_tokens": 3, "cache_write_tokens": 0},
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 18,
    }


@dataclass
class RFunctionCall:
    name: str
    arguments: list[str] = field(default_factory=list)  # fragments, one `function_call_arguments.delta` each
    call_id: str | None = None  # default "call_<n>_abc"


@dataclass
class RScript:
    """One response of the fake server."""

    text: list[str] = field(default_factory=list)  # output_text deltas of one assistant message
    refusal: list[str] = field(default_factory=list)  # refusal deltas (a `refusal` content part of the message)
    reasoning_summary: list[str] = field(default_factory=list)  # summary text deltas of one summary part
    reasoning_text: list[str] = field(default_factory=list)  # raw reasoning_text deltas (gpt-oss style)
    reasoning: bool = False  # a reasoning item even without summary or text (as o-series models send)
    encrypted_content: str | None = "enc_abc"  # only when the request's `include` asks for it
    function_calls: list[RFunctionCall] = field(default_factory=list)
    # hosted tool items, e.g. {"type": "web_search_call", "action": {...}}; `id` and `status` are filled in.
    # code_interpreter_call: `code` may be a list of fragments, one `code_interpreter_call_code.delta` each.
    hosted: list[dict[str, Any]] = field(default_factory=list)
    order: list[str] | None = None  # of "reasoning", "hosted", "message", "function_calls"; see DEFAULT_ORDER
    usage: dict[str, Any] | None = field(default_factory=_default_usage)
    incomplete: str | None = None  # "max_output_tokens" | "content_filter": ends with response.incomplete
    failed: dict[str, Any] | None = None  # the response's error, e.g. {"code": "server_error", "message": "..."}
    error_event: dict[str, Any] | None = None  # a top-level `error` event after the items, then nothing more
    # faults
    status: int | None = None
    error: dict[str, Any] | None = None
    raw_error_body: str | None = None  # a status answered with text, as a proxy or gateway would
    raw_content_type: str | None = None  # of raw_error_body
    headers: dict[str, str] = field(default_factory=dict)
    disconnect_after: int | None = None  # events sent before the connection is dropped
    malformed_after: int | None = None  # events sent before an event whose data is not JSON
    omit_completed: bool = False  # no terminal event: the stream just ends
    reset_after: int | None = None  # events sent before the connection is reset (RST)
    stall_after: int | None = None  # events sent before the server goes silent, the connection kept open
    never_answer: bool = False  # the request is read, then nothing is ever sent (not even headers)
    reset_before_first_byte: bool = False  # the request is read, then the connection is reset (RST)
    first_byte_delay: float = 0.0
    chunk_delay: float = 0.0  # before each event
    gzip: bool = False  # a gateway that compresses the event stream


class FakeResponsesServer(FakeServer):
    def __init__(self, *, api_key: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.scripts: list[RScript] = []
        self.requests: list[Recorded] = []
        self._ids = itertools.count(1)

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"

    def add(self, *scripts: RScript) -> None:
        self.scripts.extend(scripts)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/responses", self._openai)
        app.router.add_post("/openai/v1/responses", self._azure_v1)
        app.router.add_post("/openai/responses", self._azure_dated)

    # -- routes ----------------------------------------------------------------

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        return await self._respond(request)

    async def _azure_v1(self, request: web.Request) -> web.StreamResponse:
        if self.api_key and request.headers.get("api-key") != self.api_key:
            return _error(401, "Access denied due to invalid subscription key.", "401")
        return await self._respond(request)

    async def _azure_dated(self, request: web.Request) -> web.StreamResponse:
        if "api-version" not in request.query:
            return _error(404, "Resource not found", "404")
        if self.api_key and request.headers.get("api-key") != self.api_key:
            return _error(401, "Access denied due to invalid subscription key.", "401")
        return await self._respond(request)

    async def _respond(self, request: web.Request) -> web.StreamResponse:
        if request.content_type != "application/json":
            return _error(422, f"expected a JSON body, got Content-Type {request.content_type!r}", "422")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.", None)
        if not isinstance(body, dict):
            return _error(400, "The request body must be a JSON object.", None)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.requests.append(Recorded(request.path, dict(request.query), CIMultiDict(request.headers), body, peer))
        if body.get("stream") is not True:
            return _error(400, 'This server only streams: set "stream": true.', None, param="stream")
        script = self.scripts.pop(0) if self.scripts else _echo(body)
        if script.first_byte_delay:
            await asyncio.sleep(script.first_byte_delay)
        if script.never_answer:
            await self.hold(request)
            return web.Response(status=504)  # never reaches a client: it is gone
        if script.reset_before_first_byte:
            self.reset(request)
            return web.Response()  # not sent: the connection is gone
        if script.status is not None and script.raw_error_body is not None:
            return web.Response(
                text=script.raw_error_body,
                status=script.status,
                headers=script.headers,
                content_type=script.raw_content_type,
            )
        if script.status is not None:
            default = {"message": "fake error", "type": "server_error", "param": None, "code": None}
            return web.json_response(
                {"error": script.error or default},
                status=script.status,
                headers={"x-request-id": "req_fault", **script.headers},
            )
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "x-request-id": "req_resp_123", **script.headers}
        )
        if script.gzip:
            response.enable_compression(web.ContentCoding.gzip)
        await response.prepare(request)
        events = _Stream(body, script, next(self._ids)).frames()
        try:
            await self.write_pieces(request, response, events, script)
        except (ConnectionResetError, asyncio.CancelledError):
            self.connections_closed += 1
            raise
        return response


# -- the event stream ----------------------------------------------------------


class _Stream:
    """Builds the events of one response, in order, with their sequence numbers."""

    def __init__(self, body: dict[str, Any], script: RScript, n: int) -> None:
        self.body = body
        self.s = script
        self.n = n
        self.created_at = int(time.time())
        self.events: list[dict[str, Any]] = []
        self.output: list[dict[str, Any]] = []  # completed items, for the terminal response
        self.obfuscate = (body.get("stream_options") or {}).get("include_obfuscation", True) is not False
        self.encrypted = script.encrypted_content is not None and "reasoning.encrypted_content" in (
            body.get("include") or []
        )

    def emit(self, type_: str, **fields: Any) -> None:
        self.events.append({"type": type_, "sequence_number": len(self.events), **fields})

    def delta(self, type_: str, **fields: Any) -> None:
        if self.obfuscate:
            fields["obfuscation"] = OBFUSCATION
        self.emit(type_, **fields)

    def frames(self) -> list[bytes]:
        s = self.s
        response = self.response("in_progress")
        self.emit("response.created", response=response)
        self.emit("response.in_progress", response=response)
        builders = {
            "reasoning": self.reasoning,
            "hosted": self.hosted,
            "message": self.message,
            "function_calls": self.function_calls,
        }
        for kind in s.order or DEFAULT_ORDER:
            builders[kind]()
        if s.incomplete is not None and self.output:
            last = self.output[-1]
            if last["type"] in ("message", "function_call", "reasoning"):
                last["status"] = "incomplete"  # the item the budget or filter cut off
        if s.error_event is not None:
            error = {"code": "server_error", "message": "The server had an error.", "param": None, **s.error_event}
            self.emit("error", **error)
        elif s.omit_completed:
            pass
        elif s.failed is not None:
            self.emit("response.failed", response=self.response("failed", error=s.failed))
        elif s.incomplete is not None:
            final = self.response("incomplete", incomplete_details={"reason": s.incomplete}, usage=s.usage)
            self.emit("response.incomplete", response=final)
        else:
            final = self.response("completed", completed_at=int(time.time()), usage=s.usage)
            self.emit("response.completed", response=final)
        frames = [
            b"event: " + e["type"].encode() + b"\ndata: " + json.dumps(e, separators=(",", ":")).encode() + b"\n\n"
            for e in self.events
        ]
        if s.malformed_after is not None:
            frames.insert(
                s.malformed_after,
                b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","x\n\n',
            )
        return frames

    def response(self, status: str, **fields: Any) -> dict[str, Any]:
        """The response object, with the fields the API sends and `openai.types.responses.Response` requires."""
        b = self.body
        final = status != "in_progress"
        return {
            "id": f"resp_fake{self.n:04d}",
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "completed_at": None,
            "error": None,
            "incomplete_details": None,
            "instructions": b.get("instructions"),
            "max_output_tokens": b.get("max_output_tokens"),
            "max_tool_calls": b.get("max_tool_calls"),
            "model": b.get("model", "fake"),
            "output": [dict(item) for item in self.output] if final else [],
            "parallel_tool_calls": b.get("parallel_tool_calls", True),
            "previous_response_id": b.get("previous_response_id"),
            "prompt_cache_key": b.get("prompt_cache_key"),
            "reasoning": {"effort": None, "summary": None, **(b.get("reasoning") or {})},
            "safety_identifier": b.get("safety_identifier"),
            "service_tier": b.get("service_tier", "default"),
            "store": b.get("store", True),
            "temperature": b.get("temperature", 1.0),
            "text": b.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": b.get("tool_choice", "auto"),
            "tools": [_echo_tool(t) for t in b.get("tools") or []],
            "top_logprobs": b.get("top_logprobs", 0),
            "top_p": b.get("top_p", 1.0),
            "truncation": b.get("truncation", "disabled"),
            "usage": None,
            "user": b.get("user"),
            "metadata": b.get("metadata") or {},
            **fields,
        }

    def _id(self, prefix: str) -> str:
        return f"{prefix}_fake{self.n:04d}_{len(self.output)}"

    def _done(self, item: dict[str, Any]) -> None:
        self.emit("response.output_item.done", output_index=len(self.output), item=item)
        self.output.append(item)

    # -- items -----------------------------------------------------------------

    def reasoning(self) -> None:
        s = self.s
        if not (s.reasoning or s.reasoning_summary or s.reasoning_text):
            return
        index, item_id = len(self.output), self._id("rs")
        at = {"item_id": item_id, "output_index": index}
        self.emit(
            "response.output_item.added", output_index=index, item={"id": item_id, "type": "reasoning", "summary": []}
        )
        item: dict[str, Any] = {"id": item_id, "type": "reasoning", "summary": []}
        if s.reasoning_text:
            text = "".join(s.reasoning_text)
            self.emit("response.content_part.added", **at, content_index=0, part={"type": "reasoning_text", "text": ""})
            for d in s.reasoning_text:
                self.delta("response.reasoning_text.delta", **at, content_index=0, delta=d)
            self.emit("response.reasoning_text.done", **at, content_index=0, text=text)
            part = {"type": "reasoning_text", "text": text}
            self.emit("response.content_part.done", **at, content_index=0, part=part)
            item["content"] = [part]
        if s.reasoning_summary:
            text = "".join(s.reasoning_summary)
            self.emit("response.reasoning_summary_part.added", **at, summary_index=0, part=_summary(""))
            for d in s.reasoning_summary:
                self.delta("response.reasoning_summary_text.delta", **at, summary_index=0, delta=d)
            self.emit("response.reasoning_summary_text.done", **at, summary_index=0, text=text)
            self.emit("response.reasoning_summary_part.done", **at, summary_index=0, part=_summary(text))
            item["summary"] = [_summary(text)]
        if self.encrypted:
            item["encrypted_content"] = s.encrypted_content
        self._done(item)

    def message(self) -> None:
        s = self.s
        if not (s.text or s.refusal):
            return
        index, item_id = len(self.output), self._id("msg")
        at = {"item_id": item_id, "output_index": index}
        added = {"id": item_id, "type": "message", "status": "in_progress", "content": [], "role": "assistant"}
        self.emit("response.output_item.added", output_index=index, item=added)
        content: list[dict[str, Any]] = []
        if s.text:
            text, ci = "".join(s.text), len(content)
            self.emit("response.content_part.added", **at, content_index=ci, part=_output_text(""))
            for d in s.text:
                self.delta("response.output_text.delta", **at, content_index=ci, delta=d, logprobs=[])
            self.emit("response.output_text.done", **at, content_index=ci, text=text, logprobs=[])
            self.emit("response.content_part.done", **at, content_index=ci, part=_output_text(text))
            content.append(_output_text(text))
        if s.refusal:
            refusal, ci = "".join(s.refusal), len(content)
            self.emit("response.content_part.added", **at, content_index=ci, part={"type": "refusal", "refusal": ""})
            for d in s.refusal:
                self.delta("response.refusal.delta", **at, content_index=ci, delta=d)
            self.emit("response.refusal.done", **at, content_index=ci, refusal=refusal)
            part = {"type": "refusal", "refusal": refusal}
            self.emit("response.content_part.done", **at, content_index=ci, part=part)
            content.append(part)
        self._done({**added, "status": "completed", "content": content})

    def function_calls(self) -> None:
        for call in self.s.function_calls:
            index, item_id = len(self.output), self._id("fc")
            at = {"item_id": item_id, "output_index": index}
            added = {
                "id": item_id,
                "type": "function_call",
                "status": "in_progress",
                "arguments": "",
                "call_id": call.call_id or f"call_{index}_abc",
                "name": call.name,
            }
            self.emit("response.output_item.added", output_index=index, item=added)
            for d in call.arguments:
                self.delta("response.function_call_arguments.delta", **at, delta=d)
            arguments = "".join(call.arguments)
            self.emit("response.function_call_arguments.done", **at, arguments=arguments)
            self._done({**added, "arguments": arguments, "status": "completed"})

    def hosted(self) -> None:
        for spec in self.s.hosted:
            kind = spec["type"]
            index = len(self.output)
            item_id = spec.get("id") or self._id(_HOSTED_PREFIX.get(kind, kind.removesuffix("_call")))
            at = {"item_id": item_id, "output_index": index}
            item = {**spec, "id": item_id, "status": spec.get("status", "completed")}
            added: dict[str, Any] = {**item, "status": "in_progress"}
            if kind == "web_search_call":
                added["action"] = {"type": "search"}  # the query is known only when the search is done
                item.setdefault("action", {"type": "search", "query": "fake query"})
            elif kind == "file_search_call":
                added.update(queries=[], results=None)
                item.setdefault("queries", [])
                item.setdefault("results", None)
            elif kind == "code_interpreter_call":
                fragments = spec.get("code") or []
                fragments = [fragments] if isinstance(fragments, str) else list(fragments)
                item.update(code="".join(fragments))
                item.setdefault("container_id", "cntr_fake")
                item.setdefault("outputs", None)
                added.update(code="", container_id=item["container_id"], outputs=None)
            self.emit("response.output_item.added", output_index=index, item=added)
            if kind == "code_interpreter_call":
                self.emit("response.code_interpreter_call.in_progress", **at)
                for d in fragments:
                    self.delta("response.code_interpreter_call_code.delta", **at, delta=d)
                self.emit("response.code_interpreter_call_code.done", **at, code=item["code"])
                self.emit("response.code_interpreter_call.interpreting", **at)
                self.emit("response.code_interpreter_call.completed", **at)
            elif kind in _HOSTED_PHASES:
                for phase in _HOSTED_PHASES[kind]:
                    self.emit(f"response.{kind}.{phase}", **at)
            self._done(item)


_HOSTED_PREFIX = {"web_search_call": "ws", "file_search_call": "fs", "code_interpreter_call": "ci"}
_HOSTED_PHASES = {
    "web_search_call": ("in_progress", "searching", "completed"),
    "file_search_call": ("in_progress", "searching", "completed"),
    "image_generation_call": ("in_progress", "generating", "completed"),
}


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _summary(text: str) -> dict[str, Any]:
    return {"type": "summary_text", "text": text}


def _echo_tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") == "function":
        return {"description": None, "strict": True, **tool}
    return dict(tool)


def _echo(body: dict[str, Any]) -> RScript:
    text: Any = body.get("input", "")
    if isinstance(text, list):
        user = [m for m in text if isinstance(m, dict) and m.get("role") == "user"]
        content = user[-1].get("content", "") if user else "hello"
        if isinstance(content, list):
            content = " ".join(
                p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "input_text"
            )
        text = content
    words = str(text).split() or ["hello"]
    return RScript(text=[w + " " for w in words])


def _error(status: int, message: str, code: str | None, *, param: str | None = None) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}},
        status=status,
        headers={"x-request-id": "req_err"},
    )

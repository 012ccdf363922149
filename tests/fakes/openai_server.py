"""A fake OpenAI-compatible server (aiohttp) faithful to the Chat Completions streaming wire format.

Serves `/v1/chat/completions`, Azure's v1 path `/openai/v1/chat/completions`
and Azure's deployment path `/openai/deployments/{name}/chat/completions?api-version=`.
Each request takes the next `Script` from the queue (or echoes the last user
message), and every request is recorded. Scripts reproduce the variants of
real compatible servers and inject faults.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from ._base import FakeServer


@dataclass
class FakeToolCall:
    name: str
    arguments: list[str]  # fragments, streamed one per chunk
    id: str | None = None


@dataclass
class Script:
    """One response of the fake server."""

    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)  # refusal deltas, as OpenAI streams a refused answer
    tool_calls: list[FakeToolCall] = field(default_factory=list)
    usage: dict[str, Any] | None = field(
        default_factory=lambda: {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    )
    finish_reason: str | None = "auto"  # "auto": tool_calls when there are calls, else stop
    content_filter_results: dict[str, Any] | None = None
    # variants of compatible servers
    repeat_id_and_name: bool = False  # id and name in every tool-call fragment
    usage_in_last_choice_chunk: bool = False  # the usage rides on a chunk that still has choices
    no_usage_chunk: bool = False  # asked for usage, sent none
    role_on_every_chunk: bool = False
    in_stream_error: dict[str, Any] | None = None  # an error object sent as an SSE data chunk
    # faults
    status: int | None = None
    error: dict[str, Any] | None = None
    raw_error_body: str | None = None  # a status answered with text, as a proxy or gateway would
    raw_content_type: str | None = None  # of raw_error_body; status 200 and text/html: a web page
    headers: dict[str, str] = field(default_factory=dict)
    disconnect_after: int | None = None  # chunks sent before the connection is dropped
    malformed_after: int | None = None  # chunks sent before a chunk that is not JSON
    omit_done: bool = False  # no finish chunk and no [DONE]
    reset_after: int | None = None  # chunks sent before the connection is reset (RST)
    stall_after: int | None = None  # chunks sent before the server goes silent, the connection kept open
    never_answer: bool = False  # the request is read, then nothing is ever sent (not even headers)
    reset_before_first_byte: bool = False  # the request is read, then the connection is reset (RST)
    first_byte_delay: float = 0.0
    gzip: bool = False  # a gateway that compresses the event stream
    chunk_delay: float = 0.0


@dataclass
class Recorded:
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]  # names are case-insensitive, as on the wire
    body: dict[str, Any]
    peer: Any = None  # the client's (host, port): the same port means a reused connection
    at: float = field(default_factory=time.monotonic)  # when the request arrived


class FakeOpenAIServer(FakeServer):
    def __init__(self, *, api_key: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.scripts: list[Script] = []
        self.requests: list[Recorded] = []

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"

    def add(self, *scripts: Script) -> None:
        self.scripts.extend(scripts)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_post("/openai/v1/chat/completions", self._azure_v1)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._azure_deployment)

    # -- routes ----------------------------------------------------------------

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        return await self._complete(request)

    async def _azure_v1(self, request: web.Request) -> web.StreamResponse:
        if self.api_key and request.headers.get("api-key") != self.api_key:
            return _error(401, "Access denied due to invalid subscription key.", "401")
        return await self._complete(request)

    async def _azure_deployment(self, request: web.Request) -> web.StreamResponse:
        if "api-version" not in request.query:
            return _error(404, "Resource not found", "404")
        if self.api_key and request.headers.get("api-key") != self.api_key:
            return _error(401, "Access denied due to invalid subscription key.", "401")
        return await self._complete(request)

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        if request.content_type != "application/json":  # as FastAPI-based servers (vLLM, LiteLLM) answer
            return _error(422, f"expected a JSON body, got Content-Type {request.content_type!r}", "422")
        body = await request.json()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.requests.append(Recorded(request.path, dict(request.query), CIMultiDict(request.headers), body, peer))
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
            return web.json_response(
                {"error": script.error or {"message": "fake error", "type": "server_error", "code": None}},
                status=script.status,
                headers={"x-request-id": "req_fault", **script.headers},
            )
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "x-request-id": "req_123", **script.headers}
        )
        if script.gzip:
            response.enable_compression(web.ContentCoding.gzip)
        await response.prepare(request)
        try:
            await self._stream(request, response, body, script)
        except (ConnectionResetError, asyncio.CancelledError):
            self.connections_closed += 1
            raise
        return response

    async def _stream(
        self, request: web.Request, response: web.StreamResponse, body: dict[str, Any], s: Script
    ) -> None:
        model = body.get("model", "fake")
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
            if s.role_on_every_chunk:
                delta = {"role": "assistant", **delta}
            choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            choice.update(extra)
            return {**base, "choices": [choice], "system_fingerprint": "fp_fake"}

        chunks: list[dict[str, Any] | bytes] = [chunk({"role": "assistant", "content": ""})]
        chunks += [chunk({"content": None, "reasoning_content": r}) for r in s.reasoning]
        chunks += [chunk({"content": t}) for t in s.text]
        chunks += [chunk({"content": None, "refusal": r}) for r in s.refusal]
        for i, call in enumerate(s.tool_calls):
            call_id = call.id or f"call_{i}_abc"
            for j, fragment in enumerate(call.arguments or [""]):
                head = j == 0 or s.repeat_id_and_name
                tc: dict[str, Any] = {"index": i, "function": {"arguments": fragment}}
                if head:
                    tc = {
                        "index": i,
                        "id": call_id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": fragment},
                    }
                chunks.append(chunk({"tool_calls": [tc]}))
        if s.in_stream_error is not None:
            chunks.append({"error": s.in_stream_error})
        finish = s.finish_reason
        if finish == "auto":
            finish = "tool_calls" if s.tool_calls else "stop"
        usage_sent = include_usage and s.usage is not None and not s.no_usage_chunk
        if not s.omit_done:
            extra = {"content_filter_results": s.content_filter_results} if s.content_filter_results else {}
            last = chunk({}, finish, **extra)
            if usage_sent and s.usage_in_last_choice_chunk:
                last["usage"] = s.usage
            chunks.append(last)
            if usage_sent and not s.usage_in_last_choice_chunk:
                chunks.append({**base, "choices": [], "usage": s.usage})
            chunks.append(b"[DONE]")
        if s.malformed_after is not None:
            chunks.insert(s.malformed_after, b'{"id": "chatcmpl-fake", "choices": [{"delta": {"content": "x')
        events = [b"data: " + (c if isinstance(c, bytes) else json.dumps(c).encode()) + b"\n\n" for c in chunks]
        await self.write_pieces(request, response, events, s)


def _echo(body: dict[str, Any]) -> Script:
    user = [m for m in body.get("messages", []) if m.get("role") == "user"]
    text = user[-1]["content"] if user else "hello"
    return Script(text=[w + " " for w in str(text).split()])


def _error(status: int, message: str, code: str) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}},
        status=status,
        headers={"x-request-id": "req_err"},
    )

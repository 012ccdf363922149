"""A fake Ollama server (aiohttp): `/api/chat` streamed as NDJSON, `/api/tags`, and faults.

For a hostile server, `OllamaScript.raw_body` sends any bytes at all, as they
are; `chunk` and `done_chunk` build the lines of a well-formed stream.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ._base import FakeServer


@dataclass
class OllamaScript:
    """One `/api/chat` response."""

    text: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    tool_calls: list[list[dict[str, Any]]] = field(default_factory=list)  # one list of calls per chunk
    prompt_eval_count: int = 26
    eval_count: int = 12
    load_duration: int = 1_500_000  # nanoseconds, as Ollama reports them
    prompt_eval_duration: int = 342_000_000
    eval_duration: int = 453_000_000
    done_reason: str = "stop"
    # faults
    status: int | None = None
    error: str = "fake error"
    headers: dict[str, str] = field(default_factory=dict)  # sent with the status or the stream
    raw_error_body: str | None = None  # a status answered with text, as a proxy or gateway would
    raw_content_type: str | None = None  # of raw_error_body; status 200 and text/html: a web page
    disconnect_after: int | None = None
    reset_after: int | None = None  # chunks sent before the connection is reset (RST)
    stall_after: int | None = None  # chunks sent before the server goes silent, the connection kept open
    never_answer: bool = False  # the request is read, then nothing is ever sent (not even headers)
    reset_before_first_byte: bool = False  # the request is read, then the connection is reset (RST)
    omit_done: bool = False  # the stream ends cleanly without its final `done` chunk
    malformed_after: int | None = None
    in_stream_error: str | None = None
    first_byte_delay: float = 0.0
    chunk_delay: float = 0.0
    # a hostile server: the body exactly as these chunks (status `status` or 200, content type
    # `raw_content_type` or NDJSON's, `headers`; a Content-Encoding there is not applied, the bytes are sent as given)
    raw_body: list[bytes] | None = None
    raw_repeat: bytes = b""  # then this chunk, `raw_repeat_times` times, or until the client goes away
    raw_repeat_times: int = 0
    hold_after_raw: bool = False  # then nothing, the connection held open until the client goes away


def chunk(model: str = "llama3.2", done: bool = False, **message: Any) -> bytes:
    """One NDJSON line of `/api/chat`, as Ollama writes it."""
    part = {
        "model": model,
        "created_at": "2026-11-21T10:00:00.000000Z",
        "message": {"role": "assistant", "content": "", **message},
        "done": done,
    }
    return json.dumps(part, separators=(",", ":")).encode() + b"\n"


def done_chunk(model: str = "llama3.2", **extra: Any) -> bytes:
    """The final NDJSON line, with the usage and timings Ollama reports (`extra` overrides them)."""
    part: dict[str, Any] = {
        "model": model,
        "created_at": "2026-11-21T10:00:00.000000Z",
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": "stop",
        "total_duration": 800_000_000,
        "load_duration": 1_500_000,
        "prompt_eval_count": 26,
        "prompt_eval_duration": 342_000_000,
        "eval_count": 12,
        "eval_duration": 453_000_000,
        **extra,
    }
    return json.dumps(part, separators=(",", ":")).encode() + b"\n"


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)  # when the request arrived
    peer: Any = None  # the client's (host, port): the same for two requests on one kept-alive connection


class FakeOllamaServer(FakeServer):
    def __init__(self, *, models: tuple[str, ...] = ("llama3.2", "qwen3")) -> None:
        super().__init__()
        self.models = models
        self.scripts: list[OllamaScript] = []
        self.requests: list[Recorded] = []

    def add(self, *scripts: OllamaScript) -> None:
        self.scripts.extend(scripts)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/chat", self._chat)
        app.router.add_get("/api/tags", self._tags)

    async def _tags(self, request: web.Request) -> web.Response:
        return web.json_response({"models": [{"name": f"{m}:latest", "model": f"{m}:latest"} for m in self.models]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        peer = request.transport.get_extra_info("peername") if request.transport is not None else None
        self.requests.append(Recorded(request.path, dict(request.headers), body, peer=peer))
        model = body.get("model", "")
        if model.split(":")[0] not in self.models:
            return web.json_response({"error": f"model '{model}' not found"}, status=404)
        script = self.scripts.pop(0) if self.scripts else _echo(body)
        if script.first_byte_delay:
            await asyncio.sleep(script.first_byte_delay)
        if script.never_answer:
            await self.hold(request)
            return web.Response(status=504)  # never reaches a client: it is gone
        if script.reset_before_first_byte:
            self.reset(request)
            return web.Response()  # not sent: the connection is gone
        if script.raw_body is not None:
            return await self._raw(request, script)
        if script.status is not None and script.raw_error_body is not None:
            return web.Response(
                text=script.raw_error_body,
                status=script.status,
                headers=script.headers,
                content_type=script.raw_content_type,
            )
        if script.status is not None:
            return web.json_response({"error": script.error}, status=script.status, headers=script.headers)
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson", **script.headers})
        await response.prepare(request)
        try:
            await self._stream(request, response, model, script)
        except (ConnectionResetError, asyncio.CancelledError):
            self.connections_closed += 1
            raise
        return response

    async def _raw(self, request: web.Request, s: OllamaScript) -> web.StreamResponse:
        assert s.raw_body is not None
        headers = {"Content-Type": s.raw_content_type or "application/x-ndjson", **s.headers}
        response = web.StreamResponse(status=s.status or 200, headers=headers)
        await response.prepare(request)
        try:
            for piece in s.raw_body:
                await response.write(piece)
            for _ in range(s.raw_repeat_times):
                if request.transport is None or request.transport.is_closing():
                    raise ConnectionResetError("the client went away")
                await response.write(s.raw_repeat)
            if s.hold_after_raw:
                await self.hold(request)
                raise ConnectionResetError("the client went away")
        except (ConnectionError, asyncio.CancelledError):  # aiohttp's "Connection lost" is a ConnectionError
            self.connections_closed += 1
            raise
        await response.write_eof()
        return response

    async def _stream(self, request: web.Request, response: web.StreamResponse, model: str, s: OllamaScript) -> None:
        def part(message: dict[str, Any], done: bool = False, **extra: Any) -> bytes:
            chunk = {
                "model": model,
                "created_at": "2026-11-21T10:00:00.000000Z",
                "message": {"role": "assistant", "content": "", **message},
                "done": done,
                **extra,
            }
            return json.dumps(chunk).encode() + b"\n"

        lines = [part({"content": "", "thinking": t}) for t in s.thinking]
        lines += [part({"content": t}) for t in s.text]
        lines += [part({"tool_calls": calls}) for calls in s.tool_calls]
        if s.in_stream_error:
            lines.append(json.dumps({"error": s.in_stream_error}).encode() + b"\n")
        if not s.omit_done:
            lines.append(
                part(
                    {},
                    done=True,
                    done_reason=s.done_reason,
                    total_duration=s.load_duration + s.prompt_eval_duration + s.eval_duration,
                    load_duration=s.load_duration,
                    prompt_eval_count=s.prompt_eval_count,
                    prompt_eval_duration=s.prompt_eval_duration,
                    eval_count=s.eval_count,
                    eval_duration=s.eval_duration,
                )
            )
        if s.malformed_after is not None:
            lines.insert(s.malformed_after, b'{"model": "x", "message": {"content": "tru\n')
        await self.write_pieces(request, response, lines, s, at_once=False)


def _echo(body: dict[str, Any]) -> OllamaScript:
    user = [m for m in body.get("messages", []) if m.get("role") == "user"]
    return OllamaScript(text=[w + " " for w in str(user[-1]["content"] if user else "hello").split()])

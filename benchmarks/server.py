"""A fast fake OpenAI-compatible and Ollama server for the benchmarks, in its own process.

Raw asyncio (no framework) with pre-encoded chunks, so that the server costs
far less CPU than any client it serves; the runner records its CPU anyway.
What to send is read from the last user message:

    "stream N"       N tokens at once
    "paced N MS"     N tokens, one every MS milliseconds
    "tool"           a tool call to `add(a=2, b=3)`; once the tool result is in, TOOL_ANSWER

Tokens are "t0 ", "t1 ", ...: `expected_text(N)` gives the exact text.
Run: python -m benchmarks.server PORT_FILE (it writes its port there, then serves until killed).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from functools import lru_cache
from typing import Any

from benchmarks import _harness as harness
from benchmarks._harness import KeepAlive

CREATED = int(time.time())
TOOL_ANSWER = "The sum is 5."


def token(i: int) -> str:
    return f"t{i} "


def expected_text(n: int) -> str:
    return "".join(token(i) for i in range(n))


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


# -- OpenAI Chat Completions (SSE) ------------------------------------------------


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def _oa_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": "bench",
        "system_fingerprint": "fp_bench",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


@lru_cache(maxsize=64)
def openai_tokens(n: int, start: int = 0) -> tuple[bytes, ...]:
    return tuple(_sse(_oa_chunk({"content": token(i)})) for i in range(start, start + n))


def openai_head() -> bytes:
    return _sse(_oa_chunk({"role": "assistant", "content": ""}))


def openai_tail(n: int, finish: str = "stop") -> bytes:
    usage = {"prompt_tokens": 10, "completion_tokens": n, "total_tokens": 10 + n}
    return (
        _sse(_oa_chunk({}, finish))
        + _sse(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": "bench",
                "choices": [],
                "usage": usage,
            }
        )
        + b"data: [DONE]\n\n"
    )


def openai_tool_call() -> bytes:
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "add", "arguments": ""}}
    parts = [_sse(_oa_chunk({"role": "assistant", "content": None, "tool_calls": [call]}))]
    for fragment in ('{"a": 2', ', "b": 3}'):
        parts.append(_sse(_oa_chunk({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]})))
    return b"".join(parts) + openai_tail(5, "tool_calls")


# -- Ollama /api/chat (NDJSON) ------------------------------------------------------


def _nd(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def _ol_chunk(message: dict[str, Any], done: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "model": "bench",
        "created_at": "2026-11-21T10:00:00.000000Z",
        "message": {"role": "assistant", "content": "", **message},
        "done": done,
        **extra,
    }


@lru_cache(maxsize=64)
def ollama_tokens(n: int, start: int = 0) -> tuple[bytes, ...]:
    return tuple(_nd(_ol_chunk({"content": token(i)})) for i in range(start, start + n))


def ollama_tail(n: int) -> bytes:
    return _nd(
        _ol_chunk(
            {},
            True,
            done_reason="stop",
            total_duration=1000,
            load_duration=10,
            prompt_eval_count=10,
            prompt_eval_duration=100,
            eval_count=n,
            eval_duration=800,
        )
    )


def ollama_tool_call() -> bytes:
    call = {"function": {"name": "add", "arguments": {"a": 2, "b": 3}}}
    return _nd(_ol_chunk({"tool_calls": [call]})) + ollama_tail(5)


def _whole(kind: str, n: int, ollama: bool) -> dict[str, Any]:
    """A non-streamed response, for clients that do not stream (some peers' plain `run`)."""
    text = TOOL_ANSWER if kind == "answer" else expected_text(n)
    calls = [{"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'}}]
    if ollama:
        message: dict[str, Any] = {"role": "assistant", "content": "" if kind == "tool" else text}
        if kind == "tool":
            message["tool_calls"] = [{"function": {"name": "add", "arguments": {"a": 2, "b": 3}}}]
        return {
            "model": "bench",
            "created_at": "2026-11-21T10:00:00Z",
            "message": message,
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 10,
            "eval_count": n,
        }
    message = {"role": "assistant", "content": None if kind == "tool" else text}
    if kind == "tool":
        message["tool_calls"] = calls
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": CREATED,
        "model": "bench",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if kind == "tool" else "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": n, "total_tokens": 10 + n},
    }


# -- the server -----------------------------------------------------------------------


def _plan(body: dict[str, Any]) -> tuple[str, int, float]:
    messages = body.get("messages") or []
    if messages and messages[-1].get("role") == "tool":
        return "answer", 0, 0.0
    words = str(messages[-1].get("content", "")).split() if messages else []
    if words[:1] == ["stream"]:
        return "stream", int(words[1]), 0.0
    if words[:1] == ["paced"]:
        return "stream", int(words[1]), float(words[2]) / 1000
    if words[:1] == ["tool"]:
        return "tool", 0, 0.0
    return "stream", 5, 0.0


_responding: set[asyncio.Future[None]] = set()


class _Protocol(KeepAlive):
    def request(self, head: str, body: bytes) -> None:
        path = head.split(" ", 2)[1]
        task = asyncio.ensure_future(self.respond(path, json.loads(body or b"{}")))
        _responding.add(task)
        task.add_done_callback(_responding.discard)

    async def respond(self, path: str, body: dict[str, Any]) -> None:
        transport = self.transport
        assert transport is not None
        kind, n, delay = _plan(body)
        ollama = path.startswith("/api/")
        if body.get("stream") is not True:
            payload = json.dumps(_whole(kind, n, ollama)).encode()
            transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (len(payload), payload)
            )
            return
        content_type = b"application/x-ndjson" if ollama else b"text/event-stream"
        transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type + b"\r\nTransfer-Encoding: chunked\r\n"
            b"x-request-id: req_bench\r\n\r\n"
        )
        if kind == "tool":
            transport.write(_http_chunk(ollama_tool_call() if ollama else openai_tool_call()))
        elif kind == "answer":
            if ollama:
                transport.write(_http_chunk(_nd(_ol_chunk({"content": TOOL_ANSWER})) + ollama_tail(4)))
            else:
                transport.write(_http_chunk(openai_head() + _sse(_oa_chunk({"content": TOOL_ANSWER})) + openai_tail(4)))
        else:
            chunks = ollama_tokens(n) if ollama else openai_tokens(n)
            if not ollama:
                transport.write(_http_chunk(openai_head()))
            if delay:
                done = asyncio.get_running_loop().create_future()
                _pacer(delay).add(transport, chunks, done)
                await done
                if transport.is_closing():
                    return
            else:
                batch = 64
                for i in range(0, len(chunks), batch):
                    transport.write(_http_chunk(b"".join(chunks[i : i + batch])))
                    if transport.get_write_buffer_size() > 1 << 20:
                        await asyncio.sleep(0)  # let the loop flush
            transport.write(_http_chunk(ollama_tail(n) if ollama else openai_tail(n)))
        transport.write(b"0\r\n\r\n")


class _Pacer:
    """One timer for all paced streams: every tick, each stream gets its next chunk.

    A timer per stream would cost the server more CPU than the clients it serves.
    """

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.streams: list[list[Any]] = []  # [transport, chunks, next index, future]
        self.task: asyncio.Task[None] | None = None

    def add(self, transport: asyncio.Transport, chunks: tuple[bytes, ...], done: asyncio.Future[None]) -> None:
        self.streams.append([transport, chunks, 0, done])
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self.run())

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        tick = loop.time()
        while self.streams:
            tick += self.delay
            await asyncio.sleep(max(0.0, tick - loop.time()))
            alive = []
            for stream in self.streams:
                transport, chunks, i, done = stream
                if transport.is_closing() or i >= len(chunks):
                    if not done.done():
                        done.set_result(None)
                    continue
                transport.write(_http_chunk(chunks[i]))
                stream[2] = i + 1
                alive.append(stream)
            self.streams = alive


_pacers: dict[float, _Pacer] = {}


def _pacer(delay: float) -> _Pacer:
    if delay not in _pacers:
        _pacers[delay] = _Pacer(delay)
    return _pacers[delay]


async def serve(port_file: str) -> None:
    await harness.serve(_Protocol, port_file, backlog=4096)


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))

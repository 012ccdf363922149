"""`POST /v1/chat/completions`: a stateless turn; the request's messages are the history."""

from __future__ import annotations

import asyncio
import time
import uuid

from aiohttp import web

from ...application.reply import Reply
from ...domain.events import ModelCallFinished, RunFinished, TextDelta, ToolCallStarted
from ...domain.messages import Usage
from .common import (
    SHUTTING_DOWN,
    end_with,
    finish_reason,
    json_response,
    open_stream,
    read_body,
    run_to_end,
    start,
    stream_failed,
)
from .parsing import ChatCall, chat_call
from .sse import DONE, ChatChunks, chat_usage, error_event, quote
from .state import ServerState


class ChatCompletions:
    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def handle(self, request: web.Request) -> web.StreamResponse:
        state = self.state
        call = chat_call(await read_body(request, state.options.max_body))
        agent = state.agent(call.model)
        reply = start(lambda: agent.ask(call.message, history=call.history, config=call.config or None))
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if call.stream:
            return await self._stream(request, call, reply, completion_id, created)
        done, finish = await run_to_end(reply)
        return json_response(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": call.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": done.text, "refusal": None, "annotations": []},
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
                "usage": chat_usage(done.usage),
                "system_fingerprint": None,
            }
        )

    async def _stream(
        self, request: web.Request, call: ChatCall, reply: Reply, completion_id: str, created: int
    ) -> web.StreamResponse:
        state = self.state
        chunks = ChatChunks(completion_id, created, call.model, include_usage=call.include_usage)
        head, tail = chunks.head, chunks.tail
        response: web.StreamResponse | None = None
        finish: str | None = None
        usage = Usage()
        events = reply.events()
        try:
            async for event in events:
                kind = type(event)
                if kind is TextDelta:  # the hot path: one template fill, one write
                    if response is not None:
                        await response.write(f"{head}{quote(event.text)}{tail}".encode())  # type: ignore[union-attr]
                    else:  # headers wait for the first sign of success, so an early failure gets its status
                        response = await open_stream(request, state)
                        await response.write(chunks.role() + chunks.text(event.text))  # type: ignore[union-attr]
                elif kind is ModelCallFinished:
                    finish = event.finish_reason  # type: ignore[union-attr]
                elif kind is RunFinished:
                    usage = event.usage  # type: ignore[union-attr]
                elif kind is ToolCallStarted and response is None:
                    response = await open_stream(request, state)
                    await response.write(chunks.role())
            first = b""
            if response is None:
                response = await open_stream(request, state)
                first = chunks.role()
            end = chunks.usage(usage) if call.include_usage else b""
            await response.write(first + chunks.finish(finish_reason(finish)) + end + DONE)
            await response.write_eof()
            return response
        except asyncio.CancelledError:
            if response is not None and state.stopping:
                await end_with(response, error_event(SHUTTING_DOWN.body()))
            raise
        except Exception as e:
            if response is None:
                raise
            error = stream_failed(e)
            if error is not None:
                await end_with(response, error_event(error.body()))
            return response
        finally:
            await events.aclose()
            if response is not None:
                state.streams -= 1

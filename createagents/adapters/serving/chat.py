"""`POST /v1/chat/completions`: a stateless turn; the request's messages are the history.

Client tools (`tools` of type function) are offered beside the agent's own;
when the model calls one, the turn pauses and the answer ends with
`finish_reason: "tool_calls"`, as OpenAI's does. The client's `role: "tool"`
messages go on from there (`ask(None, history=...)`): the server keeps
nothing between the two requests. Chat Completions has no way to ask for an
approval, so a call that needs one is refused, and the model reads why.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from aiohttp import web

from ...application.loop import Approver, ask_approver
from ...application.reply import Reply
from ...domain.events import ModelCallFinished, RunFinished, RunPaused, TextDelta, ToolCallStarted
from ...domain.messages import Usage
from ...domain.pending import Decision, Deny, Paused, PendingCall
from .agents import ServedAgent, own_approver, own_tool_names
from .common import (
    SHUTTING_DOWN,
    Outcome,
    end_with,
    finish_reason,
    json_response,
    open_stream,
    read_body,
    run_to_end,
    start,
    stream_failed,
)
from .errors import bad_request
from .parsing import ChatCall, chat_call
from .sse import DONE, ChatChunks, chat_usage, error_event, quote
from .state import ServerState

APPROVAL_REFUSED = (
    "this call needs approval, which Chat Completions cannot ask for; use the Responses API (POST /v1/responses)"
)


class ChatCompletions:
    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def handle(self, request: web.Request) -> web.StreamResponse:
        state = self.state
        call = chat_call(await read_body(request, state.options.max_body))
        agent = state.agent(call.model)
        check_client_tools(agent, [t.name for t in call.client_tools])
        refuse = refusing(agent)
        reply = start(
            lambda: agent.ask(
                call.message,
                history=call.history,
                config=call.config or None,
                client_tools=call.client_tools,
                approver=refuse,
            )
        )
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if call.stream:
            return await self._stream(request, call, reply, completion_id, created)
        done, finish = await run_to_end(reply)
        message: dict[str, Any] = {"role": "assistant", "content": done.text, "refusal": None, "annotations": []}
        paused = _paused(done)
        if paused is not None:
            message["content"] = done.text or None
            message["tool_calls"] = _tool_calls(paused)
            finish = "tool_calls"
        return json_response(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": call.model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
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
        paused: Paused | None = None
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
                elif kind is RunFinished or kind is RunPaused:
                    usage = event.usage  # type: ignore[union-attr]
                    paused = _paused(event)  # type: ignore[arg-type]
                elif kind is ToolCallStarted and response is None:
                    response = await open_stream(request, state)
                    await response.write(chunks.role())
            first = b""
            if response is None:
                response = await open_stream(request, state)
                first = chunks.role()
            if paused is not None:
                first += chunks.tool_calls(_tool_calls(paused))
                reason = "tool_calls"
            else:
                reason = finish_reason(finish)
            end = chunks.usage(usage) if call.include_usage else b""
            await response.write(first + chunks.finish(reason) + end + DONE)
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


def check_client_tools(agent: ServedAgent, names: list[str]) -> None:
    """A client tool may not take the name of one of the agent's own: the model could not tell them apart."""
    if not names:
        return
    own = own_tool_names(agent)
    for i, name in enumerate(names):
        if name in own:
            raise bad_request(
                f"the tool {name!r} is one of the agent's own tools (they run on the server); "
                "give your client tool another name",
                f"tools[{i}]",
                "invalid_value",
            )


def refusing(agent: ServedAgent) -> Approver:
    """The approver of a Chat Completions turn: the agent's own decides first; what it leaves open is refused.

    Our documented choice: Chat Completions has no item to ask a person
    with, so the call is denied with a reason the model reads (and can pass
    on), rather than left waiting for an answer that cannot come.
    """
    own = own_approver(agent)
    if own is None:
        return lambda pending: Deny(APPROVAL_REFUSED)

    async def refuse(pending: PendingCall) -> Decision:
        decision = await ask_approver(own, pending)
        return Deny(APPROVAL_REFUSED) if decision is None else decision

    return refuse


def _paused(outcome: Outcome) -> Paused | None:
    return outcome.paused if type(outcome) is RunPaused else None


def _tool_calls(paused: Paused) -> list[dict[str, Any]]:
    """The client tool calls the turn waits for, in the order the model made them."""
    return [
        {"id": p.id, "type": "function", "function": {"name": p.name, "arguments": p.arguments}}
        for p in paused.client_calls
    ]

"""The Responses API: `POST /v1/responses`, `GET` and `DELETE /v1/responses/{id}`.

State, through the agent's store port:

- every stored response (`store` is true by default) writes an immutable
  snapshot, the whole history after it, under the conversation id
  `resp:<id>`, with one `append`; `previous_response_id` loads that snapshot
  as the history of a stateless turn, so any number of requests may branch
  from one response;
- beside it, under `resp:<id>:meta`, one message whose content is the JSON of
  the completed response object, which `GET` returns as it was;
- a named `conversation` runs `agent.conversation(id).chat(...)`: turns
  append to its one head; the response's snapshot is the conversation as it
  stood when the response completed.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from aiohttp import web

from ...application.reply import Reply
from ...domain.events import RunFinished, TextDelta, ToolCallStarted
from ...domain.messages import AssistantMessage, Message, SystemMessage, UserMessage
from .agents import ServedAgent
from .common import SHUTTING_DOWN, end_with, json_response, open_stream, read_body, run_to_end, start, stream_failed
from .errors import bad_request
from .parsing import SNAPSHOT_PREFIX, ResponseCall, check_response_id, not_found_response, response_call
from .sse import ResponseEvents, response_usage
from .state import ServerState


def snapshot_id(response_id: str) -> str:
    return f"{SNAPSHOT_PREFIX}{response_id}"


def record_id(response_id: str) -> str:
    return f"{SNAPSHOT_PREFIX}{response_id}:meta"


def _message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": [part]}


class _Response:
    """The response object of one request, in progress and completed."""

    def __init__(self, call: ResponseCall) -> None:
        self.call = call
        self.id = f"resp_{uuid.uuid4().hex}"
        self.item_id = f"msg_{uuid.uuid4().hex}"
        self.created = int(time.time())

    def object(self, done: RunFinished | None = None) -> dict[str, Any]:
        call = self.call
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": "completed" if done else "in_progress",
            "background": False,
            "completed_at": int(time.time()) if done else None,
            "conversation": {"id": call.conversation} if call.conversation else None,
            "error": None,
            "incomplete_details": None,
            "instructions": call.instructions,
            "max_output_tokens": call.echo.get("max_output_tokens"),
            "metadata": call.metadata,
            "model": call.model,
            "output": [_message_item(self.item_id, done.text)] if done else [],
            "parallel_tool_calls": True,
            "previous_response_id": call.previous_response_id,
            "reasoning": {"effort": None, "summary": None},
            "store": call.store,
            "temperature": call.echo.get("temperature"),
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": call.echo.get("top_p"),
            "truncation": "disabled",
            "usage": response_usage(done.usage) if done else None,
            "user": call.echo.get("user"),
        }


class Responses:
    def __init__(self, state: ServerState) -> None:
        self.state = state

    # -- POST /v1/responses ----------------------------------------------------

    async def create(self, request: web.Request) -> web.StreamResponse:
        state = self.state
        call = response_call(await read_body(request, state.options.max_body))
        agent = state.agent(call.model)
        base: list[Message] = []
        if call.previous_response_id is not None:
            base = await _snapshot(agent, call.previous_response_id)
        reply = self._reply(agent, call, base)
        response = _Response(call)
        if call.stream:
            return await self._stream(request, agent, call, base, reply, response)
        done, _ = await run_to_end(reply)
        body = response.object(done)
        await _save(agent, call, base, done, body)
        return json_response(body)

    def _reply(self, agent: ServedAgent, call: ResponseCall, base: list[Message]) -> Reply:
        config = call.config or None
        if call.conversation is not None:
            conversation = call.conversation
            return start(lambda: agent.conversation(conversation).chat(call.message, config=config))
        history: list[Message] = [SystemMessage(content=call.instructions)] if call.instructions else []
        history += base
        history += call.items
        return start(lambda: agent.ask(call.message, history=history, config=config))

    async def _stream(
        self,
        request: web.Request,
        agent: ServedAgent,
        call: ResponseCall,
        base: list[Message],
        reply: Reply,
        response: _Response,
    ) -> web.StreamResponse:
        state = self.state
        out = ResponseEvents(response.item_id)
        http: web.StreamResponse | None = None
        done: RunFinished | None = None
        events = reply.events()
        try:
            async for event in events:
                kind = type(event)
                if kind is TextDelta:
                    if http is not None:
                        await http.write(out.delta(event.text))  # type: ignore[union-attr]
                    else:  # headers wait for the first sign of success, so an early failure gets its status
                        http = await open_stream(request, state)
                        await http.write(out.opening(response.object()) + out.delta(event.text))  # type: ignore[union-attr]
                elif kind is RunFinished:
                    done = event  # type: ignore[assignment]
                elif kind is ToolCallStarted and http is None:
                    http = await open_stream(request, state)
                    await http.write(out.opening(response.object()))
            assert done is not None
            body = response.object(done)
            await _save(agent, call, base, done, body)  # before response.completed: the id is usable once it is seen
            first = b""
            if http is None:
                http = await open_stream(request, state)
                first = out.opening(response.object())
            await http.write(first + out.closing(body))
            await http.write_eof()
            return http
        except asyncio.CancelledError:
            if http is not None and state.stopping:
                await end_with(http, out.error(SHUTTING_DOWN.body()))
            raise
        except Exception as e:
            if http is None:
                raise
            error = stream_failed(e)
            if error is not None:
                await end_with(http, out.error(error.body()))
            return http
        finally:
            await events.aclose()
            if http is not None:
                state.streams -= 1

    # -- GET and DELETE /v1/responses/{id} --------------------------------------

    async def retrieve(self, request: web.Request) -> web.Response:
        response_id = request.match_info["id"]
        if check_response_id(response_id):
            for name, store in self.state.stores():
                record = await store.load(record_id(response_id))
                if record:
                    return json_response(json.loads(record[-1].content))
                snapshot = await store.load(snapshot_id(response_id))
                if snapshot:
                    return json_response(_rebuilt(response_id, name, snapshot))
        raise not_found_response(response_id)

    async def delete(self, request: web.Request) -> web.Response:
        response_id = request.match_info["id"]
        if check_response_id(response_id):
            for _, store in self.state.stores():
                found = bool(await store.load(record_id(response_id)) or await store.load(snapshot_id(response_id)))
                if found:
                    await store.delete(snapshot_id(response_id))
                    await store.delete(record_id(response_id))
                    return json_response({"id": response_id, "object": "response", "deleted": True})
        raise not_found_response(response_id)


async def _snapshot(agent: ServedAgent, response_id: str) -> list[Message]:
    history = await agent.store.load(snapshot_id(response_id)) if check_response_id(response_id) else []
    if not history:
        raise bad_request(
            f"Previous response with id '{response_id}' not found.",
            "previous_response_id",
            "previous_response_not_found",
        )
    return history


async def _save(
    agent: ServedAgent, call: ResponseCall, base: list[Message], done: RunFinished, body: dict[str, Any]
) -> None:
    """The response's snapshot, then its record; nothing when the request said `store: false`."""
    if not call.store:
        return
    store = agent.store
    if call.conversation is not None:
        snapshot = await store.load(call.conversation)
    else:
        snapshot = [*base, *call.items, *done.messages]  # the request's instructions are not carried over
    await store.append(snapshot_id(body["id"]), snapshot)
    await store.append(record_id(body["id"]), [UserMessage(content=json.dumps(body))])


def _rebuilt(response_id: str, model: str, snapshot: list[Message]) -> dict[str, Any]:
    """A response object from its snapshot alone (its record lost): the text after the last user message."""
    last_user = max((i for i, m in enumerate(snapshot) if isinstance(m, UserMessage)), default=-1)
    text = "".join(m.content for m in snapshot[last_user + 1 :] if isinstance(m, AssistantMessage))
    return {
        "id": response_id,
        "object": "response",
        "created_at": 0,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": {},
        "model": model,
        "output": [_message_item(f"msg_{response_id.removeprefix('resp_')}", text)],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "tool_choice": "auto",
        "tools": [],
        "usage": None,
    }

"""The Responses API: `POST /v1/responses`, `GET` and `DELETE /v1/responses/{id}`.

State, through the agent's store port:

- every stored response (`store` is true by default) writes an immutable
  snapshot, the whole history after it, under the conversation id
  `resp:<id>`, with one `append`; `previous_response_id` loads that snapshot
  as the history of a stateless turn, so any number of requests may branch
  from one response;
- beside it, under `resp:<id>:meta`, one message whose content is the JSON of
  the record: the completed response object, which `GET` returns as it was,
  a digest of the API key that created it (only that key sees or continues
  it) and, for a paused response, where its paused turn waits;
- a named `conversation` runs `agent.conversation(id).chat(...)`: turns
  append to its one head; the response's snapshot is the conversation as it
  stood when the response completed.

A turn that pauses (a call needs approval, or the model called one of the
request's function tools) ends the response with `status: "completed"` and,
after its text, one `mcp_approval_request` or `function_call` item per
pending call, as OpenAI's API does. A stateless paused turn is kept with the
store's `save_paused` under the response's snapshot id; the response's
snapshot is the history before the turn. The next request answers it with
`mcp_approval_response` / `function_call_output` items and
`previous_response_id`, and resumes the turn exactly once.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from aiohttp import web

from ...application.background import ACTIVE
from ...application.pausing import Problem, check_decisions, check_expiry, decision_problems, pending_of
from ...application.reply import EventHandler, Reply
from ...domain.errors import InvalidDecisionsError, ResumeError
from ...domain.events import RunEvent, RunFinished, RunPaused, RunStarted, TextDelta, ToolCallStarted
from ...domain.messages import AssistantMessage, Message, SystemMessage, Usage, UserMessage
from ...domain.pending import Decision, Paused, PendingCall
from .agents import ServedAgent
from .background import BackgroundResponses, ResponseEncoder, parse_after, response_of, stream_events
from .background import cancel as cancel_run
from .chat import check_client_tools
from .common import (
    SHUTTING_DOWN,
    Outcome,
    end_with,
    json_response,
    open_stream,
    owner_of,
    read_body,
    resume_failure,
    run_to_end,
    start,
    stream_failed,
)
from .errors import ApiError, api_error, bad_request
from .parsing import (
    APPROVAL_PREFIX,
    SNAPSHOT_PREFIX,
    ResponseCall,
    check_response_id,
    not_found_response,
    response_call,
)
from .sse import ResponseEvents, response_usage
from .state import ServerState

_log = logging.getLogger("createagents.server")

SERVER_LABEL = "createagents"  # the `server_label` of our approval requests: the agent's own tools
TURN = "turn"  # the id a stateless paused turn is saved under, beside its response's snapshot
FUNCTION_CALL_PREFIX = "fc_"


def snapshot_id(response_id: str) -> str:
    return f"{SNAPSHOT_PREFIX}{response_id}"


def record_id(response_id: str) -> str:
    return f"{SNAPSHOT_PREFIX}{response_id}:meta"


def _message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": [part]}


def pending_item(pending: PendingCall) -> dict[str, Any]:
    """A pending call as the output item OpenAI uses for it: an approval request, or a function call."""
    if pending.kind == "approval":
        return {
            "id": f"{APPROVAL_PREFIX}{pending.id}",
            "type": "mcp_approval_request",
            "server_label": SERVER_LABEL,
            "name": pending.name,
            "arguments": pending.arguments,
        }
    return {
        "id": f"{FUNCTION_CALL_PREFIX}{pending.id}",
        "type": "function_call",
        "call_id": pending.id,
        "name": pending.name,
        "arguments": pending.arguments,
        "status": "completed",
    }


@dataclass(frozen=True, slots=True)
class _End:
    """What one response shows of its turn: a resumed turn's outcome counts what it said before the pause too."""

    text: str
    usage: Usage
    pending: tuple[PendingCall, ...] = ()


def _end(outcome: Outcome, before: Mapping[str, Any] | None) -> _End:
    """This response's share of the outcome: minus the text and usage of the response that paused the turn."""
    text, usage = outcome.text, outcome.usage
    if before is not None:
        said = str(before.get("text", ""))
        if text.startswith(said):
            text = text[len(said) :]
        spent = before.get("usage") or {}
        usage = Usage(**{f.name: max(getattr(usage, f.name) - spent.get(f.name, 0), 0) for f in fields(Usage)})
    pending = outcome.paused.pending if type(outcome) is RunPaused else ()
    return _End(text=text, usage=usage, pending=pending)


class _Response:
    """The response object of one request, in progress and completed."""

    def __init__(self, call: ResponseCall) -> None:
        self.call = call
        self.id = f"resp_{uuid.uuid4().hex}"
        self.item_id = f"msg_{uuid.uuid4().hex}"
        self.created = int(time.time())

    def object(self, end: _End | None = None, *, message: bool = True) -> dict[str, Any]:
        """The object; `message` False leaves out the text item (a paused turn that said nothing)."""
        call = self.call
        output: list[dict[str, Any]] = []
        if end is not None:
            if message:
                output.append(_message_item(self.item_id, end.text))
            output.extend(pending_item(p) for p in end.pending)
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": "completed" if end else "in_progress",
            "background": False,
            "completed_at": int(time.time()) if end else None,
            "conversation": {"id": call.conversation} if call.conversation else None,
            "error": None,
            "incomplete_details": None,
            "instructions": call.instructions,
            "max_output_tokens": call.echo.get("max_output_tokens"),
            "metadata": call.metadata,
            "model": call.model,
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": call.previous_response_id,
            "reasoning": {"effort": None, "summary": None},
            "store": call.store,
            "temperature": call.echo.get("temperature"),
            "text": {"format": {"type": "text"}},
            "tool_choice": call.tool_choice,
            "tools": list(call.tools),
            "top_p": call.echo.get("top_p"),
            "truncation": "disabled",
            "usage": response_usage(end.usage) if end else None,
            "user": call.echo.get("user"),
        }


@dataclass(frozen=True, slots=True)
class _Record:
    """A stored response: its object, whose key created it, and where its paused turn waits (if it paused)."""

    body: dict[str, Any]
    owner: str | None = None
    paused: dict[str, Any] | None = None  # {"conversation": id or None, "turn": turn id}

    def message(self) -> UserMessage:
        return UserMessage(
            content=json.dumps({"v": 2, "key_id": self.owner, "paused": self.paused, "response": self.body})
        )

    @classmethod
    def read(cls, messages: list[Message]) -> _Record | None:
        if not messages:
            return None
        data = json.loads(messages[-1].content)
        if data.get("object") == "response":  # written before records kept their owner
            return cls(body=data)
        return cls(body=data["response"], owner=data.get("key_id") or None, paused=data.get("paused"))

    def visible_to(self, owner: str | None) -> bool:
        """Only the key that created a response sees it; one made, or asked for, without keys is everyone's."""
        return self.owner is None or owner is None or hmac.compare_digest(self.owner, owner)


class _Hooks(EventHandler):
    """What the server does inside a turn's run: claim a paused turn when it starts, save the response as it ends.

    A reply awaits its handler before it passes an event on. So a resumed
    turn is taken from the store (once: a second taker gets 409) only when
    its run starts, and is not lost when the run never starts (the client
    left, the server stopped); and a background run logs `response.completed`
    only once `previous_response_id` can build on it. A failing hook fails
    the run.
    """

    def __init__(self) -> None:
        self.claim: Callable[[], Awaitable[None]] | None = None
        self.save: Callable[[Outcome], Awaitable[None]] | None = None
        self.outcome: Outcome | None = None

    async def on_run_started(self, event: RunStarted) -> None:
        if self.claim is not None:
            await self.claim()

    async def on_run_finished(self, event: RunFinished) -> None:
        await self._ended(event)

    async def on_run_paused(self, event: RunPaused) -> None:
        await self._ended(event)

    async def _ended(self, outcome: Outcome) -> None:
        self.outcome = outcome
        if self.save is not None:
            await self.save(outcome)


@dataclass(frozen=True, slots=True)
class _Turn:
    """How this request runs: its reply, the history its snapshot builds on, and a resumed turn's state.

    The reply is made at once, so bad input is refused before anything is
    sent; `make` makes another, for a background run to make when it starts.
    """

    make: Callable[[], Reply]
    base: list[Message]
    before: Mapping[str, Any] | None = None  # the paused turn's state when this request resumes it
    reply: Reply = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reply", start(self.make))


class Responses:
    def __init__(self, state: ServerState, background: BackgroundResponses) -> None:
        self.state = state
        self.background = background

    # -- POST /v1/responses ----------------------------------------------------

    async def create(self, request: web.Request) -> web.StreamResponse:
        state = self.state
        call = response_call(await read_body(request, state.options.max_body))
        agent = state.agent(call.model)
        owner = owner_of(request)
        check_client_tools(agent, [t.name for t in call.client_tools])
        try:
            hooks = _Hooks()
            turn = await self._turn(agent, call, owner, hooks)
            response = _Response(call)
            if call.background:
                return await self._background(request, agent, call, turn, response, owner, hooks)
            if call.stream:
                return await self._stream(request, agent, call, turn, response, owner)
            outcome, _ = await run_to_end(turn.reply)
        except ResumeError as e:  # found when the run starts: before anything was sent
            raise resume_failure(e) from None
        end = _end(outcome, turn.before)
        body = response.object(end, message=bool(end.text) or not end.pending)
        await _save(agent, call, turn.base, outcome, body, owner)
        return json_response(body)

    async def _turn(self, agent: ServedAgent, call: ResponseCall, owner: str | None, handler: _Hooks) -> _Turn:
        """The reply this request runs: a new turn, or the paused turn its input answers; `handler` sees it."""
        config = call.config or None
        if call.conversation is not None:
            conversation = call.conversation
            if call.decisions:
                return await _resume_conversation(agent, call, conversation, handler)
            message = call.message
            assert message is not None  # parsing: a conversation's input is one user message
            return _Turn(
                lambda: agent.conversation(conversation).chat(
                    message, config=config, client_tools=call.client_tools, handler=handler
                ),
                [],
            )
        base: list[Message] = []
        previous: _Record | None = None
        if call.previous_response_id is not None:
            base, previous = await _previous(agent, call.previous_response_id, owner)
            waiting = await _waiting(agent, call.previous_response_id, previous)
            if call.decisions:
                return await _resume(agent, call, call.previous_response_id, previous, waiting, base, handler)
            if waiting is not None:
                raise bad_request(
                    f"response {call.previous_response_id} waits for decisions; answer "
                    f"{_waits_for(pending_of(waiting))} in input (and nothing else)",
                    "input",
                    "invalid_value",
                )
        history: list[Message] = [SystemMessage(content=call.instructions)] if call.instructions else []
        history += base
        history += call.items
        return _Turn(
            lambda: agent.ask(
                call.message, history=history, config=config, client_tools=call.client_tools, handler=handler
            ),
            base,
        )

    async def _stream(
        self,
        request: web.Request,
        agent: ServedAgent,
        call: ResponseCall,
        turn: _Turn,
        response: _Response,
        owner: str | None,
    ) -> web.StreamResponse:
        state = self.state
        out = ResponseEvents(response.item_id)
        http: web.StreamResponse | None = None
        opened = False  # the message item was announced (it is, at the first text)
        outcome: Outcome | None = None
        events = turn.reply.events()
        try:
            async for event in events:
                kind = type(event)
                if kind is TextDelta:
                    if opened:
                        await http.write(out.delta(event.text))  # type: ignore[union-attr]
                    else:  # headers wait for the first sign of success, so an early failure gets its status
                        chunk = b""
                        if http is None:
                            http = await open_stream(request, state)
                            chunk = out.start(response.object())
                        opened = True
                        await http.write(chunk + out.message_added() + out.delta(event.text))  # type: ignore[union-attr]
                elif kind is RunFinished or kind is RunPaused:
                    outcome = event  # type: ignore[assignment]
                elif kind is ToolCallStarted and http is None:
                    http = await open_stream(request, state)
                    await http.write(out.start(response.object()))
            assert outcome is not None
            end = _end(outcome, turn.before)
            message = opened or not end.pending  # a finished response always has its message
            body = response.object(end, message=message)
            await _save(agent, call, turn.base, outcome, body, owner)  # before completed: the id is usable then
            chunks = b""
            if http is None:
                http = await open_stream(request, state)
                chunks = out.start(response.object())
            if message:
                if not opened:
                    chunks += out.message_added()
                chunks += out.message_done(body["output"][0])
            first = 1 if message else 0
            for i, item in enumerate(body["output"][first:]):
                chunks += out.pending_item(first + i, item)
            await http.write(chunks + out.completed(body))
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

    # -- background responses ----------------------------------------------------

    async def _background(
        self,
        request: web.Request,
        agent: ServedAgent,
        call: ResponseCall,
        turn: _Turn,
        response: _Response,
        owner: str | None,
        hooks: _Hooks,
    ) -> web.StreamResponse:
        """Start the run on the server and answer at once (or stream its log); the run outlives the request."""
        runs = self.background.runs_for(agent.store)

        def body(outcome: Outcome | None) -> dict[str, Any]:
            if outcome is None:
                return {**response.object(), "background": True}
            end = _end(outcome, turn.before)
            return {**response.object(end, message=bool(end.text) or not end.pending), "background": True}

        def finish(last: RunEvent | None, error: BaseException | None) -> dict[str, Any]:
            if hooks.outcome is not None:
                return {"response": body(hooks.outcome)}
            if error is not None and not isinstance(error, asyncio.CancelledError):
                failed = api_error(error).body()["error"]
                return {"error": {"code": failed["code"] or "server_error", "message": failed["message"]}}
            return {}

        async def save(outcome: Outcome) -> None:
            await _save(agent, call, turn.base, outcome, body(outcome), owner)

        hooks.save = save
        queued = {**response.object(), "status": "queued", "background": True}
        turn.reply.close()  # it showed the input is good; the run makes its own when it starts (if it ever does)
        record = await runs.start(
            response.id,
            turn.make,
            record={"response": queued, "key_id": owner or ""},
            encode=ResponseEncoder(response.item_id, body),
            finish=finish,
        )
        if call.stream:
            return await stream_events(request, self.state, runs, response.id, -1)
        return json_response(response_of(record))

    async def cancel(self, request: web.Request) -> web.Response:
        response_id = request.match_info["id"]
        found = await self.background.find(response_id, owner_of(request) or "")
        if found is None:
            raise not_found_response(response_id)
        runs, _ = found
        return json_response(await cancel_run(runs, response_id))

    # -- GET and DELETE /v1/responses/{id} --------------------------------------

    async def retrieve(self, request: web.Request) -> web.StreamResponse:
        response_id = request.match_info["id"]
        owner = owner_of(request)
        found = await self.background.find(response_id, owner or "")
        if found is not None:
            runs, run = found
            if request.query.get("stream") == "true":
                after = parse_after(request.query.get("starting_after"))
                return await stream_events(request, self.state, runs, response_id, after)
            return json_response(response_of(run))
        if request.query.get("stream") == "true":
            raise not_found_response(response_id)  # only background responses stream again
        if check_response_id(response_id):
            for name, store in self.state.stores():
                record = _Record.read(await store.load(record_id(response_id)))
                if record is not None:
                    if not record.visible_to(owner):
                        break  # as if it did not exist: another key's response
                    return json_response(record.body)
                snapshot = await store.load(snapshot_id(response_id))
                if snapshot:
                    return json_response(_rebuilt(response_id, name, snapshot))
        raise not_found_response(response_id)

    async def delete(self, request: web.Request) -> web.Response:
        response_id = request.match_info["id"]
        owner = owner_of(request)
        found = await self.background.find(response_id, owner or "")
        if found is not None:
            runs, run = found
            if run.get("status") in ACTIVE:
                raise bad_request("Cancel a background response before deleting it.", code="response_in_progress")
            await runs.log.delete_run(response_id)
        if check_response_id(response_id):
            for _, store in self.state.stores():
                record = _Record.read(await store.load(record_id(response_id)))
                if record is not None and not record.visible_to(owner):
                    break
                if record is not None or await store.load(snapshot_id(response_id)):
                    await store.delete(snapshot_id(response_id))  # its paused turn too
                    await store.delete(record_id(response_id))
                    return json_response({"id": response_id, "object": "response", "deleted": True})
        raise not_found_response(response_id)


async def _previous(agent: ServedAgent, response_id: str, owner: str | None) -> tuple[list[Message], _Record | None]:
    """The snapshot and record of `previous_response_id`; another key's response is as unknown as a missing one.

    A paused response's snapshot may be empty (its turn was the first): the
    record says it exists. A snapshot without a record (the record lost) is
    served as before records had owners.
    """
    if check_response_id(response_id):
        store = agent.store
        history, stored = await asyncio.gather(store.load(snapshot_id(response_id)), store.load(record_id(response_id)))
        record = _Record.read(stored)
        if (history or record is not None) and (record is None or record.visible_to(owner)):
            return history, record
    raise bad_request(
        f"Previous response with id '{response_id}' not found.",
        "previous_response_id",
        "previous_response_not_found",
    )


async def _waiting(agent: ServedAgent, response_id: str, record: _Record | None) -> dict[str, Any] | None:
    """The state of the previous response's paused turn while it still waits; None once resumed, or never paused."""
    if record is None or record.paused is None or record.paused.get("conversation") is not None:
        return None
    return await agent.store.load_paused(snapshot_id(response_id), TURN)


async def _resume(
    agent: ServedAgent,
    call: ResponseCall,
    response_id: str,
    record: _Record | None,
    waiting: dict[str, Any] | None,
    base: list[Message],
    handler: _Hooks,
) -> _Turn:
    """Take the previous response's paused turn, once, after checking the decisions against it; then resume it."""
    if waiting is None:
        paused_at = record.paused if record is not None else None
        if paused_at is None:
            raise bad_request(
                f"response {response_id} does not wait for approvals or function call outputs; "
                "mcp_approval_response and function_call_output items answer a response that does",
                "input",
                "invalid_value",
            )
        if paused_at.get("conversation") is not None:
            raise bad_request(
                f"response {response_id} paused in conversation {paused_at['conversation']!r}: answer it with "
                "that conversation (conversation=...) instead of previous_response_id",
                "input",
                "invalid_value",
            )
        raise _already_resumed(response_id)
    store, key = agent.store, snapshot_id(response_id)
    await _check(lambda: store.take_paused(key, TURN), waiting, call, f"response {response_id}")

    async def claim() -> None:  # when the run starts: a request that never gets to run leaves the turn waiting
        if await store.take_paused(key, TURN) is None:  # another request took it since our look
            raise _already_resumed(response_id)

    handler.claim = claim
    paused = Paused(
        id=TURN,
        conversation_id=None,
        pending=pending_of(waiting),
        expires_at=float(waiting.get("expires_at", 0.0)),
        state=waiting,  # the state is written once per response: what we looked at is what the take removes
    )
    return _Turn(
        lambda: agent.resume(paused, approvals=call.approvals, outputs=call.outputs, handler=handler), base, waiting
    )


async def _resume_conversation(
    agent: ServedAgent, call: ResponseCall, conversation_id: str, handler: EventHandler | None = None
) -> _Turn:
    """Resume the conversation's paused turn that the decisions answer (the one whose pending ids they name)."""
    conversation = agent.conversation(conversation_id)
    named = {*call.approvals, *call.outputs}
    turns = await conversation.paused()
    found = next((p for p in turns if {q.id for q in p.pending} == named), None) or next(
        (p for p in turns if named & {q.id for q in p.pending}), None
    )
    if found is None:
        waits = "; ".join(_waits_for(p.pending) for p in turns) or "nothing"
        raise bad_request(
            f"conversation {conversation_id!r} has no paused turn waiting for these answers; it waits for: {waits}",
            "input",
            "invalid_value",
        )
    state = await agent.store.load_paused(conversation_id, found.id)
    if state is None:
        raise ApiError(
            409,
            "the paused turn was resumed already, by another request",
            param="input",
            code="response_already_resumed",
        )
    await _check(
        lambda: agent.store.take_paused(conversation_id, found.id),
        state,
        call,
        f"the paused turn of {conversation_id!r}",
    )
    return _Turn(
        lambda: conversation.resume(found.id, approvals=call.approvals, outputs=call.outputs, handler=handler),
        [],
        state,
    )


async def _check(
    drop: Callable[[], Awaitable[object]], state: Mapping[str, Any], call: ResponseCall, what: str
) -> None:
    """Expiry, then the decisions, with errors in the API's own terms; an expired turn is dropped (`drop`)."""
    try:
        check_expiry(state)
    except ResumeError:
        await drop()
        raise
    try:
        check_decisions(state, call.approvals, call.outputs)
    except InvalidDecisionsError as e:
        pending = pending_of(state)
        problems = _problems(pending, call.approvals, call.outputs) or [e.message]
        raise bad_request(
            f"the input does not answer what {what} waits for: {'; '.join(problems)}. "
            f"It waits for: {_waits_for(pending)}",
            "input",
            "invalid_value",
        ) from None


def _problems(
    pending: tuple[PendingCall, ...], approvals: Mapping[str, Decision], outputs: Mapping[str, Any]
) -> list[str]:
    """`decision_problems` in the items a client sends."""
    return [_worded(problem) for problem in decision_problems(pending, approvals, outputs)]


def _worded(problem: Problem) -> str:
    call_id, p = problem.call_id, problem.pending
    name = p.name if p is not None else ""
    if problem.kind == "unknown_approval":
        return f"{APPROVAL_PREFIX}{call_id} is not an approval request it waits for"
    if problem.kind == "approval_for_client":
        return f"{call_id} ({name}) is a function_call: answer it with a function_call_output"
    if problem.kind == "unknown_output":
        return f"{call_id} is not a function_call it waits for"
    if problem.kind == "output_for_approval":
        return f"{APPROVAL_PREFIX}{call_id} ({name}) needs an mcp_approval_response, not an output"
    assert p is not None  # a missing answer names the call it is missing for
    return f"{_wire_id(p)} ({name}) has no answer"


def _wire_id(pending: PendingCall) -> str:
    return f"{APPROVAL_PREFIX}{pending.id}" if pending.kind == "approval" else pending.id


def _waits_for(pending: tuple[PendingCall, ...]) -> str:
    """What a paused turn waits for, in the items that answer it."""
    return ", ".join(
        f"{_wire_id(p)} ({p.name}: an mcp_approval_response)"
        if p.kind == "approval"
        else f"{p.id} ({p.name}: a function_call_output)"
        for p in pending
    )


def _already_resumed(response_id: str) -> ApiError:
    return ApiError(
        409,
        f"response {response_id} was answered already: its paused turn was resumed (or removed) and cannot be "
        "resumed twice; continue from the response that resumed it",
        param="previous_response_id",
        code="response_already_resumed",
    )


async def _save(
    agent: ServedAgent,
    call: ResponseCall,
    base: list[Message],
    outcome: Outcome,
    body: dict[str, Any],
    owner: str | None,
) -> None:
    """The response's snapshot, its paused turn (if any), then its record; nothing when `store: false`.

    The record goes last: a response exists once it is there, whole.
    """
    if not call.store:
        return
    store = agent.store
    paused: dict[str, Any] | None = None
    if call.conversation is not None:
        snapshot = await store.load(call.conversation)
        if type(outcome) is RunPaused:  # the core keeps the turn in the conversation's store
            paused = {"conversation": call.conversation, "turn": outcome.paused.id}
    elif type(outcome) is RunPaused:  # the history before the turn; the turn waits beside it
        snapshot = [*base, *call.items]
        assert outcome.paused.state is not None  # a stateless pause carries its state
        await store.save_paused(snapshot_id(body["id"]), TURN, outcome.paused.state)
        paused = {"conversation": None, "turn": TURN}
    else:
        snapshot = [*base, *call.items, *outcome.messages]  # the request's instructions are not carried over
    await store.append(snapshot_id(body["id"]), snapshot)
    await store.append(record_id(body["id"]), [_Record(body=body, owner=owner, paused=paused).message()])


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

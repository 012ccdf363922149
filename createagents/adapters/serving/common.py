"""What the API handlers share: reading a body, starting a reply, running it, opening a stream."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import suppress
from typing import Any, TypeAlias

from aiohttp import web

from ...application.reply import Reply
from ...domain.errors import ApprovalExpiredError, InvalidDecisionsError, ResumeError, TurnNotPausedError
from ...domain.events import ModelCallFinished, RunFinished, RunPaused
from .errors import JSON, ApiError, api_error, bad_request, too_large
from .parsing import parse_json
from .state import KEY_ID, SSE_HEADERS, ServerState


async def read_body(request: web.Request, max_body: int) -> dict[str, Any]:
    """The JSON object the request carries; 413 past `max_body` bytes, 400 for anything but an object.

    The cap is counted here, not left to the application's `client_max_size`,
    so it holds when this app is mounted under another (`add_subapp`).
    """
    length = request.content_length
    if length is not None and length > max_body:
        raise too_large()
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > max_body:
            raise too_large()
    return parse_json(bytes(body))


Outcome: TypeAlias = RunFinished | RunPaused
"""How a run that did not fail ended: finished, or paused waiting for approvals or client tool outputs."""


def start(make: Callable[[], Reply]) -> Reply:
    """A reply, or the 400 (or other) error its arguments earn before anything is sent."""
    try:
        return make()
    except Exception as e:
        raise failure(e) from None


async def run_to_end(reply: Reply) -> tuple[Outcome, str]:
    """Consume a reply; its last event (finished or paused) and the finish reason of its last model call."""
    finish: str | None = None
    done: Outcome | None = None
    events = reply.events()
    try:
        async for event in events:
            kind = type(event)
            if kind is ModelCallFinished:
                finish = event.finish_reason  # type: ignore[union-attr]
            elif kind is RunFinished or kind is RunPaused:
                done = event  # type: ignore[assignment]
    finally:
        await events.aclose()
    assert done is not None  # a run that did not raise finished or paused
    return done, finish_reason(finish)


def failure(e: BaseException) -> ApiError:
    """`api_error`, plus the errors of resuming a paused turn (which the server alone can word for its API)."""
    if isinstance(e, ResumeError):
        return resume_failure(e)
    return api_error(e)


def resume_failure(e: ResumeError) -> ApiError:
    if isinstance(e, InvalidDecisionsError):
        return bad_request(e.message, "input", "invalid_value")
    if isinstance(e, ApprovalExpiredError):
        return bad_request(e.message, "input", "approval_expired")
    if isinstance(e, TurnNotPausedError):
        return ApiError(409, e.message, param="input", code="response_already_resumed")
    return ApiError(  # a state this version cannot read: the deployment's problem, not the client's
        500, f"the paused turn cannot be resumed here: {e.message}", type="server_error", code="paused_state_unreadable"
    )


def owner_of(request: web.Request) -> str | None:
    """Who may see and continue a stored response: the id (a digest) of the request's API key, never the key.

    The guard middleware puts it on the request (`KEY_ID`); None when the
    server has no keys, where every client is the same one.
    """
    key_id = request.get(KEY_ID)
    return key_id if isinstance(key_id, str) and key_id else None


def finish_reason(reason: str | None) -> str:
    return "length" if reason == "length" else "stop"


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(), content_type=JSON)


async def open_stream(request: web.Request, state: ServerState) -> web.StreamResponse:
    """The event-stream response, prepared; its headers go out with the first write."""
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    state.streams += 1
    return response


async def end_with(response: web.StreamResponse, data: bytes) -> None:
    """Best-effort last bytes and the end of the stream; a client already gone is no error."""
    with suppress(Exception):
        await response.write(data)
        await response.write_eof()


def stream_failed(e: Exception) -> ApiError | None:
    """The error event to send for a failure after the stream started; None when the client is gone."""
    if isinstance(e, ConnectionError):
        return None
    return failure(e)


SHUTTING_DOWN = ApiError(503, "the server is shutting down", type="server_error", code="server_shutting_down")

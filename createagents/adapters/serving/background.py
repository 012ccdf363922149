"""Background responses: `background: true`, polling, resumable streams and cancel, over the run log.

A background response is a `BackgroundRuns` run on the agent's store (which
must keep runs: every built-in store does). Its Responses API events, each
with its `sequence_number`, are the run's log, so any replica sharing the
store replays them after `starting_after` and follows them live; its record
holds the response object and the API key that created it (as a digest).
The server owns the tasks; the log is the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from ...application.background import ACTIVE, BackgroundRuns
from ...application.ports import ConversationStore, RunLog
from ...domain.errors import InvalidSequenceError, RunNotActiveError, RunNotFoundError
from ...domain.events import RunEvent, RunFailed, RunFinished, RunPaused, RunStarted, TextDelta
from .errors import ApiError, api_error, bad_request
from .state import SSE_HEADERS, ServerState

Body = Callable[[RunFinished | RunPaused | None], dict[str, Any]]
"""The response object: in progress (None), or as the run ended."""


class ResponseEncoder:
    """One background response's run events as Responses API stream events (numbered by the run log)."""

    def __init__(self, item_id: str, body: Body) -> None:
        self.item_id = item_id
        self.body = body
        self.opened = False

    def __call__(self, event: RunEvent) -> list[dict[str, Any]]:
        kind = type(event)
        if kind is TextDelta:
            text: str = event.text  # type: ignore[union-attr]
            delta: dict[str, Any] = {
                "type": "response.output_text.delta",
                "item_id": self.item_id,
                "output_index": 0,
                "content_index": 0,
                "delta": text,
                "logprobs": [],
            }
            return [delta] if self.opened else [*self._open(), delta]
        if kind is RunStarted:
            response = self.body(None)
            return [
                {"type": "response.created", "response": response},
                {"type": "response.in_progress", "response": response},
            ]
        if kind is RunFinished or kind is RunPaused:
            return self._close(event)  # type: ignore[arg-type]
        if isinstance(event, RunFailed) and not event.cancelled:
            response = self.body(None)
            error = api_error(event.error).body()["error"]
            response["status"] = "failed"
            response["error"] = {"code": error["code"] or "server_error", "message": error["message"]}
            return [{"type": "response.failed", "response": response}]
        return []

    def _open(self) -> list[dict[str, Any]]:
        self.opened = True
        item = {"id": self.item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        return [
            {"type": "response.output_item.added", "output_index": 0, "item": item},
            {
                "type": "response.content_part.added",
                "item_id": self.item_id,
                "output_index": 0,
                "content_index": 0,
                "part": part,
            },
        ]

    def _close(self, event: RunFinished | RunPaused) -> list[dict[str, Any]]:
        response = self.body(event)
        out: list[dict[str, Any]] = []
        output = response.get("output") or []
        first = 0
        if output and output[0].get("type") == "message":
            item = output[0]
            part = item["content"][0]
            where = {"item_id": item["id"], "output_index": 0, "content_index": 0}
            if not self.opened:
                out += self._open()
            out += [
                {"type": "response.output_text.done", **where, "text": part["text"], "logprobs": []},
                {"type": "response.content_part.done", **where, "part": part},
                {"type": "response.output_item.done", "output_index": 0, "item": item},
            ]
            first = 1
        for index in range(first, len(output)):  # approval requests and client tool calls of a paused turn
            item = output[index]
            out += [
                {"type": "response.output_item.added", "output_index": index, "item": item},
                {"type": "response.output_item.done", "output_index": index, "item": item},
            ]
        out.append({"type": "response.completed", "response": response})
        return out


class BackgroundResponses:
    """The background responses of one server: one `BackgroundRuns` per store its agents use."""

    def __init__(self, state: ServerState, *, heartbeat: float = 5.0, stale_after: float = 30.0) -> None:
        self.state = state
        self.heartbeat = heartbeat
        self.stale_after = stale_after
        self._runs: dict[int, BackgroundRuns] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def runs_for(self, store: ConversationStore) -> BackgroundRuns:
        runs = self._runs.get(id(store))
        if runs is None:
            if not isinstance(store, RunLog):
                raise bad_request(
                    "background responses need a store that keeps runs (memory, SQLite or Redis); "
                    f"this agent's store is a {type(store).__name__}",
                    "background",
                    "unsupported_parameter",
                )
            runs = self._runs[id(store)] = BackgroundRuns(store, heartbeat=self.heartbeat, stale_after=self.stale_after)
        return runs

    def all_runs(self) -> list[BackgroundRuns]:
        return [self.runs_for(store) for _, store in self.state.stores() if isinstance(store, RunLog)]

    async def find(self, run_id: str, key_id: str) -> tuple[BackgroundRuns, dict[str, Any]] | None:
        """The run and its record, when it exists and the caller's key created it (else None: a 404, as OpenAI)."""
        for runs in self.all_runs():
            try:
                record = await runs.get(run_id)
            except RunNotFoundError:
                continue
            if not hmac.compare_digest(str(record.get("key_id", "")), key_id):  # as stored responses compare
                return None
            return runs, record
        return None

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def start_sweeping(self) -> None:
        """Mark runs left behind by a dead process `incomplete` now, and every `stale_after` seconds."""
        await self._recover()
        self._sweeper = asyncio.create_task(self._sweep())

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.stale_after)
            await self._recover()

    async def _recover(self) -> None:
        for runs in self.all_runs():
            with contextlib.suppress(Exception):  # the store is down: the next sweep tries again
                await runs.recover()

    async def aclose(self) -> None:
        """Stop sweeping; runs of this process end `incomplete` (reason "shutdown")."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        for runs in self._runs.values():
            await runs.aclose()


def response_of(record: dict[str, Any]) -> dict[str, Any]:
    """The response object a background run's record holds, with the run's status as it is now."""
    response = dict(record.get("response") or {})
    status = record.get("status", "queued")
    response["status"] = status
    response["background"] = True
    if status == "incomplete":
        response["incomplete_details"] = record.get("incomplete_details")
    if status == "failed" and record.get("error"):
        response["error"] = record["error"]
    return response


async def stream_events(
    request: web.Request, state: ServerState, runs: BackgroundRuns, run_id: str, after: int
) -> web.StreamResponse:
    """Replay the run's events after `after`, then follow them live; the run goes on if the client leaves."""
    events = runs.events(run_id, after=after)
    try:
        first = await _first(events)
    except InvalidSequenceError as e:
        raise bad_request(str(e), "starting_after", "invalid_value") from None
    http = web.StreamResponse(headers=SSE_HEADERS)
    await http.prepare(request)
    state.streams += 1
    try:
        if first is not None:
            await http.write(_sse(first))
            async for event in events:
                await http.write(_sse(event))
        await http.write_eof()
    except ConnectionError:
        pass
    finally:
        await events.aclose()  # type: ignore[attr-defined]
        state.streams -= 1
    return http


async def _first(events: AsyncIterator[dict[str, Any]]) -> dict[str, Any] | None:
    try:
        return await events.__anext__()
    except StopAsyncIteration:
        return None


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


async def cancel(runs: BackgroundRuns, run_id: str) -> dict[str, Any]:
    try:
        record = await runs.cancel(run_id)
    except RunNotActiveError:
        raise bad_request(
            "Cannot cancel a response that is not in progress.", code="response_not_cancellable"
        ) from None
    except RunNotFoundError:
        raise ApiError(404, f"Response with id '{run_id}' not found.", code="response_not_found") from None
    return response_of(record)


def parse_after(value: str | None) -> int:
    if value is None:
        return -1
    try:
        after = int(value)
    except ValueError:
        raise bad_request("starting_after must be a whole number", "starting_after", "invalid_value") from None
    if after < -1:
        raise bad_request("starting_after must be >= -1", "starting_after", "invalid_value")
    return after


__all__ = ["ACTIVE", "BackgroundResponses", "ResponseEncoder", "cancel", "parse_after", "response_of", "stream_events"]

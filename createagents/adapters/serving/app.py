"""The aiohttp application: routes, the guard middleware (auth, limits, errors, counts) and CORS."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from .agents import ServedAgent
from .background import BackgroundResponses
from .chat import ChatCompletions
from .common import json_response
from .errors import ApiError, api_error, http_error
from .metrics import merge_expositions, server_exposition
from .responses import Responses
from .state import KEY_ID, ServerOptions, ServerState

STATE = web.AppKey("createagents_server", ServerState)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_CORS_METHODS = "GET, POST, DELETE, OPTIONS"
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def build_app(agents: Mapping[str, ServedAgent], options: ServerOptions) -> web.Application:
    """An application serving `agents` by name; run it with `serve` or mount it in your own runner."""
    state = ServerState(agents, options)
    app = web.Application(
        middlewares=[_guard(state)],
        client_max_size=options.max_body,
        # a client that goes away cancels its handler at once, and with it the run (not at the next write)
        handler_args={"handler_cancellation": True},
    )
    app[STATE] = state
    chat = ChatCompletions(state)
    background = BackgroundResponses(
        state, heartbeat=min(5.0, options.background_stale_after / 3), stale_after=options.background_stale_after
    )
    responses = Responses(state, background)

    async def sweep(app: web.Application) -> None:
        await background.start_sweeping()

    async def close(app: web.Application) -> None:
        await background.aclose()

    app.on_startup.append(sweep)
    app.on_cleanup.append(close)
    app.router.add_post("/v1/chat/completions", chat.handle)
    app.router.add_post("/v1/responses", responses.create)
    app.router.add_get("/v1/responses/{id}", responses.retrieve)
    app.router.add_delete("/v1/responses/{id}", responses.delete)
    app.router.add_post("/v1/responses/{id}/cancel", responses.cancel)
    app.router.add_get("/v1/models", _models(state))
    app.router.add_get("/v1/models/{name:.+}", _model(state))
    health = _health(state)
    state.open_handlers.add(health)  # probes need no key
    app.router.add_get("/healthz", health)
    app.router.add_get("/metrics", _metrics(state))
    if options.cors_origins:
        app.on_response_prepare.append(_cors_headers(state))
    return app


def state_of(app: web.Application) -> ServerState:
    return app[STATE]


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _guard(state: ServerState) -> Any:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        state.enter(request)
        status = 500
        try:
            response = await _answer(state, request, handler)
            status = response.status
            return response
        except asyncio.CancelledError:
            status = 499  # the client went away, or the server stopped the request
            raise
        finally:
            state.leave(request, _route(request), status)

    return guard


async def _answer(state: ServerState, request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        if request.method == "OPTIONS" and state.cors_origins and "Access-Control-Request-Method" in request.headers:
            return _preflight(state, request)
        if request.match_info.handler in state.open_handlers:
            return await handler(request)
        if state.stopping and request.method != "GET":
            raise ApiError(
                503,
                "the server is shutting down",
                type="server_error",
                code="server_shutting_down",
                headers={"Connection": "close", "Retry-After": "1"},
            )
        key = state.authenticate(request)
        request[KEY_ID] = state.key_id(key)
        if not state.acquire(key):
            raise ApiError(
                429,
                "too many concurrent requests with this API key",
                type="rate_limit_error",
                code="concurrency_limit_exceeded",
                headers={"Retry-After": "1"},
            )
        try:
            return await handler(request)
        finally:
            state.release(key)
    except ApiError as e:
        return e.response()
    except web.HTTPException as e:  # aiohttp's own: no route, wrong method, body too large
        return http_error(e).response()
    except Exception as e:  # never a stack trace to the client: logged, and a generic 500
        return api_error(e).response()


def _preflight(state: ServerState, request: web.Request) -> web.StreamResponse:
    origin = request.headers.get("Origin", "")
    if not state.origin_allowed(origin):
        return ApiError(403, "this origin is not allowed", code="cors_origin_not_allowed").response()
    requested = request.headers.get("Access-Control-Request-Headers")
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Methods": _CORS_METHODS,
            "Access-Control-Allow-Headers": requested or "Authorization, Content-Type",
            "Access-Control-Max-Age": "600",
        },
    )


def _cors_headers(state: ServerState) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    async def add(request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if origin and state.origin_allowed(origin):
            response.headers["Access-Control-Allow-Origin"] = "*" if state.cors_any else origin
            response.headers["Access-Control-Expose-Headers"] = "Retry-After"
            if not state.cors_any:
                response.headers.add("Vary", "Origin")

    return add


def _model_object(state: ServerState, name: str) -> dict[str, object]:
    return {"id": name, "object": "model", "created": state.created, "owned_by": "createagents"}


def _models(state: ServerState) -> Handler:
    async def models(request: web.Request) -> web.StreamResponse:
        return json_response({"object": "list", "data": [_model_object(state, name) for name in state.agents]})

    return models


def _model(state: ServerState) -> Handler:
    async def model(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        state.agent(name)  # 404 for an unknown name
        return json_response(_model_object(state, name))

    return model


def _health(state: ServerState) -> Handler:
    async def health(request: web.Request) -> web.StreamResponse:
        if state.stopping:
            return json_response({"status": "draining"}, status=503)
        return json_response({"status": "ok"})

    return health


def _metrics(state: ServerState) -> Handler:
    async def metrics(request: web.Request) -> web.StreamResponse:
        agents = merge_expositions((name, agent.export_metrics_prometheus()) for name, agent in state.distinct_agents())
        server = server_exposition(
            state.requests, requests_in_flight=len(state.active), streams_in_flight=state.streams
        )
        return web.Response(body=(agents + server).encode(), headers={"Content-Type": PROMETHEUS_TEXT})

    return metrics

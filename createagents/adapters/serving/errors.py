"""OpenAI-style error bodies, and the one map from what can go wrong to a status and a safe message.

A body never carries a stack trace, an API key or an upstream URL: provider
errors contribute their `message` (already scrubbed of keys by the provider
adapters) only where the client can act on it, and a generic text otherwise.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ...domain.errors import (
    AgentClosedError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ContentFilterError,
    ContextLengthError,
    MaxTurnsExceededError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
    StoreUnavailableError,
)

log = logging.getLogger("createagents.server")

JSON = "application/json"


class ApiError(Exception):
    """An error answer: status, OpenAI-style body fields and extra headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> web.Response:
        return web.Response(
            status=self.status, body=json.dumps(self.body()).encode(), content_type=JSON, headers=self.headers
        )


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def retry_after_seconds(value: float | None) -> str:
    """A Retry-After header value: whole seconds, at least 1."""
    if value is None or not math.isfinite(value) or value <= 0:
        return "1"
    return str(max(1, math.ceil(value)))


def api_error(e: BaseException) -> ApiError:
    """The answer for an exception raised by a run or a handler (never for a cancellation)."""
    if isinstance(e, ApiError):
        return e
    if isinstance(e, ProviderError):
        error = _provider_error(e)
        log.warning("model provider error -> %d: %s", error.status, e)  # str(e): provider, model, status, request id
        return error
    if isinstance(e, ConfigurationError):  # a request field the agent's settings or provider refuse
        return bad_request(e.message)
    if isinstance(e, MaxTurnsExceededError):
        return ApiError(
            500,
            "the agent made too many model calls without a final answer",
            type="server_error",
            code="max_turns_exceeded",
        )
    if isinstance(e, StoreUnavailableError):
        log.warning("conversation store unavailable: %s", e.message)
        return ApiError(
            503,
            "the conversation store is unavailable; retry later",
            type="server_error",
            code="store_unavailable",
            headers={"Retry-After": "1"},
        )
    if isinstance(e, AgentClosedError):
        return ApiError(503, "this agent is closed", type="server_error", code="unavailable")
    log.error("unexpected error while serving a request", exc_info=e)
    return ApiError(500, "The server had an error while processing your request.", type="server_error")


def _provider_error(e: ProviderError) -> ApiError:
    # order matters: the subclasses come before their bases
    if isinstance(e, RateLimitError):
        return ApiError(
            429,
            "the model provider is rate limiting this server; retry later",
            type="rate_limit_error",
            code="rate_limit_exceeded",
            headers={"Retry-After": retry_after_seconds(e.retry_after)},
        )
    if isinstance(e, ProviderTimeoutError):
        return ApiError(504, "the model provider did not answer in time", type="server_error", code="upstream_timeout")
    if isinstance(e, ProviderUnavailableError):
        status = 503 if e.status_code == 503 else 502
        return ApiError(status, "the model provider is unavailable", type="server_error", code="upstream_unavailable")
    if isinstance(e, ContentFilterError):
        return bad_request(e.message or "the content filter refused this request", code="content_filter")
    if isinstance(e, ContextLengthError):
        return bad_request(e.message or "the conversation is too long for the model", code="context_length_exceeded")
    if isinstance(e, BadRequestError):
        return bad_request(e.message or "the model provider refused the request", code="upstream_bad_request")
    if isinstance(e, AuthenticationError):  # the server's own credentials: never the client's 401
        return ApiError(
            502, "the model provider refused this server's request", type="server_error", code="upstream_error"
        )
    return ApiError(502, "the model provider returned an error", type="server_error", code="upstream_error")


def http_error(e: web.HTTPException) -> ApiError:
    """aiohttp's own answers (no route, wrong method, body too large) in the OpenAI shape."""
    if isinstance(e, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(e.allowed_methods))
        return ApiError(
            405,
            f"method {e.method} is not allowed here; use {allowed}",
            code="method_not_allowed",
            headers={"Allow": allowed},
        )
    if isinstance(e, web.HTTPRequestEntityTooLarge):
        return too_large()
    if isinstance(e, web.HTTPNotFound):
        return ApiError(404, "no such endpoint", code="not_found")
    return ApiError(
        e.status, e.reason or "request refused", type="invalid_request_error" if e.status < 500 else "server_error"
    )


def too_large() -> ApiError:
    return ApiError(413, "the request body is too large", code="request_too_large")

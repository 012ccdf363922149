"""OpenAI-style failures -> our errors, once for every transport: statuses, error bodies, broken transports.

Everything here takes an `ErrorContext` (provider, model, request id, the
secrets to mask), never the adapter. Error texts are capped: a server may
send megabytes where a sentence is due.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..domain.errors import (
    ContentFilterError,
    ContextLengthError,
    ModelNotFoundError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    ResponseFormatError,
)
from ._errors import error_for_status
from ._retry import retry_after
from ._secrets import mask_secrets
from ._transport import Opened, TransportError

MAX_MESSAGE = 2000  # characters of a provider's error message that we keep
# An error inside a stream has no status; its code says what the status would have been.
_CODE_STATUS = {
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "invalid_prompt": 400,
    "invalid_request_error": 400,
    "invalid_api_key": 401,
    "server_error": 500,
}


@dataclass(frozen=True, slots=True)
class ErrorContext:
    """What every error of one request carries."""

    provider: str
    model: str
    secrets: Sequence[str] = field(default=(), repr=False)  # a traceback that prints locals must not show them
    request_id: str | None = None

    def scrub(self, text: str) -> str:
        text = mask_secrets(text, self.secrets)
        return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + " [...]"

    def error(self, cls: type[ProviderError], message: str, **kw: Any) -> ProviderError:
        return cls(self.scrub(message), provider=self.provider, model=self.model, request_id=self.request_id, **kw)


def request_id(headers: Mapping[str, str]) -> str | None:
    return headers.get("x-request-id") or headers.get("apim-request-id")  # OpenAI's, or Azure API Management's


def broken(context: ErrorContext, e: TransportError, what: str) -> ProviderError:
    """A transport failure: a timeout, or the server out of reach."""
    cls = ProviderTimeoutError if e.kind == "timeout" else ProviderUnavailableError
    return context.error(cls, f"{what}: {e}")


async def status_error(context: ErrorContext, response: Opened) -> ProviderError:
    """A status of 400 or more -> our error, from a capped read of its body (JSON, or a gateway's page)."""
    raw = await response.read()
    text = raw.decode(errors="replace")
    try:
        body: Any = json.loads(raw)
    except (ValueError, RecursionError):
        body = None
    short = " ".join(text.split())[:500]
    fallback = f"HTTP {response.status}: {short}" if short else f"HTTP {response.status}"
    return map_error_body(
        context,
        body if isinstance(body, Mapping) else {},
        status=response.status,
        headers=response.headers,
        fallback=fallback,
    )


def map_error_body(
    context: ErrorContext,
    body: Mapping[str, Any],
    *,
    status: int | None,
    headers: Mapping[str, str] | None = None,
    fallback: str = "",
) -> ProviderError:
    """An OpenAI-style error object (from a status response or an in-stream error) -> our error."""
    error = body.get("error")
    if isinstance(error, Mapping):
        body = error
    elif isinstance(error, str) and error:  # {"error": "boom"}: some servers say just that
        body = {"message": error}
    message = str(body.get("message") or fallback or "the provider returned an error")
    code = body.get("code")  # a string at OpenAI, a number at some compatible servers
    if status is None and (isinstance(code, int) or (isinstance(code, str) and code.isdigit())):
        status = int(code) if 100 <= int(code) <= 599 else None
    code_text = str(code or "").lower()
    if status is None:
        status = _CODE_STATUS.get(code_text)
    inner = body.get("innererror")
    kw: dict[str, Any] = {"status_code": status}
    if code_text == "content_filter" or (isinstance(inner, Mapping) and "content_filter_result" in inner):
        categories = filtered(inner.get("content_filter_result") if isinstance(inner, Mapping) else None)
        return context.error(ContentFilterError, message, categories=categories, **kw)
    if code_text == "context_length_exceeded":
        return context.error(ContextLengthError, message, **kw)
    if code_text in ("model_not_found", "deploymentnotfound"):
        return context.error(ModelNotFoundError, message, **kw)
    if status == 404 and "model" not in message.lower():
        message += " (is base_url right? OpenAI-style servers serve under /v1)"
    return error_for_status(
        status,
        context.scrub(message),
        retry_after=retry_after(headers or {}),
        provider=context.provider,
        model=context.model,
        request_id=context.request_id,
    )


def not_a_stream(context: ErrorContext, response: Opened, start: bytes) -> ProviderError:
    """A 200 that is not an event stream: a proxy's login page, a captive portal."""
    preview = " ".join(start.decode(errors="replace").split())[:200]
    return context.error(
        ResponseFormatError,
        f"the server answered with {response.content_type or 'no content type'} instead of an event stream "
        f"(is base_url an OpenAI-style API? a proxy or login page?): {preview!r}",
    )


def filtered(results: object) -> list[str]:
    if not isinstance(results, Mapping):
        return []
    return [str(name) for name, r in results.items() if isinstance(r, Mapping) and r.get("filtered")]

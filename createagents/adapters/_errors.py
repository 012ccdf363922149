"""HTTP status -> typed error, shared by the provider adapters so every provider fails alike."""

from __future__ import annotations

from typing import Any

from ..domain.errors import (
    AuthenticationError,
    BadRequestError,
    ContextLengthError,
    ModelNotFoundError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitError,
)


def error_for_status(status: int | None, message: str, *, retry_after: float | None = None, **kw: Any) -> ProviderError:
    """The error a status means when the body says nothing more specific."""
    lowered = message.lower()
    if status in (401, 403):
        return AuthenticationError(message, status_code=status, **kw)
    if status == 429:
        return RateLimitError(message, retry_after=retry_after, status_code=status, **kw)
    if "context length" in lowered or "context window" in lowered:
        return ContextLengthError(message, status_code=status, **kw)
    if status == 404 and "model" in lowered:
        return ModelNotFoundError(message, status_code=status, **kw)
    if status is not None and 400 <= status < 500:
        return BadRequestError(message, status_code=status, **kw)
    return ProviderUnavailableError(message, status_code=status, **kw)


def is_transport_error(e: BaseException) -> bool:
    """httpx / httpx2 / aiohttp errors (whichever transport the SDK uses) and OS-level socket errors."""
    return isinstance(e, OSError) or any(c.__module__.startswith(("httpx", "aiohttp")) for c in type(e).__mro__)


def is_timeout(e: BaseException) -> bool:
    return isinstance(e, TimeoutError) or "Timeout" in type(e).__name__

"""The retry policy every provider adapter shares: which failures are retried, and how long to wait first.

Retried: connection errors and timeouts before any byte of the body reached
the caller, and the statuses 408, 409, 429 and 5xx, unless the server says
`x-should-retry: true` / `false`. The wait is what the server asks for
(`retry-after-ms`, else `retry-after` in seconds or as an HTTP date), else
an exponential back-off with jitter. A server that asks for a longer wait
than `max_wait` is not retried: its answer is the final one, and the error
carries the wait it asked for. Headers are read from a case-insensitive
mapping (aiohttp's, httpx's). Pure, except for `RetryWaits`, which sleeps.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

_RETRY_STATUS = frozenset((408, 409, 429))
_NO_HEADERS: Mapping[str, str] = {}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """At most `max_retries` retries, so at most `max_retries + 1` requests."""

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_wait: float = 120.0  # a longer server-requested wait is not waited for (the openai SDK's limit)

    def should_retry(self, status: int, headers: Mapping[str, str] = _NO_HEADERS) -> bool:
        """Whether a response with this status is worth another attempt, before counting or waiting."""
        should = headers.get("x-should-retry")
        if should in ("true", "false"):
            return should == "true"
        return status in _RETRY_STATUS or status >= 500

    def delay(self, attempt: int, headers: Mapping[str, str] = _NO_HEADERS) -> float | None:
        """Seconds to wait after attempt `attempt` (0 for the first); None if the server asks for over `max_wait`."""
        wait = retry_after(headers)
        if wait is None:
            return self.backoff(attempt)
        return wait if wait <= self.max_wait else None

    def backoff(self, attempt: int) -> float:
        delay: float = min(self.initial_delay * 2.0 ** min(attempt, 64), self.max_delay)
        return delay * (1 - 0.25 * random.random())  # jitter, so a fleet of clients spreads out

    def next_delay(
        self, attempt: int, status: int | None = None, headers: Mapping[str, str] = _NO_HEADERS
    ) -> float | None:
        """The wait before retrying after attempt `attempt` failed, or None: do not retry.

        `status` is None for a connection error or a timeout.
        """
        if attempt >= self.max_retries or (status is not None and not self.should_retry(status, headers)):
            return None
        return self.delay(attempt, headers)


class RetryWaits:
    """The waits before retries of one adapter: `wake_all()` (on `aclose()`) ends them at once.

    So closing an agent never waits out a server's Retry-After; the caller
    checks, after the wait, whether it was woken because it is closing.
    """

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        handle = loop.call_later(seconds, _wake, waiter)
        self._waiters.add(waiter)
        try:
            await waiter
        finally:
            handle.cancel()
            self._waiters.discard(waiter)

    def wake_all(self) -> None:
        for waiter in self._waiters:
            _wake(waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks to wait: `retry-after-ms`, then `retry-after` in seconds or as an HTTP date.

    None when it says nothing usable (absent, negative, not a number or a date).
    """
    ms = _number(headers.get("retry-after-ms"))
    if ms is not None:
        return ms / 1000
    value = headers.get("retry-after")
    if not value:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        from email.utils import parsedate_to_datetime  # rare, and the email package is not light

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())  # a date already past: now
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _number(value: str | None) -> float | None:
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None

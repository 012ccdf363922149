"""The threads sync tools run on: a small pool each agent owns, so a stuck tool hurts only that pool.

A Python thread cannot be killed. Run on the event loop's default executor,
a sync tool stuck past its timeout keeps one of the loop's few workers, and
a handful of them starve everything else that uses that executor (aiohttp's
DNS lookups, `asyncio.to_thread`, other agents) and make `asyncio.run` wait
for them at exit. Here each agent has its own bounded pool of daemon
threads: a stuck call holds one of them until it returns, a call that finds
them all busy waits for one (within its timeout) and is then reported as
never started, and a daemon thread never holds the interpreter at exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

DEFAULT_TOOL_THREADS = 8
IDLE_SECONDS = 60.0  # an idle thread ends after this long


class Job:
    """One sync call: queued, then running on a pool thread, then finished."""

    __slots__ = ("abandoned", "finished", "fn", "future", "loop", "started")

    def __init__(self, fn: Callable[[], Any], loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]) -> None:
        self.fn = fn
        self.loop = loop
        self.future = future
        self.started = False
        self.finished = False
        self.abandoned = False  # its caller stopped waiting (timeout or cancellation)


class ToolThreads:
    """At most `size` daemon threads, started when needed and reused."""

    def __init__(self, size: int = DEFAULT_TOOL_THREADS) -> None:
        self.size = size
        self._jobs: deque[Job] = deque()
        self._lock = threading.Condition()
        self._threads = 0
        self._idle = 0
        self._running: set[Job] = set()
        self._closed = False

    @property
    def busy(self) -> int:
        """Threads running a call now."""
        return len(self._running)

    @property
    def stuck(self) -> int:
        """Threads still running a call whose caller stopped waiting: a tool stuck past its timeout."""
        with self._lock:
            return sum(1 for job in self._running if job.abandoned)

    def submit(self, fn: Callable[..., Any], /, **kwargs: Any) -> Job:
        """Queue `fn(**kwargs)` for a pool thread, in the caller's context; await `job.future` for its outcome.

        The caller must `abandon(job)` if it stops waiting before the outcome.
        """
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        job = Job(lambda: context.run(fn, **kwargs), loop, loop.create_future())
        with self._lock:
            self._jobs.append(job)
            if self._idle:
                self._lock.notify()
            elif self._threads < self.size:
                self._threads += 1
                threading.Thread(target=self._work, name="createagents-tool", daemon=True).start()
        return job

    def abandon(self, job: Job) -> None:
        """Its caller stopped waiting: a queued job is dropped, a running one is counted as stuck until it returns."""
        with self._lock:
            if job.finished:
                return
            job.abandoned = True
            if not job.started:
                self._jobs.remove(job)

    def close(self) -> None:
        """Let idle threads end (an agent's `aclose`); a thread still running a call ends when it returns."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._jobs:
                    if self._closed:
                        self._threads -= 1
                        return
                    self._idle += 1
                    self._lock.wait(IDLE_SECONDS)  # an idle thread also ends after a while, started again on need
                    self._idle -= 1
                    if not self._jobs and not self._closed:
                        self._threads -= 1
                        return
                job = self._jobs.popleft()
                job.started = True
                self._running.add(job)
            try:
                outcome: tuple[bool, Any] = (True, job.fn())
            except BaseException as e:  # handed to the caller, whatever it is
                outcome = (False, e)
            finally:
                with self._lock:
                    self._running.discard(job)
                    job.finished = True
            if not job.abandoned:
                with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                    job.loop.call_soon_threadsafe(_settle, job.future, outcome)
            del job, outcome  # drop the references before waiting for the next job


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.done():
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)

"""Many stateless calls with a concurrency limit: `agent.chat_many`.

A fixed pool of workers pulls prompts in order, so memory stays flat however
many prompts there are: at most `concurrency` runs (and tasks) are alive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from ..domain.errors import ConfigurationError
from .conversation import check_message

R = TypeVar("R")
Progress = Callable[[int, int], Any]  # (done, total); may be async


async def run_many(
    ask: Callable[[str], Awaitable[R]],
    prompts: Iterable[str],
    *,
    concurrency: int,
    return_exceptions: bool,
    progress: Progress | None,
) -> list[R | Exception]:
    """Answers in input order; the first failure cancels the rest and is raised, unless `return_exceptions`."""
    if isinstance(prompts, str | bytes) or not isinstance(prompts, Iterable):
        raise ConfigurationError("prompts must be a list of str")
    todo: Sequence[str] = prompts if isinstance(prompts, list | tuple) else list(prompts)
    for prompt in todo:  # every prompt is checked before anything is sent
        check_message(prompt)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigurationError(f"concurrency must be a whole number >= 1, got {concurrency!r}")
    if progress is not None and not callable(progress):
        raise ConfigurationError("progress must be a callable taking (done, total)")
    total = len(todo)
    if total == 0:
        return []
    results: list[Any] = [None] * total
    positions = iter(range(total))
    done = 0

    async def worker() -> None:
        nonlocal done
        for i in positions:  # shared: each worker takes the next prompt
            try:
                results[i] = await ask(todo[i])
            except Exception as e:
                if not return_exceptions:
                    raise
                results[i] = e
            done += 1
            if progress is not None:
                outcome = progress(done, total)
                if asyncio.iscoroutine(outcome):
                    await outcome

    workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, total))]
    try:
        finished, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
        for task in finished:
            error = task.exception()
            if error is not None:
                raise error
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    return results

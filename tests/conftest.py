from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest


@pytest.fixture(autouse=True)
async def no_task_left_running() -> AsyncIterator[None]:
    """Every test must leave no task behind (a leaked stream or tool call).

    Generator finalizers that asyncio schedules itself get a moment to finish first.
    """
    before = asyncio.all_tasks()
    yield
    for _ in range(50):
        left = {t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()}
        if not left:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"tasks left running: {left}")

"""Every store, behind one fixture: the contract suite runs the same cases against each."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from createagents import InMemoryConversationStore
from createagents.application.ports import ConversationStore

STORES = ("memory", "sqlite", "redis")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    from tests.stores.redis_server import start_redis

    server = start_redis()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ConversationStore]:
    made = make_store(request.param, request, tmp_path)
    try:
        yield made
    finally:
        await made.aclose()


def make_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path, **options: Any) -> ConversationStore:
    if kind == "memory":
        return InMemoryConversationStore(**options)
    if kind == "sqlite":
        from createagents.adapters.sqlite_store import SQLiteConversationStore

        return SQLiteConversationStore(tmp_path / "chats.db", **options)
    from createagents.adapters.redis_store import RedisConversationStore

    url = request.getfixturevalue("redis_url")
    return RedisConversationStore(url, prefix=f"test-{uuid.uuid4().hex[:8]}", **options)

"""The default conversation store: histories in this process's memory."""

from __future__ import annotations

from collections.abc import Sequence

from ..application.ports import ConversationStore
from ..domain.messages import Message


class InMemoryConversationStore(ConversationStore):
    """Histories in a dict; lost when the process ends. Messages are immutable, so sharing is safe."""

    def __init__(self) -> None:
        self._histories: dict[str, tuple[Message, ...]] = {}

    async def load(self, conversation_id: str) -> list[Message]:
        return list(self._histories.get(conversation_id, ()))

    async def save(self, conversation_id: str, messages: Sequence[Message]) -> None:
        if messages:
            self._histories[conversation_id] = tuple(messages)
        else:
            self._histories.pop(conversation_id, None)

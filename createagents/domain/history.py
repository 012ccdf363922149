"""The history window: which committed messages a conversation keeps when it has a size limit."""

from __future__ import annotations

from collections.abc import Sequence

from .messages import Message, UserMessage


def trim_history(messages: Sequence[Message], max_size: int | None) -> list[Message]:
    """Keep at most `max_size` messages, cut at a user message so no tool result loses its call.

    When even the last turn is longer than `max_size`, that whole turn is kept.
    Every store applies this rule when it appends, so the limit means the same everywhere.
    """
    if max_size is None or len(messages) <= max_size:
        return list(messages)
    user_starts = [i for i, m in enumerate(messages) if isinstance(m, UserMessage)]
    for i in user_starts:
        if len(messages) - i <= max_size:
            return list(messages[i:])
    return list(messages[user_starts[-1] :]) if user_starts else list(messages[-max_size:])

"""The history window: which committed messages are sent to the model when a conversation has a budget."""

from __future__ import annotations

from collections.abc import Sequence

from .messages import AssistantMessage, Message, UserMessage

CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text with BPE tokenizers


def estimate_tokens(message: Message) -> int:
    """About how many tokens a message costs: its text at 4 characters a token, plus a few for its framing.

    Deliberately provider-neutral (no tokenizer to download): leave headroom
    under the model's real context window.
    """
    chars = len(message.content)
    if isinstance(message, AssistantMessage):
        chars += sum(len(c.name) + len(c.arguments) for c in message.tool_calls)
    return 4 + -(-chars // CHARS_PER_TOKEN)


def trim_history(messages: Sequence[Message], max_size: int | None, max_tokens: int | None = None) -> list[Message]:
    """The most recent messages within `max_size` messages and about `max_tokens` tokens.

    The cut is always at a user message, so no tool result loses its call;
    when even the last turn is over budget, that whole turn is kept.
    """
    n = len(messages)
    if (max_size is None or n <= max_size) and max_tokens is None:
        return list(messages)
    user_starts = [i for i, m in enumerate(messages) if isinstance(m, UserMessage)]
    if not user_starts:
        return list(messages[-max_size:]) if max_size is not None and n > max_size else list(messages)
    tokens_from = _suffix_tokens(messages) if max_tokens is not None else None
    for i in user_starts:
        if (max_size is None or n - i <= max_size) and (tokens_from is None or tokens_from[i] <= (max_tokens or 0)):
            return list(messages[i:])
    return list(messages[user_starts[-1] :])


def _suffix_tokens(messages: Sequence[Message]) -> list[int]:
    """`out[i]`: the estimated tokens of `messages[i:]`."""
    out = [0] * (len(messages) + 1)
    for i in range(len(messages) - 1, -1, -1):
        out[i] = out[i + 1] + estimate_tokens(messages[i])
    return out

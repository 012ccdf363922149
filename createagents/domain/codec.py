"""Messages to and from plain dicts: the versioned JSON every store keeps, and any tool can read.

    {"v": 1, "role": "assistant", "content": "...", "tool_calls": [{"id": ..., "name": ..., "arguments": "..."}],
     "thinking": "..."}

Fields equal to their defaults are left out, so a stored history stays
small; `v` lets a later version read what an earlier one wrote (and refuse
what a later one wrote, rather than guess).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .errors import ConfigurationError
from .messages import AssistantMessage, Message, ProviderItem, SystemMessage, ToolCall, ToolMessage, UserMessage

FORMAT_VERSION = 1


class UnreadableMessageError(ConfigurationError):
    """Stored data that is not a message this version can read (written by a newer version, or damaged)."""


def message_to_dict(m: Message) -> dict[str, Any]:
    """One message as a JSON-ready dict."""
    out: dict[str, Any] = {"v": FORMAT_VERSION, "role": m.role}
    match m:
        case SystemMessage() | UserMessage():
            out["content"] = m.content
        case AssistantMessage():
            if m.content:
                out["content"] = m.content
            if m.tool_calls:
                out["tool_calls"] = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in m.tool_calls]
            if m.thinking:
                out["thinking"] = m.thinking
            if m.provider_items:
                out["provider_items"] = [{"api": i.api, "data": i.data} for i in m.provider_items]
        case ToolMessage():
            out.update(tool_call_id=m.tool_call_id, name=m.name, content=m.content)
            if m.is_error:
                out["is_error"] = True
        case _:
            raise ConfigurationError(f"cannot encode {type(m).__name__} as a message")
    return out


def message_from_dict(data: Mapping[str, Any]) -> Message:
    """The message `message_to_dict` wrote; `UnreadableMessageError` for anything else."""
    try:
        version = data.get("v", FORMAT_VERSION)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise UnreadableMessageError(
                f"a stored message has format version {version!r}; this createagents reads up to "
                f"{FORMAT_VERSION}: upgrade createagents to read it"
            )
        role = data["role"]
        if role == "user":
            return UserMessage(content=_str(data["content"]))
        if role == "system":
            return SystemMessage(content=_str(data["content"]))
        if role == "assistant":
            calls = tuple(
                ToolCall(id=_str(c["id"]), name=_str(c["name"]), arguments=_str(c.get("arguments", "{}")))
                for c in data.get("tool_calls") or ()
            )
            items = tuple(
                ProviderItem(api=_str(i["api"]), data=_dict(i["data"])) for i in data.get("provider_items") or ()
            )
            return AssistantMessage(
                content=_str(data.get("content", "")),
                tool_calls=calls,
                thinking=_str(data.get("thinking", "")),
                provider_items=items,
            )
        if role == "tool":
            return ToolMessage(
                tool_call_id=_str(data["tool_call_id"]),
                name=_str(data["name"]),
                content=_str(data["content"]),
                is_error=bool(data.get("is_error", False)),
            )
    except UnreadableMessageError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise UnreadableMessageError(
            f"a stored message is damaged ({type(e).__name__}: {e}): {dict(data)!r:.200}"
        ) from None
    raise UnreadableMessageError(f"a stored message has an unknown role {data.get('role')!r}")


def messages_to_dicts(messages: Iterable[Message]) -> list[dict[str, Any]]:
    return [message_to_dict(m) for m in messages]


def messages_from_dicts(data: Iterable[Mapping[str, Any]]) -> list[Message]:
    return [message_from_dict(d) for d in data]


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value

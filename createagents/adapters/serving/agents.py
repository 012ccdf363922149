"""What the server needs from an agent (duck-typed) and the names it serves agents under."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ...application.ports import ConversationStore
from ...application.reply import Reply
from ...domain.errors import ConfigurationError
from ...domain.messages import Message


class ChatTarget(Protocol):
    """A named conversation: turns append to its one head."""

    def chat(self, message: str, *, config: Mapping[str, Any] | None = None) -> Reply: ...


class ServedAgent(Protocol):
    """The part of `CreateAgent` the server uses; any object with these members can be served."""

    model: str

    @property
    def store(self) -> ConversationStore: ...

    def ask(
        self, message: str, *, history: Sequence[Message] = ..., config: Mapping[str, Any] | None = None
    ) -> Reply: ...

    def conversation(self, conversation_id: str) -> ChatTarget: ...

    def export_metrics_prometheus(self) -> str: ...


_MEMBERS = ("ask", "conversation", "store", "export_metrics_prometheus")


def served_names(agents: object) -> dict[str, ServedAgent]:
    """Names -> agents: a mapping as given, or one agent under "default" and under its model name."""
    if isinstance(agents, Mapping):
        if not agents:
            raise ConfigurationError("agents is empty; serve at least one agent")
        named = dict(agents)
    else:
        named = {"default": agents}
        model = getattr(agents, "model", None)
        if isinstance(model, str) and model:
            named.setdefault(model, agents)
    for name, agent in named.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError(f"an agent's name must be a non-empty str, got {name!r}")
        missing = [m for m in _MEMBERS if not hasattr(agent, m)]
        if missing:
            raise ConfigurationError(
                f"the agent named {name!r} is a {type(agent).__name__}, which lacks {', '.join(missing)}; "
                "serve CreateAgent objects"
            )
    return named  # type: ignore[return-value]

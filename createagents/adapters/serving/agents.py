"""What the server needs from an agent (duck-typed) and the names it serves agents under."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ...application.loop import Approver
from ...application.ports import ConversationStore
from ...application.reply import EventHandler, Reply
from ...application.tools import ClientTool
from ...domain.errors import ConfigurationError
from ...domain.messages import Message
from ...domain.pending import Decision, Paused


class ChatTarget(Protocol):
    """A named conversation: turns append to its one head; a paused turn waits in its store."""

    def chat(
        self,
        message: str,
        *,
        handler: EventHandler | None = None,
        config: Mapping[str, Any] | None = None,
        client_tools: Sequence[ClientTool] = ...,
    ) -> Reply: ...

    def resume(
        self,
        paused: Paused | str,
        *,
        approvals: Mapping[str, Decision] | None = None,
        outputs: Mapping[str, Any] | None = None,
        handler: EventHandler | None = None,
    ) -> Reply: ...

    async def paused(self) -> list[Paused]: ...


class ServedAgent(Protocol):
    """The part of `CreateAgent` the server uses; any object with these members can be served."""

    model: str

    @property
    def store(self) -> ConversationStore: ...

    def ask(
        self,
        message: str | None,
        *,
        handler: EventHandler | None = None,
        history: Sequence[Message] = ...,
        config: Mapping[str, Any] | None = None,
        client_tools: Sequence[ClientTool] = ...,
        approver: Approver | None = ...,
    ) -> Reply: ...

    def resume(
        self,
        paused: Paused | str,
        *,
        approvals: Mapping[str, Decision] | None = None,
        outputs: Mapping[str, Any] | None = None,
        handler: EventHandler | None = None,
    ) -> Reply: ...

    def conversation(self, conversation_id: str) -> ChatTarget: ...

    def export_metrics_prometheus(self) -> str: ...


_MEMBERS = ("ask", "resume", "conversation", "store", "export_metrics_prometheus")


def own_tool_names(agent: ServedAgent) -> frozenset[str]:
    """The names of the agent's own tools (`CreateAgent.tools`); a client tool may not take one."""
    return frozenset(str(getattr(t, "name", "")) for t in getattr(agent, "tools", ()))


def own_approver(agent: ServedAgent) -> Approver | None:
    """The agent's approver, when it exposes one (`CreateAgent.approver`), to consult before refusing."""
    approver = getattr(agent, "approver", None)
    return approver if callable(approver) else None


def served_names(agents: object) -> dict[str, ServedAgent]:
    """Names -> agents: a mapping as given, or one agent under "default", its own name and its model name."""
    if isinstance(agents, Mapping):
        if not agents:
            raise ConfigurationError("agents is empty; serve at least one agent")
        named = dict(agents)
    else:
        named = {"default": agents}
        own = getattr(agents, "name", None)
        if isinstance(own, str) and own:
            named.setdefault(own, agents)
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

"""Approvals and client-side tools in process: a turn pauses, is stored beside the history, and resumes once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from createagents import (
    ApprovalExpiredError,
    ApprovalRequested,
    ConfigurationError,
    CreateAgent,
    Deny,
    EventHandler,
    InMemoryConversationStore,
    InvalidDecisionsError,
    Message,
    PendingCall,
    RunEvent,
    RunFailed,
    RunPaused,
    ToolMessage,
    ToolSpec,
    TurnNotPausedError,
    UserMessage,
    client_tool,
    tool,
)
from createagents.testing import FunctionModel, tool_call

ran: list[tuple[str, int]] = []


@tool(requires_approval=lambda args: args["amount"] > 100)
def refund(order: str, amount: int) -> str:
    """Refund an order."""
    ran.append((order, amount))
    return f"refunded {amount} on {order}"


def lookup(order: str) -> str:
    """Look an order up."""
    ran.append((order, 0))
    return f"order {order} is paid"


locate = client_tool("locate", "Where the user is.", {"type": "object", "properties": {"precise": {"type": "boolean"}}})


def script(amount: int = 500) -> Any:
    """lookup, refund(amount) and locate in one response; then an answer quoting every result in order."""

    def answer(messages: list[Message], tools: list[ToolSpec]) -> object:
        last = messages[-1]
        if isinstance(last, UserMessage):
            return [
                tool_call("lookup", order="42"),
                tool_call("refund", order="42", amount=amount),
                tool_call("locate", precise=True),
            ]
        results = []
        for m in reversed(messages):
            if not isinstance(m, ToolMessage):
                break
            results.append(m.content)
        return "done: " + " | ".join(reversed(results))

    return answer


def agent_on(store: Any, *, amount: int = 500, **kw: Any) -> CreateAgent:
    return CreateAgent(provider=FunctionModel(script(amount)), tools=[lookup, refund, locate], store=store, **kw)


@pytest.fixture(autouse=True)
def _clear_ran() -> None:
    ran.clear()


def ids(paused: Any) -> dict[str, str]:
    return {p.name: p.id for p in paused.pending}


async def test_a_call_over_the_limit_pauses_the_turn_and_others_run_at_once() -> None:
    agent = agent_on(InMemoryConversationStore())
    seen: list[str] = []
    agent._observers.append(lambda e: seen.append(e.kind))
    reply = agent.chat("refund order 42")
    kinds = [e.kind async for e in reply.events()]
    assert kinds[-2:] == ["approval_requested", "run_paused"]
    assert "approval_requested" in seen and "run_paused" in seen  # observers see them too
    paused = reply.paused
    assert paused is not None and paused.conversation_id == "default"
    assert [(p.name, p.kind) for p in paused.pending] == [("refund", "approval"), ("locate", "client")]
    assert json.loads(paused.pending[0].arguments) == {"order": "42", "amount": 500}
    assert ran == [("42", 0)]  # lookup ran, refund did not
    assert await agent.history() == []  # nothing of a paused turn is in the history
    assert [p.id for p in await agent.conversation("default").paused()] == [paused.id]
    assert reply.messages == () and reply.pending == paused.pending


async def test_under_the_limit_nothing_pauses() -> None:
    agent = CreateAgent(provider=FunctionModel(script(50)), tools=[lookup, refund, client_tool("locate")])
    agent_without_client = CreateAgent(
        provider=FunctionModel(lambda m, t: [tool_call("refund", order="7", amount=50)] if len(m) == 1 else "ok"),
        tools=[refund],
    )
    text = await agent_without_client.chat("refund order 7")
    assert text.paused is None and text == "ok" and ran == [("7", 50)]
    paused = (await agent.chat("refund order 42")).paused  # only the client tool waits
    assert paused is not None and [p.name for p in paused.pending] == ["locate"]


async def test_approve_deny_and_outputs_resume_the_turn_in_call_order() -> None:
    agent = agent_on(InMemoryConversationStore())
    paused = (await agent.chat("refund order 42")).paused
    assert paused is not None
    calls = ids(paused)
    text = await agent.resume(paused, approvals={calls["refund"]: True}, outputs={calls["locate"]: {"city": "Porto"}})
    assert text == 'done: order 42 is paid | refunded 500 on 42 | {"city": "Porto"}'
    assert ran == [("42", 0), ("42", 500)]  # lookup did not run again; refund ran once
    history = await agent.history()
    assert [m.role for m in history] == ["user", "assistant", "tool", "tool", "tool", "assistant"]
    assert await agent.conversation("default").paused() == []


@pytest.mark.parametrize(
    ("decision", "seen"), [(Deny("too expensive"), "Tool call denied: too expensive"), (False, "Tool call denied.")]
)
async def test_a_denied_call_does_not_run_and_the_model_reads_why(decision: Any, seen: str) -> None:
    agent = agent_on(InMemoryConversationStore())
    paused = (await agent.chat("refund order 42")).paused
    assert paused is not None
    calls = ids(paused)
    reply = agent.resume(paused, approvals={calls["refund"]: decision}, outputs={calls["locate"]: "Lisbon"})
    finished = [e async for e in reply.events() if e.kind == "tool_call_finished"]
    assert reply.text == f"done: order 42 is paid | {seen} | Lisbon"
    assert ran == [("42", 0)]
    assert [e.error for e in finished] == ["ApprovalDenied", None]  # type: ignore[attr-defined]


async def test_a_turn_resumes_once_and_bad_decisions_change_nothing() -> None:
    agent = agent_on(InMemoryConversationStore())
    paused = (await agent.chat("refund order 42")).paused
    assert paused is not None
    calls = ids(paused)
    bad: list[tuple[dict[str, Any], dict[str, Any], str]] = [
        ({calls["refund"]: True}, {}, "has no decision"),
        ({calls["refund"]: True, "call_nope": True}, {calls["locate"]: 1}, "'call_nope' is not a call"),
        ({calls["refund"]: True, calls["locate"]: True}, {}, "is a client tool call"),
        ({}, {calls["refund"]: "x", calls["locate"]: 1}, "needs an approval"),
    ]
    for approvals, outputs, message in bad:
        with pytest.raises(InvalidDecisionsError, match=message):
            await agent.resume(paused, approvals=approvals, outputs=outputs)
    assert [p.id for p in await agent.conversation("default").paused()] == [paused.id]
    assert await agent.history() == [] and ran == [("42", 0)]
    decisions = {"approvals": {calls["refund"]: True}, "outputs": {calls["locate"]: "here"}}
    results = await asyncio.gather(*(agent.resume(paused, **decisions) for _ in range(3)), return_exceptions=True)
    assert sum(isinstance(r, str) for r in results) == 1
    assert sum(isinstance(r, TurnNotPausedError) for r in results) == 2
    assert ran.count(("42", 500)) == 1 and len(await agent.history()) == 6
    with pytest.raises(TurnNotPausedError):
        await agent.resume(paused.id, **decisions)  # type: ignore[arg-type]
    assert len(await agent.history()) == 6


async def test_a_paused_turn_resumes_from_another_agent_on_the_same_sqlite_file(tmp_path: Path) -> None:
    from createagents.adapters.sqlite_store import SQLiteConversationStore

    first = agent_on(SQLiteConversationStore(tmp_path / "chats.db"))
    paused = (await first.conversation("user-7").chat("refund order 42")).paused
    assert paused is not None
    calls = ids(paused)
    await first.aclose()  # the first process is gone
    second = agent_on(SQLiteConversationStore(tmp_path / "chats.db"))
    try:
        waiting = await second.conversation("user-7").paused()
        assert [(p.id, [c.name for c in p.pending]) for p in waiting] == [(paused.id, ["refund", "locate"])]
        text = await second.conversation("user-7").resume(
            paused.id, approvals={calls["refund"]: True}, outputs={calls["locate"]: "Faro"}
        )
        assert text.endswith("refunded 500 on 42 | Faro")
        assert len(await second.conversation("user-7").history()) == 6
    finally:
        await second.aclose()


async def test_other_turns_never_see_a_paused_turn() -> None:
    agent = agent_on(InMemoryConversationStore())
    paused = (await agent.chat("refund order 42")).paused
    assert paused is not None
    other = CreateAgent(provider=FunctionModel(lambda m, t: f"saw {len(m)}"), store=agent.store)
    assert await other.chat("hello") == "saw 1"  # only its own message: the paused turn is not history
    calls = ids(paused)
    await agent.resume(paused, approvals={calls["refund"]: False}, outputs={calls["locate"]: "x"})
    roles = [m.role for m in await agent.history()]
    assert roles == ["user", "assistant", "user", "assistant", "tool", "tool", "tool", "assistant"]


async def test_an_expired_turn_fails_cleanly_and_is_gone() -> None:
    failed: list[RunEvent] = []
    agent = agent_on(InMemoryConversationStore(), approval_timeout=0.05, observers=[failed.append])
    paused = (await agent.chat("refund order 42")).paused
    assert paused is not None
    await asyncio.sleep(0.1)
    calls = ids(paused)
    with pytest.raises(ApprovalExpiredError):
        await agent.resume(paused, approvals={calls["refund"]: True}, outputs={calls["locate"]: "x"})
    assert isinstance(failed[-1], RunFailed) and isinstance(failed[-1].error, ApprovalExpiredError)
    assert await agent.conversation("default").paused() == [] and await agent.history() == []
    assert ran == [("42", 0)]


async def test_an_approver_decides_as_code_and_may_defer_to_a_person() -> None:
    asked: list[PendingCall] = []

    async def approver(call: PendingCall) -> Any:
        asked.append(call)
        amount = json.loads(call.arguments)["amount"]
        return True if amount < 1000 else None

    agent = agent_on(InMemoryConversationStore(), approver=approver)
    paused = (await agent.chat("refund order 42")).paused
    assert paused is not None and [p.name for p in paused.pending] == ["locate"]  # approved by code, ran at once
    assert ran == [("42", 0), ("42", 500)] and [c.name for c in asked] == ["refund"]
    big = agent_on(InMemoryConversationStore(), amount=5000, approver=approver)
    paused = (await big.chat("refund order 42")).paused
    assert paused is not None and [p.name for p in paused.pending] == ["refund", "locate"]  # deferred
    deny = agent_on(InMemoryConversationStore(), approver=lambda call: Deny("policy: no refunds"))
    paused = (await deny.chat("refund")).paused
    assert paused is not None
    text = await deny.resume(paused, outputs={ids(paused)["locate"]: "x"})
    assert "Tool call denied: policy: no refunds" in text


async def test_a_broken_approver_or_rule_leaves_the_call_to_a_person() -> None:
    def broken(call: PendingCall) -> Any:
        raise RuntimeError("policy service down")

    agent = agent_on(InMemoryConversationStore(), approver=broken)
    paused = (await agent.chat("refund")).paused
    assert paused is not None and [p.name for p in paused.pending] == ["refund", "locate"]

    @tool(requires_approval=lambda args: 1 / 0)
    def wire(amount: int) -> str:
        """Wire money."""
        return "sent"

    model = FunctionModel(lambda m, t: [tool_call("wire", amount=1)] if isinstance(m[-1], UserMessage) else "ok")
    paused = (await CreateAgent(provider=model, tools=[wire]).chat("pay")).paused
    assert paused is not None and [p.name for p in paused.pending] == ["wire"]


async def test_agent_wide_policy_and_handlers() -> None:
    events: list[str] = []

    class Handler(EventHandler):
        def on_approval_requested(self, event: ApprovalRequested) -> None:
            events.append(f"approve {event.call.name} in {event.turn_id}")

        def on_run_paused(self, event: RunPaused) -> None:
            events.append(f"paused {len(event.paused.pending)}")

    agent = CreateAgent(provider=FunctionModel(script(5)), tools=[lookup, refund, locate], require_approval=["lookup"])
    reply = agent.chat("refund", handler=Handler())
    await reply
    assert reply.paused is not None and [p.name for p in reply.pending] == ["lookup", "locate"]
    assert events == [f"approve lookup in {reply.paused.id}", "paused 2"]
    everything = CreateAgent(provider=FunctionModel(script(5)), tools=[lookup, refund], require_approval=True)
    paused = (await everything.chat("refund")).paused
    assert paused is not None and [p.name for p in paused.pending] == ["lookup", "refund"]


def test_bad_arguments_are_refused_at_once() -> None:
    with pytest.raises(ConfigurationError, match="not tools of this agent"):
        CreateAgent(provider="test", tools=[lookup], require_approval=["nope"])
    with pytest.raises(ConfigurationError, match="requires_approval"):
        tool(requires_approval="yes")(lookup)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="approval_timeout"):
        CreateAgent(provider="test", approval_timeout=0)
    with pytest.raises(ConfigurationError, match="approver"):
        CreateAgent(provider="test", approver="me")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="client tool name"):
        client_tool("bad name")
    with pytest.raises(ConfigurationError, match="JSON schema object"):
        client_tool("x", "", {"type": "string"})
    with pytest.raises(ConfigurationError, match="unique"):
        CreateAgent(provider="test", tools=[lookup, client_tool("lookup")])
    agent = CreateAgent(provider="test")
    with pytest.raises(ConfigurationError, match="approvals"):
        agent.resume("turn_x", approvals={"call_1": "yes"})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match="approvals must be a dict"):
        agent.resume("turn_x", approvals=[("call_1", True)])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="ToolMessage"):
        agent.ask(None)


async def test_a_stateless_turn_carries_its_state_and_history() -> None:
    agent = agent_on(InMemoryConversationStore())
    earlier = [UserMessage(content="I am Ana")]
    reply = agent.ask("refund order 42", history=earlier)
    await reply
    paused = reply.paused
    assert paused is not None and paused.conversation_id is None and paused.state is not None
    assert await agent.store.list_ids() == []  # stateless: nothing stored
    json.dumps(paused.state)  # JSON-ready, for the caller to keep
    calls = ids(paused)
    resumed = agent.resume(paused, approvals={calls["refund"]: True}, outputs={calls["locate"]: "x"})
    await resumed
    assert resumed.messages[0] == UserMessage(content="refund order 42")
    model = agent._model
    assert isinstance(model, FunctionModel) and model.requests[-1].messages[0] == earlier[0]


async def test_per_call_client_tools_and_settings_survive_the_pause() -> None:
    model = FunctionModel(
        lambda m, t: [tool_call("ask_user", q="size?")] if isinstance(m[-1], UserMessage) else "thanks"
    )
    agent = CreateAgent(provider=model, config={"temperature": 0.5})
    ask_user = client_tool("ask_user", "Ask the user.", {"type": "object", "properties": {"q": {"type": "string"}}})
    reply = agent.conversation("c").chat("buy a shirt", client_tools=[ask_user], config={"temperature": 0.1})
    paused = (await reply).paused
    assert paused is not None and paused.pending[0].kind == "client"
    other = CreateAgent(provider=model, store=agent.store, config={"temperature": 0.9})
    assert await other.resume(paused, outputs={paused.pending[0].id: "M"}) == "thanks"
    assert [t.name for t in model.requests[-1].tools] == ["ask_user"]  # the model still knows the tool
    assert model.requests[-1].settings.temperature == 0.1


async def test_the_turn_counts_its_model_calls_across_the_pause() -> None:
    model = FunctionModel(lambda m, t: [tool_call("refund", order="1", amount=500)])  # never answers
    agent = CreateAgent(provider=model, tools=[refund], max_turns=2)
    paused = (await agent.chat("loop")).paused
    assert paused is not None
    from createagents import MaxTurnsExceededError

    again = (await agent.resume(paused, approvals={paused.pending[0].id: True})).paused
    assert again is not None and again.id != paused.id  # paused again, in its second model call
    with pytest.raises(MaxTurnsExceededError):
        await agent.resume(again, approvals={again.pending[0].id: True})
    assert len(model.requests) == 2 and len(ran) == 2 and await agent.history() == []

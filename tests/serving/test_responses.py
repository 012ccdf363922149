"""The Responses API: event sequence, snapshots under previous_response_id, named conversations, GET / DELETE."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from createagents import AssistantMessage, CreateAgent, SystemMessage, UserMessage
from createagents.testing import FunctionModel

from .conftest import running

EVENT_ORDER_HEAD = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
]
EVENT_ORDER_TAIL = [
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


def echo_history() -> tuple[FunctionModel, list[list[Any]]]:
    """A model that answers with what it was told the user said, in order, and records what it saw."""
    seen: list[list[Any]] = []

    def model(messages: list[Any], tools: list[Any]) -> str:
        seen.append(list(messages))
        return " | ".join(m.content for m in messages if isinstance(m, UserMessage))

    return FunctionModel(model), seen


async def test_a_streamed_response_sends_the_official_event_sequence() -> None:
    agent = CreateAgent(provider="test")
    async with running(agent) as server, server.client() as client:
        stream = await client.responses.create(model="default", input="alpha beta gamma", stream=True)
        events = [e async for e in stream]
        stored = await client.responses.retrieve(events[-1].response.id)  # type: ignore[union-attr]
    types = [e.type for e in events]
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert types == EVENT_ORDER_HEAD + ["response.output_text.delta"] * len(deltas) + EVENT_ORDER_TAIL
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(d.delta for d in deltas)  # type: ignore[union-attr]
    assert text == "You said: alpha beta gamma" and len(deltas) == 5
    created, completed = events[0].response, events[-1].response  # type: ignore[union-attr]
    assert created.status == "in_progress" and created.output == [] and created.id == completed.id
    assert completed.status == "completed" and completed.output_text == text
    assert completed.usage is not None and completed.usage.output_tokens == 5
    item_id = completed.output[0].id
    assert {getattr(e, "item_id", item_id) for e in events} == {item_id}
    assert events[-4].text == text  # type: ignore[union-attr]
    assert stored.id == completed.id and stored.status == "completed" and stored.output_text == text


async def test_previous_response_id_continues_from_an_immutable_snapshot_many_can_branch_from() -> None:
    model, seen = echo_history()
    agent = CreateAgent(provider=model, instructions="Agent rules.")
    async with running(agent) as server, server.client() as client:
        first = await client.responses.create(model="default", input="my name is Ana", instructions="Be brief.")
        assert first.output_text == "my name is Ana"
        second = await client.responses.create(model="default", input="what is my name?", previous_response_id=first.id)
        # the second request saw the first turn, and not the first request's instructions (OpenAI's rule)
        assert seen[1] == [
            SystemMessage(content="Agent rules."),
            UserMessage(content="my name is Ana"),
            AssistantMessage(content="my name is Ana"),
            UserMessage(content="what is my name?"),
        ]
        assert seen[0][:2] == [SystemMessage(content="Agent rules."), SystemMessage(content="Be brief.")]
        assert second.output_text == "my name is Ana | what is my name?"
        assert second.previous_response_id == first.id
        # branching twice from the first response: two independent snapshots
        left = await client.responses.create(model="default", input="left", previous_response_id=first.id)
        right = await client.responses.create(model="default", input="right", previous_response_id=first.id)
        assert left.output_text == "my name is Ana | left" and right.output_text == "my name is Ana | right"
        after_right = await client.responses.create(model="default", input="end", previous_response_id=right.id)
        assert after_right.output_text == "my name is Ana | right | end"
        # the first snapshot is unchanged by everything built on it
        assert [m.content for m in await agent.store.load(f"resp:{first.id}")] == ["my name is Ana"] * 2
        assert [m.content for m in await agent.store.load(f"resp:{left.id}")] == [
            "my name is Ana",
            "my name is Ana",
            "left",
            "my name is Ana | left",
        ]


async def test_a_streamed_response_is_stored_before_it_completes_and_can_be_continued() -> None:
    model, _ = echo_history()
    agent = CreateAgent(provider=model)
    async with running(agent) as server, server.client() as client:
        stream = await client.responses.create(model="default", input="first words", stream=True)
        response_id = None
        async for event in stream:
            if event.type == "response.completed":
                response_id = event.response.id
                assert await agent.store.load(f"resp:{response_id}")  # saved before the client sees completed
        assert response_id is not None
        follow = await client.responses.create(model="default", input="more", previous_response_id=response_id)
    assert follow.output_text == "first words | more"


async def test_a_list_input_with_messages_and_function_items_maps_to_domain_messages() -> None:
    model, seen = echo_history()
    agent = CreateAgent(provider=model)
    async with running(agent) as server, server.client() as client:
        await client.responses.create(
            model="default",
            input=[
                {"role": "developer", "content": "Dev note."},
                {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
                {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
                {"role": "assistant", "content": [{"type": "output_text", "text": "Sunny."}]},
                {"type": "message", "role": "user", "content": "Thanks"},
            ],
        )
    roles = [(type(m).__name__, getattr(m, "content", "")) for m in seen[0]]
    assert roles == [
        ("SystemMessage", "Dev note."),
        ("UserMessage", "Weather?"),
        ("AssistantMessage", ""),
        ("ToolMessage", "sunny"),
        ("AssistantMessage", "Sunny."),
        ("UserMessage", "Thanks"),
    ]
    assert seen[0][2].tool_calls[0].name == "weather" and seen[0][3].name == "weather"


async def test_a_named_conversation_appends_turns_to_its_head() -> None:
    model, _ = echo_history()
    agent = CreateAgent(provider=model)
    async with running(agent) as server, server.client() as client:
        await client.responses.create(model="default", input="one", conversation="user-42")
        second = await client.responses.create(model="default", input="two", conversation={"id": "user-42"})
        assert second.output_text == "one | two"
        assert second.conversation is not None and second.conversation.id == "user-42"
        history = await agent.conversation("user-42").history()
        assert [m.content for m in history] == ["one", "one", "two", "one | two"]
        with pytest.raises(openai.BadRequestError) as e:
            await client.responses.create(model="default", input="x", conversation=f"resp:{second.id}")
        assert e.value.body["param"] == "conversation"  # type: ignore[index]
        assert [m.content for m in await agent.store.load(f"resp:{second.id}")] == ["one", "one", "two", "one | two"]


async def test_get_delete_and_unknown_ids() -> None:
    agent = CreateAgent(provider="test")
    async with running(agent) as server, server.client() as client:
        response = await client.responses.create(model="default", input="keep me", metadata={"k": "v"})
        got = await client.responses.retrieve(response.id)
        assert got.model_dump() == response.model_dump() and got.metadata == {"k": "v"}
        await client.responses.delete(response.id)
        with pytest.raises(openai.NotFoundError) as e:
            await client.responses.retrieve(response.id)
        assert e.value.body["message"] == f"No response found with id '{response.id}'."  # type: ignore[index]
        with pytest.raises(openai.NotFoundError):
            await client.responses.delete(response.id)
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve("resp_nope")
        with pytest.raises(openai.BadRequestError) as bad:
            await client.responses.create(model="default", input="x", previous_response_id=response.id)
        assert bad.value.body["code"] == "previous_response_not_found"  # type: ignore[index]
        assert await agent.conversations() == []


async def test_store_false_keeps_nothing() -> None:
    agent = CreateAgent(provider="test")
    async with running(agent) as server, server.client() as client:
        response = await client.responses.create(model="default", input="forget me", store=False)
        assert response.output_text == "You said: forget me"
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(response.id)
    assert await agent.conversations() == []


async def test_a_record_lost_still_leaves_the_snapshot_retrievable() -> None:
    agent = CreateAgent(provider="test")
    async with running(agent) as server, server.client() as client:
        response = await client.responses.create(model="default", input="hello")
        await agent.store.delete(f"resp:{response.id}:meta")
        got = await client.responses.retrieve(response.id)
    assert got.status == "completed" and got.output_text == "You said: hello" and got.model == "default"

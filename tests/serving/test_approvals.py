"""Approvals over the Responses API, through the openai SDK: `mcp_approval_request` out, `mcp_approval_response` in.

The scripted model answers a user message with tool calls and, once it has
tool results, with those results in order, so each test sees exactly what
the model read (an approved call's output, a refusal's reason).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from createagents import CreateAgent, ToolMessage, Usage, UserMessage, tool
from createagents.domain.events import ResponseDone, ToolCallReady
from createagents.testing import FunctionModel

from .conftest import OTHER_KEY, Bench, call, running

WHERE: Any = {
    "type": "function",
    "name": "where",
    "description": "The user's city, from the browser.",
    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
    "strict": False,
}


def approve(request_id: str, approve: bool = True, reason: str | None = None) -> Any:
    item: dict[str, Any] = {"type": "mcp_approval_response", "approval_request_id": request_id, "approve": approve}
    if reason is not None:
        item["reason"] = reason
    return item


async def test_an_approved_call_runs_once_approved_and_the_model_reads_its_result() -> None:
    bench = Bench([call("c1", "delete_file", path="/tmp/x")], text="Let me delete it.")
    async with running(bench.agent) as server, server.client() as client:
        paused = await client.responses.create(model="default", input="delete /tmp/x")
        assert paused.status == "completed" and bench.ran == []
        message, request = paused.output
        assert message.type == "message" and paused.output_text == "Let me delete it."
        assert request.type == "mcp_approval_request"
        assert (request.id, request.name, request.server_label) == ("mcpr_c1", "delete_file", "createagents")
        assert json.loads(request.arguments) == {"path": "/tmp/x"}
        assert (await client.responses.retrieve(paused.id)).output[1].id == "mcpr_c1"

        done = await client.responses.create(
            model="default", previous_response_id=paused.id, input=[approve(request.id)]
        )
        assert bench.ran == ["delete /tmp/x"]
        assert done.output_text == "results: deleted /tmp/x"  # only what this response said
        assert [o.type for o in done.output] == ["message"] and done.previous_response_id == paused.id
        # the turn is whole in the new snapshot, and the next request builds on it
        snapshot = await bench.agent.store.load(f"resp:{done.id}")
        assert [type(m).__name__ for m in snapshot] == [
            "UserMessage",
            "AssistantMessage",
            "ToolMessage",
            "AssistantMessage",
        ]
        assert snapshot[0] == UserMessage(content="delete /tmp/x") and snapshot[2].content == "deleted /tmp/x"
        await client.responses.create(model="default", previous_response_id=done.id, input="thanks")
    assert bench.seen[-1] == [*snapshot, UserMessage(content="thanks")]


async def test_a_denied_call_does_not_run_and_the_model_reads_the_reason() -> None:
    bench = Bench([call("c1", "delete_file", path="/etc")])
    async with running(bench.agent) as server, server.client() as client:
        paused = await client.responses.create(model="default", input="delete /etc")
        assert [o.type for o in paused.output] == ["mcp_approval_request"]  # no text: no message item
        done = await client.responses.create(
            model="default",
            previous_response_id=paused.id,
            input=[approve("mcpr_c1", approve=False, reason="not on a Friday")],
        )
    assert bench.ran == []
    assert done.output_text == "results: Tool call denied: not on a Friday"


async def test_a_mixed_model_response_runs_the_auto_call_and_waits_for_the_rest_in_call_order() -> None:
    calls = [call("c1", "add", a=1, b=2), call("c2", "delete_file", path="/x"), call("c3", "where", q="city")]
    bench = Bench(calls)
    async with running(bench.agent) as server, server.client() as client:
        paused = await client.responses.create(model="default", input="go", tools=[WHERE])
        assert bench.ran == ["add"]  # ran at once: it needs nothing
        approval, function_call = paused.output
        assert approval.type == "mcp_approval_request" and approval.id == "mcpr_c2"
        assert function_call.type == "function_call"
        assert (function_call.call_id, function_call.name, function_call.id) == ("c3", "where", "fc_c3")
        assert json.loads(function_call.arguments) == {"q": "city"} and function_call.status == "completed"
        assert [t.name for t in paused.tools] == ["where"]  # type: ignore[union-attr]
        # the model was offered the client's tool beside the agent's own
        assert {s.name for s in bench.agent._model.requests[0].tools} == {"add", "delete_file", "where"}  # type: ignore[attr-defined]
        done = await client.responses.create(
            model="default",
            previous_response_id=paused.id,
            input=[
                {"type": "function_call_output", "call_id": "c3", "output": "Lisbon"},
                approve("mcpr_c2"),
            ],
        )
    assert bench.ran == ["add", "delete /x"]
    assert done.output_text == "results: 3 | deleted /x | Lisbon"
    assert [m.tool_call_id for m in bench.seen[-1] if isinstance(m, ToolMessage)] == ["c1", "c2", "c3"]


async def test_resuming_twice_is_refused_and_changes_nothing() -> None:
    bench = Bench([call("c1", "delete_file", path="/x")])
    async with running(bench.agent) as server, server.client() as client:
        paused = await client.responses.create(model="default", input="delete /x")
        first = await client.responses.create(
            model="default", previous_response_id=paused.id, input=[approve("mcpr_c1")]
        )
        ids = await bench.agent.conversations()
        snapshot = await bench.agent.store.load(f"resp:{first.id}")
        with pytest.raises(openai.ConflictError) as e:
            await client.responses.create(model="default", previous_response_id=paused.id, input=[approve("mcpr_c1")])
        assert e.value.body["code"] == "response_already_resumed"  # type: ignore[index]
        assert bench.ran == ["delete /x"]
        assert await bench.agent.conversations() == ids
        assert await bench.agent.store.load(f"resp:{first.id}") == snapshot
        # two requests at once: exactly one resumes the turn
        again = await client.responses.create(model="default", input="delete /x")
        results = await asyncio.gather(
            *(
                client.responses.create(model="default", previous_response_id=again.id, input=[approve("mcpr_c1")])
                for _ in range(3)
            ),
            return_exceptions=True,
        )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, openai.ConflictError) for r in results if isinstance(r, Exception))
    assert bench.ran == ["delete /x", "delete /x"]


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ([approve("mcpr_nope")], "mcpr_nope is not an approval request"),
        ([approve("mcpr_c1")], "c2 ("),  # the approval alone: the client call has no answer
        (
            [approve("mcpr_c0"), approve("mcpr_c1"), {"type": "function_call_output", "call_id": "c2", "output": "x"}],
            "mcpr_c0",
        ),
        ([approve("mcpr_c2"), approve("mcpr_c1")], "is a function_call"),
        (
            [{"type": "function_call_output", "call_id": "c1", "output": "x"}, approve("mcpr_c2")],
            "needs an mcp_approval",
        ),
    ],
    ids=[
        "unknown-id",
        "missing-answer",
        "approval-for-an-auto-call",
        "approval-for-a-client-call",
        "output-for-approval",
    ],
)
async def test_answers_that_do_not_fit_the_pause_are_400_and_change_nothing(answers: list[Any], expected: str) -> None:
    bench = Bench([call("c0", "add", a=1, b=1), call("c1", "delete_file", path="/x"), call("c2", "where", q="?")])
    async with running(bench.agent) as server, server.client() as client:
        paused = await client.responses.create(model="default", input="go", tools=[WHERE])
        with pytest.raises(openai.BadRequestError) as e:
            await client.responses.create(model="default", previous_response_id=paused.id, input=answers)
        body: Any = e.value.body
        assert (body["param"], body["code"]) == ("input", "invalid_value")
        assert expected in body["message"]
        assert "It waits for: mcpr_c1 (delete_file: an mcp_approval_response), c2 (where" in body["message"]
        assert bench.ran == ["add"] and len(bench.seen) == 1  # nothing ran, the model was not called
        done = await client.responses.create(  # the pause is intact
            model="default",
            previous_response_id=paused.id,
            input=[approve("mcpr_c1", False), {"type": "function_call_output", "call_id": "c2", "output": "Porto"}],
        )
    assert done.output_text == "results: 2 | Tool call denied. | Porto"


async def test_a_waiting_response_continued_with_a_message_is_400_naming_what_it_waits_for() -> None:
    bench = Bench([call("c1", "delete_file", path="/x")])
    async with running(bench.agent) as server, server.client() as client:
        paused = await client.responses.create(model="default", input="delete /x")
        with pytest.raises(openai.BadRequestError) as e:
            await client.responses.create(model="default", previous_response_id=paused.id, input="never mind")
        assert "mcpr_c1 (delete_file: an mcp_approval_response)" in e.value.body["message"]  # type: ignore[index]
        with pytest.raises(openai.BadRequestError) as mixed:
            await client.responses.create(
                model="default",
                previous_response_id=paused.id,
                input=[approve("mcpr_c1"), {"role": "user", "content": "and then?"}],
            )
        assert mixed.value.body["param"] == "input"  # type: ignore[index]
    assert bench.ran == [] and len(bench.seen) == 1


async def test_answers_without_a_paused_response_are_400() -> None:
    bench = Bench([])
    async with running(bench.agent) as server, server.client() as client:
        with pytest.raises(openai.BadRequestError) as alone:
            await client.responses.create(model="default", input=[approve("mcpr_c1")])
        assert alone.value.body["param"] == "input[0]"  # type: ignore[index]
        finished = await client.responses.create(model="default", input="hello")
        with pytest.raises(openai.BadRequestError) as not_paused:
            await client.responses.create(model="default", previous_response_id=finished.id, input=[approve("mcpr_c1")])
        assert "does not wait" in not_paused.value.body["message"]  # type: ignore[index]
        with pytest.raises(openai.BadRequestError) as output:
            await client.responses.create(
                model="default", input=[{"type": "function_call_output", "call_id": "c9", "output": "x"}]
            )
        assert output.value.body["param"] == "input[0].call_id"  # type: ignore[index]


async def test_only_the_key_that_created_a_response_sees_or_continues_it() -> None:
    bench = Bench([call("c1", "delete_file", path="/x")])
    async with running(bench.agent) as server, server.client() as owner, server.client(OTHER_KEY) as other:
        paused = await owner.responses.create(model="default", input="delete /x")
        with pytest.raises(openai.NotFoundError):
            await other.responses.retrieve(paused.id)
        with pytest.raises(openai.NotFoundError):
            await other.responses.delete(paused.id)
        with pytest.raises(openai.BadRequestError) as e:  # exactly what an unknown id gets
            await other.responses.create(model="default", previous_response_id=paused.id, input=[approve("mcpr_c1")])
        assert e.value.body["code"] == "previous_response_not_found"  # type: ignore[index]
        assert bench.ran == []
        done = await owner.responses.create(model="default", previous_response_id=paused.id, input=[approve("mcpr_c1")])
        with pytest.raises(openai.BadRequestError):
            await other.responses.create(model="default", previous_response_id=done.id, input="more")
        assert (await owner.responses.retrieve(done.id)).output_text == "results: deleted /x"
        await owner.responses.delete(done.id)
    assert bench.ran == ["delete /x"]


async def test_an_approval_past_its_timeout_is_refused() -> None:
    bench = Bench([call("c1", "delete_file", path="/x")], approval_timeout=0.05)
    async with running(bench.agent) as server, server.client() as client:
        paused = await client.responses.create(model="default", input="delete /x")
        await asyncio.sleep(0.1)
        with pytest.raises(openai.BadRequestError) as e:
            await client.responses.create(model="default", previous_response_id=paused.id, input=[approve("mcpr_c1")])
        assert e.value.body["code"] == "approval_expired"  # type: ignore[index]
        assert await bench.agent.store.load_paused(f"resp:{paused.id}", "turn") is None  # removed
    assert bench.ran == []


async def test_streamed_approval_and_function_call_items_have_their_events_and_indexes() -> None:
    calls = [call("c1", "add", a=1, b=2), call("c2", "delete_file", path="/x"), call("c3", "where", q="city")]
    bench = Bench(calls, text="On it.")
    async with running(bench.agent) as server, server.client() as client:
        raw = [e async for e in await client.responses.create(model="default", input="go", tools=[WHERE], stream=True)]
        async with client.responses.stream(model="default", input="go", tools=[WHERE]) as stream:
            helped = [e.type async for e in stream]
            final = await stream.get_final_response()
    types = [e.type for e in raw]
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * types.count("response.output_text.delta"),
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",  # the approval request
        "response.output_item.done",
        "response.output_item.added",  # the function call
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in raw] == list(range(len(raw)))
    items = [(e.output_index, e.item.type) for e in raw if e.type == "response.output_item.done"]  # type: ignore[union-attr]
    assert items == [(0, "message"), (1, "mcp_approval_request"), (2, "function_call")]
    arguments = next(e for e in raw if e.type == "response.function_call_arguments.done")
    assert (arguments.item_id, arguments.output_index, json.loads(arguments.arguments)) == ("fc_c3", 2, {"q": "city"})  # type: ignore[union-attr]
    completed = raw[-1].response  # type: ignore[union-attr]
    assert [o.type for o in completed.output] == ["message", "mcp_approval_request", "function_call"]
    assert completed.output_text == "On it." and completed.output[1].id == "mcpr_c2"
    # the SDK's own accumulator agrees with the final object
    assert helped == types and [o.type for o in final.output] == ["message", "mcp_approval_request", "function_call"]


async def test_a_streamed_resume_sends_only_the_new_text() -> None:
    bench = Bench([call("c1", "delete_file", path="/x")], text="Checking.")
    async with running(bench.agent) as server, server.client() as client:
        paused = await client.responses.create(model="default", input="delete /x", stream=True)
        paused_id = [e async for e in paused][-1].response.id  # type: ignore[union-attr]
        stream = await client.responses.create(
            model="default", previous_response_id=paused_id, input=[approve("mcpr_c1")], stream=True
        )
        events = [e async for e in stream]
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")  # type: ignore[union-attr]
    assert deltas == "results: deleted /x" == events[-1].response.output_text  # type: ignore[union-attr]


async def test_a_named_conversation_pauses_in_its_store_and_resumes_with_the_conversation() -> None:
    bench = Bench([call("c1", "delete_file", path="/x")])
    async with running(bench.agent) as server, server.client() as client:
        paused = await client.responses.create(model="default", input="delete /x", conversation="ops")
        assert [o.type for o in paused.output] == ["mcp_approval_request"]
        assert await bench.agent.conversation("ops").history() == []  # the turn is not in the history yet
        assert [p.pending[0].id for p in await bench.agent.conversation("ops").paused()] == ["c1"]
        with pytest.raises(openai.BadRequestError):
            await client.responses.create(model="default", conversation="ops", input=[approve("mcpr_zz")])
        done = await client.responses.create(model="default", conversation="ops", input=[approve("mcpr_c1")])
        assert done.output_text == "results: deleted /x"
        history = await bench.agent.conversation("ops").history()
        assert [type(m).__name__ for m in history] == [
            "UserMessage",
            "AssistantMessage",
            "ToolMessage",
            "AssistantMessage",
        ]
        assert await bench.agent.conversation("ops").paused() == []
        with pytest.raises(openai.BadRequestError) as again:  # nothing waits there any more
            await client.responses.create(model="default", conversation="ops", input=[approve("mcpr_c1")])
        assert "waits for: nothing" in again.value.body["message"]  # type: ignore[index]
    assert bench.ran == ["delete /x"]


async def test_a_resumed_turn_that_pauses_again_is_answered_from_the_new_response() -> None:
    async def script(messages: list[Any], tools: list[Any]) -> AsyncIterator[Any]:
        """One approval per round, twice; each model call costs 10 + 1 tokens."""
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if len(results) < 2:
            yield f"step {len(results)}."
            yield ToolCallReady(call=call(f"c{len(results)}", "delete_file", path=f"/{len(results)}"))
        else:
            yield "results: " + " | ".join(m.content for m in results)
        yield ResponseDone(finish_reason="stop", usage=Usage(prompt_tokens=10, completion_tokens=1))

    ran: list[str] = []

    @tool(requires_approval=True)
    def delete_file(path: str) -> str:
        """Delete a file."""
        ran.append(path)
        return f"deleted {path}"

    agent = CreateAgent(provider=FunctionModel(script), tools=[delete_file])
    async with running(agent) as server, server.client() as client:
        first = await client.responses.create(model="default", input="clean up")
        second = await client.responses.create(
            model="default", previous_response_id=first.id, input=[approve("mcpr_c0")]
        )
        assert second.output_text == "step 1." and [o.type for o in second.output] == [
            "message",
            "mcp_approval_request",
        ]
        assert second.output[1].id == "mcpr_c1" and ran == ["/0"]
        third = await client.responses.create(
            model="default", previous_response_id=second.id, input=[approve("mcpr_c1")]
        )
        snapshot = await agent.store.load(f"resp:{third.id}")
    assert third.output_text == "results: deleted /0 | deleted /1" and ran == ["/0", "/1"]
    for response in (first, second, third):  # each response counts its own model call, not the turn's so far
        assert response.usage is not None
        assert (response.usage.input_tokens, response.usage.output_tokens) == (10, 1)
    kinds = ["UserMessage", "AssistantMessage", "ToolMessage", "AssistantMessage", "ToolMessage", "AssistantMessage"]
    assert [type(m).__name__ for m in snapshot] == kinds

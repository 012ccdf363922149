"""The facade: construction, conversations, lifecycle, the blocking API, the demo."""

from __future__ import annotations

import asyncio
import inspect
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from createagents import (
    AgentClosedError,
    ChatModel,
    ChatRequest,
    ConfigurationError,
    CreateAgent,
    Message,
    ModelEvent,
    ResponseDone,
    RunLimits,
    TextDelta,
    ToolMessage,
    ToolSpec,
    UserMessage,
)
from createagents.domain.errors import ProviderUnavailableError
from createagents.domain.history import trim_history
from createagents.domain.messages import AssistantMessage
from createagents.testing import FunctionModel, tool_call


def test_the_first_arguments_keep_createagents_03s_order_and_the_rest_are_keyword_only() -> None:
    parameters = list(inspect.signature(CreateAgent).parameters.values())
    first = ["provider", "model", "name", "instructions", "config", "tools", "history_max_size"]
    assert [p.name for p in parameters[:7]] == first
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in parameters[:7])
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters[7:])
    with pytest.raises(TypeError, match="positional"):
        CreateAgent("test", "m", "Bot", "Be brief.", None, None, 10, "http://x")  # type: ignore[misc]
    agent = CreateAgent("test", "m", "Bot", "You are concise.", {"temperature": 0.1}, ["currentdate"], 4)
    assert (agent.name, agent.instructions, agent.settings.temperature) == ("Bot", "You are concise.", 0.1)
    assert [t.name for t in agent.tools] == ["currentdate"] and agent.limits.history_max_size == 4
    assert repr(agent).startswith("CreateAgent(name='Bot', provider='test'")


def test_without_a_provider_is_a_clear_error_naming_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREATEAGENTS_PROVIDER", raising=False)
    monkeypatch.setenv("CREATEAGENTS_MODEL", "ignored")  # the model alone chooses nothing
    with pytest.raises(ConfigurationError) as e:
        CreateAgent(model="gpt-4o-mini")
    message = str(e.value)
    assert 'provider="openai" | "azure" | "ollama" | "test"' in message
    assert "ChatModel" in message and "CREATEAGENTS_PROVIDER" in message


def test_the_environment_names_the_provider_and_model_when_none_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREATEAGENTS_PROVIDER", "test")
    monkeypatch.setenv("CREATEAGENTS_MODEL", "m-from-env")
    agent = CreateAgent()
    assert (agent.provider, agent.model) == ("test", "m-from-env")
    assert agent.chat_sync("hi") == "You said: hi"  # the test model, not an error
    agent.close()
    assert CreateAgent(model="m-given").model == "m-given"  # an explicit model wins
    model = FunctionModel(lambda messages, tools: "ok")
    assert CreateAgent(provider=model).model == "test"  # an explicit provider ignores both variables
    monkeypatch.setenv("CREATEAGENTS_PROVIDER", "ollama")
    monkeypatch.delenv("CREATEAGENTS_MODEL")
    with pytest.raises(ConfigurationError, match="provider 'ollama' needs a model"):
        CreateAgent()


def test_limits_are_checked_once_and_kept_as_a_value_object() -> None:
    agent = CreateAgent(provider="test", max_turns=3, tool_timeout=2, timeout=30, history_max_size=50)
    assert agent.limits == RunLimits(max_turns=3, tool_timeout=2.0, timeout=30.0, history_max_size=50)
    assert CreateAgent(provider="test").limits == RunLimits()
    assert isinstance(agent.limits.tool_timeout, float) and isinstance(agent.limits.timeout, float)
    with pytest.raises(ConfigurationError, match="max_retries must be a whole number >= 0, got True"):
        CreateAgent(provider="test", max_retries=True)
    with pytest.raises(ConfigurationError, match="max_turns must be a finite number greater than 0, got True"):
        CreateAgent(provider="test", max_turns=True)


def test_unknown_provider_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError) as e:
        CreateAgent(provider="openia", model="x")
    assert "'openia'" in str(e.value) and "test" in str(e.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"config": {"temperature": 3}}, "temperature"),
        ({"config": {"colour": 1}}, "unknown setting 'colour'"),
        ({"max_turns": 0}, "max_turns"),
        ({"tool_timeout": -1}, "tool_timeout"),
        ({"history_max_size": 0}, "history_max_size"),
        ({"tools": "currentdate"}, "list"),
        ({"tools": ["nosuchtool"]}, "unknown built-in tool 'nosuchtool'; built-in tools: currentdate"),
        ({"instructions": 42}, "instructions"),
        ({"provider": 3}, "provider must be"),
        ({"observers": [42]}, "observers"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        CreateAgent(**{"provider": "test", **kwargs})  # type: ignore[arg-type]


async def test_bad_message_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="message must be a str"):
        CreateAgent(provider="test").chat(42)  # type: ignore[arg-type]


async def test_an_adapter_object_is_a_provider() -> None:
    class Echo(ChatModel):
        provider = "echo"

        async def stream(self, request: ChatRequest) -> AsyncIterator[ModelEvent]:
            assert request.settings.temperature == 0.5
            yield TextDelta(str(request.messages[-1].content).upper())
            yield ResponseDone(finish_reason="stop")

    agent = CreateAgent(provider=Echo(), model="e1", config={"temperature": 0.5})
    assert (agent.provider, agent.model) == ("echo", "e1")
    assert await agent.chat("hey") == "HEY"


async def test_currentdate_builtin_tool_by_name() -> None:
    def script(messages: list[Message], tools: list[ToolSpec]) -> object:
        if isinstance(messages[-1], UserMessage):
            return [
                tool_call("currentdate", timezone="Europe/Lisbon"),
                tool_call("currentdate", timezone="Mars/Base"),
            ]
        return " || ".join(m.content for m in messages if isinstance(m, ToolMessage))

    agent = CreateAgent(provider=FunctionModel(script), tools=["currentdate"])
    ok, bad = (await agent.chat("time?")).split(" || ")
    assert "(Europe/Lisbon)" in ok and ("+00:00" in ok or "+01:00" in ok)
    assert "unknown time zone 'Mars/Base'" in bad


async def test_conversations_are_independent_and_history_max_size_bounds_what_is_sent() -> None:
    model = FunctionModel(lambda messages, tools: f"You said: {messages[-1].content}")
    agent = CreateAgent(provider=model, history_max_size=4)
    a, b = agent.conversation("a"), agent.conversation("b")
    assert agent.conversation("a") is a
    for text in ("one", "two", "three", "four"):
        await a.chat(text)
    await b.chat("bee")
    sent = [m.content for m in model.requests[3].messages]  # a's fourth turn: six messages before it
    assert sent == ["two", "You said: two", "three", "You said: three", "four"]
    assert [m.content for m in model.requests[4].messages] == ["bee"]  # b sees nothing of a
    assert len(await a.history()) == 8
    assert [m.content for m in await b.history()] == ["bee", "You said: bee"]
    await a.clear_history()
    assert await a.history() == [] and len(await b.history()) == 2


def test_trim_never_orphans_a_tool_result() -> None:
    call = tool_call("add", a=1)
    turn1 = [
        UserMessage(content="1"),
        AssistantMessage(tool_calls=(call,)),
        ToolMessage(tool_call_id=call.id, name="add", content="2"),
        AssistantMessage(content="2"),
    ]
    turn2 = [UserMessage(content="2"), AssistantMessage(content="ok")]
    assert trim_history(turn1 + turn2, 3) == turn2
    assert trim_history(turn1 + turn2, 6) == turn1 + turn2
    assert trim_history(turn1, 2) == turn1  # the last turn is kept whole


async def test_turns_on_one_conversation_run_concurrently_and_append_whole_turns() -> None:
    all_here = asyncio.Barrier(4)
    seen: dict[str, int] = {}

    async def model(messages: list[Message], tools: list[ToolSpec]) -> AsyncIterator[object]:
        seen[str(messages[-1].content)] = len(messages)
        if len(seen) <= 4:
            await asyncio.wait_for(all_here.wait(), 5)  # only passes if the four turns run at once
        yield f"re {messages[-1].content}"

    agent = CreateAgent(provider=FunctionModel(model))
    texts = await asyncio.gather(*(agent.chat(f"m{i}") for i in range(4)))
    assert texts == [f"re m{i}" for i in range(4)]
    assert seen == {f"m{i}": 1 for i in range(4)}  # each saw only what was committed before it began
    history = [m.content for m in await agent.history()]
    assert len(history) == 8
    pairs = list(zip(history[::2], history[1::2], strict=True))
    assert sorted(pairs) == [(f"m{i}", f"re m{i}") for i in range(4)]  # contiguous, nothing lost
    await agent.chat("next")
    assert seen["next"] == 9  # sequential use keeps the full memory


async def test_gather_on_one_agent_runs_in_parallel() -> None:
    async def slow(messages: list[Message], tools: list[ToolSpec]) -> AsyncIterator[object]:
        await asyncio.sleep(0.3)
        yield "ok"

    agent = CreateAgent(provider=FunctionModel(slow))
    started = asyncio.get_running_loop().time()
    await asyncio.gather(*(agent.chat(f"q{i}") for i in range(10)))
    assert asyncio.get_running_loop().time() - started < 1.5  # ten calls of 0.3 s, one after another: 3 s
    assert len(await agent.history()) == 20


async def test_a_failed_or_cancelled_turn_appends_nothing_while_others_commit() -> None:
    release = asyncio.Event()

    async def model(messages: list[Message], tools: list[ToolSpec]) -> AsyncIterator[object]:
        last = str(messages[-1].content)
        if last == "boom":
            raise ProviderUnavailableError("down")
        if last == "hang":
            await release.wait()
        yield "ok " + last

    agent = CreateAgent(provider=FunctionModel(model))
    hang = asyncio.create_task(agent.chat("hang"))
    results = await asyncio.gather(agent.chat("boom"), agent.chat("fine"), return_exceptions=True)
    assert isinstance(results[0], ProviderUnavailableError) and results[1] == "ok fine"
    hang.cancel()
    with pytest.raises(asyncio.CancelledError):
        await hang
    assert [m.content for m in await agent.history()] == ["fine", "ok fine"]


async def test_different_conversations_run_concurrently() -> None:
    both_here = asyncio.Barrier(2)

    async def meet(messages: list[Message], tools: list[ToolSpec]) -> AsyncIterator[object]:
        await asyncio.wait_for(both_here.wait(), 5)  # only passes if two conversations run at once
        yield "met"

    agent2 = CreateAgent(provider=FunctionModel(meet))
    texts = await asyncio.gather(agent2.conversation("x").chat("1"), agent2.conversation("y").chat("2"))
    assert texts == ["met", "met"]


async def test_lifecycle_closes_the_model_and_refuses_later_use() -> None:
    closed = []

    class Closable(FunctionModel):
        async def aclose(self) -> None:
            closed.append(True)

    async with CreateAgent(provider=Closable(lambda m, t: "hi")) as agent:
        assert await agent.chat("x") == "hi"
    assert closed == [True] and agent.closed
    with pytest.raises(AgentClosedError):
        agent.chat("again")
    with pytest.raises(AgentClosedError):
        agent.conversation("other")
    await agent.aclose()  # idempotent
    assert closed == [True]


def test_chat_sync_in_a_script() -> None:
    agent = CreateAgent(provider="test", tools=["currentdate"])
    assert agent.chat_sync("hi").startswith("Tool results: currentdate -> ")
    assert agent.chat_sync("again").startswith("Tool results")
    agent.close()
    with pytest.raises(AgentClosedError):
        agent.chat_sync("x")


async def test_chat_sync_where_a_loop_is_already_running() -> None:
    agent = CreateAgent(provider="test")
    assert agent.chat_sync("from a notebook") == "You said: from a notebook"
    await agent.aclose()


def test_demo_runs_offline() -> None:
    env = {"PATH": "", "PYTHONPATH": ""}
    out = subprocess.run(
        [sys.executable, "-m", "createagents", "demo"], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 0, out.stderr
    assert "demo: offline, on a scripted model" in out.stdout
    assert "[calling] add(a=2, b=3)" in out.stdout and '[calling] get_weather(city="Lisbon")' in out.stdout
    assert "[result]  get_weather -> 22 C and sunny in Lisbon" in out.stdout
    assert "history: 8 messages" in out.stdout


def test_the_demo_runs_on_the_configured_provider() -> None:
    env = {"PATH": "", "PYTHONPATH": "", "CREATEAGENTS_PROVIDER": "test", "CREATEAGENTS_MODEL": "demo-model"}
    out = subprocess.run(
        [sys.executable, "-m", "createagents", "demo"], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 0, out.stderr
    assert "provider=test model=demo-model" in out.stdout


def test_a_reply_goes_straight_to_asyncio_run() -> None:
    assert asyncio.run(CreateAgent(provider="test").chat("direct")) == "You said: direct"


def test_readme_commands_are_what_ci_runs() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    readme, ci = (root / "README.md").read_text(), (root / ".ci/run").read_text()
    test_command = next(line for line in readme.splitlines() if "pytest" in line and line.startswith("python3"))
    assert test_command in ci


def test_the_readme_and_docs_name_no_missing_file() -> None:
    root = Path(__file__).resolve().parent.parent
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    missing = [
        f"{page.name}: {name}"
        for page in pages
        for name in re.findall(r"[\w./-]+\.md\b", page.read_text())
        if not (page.parent / name).exists() and not (root / name).exists()
    ]
    assert missing == []


async def test_unused_conversations_are_not_kept_but_their_history_is() -> None:
    import gc

    agent = CreateAgent(provider="test")
    for i in range(200):
        await agent.conversation(f"user-{i}").chat("hi")
    gc.collect()
    assert len(agent._conversations) <= 1  # only the default one is held
    assert [m.content for m in await agent.conversation("user-7").history()] == ["hi", "You said: hi"]


def test_a_third_party_provider_plugs_in_through_an_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist = tmp_path / "echo_provider-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-provider\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[createagents.providers]\necho = echo_provider:factory\n")
    (tmp_path / "echo_provider.py").write_text(
        "from createagents.testing import FunctionModel\n"
        "def factory(options):\n"
        "    return FunctionModel(lambda messages, tools: f'echo from {options.model}: {messages[-1].content}')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    agent = CreateAgent(provider="echo", model="e-1")
    assert agent.chat_sync("hi") == "echo from e-1: hi"
    agent.close()
    with pytest.raises(ConfigurationError, match="echo"):  # listed among the valid names
        CreateAgent(provider="nope")

"""Migration parity (issue 16): createagents 0.3's surface, Azure AI Agents' and AI-SDK-style patterns.

Items already tested elsewhere are not repeated here: the positional order and
`repr` (test_agent.py), `CREATEAGENTS_PROVIDER` / `CREATEAGENTS_MODEL`
(test_agent.py), `readlocalfile` (adapters/test_file_tools.py), client tools
and `resume` (application/test_approvals.py, docs/human-in-the-loop.md).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import createagents
from createagents import (
    BaseTool,
    ConfigurationError,
    CreateAgent,
    EventHandler,
    LoggingConfig,
    RunFailed,
    RunStarted,
    ToolCallStarted,
)
from createagents.adapters import structured_logging
from createagents.domain.events import MessageCompleted, MessageStarted
from createagents.domain.messages import Message, ToolSpec
from createagents.testing import FunctionModel, TestModel, tool_call

_ENV = (
    "OPENAI_TIMEOUT",
    "OPENAI_MAX_RETRIES",
    "OPENAI_MAX_TOOL_ITERATIONS",
    "OLLAMA_HOST",
    "OLLAMA_MAX_RETRIES",
    "OLLAMA_MAX_TOOL_ITERATIONS",
    "LOG_LEVEL",
    "LOG_JSON_FORMAT",
    "LOG_TO_FILE",
    "LOG_FILE_PATH",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def logging_state() -> Iterator[None]:
    """Logging as it was before the test: unconfigured (so the environment applies), restored afterwards."""
    std = logging.getLogger("createagents")
    saved_state, saved_level, saved_handlers = dict(structured_logging._state), std.level, list(std.handlers)
    if structured_logging._state["handler"] is not None:
        std.removeHandler(structured_logging._state["handler"])
    structured_logging._state.update(handler=None, logger=None, json=False)
    try:
        yield
    finally:
        for handler in list(std.handlers):
            if handler not in saved_handlers:
                std.removeHandler(handler)
                handler.close()
        for handler in saved_handlers:
            if handler not in std.handlers:
                std.addHandler(handler)
        std.setLevel(saved_level)
        structured_logging._state.clear()
        structured_logging._state.update(saved_state)


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _add_then_answer(messages: list[Message], tools: list[ToolSpec]) -> Any:
    if messages[-1].role == "user":
        return [tool_call("add", a=2, b=3)]
    return f"The sum is {messages[-1].content}."


# -- createagents 0.3: name, case, configs, tools, metrics ------------------------------------


async def test_the_name_is_on_every_log_line_of_the_agent(logging_state: None) -> None:
    stream = io.StringIO()
    createagents.configure_logging(level="INFO", stream=stream)
    async with CreateAgent("test", "m", "Support Bot", tools=[add]) as agent:
        await agent.chat("x")
    lines = stream.getvalue().splitlines()
    model_lines = [line for line in lines if line.startswith("event='model_call'")]
    assert len(model_lines) == 2 and all("agent='Support Bot'" in line for line in model_lines)
    assert any("tool_call" in line and "agent='Support Bot'" in line for line in lines)
    assert CreateAgent("test", name="Support Bot").get_configs()["name"] == "Support Bot"
    with pytest.raises(ConfigurationError, match="name"):
        CreateAgent("test", name="  ")


def test_provider_and_builtin_tool_names_are_case_insensitive() -> None:
    agent = CreateAgent("TEST", "m", tools=["CurrentDate"])
    assert agent.provider == "test" and [t.name for t in agent.tools] == ["currentdate"]
    ollama = CreateAgent("Ollama", "llama3.2")
    assert ollama.provider == "ollama"
    ollama.close()
    with pytest.raises(ConfigurationError, match="built-in tool"):
        CreateAgent("test", tools=["NoSuchTool"])
    assert agent.chat_sync("what day is it?").tool_calls[0].name == "currentdate"
    agent.close()


def test_get_configs_has_createagents_03s_keys_in_order() -> None:
    agent = CreateAgent(
        "test", "m", "Bot", "Be brief.", {"temperature": 0.5, "max_tokens": 100}, [add, "currentdate"], 20
    )
    empty = agent.get_configs()
    assert list(empty) == [
        "provider",
        "model",
        "name",
        "instructions",
        "config",
        "tools",
        "history",
        "history_max_size",
    ]
    assert empty == {
        "provider": "test",
        "model": "m",
        "name": "Bot",
        "instructions": "Be brief.",
        "config": {"temperature": 0.5, "max_tokens": 100},
        "tools": ["add", "currentdate"],
        "history": [],
        "history_max_size": 20,
    }
    agent.chat_sync("hi")
    history = agent.get_configs()["history"]
    assert history[0] == {"role": "user", "content": "hi"} and history[-1]["role"] == "assistant"
    agent.clear_history()  # a plain call, as in 0.3
    assert agent.get_configs()["history"] == []
    bare = CreateAgent("test").get_configs()
    assert (bare["config"], bare["tools"], bare["name"], bare["history_max_size"]) == ({}, None, None, None)
    agent.close()


def test_the_two_tool_listings_map_names_to_descriptions() -> None:
    agent = CreateAgent("test", tools=[add])
    system = agent.get_system_available_tools()
    assert set(system) == {"currentdate", "readlocalfile"}  # listed whether or not the agent uses them
    assert all(isinstance(d, str) and d for d in system.values())
    everything = agent.get_all_available_tools()
    assert everything == {**system, "add": "Add two integers."}


def test_get_metrics_gives_model_call_records_with_03s_field_names() -> None:
    agent = CreateAgent(FunctionModel(_add_then_answer), tools=[add])
    agent.chat_sync("2 + 3?")
    records = agent.get_metrics()
    assert [r.kind for r in records] == ["model_call", "model_call"]  # the tool call's record is in metrics()
    assert len(agent.metrics()) == 3
    last = records[-1]
    assert last.latency_ms == round(last.latency * 1000, 2) and last.latency_ms >= 0
    assert last.tokens_used == last.total_tokens
    assert last.error_message is None and last.success
    assert last.load_duration_ms == last.load_duration * 1000
    assert last.prompt_eval_duration_ms == last.prompt_eval_duration * 1000
    assert last.eval_duration_ms == last.eval_duration * 1000
    agent.close()


def test_metrics_export_takes_a_positional_path_or_03s_filepath_keyword(tmp_path: Path) -> None:
    agent = CreateAgent("test")
    agent.chat_sync("hi")
    text = agent.export_metrics_json(filepath=tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text()) == json.loads(text)
    assert json.loads(text)["summary"]["model_calls"] == 1
    prom = agent.export_metrics_prometheus(filepath=str(tmp_path / "m.prom"))
    assert (tmp_path / "m.prom").read_text() == prom and "createagents_model_calls_total" in prom
    agent.export_metrics_json(str(tmp_path / "p.json"))
    agent.export_metrics_prometheus(tmp_path / "p.prom")
    assert (tmp_path / "p.json").exists() and (tmp_path / "p.prom").exists()
    agent.close()


# -- BaseTool written for 0.3 -----------------------------------------------------------------


class WordCountTool(BaseTool):
    name = "word_count"
    description = "Counts the number of words in a text"
    parameters = {  # noqa: RUF012 - as 0.3 tools write it
        "type": "object",
        "properties": {"text": {"type": "string", "description": "Text to count words from"}},
        "required": ["text"],
    }

    def execute(self, text: str) -> str:
        return str(len(text.split()))


class AsyncShoutTool(BaseTool):
    name = "shout"
    description = "Upper-cases a text"
    parameters = {  # noqa: RUF012 - as 0.3 tools write it
        "type": "object",
        "properties": {"text": {"type": "string"}, "times": {"type": "integer", "minimum": 1}},
        "required": ["text"],
    }

    async def execute(self, text: str, times: int = 1) -> str:
        await asyncio.sleep(0)
        return "!".join([text.upper()] * times)


async def test_a_03_base_tool_sends_its_parameters_schema_and_gets_the_models_arguments() -> None:
    def script(messages: list[Message], tools: list[ToolSpec]) -> Any:
        if messages[-1].role == "user":
            return [tool_call("word_count", text="one two three"), tool_call("shout", text="hey", times=2)]
        return " | ".join(m.content for m in messages if m.role == "tool")

    model = FunctionModel(script)
    async with CreateAgent(model, tools=[WordCountTool(), AsyncShoutTool()]) as agent:
        assert await agent.chat("go") == "3 | HEY!HEY"
    sent = {spec.name: spec for spec in model.requests[0].tools}
    assert sent["word_count"].parameters == WordCountTool.parameters  # verbatim, not derived from execute
    assert sent["word_count"].description == "Counts the number of words in a text"
    assert sent["shout"].parameters == AsyncShoutTool.parameters


def test_a_base_tool_without_run_or_execute_is_refused() -> None:
    class Nothing(BaseTool):
        name = "nothing"
        description = "does nothing"

    with pytest.raises(ConfigurationError, match="Nothing needs a `run` method"):
        CreateAgent("test", tools=[Nothing()])


# -- the environment of 0.3 -------------------------------------------------------------------


def test_openai_variables_set_the_limits_and_explicit_arguments_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_TIMEOUT", "12.5")
    monkeypatch.setenv("OPENAI_MAX_RETRIES", "7")
    monkeypatch.setenv("OPENAI_MAX_TOOL_ITERATIONS", "9")
    agent = CreateAgent("openai", "gpt-x", base_url="http://127.0.0.1:9/v1")
    limits = agent.limits
    assert (limits.timeout, limits.max_retries, limits.max_turns) == (12.5, 7, 9)
    assert agent._model.retry.max_retries == 7  # type: ignore[attr-defined]
    explicit = CreateAgent("openai", "gpt-x", base_url="http://127.0.0.1:9/v1", timeout=3, max_retries=0, max_turns=2)
    assert (explicit.limits.timeout, explicit.limits.max_retries, explicit.limits.max_turns) == (3, 0, 2)
    other = CreateAgent("test")  # another provider ignores OPENAI_*
    assert other.limits.max_turns != 9 and other.limits.max_retries != 7


@pytest.mark.parametrize("name", ["OPENAI_TIMEOUT", "OPENAI_MAX_RETRIES", "OPENAI_MAX_TOOL_ITERATIONS"])
def test_a_bad_environment_value_is_an_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "lots")
    with pytest.raises(ConfigurationError, match=name):
        CreateAgent("openai", "gpt-x", base_url="http://127.0.0.1:9/v1")


def test_ollama_variables_set_the_host_and_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "http://gpu-box:11434")
    monkeypatch.setenv("OLLAMA_MAX_RETRIES", "5")
    monkeypatch.setenv("OLLAMA_MAX_TOOL_ITERATIONS", "4")
    monkeypatch.setenv("OPENAI_MAX_TOOL_ITERATIONS", "99")  # not Ollama's
    agent = CreateAgent("ollama", "llama3.2")
    assert (agent.limits.max_retries, agent.limits.max_turns) == (5, 4)
    assert agent._model.host.startswith("http://gpu-box:11434")  # type: ignore[attr-defined]
    assert CreateAgent("ollama", "llama3.2", max_turns=50).limits.max_turns == 50
    monkeypatch.setenv("OLLAMA_MAX_RETRIES", "x")
    with pytest.raises(ConfigurationError, match="OLLAMA_MAX_RETRIES"):
        CreateAgent("ollama", "llama3.2")


def test_log_variables_write_json_lines_to_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, logging_state: None
) -> None:
    path = tmp_path / "logs" / "app.log"
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("LOG_TO_FILE", "true")
    monkeypatch.setenv("LOG_FILE_PATH", str(path))
    monkeypatch.setenv("LOG_JSON_FORMAT", "TRUE")
    agent = CreateAgent("test", name="Bot")
    agent.chat_sync("hi")
    agent.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["event"] == "model_call" and lines[0]["agent"] == "Bot"
    assert logging.getLogger("createagents").level == logging.DEBUG


def test_code_that_configured_logging_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, logging_state: None
) -> None:
    stream = io.StringIO()
    createagents.configure_logging(level="INFO", stream=stream)
    monkeypatch.setenv("LOG_TO_FILE", "true")
    monkeypatch.setenv("LOG_FILE_PATH", str(tmp_path / "app.log"))
    agent = CreateAgent("test")
    agent.chat_sync("hi")
    agent.close()
    assert not (tmp_path / "app.log").exists() and "model_call" in stream.getvalue()


def test_logging_config_keeps_03s_class_methods(tmp_path: Path, logging_state: None) -> None:
    path = tmp_path / "dev.log"
    LoggingConfig.configure(level=logging.INFO, log_to_file=True, log_file_path=str(path), json_format=True)
    agent = CreateAgent("test")
    agent.chat_sync("hi")
    agent.close()
    assert json.loads(path.read_text().splitlines()[0])["event"] == "model_call"
    LoggingConfig.configure_for_development(level=logging.WARNING)
    assert logging.getLogger("createagents").level == logging.WARNING


def test_logging_config_falls_back_to_the_environment_and_resets(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, logging_state: None
) -> None:
    path = tmp_path / "env.log"
    monkeypatch.setenv("LOG_TO_FILE", "true")
    monkeypatch.setenv("LOG_FILE_PATH", str(path))
    monkeypatch.setenv("LOG_JSON_FORMAT", "true")
    LoggingConfig.configure()  # as in 0.3: what is not passed comes from the environment
    agent = CreateAgent("test")
    agent.chat_sync("hi")
    assert json.loads(path.read_text().splitlines()[0])["event"] == "model_call"
    added = [h for h in LoggingConfig.get_handlers() if isinstance(h, logging.FileHandler)]
    assert len(added) == 1
    LoggingConfig.reset()
    assert added[0] not in LoggingConfig.get_handlers()
    agent.chat_sync("again")
    agent.close()
    assert len(path.read_text().splitlines()) == 1  # silent after reset


def test_per_call_instructions_also_on_the_blocking_calls() -> None:
    model = TestModel()
    agent = CreateAgent(model, instructions="Be brief.")
    agent.chat_sync("one", instructions="Answer in French.")
    agent.call("two", instructions="Answer in German.")
    agent.close()
    systems = [[m.content for m in r.messages if m.role == "system"] for r in model.requests]
    assert systems == [["Answer in French."], ["Answer in German."]]


# -- start_cli ----------------------------------------------------------------------------------


def test_start_cli_runs_the_chat_with_03s_commands(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = iter(["hello", "/configs", "/tools", "/metrics", "/clear", "/configs", "exit", "never read"])
    monkeypatch.setattr("createagents.cli._chat._read_line", lambda prompt: next(lines))
    agent = CreateAgent("test", "m", "Bot", tools=[add])
    agent.start_cli()
    out = capsys.readouterr().out
    assert "Tool results: add -> 2." in out  # the chat answered
    assert "  name: Bot" in out and "  provider: test" in out and "  history_max_size: None" in out
    assert "  history: 4 messages" in out and "  history: 0 messages" in out  # before and after /clear
    assert "  add: Add two integers." in out
    assert "model calls" in out.lower() or "model_calls" in out.lower()
    assert next(lines) == "never read"  # `exit` quit
    agent.close()


# -- streaming, events and sync twins -----------------------------------------------------------


def test_chat_sync_stream_yields_the_text_and_breaking_early_cancels_the_turn() -> None:
    agent = CreateAgent(TestModel(text="one two three four"))
    tokens = list(agent.chat_sync_stream("hi"))
    assert "".join(tokens) == "one two three four" and len(tokens) == 4
    assert len(agent.get_configs()["history"]) == 2

    failed: list[RunFailed] = []

    class Handler(EventHandler):
        def on_run_failed(self, event: RunFailed) -> None:
            failed.append(event)

    for token in agent.chat_sync_stream("again", handler=Handler()):
        assert token == "one "
        break
    assert len(failed) == 1 and failed[0].cancelled
    assert len(agent.get_configs()["history"]) == 2  # nothing of the cancelled turn is kept
    assert agent.chat_sync("still fine") == "one two three four"
    agent.close()


def test_events_sync_gives_the_runs_events_in_order() -> None:
    agent = CreateAgent(FunctionModel(_add_then_answer), tools=[add])
    kinds = [e.kind for e in agent.events_sync("2 + 3?")]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.index("tool_call_started") < kinds.index("tool_call_finished") < kinds.index("text_delta")
    agent.close()


def test_chat_sync_calls_the_handler() -> None:
    seen: list[str] = []

    class Handler(EventHandler):
        def on_text_delta(self, event: Any) -> None:
            seen.append(event.text)

        async def on_tool_call_started(self, event: ToolCallStarted) -> None:
            seen.append(f"[{event.call.name}]")

    agent = CreateAgent(FunctionModel(_add_then_answer), tools=[add])
    assert agent.chat_sync("2 + 3?", handler=Handler()) == "The sum is 5."
    assert seen[0] == "[add]" and "".join(seen[1:]) == "The sum is 5."
    agent.close()


def test_call_and_stream_are_the_sync_ai_sdk_names() -> None:
    agent = CreateAgent("test")
    assert agent.call("hi") == "You said: hi"
    assert "".join(agent.stream("yo")) == "You said: yo"
    assert len(agent.get_configs()["history"]) == 4
    agent.close()


async def test_acall_and_astream_are_the_async_ai_sdk_names() -> None:
    async with CreateAgent("test") as agent:
        assert await agent.acall("hi") == "You said: hi"
        assert [t async for t in agent.astream("a b")] == ["You ", "said: ", "a ", "b"]
        assert await agent.acall("x", instructions="Per call.") == "You said: x"


async def test_run_id_is_none_before_and_the_run_started_id_after_the_first_event() -> None:
    async with CreateAgent("test") as agent:
        reply = agent.chat("hi")
        assert reply.run_id is None
        events = reply.events()
        first = await anext(events)
        assert isinstance(first, RunStarted) and reply.run_id == first.run_id and first.run_id
        rest = [e async for e in events]
        assert rest[-1].kind == "run_finished" and reply.run_id == first.run_id

        tokens = agent.chat("again")
        assert tokens.run_id is None
        async for _ in tokens:
            assert tokens.run_id is not None  # set before the first token
        awaited = agent.chat("third")
        await awaited
        assert awaited.run_id and awaited.run_id not in (first.run_id, tokens.run_id)


async def test_message_started_and_completed_wrap_each_assistant_message() -> None:
    started: list[int] = []

    class Handler(EventHandler):
        def on_message_started(self, event: MessageStarted) -> None:
            started.append(event.index)

    async with CreateAgent(FunctionModel(_add_then_answer), tools=[add]) as agent:
        events = [e async for e in agent.chat("2 + 3?", handler=Handler()).events()]
    lifecycle = [e for e in events if isinstance(e, MessageStarted | MessageCompleted)]
    assert [(type(e).__name__, e.index) for e in lifecycle] == [
        ("MessageStarted", 0),
        ("MessageCompleted", 0),
        ("MessageStarted", 1),
        ("MessageCompleted", 1),
    ]
    assert started == [0, 1]
    first, second = lifecycle[1], lifecycle[3]
    assert isinstance(first, MessageCompleted) and isinstance(second, MessageCompleted)
    assert [c.name for c in first.message.tool_calls] == ["add"]
    assert second.message.content == "The sum is 5." and not second.message.tool_calls
    kinds = [e.kind for e in events]
    # each message's deltas sit between its start and its completion
    assert kinds.index("message_started") < kinds.index("tool_call_delta") < kinds.index("message_completed")
    assert kinds.index("tool_call_finished") < kinds.index("text_delta") < len(kinds) - 1


async def test_per_call_instructions_replace_the_agents_for_that_call_only() -> None:
    model = TestModel()
    async with CreateAgent(model, instructions="Be brief.") as agent:
        await agent.chat("one", instructions="Answer in French.")
        await agent.chat("two")
        await agent.chat("three", config={"temperature": 0.9})
        with pytest.raises(ConfigurationError, match="instructions"):
            agent.chat("x", instructions="  ")
    systems = [[m.content for m in r.messages if m.role == "system"] for r in model.requests]
    assert systems == [["Answer in French."], ["Be brief."], ["Be brief."]]
    assert model.requests[2].settings.temperature == 0.9 and model.requests[1].settings.temperature is None


def test_config_stream_is_accepted_and_a_bad_value_refused() -> None:
    for value in (True, False, None):
        assert CreateAgent("test", config={"stream": value, "temperature": 0.3}).settings.temperature == 0.3
    assert CreateAgent("test", config={"stream": True}).get_configs()["config"] == {}
    with pytest.raises(ConfigurationError, match="stream"):
        CreateAgent("test", config={"stream": "yes"})


async def test_the_awaited_answer_iterates_as_03s_streaming_response() -> None:
    async with CreateAgent("test", config={"stream": True}) as agent:
        response = await agent.chat("Tell me a story")
        chunks = [t async for t in response]
        assert chunks == ["You said: Tell me a story"] and response == "You said: Tell me a story"
        assert response.usage.total_tokens > 0


# -- the 0.3 README quick starts (provider="test" where the network would be needed) -----------


async def test_quick_start_1_openai_agent() -> None:
    agent = CreateAgent(
        provider="test",  # the README: 'openai'
        model="YOUR_MODEL",
        instructions="You are a helpful and concise software engineering assistant.",
    )
    response = await agent.chat("How do I structure a Python project?")
    assert str(response) == "You said: How do I structure a Python project?"
    await agent.aclose()


async def test_quick_start_2_ollama_agent_builds_offline_and_chats() -> None:
    built = CreateAgent(provider="ollama", model="YOUR_OLLAMA_MODEL", instructions="You are a local private assistant.")
    assert (built.provider, built.model) == ("ollama", "YOUR_OLLAMA_MODEL")
    await built.aclose()
    model = TestModel()
    agent = CreateAgent(provider=model, model="YOUR_OLLAMA_MODEL", instructions="You are a local private assistant.")
    assert await agent.chat("Explain Clean Architecture in two sentences.")
    assert model.requests[0].messages[0].content == "You are a local private assistant."
    await agent.aclose()


async def test_quick_start_3_tools_with_currentdate_and_a_base_tool() -> None:
    agent = CreateAgent(provider="test", model="YOUR_MODEL", tools=["currentdate", WordCountTool()])
    response = await agent.chat("What is the current time in America/New_York?")
    assert [c.name for c in response.tool_calls] == ["currentdate", "word_count"]
    assert "word_count -> 1" in response
    await agent.aclose()


def test_quick_start_4_runtime_configuration_builds_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-placeholder")
    config = {"temperature": 0.7, "max_tokens": 1500, "top_p": 0.9, "stream": False}
    agent = CreateAgent(
        provider="openai",
        model="YOUR_MODEL",
        instructions="Be technical and concise.",
        config=config,
        history_max_size=20,
    )
    assert agent.limits.history_max_size == 20
    assert agent.get_configs()["config"] == {"temperature": 0.7, "max_tokens": 1500, "top_p": 0.9}
    agent.close()


async def test_the_history_limit_counts_messages() -> None:
    model = TestModel()
    async with CreateAgent(provider=model, history_max_size=2) as agent:
        for message in ("one", "two", "three"):
            await agent.chat(message)
    sent = [m.content for m in model.requests[-1].messages]
    assert sent == ["two", "You said: two", "three"]  # the last 2 messages of the history, then the new one


def test_quick_start_5_logging_for_development(logging_state: None, capsys: pytest.CaptureFixture[str]) -> None:
    LoggingConfig.configure_for_development(level=logging.INFO)
    agent = CreateAgent("test", name="dev")
    agent.chat_sync("hi")
    agent.close()
    assert "event='model_call'" in capsys.readouterr().err


def test_quick_start_6_metrics_export(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-placeholder")
    monkeypatch.chdir(tmp_path)
    agent = CreateAgent(provider="openai", model="YOUR_MODEL")
    metrics = agent.get_metrics()
    assert metrics == []
    agent.export_metrics_json("metrics.json")
    agent.export_metrics_prometheus("metrics.prom")
    assert json.loads((tmp_path / "metrics.json").read_text())["records"] == []  # 0.3: "metrics"
    assert (tmp_path / "metrics.prom").exists()
    agent.close()


async def test_ask_takes_per_call_instructions_too() -> None:
    model = TestModel()
    agent = CreateAgent(model, instructions="Be brief.")
    await agent.ask("one", instructions="Answer in Portuguese.")
    await agent.ask("two")
    systems = [[m.content for m in r.messages if m.role == "system"] for r in model.requests]
    assert systems == [["Answer in Portuguese."], ["Be brief."]]


def test_an_abandoned_blocking_stream_does_not_hang_the_exit_or_outlive_close() -> None:
    """A generator left half-read at exit, or after `close()`, is finished by its loop's shutdown, not waited on."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        from createagents import CreateAgent
        agent = CreateAgent("test", provider_options={"text": "one two three four"})
        kept = agent.chat_sync_stream("hi")
        assert next(kept) == "one "
        other = CreateAgent("test", provider_options={"text": "a b c"})
        second = other.chat_sync_stream("hi")
        next(second)
        other.close()
        del second  # after close: nothing is run on a new loop
        import threading, time
        for _ in range(500):  # the closed agent's loop thread ends on its own, soon; no new one starts
            if [t.name for t in threading.enumerate()].count("createagents-sync") == 1:
                break
            time.sleep(0.01)
        assert [t.name for t in threading.enumerate()].count("createagents-sync") == 1
        print("end")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "end" and "already running" not in done.stderr


def test_explicit_logging_config_arguments_win_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, logging_state: None
) -> None:
    monkeypatch.setenv("LOG_TO_FILE", "true")
    monkeypatch.setenv("LOG_FILE_PATH", str(tmp_path / "env.log"))
    monkeypatch.setenv("LOG_JSON_FORMAT", "true")
    LoggingConfig.configure(log_to_file=False, json_format=False)
    assert not any(isinstance(h, logging.FileHandler) for h in LoggingConfig.get_handlers())
    LoggingConfig.reset()

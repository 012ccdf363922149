"""Tools, settings and event loops under faults: one bad tool or setting hurts one call, never the application."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import enum
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from createagents import ConfigurationError, CreateAgent, Message, ToolSpec, tool
from createagents.application.tools import to_text
from createagents.testing import FunctionModel, tool_call

ROOT = Path(__file__).resolve().parents[2]


def calling(*calls: tuple[str, dict[str, Any]]) -> FunctionModel:
    """A model that makes the given calls in its first response, then answers with the tool results it got."""

    def model(messages: list[Message], tools: list[ToolSpec]) -> Any:
        if messages[-1].role == "user":
            return [tool_call(name, **args) for name, args in calls]
        return " | ".join(m.content for m in messages if m.role == "tool")

    return FunctionModel(model)


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # release every stuck tool thread at the end


# -- 1. stuck sync tools are contained in the agent's own pool -------------------


async def test_stuck_sync_tools_leave_the_default_executor_free(gate: threading.Event) -> None:
    def stuck(n: int) -> str:
        """Blocks until the test ends."""
        gate.wait()
        return "late"

    calls = [("stuck", {"n": i}) for i in range(8)]  # more than the loop's default executor has workers here
    agent = CreateAgent(provider=calling(*calls), tools=[stuck], tool_timeout=0.2)
    answer = await agent.chat("go")
    assert answer.count("timed out after 0.2 s") == 8
    loop = asyncio.get_running_loop()
    assert await asyncio.wait_for(loop.run_in_executor(None, sum, [1, 2]), 2) == 3  # not starved
    assert await asyncio.wait_for(loop.getaddrinfo("localhost", 80), 2)  # DNS uses that executor
    assert agent.metrics_summary()["tool_threads"] == {"size": 8, "busy": 8, "stuck": 8}
    gate.set()
    for _ in range(100):
        if agent.metrics_summary()["tool_threads"]["stuck"] == 0:
            break
        await asyncio.sleep(0.01)
    assert agent.metrics_summary()["tool_threads"]["busy"] == 0


async def test_a_full_pool_is_reported_as_such_not_as_a_timeout(gate: threading.Event) -> None:
    def stuck() -> str:
        gate.wait()
        return "late"

    def instant() -> str:
        return "fast"

    agent = CreateAgent(
        provider=calling(("stuck", {}), ("stuck", {}), ("instant", {})),
        tools=[stuck, instant],
        tool_timeout=0.2,
        tool_threads=2,
    )
    reply = agent.chat("go")
    finished = [e async for e in reply.events() if e.kind == "tool_call_finished"]
    by_name = {e.call.name: e for e in finished}  # type: ignore[union-attr]
    assert by_name["instant"].error == "ToolError"
    assert "did not run: all 2 tool threads stayed busy" in by_name["instant"].result
    assert by_name["stuck"].error == "ToolTimeoutError"
    gate.set()
    await asyncio.sleep(0.05)
    agent2 = CreateAgent(provider=calling(("instant", {})), tools=[instant], tool_threads=2)
    assert await agent2.chat("again") == "fast"


def test_a_stuck_sync_tool_does_not_hold_the_interpreter_at_exit() -> None:
    script = """
import asyncio, time
from createagents import CreateAgent
from createagents.testing import FunctionModel, tool_call

def stuck() -> str:
    time.sleep(60)
    return "late"

def model(messages, tools):
    return [tool_call("stuck")] if messages[-1].role == "user" else "done"

async def main():
    agent = CreateAgent(provider=FunctionModel(model), tools=[stuck], tool_timeout=0.2)
    print(await agent.chat("go"))

asyncio.run(main())
"""
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "done"
    assert time.monotonic() - started < 15  # not the 60 s the thread sleeps


async def test_sync_tools_see_the_callers_context_variables() -> None:
    import contextvars

    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")

    def whoami() -> str:
        return request_id.get()

    request_id.set("req-7")
    assert await CreateAgent(provider=calling(("whoami", {})), tools=[whoami]).chat("?") == "req-7"


# -- 2. non-finite numbers ------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout": float("nan")},
        {"timeout": float("inf")},
        {"tool_timeout": float("nan")},
        {"tool_timeout": float("inf")},
        {"tool_threads": 0},
        {"config": {"temperature": float("nan")}},
        {"config": {"top_p": float("inf")}},
    ],
)
def test_non_finite_settings_are_refused_at_construction(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        CreateAgent(provider="test", **kwargs)


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), 0, -1])
def test_a_tool_timeout_must_be_finite(timeout: float) -> None:
    with pytest.raises(ConfigurationError, match="finite"):

        @tool(timeout=timeout)
        def f() -> None: ...


# -- 3. text that always encodes -------------------------------------------------


async def test_a_surrogate_in_a_tool_result_is_escaped_and_the_run_goes_on() -> None:
    def listdir() -> list[str]:
        return ["report-\udcff.txt"]  # what os.listdir gives for a name that is not UTF-8

    def name() -> str:
        return "report-\udcff.txt"

    agent = CreateAgent(provider=calling(("listdir", {}), ("name", {})), tools=[listdir, name])
    answer = await agent.chat("files?")
    assert answer == '["report-\\udcff.txt"] | report-\\udcff.txt'  # JSON reads it back as the same name
    answer.encode("utf-8")
    json.dumps([m.content for m in await agent.history()]).encode("utf-8")


async def test_a_surrogate_in_a_tool_error_is_escaped() -> None:
    def broken() -> str:
        raise FileNotFoundError("no such file: 'report-\udcff.txt'")

    answer = await CreateAgent(provider=calling(("broken", {})), tools=[broken]).chat("?")
    assert "report-\\udcff.txt" in answer
    answer.encode("utf-8")


async def test_a_user_message_that_cannot_encode_is_refused() -> None:
    model = FunctionModel(lambda m, t: "never")
    with pytest.raises(ConfigurationError, match="UTF-8"):
        CreateAgent(provider=model).chat("hello \udcff")
    assert model.requests == []


# -- 4. a second event loop ------------------------------------------------------


def test_concurrent_turns_work_under_a_second_event_loop() -> None:
    agent = CreateAgent(provider=FunctionModel(lambda m, t: "ok"))

    async def burst() -> list[str]:
        return await asyncio.gather(*(agent.chat(f"m{i}") for i in range(5)))

    assert asyncio.run(burst()) == ["ok"] * 5
    assert asyncio.run(burst()) == ["ok"] * 5  # a lock of the first loop would fail here
    assert len(asyncio.run(agent.history())) == 20


# -- 5. what a tool raises stays the tool's ------------------------------------------


async def test_a_tool_raising_cancelled_error_on_its_own_is_its_error() -> None:
    async def flaky_async() -> str:
        raise asyncio.CancelledError("a library's internal timeout")

    def flaky_sync() -> str:
        raise asyncio.CancelledError()

    async def closing() -> str:
        raise GeneratorExit()

    agent = CreateAgent(
        provider=calling(("flaky_async", {}), ("flaky_sync", {}), ("closing", {})),
        tools=[flaky_async, flaky_sync, closing],
    )
    answer = await agent.chat("go")
    assert answer.count("failed: CancelledError") == 2 and "failed: GeneratorExit" in answer
    assert len(await agent.history()) == 6  # the turn completed: user, calls, three results, answer


async def test_cancelling_the_run_still_cancels_a_running_tool() -> None:
    started = asyncio.Event()

    async def slow() -> str:
        started.set()
        await asyncio.sleep(10)
        return "late"

    agent = CreateAgent(provider=calling(("slow", {})), tools=[slow])
    task = asyncio.create_task(agent.chat("go"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await agent.history() == []


async def test_system_exit_from_a_tool_is_the_tools_error() -> None:
    def cli(argument: str) -> str:
        import argparse

        parser = argparse.ArgumentParser(prog="cli", exit_on_error=False)
        parser.add_argument("--count", type=int, required=True)
        parser.parse_args([argument])  # argparse exits on a missing required argument
        return "parsed"

    async def quits() -> str:
        raise SystemExit(3)

    agent = CreateAgent(provider=calling(("cli", {"argument": "x"}), ("quits", {})), tools=[cli, quits])
    answer = await agent.chat("go")
    assert answer.count("failed: SystemExit") == 2


def test_keyboard_interrupt_from_a_tool_still_stops_the_program() -> None:
    script = """
import asyncio
from createagents import CreateAgent
from createagents.testing import FunctionModel, tool_call

async def interrupted() -> str:
    raise KeyboardInterrupt

def model(messages, tools):
    return [tool_call("interrupted")] if messages[-1].role == "user" else "done"

asyncio.run(CreateAgent(provider=FunctionModel(model), tools=[interrupted]).chat("go"))
print("not reached")
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert out.returncode != 0 and "KeyboardInterrupt" in out.stderr and "not reached" not in out.stdout


# -- 6. results become the JSON users expect ------------------------------------------


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Person(BaseModel):
    name: str
    born: datetime.date


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Point(1, 2), '{"x": 1, "y": 2}'),
        ({"p": Point(1, 2)}, '{"p": {"x": 1, "y": 2}}'),
        ([Person(name="Ana", born=datetime.date(1990, 5, 1))], '[{"name": "Ana", "born": "1990-05-01"}]'),
        (Person(name="Ana", born=datetime.date(1990, 5, 1)), '{"name":"Ana","born":"1990-05-01"}'),
        ({3, 1, 2}, "[1, 2, 3]"),
        ((1, "a"), '[1, "a"]'),
        (datetime.datetime(2026, 1, 2, 3, 4, 5), '"2026-01-02T03:04:05"'),
        ({"when": datetime.date(2026, 1, 2)}, '{"when": "2026-01-02"}'),
        (Colour.RED, '"red"'),
        (b"\x00\xffraw", "AP9yYXc="),
        ({"blob": b"\x00\xff"}, '{"blob": "AP8="}'),
        (datetime.timedelta(minutes=1), "60.0"),
        (Path("/tmp/x"), '"/tmp/x"'),
    ],
)
def test_tool_results_become_json(value: Any, text: str) -> None:
    assert to_text(value) == text


async def test_a_result_json_cannot_write_is_an_error_result() -> None:
    def circular() -> list[Any]:
        loop: list[Any] = []
        loop.append(loop)
        return loop

    agent = CreateAgent(provider=calling(("circular", {})), tools=[circular])
    reply = agent.chat("go")
    finished = [e async for e in reply.events() if e.kind == "tool_call_finished"]
    assert finished[0].error == "ToolResultError"  # type: ignore[union-attr]
    assert "cannot be written as JSON" in reply.text


# -- 7. tool names ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["add\n", "add\r\n", "", "a" * 65, "has space", "dotted.name"])
def test_tool_names_follow_the_providers_rule_in_full(name: str) -> None:
    with pytest.raises(ConfigurationError, match="tool name"):
        tool(name=name)(lambda: None)


# -- 8. metrics files are replaced, never rewritten in place --------------------------


async def test_metrics_exports_replace_the_file_atomically(tmp_path: Path) -> None:
    agent = CreateAgent(provider="test")
    await agent.chat("hi")
    for export, name in ((agent.export_metrics_prometheus, "metrics.prom"), (agent.export_metrics_json, "m.json")):
        path = tmp_path / name
        path.write_text("old")
        with path.open() as reader:  # a collector that opened the file before the export
            export(path)
            assert reader.read() == "old"  # it reads the old file whole, not a half-written new one
        assert path.read_text() == export()
        assert set(os.listdir(tmp_path)) <= {"metrics.prom", "m.json"}  # no temporary file left


async def test_closing_agents_ends_their_idle_tool_threads() -> None:
    def quick() -> str:
        return "ok"

    before = threading.active_count()
    for _ in range(5):
        agent = CreateAgent(provider=calling(("quick", {}), ("quick", {})), tools=[quick])
        assert await agent.chat("go") == "ok | ok"
        await agent.aclose()
    for _ in range(200):
        if threading.active_count() <= before:
            break
        await asyncio.sleep(0.01)
    assert threading.active_count() <= before  # no pool left behind by a closed agent


async def test_a_call_that_never_started_never_runs_later(gate: threading.Event) -> None:
    ran: list[str] = []

    def stuck() -> str:
        gate.wait()
        return "late"

    def side_effect() -> str:
        ran.append("sent the email")
        return "done"

    agent = CreateAgent(
        provider=calling(("stuck", {}), ("side_effect", {})),
        tools=[stuck, side_effect],
        tool_timeout=0.2,
        tool_threads=1,
    )
    assert "did not run" in await agent.chat("go")
    gate.set()
    await asyncio.sleep(0.2)
    assert ran == []  # told the model it did not run: it must not run behind its back
    await agent.aclose()

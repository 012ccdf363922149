"""`createagents run`: the prompt from the argument and/or stdin, the answer streamed to stdout, exit codes."""

from __future__ import annotations

import asyncio
import contextlib
import io
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from createagents.cli import main

from .conftest import clean_env, cli

ECHO = """
    from createagents import CreateAgent
    from createagents.testing import FunctionModel

    prompts = []

    def remember(messages, tools):
        prompts.append(messages[-1].content)
        return "ok"

    agent = CreateAgent(provider=FunctionModel(remember))


    def make():  # a new agent for each command run in this process
        return CreateAgent(provider=FunctionModel(remember))
"""


def test_the_argument_then_a_blank_line_then_stdin() -> None:
    found = cli("run", "--provider", "test", "Summarise this", stdin="line one\nline two\n")
    assert found.returncode == 0, found.stderr
    assert found.stdout == "You said: Summarise this\n\nline one\nline two\n"  # the test model echoes the prompt


def test_stdin_alone_or_the_argument_alone() -> None:
    assert cli("run", "--provider", "test", stdin="only stdin").stdout == "You said: only stdin\n"
    assert cli("run", "--provider", "test", "only the argument").stdout == "You said: only the argument\n"
    blank_stdin = cli("run", "--provider", "test", "arg", stdin=" \n\n")
    assert blank_stdin.stdout == "You said: arg\n"  # adds nothing


def test_the_environment_names_the_provider() -> None:
    found = cli("run", "hello", env=clean_env(CREATEAGENTS_PROVIDER="test", CREATEAGENTS_MODEL="m"))
    assert (found.returncode, found.stdout) == (0, "You said: hello\n"), found.stderr


def test_a_provider_failure_is_one_line_and_exit_code_1() -> None:
    found = cli(
        "run", "--provider", "openai", "--model", "gpt-4o-mini", "--base-url", "http://127.0.0.1:9/v1",
        "--api-key", "sk-secret-123", "hi",
    )  # fmt: skip
    assert found.returncode == 1
    assert found.stdout == ""
    assert found.stderr.startswith("error: ProviderUnavailableError: cannot reach the server")
    assert found.stderr.count("\n") == 1 and "Traceback" not in found.stderr
    assert "sk-secret-123" not in found.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--provider", "openia", "hi"], "error: ConfigurationError: unknown provider 'openia'; valid providers:"),
        (["--provider", "ollama", "hi"], "error: ConfigurationError: provider 'ollama' needs a model"),
        (["--provider", "test", "--tools", "nosuchtool", "hi"], "error: ConfigurationError: unknown built-in tool"),
        (["--provider", "test", "--tools", "cli_nowhere:f", "hi"], "error: ConfigurationError: tool 'cli_nowhere:f'"),
        (["hi"], "error: ConfigurationError: no agent: pass --provider"),
        (["--provider", "test"], "error: ConfigurationError: run needs a prompt"),  # no argument, empty stdin
    ],
)
def test_a_configuration_error_is_one_line_and_exit_code_2(args: list[str], message: str) -> None:
    found = cli("run", *args)
    assert found.returncode == 2, found
    assert found.stderr.startswith(message) and found.stderr.count("\n") == 1, found.stderr
    assert found.stdout == ""


def test_a_bad_flag_is_exit_code_2() -> None:
    found = cli("run", "--provider", "test", "--no-such-flag", "hi")
    assert found.returncode == 2
    assert "unrecognized arguments: --no-such-flag" in found.stderr


def test_tools_are_comma_separated_or_repeated(tmp_path: Path) -> None:
    (tmp_path / "cli_tools.py").write_text("def add(a: int, b: int) -> int:\n    return a + b\n")
    found = cli("run", "--provider", "test", "--tools", "currentdate, cli_tools:add", "--tools", "", "go", cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    assert found.stdout.startswith("Tool results: currentdate -> ") and "; add -> 2." in found.stdout


def test_a_target_with_a_prompt_or_with_stdin(
    app_module: Callable[[str], str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    module = app_module(ECHO)
    assert main(["run", f"{module}:make", "from the argument"]) == 0
    assert main(["run", f"{module}:make"]) == 2  # a lone target: the prompt comes from stdin, empty here
    assert capsys.readouterr().err.startswith("error: ConfigurationError: run needs a prompt")
    monkeypatch.setattr(sys, "stdin", io.StringIO("from stdin"))
    assert main(["run", f"{module}:make"]) == 0
    assert sys.modules[module].prompts == ["from the argument", "from stdin"]
    assert main(["run", "--provider", "test", f"{module}:make"]) == 0  # with agent flags it is the prompt
    assert capsys.readouterr().out == f"ok\nYou said: {module}:make\n"


def test_run_is_one_shot_and_closes_the_agent(app_module: Callable[[str], str]) -> None:
    module = app_module(ECHO)
    assert main(["run", f"{module}:agent", "one"]) == 0
    agent = sys.modules[module].agent
    assert sys.modules[module].prompts == ["one"]
    assert asyncio.run(agent.store.load("default")) == []  # `ask`: nothing written to the agent's conversation
    assert agent.closed


def test_the_answer_streams_token_by_token(tmp_path: Path) -> None:
    """The model writes its second token only once the first has reached the reader: buffered output never would."""
    gate = tmp_path / "go"
    (tmp_path / "cli_gated.py").write_text(
        "import asyncio, pathlib\n"
        "from createagents import CreateAgent\n"
        "from createagents.testing import FunctionModel\n"
        "async def gated(messages, tools):\n"
        "    yield 'first '\n"
        "    for _ in range(200):\n"
        f"        if pathlib.Path({str(gate)!r}).exists():\n"
        "            yield 'second'\n"
        "            return\n"
        "        await asyncio.sleep(0.05)\n"
        "    yield 'never-released'\n"
        "agent = CreateAgent(provider=FunctionModel(gated))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "createagents", "run", "cli_gated:agent", "go"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=clean_env(),
    )
    chunks: queue.Queue[bytes] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    reader = threading.Thread(target=lambda: [chunks.put(c) for c in iter(lambda: stdout.read1(100), b"")])
    reader.start()
    seen = b""
    deadline = time.monotonic() + 20
    while b"first" not in seen and time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            seen += chunks.get(timeout=0.1)
    assert seen == b"first "  # the first token, alone, before the model goes on
    gate.touch()
    assert process.wait(timeout=30) == 0
    reader.join()
    while not chunks.empty():
        seen += chunks.get()
    assert seen == b"first second\n"

"""`createagents chat`: the REPL with scripted stdin: commands, streaming, Ctrl-C, Ctrl-D, failed turns."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from createagents.cli import main

from .conftest import clean_env

APP = """
    import asyncio, signal, sys

    from createagents import CreateAgent, ProviderUnavailableError, tool
    from createagents.testing import FunctionModel

    seen = []  # what the model was sent, each turn


    async def model(messages, tools):
        last = messages[-1].content
        seen.append([m.content for m in messages])
        if last == "boom":
            raise ProviderUnavailableError("the model is down")
        if last == "interrupt me":
            yield "partial "
            signal.raise_signal(signal.SIGINT)  # Ctrl-C while the answer streams
            await asyncio.sleep(10)
            yield "never"
            return
        if last == "stream":
            yield "alpha "
            yield f"streamed={'alpha' in sys.stdout.getvalue()}"  # the first token was printed already
            return
        yield f"{len(messages)} messages, last: {last}"


    @tool(description="Say hello.")
    def greet(name: str) -> str:
        return f"hello {name}"


    def make():
        return CreateAgent(provider=FunctionModel(model), tools=[greet])
"""


def _chat(
    monkeypatch: pytest.MonkeyPatch, lines: str, *args: str, stdin: io.StringIO | None = None
) -> tuple[int, str, str]:
    """Run `chat ARGS` in this process with `lines` as stdin; (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdin", stdin or io.StringIO(lines))
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    code = main(["chat", *args])
    return code, out.getvalue(), err.getvalue()


def test_clear_tools_and_exit(app_module: Callable[[str], str], monkeypatch: pytest.MonkeyPatch) -> None:
    module = app_module(APP)
    code, out, err = _chat(monkeypatch, "one\ntwo\n/clear\nthree\n/tools\n/exit\nnever sent\n", f"{module}:make")
    assert (code, err) == (0, "")
    assert "createagents chat: provider=function model=test, tools: greet" in out
    assert "you> one\nagent> 1 messages, last: one\n" in out
    assert "you> two\nagent> 3 messages, last: two\n" in out  # the history so far
    assert "you> /clear\n(history cleared)\n" in out
    assert "you> three\nagent> 1 messages, last: three\n" in out  # nothing before it any more
    assert "you> /tools\n  greet: Say hello.\n" in out
    assert out.endswith("you> /exit\n")  # the line after /exit is never read
    assert [turn[-1] for turn in sys.modules[module].seen] == ["one", "two", "three"]


def test_end_of_input_quits_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = _chat(monkeypatch, "", "--provider", "test")  # Ctrl-D on the first, empty prompt
    assert (code, err) == (0, "")
    assert out.endswith("Ctrl-D or /exit quits.\nyou> \n")
    code, out, _ = _chat(monkeypatch, "hi\n", "--provider", "test")  # Ctrl-D after a turn
    assert code == 0 and out.endswith("agent> You said: hi\nyou> \n")


def test_help_metrics_unknown_commands_and_blank_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = _chat(monkeypatch, "/help\n\n   \nhello\n/metrics\n/nope\n/tools\n", "--provider", "test")
    assert code == 0
    for command in ("/help", "/clear", "/tools", "/metrics", "/exit"):
        assert f"\n  {command} " in out
    assert "model calls: 1 (0 failed)" in out and "tokens: 1 prompt + 3 completion = 4" in out
    assert "unknown command /nope; /help lists the commands" in out
    assert "you> /tools\n(no tools)\n" in out
    assert out.count("agent> ") == 1  # blank lines send nothing


def test_the_provider_and_tools_come_from_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = _chat(monkeypatch, "/tools\n", "--provider", "test", "--model", "m1", "--tools", "currentdate")
    assert code == 0
    assert "provider=test model=m1, tools: currentdate" in out
    assert "  currentdate: The current date and time in a time zone." in out


def test_a_failed_turn_is_reported_and_the_chat_goes_on(
    app_module: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    module = app_module(APP)
    code, out, err = _chat(monkeypatch, "boom\nafter\n", f"{module}:make")
    assert code == 0
    assert err.startswith("error: ProviderUnavailableError: the model is down") and err.count("\n") == 1
    assert "agent> 1 messages, last: after" in out  # the failed turn left nothing in the history


def test_ctrl_c_stops_the_answer_not_the_chat_and_keeps_nothing_of_it(
    app_module: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    module = app_module(APP)
    started = time.monotonic()
    code, out, err = _chat(monkeypatch, "first\ninterrupt me\nafter\n", f"{module}:make")
    assert time.monotonic() - started < 5  # the model's 10 s sleep was cancelled
    assert (code, err) == (0, "")
    assert "you> interrupt me\nagent> partial \n[stopped]\n" in out
    assert "never" not in out
    assert "agent> 3 messages, last: after" in out  # "first" and its answer; nothing of the stopped turn


def test_ctrl_c_at_the_prompt_does_not_quit(monkeypatch: pytest.MonkeyPatch) -> None:
    class Interrupted(io.StringIO):
        calls = 0

        def readline(self, size: int | None = -1) -> str:
            self.calls += 1
            if self.calls == 1:
                raise KeyboardInterrupt
            return super().readline()

    code, out, _ = _chat(monkeypatch, "", "--provider", "test", stdin=Interrupted("still here\n"))
    assert code == 0
    assert "(Ctrl-D or /exit quits)" in out and "agent> You said: still here" in out


def test_the_answer_streams_token_by_token(app_module: Callable[[str], str], monkeypatch: pytest.MonkeyPatch) -> None:
    module = app_module(APP)
    code, out, _ = _chat(monkeypatch, "stream\n", f"{module}:make")
    assert code == 0 and "agent> alpha streamed=True\n" in out


def test_a_dict_target_needs_agent_to_choose(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cli_team.py").write_text(
        "from createagents import CreateAgent\n"
        "agents = {'a': CreateAgent(provider='test', model='ma'), 'b': CreateAgent(provider='test', model='mb')}\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    code, out, err = _chat(monkeypatch, "", "cli_team:agents")
    assert code == 2 and "several agents (a, b); choose one with --agent NAME" in err
    code, out, err = _chat(monkeypatch, "", "cli_team:agents", "--agent", "b")
    assert code == 0 and "provider=test model=mb" in out


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT cannot be sent to one process on Windows")
def test_ctrl_c_in_a_real_terminal_session(tmp_path: Path) -> None:
    """A real SIGINT, sent to a separate process while it streams: the answer stops, the chat goes on."""
    (tmp_path / "cli_slow.py").write_text(
        "import asyncio\n"
        "from createagents import CreateAgent\n"
        "from createagents.testing import FunctionModel\n"
        "async def slow(messages, tools):\n"
        "    if messages[-1].content == 'slow':\n"
        "        for i in range(200):\n"
        "            yield f'w{i} '\n"
        "            await asyncio.sleep(0.05)\n"
        "    else:\n"
        "        yield f'{len(messages)} messages'\n"
        "agent = CreateAgent(provider=FunctionModel(slow))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "createagents", "chat", "cli_slow:agent"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=clean_env(),
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write("slow\n")
    process.stdin.flush()
    seen = ""
    while "w2 " not in seen:
        char = process.stdout.read(1)
        assert char, seen
        seen += char
    process.send_signal(signal.SIGINT)
    out, err = process.communicate("next\n", timeout=30)
    assert process.returncode == 0, err
    assert "[stopped]\n" in out and "w150" not in out
    assert "agent> 1 messages\n" in out  # the stopped turn left nothing

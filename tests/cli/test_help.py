"""`--help` of the command line and of each command, the version, and the two ways to start it."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from createagents import __version__
from createagents.cli import main, parse_args

from .conftest import cli

FLAGS = {
    "serve": ["TARGET", "--provider", "--tools", "--provider-api-key", "--host", "--port", "--api-key",
              "--max-concurrent-per-key", "--cors-origin", "--shutdown-grace", "--insecure-no-auth",
              "CREATEAGENTS_SERVER_API_KEYS", "CREATEAGENTS_PROVIDER"],
    "chat": ["TARGET", "--provider", "--model", "--base-url", "--api-key", "--instructions", "--tools", "--agent",
             "/clear", "Ctrl-C"],
    "run": ["TARGET", "PROMPT", "--provider", "--model", "--base-url", "--api-key", "--tools", "--agent",
            "exit codes", "< notes.txt"],
    "demo": ["--provider", "--model", "CREATEAGENTS_PROVIDER"],
    "mcp": ["TARGET", "--provider", "--model", "--agent", "--log-level", "stdio"],
}  # fmt: skip


@pytest.mark.parametrize("command", sorted(FLAGS))
def test_each_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: createagents {command} ")
    missing = [flag for flag in FLAGS[command] if flag not in text]
    assert missing == []


def test_the_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert all(f"    {command} " in text for command in FLAGS)


def test_no_command_or_an_unknown_one_is_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "the following arguments are required: COMMAND" in capsys.readouterr().err
    assert main(["deploy"]) == 2
    assert "invalid choice: 'deploy'" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"createagents {__version__}\n"


def test_python_dash_m_and_the_console_script() -> None:
    found = cli("run", "--help")
    assert found.returncode == 0 and found.stdout.startswith("usage: createagents run ")
    script = Path(sys.executable).parent / ("createagents.exe" if sys.platform == "win32" else "createagents")
    if not script.exists():
        pytest.skip("the package is not installed with its console script here")
    found = subprocess.run([str(script), "demo", "--help"], capture_output=True, text=True, timeout=60)
    assert found.returncode == 0 and found.stdout.startswith("usage: createagents demo ")


def _documented_commands() -> list[str]:
    """Each `createagents ...` command line in the ```bash blocks of docs/cli.md, without redirections and comments."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    found = []
    for block in re.findall(r"^```bash\n(.*?)^```", page, re.S | re.M):
        for line in block.splitlines():
            if "createagents " in line:
                command = line[line.index("createagents ") :]
                found.append(re.split(r" [<#]", command)[0].strip())
    return found


def test_every_documented_command_line_parses() -> None:
    commands = _documented_commands()
    assert len(commands) >= 15 and {c.split()[1] for c in commands} == {"serve", "chat", "run", "demo", "mcp"}
    for command in commands:
        args = parse_args(shlex.split(command)[1:])
        assert args.handler is not None, command


def test_the_prompt_of_run_may_follow_its_flags() -> None:
    args = parse_args(["run", "app:agents", "--agent", "support", "Where is order 42?"])
    assert (args.first, args.second, args.agent) == ("app:agents", "Where is order 42?", "support")
    args = parse_args(["run", "--provider", "test", "hi", "--model", "m"])
    assert (args.first, args.second, args.model) == ("hi", None, "m")
    with pytest.raises(SystemExit):
        parse_args(["run", "a:b", "one", "--model", "m", "two"])  # three positionals
    with pytest.raises(SystemExit):
        parse_args(["chat", "a:b", "--model", "m", "stray"])  # chat takes one positional

"""`createagents demo`: the first thing a new user sees reads like a real conversation."""

from __future__ import annotations

import io
import re
import sys

import pytest

from createagents.cli import main

from .conftest import clean_env, cli


def test_the_offline_demo_calls_the_tools_with_the_questions_arguments() -> None:
    found = cli("demo")
    assert found.returncode == 0, found.stderr
    out = found.stdout
    assert "demo: offline, on a scripted model" in out
    assert "  [calling] add(a=2, b=3)\n" in out
    assert '  [calling] get_weather(city="Lisbon")\n' in out
    assert '  [calling] currentdate(timezone="Europe/Lisbon")\n' in out
    assert "  [result]  add -> 5\n" in out
    assert "  [result]  get_weather -> 22 C and sunny in Lisbon\n" in out
    answer = re.search(
        r"agent> (2 \+ 3 is 5\. In Lisbon it is 22 C and sunny, and the local time is \d\d:\d\d \(\w+\)\.)", out
    )
    assert answer, out  # the tool results, in a sentence
    assert re.search(r"agent> 2 \+ 3 = 5; Lisbon: 22 C and sunny at \d\d:\d\d local time\.\n", out)
    figures = re.findall(r"\[(\d+) tool calls?, (\d+) prompt \+ (\d+) completion tokens, \d+ ms\]", out)
    assert [calls for calls, _, _ in figures] == ["3", "0"]
    assert all(int(prompt) > 0 and int(completion) > 0 for _, prompt, completion in figures)
    assert "[history: 8 messages]" in out
    assert found.stderr == ""


def test_the_demo_streams_the_answer_word_by_word(monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[str] = []

    class Recorder(io.StringIO):
        def write(self, text: str) -> int:
            writes.append(text)
            return super().write(text)

    monkeypatch.setattr(sys, "stdout", Recorder())
    assert main(["demo"]) == 0
    start = writes.index("agent> ")
    words = writes[start + 1 : writes.index("\n", start)]
    assert "".join(words).startswith("2 + 3 is 5.") and len(words) >= 15  # one write per word


def test_the_demo_runs_on_the_provider_the_environment_or_flags_name() -> None:
    found = cli("demo", env=clean_env(CREATEAGENTS_PROVIDER="test", CREATEAGENTS_MODEL="demo-model"))
    assert found.returncode == 0, found.stderr
    assert "demo: provider=test model=demo-model" in found.stdout
    found = cli("demo", "--provider", "test", "--model", "flag-model")
    assert found.returncode == 0 and "demo: provider=test model=flag-model" in found.stdout


def test_a_demo_on_an_unreachable_provider_is_one_line_and_exit_code_1() -> None:
    found = cli("demo", "--provider", "ollama", "--model", "m", "--base-url", "http://127.0.0.1:9")
    assert found.returncode == 1
    assert found.stderr.startswith("error: ProviderUnavailableError: ") and found.stderr.count("\n") == 1


def test_a_model_without_a_provider_is_an_error_not_the_offline_demo() -> None:
    found = cli("demo", "--model", "llama3.2")
    assert found.returncode == 2
    assert found.stderr.startswith("error: ConfigurationError: CreateAgent needs a provider")

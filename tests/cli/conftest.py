"""Helpers for the command-line tests: a clean environment, a subprocess runner, importable app modules."""

from __future__ import annotations

import io
import itertools
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_PREFIXES = ("CREATEAGENTS_", "OPENAI_", "AZURE_OPENAI_", "OLLAMA_")
_names = itertools.count()


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any provider configuration, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PREFIXES)}
    env.update(extra)
    return env


def cli(
    *args: str, stdin: str | None = None, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m createagents ARGS` in a fresh interpreter; stdin is empty unless given."""
    return subprocess.run(
        [sys.executable, "-m", "createagents", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env if env is not None else clean_env(),
    )


@pytest.fixture(autouse=True)
def no_provider_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(_PREFIXES):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def empty_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process commands read an empty, piped stdin unless a test gives another."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))


@pytest.fixture
def app_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Write a module into a fresh directory, made the current one; returns its (unique) importable name.

    `sys.path` and `sys.modules` are restored afterwards.
    """
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)

    def write(source: str) -> str:
        name = f"cli_app_{os.getpid()}_{next(_names)}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        return name

    yield write
    for name in set(sys.modules) - before:
        if name.startswith("cli_app_"):
            del sys.modules[name]

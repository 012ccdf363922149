"""`createagents serve`: flags -> `createagents.serving.serve(...)`, with the call replaced; then end to end."""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import types
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from createagents import CreateAgent
from createagents.adapters import structured_logging
from createagents.cli import main

from .conftest import clean_env


class FakeServing(types.ModuleType):
    """Stands in for `createagents.serving`: records each call, checks the agents work while served."""

    def __init__(self, fail: BaseException | None = None) -> None:
        super().__init__("createagents.serving")
        self.calls: list[tuple[Any, dict[str, Any]]] = []
        self.answers: list[str] = []
        self.fail = fail

    async def serve(self, agents: Any, *, ready: Callable[[int], None], **kwargs: Any) -> None:
        self.calls.append((agents, kwargs))
        ready(kwargs["port"] or 43210)
        first = agents if isinstance(agents, CreateAgent) else next(iter(agents.values()))
        if first.provider == "test":  # offline: no network in these tests
            self.answers.append(await first.ask("ping"))  # open and usable while served
        if self.fail is not None:
            raise self.fail


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """serve turns createagents' logs on (to this test's stderr); put the logger back as it was."""
    logger = logging.getLogger("createagents")
    handlers, level, state = list(logger.handlers), logger.level, dict(structured_logging._state)
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
    structured_logging._state.update(state)


@pytest.fixture
def serving(monkeypatch: pytest.MonkeyPatch) -> FakeServing:
    fake = FakeServing()
    monkeypatch.setitem(sys.modules, "createagents.serving", fake)
    return fake


def test_flags_reach_serve(serving: FakeServing, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "serve", "--provider", "test", "--model", "m", "--tools", "currentdate",
            "--host", "0.0.0.0", "--port", "8080", "--api-key", "k1", "--api-key", "k2",
            "--cors-origin", "https://a.example", "--cors-origin", "https://b.example",
            "--shutdown-grace", "5", "--max-concurrent-per-key", "3", "--insecure-no-auth",
        ]
    )  # fmt: skip
    assert code == 0
    [(agent, kwargs)] = serving.calls
    assert kwargs == {
        "host": "0.0.0.0",
        "port": 8080,
        "api_keys": ["k1", "k2"],
        "shutdown_grace": 5.0,
        "max_concurrent_per_key": 3,
        "cors_origins": ["https://a.example", "https://b.example"],
        "allow_insecure_no_auth": True,
    }
    assert isinstance(agent, CreateAgent) and (agent.provider, agent.model) == ("test", "m")
    assert [t.name for t in agent.tools] == ["currentdate"]
    assert serving.answers[0].startswith("Tool results: currentdate -> ")
    assert agent.closed  # closed once the server stopped
    assert "createagents: serving default, m at http://0.0.0.0:8080/v1 (Ctrl-C or SIGTERM stops" in (
        capsys.readouterr().err
    )


def test_the_defaults(serving: FakeServing, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--provider", "test"]) == 0
    [(_, kwargs)] = serving.calls
    assert kwargs == {
        "host": "127.0.0.1",
        "port": 8080,
        "api_keys": [],
        "shutdown_grace": 30.0,
        "cors_origins": [],
        "allow_insecure_no_auth": False,
    }  # max_concurrent_per_key, not given, is left to serve's own default
    assert "serving default, test at http://127.0.0.1:8080/v1" in capsys.readouterr().err


def test_port_0_shows_the_port_serve_bound(serving: FakeServing, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--provider", "test", "--host", "::1", "--port", "0"]) == 0
    assert "at http://[::1]:43210/v1" in capsys.readouterr().err


def test_an_empty_api_key_is_refused_not_ignored(serving: FakeServing, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--provider", "test", "--host", "0.0.0.0", "--api-key", ""]) == 2
    assert "error: ConfigurationError: an --api-key is empty" in capsys.readouterr().err
    assert serving.calls == []


def test_log_level_turns_the_libraries_logs_on(serving: FakeServing, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--provider", "test", "--log-level", "info"]) == 0
    assert "event='model_call' provider='test'" in capsys.readouterr().err  # the fake's "ping", logged
    assert main(["serve", "--provider", "test", "--log-level", "info", "--log-json"]) == 0
    assert '"event": "model_call"' in capsys.readouterr().err
    assert main(["serve", "--provider", "test"]) == 0  # warning: a successful call is not logged
    assert "model_call" not in capsys.readouterr().err
    assert main(["serve", "--provider", "test", "--log-level", "loud"]) == 2


def test_api_key_is_the_servers_and_provider_api_key_the_providers(serving: FakeServing) -> None:
    # --api-key protects the server; it is not given to OpenAI, so the provider has no key and refuses
    assert main(["serve", "--provider", "openai", "--model", "m", "--api-key", "server-key"]) == 2
    assert serving.calls == []
    assert main(["serve", "--provider", "openai", "--model", "m", "--provider-api-key", "sk-x"]) == 0
    [(agent, _)] = serving.calls
    assert isinstance(agent, CreateAgent) and agent.provider == "openai" and agent.closed


def test_a_target_is_served_whole(
    serving: FakeServing, app_module: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    module = app_module(
        """
        from createagents import CreateAgent
        def agents():
            return {"support": CreateAgent(provider="test"), "sales": CreateAgent(provider="test", model="s")}
        """
    )
    assert main(["serve", f"{module}:agents", "--api-key", "k"]) == 0
    [(agents, kwargs)] = serving.calls
    assert list(agents) == ["support", "sales"] and kwargs["api_keys"] == ["k"]
    assert "serving support, sales at http://127.0.0.1:8080/v1" in capsys.readouterr().err
    assert serving.answers == ["You said: ping"]
    assert all(a.closed for a in agents.values())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "argument --port: a port is 0..65535, got 70000"),
        (["--port", "http"], "argument --port: not a whole number: 'http'"),
        (["--shutdown-grace", "-1"], "argument --shutdown-grace: must be a finite number >= 0, got -1"),
        (["--shutdown-grace", "inf"], "argument --shutdown-grace: must be a finite number >= 0, got inf"),
        (["--max-concurrent-per-key", "0"], "argument --max-concurrent-per-key: must be a whole number >= 1, got 0"),
    ],
)
def test_bad_server_flags_are_exit_code_2(
    serving: FakeServing, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["serve", "--provider", "test", *args]) == 2
    assert message in capsys.readouterr().err
    assert serving.calls == []


def test_a_bad_target_is_exit_code_2_and_nothing_is_served(
    serving: FakeServing, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "cli_nowhere_xyz:agents"]) == 2
    assert capsys.readouterr().err == (
        "error: ConfigurationError: target 'cli_nowhere_xyz:agents': no module named 'cli_nowhere_xyz' "
        f"(looked in the current directory {os.getcwd()} and sys.path)\n"
    )
    assert serving.calls == []


def test_a_server_failure_is_one_line_and_exit_code_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeServing(fail=OSError("[Errno 98] address already in use"))
    monkeypatch.setitem(sys.modules, "createagents.serving", fake)
    assert main(["serve", "--provider", "test"]) == 1
    assert capsys.readouterr().err.endswith("\nerror: OSError: [Errno 98] address already in use\n")
    assert fake.calls[0][0].closed


def test_without_the_serving_module_serve_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "createagents.serving", None)  # importing it raises ImportError
    assert main(["serve", "--provider", "test"]) == 2
    assert capsys.readouterr().err.startswith(
        "error: ConfigurationError: serve needs createagents.serving, which cannot be imported: "
    )


def _post(url: str, body: dict[str, Any], key: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM")
def test_serve_end_to_end(tmp_path: Path) -> None:
    """The real `createagents.serving`: the offline agent on a free port, its key required, stopped by SIGTERM."""
    try:
        importlib.import_module("createagents.serving")
    except ImportError:
        pytest.skip("createagents.serving cannot be imported")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "createagents", "serve", "--provider", "test", "--model", "test",
            "--tools", "currentdate", "--api-key", "k", "--port", "0", "--shutdown-grace", "2",
        ],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, env=clean_env(),
        text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        line = process.stderr.readline()  # the line `ready` prints once the socket is bound
        found = re.match(r"createagents: serving default, test at (http://127\.0\.0\.1:\d+/v1) ", line)
        assert found, line + process.stderr.read()
        url = found.group(1) + "/chat/completions"
        body = {"model": "test", "messages": [{"role": "user", "content": "What time is it?"}]}
        assert _post(url, body, None)[0] == 401  # no key, no answer
        assert _post(url, body, "wrong")[0] == 401
        status, answer = _post(url, body, "k")
        assert status == 200, answer
        assert answer["choices"][0]["message"]["content"].startswith("Tool results: currentdate -> ")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.communicate()

"""A private `redis-server` for the tests: 127.0.0.1, a free port, no persistence, a temp dir.

    server = start_redis()          # or: with start_redis() as server / async with start_redis() as server
    store = RedisConversationStore(server.url)
    ...
    server.stop()                   # stops only the process it started, by PID

When no `redis-server` can be started the calling test is skipped with the
reason, except when the environment variable `CI` is set (CI sets
`CI=true`): there a missing server is a failure, never a silent skip. Set
`REDIS_SERVER` to the binary's path to use one that is not on `PATH`.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import NoReturn

import pytest

__all__ = ["RedisServer", "on_ci", "start_redis"]

START_TIMEOUT = 10.0  # seconds until the server must answer PING
_PORT_ATTEMPTS = 5  # a free port can be taken between finding it and binding it: try again


class RedisServer:
    """A running `redis-server` this process started; `stop()` (or leaving its `with` block) ends it."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, workdir: Path) -> None:
        self.process = process
        self.pid = process.pid
        self.port = port
        self.host = "127.0.0.1"
        self.url = f"redis://{self.host}:{port}/0"
        self.workdir = workdir
        atexit.register(self.stop)  # never leave a server behind, even when a test run is interrupted

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def ping(self, timeout: float = 1.0) -> bool:
        return _ping(self.port, timeout)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s) and remove its directory; idempotent."""
        atexit.unregister(self.stop)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # Popen signals its own PID only
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> RedisServer:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RedisServer(url={self.url!r}, pid={self.pid}, running={self.running})"


def start_redis(*, binary: str | None = None, timeout: float = START_TIMEOUT) -> RedisServer:
    """Start a private `redis-server` and wait until it answers PING.

    Skips the calling test when no server can be started, or fails it when
    `CI` is set.
    """
    path = binary or os.environ.get("REDIS_SERVER") or shutil.which("redis-server")
    if not path:
        _unavailable(
            "redis-server is not installed (no `redis-server` on PATH and REDIS_SERVER is not set); "
            "install it, e.g. `apt-get install -y redis-server`"
        )
    last_error = ""
    for _ in range(_PORT_ATTEMPTS):
        workdir = Path(tempfile.mkdtemp(prefix="createagents-redis-"))
        port = _free_port()
        log = workdir / "redis.log"
        command = [
            path, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(workdir),
            "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes", "--logfile", "",
        ]  # fmt: skip
        try:
            with log.open("wb") as out:
                process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=workdir
                )
        except OSError as e:
            shutil.rmtree(workdir, ignore_errors=True)
            _unavailable(f"cannot run {path!r}: {e}")
        server = RedisServer(process, port, workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if _ping(port, 0.5):
                return server
            time.sleep(0.01)
        output = log.read_text(errors="replace")[-2000:]
        server.stop()
        last_error = (
            f"{path} exited with status {process.returncode}" if process.returncode is not None else
            f"{path} did not answer PING on port {port} within {timeout} s"
        ) + (f"; its log:\n{output}" if output.strip() else "")  # fmt: skip
        if "Address already in use" not in output:
            break
    _unavailable(f"redis-server could not be started: {last_error}")


def on_ci() -> bool:
    """Whether this runs under CI (`CI` set, as CI services set `CI=true`), where a missing service fails."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str) -> NoReturn:
    if on_ci():
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _ping(port: int, timeout: float) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"PING\r\n")
        return s.recv(64).startswith(b"+PONG")
    return False

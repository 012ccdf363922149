"""What the benchmark scripts share: a keep-alive HTTP server in its own process, workers, CPU clocks, the machine.

Each script (`run`, `responses`, `structured`) answers requests its own way
(`KeepAlive.request`) and measures its own workloads; the plumbing around
them is here once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class WorkerFailed(Exception):
    """A worker process failed (an error, or a wrong answer)."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux `/proc`)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class KeepAlive(asyncio.Protocol):
    """Splits keep-alive HTTP/1.1 requests (Content-Length bodies) and hands each to `request`."""

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (head_end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:head_end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < head_end + 4 + length:
                return
            body = self.buffer[head_end + 4 : head_end + 4 + length]
            self.buffer = self.buffer[head_end + 4 + length :]
            self.request(head, body)

    def request(self, head: str, body: bytes) -> None:
        """Answer one request; `head` is its request line and headers."""
        raise NotImplementedError

    def not_found(self) -> None:
        assert self.transport is not None
        self.transport.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")


async def serve(protocol: Callable[[], asyncio.Protocol], port_file: str, *, backlog: int = 100) -> None:
    """Serve on a free port of 127.0.0.1 until killed; the port is written to `port_file` once listening."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(protocol, "127.0.0.1", 0, backlog=backlog)
    Path(port_file).write_text(str(server.sockets[0].getsockname()[1]))  # noqa: ASYNC240 - once, before serving
    async with server:
        await server.serve_forever()


def start_server(module: str, args: Sequence[str] = (), *, wait: float = 10.0) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m <module> [args...] <port file>` in its own process; its URL (without `/v1`) once it listens."""
    port_file = Path(tempfile.mkdtemp(prefix="bench-")) / "port"
    server = subprocess.Popen([sys.executable, "-m", module, *args, str(port_file)], cwd=ROOT)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if port_file.exists() and port_file.read_text():
            return server, f"http://127.0.0.1:{port_file.read_text()}"
        if server.poll() is not None:
            break
        time.sleep(0.025)
    server.kill()
    raise SystemExit("the benchmark server did not start")


def run_worker(module: str, args: Sequence[str], server_pid: int, what: str) -> dict[str, Any]:
    """`python -m <module> worker [args...]`: its last stdout line as JSON, plus the server's CPU meanwhile."""
    before = cpu_seconds(server_pid)
    out = subprocess.run(
        [sys.executable, "-m", module, "worker", *args], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    if out.returncode != 0:
        raise WorkerFailed(f"{what} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["server_cpu_s"] = cpu_seconds(server_pid) - before
    return result


def machine(packages: Iterable[str]) -> dict[str, Any]:
    """Python, platform, CPU model and cores, and the installed versions of `packages`."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in packages:
        with contextlib.suppress(PackageNotFoundError):
            versions[package] = version(package)
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        cpu = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if "model name" in ln
            ),
            cpu,
        )
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "versions": versions,
    }

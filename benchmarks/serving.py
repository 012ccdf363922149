"""The serving benchmark: the createagents server against LiteLLM's proxy, relaying the same fake model.

    python -m benchmarks.serving             # full run (3 rounds): writes benchmarks/results/serving.json,
                                             # docs/performance-serving.md and docs/performance-serving.png
    python -m benchmarks.serving --smoke     # seconds, tiny sizes: checks every answer; results go to a
                                             # temporary directory unless --out / --docs say otherwise
    python -m benchmarks.serving --no-litellm --rounds 1   # our server only

Four kinds of process, so that each one's CPU and memory are its own: the
fake provider (`benchmarks.server`, raw asyncio, pre-encoded chunks), the
relaying server under test (ours: `createagents.serving.serve` with
`CreateAgent(provider="openai", base_url=<fake provider>/v1)`, configured as
`createagents serve` is by default; LiteLLM: its `litellm --config` proxy
with one model pointing at the fake provider as an OpenAI-compatible model),
a lean raw-aiohttp client per workload, and this runner, which reads the
relaying server's CPU (utime + stime of its process tree) and memory (VmHWM,
reset through /proc/<pid>/clear_refs, and VmRSS sampled every 10 ms) from
/proc around the client's measured section only.

Each round starts every server fresh, in alternating order (ours, LiteLLM;
then LiteLLM, ours; ...), and runs, on each: `concurrent` (N streams at once,
paced so that all are open together: errors, wall time, peak RSS minus idle
RSS per stream), `long` (one stream of many tokens: server CPU per relayed
token) and `ttft` (sequential short streams, alternating a request straight
to the fake provider with one through the server: the added time to first
token). Results are medians over rounds; ratios are taken within a round,
then their median. When LiteLLM's proxy fails N concurrent streams, the
failure is recorded and the proxy (restarted) gets smaller N, which the page
says.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.server import expected_text

ROOT = Path(__file__).resolve().parent.parent
MODEL = "bench"
SERVER_KEY = "sk-bench-server-key"  # what the clients send to the relaying server
PROVIDER_KEY = "sk-bench-provider-key"  # what the relaying server sends to the fake provider
CONTENDERS = ("createagents", "litellm")
FULL: dict[str, Any] = {
    "long": 20_000,  # tokens in one stream
    "concurrent": (1000, 100, 20),  # streams at once, tokens each, ms between tokens
    "ttft": (100, 5),  # sequential streams (each way), tokens each
    "warmup": 20,  # sequential short streams before every measured section
    "fallback": (500, 250, 100),  # N tried for a server that fails the full N
}
SMOKE: dict[str, Any] = {"long": 2_000, "concurrent": (50, 20, 5), "ttft": (10, 5), "warmup": 3, "fallback": (20,)}
TARGETS = {
    "cpu_ratio": 0.25,  # our server CPU per relayed token / LiteLLM proxy's, at most
    "concurrent": 1000,  # streams through one server process, with zero errors
    "added_ttft_ms": 2.0,  # median added time to first token, under
}
CLIENT_TIMEOUT = 900.0  # seconds for one client process, measured section included
LITELLM_START_TIMEOUT = 180.0


# -- the relaying server under test: ours ---------------------------------------------------------


async def _serve_ours(provider_url: str, port_file: str) -> None:
    """What `createagents serve --provider openai --model bench --base-url ... --api-key ...` runs."""
    from createagents import CreateAgent
    from createagents.adapters.structured_logging import configure_logging
    from createagents.serving import serve

    configure_logging("warning")  # the CLI's default
    agent = CreateAgent(provider="openai", model=MODEL, base_url=f"{provider_url}/v1", api_key=PROVIDER_KEY)

    def ready(port: int) -> None:
        Path(port_file).write_text(str(port))

    try:
        await serve(agent, port=0, api_keys=[SERVER_KEY], shutdown_grace=2.0, ready=ready)
    finally:
        await agent.aclose()


# -- the client: one workload, in its own process -------------------------------------------------


def _body(prompt: str) -> bytes:
    message = {"role": "user", "content": prompt}
    return json.dumps({"model": MODEL, "messages": [message], "stream": True}).encode()


async def _stream(session: Any, url: str, prompt: str, gauge: list[int] | None = None) -> dict[str, Any]:
    """One streamed chat completion: its text, time to first content and end, or the error it met.

    `gauge` ([open now, most open at once]) counts the streams between their 200 and their end.
    """
    headers = {"Authorization": f"Bearer {SERVER_KEY}", "Content-Type": "application/json"}
    start = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    done = False
    try:
        async with session.post(f"{url}/v1/chat/completions", data=_body(prompt), headers=headers) as response:
            if response.status != 200:
                text = (await response.read())[:200].decode(errors="replace")
                return {"error": f"HTTP {response.status}: {text}"}
            if gauge is not None:
                gauge[0] += 1
                gauge[1] = max(gauge[1], gauge[0])
            try:
                async for line in response.content:
                    if not line.startswith(b"data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        done = True
                        continue
                    event = json.loads(payload)
                    if "error" in event:
                        return {"error": f"error event: {json.dumps(event['error'])[:200]}"}
                    for choice in event.get("choices") or ():
                        content = (choice.get("delta") or {}).get("content")
                        if content:
                            if first is None:
                                first = time.perf_counter()
                            parts.append(content)
            finally:
                if gauge is not None:
                    gauge[0] -= 1
    except Exception as e:
        return {"error": f"{type(e).__name__}: {str(e)[:200]}"}
    end = time.perf_counter()
    if not done:
        return {"error": "the stream ended without [DONE]"}
    return {"text": "".join(parts), "ttft": (first or end) - start, "wall": end - start}


def _check(result: dict[str, Any], tokens: int) -> str | None:
    """Why this stream failed, or None."""
    if "error" in result:
        return str(result["error"])
    if result["text"] != expected_text(tokens):
        return f"wrong text: {result['text'][:60]!r}..."
    return None


async def _client(spec: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    workload, url, direct = spec["workload"], spec["url"], spec["direct"]
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=60, sock_read=300)
    connector = aiohttp.TCPConnector(limit=0, force_close=workload == "concurrent")
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        for i in range(spec["warmup"]):  # the server's lazy imports and its connection to the provider
            why = _check(await _stream(session, url, "stream 5"), 5)
            if why:
                raise SystemExit(f"warm-up {i}: {why}")
            if workload == "ttft":
                why = _check(await _stream(session, direct, "stream 5"), 5)
                if why:
                    raise SystemExit(f"direct warm-up {i}: {why}")
        print("ready", flush=True)
        sys.stdin.readline()  # the runner reads the server's counters, then says go
        if workload == "long":
            n = spec["tokens"]
            result = await _stream(session, url, f"stream {n}")
            why = _check(result, n)
            return {"errors": int(why is not None), "error_samples": [why] if why else [], "wall_s": result.get("wall")}
        if workload == "concurrent":
            n, tokens, delay = spec["n"], spec["tokens"], spec["delay_ms"]
            gauge = [0, 0]

            async def one() -> str | None:
                return _check(await _stream(session, url, f"paced {tokens} {delay}", gauge), tokens)

            wall0 = time.perf_counter()
            failed = [why for why in await asyncio.gather(*(one() for _ in range(n))) if why]
            wall = time.perf_counter() - wall0
            samples = sorted({why[:160] for why in failed})[:5]
            return {"errors": len(failed), "error_samples": samples, "wall_s": wall, "max_open": gauge[1]}
        if workload == "ttft":
            n, tokens = spec["n"], spec["tokens"]
            through: list[float] = []
            straight: list[float] = []
            errors: list[str] = []
            for i in range(n):
                order = ((url, through), (direct, straight)) if i % 2 else ((direct, straight), (url, through))
                for target, times in order:
                    result = await _stream(session, target, f"stream {tokens}")
                    why = _check(result, tokens)
                    if why:
                        errors.append(why)
                    else:
                        times.append(result["ttft"])
            if not through or not straight:
                return {"errors": len(errors), "error_samples": errors[:5]}
            paired = [a - b for a, b in zip(through, straight, strict=False)]
            return {
                "errors": len(errors),
                "error_samples": sorted(set(errors))[:5],
                "server_median_ms": statistics.median(through) * 1e3,
                "direct_median_ms": statistics.median(straight) * 1e3,
                "added_median_ms": (statistics.median(through) - statistics.median(straight)) * 1e3,
                "added_paired_median_ms": statistics.median(paired) * 1e3,
                "server_p90_ms": statistics.quantiles(through, n=10)[-1] * 1e3 if len(through) > 1 else None,
            }
        raise SystemExit(f"unknown workload {workload}")


# -- /proc: a process tree's CPU and memory -------------------------------------------------------


def _tree(pid: int) -> list[int]:
    """`pid` and its living descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, ()))
    return found


def _cpu_seconds(pid: int) -> float:
    """CPU (user + system) of the process tree: living processes, and the children its root has reaped."""
    total = 0
    for p in _tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if p == pid else 0)
    return total / os.sysconf("SC_CLK_TCK")


def _status_kb(pid: int, field: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _rss_mb(pid: int) -> float:
    return sum(_status_kb(p, "VmRSS") for p in _tree(pid)) / 1024


def _reset_peaks(pids: list[int]) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0, our own processes); False where that is refused."""
    ok = True
    for p in pids:
        try:
            Path(f"/proc/{p}/clear_refs").write_text("5")
        except OSError:
            ok = False
    return ok


class _Sampler:
    """VmRSS of a process tree every 10 ms, in a thread: the peak, for when VmHWM cannot be reset."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self.pids = _tree(pid)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, sum(_status_kb(p, "VmRSS") for p in self.pids) / 1024)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# -- processes ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port_file(process: subprocess.Popen[bytes], port_file: Path, what: str, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_file.exists() and port_file.read_text().strip():
            return int(port_file.read_text())
        if process.poll() is not None:
            break
        time.sleep(0.05)
    _stop(process)
    raise RuntimeError(f"{what} did not start")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group we started (a server and any workers of its own), then SIGKILL."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # stragglers of the group, if any


def start_provider(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port_file = workdir / "provider.port"
    port_file.unlink(missing_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.server", str(port_file)], cwd=ROOT, start_new_session=True
    )
    return process, f"http://127.0.0.1:{_wait_port_file(process, port_file, 'the fake provider')}"


def start_ours(provider_url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port_file = workdir / "ours.port"
    port_file.unlink(missing_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.serving", "ours", provider_url, str(port_file)],
        cwd=ROOT,
        start_new_session=True,
    )
    return process, f"http://127.0.0.1:{_wait_port_file(process, port_file, 'the createagents server')}"


def litellm_executable() -> str | None:
    """The `litellm` proxy command beside this interpreter, when litellm[proxy] is installed.

    Found without importing litellm: importing it here would load it, and its start-up work, into the runner.
    """
    import importlib.util

    found = Path(sys.executable).parent / "litellm"
    spec = importlib.util.find_spec("litellm")
    locations = list(spec.submodule_search_locations or ()) if spec else []
    if not found.exists() or not any((Path(p) / "proxy" / "proxy_server.py").exists() for p in locations):
        return None
    for extra in ("fastapi", "uvicorn", "backoff", "yaml"):  # what `litellm --config` needs beyond litellm itself
        if importlib.util.find_spec(extra) is None:
            return None
    return str(found)


def litellm_config(provider_url: str) -> str:
    return (
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: {provider_url}/v1\n"
        f"      api_key: {PROVIDER_KEY}\n"
        "general_settings:\n"
        f"  master_key: {SERVER_KEY}\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
    )


LITELLM_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download of the model cost map at start
    "LITELLM_LOG": "ERROR",
    "LITELLM_TELEMETRY": "False",
    "LITELLM_DONT_SHOW_FEEDBACK_BOX": "true",
}


def litellm_command(config: Path, port: int) -> list[str]:
    exe = litellm_executable()
    assert exe is not None
    return [exe, "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]


def start_litellm(provider_url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    import urllib.request

    config = workdir / "litellm.yaml"
    config.write_text(litellm_config(provider_url))
    port = _free_port()
    log = (workdir / "litellm.log").open("ab")
    process = subprocess.Popen(
        litellm_command(config, port),
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **LITELLM_ENV},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + LITELLM_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health/liveliness", timeout=2) as answer:
            if answer.status == 200:
                return process, url
        time.sleep(0.25)
    _stop(process)
    tail = (workdir / "litellm.log").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"the LiteLLM proxy did not start within {LITELLM_START_TIMEOUT:.0f} s:\n{tail}")


STARTERS: dict[str, Callable[[str, Path], tuple[subprocess.Popen[bytes], str]]] = {
    "createagents": start_ours,
    "litellm": start_litellm,
}


class ClientFailed(Exception):
    """The client process failed (an exception, a timeout), not one of its streams."""


def measure(
    spec: dict[str, Any], server_pid: int, provider_pid: int, *, memory: bool = False, idle_s: float = 0.0
) -> dict[str, Any]:
    """Run one client workload; the server's CPU (and memory) over its measured section only."""
    client = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.serving", "client", json.dumps(spec)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert client.stdin is not None and client.stdout is not None
        line = client.stdout.readline()
        if line.strip() != "ready":
            client.wait(30)
            raise ClientFailed(f"{spec['workload']}: {(line + (client.stderr.read() if client.stderr else ''))[-600:]}")
        out: dict[str, Any] = {}
        if idle_s:  # what the server spends doing nothing: background tasks
            cpu0 = _cpu_seconds(server_pid)
            time.sleep(idle_s)
            out["idle_cpu_pct"] = (_cpu_seconds(server_pid) - cpu0) / idle_s * 100
        pids = _tree(server_pid)
        if memory:
            out["hwm_reset"] = _reset_peaks(pids)
            out["idle_rss_mb"] = _rss_mb(server_pid)
        sampler = _Sampler(server_pid) if memory else contextlib.nullcontext()
        others = _others()
        if others:
            INTERFERENCE.append(f"{spec['workload']} (N={spec.get('n', '-')}): {'; '.join(others)}")
        with sampler:
            cpu0, provider0 = _cpu_seconds(server_pid), _cpu_seconds(provider_pid)
            client.stdin.write("go\n")
            client.stdin.flush()
            try:
                stdout, stderr = client.communicate(timeout=CLIENT_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise ClientFailed(f"{spec['workload']}: no answer within {CLIENT_TIMEOUT:.0f} s") from None
            out["server_cpu_s"] = _cpu_seconds(server_pid) - cpu0
            out["provider_cpu_s"] = _cpu_seconds(provider_pid) - provider0
            if memory:
                out["hwm_mb"] = sum(_status_kb(p, "VmHWM") for p in pids) / 1024
        if memory:
            out["sampled_peak_rss_mb"] = sampler.peak  # type: ignore[union-attr]
            hwm = out["hwm_mb"] if out["hwm_reset"] and len(pids) == 1 else 0.0  # one process: its own peak
            out["peak_rss_mb"] = max(hwm, out["sampled_peak_rss_mb"])
            out["server_processes"] = len(pids)
        if client.returncode != 0:
            raise ClientFailed(f"{spec['workload']}: {stderr.strip()[-600:]}")
        out.update(json.loads(stdout.strip().splitlines()[-1]))
        return out
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()


# -- a round: one server, fresh, through every workload ----------------------------------------


def _one_server(
    name: str, provider: subprocess.Popen[bytes], provider_url: str, sizes: dict[str, Any], workdir: Path, log: Any
) -> dict[str, Any]:
    """One fresh server through every workload; at smaller N (restarted) while N concurrent streams fail."""
    result: dict[str, Any] = {}
    failed: list[dict[str, Any]] = []
    n, tokens, delay = sizes["concurrent"]
    tries = [n, *(k for k in sizes["fallback"] if k < n)]
    for i, tried in enumerate(tries):
        t0 = time.perf_counter()
        server, url = STARTERS[name](provider_url, workdir)
        result.setdefault("startup_s", time.perf_counter() - t0)
        try:
            result.setdefault("fresh_rss_mb", _rss_mb(server.pid))
            spec = {"workload": "concurrent", "url": url, "direct": provider_url, "warmup": sizes["warmup"]}
            spec.update(n=tried, tokens=tokens, delay_ms=delay)
            try:
                got = measure(spec, server.pid, provider.pid, memory=True, idle_s=1.0)
                got["kib_per_stream"] = (got["peak_rss_mb"] - got["idle_rss_mb"]) * 1024 / tried
                got["cpu_per_token_us"] = got["server_cpu_s"] / (tried * tokens) * 1e6
            except ClientFailed as e:
                got = {"errors": tried, "error_samples": [str(e)[-300:]], "client_failed": True}
            got.update(n=tried, tokens=tried * tokens)
            log(f"  {name:12} concurrent {tried}: {_brief(got)}")
            if got["errors"] and i < len(tries) - 1:
                failed.append({k: got.get(k) for k in ("n", "errors", "error_samples", "wall_s", "max_open")})
                continue  # a fresh server, a smaller N
            result["concurrent"], result["concurrent_failed"] = got, failed
            _rest(name, result, server, url, provider, provider_url, sizes, log)
            return result
        finally:
            _stop(server)
    return result


def _rest(
    name: str,
    result: dict[str, Any],
    server: subprocess.Popen[bytes],
    url: str,
    provider: subprocess.Popen[bytes],
    provider_url: str,
    sizes: dict[str, Any],
    log: Any,
) -> None:
    base = {"url": url, "direct": provider_url, "warmup": sizes["warmup"]}
    try:
        long = measure({**base, "workload": "long", "tokens": sizes["long"]}, server.pid, provider.pid)
        long["tokens"] = sizes["long"]
        long["cpu_per_token_us"] = long["server_cpu_s"] / sizes["long"] * 1e6
        long["tokens_per_s"] = sizes["long"] / long["wall_s"] if long.get("wall_s") else None
    except ClientFailed as e:
        long = {"errors": 1, "error_samples": [str(e)[-300:]], "client_failed": True}
    result["long"] = long
    log(f"  {name:12} long: {_brief(long)}")
    n, tokens = sizes["ttft"]
    try:
        ttft = measure({**base, "workload": "ttft", "n": n, "tokens": tokens}, server.pid, provider.pid)
    except ClientFailed as e:
        ttft = {"errors": n, "error_samples": [str(e)[-300:]], "client_failed": True}
    result["ttft"] = ttft
    log(f"  {name:12} ttft: {_brief(ttft)}")


def _brief(d: dict[str, Any]) -> str:
    keep = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in d.items() if k != "error_samples"}
    if d.get("error_samples"):
        keep["first_error"] = d["error_samples"][0][:160]
    return json.dumps(keep)


# -- the run ------------------------------------------------------------------------------------


def _others() -> list[str]:
    """Other benchmarks or test runs on this machine right now (their command lines)."""
    found = subprocess.run(["pgrep", "-af", "benchmarks.run|pytest"], capture_output=True, text=True).stdout
    return [line[:120] for line in found.splitlines() if str(os.getpid()) != line.split(" ", 1)[0]]


INTERFERENCE: list[str] = []  # what else ran during a measured section: those timings are suspect


def wait_for_quiet(log: Callable[[str], None], poll_s: float = 60.0) -> None:
    """Timings on a small machine mean nothing while another benchmark or test run goes on: wait for them to end."""
    while True:
        found = _others()
        if not found:
            return
        log(f"waiting for {len(found)} other benchmark or test process(es) to finish, checking every {poll_s:.0f} s:")
        for line in found:
            log(f"  {line}")
        time.sleep(poll_s)


def run(rounds: int, smoke: bool, with_litellm: bool, log: Callable[[str], None] = print) -> dict[str, Any]:
    sizes = SMOKE if smoke else FULL
    contenders = ["createagents"]
    skipped: dict[str, str] = {}
    if with_litellm:
        if litellm_executable():
            contenders.append("litellm")
        else:
            skipped["litellm"] = "litellm[proxy] is not installed in this environment (pip install 'litellm[proxy]')"
    else:
        skipped["litellm"] = "left out (--no-litellm)"
    if "litellm" in skipped:
        log(f"litellm: {skipped['litellm']}")
    raw: dict[str, list[dict[str, Any] | None]] = {c: [None] * rounds for c in contenders}
    failures: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="createagents-serving-bench-"))
    provider, provider_url = start_provider(workdir)
    try:
        for r in range(rounds):
            order = contenders if r % 2 == 0 else contenders[::-1]
            for name in order:
                log(f"round {r + 1}/{rounds}: {name}")
                try:
                    raw[name][r] = _one_server(name, provider, provider_url, sizes, workdir, log)
                except RuntimeError as e:
                    failures.append(f"round {r + 1}, {name}: {e}")
                    log(f"  {name}: FAILED: {e}")
    finally:
        _stop(provider)
    litellm_log = workdir / "litellm.log"
    results = {
        "smoke": smoke,
        "date": datetime.date.today().isoformat(),
        "rounds": rounds,
        "sizes": sizes,
        "targets": TARGETS,
        "machine": machine(),
        "how": how(),
        "skipped": skipped,
        "raw": raw,
        "failures": failures,
        "interference": INTERFERENCE,
    }
    if litellm_log.exists():
        errors = [line for line in litellm_log.read_text(errors="replace").splitlines() if "Error" in line]
        results["litellm_log_errors"] = errors[-20:]
    shutil.rmtree(workdir, ignore_errors=True)
    results["summary"] = summarise(results)
    return results


# -- the summary: medians over rounds, ratios within a round ------------------------------------


METRICS: list[tuple[str, str]] = [  # (workload, key) taken from every round
    ("long", "cpu_per_token_us"),
    ("long", "server_cpu_s"),
    ("long", "wall_s"),
    ("long", "tokens_per_s"),
    ("long", "provider_cpu_s"),
    ("concurrent", "n"),
    ("concurrent", "errors"),
    ("concurrent", "wall_s"),
    ("concurrent", "max_open"),
    ("concurrent", "idle_rss_mb"),
    ("concurrent", "peak_rss_mb"),
    ("concurrent", "kib_per_stream"),
    ("concurrent", "server_cpu_s"),
    ("concurrent", "cpu_per_token_us"),
    ("concurrent", "idle_cpu_pct"),
    ("ttft", "added_median_ms"),
    ("ttft", "added_paired_median_ms"),
    ("ttft", "server_median_ms"),
    ("ttft", "direct_median_ms"),
    ("ttft", "server_p90_ms"),
    ("ttft", "errors"),
    ("", "startup_s"),
    ("", "fresh_rss_mb"),
]
RATIO_METRICS = [
    ("long", "cpu_per_token_us"),
    ("concurrent", "cpu_per_token_us"),
    ("concurrent", "kib_per_stream"),
    ("concurrent", "wall_s"),
    ("ttft", "server_median_ms"),
    ("concurrent", "peak_rss_mb"),
]


def _value(entry: dict[str, Any] | None, workload: str, key: str) -> float | None:
    if entry is None:
        return None
    part = entry.get(workload, {}) if workload else entry
    value = part.get(key) if isinstance(part, dict) else None
    if part.get("client_failed") if isinstance(part, dict) else False:
        return None if key not in ("errors", "n") else value
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _median(values: list[float | None]) -> float | None:
    done = [v for v in values if v is not None]
    return statistics.median(done) if done else None


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    raw: dict[str, list[dict[str, Any] | None]] = results["raw"]
    medians: dict[str, dict[str, Any]] = {
        name: {f"{w}.{k}" if w else k: _median([_value(e, w, k) for e in rounds]) for w, k in METRICS}
        for name, rounds in raw.items()
    }
    for name, rounds in raw.items():  # errors: the worst round, not the median
        for w in ("concurrent", "ttft", "long"):
            errs = [_value(e, w, "errors") for e in rounds]
            medians[name][f"{w}.errors"] = max((v for v in errs if v is not None), default=None)
        ns = [_value(e, "concurrent", "n") for e in rounds]
        medians[name]["concurrent.n"] = min((v for v in ns if v is not None), default=None)
        medians[name]["concurrent.failed_at"] = sorted(
            {a["n"] for e in rounds if e for a in e.get("concurrent_failed", [])}
        )
    ratios: dict[str, float | None] = {}
    if "litellm" in raw:
        for w, k in RATIO_METRICS:
            pairs = []
            for ours, theirs in zip(raw["createagents"], raw["litellm"], strict=True):
                a, b = _value(ours, w, k), _value(theirs, w, k)
                same_n = w != "concurrent" or _value(ours, w, "n") == _value(theirs, w, "n")
                if a is not None and b and same_n:
                    pairs.append(a / b)
            ratios[f"{w}.{k}"] = statistics.median(pairs) if pairs else None
    ours = medians.get("createagents", {})
    sizes = results["sizes"]
    rounds_ours = raw.get("createagents", [])
    zero_every_round = bool(rounds_ours) and all(
        e is not None
        and _value(e, "concurrent", "errors") == 0
        and _value(e, "concurrent", "n") == sizes["concurrent"][0]
        for e in rounds_ours
    )
    cpu_ratio = ratios.get("long.cpu_per_token_us")
    added = ours.get("ttft.added_median_ms")
    targets = [
        {
            "target": f"server CPU per relayed token ≤ {TARGETS['cpu_ratio']}x LiteLLM proxy's",
            "value": cpu_ratio,
            "unit": "x",
            "met": None if cpu_ratio is None else cpu_ratio <= TARGETS["cpu_ratio"],
        },
        {
            "target": f"{TARGETS['concurrent']:,} concurrent streams through one server process, zero errors",
            "value": ours.get("concurrent.errors"),
            "unit": f"errors at {sizes['concurrent'][0]:,} streams (worst round)",
            "met": zero_every_round if sizes["concurrent"][0] >= TARGETS["concurrent"] else None,
        },
        {
            "target": f"added median time to first token < {TARGETS['added_ttft_ms']} ms",
            "value": added,
            "unit": "ms",
            "met": None if added is None else added < TARGETS["added_ttft_ms"],
        },
    ]
    return {"medians": medians, "ratios": ratios, "targets": targets}


# -- machine and versions -----------------------------------------------------------------------


def machine() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("createagents", "aiohttp", "litellm", "openai", "httpx", "fastapi", "uvicorn", "uvloop"):
        with contextlib.suppress(PackageNotFoundError):
            versions[package] = version(package)
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1),
        "versions": versions,
    }


def how() -> dict[str, str]:
    return {
        "createagents": (
            "python -m benchmarks.serving ours <provider>: createagents.serving.serve(CreateAgent(provider='openai', "
            f"model='{MODEL}', base_url='<provider>/v1', api_key=...), port=0, api_keys=[...]), logging at "
            "'warning' as `createagents serve` sets it; one process, asyncio's default event loop"
        ),
        "litellm": (
            "litellm --config <config.yaml> --host 127.0.0.1 --port <port> --num_workers 1 (one uvicorn process); "
            f"environment {' '.join(f'{k}={v}' for k, v in LITELLM_ENV.items())}; config:\n"
            + litellm_config("http://127.0.0.1:<provider port>")
            .replace(PROVIDER_KEY, "<key>")
            .replace(SERVER_KEY, "<key>")
        ),
        "client": (
            "raw aiohttp, one process per workload, streaming Chat Completions (`stream: true`) with a Bearer key; "
            "every stream's text is checked token by token"
        ),
    }


# -- the page and the chart ---------------------------------------------------------------------


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


ROWS: list[tuple[str, str, int, bool]] = [  # (key, label, digits, ratio)
    ("long.cpu_per_token_us", "server CPU per relayed token, one long stream (µs)", 2, True),
    ("concurrent.cpu_per_token_us", "server CPU per relayed token, concurrent streams (µs)", 2, True),
    ("concurrent.n", "concurrent streams (N)", 0, False),
    ("concurrent.errors", "errors at N (worst round)", 0, False),
    ("concurrent.max_open", "streams open at once, as the client saw them", 0, False),
    ("concurrent.wall_s", "wall time for the N streams (s)", 2, True),
    ("concurrent.idle_rss_mb", "server RSS, idle after warm-up (MB)", 1, False),
    ("concurrent.peak_rss_mb", "server peak RSS with N streams open (MB)", 1, True),
    ("concurrent.kib_per_stream", "memory per open stream: (peak - idle) / N (KiB)", 1, True),
    ("ttft.direct_median_ms", "median TTFT straight from the fake provider (ms)", 3, False),
    ("ttft.server_median_ms", "median TTFT through the server (ms)", 3, True),
    ("ttft.added_median_ms", "added median TTFT (ms)", 3, False),
    ("ttft.added_paired_median_ms", "median of paired differences (ms)", 3, False),
    ("ttft.server_p90_ms", "p90 TTFT through the server (ms)", 3, False),
    ("concurrent.idle_cpu_pct", "server CPU while idle (% of a core)", 2, False),
    ("startup_s", "start-up until ready (s)", 2, False),
    ("fresh_rss_mb", "RSS right after start-up (MB)", 1, False),
]


def render(results: dict[str, Any], chart: str | None) -> str:
    summary = results["summary"]
    medians, ratios = summary["medians"], summary["ratios"]
    names = list(medians)
    sizes = results["sizes"]
    n, tokens, delay = sizes["concurrent"]
    m = results["machine"]
    lines = [
        "# Serving performance: the createagents server and LiteLLM's proxy",
        "",
        f"Generated by `python -m benchmarks.serving` on {results['date']}"
        + (" (a SMOKE run: tiny sizes, the numbers mean nothing)" if results["smoke"] else "")
        + f"; {results['rounds']} round(s), medians over rounds, ratios taken within each round. "
        "Do not edit: rerun the benchmark.",
        "",
        "Both servers relay the same fake model (`benchmarks/server.py`, a raw-asyncio OpenAI-style server in "
        "its own process) to streaming Chat Completions clients (raw aiohttp, in their own process). CPU is the "
        "relaying server process's own (utime + stime from /proc), read over the client's measured section "
        "only; memory is its RSS (VmHWM after a reset through /proc/<pid>/clear_refs, cross-checked by "
        "sampling VmRSS every 10 ms).",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, {m['platform']}, Python {m['python']}.  ",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".",
        "",
        "## Workloads",
        "",
        f"- **long**: one stream of {sizes['long']:,} tokens: the server's CPU over it / tokens relayed.",
        f"- **concurrent**: {n:,} streams at once, {tokens} tokens each, paced one token every {delay} ms by the "
        "fake provider so that all are open together: errors (any non-200, error event, missing `[DONE]` or "
        "wrong text), wall time, the server's peak RSS with them open minus its idle RSS, / N.",
        f"- **ttft**: {sizes['ttft'][0]} sequential streams of {sizes['ttft'][1]} tokens through the server, "
        "alternating with as many straight to the fake provider on the same client: added TTFT = median "
        "through the server - median straight.",
        f"- Every server starts fresh each round; each measured section follows {sizes['warmup']} warm-up streams.",
        "",
        "## Targets",
        "",
        "| target | value | met |",
        "|---|---|---|",
    ]
    for t in summary["targets"]:
        value = _fmt(t["value"], 3 if t["unit"] in ("x", "ms") else 0)
        met = "n/a (no LiteLLM numbers)" if t["met"] is None and "LiteLLM" in t["target"] else _fmt(t["met"])
        if t["met"] is None and "concurrent" in t["target"] and results["smoke"]:
            met = "n/a (smoke sizes)"
        lines.append(f"| {t['target']} | {value} {t['unit']} | {met} |")
    lines += ["", "## Results", ""]
    header = "| metric | " + " | ".join(names) + (" | createagents / litellm |" if "litellm" in names else " |")
    lines += [header, "|---" * (len(names) + 1 + ("litellm" in names)) + "|"]
    for key, label, digits, has_ratio in ROWS:
        row = [label] + [_fmt(medians[c].get(key), digits) for c in names]
        if "litellm" in names:
            row.append(_fmt(ratios.get(key), 3) if has_ratio else "")
        lines.append("| " + " | ".join(row) + " |")
    if chart:
        lines += ["", f"![server CPU per token, added TTFT, memory per stream, wall time]({chart})"]
    lines += ["", "## LiteLLM", ""]
    if "litellm" in results["skipped"]:
        lines.append(f"Not run: {results['skipped']['litellm']}.")
    else:
        failed_at = medians.get("litellm", {}).get("concurrent.failed_at") or []
        lit_n = medians.get("litellm", {}).get("concurrent.n")
        if failed_at:
            lines.append(
                f"LiteLLM's proxy failed at N = {', '.join(f'{k:,}' for k in failed_at)} concurrent streams in at "
                f"least one round; its concurrent numbers are at the N it held (smallest over rounds: {_fmt(lit_n, 0)})"
                ", so ratios of concurrent metrics are left out where the N differ. Its failures:"
            )
            lines.append("")
            for r, entry in enumerate(results["raw"]["litellm"]):
                for a in (entry or {}).get("concurrent_failed", []):
                    sample = (a.get("error_samples") or ["?"])[0].replace("\n", " ")[:200]
                    lines.append(
                        f"- round {r + 1}: N = {a['n']:,}: {a['errors']:,} errors, "
                        f"{_fmt(a.get('max_open'), 0)} open at once; first: `{sample}`"
                    )
        else:
            lines.append(f"LiteLLM's proxy held N = {_fmt(lit_n, 0)} concurrent streams with zero errors.")
        lines += ["", "Run as:", "", "```text", results["how"]["litellm"].rstrip(), "```"]
    lines += ["", "## Rounds", ""]
    lines.append("| round | server | CPU/token long (µs) | N | errors | wall (s) | KiB/stream | added TTFT (ms) |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for name, rounds in results["raw"].items():
        for r, entry in enumerate(rounds):
            cells = [
                _fmt(_value(entry, "long", "cpu_per_token_us"), 2),
                _fmt(_value(entry, "concurrent", "n"), 0),
                _fmt(_value(entry, "concurrent", "errors"), 0),
                _fmt(_value(entry, "concurrent", "wall_s"), 2),
                _fmt(_value(entry, "concurrent", "kib_per_stream"), 1),
                _fmt(_value(entry, "ttft", "added_median_ms"), 3),
            ]
            lines.append(f"| {r + 1} | {name} | " + " | ".join(cells) + " |")
    if results["failures"]:
        lines += ["", "## Failures", ""] + [f"- {f}" for f in results["failures"]]
    if results.get("interference"):
        lines += ["", "## Other processes during measured sections (those timings are suspect)", ""]
        lines += [f"- `{line}`" for line in results["interference"]]
    lines += [
        "",
        "## Run it",
        "",
        "```bash",
        ".venv/bin/pip install -e '.[bench]' 'litellm[proxy]'",
        ".venv/bin/python -m benchmarks.serving            # full: ~15 minutes (waits for other runs first)",
        ".venv/bin/python -m benchmarks.serving --smoke    # seconds; writes to a temporary directory",
        "```",
        "",
    ]
    return "\n".join(lines)


def write_chart(results: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    medians = results["summary"]["medians"]
    names = list(medians)
    colors = {"createagents": "#2b6cb0", "litellm": "#c05621"}
    panels = [
        ("long.cpu_per_token_us", "server CPU per relayed token (µs)"),
        ("ttft.added_median_ms", "added median TTFT (ms)"),
        ("concurrent.kib_per_stream", "memory per open stream (KiB)"),
        ("concurrent.wall_s", "wall time, N concurrent streams (s)"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(14, 3.6))
    for ax, (key, title) in zip(axes, panels, strict=True):
        values = [medians[c].get(key) or 0.0 for c in names]
        labels = [
            f"{c}\n(N={_fmt(medians[c].get('concurrent.n'), 0)})" if key.startswith("concurrent") else c for c in names
        ]
        bars = ax.bar(labels, values, color=[colors.get(c, "gray") for c in names])
        for bar, v in zip(bars, values, strict=True):
            ax.annotate(
                f"{v:,.0f}" if v >= 100 else f"{v:.3g}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
            )
        ax.set_title(title, fontsize=10)
        ax.margins(y=0.15)
    fig.suptitle(
        "createagents server vs LiteLLM proxy, relaying one fake model (lower is better)"
        + (" — SMOKE" if results["smoke"] else ""),
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_docs(results: dict[str, Any], docs: Path) -> None:
    """performance-serving.md and its chart (when matplotlib is installed) in `docs`."""
    docs.mkdir(parents=True, exist_ok=True)
    chart = docs / "performance-serving.png"
    page = render(results, chart.name if write_chart(results, chart) else None)
    (docs / "performance-serving.md").write_text(page)


# -- the command line ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["ours"]:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve_ours(argv[1], argv[2]))
        return 0
    if argv[:1] == ["client"]:
        print(json.dumps(asyncio.run(_client(json.loads(argv[1])))), flush=True)
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving", description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one round: checks answers, not speed")
    parser.add_argument("--rounds", type=int, default=None, help="default: 3 (smoke: 1)")
    parser.add_argument("--no-litellm", action="store_true", help="our server only")
    parser.add_argument(
        "--no-wait", action="store_true", help="do not wait for other benchmarks or test runs (pytest) to finish"
    )
    parser.add_argument("--out", default=None, help="the results file (default: benchmarks/results/serving.json)")
    parser.add_argument("--docs", default=None, help="where the page and chart go (default: docs/)")
    parser.add_argument("--render", metavar="RESULTS", help="only write the page and chart from a results file")
    args = parser.parse_args(argv)
    if args.render:
        results = json.loads(Path(args.render).read_text())
        write_docs(results, Path(args.docs or ROOT / "docs"))
        return 0
    if args.smoke and (args.out is None or args.docs is None):  # a smoke run never replaces the full run's files
        scratch = Path(tempfile.gettempdir()) / "createagents-serving-smoke"
        scratch.mkdir(exist_ok=True)
        args.out = args.out or str(scratch / "serving.json")
        args.docs = args.docs or str(scratch)
    out = Path(args.out or ROOT / "benchmarks" / "results" / "serving.json")
    docs = Path(args.docs or ROOT / "docs")

    def log(message: str) -> None:
        print(message, flush=True)

    if not args.smoke and not args.no_wait:
        wait_for_quiet(log)
    results = run(args.rounds or (1 if args.smoke else 3), args.smoke, not args.no_litellm, log)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    write_docs(results, docs)
    for t in results["summary"]["targets"]:
        log(f"target: {t['target']}: {_fmt(t['value'], 3)} {t['unit']}: met={_fmt(t['met'])}")
    log(f"results: {out}; page: {docs / 'performance-serving.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

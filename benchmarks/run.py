"""The benchmark runner: createagents against the raw SDKs, a hand-written floor and the peers, in one run.

    python -m benchmarks.run                 # full run: ~10 minutes, writes docs/performance.md and .png
    python -m benchmarks.run --smoke         # seconds: checks every answer's exact text, no timings kept

Every (client, workload) runs in a fresh worker process, so CPU and peak RSS
are the client's own; the server runs in its own process and its CPU is
recorded. Rounds are interleaved (the client order rotates each round);
results are medians over rounds, and each ratio is taken against the raw
`openai` SDK in the same round, then the median of those ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.clients import CLIENTS, PEERS, STREAM_ONLY
from benchmarks.server import TOOL_ANSWER, expected_text

ROOT = Path(__file__).resolve().parent.parent
FULL = {"stream": 20_000, "concurrent": (1000, 100, 2), "first_token": (200, 5), "tools": 100}
SMOKE = {"stream": 300, "concurrent": (20, 10, 2), "first_token": (5, 5), "tools": 3}
WORKLOADS = ("stream", "concurrent", "first_token", "tools")
BASELINES = ("openai-sdk", "ollama-sdk")


# -- the worker: one client, one workload, in its own process -------------------------


def _check(text: str, expected: str, what: str) -> None:
    if text != expected:
        raise SystemExit(f"wrong answer for {what}: {text[:80]!r}... != {expected[:80]!r}...")


async def _work(client_name: str, workload: str, url: str, sizes: dict[str, Any]) -> dict[str, Any]:
    client = CLIENTS[client_name](url)
    try:
        text, _ = await client.chat("stream 5")  # warm up: connection, lazy imports
        _check(text, expected_text(5), "warm-up")
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if workload == "stream":
            n = sizes["stream"]
            text, _ = await client.chat(f"stream {n}")
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            _check(text, expected_text(n), "stream")
            return {"cpu_per_token_us": cpu / n * 1e6, "wall_s": wall, "cpu_s": cpu}
        if workload == "concurrent":
            chats, tokens, delay_ms = sizes["concurrent"]
            results = await asyncio.gather(*(client.chat(f"paced {tokens} {delay_ms}") for _ in range(chats)))
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            for text, _ in results:
                _check(text, expected_text(tokens), "concurrent")
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": rss}
        if workload == "first_token":
            chats, tokens = sizes["first_token"]
            firsts, ends = [], []
            for _ in range(chats):
                start = time.perf_counter()
                text, first = await client.chat(f"stream {tokens}")
                ends.append(time.perf_counter() - start)
                firsts.append(first)
                _check(text, expected_text(tokens), "first token")
            return {
                "ttft_median_ms": statistics.median(firsts) * 1e3,
                "end_median_ms": statistics.median(ends) * 1e3,
                "cpu_s": time.process_time() - cpu0,
            }
        if workload == "tools":
            chats = sizes["tools"]
            for _ in range(chats):
                _check(await client.tool_chat("tool"), TOOL_ANSWER, "tools")
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            return {"wall_per_chat_ms": wall / chats * 1e3, "cpu_per_chat_ms": cpu / chats * 1e3}
        raise SystemExit(f"unknown workload {workload}")
    finally:
        await client.aclose()


# -- the runner -------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start_server() -> tuple[subprocess.Popen[bytes], str]:
    port_file = Path(tempfile.mkdtemp()) / "port"
    server = subprocess.Popen([sys.executable, "-m", "benchmarks.server", str(port_file)], cwd=ROOT)
    for _ in range(200):
        if port_file.exists() and port_file.read_text():
            return server, f"http://127.0.0.1:{port_file.read_text()}"
        time.sleep(0.05)
    server.kill()
    raise SystemExit("the benchmark server did not start")


class WorkerFailed(Exception):
    """A client failed a workload (an error, or a wrong answer)."""


def _run_worker(client: str, workload: str, url: str, sizes: dict[str, Any], server_pid: int) -> dict[str, Any]:
    before = _cpu_seconds(server_pid)
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "worker", client, workload, url, json.dumps(sizes)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if out.returncode != 0:
        raise WorkerFailed(f"{client} / {workload} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["server_cpu_s"] = _cpu_seconds(server_pid) - before
    return result


def measure_import(repeats: int) -> dict[str, Any]:
    code = (
        "import sys, time; t = time.perf_counter(); import {m}; dt = time.perf_counter() - t; "
        "print(dt, 'openai' in sys.modules, 'ollama' in sys.modules)"
    )
    results: dict[str, Any] = {}
    for module in ("createagents", "openai"):
        times = []
        for _ in range(repeats):
            out = subprocess.run(
                [sys.executable, "-c", code.format(m=module)], capture_output=True, text=True, check=True, cwd=ROOT
            )
            seconds, has_openai, has_ollama = out.stdout.split()
            times.append(float(seconds))
            if module == "createagents" and (has_openai == "True" or has_ollama == "True"):
                raise SystemExit("import createagents imported a provider SDK")
        results[module] = {"median_ms": statistics.median(times) * 1e3}
    return results


def available_clients(requested: list[str] | None) -> list[str]:
    names = requested or list(CLIENTS)
    return [n for n in names if n not in PEERS or importlib.util.find_spec(PEERS[n]) is not None]


def run(rounds: int, smoke: bool, clients: list[str]) -> dict[str, Any]:
    sizes = SMOKE if smoke else FULL
    server, url = _start_server()
    raw: dict[str, dict[str, list[dict[str, Any] | None]]] = {w: {c: [] for c in clients} for w in WORKLOADS}
    failures: list[str] = []
    try:
        for r in range(rounds):
            for workload in WORKLOADS:
                order = clients[r % len(clients) :] + clients[: r % len(clients)]
                for client in order:
                    if workload != "stream" and client in STREAM_ONLY:
                        continue
                    try:
                        result = _run_worker(client, workload, url, sizes, server.pid)
                    except WorkerFailed as e:
                        if client not in PEERS:
                            raise SystemExit(str(e)) from None
                        # A peer that fails under load is a result too: it is reported, not hidden.
                        last = str(e).strip().splitlines()[-1]
                        failures.append(f"round {r + 1}, {workload}, {client}: {last}")
                        print(f"round {r + 1} {workload:12} {client:20} FAILED: {last}", flush=True)
                        raw[workload][client].append(None)
                        continue
                    raw[workload][client].append(result)
                    print(f"round {r + 1} {workload:12} {client:20} {json.dumps(_rounded(result))}", flush=True)
    finally:
        server.kill()
        server.wait()
    return {
        "smoke": smoke,
        "rounds": rounds,
        "sizes": sizes,
        "machine": _machine(),
        "import": measure_import(3 if smoke else 9),
        "workloads": {w: _summarise(w, raw[w]) for w in WORKLOADS},
        "failures": failures,
    }


def _summarise(workload: str, results: dict[str, list[dict[str, Any] | None]]) -> dict[str, Any]:
    """Medians over rounds, and per-round ratios to each baseline (then their median); failed rounds are None."""
    summary: dict[str, Any] = {}
    for client, rounds in results.items():
        done = [r for r in rounds if r is not None]
        if not done:
            continue
        entry: dict[str, Any] = {"median": {k: statistics.median(r[k] for r in done) for k in done[0]}}
        for baseline in BASELINES:
            base = results.get(baseline) or []
            ratios = {}
            for key in done[0]:
                pairs = [r[key] / b[key] for r, b in zip(rounds, base, strict=False) if r and b and b.get(key)]
                if pairs:
                    ratios[key] = statistics.median(pairs)
            entry[f"ratio_to_{baseline}"] = ratios
        summary[client] = entry
    return summary


def _rounded(d: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in d.items()}


def _machine() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("createagents", "openai", "ollama", "httpx", "pydantic-ai", "openai-agents"):
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
        "versions": versions,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        client, workload, url, sizes = argv[1:5]
        print(json.dumps(asyncio.run(_work(client, workload, url, json.loads(sizes)))))
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one round: checks answers, not speed")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--clients", nargs="*", help=f"default: all installed of {', '.join(CLIENTS)}")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "latest.json"))
    parser.add_argument(
        "--report",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write docs/performance.md and its chart (default: on for full runs)",
    )
    args = parser.parse_args(argv)
    results = run(args.rounds or (1 if args.smoke else 3), args.smoke, available_clients(args.clients))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"results: {args.out}")
    if args.report if args.report is not None else not args.smoke:
        from benchmarks.report import write_report

        write_report(results, ROOT / "docs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The benchmark runner: createagents against the raw SDKs, a hand-written floor and the peers, in one run.

    python -m benchmarks.run                 # full run: ~30 minutes, writes docs/performance.md and .png
    python -m benchmarks.run --smoke         # seconds: checks every answer's exact text, no timings kept
    python -m benchmarks.run --workloads batch construct --no-report --out /tmp/b.json   # a part

Every (client, workload) runs in a fresh worker process, so CPU and peak RSS
are the client's own; the server runs in its own process and its CPU is
recorded. Rounds are interleaved (the client order rotates each round);
results are medians over rounds, and each ratio is taken against the
baseline in the same round (the raw `openai` / `ollama` SDK; the memory
store for the store workloads), then the median of those ratios.

Two workloads run several contenders in one job, alternating them item by
item so they share the machine's noise: `construct` (fresh processes that
import a package and build an agent, alternating packages) and `store_turn`
(sequential turns alternating the stores). The Redis store runs on a private
`redis-server` started for the run (`tests/stores/redis_server.py`) and
stopped at its end; without one the Redis rows are left out, with the reason.

The results file this run replaces is read first: its ratios are kept under
`previous`, and the page shows them next to this run's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks._harness import WorkerFailed, cpu_seconds, machine, start_server
from benchmarks.clients import CLIENTS, CONSTRUCT, PEERS, STREAM_ONLY, peak_rss_mb
from benchmarks.server import TOOL_ANSWER, expected_text
from benchmarks.stores import CONCURRENT_STORES, STORES

ROOT = Path(__file__).resolve().parent.parent
FULL = {
    "stream": 20_000,
    "concurrent": (1000, 100, 2),
    "first_token": (200, 5),
    "tools": 100,
    "batch": (1000, 8),  # prompts, concurrency
    "construct": 5,  # fresh processes per package per round
    "store_turn": (1000, 50),  # sequential turns per store, over this many conversations
    "store_concurrent": (1000, 2),  # concurrent conversations, turns each
}
SMOKE = {
    "stream": 300,
    "concurrent": (20, 10, 2),
    "first_token": (5, 5),
    "tools": 3,
    "batch": (40, 8),
    "construct": 1,
    "store_turn": (12, 3),
    "store_concurrent": (20, 2),
}
WORKLOADS = ("stream", "concurrent", "first_token", "tools", "batch", "construct", "store_turn", "store_concurrent")
BASELINES = ("openai-sdk", "ollama-sdk")
STORE_BASELINES = ("memory",)
SUMMED = frozenset({"lost_turns", "openai_imported", "aiohttp_imported", "ollama_imported"})  # counts: summed
STORE_CLIENT = "createagents-openai"  # the store workloads run through this client's agent


# -- the worker: one client, one workload, in its own process -------------------------


def _check(text: str, expected: str, what: str) -> None:
    if text != expected:
        raise SystemExit(f"wrong answer for {what}: {text[:80]!r}... != {expected[:80]!r}...")


def batch_prompts(n: int) -> tuple[list[str], list[str]]:
    """Short answers of 1 to 8 tokens, a different one for each neighbour, so an answer out of place shows."""
    lengths = [1 + i % 8 for i in range(n)]
    return [f"stream {k}" for k in lengths], [expected_text(k) for k in lengths]


async def _work(client_name: str, workload: str, url: str, sizes: dict[str, Any], extra: dict[str, Any]) -> Any:
    if workload == "store_turn":
        from benchmarks.stores import store_turn

        return await store_turn(url, sizes, extra["stores"], extra.get("redis_url"))
    if workload == "store_concurrent":
        from benchmarks.stores import store_concurrent

        return await store_concurrent(url, sizes, client_name, extra.get("redis_url"))
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
            rss = peak_rss_mb()
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
        if workload == "batch":
            n, concurrency = sizes["batch"]
            prompts, answers = batch_prompts(n)
            for text, want in zip(await client.batch(prompts[:concurrency], concurrency), answers, strict=False):
                _check(text, want, "batch warm-up")  # the non-streamed path warmed up too
            cpu0, wall0 = time.process_time(), time.perf_counter()
            texts = await client.batch(prompts, concurrency)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            if len(texts) != n:
                raise SystemExit(f"batch: {len(texts)} answers for {n} prompts")
            for i, (text, want) in enumerate(zip(texts, answers, strict=True)):
                _check(text, want, f"batch prompt {i}")
            rss = peak_rss_mb()
            return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": rss}
        raise SystemExit(f"unknown workload {workload}")
    finally:
        await client.aclose()


# -- the runner -------------------------------------------------------------------------


def _start_server() -> tuple[subprocess.Popen[bytes], str]:
    return start_server("benchmarks.server")


def _run_worker(
    client: str, workload: str, url: str, sizes: dict[str, Any], server_pid: int, extra: dict[str, Any] | None = None
) -> Any:
    before = cpu_seconds(server_pid)
    redis_pid = (extra or {}).get("redis_pid")
    redis_before = cpu_seconds(redis_pid) if redis_pid else 0.0
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "worker", client, workload, url, json.dumps(sizes),
         json.dumps(extra or {})],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )  # fmt: skip
    if out.returncode != 0:
        raise WorkerFailed(f"{client} / {workload} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if workload != "store_turn":
        result["server_cpu_s"] = cpu_seconds(server_pid) - before
    if redis_pid and workload == "store_concurrent" and client.startswith("redis"):
        result["redis_cpu_s"] = cpu_seconds(redis_pid) - redis_before
    return result


# -- construct: a fresh process that imports a package and builds an agent ------------

_CONSTRUCT_PROBE = (
    "import sys, time\n"
    "_t = time.perf_counter()\n"
    "{code}"
    "_dt = time.perf_counter() - _t\n"
    "_mods = [m for m in ('openai', 'aiohttp', 'ollama', 'httpx') if m in sys.modules]\n"
    "_hwm = [l for l in open('/proc/self/status').read().splitlines() if l.startswith('VmHWM:')]\n"
    "print(_dt * 1e3, int(_hwm[0].split()[1]) if _hwm else 0, ','.join(_mods) or '-')\n"
)  # imports nothing the measured code would not: the JSON is built by the runner


def construct_once(variant: str) -> dict[str, Any]:
    """One fresh process: wall time from spawn to exit, and its peak RSS.

    The peak RSS is the child's VmHWM, read by the child as it ends: the child's
    `ru_maxrss` (from wait4) would also count the runner's pages it was forked from.
    """
    code = _CONSTRUCT_PROBE.format(code=CONSTRUCT[variant])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CREATEAGENTS_", "OLLAMA_"))}
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stdout, stderr = process.stdout.read(), process.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    process.stdout.close()  # type: ignore[union-attr]
    process.stderr.close()  # type: ignore[union-attr]
    if process.returncode != 0:
        raise WorkerFailed(f"{variant} / construct failed:\n{stderr.decode(errors='replace')[-3000:]}")
    inproc_ms, hwm_kb, modules = stdout.decode().strip().splitlines()[-1].split()
    return {
        "wall_ms": wall * 1e3,
        "inproc_ms": float(inproc_ms),
        "peak_rss_mb": (int(hwm_kb) or usage.ru_maxrss) / 1024,
        "modules": modules.split(","),
    }


def construct_round(variants: list[str], repeats: int) -> dict[str, Any]:
    """`repeats` fresh processes per variant, alternating variants process by process; medians per variant.

    A peer that fails is left out of the rest of the round and reported under "_failed".
    """
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    failed: dict[str, str] = {}
    order = list(variants)
    for _ in range(repeats):
        for variant in order:
            if variant in failed:
                continue
            try:
                runs[variant].append(construct_once(variant))
            except WorkerFailed as e:
                if variant not in PEERS:
                    raise
                failed[variant] = str(e).strip().splitlines()[-1]
        order = order[1:] + order[:1]
    result: dict[str, Any] = {"_failed": failed} if failed else {}
    for variant, done in runs.items():
        if variant in failed:
            continue
        result[variant] = {
            key: statistics.median(r[key] for r in done) for key in ("wall_ms", "inproc_ms", "peak_rss_mb")
        }
        for module in ("openai", "aiohttp", "ollama"):
            result[variant][f"{module}_imported"] = sum(module in r["modules"] for r in done)
        result[variant]["processes"] = len(done)
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


# -- the stores' servers and drivers ------------------------------------------------------


def _start_redis() -> tuple[Any, str | None]:
    """A private redis-server (tests/stores/redis_server.py), or None and why not.

    Where `CI` is set, a redis-server that cannot start fails the run (as it fails the tests there).
    """
    if importlib.util.find_spec("redis") is None:
        return None, 'the `redis` client is not installed (pip install -e ".[redis]")'
    try:
        import pytest

        from tests.stores.redis_server import start_redis
    except ImportError as e:
        return None, f"cannot load tests/stores/redis_server.py: {e}"
    try:
        return start_redis(), None
    except pytest.skip.Exception as e:
        return None, str(e.msg if hasattr(e, "msg") else e)


def available_stores(redis_ready: bool) -> tuple[list[str], dict[str, str]]:
    stores, missing = [], {}
    for store in STORES:
        if store == "sqlite" and importlib.util.find_spec("aiosqlite") is None:
            missing[store] = '`aiosqlite` is not installed (pip install -e ".[sqlite]")'
        elif store == "redis" and not redis_ready:
            continue  # the reason comes from _start_redis
        else:
            stores.append(store)
    return stores, missing


# -- the run ------------------------------------------------------------------------------

Job = tuple[int, str, str, Callable[[], dict[str, Any]]]  # round, workload, label, run -> {client: result}


def _jobs(
    rounds: int, workloads: list[str], clients: list[str], stores: list[str], sizes: dict[str, Any],
    url: str, server_pid: int, redis: Any,
) -> list[Job]:  # fmt: skip
    extra = {"redis_url": redis.url, "redis_pid": redis.pid} if redis is not None else {}
    jobs: list[Job] = []

    def worker(client: str, workload: str) -> Callable[[], dict[str, Any]]:
        return lambda: {client: _run_worker(client, workload, url, sizes, server_pid, extra)}

    def stores_worker(order: list[str]) -> Callable[[], dict[str, Any]]:  # one process, all stores
        return lambda: _run_worker("all", "store_turn", url, sizes, server_pid, {**extra, "stores": order})  # type: ignore[no-any-return]

    for r in range(rounds):
        for workload in workloads:
            if workload == "construct":
                variants = [c for c in clients if c in CONSTRUCT]
                variants += ["bare-python"] if variants else []
                turn = r % max(1, len(variants))
                variants = variants[turn:] + variants[:turn]
                if variants:
                    jobs.append((r, workload, "all", lambda v=variants: construct_round(v, sizes["construct"])))
                continue
            if workload in ("store_turn", "store_concurrent"):
                if STORE_CLIENT not in clients or not stores:
                    continue
                if workload == "store_concurrent":
                    extra_stores = [s for s in CONCURRENT_STORES if s not in STORES and "redis" in stores]
                    order = [*stores, *extra_stores]
                else:
                    order = list(stores)
                order = order[r % len(order) :] + order[: r % len(order)]
                if workload == "store_turn":
                    jobs.append((r, workload, "all", stores_worker(order)))
                else:
                    jobs += [(r, workload, store, worker(store, workload)) for store in order]
                continue
            order = clients[r % len(clients) :] + clients[: r % len(clients)]
            for client in order:
                if workload != "stream" and client in STREAM_ONLY:
                    continue
                jobs.append((r, workload, client, worker(client, workload)))
    return jobs


def run(rounds: int, smoke: bool, clients: list[str], workloads: list[str] | None = None) -> dict[str, Any]:
    sizes = SMOKE if smoke else FULL
    workloads = list(workloads or WORKLOADS)
    raw: dict[str, dict[str, list[dict[str, Any] | None]]] = {w: {} for w in workloads}
    failures: list[str] = []
    skipped: dict[str, str] = {}
    redis = None
    wants_stores = STORE_CLIENT in clients and any(w.startswith("store") for w in workloads)
    if wants_stores:
        redis, why = _start_redis()
        if why:
            skipped["redis"] = why
            print(f"redis store skipped: {why}", flush=True)
    stores, missing = available_stores(redis is not None) if wants_stores else ([], {})
    skipped.update(missing)
    server, url = _start_server()
    try:
        jobs = _jobs(rounds, workloads, clients, stores, sizes, url, server.pid, redis)

        def execute(job: Job) -> None:
            r, workload, label, work = job
            try:
                outcome = work()
            except WorkerFailed as e:
                if label not in PEERS and not workload.startswith("store"):
                    raise SystemExit(str(e)) from None
                # A peer (or a store) that fails under load is a result too: it is reported, not hidden.
                last = str(e).strip().splitlines()[-1]
                failures.append(f"round {r + 1}, {workload}, {label}: {last}")
                print(f"round {r + 1} {workload:16} {label:20} FAILED: {last}", flush=True)
                return
            for client, why in outcome.pop("_failed", {}).items():
                failures.append(f"round {r + 1}, {workload}, {client}: {why}")
                print(f"round {r + 1} {workload:16} {client:20} FAILED: {why}", flush=True)
            for client, result in outcome.items():
                raw[workload].setdefault(client, [None] * rounds)[r] = result
                print(f"round {r + 1} {workload:16} {client:20} {json.dumps(_rounded(result))}", flush=True)

        if smoke:  # timings are not kept: run the jobs side by side, to finish in seconds
            with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
                importing = pool.submit(measure_import, 1)
                for future in [pool.submit(execute, job) for job in jobs]:
                    future.result()
                imports = importing.result()
        else:
            for job in jobs:
                execute(job)
            imports = measure_import(9)
    finally:
        server.kill()
        server.wait()
        if redis is not None:
            redis.stop()
    return {
        "smoke": smoke,
        "date": datetime.date.today().isoformat(),
        "rounds": rounds,
        "sizes": sizes,
        "machine": _machine(),
        "import": imports,
        "workloads": {w: _summarise(w, raw[w]) for w in workloads},
        "skipped": skipped,
        "failures": sorted(failures),
    }


def _summarise(workload: str, results: dict[str, list[dict[str, Any] | None]]) -> dict[str, Any]:
    """Medians over rounds, and per-round ratios to each baseline (then their median); failed rounds are None.

    Counts (lost turns, runs that imported an SDK) are summed over rounds instead, and have no ratio.
    """
    baselines = STORE_BASELINES if workload.startswith("store") else BASELINES
    summary: dict[str, Any] = {}
    for client, rounds in results.items():
        done = [r for r in rounds if r is not None]
        if not done:
            continue
        keys = [k for k in done[0] if isinstance(done[0][k], int | float) and not isinstance(done[0][k], bool)]
        entry: dict[str, Any] = {
            "median": {k: (sum if k in SUMMED else statistics.median)(r[k] for r in done) for k in keys},
            "rounds_done": len(done),
        }
        for baseline in baselines:
            base = results.get(baseline) or []
            ratios = {}
            for key in keys:
                if key in SUMMED:
                    continue
                pairs = [r[key] / b[key] for r, b in zip(rounds, base, strict=False) if r and b and b.get(key)]
                if pairs:
                    ratios[key] = statistics.median(pairs)
            entry[f"ratio_to_{baseline}"] = ratios
        summary[client] = entry
    return summary


def previous_results(out: Path, page: Path) -> dict[str, Any] | None:
    """The full run this one replaces (read before it is overwritten); None for none, or a smoke run."""
    try:
        old = json.loads(out.read_text())
    except (OSError, ValueError):
        return None
    if old.get("smoke") or "workloads" not in old:
        return None
    date = old.get("date")
    if not date:  # results written before runs were dated: the page written from them has the date
        with contextlib.suppress(OSError):
            found = re.search(r"Generated by `python -m benchmarks\.run` on (\d{4}-\d{2}-\d{2})", page.read_text())
            date = found.group(1) if found else None
    kept = {k: old[k] for k in ("rounds", "sizes", "machine", "import", "workloads") if k in old}
    return {"date": date, **kept}


def _rounded(d: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in d.items()}


def _machine() -> dict[str, Any]:
    found = machine(
        (
            "createagents",
            "openai",
            "ollama",
            "httpx",
            "pydantic-ai-slim",
            "openai-agents",
            "aiohttp",
            "aiosqlite",
            "redis",
        )
    )
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        version = re.search(
            r"v=(\S+)", subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
        )
        if version:
            found["versions"]["redis-server"] = version.group(1)
    return found


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        client, workload, url, sizes = argv[1:5]
        extra = json.loads(argv[5]) if len(argv) > 5 else {}
        print(json.dumps(asyncio.run(_work(client, workload, url, json.loads(sizes), extra))))
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one round: checks answers, not speed")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--clients", nargs="*", help=f"default: all installed of {', '.join(CLIENTS)}")
    parser.add_argument("--workloads", nargs="*", choices=WORKLOADS, help="default: all")
    parser.add_argument(
        "--out",
        default=None,
        help="default: benchmarks/results/latest.json (a smoke run: a file in the temp directory)",
    )
    parser.add_argument(
        "--report",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write docs/performance.md and its chart (default: on for full runs)",
    )
    args = parser.parse_args(argv)
    if args.out is None:  # a smoke run never replaces the full run's results
        default = Path(tempfile.gettempdir()) / "createagents-benchmark-smoke.json"
        args.out = str(default if args.smoke else ROOT / "benchmarks" / "results" / "latest.json")
    previous = None if args.smoke else previous_results(Path(args.out), ROOT / "docs" / "performance.md")
    rounds = args.rounds or (1 if args.smoke else 3)
    results = run(rounds, args.smoke, available_clients(args.clients), args.workloads)
    if previous:
        results["previous"] = previous
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"results: {args.out}")
    if args.report if args.report is not None else not args.smoke:
        from benchmarks.report import write_report

        write_report(results, ROOT / "docs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

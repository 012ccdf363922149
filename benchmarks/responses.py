"""Stream CPU per token on OpenAI's Responses API: createagents (`api="responses"`) against the raw `openai` SDK.

    python -m benchmarks.responses              # full run (~1.5 min on 2 cores): benchmarks/results/responses.json
                                                # and docs/performance-responses.md
    python -m benchmarks.responses --smoke      # seconds: tiny sizes, every answer checked, results to a temp dir
    python -m benchmarks.responses --profile    # cProfile of createagents' stream loop, in this process
    python benchmarks/responses.py ...          # the same, run as a script

One streamed answer of N tokens per contender, client CPU per token (process
CPU time, not wall time), as the `stream` workload of `benchmarks/run.py`
measures Chat Completions:

- `openai-sdk`: `AsyncOpenAI.responses.create(stream=True)`, iterating the
  events and collecting the `response.output_text.delta` ones (the baseline);
- `createagents-responses`: `CreateAgent(provider="openai", api="responses")`,
  `async for token in agent.conversation(id).chat(prompt)`;
- for context, when installed: pydantic-ai's `OpenAIResponsesModel`
  (`run_stream`, `stream_text(delta=True)`) and the OpenAI Agents SDK's
  `OpenAIResponsesModel` (`Runner.run_streamed`, the text delta events).

The server runs in its own process (`serve`): raw asyncio writing the bytes of
each answer, rendered once per size from the event sequence of the test fake
(`tests/fakes/responses_server.py`: `response.created`, `response.in_progress`,
`response.output_item.added`, `response.content_part.added`, one
`response.output_text.delta` per token with its `obfuscation` padding,
`response.output_text.done`, `response.content_part.done`,
`response.output_item.done`, `response.completed`), so it costs almost nothing;
its CPU is recorded anyway. Every (contender, round) runs in a fresh worker
process after a warm-up answer; the order rotates each round; every answer is
checked for its exact text before it counts. The ratio is taken to the raw SDK
in the same round, then the median over rounds; the target is at most 0.20.
"""

from __future__ import annotations

import argparse
import asyncio
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
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if not __package__:  # run as a script: import from the project, not from benchmarks/ (its modules shadow names)
    sys.path[0] = str(ROOT)

from benchmarks import _harness as harness  # noqa: E402 - once the project is on the path
from benchmarks._harness import KeepAlive, WorkerFailed  # noqa: E402

MODEL = "bench"
FULL = {"tokens": 20_000, "rounds": 5}
SMOKE = {"tokens": 200, "rounds": 1}
TARGET = 0.20  # createagents' CPU per token, at most this fraction of the raw SDK's
BASELINE = "openai-sdk"
OURS = "createagents-responses"
CONTENDERS = (BASELINE, OURS, "pydantic-ai", "openai-agents")
PEERS = {"pydantic-ai": "pydantic_ai", "openai-agents": "agents"}  # contender -> the module it needs


def token(i: int) -> str:
    return f"t{i} "


def expected_tokens(n: int) -> list[str]:
    return [token(i) for i in range(n)]


# -- the server: pre-rendered Responses streams, raw asyncio, its own process ---------------


@lru_cache(maxsize=8)
def rendered(n: int) -> bytes:
    """The chunked HTTP body of an N-token answer: the fake's documented event sequence, rendered once."""
    from tests.fakes.responses_server import RScript, _Stream

    frames = _Stream({"model": MODEL, "stream": True}, RScript(text=expected_tokens(n)), 1).frames()
    body = b"".join(
        b"%x\r\n%s\r\n" % (len(part), part)
        for part in (b"".join(frames[i : i + 64]) for i in range(0, len(frames), 64))
    )
    return body + b"0\r\n\r\n"


_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n"
    b"x-request-id: req_bench\r\n\r\n"
)
_ASKED = re.compile(rb"stream (\d+)")


class _Protocol(KeepAlive):
    """Reads `POST /v1/responses` requests (keep-alive) and answers "stream N" with N tokens."""

    def request(self, head: str, body: bytes) -> None:
        assert self.transport is not None
        if not head.startswith("POST ") or " /v1/responses " not in head:
            self.not_found()
            return
        asked = _ASKED.search(body)
        self.transport.write(_HEAD + rendered(int(asked.group(1)) if asked else 5))


async def serve(port_file: str, sizes: list[int]) -> None:
    for n in sizes:  # rendered before the port is known: the measured requests find them ready
        rendered(n)
    await harness.serve(_Protocol, port_file)


def start_server(n: int) -> tuple[subprocess.Popen[bytes], str]:
    """The server in its own process, the answers of 5 and `n` tokens rendered; its URL (without `/v1`)."""
    return harness.start_server("benchmarks.responses", ["serve", "5", str(n)])


# -- the contenders: each streams one answer, yielding its text deltas ----------------------

Streamer = Callable[[str], AsyncIterator[str]]


async def _openai_sdk(url: str) -> tuple[Streamer, Callable[[], Any]]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)

    async def stream(prompt: str) -> AsyncIterator[str]:
        events = await client.responses.create(model=MODEL, input=prompt, store=False, stream=True)
        async for event in events:
            if event.type == "response.output_text.delta":
                yield event.delta

    return stream, client.close


async def _createagents(url: str) -> tuple[Streamer, Callable[[], Any]]:
    from createagents import CreateAgent

    agent = CreateAgent(
        provider="openai", model=MODEL, api="responses", base_url=f"{url}/v1", api_key="x", max_retries=0
    )
    count = 0

    async def stream(prompt: str) -> AsyncIterator[str]:
        nonlocal count
        count += 1  # a fresh history per answer, as the raw SDK sends one message
        async for text in agent.conversation(f"c{count}").chat(prompt):
            yield text

    return stream, agent.aclose


async def _pydantic_ai(url: str) -> tuple[Streamer, Callable[[], Any]]:
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIResponsesModel
    from pydantic_ai.providers.openai import OpenAIProvider

    agent = Agent(OpenAIResponsesModel(MODEL, provider=OpenAIProvider(base_url=f"{url}/v1", api_key="x")))

    async def stream(prompt: str) -> AsyncIterator[str]:
        async with agent.run_stream(prompt) as result:
            async for delta in result.stream_text(delta=True, debounce_by=None):
                yield delta

    async def close() -> None:
        pass

    return stream, close


async def _openai_agents(url: str) -> tuple[Streamer, Callable[[], Any]]:
    from agents import Agent, OpenAIResponsesModel, Runner, set_tracing_disabled
    from openai import AsyncOpenAI
    from openai.types.responses import ResponseTextDeltaEvent

    set_tracing_disabled(True)
    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
    agent = Agent(name="bench", model=OpenAIResponsesModel(MODEL, client))

    async def stream(prompt: str) -> AsyncIterator[str]:
        result = Runner.run_streamed(agent, prompt)
        async for event in result.stream_events():
            if event.type == "raw_response_event" and isinstance(event.data, ResponseTextDeltaEvent):
                yield event.data.delta

    return stream, client.close


CLIENTS = {BASELINE: _openai_sdk, OURS: _createagents, "pydantic-ai": _pydantic_ai, "openai-agents": _openai_agents}


async def collect(stream: Streamer, n: int) -> list[str]:
    return [delta async for delta in stream(f"stream {n}")]


def check(name: str, deltas: list[str], n: int) -> None:
    text, want = "".join(deltas), "".join(expected_tokens(n))
    if text != want:
        raise SystemExit(f"{name}: wrong answer for {n} tokens: {text[:80]!r}... != {want[:80]!r}...")


async def measure(name: str, url: str, n: int) -> dict[str, Any]:
    """One contender: a warm-up answer, then one N-token answer timed in process CPU and wall time."""
    stream, close = await CLIENTS[name](url)
    try:
        check(name, await collect(stream, 5), 5)  # warm-up: connection, lazy imports
        cpu0, wall0 = time.process_time(), time.perf_counter()
        deltas = await collect(stream, n)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        check(name, deltas, n)
        return {"cpu_per_token_us": cpu / n * 1e6, "cpu_s": cpu, "wall_s": wall, "deltas": len(deltas)}
    finally:
        await close()


# -- the run: a fresh worker process per (contender, round) ---------------------------------


def run_worker(name: str, url: str, n: int, server_pid: int) -> dict[str, Any]:
    return harness.run_worker("benchmarks.responses", [name, url, str(n)], server_pid, name)


def available(requested: list[str] | None) -> list[str]:
    names = requested or list(CONTENDERS)
    if BASELINE not in names:
        names = [BASELINE, *names]  # the ratio needs it
    return [n for n in names if n not in PEERS or importlib.util.find_spec(PEERS[n]) is not None]


def run(sizes: dict[str, int], contenders: list[str], side_by_side: bool = False) -> dict[str, Any]:
    """Every round runs each contender in turn (`side_by_side`: all at once, for a smoke run that keeps no timings)."""
    n, rounds = sizes["tokens"], sizes["rounds"]
    raw: dict[str, list[dict[str, Any] | None]] = {c: [None] * rounds for c in contenders}
    failures: list[str] = []
    server, url = start_server(n)

    def job(r: int, name: str) -> None:
        try:
            result = run_worker(name, url, n, server.pid)
        except WorkerFailed as e:
            if name not in PEERS:
                raise SystemExit(str(e)) from None
            failures.append(f"round {r + 1}, {name}: {str(e).strip().splitlines()[-1]}")  # a result too: shown
            print(f"round {r + 1} {name:24} FAILED", flush=True)
            return
        raw[name][r] = result
        shown = {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}
        print(f"round {r + 1} {name:24} {json.dumps(shown)}", flush=True)

    jobs = [
        (r, name)
        for r in range(rounds)
        for name in contenders[r % len(contenders) :] + contenders[: r % len(contenders)]
    ]
    try:
        if side_by_side:
            with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
                for future in [pool.submit(job, r, name) for r, name in jobs]:
                    future.result()
        else:
            for r, name in jobs:
                job(r, name)
    finally:
        server.kill()
        server.wait()
    return {"contenders": summarise(raw), "failures": sorted(failures)}


def summarise(raw: dict[str, list[dict[str, Any] | None]]) -> dict[str, Any]:
    """Medians over rounds; each round's ratio to the baseline of the same round, then their median."""
    base = raw.get(BASELINE) or []
    summary: dict[str, Any] = {}
    for name, rounds in raw.items():
        done = [r for r in rounds if r is not None]
        if not done:
            continue
        keys = ("cpu_per_token_us", "cpu_s", "wall_s", "server_cpu_s")
        ratios = [
            r["cpu_per_token_us"] / b["cpu_per_token_us"]
            for r, b in zip(rounds, base, strict=False)
            if r and b and b["cpu_per_token_us"]
        ]
        summary[name] = {
            "median": {k: statistics.median(r[k] for r in done) for k in keys},
            "rounds": [round(r["cpu_per_token_us"], 3) for r in done],
            "ratio_rounds": [round(x, 4) for x in ratios],
            "ratio_to_openai_sdk": statistics.median(ratios) if ratios else None,
            "rounds_done": len(done),
        }
    return summary


def _machine() -> dict[str, Any]:
    return harness.machine(
        ("createagents", "openai", "pydantic-ai-slim", "openai-agents", "aiohttp", "httpx", "pydantic")
    )


# -- the page ----------------------------------------------------------------------------------


def verdict(results: dict[str, Any]) -> tuple[float | None, bool]:
    ours = results["contenders"].get(OURS) or {}
    ratio = ours.get("ratio_to_openai_sdk")
    return ratio, ratio is not None and ratio <= TARGET


def render(results: dict[str, Any]) -> str:
    sizes, machine = results["sizes"], results["machine"]
    ratio, met = verdict(results)
    rows = sorted(results["contenders"].items(), key=lambda kv: kv[1]["median"]["cpu_per_token_us"])
    lines = [
        "# Performance: streaming on the Responses API",
        "",
        f"*Generated by `python -m benchmarks.responses` on {results['date']}; {sizes['rounds']} interleaved "
        f"rounds of one {sizes['tokens']:,}-token streamed answer per contender, medians; every answer checked "
        "for exact text before it counts.*",
        "",
        'createagents\' OpenAI Responses adapter (`CreateAgent(provider="openai", api="responses")`) against '
        "the raw `openai` SDK's own Responses streaming (`client.responses.create(stream=True)`), measured in "
        "the same run; the Chat Completions path has the same bar on [performance.md](performance.md).",
        "",
        "## Target",
        "",
        "| workload | client | metric | baseline | this run | target | met |",
        "|---|---|---|---|---:|---:|:---:|",
        f"| stream (Responses API) | {OURS} | cpu_per_token_us | {BASELINE} | "
        f"{'—' if ratio is None else f'{ratio:.3f}'} | ≤ {TARGET:.2f} | {'yes' if met else 'no'} |",
        "",
        "## stream",
        "",
        f"One {sizes['tokens']:,}-token streamed answer; client CPU per token (process CPU time: user + system).",
        "",
        "| client | client CPU per token (µs) | ratio to openai-sdk | per round (µs) | wall time (s) "
        "| server CPU (s) |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for name, entry in rows:
        m = entry["median"]
        r = entry["ratio_to_openai_sdk"]
        per_round = ", ".join(f"{x:.2f}" for x in entry["rounds"])
        lines.append(
            f"| {name} | {m['cpu_per_token_us']:.2f} | {'—' if r is None else f'{r:.3f}'} | {per_round} | "
            f"{m['wall_s']:.2f} | {m['server_cpu_s']:.2f} |"
        )
    if results.get("failures"):
        lines += ["", "Failed rounds (left out of the medians):", ""]
        lines += [f"- {f}" for f in results["failures"]]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
    lines += [
        "",
        "## Machine",
        "",
        f"- {machine['cpu']}, {machine['cores']} cores; {machine['platform']}; Python {machine['python']}",
        f"- {versions}",
        "- Timings on shared machines are noisy: compare ratios from the same run, not absolute numbers.",
        "",
        "## How the numbers are made",
        "",
        "- The server (`python -m benchmarks.responses serve`) runs in its own process: raw asyncio that writes "
        "each answer's bytes, rendered once per size from the event sequence of the test fake "
        "(`tests/fakes/responses_server.py`): `response.created`, `response.in_progress`, "
        "`response.output_item.added`, `response.content_part.added`, one `response.output_text.delta` per "
        "token (with its `obfuscation` padding, as OpenAI sends by default), `response.output_text.done`, "
        "`response.content_part.done`, `response.output_item.done` and `response.completed` (the last three "
        "carry the whole text, as the API's do). Its CPU is recorded next to each measurement.",
        "- Every (client, round) runs in a fresh worker process (`python -m benchmarks.responses worker`), "
        "after a 5-token warm-up answer, so its CPU is its own; the client order rotates every round.",
        "- CPU is `time.process_time()` around the whole answer (request, stream, the client's own "
        "bookkeeping), divided by the tokens; the ratio is taken against the raw SDK in the same round, then "
        "the median over rounds.",
        "- `openai-sdk` iterates `await client.responses.create(model=..., input=prompt, store=False, "
        "stream=True)` and keeps the `response.output_text.delta` events' text; createagents is "
        "`async for token in agent.conversation(id).chat(prompt)` on "
        '`CreateAgent(provider="openai", api="responses", base_url=..., api_key=...)`; pydantic-ai is '
        "`Agent(OpenAIResponsesModel(...)).run_stream(prompt)` with `stream_text(delta=True, "
        "debounce_by=None)`; openai-agents is `Runner.run_streamed(Agent(model=OpenAIResponsesModel(...)), "
        "prompt)` keeping the `ResponseTextDeltaEvent`s.",
        "",
        "## Where the difference comes from",
        "",
        "- Per text delta, createagents does one pass of its incremental SSE parser over the bytes, one "
        "`json.loads`, a check of the event's `type` and `delta`, one `TextDelta` and one hop through the agent "
        "loop to the caller; under `--profile`, `json.loads` is about half of that. Every other event (the "
        "item and part events, the terminal `response.completed`) takes the slower, fully checked path, once "
        "per answer.",
        "- The raw SDK decodes the SSE line by line and builds a validated pydantic model of the "
        "`ResponseStreamEvent` union for every event (`construct_type` → `validate_python`): more than half "
        "of its CPU per token under cProfile. The peers run on top of the SDK's stream, and add their own "
        "event objects and bookkeeping per delta.",
        "",
        "## Re-run",
        "",
        "```bash",
        '.venv/bin/pip install -q -e ".[bench]"              # the peers: pydantic-ai, openai-agents',
        ".venv/bin/python benchmarks/responses.py            # ~2 min: this page, benchmarks/results/responses.json",
        ".venv/bin/python benchmarks/responses.py --smoke    # seconds: exact-text checks, results to a temp dir",
        ".venv/bin/python benchmarks/responses.py --profile  # where createagents' CPU goes, function by function",
        "```",
        "",
    ]
    return "\n".join(lines)


# -- profile: createagents' stream loop under cProfile, in this process ------------------------


def profile(n: int, top: int) -> None:
    import cProfile
    import pstats

    server, url = start_server(n)
    try:

        async def main() -> None:
            stream, close = await _createagents(url)
            try:
                check(OURS, await collect(stream, 5), 5)
                profiler = cProfile.Profile()
                profiler.enable()
                deltas = await collect(stream, n)
                profiler.disable()
                check(OURS, deltas, n)
            finally:
                await close()
            stats = pstats.Stats(profiler)
            print(f"{OURS}: one {n:,}-token answer under cProfile (cProfile inflates every call's cost)")
            stats.sort_stats("tottime").print_stats(top)

        asyncio.run(main())
    finally:
        server.kill()
        server.wait()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        asyncio.run(serve(argv[-1], [int(n) for n in argv[1:-1]]))  # the port file last
        return 0
    if argv[:1] == ["worker"]:
        print(json.dumps(asyncio.run(measure(argv[1], argv[2], int(argv[3])))))
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.responses", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one round; results to a temp dir")
    parser.add_argument("--tokens", type=int, help=f"tokens per answer (default {FULL['tokens']:,})")
    parser.add_argument("--rounds", type=int, help=f"rounds (default {FULL['rounds']})")
    parser.add_argument("--clients", nargs="*", choices=CONTENDERS, help="default: all installed")
    parser.add_argument("--out", type=Path, help="results JSON (default benchmarks/results/responses.json)")
    parser.add_argument("--docs", type=Path, help="where performance-responses.md goes (default docs/)")
    parser.add_argument("--profile", action="store_true", help="profile createagents' stream loop instead")
    args = parser.parse_args(argv)
    base = SMOKE if args.smoke else FULL
    sizes = {"tokens": args.tokens or base["tokens"], "rounds": args.rounds or base["rounds"]}
    if args.profile:
        profile(sizes["tokens"], 30)
        return 0
    scratch = Path(tempfile.mkdtemp(prefix="responses-bench-")) if args.smoke else None
    out = args.out or (scratch / "responses.json" if scratch else ROOT / "benchmarks" / "results" / "responses.json")
    docs = args.docs or (scratch or ROOT / "docs")
    results = {
        "date": datetime.date.today().isoformat(),
        "smoke": args.smoke,
        "sizes": sizes,
        "target": TARGET,
        "machine": _machine(),
        **run(sizes, available(args.clients), side_by_side=args.smoke),
    }
    ratio, met = verdict(results)
    results["ratio"], results["met"] = ratio, met
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    page = render(results)
    (docs / "performance-responses.md").write_text(page)
    print()
    print(f"{'client':24} {'CPU/token (µs)':>15} {'ratio to openai-sdk':>20}")
    for name, entry in sorted(results["contenders"].items(), key=lambda kv: kv[1]["median"]["cpu_per_token_us"]):
        r = entry["ratio_to_openai_sdk"]
        print(f"{name:24} {entry['median']['cpu_per_token_us']:15.2f} {'—' if r is None else f'{r:.3f}':>20}")
    shown = "—" if ratio is None else f"{ratio:.3f}"
    print(f"\n{OURS} / {BASELINE}: {shown} (target ≤ {TARGET:.2f}): {'PASS' if met else 'FAIL'}")
    print(f"results: {out}; page: {docs / 'performance-responses.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

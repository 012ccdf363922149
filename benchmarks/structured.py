"""Structured output: client CPU per validated answer, createagents (`output_type=`) against the raw `openai` SDK.

    python -m benchmarks.structured              # full run (~1.5 min on 2 cores): benchmarks/results/structured.json
                                                 # and docs/performance-structured.md
    python -m benchmarks.structured --smoke      # seconds: tiny sizes, every answer checked, results to a temp dir
    python -m benchmarks.structured --profile    # cProfile of createagents' answers, in this process
    python benchmarks/structured.py ...          # the same, run as a script

The workload: a Chat Completions stream whose content is the JSON of a `Trip`
(a title, a count and a list of `Stop`s of five fields each), sent as small
text deltas of a few characters each, as a model streams structured output.
Each contender asks for it `answers` times in a row and turns every answer
into a validated `Trip`; the measure is client CPU per answer (process CPU
time, not wall time), and per delta:

- `openai-sdk`: `client.chat.completions.create(stream=True,
  response_format={"type": "json_schema", ...})`, the deltas joined by hand,
  `Trip.model_validate_json(text)` (the baseline);
- `openai-sdk-stream`: the SDK's own helper, `client.chat.completions.stream(
  response_format=Trip)`, `get_final_completion()...message.parsed` (it parses
  the partial JSON on every chunk);
- `createagents`: `await agent.conversation(id).chat(prompt)` on
  `CreateAgent(provider="openai", output_type=Trip, output_mode="native")`;
- `createagents-partial`: the same, consuming `reply.partial()` (a validated,
  partially filled `Trip` as the JSON grows; the last one is the answer);
- when installed: pydantic-ai's `Agent(OpenAIChatModel(...),
  output_type=NativeOutput(Trip))` with `run_stream(...).get_output()`
  (`pydantic-ai`) and with `stream_output(debounce_by=None)`
  (`pydantic-ai-partial`); the OpenAI Agents SDK's `Agent(output_type=Trip,
  model=OpenAIChatCompletionsModel(...))` with `Runner.run_streamed`.

The server runs in its own process (`serve`): raw asyncio writing the bytes of
each answer, rendered once per size; it answers only streamed requests that
carry a `json_schema` response format (anything else is a 400), so every
contender is measured on the same native path. Every (contender, round) runs
in a fresh worker process after a warm-up answer; the order rotates each
round; every answer must equal the expected `Trip` before its time counts.
Ratios are taken to the raw SDK and to pydantic-ai in the same round, then
the median over rounds.
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
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
if not __package__:  # run as a script: import from the project, not from benchmarks/ (its modules shadow names)
    sys.path[0] = str(ROOT)

from benchmarks import _harness as harness  # noqa: E402 - once the project is on the path
from benchmarks._harness import KeepAlive, WorkerFailed  # noqa: E402

MODEL = "bench"
FULL = {"stops": 50, "answers": 15, "rounds": 3}
SMOKE = {"stops": 4, "answers": 3, "rounds": 1}
DELTA_CHARS = 4  # characters per streamed text delta: about a token of JSON
BASELINE = "openai-sdk"
PEER = "pydantic-ai"  # the best alternative
OURS = "createagents"
OURS_PARTIAL = "createagents-partial"
CONTENDERS = (BASELINE, "openai-sdk-stream", OURS, OURS_PARTIAL, PEER, "pydantic-ai-partial", "openai-agents")
PEERS = {"pydantic-ai": "pydantic_ai", "pydantic-ai-partial": "pydantic_ai", "openai-agents": "agents"}
LIKE = {OURS: PEER, OURS_PARTIAL: "pydantic-ai-partial"}  # our rows and the peer row doing the same thing


# -- the answer ---------------------------------------------------------------------------------


class Stop(BaseModel):
    """One stop of a trip."""

    name: str
    city: str
    day: int
    hours: float
    booked: bool


class Trip(BaseModel):
    """A trip: its stops in order."""

    title: str
    travellers: int
    stops: list[Stop]


_CITIES = ("Lisbon", "Porto", "Madrid", "Seville", "Valencia", "Bordeaux", "Lyon", "Geneva", "Turin", "Milan")


def expected(stops: int) -> Trip:
    return Trip(
        title=f"A {stops}-stop tour of southern Europe",
        travellers=3,
        stops=[
            Stop(
                name=f"Stop {i}", city=_CITIES[i % len(_CITIES)], day=1 + i // 3, hours=1.5 + (i % 4), booked=i % 2 == 0
            )
            for i in range(stops)
        ],
    )


def deltas(stops: int) -> list[str]:
    """The answer as the model streams it: compact JSON, a few characters per delta."""
    text = expected(stops).model_dump_json()
    return [text[i : i + DELTA_CHARS] for i in range(0, len(text), DELTA_CHARS)]


def prompt(stops: int) -> str:
    return f"trip {stops}"


# -- the server: pre-rendered Chat Completions streams, raw asyncio, its own process ------------


@lru_cache(maxsize=8)
def rendered(stops: int) -> bytes:
    """The chunked HTTP body of the answer with `stops` stops: role, one chunk per delta, finish, usage, [DONE]."""
    from benchmarks.server import _oa_chunk, _sse, openai_head, openai_tail

    parts = deltas(stops)
    frames = [openai_head(), *(_sse(_oa_chunk({"content": d})) for d in parts), openai_tail(len(parts))]
    body = b"".join(
        b"%x\r\n%s\r\n" % (len(part), part)
        for part in (b"".join(frames[i : i + 64]) for i in range(0, len(frames), 64))
    )
    return body + b"0\r\n\r\n"


_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n"
    b"x-request-id: req_bench\r\n\r\n"
)
_ASKED = re.compile(r"trip (\d+)")


def refusal(body: bytes) -> str | None:
    """Why a request is not one this benchmark measures (a streamed json_schema answer), or None."""
    try:
        request = json.loads(body)
    except ValueError:
        return "the body is not JSON"
    if request.get("stream") is not True:
        return "only streamed requests are answered"
    response_format = request.get("response_format") or {}
    if response_format.get("type") != "json_schema" or "schema" not in (response_format.get("json_schema") or {}):
        return f"a json_schema response_format is required, got {response_format!r}"
    return None


class _Protocol(KeepAlive):
    """Reads `POST /v1/chat/completions` requests (keep-alive) and answers "trip N" with N stops."""

    def request(self, head: str, body: bytes) -> None:
        assert self.transport is not None
        if not head.startswith("POST ") or " /v1/chat/completions " not in head:
            self.not_found()
            return
        why = refusal(body)
        if why is not None:
            error = json.dumps({"error": {"message": why, "type": "invalid_request_error"}}).encode()
            self.transport.write(
                b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (len(error), error)
            )
            return
        messages = json.loads(body)["messages"]
        asked = _ASKED.search(str(messages[-1].get("content")))
        self.transport.write(_HEAD + rendered(int(asked.group(1)) if asked else 2))


async def serve(port_file: str, sizes: list[int]) -> None:
    for n in sizes:  # rendered before the port is known: the measured requests find them ready
        rendered(n)
    await harness.serve(_Protocol, port_file)


def start_server(stops: int) -> tuple[subprocess.Popen[bytes], str]:
    """The server in its own process, the answers of 2 and `stops` stops rendered; its URL (without `/v1`)."""
    return harness.start_server("benchmarks.structured", ["serve", "2", str(stops)])


# -- the contenders: each asks for one answer and gives back the validated Trip -----------------

Ask = Callable[[str], Awaitable[Trip]]


def _response_format() -> dict[str, Any]:
    """What a hand-written client sends: OpenAI's strict json_schema for `Trip`."""
    from openai.lib._pydantic import to_strict_json_schema

    return {
        "type": "json_schema",
        "json_schema": {"name": "Trip", "schema": to_strict_json_schema(Trip), "strict": True},
    }


async def _openai_sdk(url: str) -> tuple[Ask, Callable[[], Any]]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
    response_format: Any = _response_format()

    async def ask(message: str) -> Trip:
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": message}],
            stream=True,
            response_format=response_format,
        )
        parts = []
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
        return Trip.model_validate_json("".join(parts))

    return ask, client.close


async def _openai_sdk_stream(url: str) -> tuple[Ask, Callable[[], Any]]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)

    async def ask(message: str) -> Trip:
        async with client.chat.completions.stream(
            model=MODEL, messages=[{"role": "user", "content": message}], response_format=Trip
        ) as stream:
            async for _ in stream:
                pass
            completion = await stream.get_final_completion()
        parsed = completion.choices[0].message.parsed
        assert parsed is not None
        return parsed

    return ask, client.close


def _agent(url: str) -> Any:
    from createagents import CreateAgent

    return CreateAgent(
        provider="openai",
        model=MODEL,
        base_url=f"{url}/v1",
        api_key="x",
        max_retries=0,
        output_type=Trip,
        output_mode="native",
    )


async def _createagents(url: str) -> tuple[Ask, Callable[[], Any]]:
    agent = _agent(url)
    count = 0

    async def ask(message: str) -> Trip:
        nonlocal count
        count += 1  # a fresh history per answer, as the raw SDK sends one message
        trip: Trip = await agent.conversation(f"c{count}").chat(message)
        return trip

    return ask, agent.aclose


async def _createagents_partial(url: str) -> tuple[Ask, Callable[[], Any]]:
    agent = _agent(url)
    count = 0

    async def ask(message: str) -> Trip:
        nonlocal count
        count += 1
        last: Trip | None = None
        async for value in agent.conversation(f"c{count}").chat(message).partial():
            last = value
        assert last is not None
        return last

    return ask, agent.aclose


def _pydantic_ai_agent(url: str) -> Any:
    from pydantic_ai import Agent, NativeOutput
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    model = OpenAIChatModel(MODEL, provider=OpenAIProvider(base_url=f"{url}/v1", api_key="x"))
    return Agent(model, output_type=NativeOutput(Trip))


async def _nothing() -> None:
    pass


async def _pydantic_ai(url: str) -> tuple[Ask, Callable[[], Any]]:
    agent = _pydantic_ai_agent(url)

    async def ask(message: str) -> Trip:
        async with agent.run_stream(message) as result:
            trip: Trip = await result.get_output()
        return trip

    return ask, _nothing


async def _pydantic_ai_partial(url: str) -> tuple[Ask, Callable[[], Any]]:
    agent = _pydantic_ai_agent(url)

    async def ask(message: str) -> Trip:
        last: Trip | None = None
        async with agent.run_stream(message) as result:
            async for value in result.stream_output(debounce_by=None):
                last = value
        assert last is not None
        return last

    return ask, _nothing


async def _openai_agents(url: str) -> tuple[Ask, Callable[[], Any]]:
    from agents import Agent, OpenAIChatCompletionsModel, Runner, set_tracing_disabled
    from openai import AsyncOpenAI

    set_tracing_disabled(True)
    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
    agent = Agent(name="bench", model=OpenAIChatCompletionsModel(MODEL, client), output_type=Trip)

    async def ask(message: str) -> Trip:
        result = Runner.run_streamed(agent, message)
        async for _ in result.stream_events():
            pass
        trip: Trip = result.final_output
        return trip

    return ask, client.close


CLIENTS: dict[str, Callable[[str], Awaitable[tuple[Ask, Callable[[], Any]]]]] = {
    BASELINE: _openai_sdk,
    "openai-sdk-stream": _openai_sdk_stream,
    OURS: _createagents,
    OURS_PARTIAL: _createagents_partial,
    "pydantic-ai": _pydantic_ai,
    "pydantic-ai-partial": _pydantic_ai_partial,
    "openai-agents": _openai_agents,
}


def check(name: str, answer: Any, stops: int) -> None:
    want = expected(stops)
    if type(answer) is not Trip or answer != want:
        raise SystemExit(f"{name}: wrong answer for {stops} stops: {answer!r:.200} != {want!r:.200}")


async def measure(name: str, url: str, stops: int, answers: int) -> dict[str, Any]:
    """One contender: a warm-up answer, then `answers` answers in a row, timed in process CPU and wall time."""
    ask, close = await CLIENTS[name](url)
    try:
        check(name, await ask(prompt(2)), 2)  # warm-up: connection, lazy imports, schema building
        got: list[Trip] = []
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(answers):
            got.append(await ask(prompt(stops)))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        for answer in got:
            check(name, answer, stops)
        n = len(deltas(stops))
        return {
            "cpu_per_answer_ms": cpu / answers * 1e3,
            "cpu_per_delta_us": cpu / (answers * n) * 1e6,
            "wall_per_answer_ms": wall / answers * 1e3,
            "cpu_s": cpu,
            "wall_s": wall,
        }
    finally:
        await close()


# -- the run: a fresh worker process per (contender, round) ---------------------------------


def run_worker(name: str, url: str, stops: int, answers: int, server_pid: int) -> dict[str, Any]:
    return harness.run_worker("benchmarks.structured", [name, url, str(stops), str(answers)], server_pid, name)


def available(requested: list[str] | None) -> list[str]:
    names = requested or list(CONTENDERS)
    if BASELINE not in names:
        names = [BASELINE, *names]  # the ratio needs it
    return [n for n in names if n not in PEERS or importlib.util.find_spec(PEERS[n]) is not None]


def run(sizes: dict[str, int], contenders: list[str], side_by_side: bool = False) -> dict[str, Any]:
    """Every round runs each contender in turn (`side_by_side`: all at once, for a smoke run that keeps no timings)."""
    stops, answers, rounds = sizes["stops"], sizes["answers"], sizes["rounds"]
    raw: dict[str, list[dict[str, Any] | None]] = {c: [None] * rounds for c in contenders}
    failures: list[str] = []
    server, url = start_server(stops)

    def job(r: int, name: str) -> None:
        try:
            result = run_worker(name, url, stops, answers, server.pid)
        except WorkerFailed as e:
            if name not in PEERS:
                raise SystemExit(str(e)) from None
            failures.append(f"round {r + 1}, {name}: {str(e).strip().splitlines()[-1]}")  # a result too: shown
            print(f"round {r + 1} {name:22} FAILED", flush=True)
            return
        raw[name][r] = result
        shown = {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}
        print(f"round {r + 1} {name:22} {json.dumps(shown)}", flush=True)

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


def _ratios(rounds: list[dict[str, Any] | None], base: list[dict[str, Any] | None]) -> list[float]:
    return [
        r["cpu_per_answer_ms"] / b["cpu_per_answer_ms"]
        for r, b in zip(rounds, base, strict=False)
        if r and b and b["cpu_per_answer_ms"]
    ]


def summarise(raw: dict[str, list[dict[str, Any] | None]]) -> dict[str, Any]:
    """Medians over rounds; each round's ratio to a baseline of the same round, then their median."""
    summary: dict[str, Any] = {}
    for name, rounds in raw.items():
        done = [r for r in rounds if r is not None]
        if not done:
            continue
        keys = ("cpu_per_answer_ms", "cpu_per_delta_us", "wall_per_answer_ms", "cpu_s", "wall_s", "server_cpu_s")
        entry: dict[str, Any] = {
            "median": {k: statistics.median(r[k] for r in done) for k in keys},
            "rounds": [round(r["cpu_per_answer_ms"], 3) for r in done],
            "rounds_done": len(done),
        }
        for other in (BASELINE, PEER, LIKE.get(name)):
            if other is None:
                continue
            ratios = _ratios(rounds, raw.get(other) or [])
            entry[f"ratio_to_{other}"] = statistics.median(ratios) if ratios else None
            entry[f"ratio_rounds_to_{other}"] = [round(x, 4) for x in ratios]
        summary[name] = entry
    return summary


def _machine() -> dict[str, Any]:
    return harness.machine(
        (
            "createagents",
            "openai",
            "pydantic-ai-slim",
            "openai-agents",
            "httpx",
            "pydantic",
            "pydantic-core",
        )
    )


# -- the page ----------------------------------------------------------------------------------


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def headline(results: dict[str, Any]) -> list[tuple[str, str, float | None]]:
    """(client, baseline, ratio): our rows against the raw SDK and against pydantic-ai doing the same."""
    rows = []
    for ours in (OURS, OURS_PARTIAL):
        entry = results["contenders"].get(ours)
        if entry is None:
            continue
        for other in dict.fromkeys((BASELINE, LIKE[ours])):
            if other in results["contenders"]:
                rows.append((ours, other, entry.get(f"ratio_to_{other}")))
    return rows


def render(results: dict[str, Any]) -> str:
    sizes, machine = results["sizes"], results["machine"]
    n = len(deltas(sizes["stops"]))
    chars = len(expected(sizes["stops"]).model_dump_json())
    rows = sorted(results["contenders"].items(), key=lambda kv: kv[1]["median"]["cpu_per_answer_ms"])
    lines = [
        "# Performance: structured output",
        "",
        f"*Generated by `python -m benchmarks.structured` on {results['date']}; {sizes['rounds']} interleaved "
        f"rounds of {sizes['answers']} answers in a row per contender, medians; every answer checked to equal the "
        "expected object before it counts.*",
        "",
        'createagents\' structured output (`CreateAgent(provider="openai", output_type=Trip, '
        'output_mode="native")`, `await agent.chat(...)` giving a validated `Trip`) against the raw `openai` SDK '
        "doing the same by hand and against pydantic-ai's `NativeOutput`, measured in the same run; text "
        "streaming has its bar on [performance.md](performance.md).",
        "",
        "## Ratios",
        "",
        "Client CPU per answer, as a ratio to the baseline in the same round (median over rounds; lower is "
        "better). No target is set yet.",
        "",
        "| workload | client | metric | baseline | this run |",
        "|---|---|---|---|---:|",
    ]
    for ours, other, ratio in headline(results):
        lines.append(f"| structured | {ours} | cpu_per_answer_ms | {other} | {_fmt(ratio)} |")
    lines += [
        "",
        "## structured",
        "",
        f"One answer: a `Trip` with {sizes['stops']} `Stop`s, {chars:,} characters of compact JSON streamed as "
        f"{n:,} content deltas of {DELTA_CHARS} characters; {sizes['answers']} answers in a row per worker. "
        "Client CPU is process CPU time (user + system).",
        "",
        "| client | CPU per answer (ms) | CPU per delta (µs) | ratio to openai-sdk | ratio to pydantic-ai "
        "| per round (ms) | wall per answer (ms) | server CPU (s) |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for name, entry in rows:
        m = entry["median"]
        per_round = ", ".join(f"{x:.2f}" for x in entry["rounds"])
        lines.append(
            f"| {name} | {m['cpu_per_answer_ms']:.2f} | {m['cpu_per_delta_us']:.2f} | "
            f"{_fmt(entry.get('ratio_to_' + BASELINE))} | {_fmt(entry.get('ratio_to_' + PEER))} | {per_round} | "
            f"{m['wall_per_answer_ms']:.2f} | {m['server_cpu_s']:.2f} |"
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
        "- The server (`python -m benchmarks.structured serve`) runs in its own process: raw asyncio that "
        "writes each answer's bytes, rendered once per size as Chat Completions chunks (a role chunk, one "
        "chunk per content delta, a finish chunk, a usage chunk, `[DONE]`). It answers only streamed "
        "requests with a `json_schema` `response_format` (else a 400), so every client is on the native "
        "structured-output path. Its CPU is recorded next to each measurement.",
        "- Every (client, round) runs in a fresh worker process (`python -m benchmarks.structured worker`), "
        "after a warm-up answer (2 stops), so its CPU is its own; the client order rotates every round.",
        "- CPU is `time.process_time()` around all the answers of a worker (request, stream, joining, JSON "
        "parsing, validation, the client's own bookkeeping), divided by the answers (and by the deltas); "
        "each answer is compared with the expected `Trip` afterwards, and a wrong one fails the run.",
        '- `openai-sdk` sends `response_format={"type": "json_schema", ...}` (the SDK\'s strict schema for '
        "`Trip`) with `stream=True`, joins `chunk.choices[0].delta.content` and calls "
        "`Trip.model_validate_json`; `openai-sdk-stream` is `client.chat.completions.stream(..., "
        "response_format=Trip)` and `get_final_completion().choices[0].message.parsed`; createagents is "
        "`await agent.conversation(id).chat(prompt)` (a fresh conversation per answer, as the others send one "
        "message), and `createagents-partial` iterates `reply.partial()` to its last value; pydantic-ai is "
        "`Agent(OpenAIChatModel(...), output_type=NativeOutput(Trip))` with `run_stream(prompt)` and "
        "`get_output()`, and `pydantic-ai-partial` iterates `stream_output(debounce_by=None)`; openai-agents "
        "is `Runner.run_streamed(Agent(output_type=Trip, model=OpenAIChatCompletionsModel(...)), prompt)`, "
        "its events drained, then `final_output`.",
        "- Ratios are per round against the baseline of the same round, then the median over rounds. The "
        "partial rows do far more work (a partial parse and validation of the text so far after every delta) "
        "and are best compared with each other.",
        "",
        "## Where the difference comes from",
        "",
        "- createagents, per delta: one pass of its incremental SSE parser over the bytes, one `json.loads` of "
        "the chunk, one `TextDelta` through the agent loop; the answer is joined and validated once, at the end "
        "(`OutputSpec.validate`: `json.loads` and the `TypeAdapter`'s `validate_python`). Under `--profile`, "
        "decoding the chunks is most of it; validating the whole `Trip` is a few percent.",
        "- The raw SDK builds a validated pydantic `ChatCompletionChunk` for every chunk. Its `stream()` helper "
        "also folds each chunk into a snapshot and re-parses the whole JSON so far with jiter's partial mode on "
        "every chunk (`openai/lib/streaming/chat/_completions.py`, `_accumulate_chunk`), which grows with the "
        "square of the answer's length. pydantic-ai and openai-agents run on the SDK's stream and add their own "
        "objects per delta.",
        "- `reply.partial()` re-reads the whole text so far on every delta (`OutputSpec.partial`: the regex "
        'that drops a number still growing at the end, `from_json(..., allow_partial="trailing-strings")`, '
        "a partial `validate_python`), so its cost per answer also grows with the square of the answer's "
        "length; under `--profile createagents-partial` the regex is the largest single cost, ahead of "
        "validation and parsing. pydantic-ai's `stream_output` re-validates the whole response on every delta "
        "as well, on top of its stream.",
        "",
        "## Re-run",
        "",
        "```bash",
        '.venv/bin/pip install -q -e ".[bench]"               # the peers: pydantic-ai, openai-agents',
        ".venv/bin/python benchmarks/structured.py            # ~2 min: this page, benchmarks/results/structured.json",
        ".venv/bin/python benchmarks/structured.py --smoke    # seconds: every answer checked, results to a temp dir",
        ".venv/bin/python benchmarks/structured.py --profile  # where createagents' CPU goes, function by function",
        "```",
        "",
    ]
    return "\n".join(lines)


# -- profile: createagents' answers under cProfile, in this process ----------------------------


def profile(name: str, stops: int, answers: int, top: int) -> None:
    import cProfile
    import pstats

    server, url = start_server(stops)
    try:

        async def main() -> None:
            ask, close = await CLIENTS[name](url)
            try:
                check(name, await ask(prompt(2)), 2)
                profiler = cProfile.Profile()
                profiler.enable()
                got = [await ask(prompt(stops)) for _ in range(answers)]
                profiler.disable()
                for answer in got:
                    check(name, answer, stops)
            finally:
                await close()
            stats = pstats.Stats(profiler)
            print(f"{name}: {answers} answers of {stops} stops under cProfile (cProfile inflates every call's cost)")
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
        print(json.dumps(asyncio.run(measure(argv[1], argv[2], int(argv[3]), int(argv[4])))))
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.structured", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one round; results to a temp dir")
    parser.add_argument("--stops", type=int, help=f"stops per answer (default {FULL['stops']})")
    parser.add_argument("--answers", type=int, help=f"answers per worker (default {FULL['answers']})")
    parser.add_argument("--rounds", type=int, help=f"rounds (default {FULL['rounds']})")
    parser.add_argument("--clients", nargs="*", choices=CONTENDERS, help="default: all installed")
    parser.add_argument("--out", type=Path, help="results JSON (default benchmarks/results/structured.json)")
    parser.add_argument("--docs", type=Path, help="where performance-structured.md goes (default docs/)")
    parser.add_argument(
        "--profile", nargs="?", const=OURS, choices=CONTENDERS, help="profile one client (default createagents)"
    )
    args = parser.parse_args(argv)
    base = SMOKE if args.smoke else FULL
    sizes = {k: getattr(args, k) or base[k] for k in ("stops", "answers", "rounds")}
    if args.profile:
        profile(args.profile, sizes["stops"], sizes["answers"], 30)
        return 0
    scratch = Path(tempfile.mkdtemp(prefix="structured-bench-")) if args.smoke else None
    out = args.out or (scratch / "structured.json" if scratch else ROOT / "benchmarks" / "results" / "structured.json")
    docs = args.docs or (scratch or ROOT / "docs")
    results = {
        "date": datetime.date.today().isoformat(),
        "smoke": args.smoke,
        "sizes": {**sizes, "deltas": len(deltas(sizes["stops"]))},
        "machine": _machine(),
        **run(sizes, available(args.clients), side_by_side=args.smoke),
    }
    results["headline"] = [{"client": c, "baseline": b, "ratio": r} for c, b, r in headline(results)]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    (docs / "performance-structured.md").write_text(render(results))
    print()
    print(f"{'client':22} {'CPU/answer (ms)':>16} {'CPU/delta (µs)':>15} {'to openai-sdk':>14} {'to pydantic-ai':>15}")
    for name, entry in sorted(results["contenders"].items(), key=lambda kv: kv[1]["median"]["cpu_per_answer_ms"]):
        m = entry["median"]
        print(
            f"{name:22} {m['cpu_per_answer_ms']:16.2f} {m['cpu_per_delta_us']:15.2f} "
            f"{_fmt(entry.get('ratio_to_' + BASELINE)):>14} {_fmt(entry.get('ratio_to_' + PEER)):>15}"
        )
    print()
    for ours, other, ratio in headline(results):
        print(f"{ours} / {other}: {_fmt(ratio)}")
    print(f"results: {out}; page: {docs / 'performance-structured.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

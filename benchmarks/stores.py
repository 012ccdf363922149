"""The `store` workloads: what each conversation store adds to a turn, through one agent, against the fake server.

- `store_turn`: sequential turns, one store after the other turn by turn (the
  order rotates every turn), in one process, so every store sees the same
  machine noise; the overhead of a store is its p50 (p99) turn time minus the
  memory store's p50 (p99) in the same process.
- `store_concurrent`: many conversations at once through one agent on one
  store (a process per store), each a few turns in sequence; then every
  history is read back and compared with what was said: a turn missing or
  different is a lost turn.

The conversation histories grow as in real use: `store_turn` cycles through
a few conversations, so each reaches tens of turns.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.clients import MODEL, peak_rss_mb
from benchmarks.server import expected_text

STORES = ("memory", "sqlite", "redis")
# The concurrent workload also runs Redis with a larger client pool: redis-py's asyncio pool holds 100
# connections by default and raises `MaxConnectionsError` (it does not wait) when more commands are in flight.
REDIS_MAX_CONNECTIONS = 2000
CONCURRENT_STORES = (*STORES, "redis-maxconn")


def store_url(store: str, workdir: Path, redis_url: str | None) -> str:
    if store == "memory":
        return "memory://"
    if store == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}"  # an absolute path: sqlite:////tmp/...
    if store in ("redis", "redis-maxconn"):
        if not redis_url:
            raise SystemExit("the redis store needs a redis-server (none was started)")
        url = f"{redis_url}?prefix=bench-{uuid.uuid4().hex[:12]}"  # a fresh key space per worker
        return url + (f"&max_connections={REDIS_MAX_CONNECTIONS}" if store == "redis-maxconn" else "")
    raise SystemExit(f"unknown store {store}")


def _prompt(i: int) -> tuple[str, str]:
    n = 1 + i % 5
    return f"stream {n}", expected_text(n)


def _agent(url: str, store: str) -> Any:
    from createagents import CreateAgent

    return CreateAgent(provider="openai", model=MODEL, base_url=f"{url}/v1", api_key="x", max_retries=0, store=store)


async def _lost_turns(agent: Any, said: dict[str, list[tuple[str, str]]]) -> int:
    """Turns missing from (or different in) the stored histories: 0 when every turn is there, in order."""
    lost = 0
    for cid, turns in said.items():
        history = await agent.conversation(cid).history()
        got = [(m.role, m.content) for m in history]
        want = [pair for prompt, answer in turns for pair in (("user", prompt), ("assistant", answer))]
        if got != want:
            kept = sum(1 for i in range(0, min(len(got), len(want)), 2) if got[i : i + 2] == want[i : i + 2])
            lost += max(1, len(turns) - kept)
    return lost


async def store_turn(url: str, sizes: dict[str, Any], stores: list[str], redis_url: str | None) -> dict[str, Any]:
    turns, conversations = sizes["store_turn"]
    with tempfile.TemporaryDirectory(prefix="createagents-bench-") as tmp:
        agents = {s: _agent(url, store_url(s, Path(tmp), redis_url)) for s in stores}
        try:
            for s, agent in agents.items():  # warm up: connections, schema, scripts, lazy imports
                for i in range(5):
                    prompt, answer = _prompt(i)
                    if str(await agent.conversation("warm-up").chat(prompt)) != answer:
                        raise SystemExit(f"wrong answer from the {s} store's agent in the warm-up")
            times: dict[str, list[float]] = {s: [] for s in stores}
            said: dict[str, list[tuple[str, str]]] = {}
            order = list(stores)
            for i in range(turns):
                cid = f"c{i % conversations}"
                prompt, answer = _prompt(i)
                said.setdefault(cid, []).append((prompt, answer))
                order = order[1:] + order[:1]
                for s in order:
                    conversation = agents[s].conversation(cid)
                    start = time.perf_counter()
                    text = await conversation.chat(prompt)
                    times[s].append(time.perf_counter() - start)
                    if str(text) != answer:
                        raise SystemExit(f"wrong answer on the {s} store: {str(text)[:80]!r} != {answer!r}")
            result: dict[str, Any] = {}
            base = times.get("memory")
            for s in stores:
                p50, p99 = _percentiles(times[s])
                entry = {"p50_ms": p50, "p99_ms": p99, "lost_turns": await _lost_turns(agents[s], said)}
                if base is not None:
                    b50, b99 = _percentiles(base)
                    entry["overhead_p50_ms"] = p50 - b50
                    entry["overhead_p99_ms"] = p99 - b99
                result[s] = entry
            return result
        finally:
            for agent in agents.values():
                await agent.aclose()


async def store_concurrent(url: str, sizes: dict[str, Any], store: str, redis_url: str | None) -> dict[str, Any]:
    conversations, turns = sizes["store_concurrent"]
    with tempfile.TemporaryDirectory(prefix="createagents-bench-") as tmp:
        agent = _agent(url, store_url(store, Path(tmp), redis_url))
        try:
            for i in range(3):  # warm up
                prompt, answer = _prompt(i)
                if str(await agent.conversation("warm-up").chat(prompt)) != answer:
                    raise SystemExit(f"wrong answer from the {store} store's agent in the warm-up")
            said = {f"c{c}": [_prompt(c + t) for t in range(turns)] for c in range(conversations)}

            async def talk(cid: str) -> None:
                conversation = agent.conversation(cid)
                for prompt, answer in said[cid]:
                    text = await conversation.chat(prompt)
                    if str(text) != answer:
                        raise SystemExit(f"wrong answer on the {store} store: {str(text)[:80]!r} != {answer!r}")

            cpu0, wall0 = time.process_time(), time.perf_counter()
            await asyncio.gather(*(talk(cid) for cid in said))
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            rss = peak_rss_mb()
            lost = await _lost_turns(agent, said)
            return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": rss, "lost_turns": lost}
        finally:
            await agent.aclose()


def _percentiles(values: list[float]) -> tuple[float, float]:
    """p50 and p99 in ms (p99 by the inclusive method: on small samples, the largest values)."""
    if len(values) < 2:
        return values[0] * 1e3, values[0] * 1e3
    q = statistics.quantiles(values, n=100, method="inclusive")
    return statistics.median(values) * 1e3, q[98] * 1e3

"""Paused and resumed turns, and background runs replayed: what human-in-the-loop costs.

    python -m benchmarks.hitl           # full run: benchmarks/results/hitl.json and docs/performance-hitl.md
    python -m benchmarks.hitl --smoke   # seconds: tiny sizes, every answer checked, results to a temp dir

Two workloads, each against its baseline in the same run, on the built-in
offline model (no network: only the store's round trips and our code count):

- `pause_resume`: one turn that calls a tool needing approval, pauses (the
  state is saved to the store), and is resumed from a second agent object
  on the same store (the state is peeked, checked and taken; the history
  read; the turn committed), against the same turn with a tool that needs
  no approval. Interleaved, per store (memory, SQLite); the target is an
  added median under 2 ms on SQLite.
- `replay`: a background run's 10,000 stored events read back by a
  reconnecting follower through `BackgroundRuns.events(after=-1)`, against
  the store's own `events()` calls for the same rows; the target is under
  0.5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from createagents import CreateAgent, Message, ToolSpec, UserMessage, tool
from createagents.application.ports import ConversationStore
from createagents.testing import FunctionModel, tool_call

ROOT = Path(__file__).resolve().parent.parent
FULL = {"turns": 300, "events": 10_000, "replays": 5}
SMOKE = {"turns": 10, "events": 500, "replays": 1}
TARGETS = {"pause_resume_added_ms": 2.0, "replay_s": 0.5}


@tool(requires_approval=True)
def send(to: str) -> str:
    """Send an email."""
    return f"sent to {to}"


@tool
def send_now(to: str) -> str:
    """Send an email."""
    return f"sent to {to}"


def _script(name: str) -> Any:
    def answer(messages: list[Message], tools: list[ToolSpec]) -> object:
        if isinstance(messages[-1], UserMessage):
            return [tool_call(name, to="ana@example.com")]
        return f"Done: {messages[-1].content}"

    return answer


def _store(kind: str, directory: Path, name: str) -> ConversationStore:
    if kind == "memory":
        from createagents import InMemoryConversationStore

        return InMemoryConversationStore()
    from createagents.adapters.sqlite_store import SQLiteConversationStore

    return SQLiteConversationStore(directory / f"{name}.db")


async def pause_resume(kind: str, turns: int, directory: Path) -> dict[str, Any]:
    """Median ms of an uninterrupted turn and of a paused-and-resumed one, interleaved."""
    plain_store, paused_store = _store(kind, directory, "plain"), _store(kind, directory, "paused")
    plain = CreateAgent(provider=FunctionModel(_script("send_now")), tools=[send_now], store=plain_store)
    asking = CreateAgent(provider=FunctionModel(_script("send")), tools=[send], store=paused_store)
    deciding = CreateAgent(provider=FunctionModel(_script("send")), tools=[send], store=paused_store)
    straight: list[float] = []
    interrupted: list[float] = []
    try:
        for i in range(turns + 3):  # the first rounds warm the connections up
            start = time.perf_counter()
            text = await plain.conversation(f"u{i}").chat("Email Ana")
            took = time.perf_counter() - start
            _check(text, "Done: sent to ana@example.com")
            start = time.perf_counter()
            paused = (await asking.conversation(f"u{i}").chat("Email Ana")).paused
            assert paused is not None
            text = await deciding.conversation(f"u{i}").resume(paused.id, approvals={paused.pending[0].id: True})
            took_paused = time.perf_counter() - start
            _check(text, "Done: sent to ana@example.com")
            if i >= 3:
                straight.append(took * 1000)
                interrupted.append(took_paused * 1000)
        history = await deciding.conversation("u3").history()
        assert len(history) == 4, history
    finally:
        for agent in (plain, asking, deciding):
            await agent.aclose()
    plain_ms, paused_ms = statistics.median(straight), statistics.median(interrupted)
    return {"uninterrupted_ms": plain_ms, "paused_resumed_ms": paused_ms, "added_ms": paused_ms - plain_ms}


def _check(text: str, expected: str) -> None:
    if text != expected:
        raise AssertionError(f"expected {expected!r}, got {text!r}")


async def replay(kind: str, events: int, repeats: int, directory: Path) -> dict[str, Any]:
    """Seconds to replay a finished run's `events` to a reconnecting follower, against the store's own reads."""
    from createagents.application.background import PAGE, BackgroundRuns
    from createagents.application.ports import RunLog

    store = _store(kind, directory, "runs")
    assert isinstance(store, RunLog)
    words = " ".join(f"w{i}" for i in range(events - 4))  # created, started... : about `events` log events
    agent = CreateAgent(provider=FunctionModel(lambda m, t: words), store=store)
    owner = BackgroundRuns(store)
    follower = BackgroundRuns(store)  # another replica: it did not run it
    ours: list[float] = []
    raw: list[float] = []
    try:
        await owner.start("run-1", lambda: agent.ask("go"))
        count = len([e async for e in owner.events("run-1")])
        for _ in range(repeats):
            start = time.perf_counter()
            seen = [e async for e in follower.events("run-1")]
            ours.append(time.perf_counter() - start)
            assert len(seen) == count and seen[-1]["sequence_number"] == count - 1
            start = time.perf_counter()
            got, after = 0, -1
            while batch := await store.events("run-1", after=after, limit=PAGE):
                got += len(batch)
                after += len(batch)
            raw.append(time.perf_counter() - start)
            assert got == count
    finally:
        await owner.aclose()
        await agent.aclose()
    return {"events": count, "replay_s": statistics.median(ours), "store_reads_s": statistics.median(raw)}


async def run(sizes: dict[str, int], directory: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"pause_resume": {}, "replay": {}}
    for kind in ("memory", "sqlite"):
        (directory / kind).mkdir(parents=True, exist_ok=True)
        results["pause_resume"][kind] = await pause_resume(kind, sizes["turns"], directory / kind)
        results["replay"][kind] = await replay(kind, sizes["events"], sizes["replays"], directory / kind)
    return results


def render(results: dict[str, Any]) -> str:
    pr = results["workloads"]["pause_resume"]
    lines = [
        "# Performance: paused turns and background runs",
        "",
        f"*Generated by `python -m benchmarks.hitl` on {results['date']}; {results['sizes']['turns']} turns per "
        "store, medians; every answer checked before it counts.*",
        "",
        "## A paused and resumed turn against an uninterrupted one",
        "",
        "One turn calls a tool that needs approval: it pauses (its state saved to the store) and a second agent "
        "object on the same store resumes it (the state read, checked and taken, the history read, the turn "
        "committed). The baseline is the same turn with a tool that needs no approval, interleaved with it. "
        "The model is the offline `FunctionModel`, so only our code and the store's round trips count.",
        "",
        "| store | uninterrupted turn (ms) | paused + resumed (ms) | added (ms) | target | met |",
        "|---|---:|---:|---:|---:|:---:|",
    ]
    for kind, row in pr.items():
        target = TARGETS["pause_resume_added_ms"] if kind == "sqlite" else None
        met = "—" if target is None else ("yes" if row["added_ms"] < target else "no")
        limit = f"< {target:g} ms" if target else "—"
        lines.append(
            f"| {kind} | {row['uninterrupted_ms']:.3f} | {row['paused_resumed_ms']:.3f} | {row['added_ms']:.3f} | "
            f"{limit} | {met} |"
        )
    lines += [
        "",
        "## Replaying a background run to a reconnecting client",
        "",
        "A finished background run's events, replayed from the start by a `BackgroundRuns` of another replica "
        "(it did not run it: everything comes from the store), against the store's own `events()` calls for "
        "the same rows in pages of 1,000.",
        "",
        "| store | events | replay (s) | store reads alone (s) | target | met |",
        "|---|---:|---:|---:|---:|:---:|",
    ]
    for kind, row in results["workloads"]["replay"].items():
        met = "yes" if row["replay_s"] < TARGETS["replay_s"] else "no"
        lines.append(
            f"| {kind} | {row['events']:,} | {row['replay_s']:.3f} | {row['store_reads_s']:.3f} | "
            f"< {TARGETS['replay_s']:g} s | {met} |"
        )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; results to a temporary directory")
    parser.add_argument("--out", type=Path, help="results JSON (default benchmarks/results/hitl.json)")
    parser.add_argument("--docs", type=Path, help="where performance-hitl.md goes (default docs/)")
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    scratch = Path(tempfile.mkdtemp(prefix="hitl-bench-"))
    out = args.out or (scratch / "hitl.json" if args.smoke else ROOT / "benchmarks" / "results" / "hitl.json")
    docs = args.docs or (scratch if args.smoke else ROOT / "docs")
    workloads = asyncio.run(run(sizes, scratch))
    results = {
        "date": datetime.date.today().isoformat(),
        "smoke": args.smoke,
        "sizes": sizes,
        "targets": TARGETS,
        "workloads": workloads,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    (docs / "performance-hitl.md").write_text(render(results))
    print(render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The benchmark code keeps working: a smoke run checks every client's exact answers, never timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ["createagents-openai", "createagents-ollama", "openai-sdk", "ollama-sdk", "httpx-floor"]
WORKLOADS = {"stream", "concurrent", "first_token", "tools", "batch", "construct", "store_turn", "store_concurrent"}


def test_benchmark_smoke_run(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke", "--clients", *CLIENTS, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )  # where CI is set, a redis-server that cannot start fails the run (tests/stores/redis_server.py)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    results = json.loads(out.read_text())
    workloads = results["workloads"]
    assert set(workloads) == WORKLOADS
    assert set(workloads["stream"]) == set(CLIENTS)
    assert "httpx-floor" not in workloads["tools"]  # the floor streams only
    assert set(workloads["batch"]) == set(CLIENTS) - {"httpx-floor"}
    assert results["import"]["createagents"]["median_ms"] > 0

    construct = workloads["construct"]
    assert set(construct) == {"createagents-openai", "createagents-ollama", "openai-sdk", "ollama-sdk", "bare-python"}
    built = construct["createagents-openai"]["median"]
    assert built["openai_imported"] == 0 and built["aiohttp_imported"] == 0  # building an agent loads no SDK
    assert construct["openai-sdk"]["median"]["openai_imported"] == 1  # ...and the probe would see one
    assert 0 < built["peak_rss_mb"] < construct["openai-sdk"]["median"]["peak_rss_mb"]

    stores = {"memory", "sqlite"} | ({"redis"} if "redis" not in results["skipped"] else set())
    assert set(workloads["store_turn"]) == stores, results["skipped"]
    assert stores <= set(workloads["store_concurrent"])
    for workload in ("store_turn", "store_concurrent"):
        for store, entry in workloads[workload].items():
            assert entry["median"]["lost_turns"] == 0, (workload, store)
    assert workloads["store_turn"]["memory"]["median"]["overhead_p50_ms"] == 0.0
    assert results["failures"] == []


def test_the_report_renders_from_results(tmp_path: Path) -> None:
    from benchmarks.report import render

    def entry(ratio: dict[str, float]) -> dict[str, object]:
        median = {"cpu_per_token_us": 1.0, "wall_s": 1.0, "ttft_median_ms": 1.0, "wall_per_chat_ms": 1.0}
        return {"median": median, "ratio_to_openai-sdk": ratio, "ratio_to_ollama-sdk": {}}

    workloads = {
        w: {c: entry({"cpu_per_token_us": 0.1, "wall_s": 0.2}) for c in ("createagents-openai", "openai-sdk")}
        for w in ("stream", "concurrent", "first_token", "tools")
    }
    results = {
        "rounds": 1,
        "sizes": {"stream": 10, "concurrent": [2, 3, 2], "first_token": [2, 5], "tools": 2},
        "machine": {"cpu": "x", "cores": 2, "platform": "p", "python": "3.11", "versions": {"openai": "1"}},
        "import": {"createagents": {"median_ms": 50.0}, "openai": {"median_ms": 900.0}},
        "workloads": workloads,
    }
    page = render(results, "chart.png")  # results from before the new workloads still render
    assert (
        "| stream | createagents-openai | cpu_per_token_us | openai-sdk | 0.100 | — | ≤ 0.20 (goal 0.15) | yes |"
        in page
    )
    assert "](chart.png)" in page
    assert "## batch" not in page
    results["failures"] = ["round 2, concurrent, openai-agents: openai.APITimeoutError: Request timed out."]
    assert "- round 2, concurrent, openai-agents: openai.APITimeoutError" in render(results, "chart.png")

    # the new workloads, the previous run's column, absolute store targets, lost turns
    workloads["tools"]["createagents-openai"]["ratio_to_openai-sdk"] = {"wall_per_chat_ms": 0.9}
    workloads["concurrent"]["createagents-openai"]["ratio_to_openai-sdk"]["peak_rss_mb"] = 0.8
    workloads["construct"] = {
        "createagents-openai": {
            "median": {
                "wall_ms": 100.0,
                "peak_rss_mb": 20.0,
                "openai_imported": 0,
                "aiohttp_imported": 0,
                "processes": 3,
            },
            "rounds_done": 2,
            "ratio_to_openai-sdk": {"wall_ms": 0.1, "peak_rss_mb": 0.35},
        }
    }
    workloads["store_turn"] = {
        "memory": {"median": {"p50_ms": 1.0, "overhead_p50_ms": 0.0, "lost_turns": 0}, "ratio_to_memory": {}},
        "redis": {"median": {"p50_ms": 2.5, "overhead_p50_ms": 1.5, "lost_turns": 0}, "ratio_to_memory": {}},
        "sqlite": {"median": {"p50_ms": 2.0, "overhead_p50_ms": 1.0, "lost_turns": 0}, "ratio_to_memory": {}},
    }
    workloads["store_concurrent"] = {
        "sqlite": {"median": {"wall_s": 2.0, "lost_turns": 2}, "ratio_to_memory": {"wall_s": 2.0}},
    }
    results["sizes"].update(construct=3, store_turn=[10, 2], store_concurrent=[5, 2])
    results["previous"] = {
        "date": "2026-11-21",
        "workloads": {
            "tools": {"createagents-openai": {"median": {}, "ratio_to_openai-sdk": {"wall_per_chat_ms": 0.371}}}
        },
    }
    page = render(results, "chart.png")
    assert "| previous run (2026-11-21) |" in page
    assert "| tools | createagents-openai | wall_per_chat_ms | openai-sdk | 0.900 | 0.371 | ≤ 0.70 | no |" in page
    assert "| concurrent | createagents-openai | peak_rss_mb | openai-sdk | 0.800 | — | ≤ 0.75 | no |" in page
    assert "| construct | createagents-openai | peak_rss_mb | openai-sdk | 0.350 | — | ≤ 0.40 | yes |" in page
    assert "| none (of 6 processes) | — | neither `openai` nor `aiohttp` | yes |" in page
    assert "| store_turn | redis | overhead_p50_ms | memory (difference) | 1.50 ms | — | < 1 ms | no |" in page
    assert "| store_turn | sqlite | overhead_p50_ms | memory (difference) | 1.00 ms | — | < 2 ms | yes |" in page
    assert "| 2 (sqlite (store_concurrent): 2) | — | 0 | no |" in page
    assert "(was 0.371)" in page


def test_a_failed_peer_round_is_left_out_without_shifting_the_other_rounds() -> None:
    from benchmarks.run import _summarise

    summary = _summarise(
        "concurrent",
        {
            "openai-sdk": [{"wall_s": 10.0}, {"wall_s": 20.0}, {"wall_s": 40.0}],
            "ollama-sdk": [],
            "openai-agents": [{"wall_s": 10.0}, None, {"wall_s": 80.0}],
        },
    )
    peer = summary["openai-agents"]
    assert peer["median"] == {"wall_s": 45.0}
    assert peer["ratio_to_openai-sdk"] == {"wall_s": 1.5}  # rounds 1 and 3: 1.0 and 2.0


def test_counts_are_summed_over_rounds_and_stores_compare_with_memory() -> None:
    from benchmarks.run import _summarise

    summary = _summarise(
        "store_concurrent",
        {
            "memory": [{"wall_s": 1.0, "lost_turns": 0}, {"wall_s": 2.0, "lost_turns": 0}],
            "sqlite": [{"wall_s": 3.0, "lost_turns": 1}, {"wall_s": 4.0, "lost_turns": 2}],
        },
    )
    assert summary["sqlite"]["median"] == {"wall_s": 3.5, "lost_turns": 3}
    assert summary["sqlite"]["ratio_to_memory"] == {"wall_s": 2.5}  # rounds: 3.0 and 2.0; no ratio for counts


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc (Linux)")
def test_a_childs_peak_rss_is_its_own() -> None:
    """ru_maxrss of a child counts the parent's pages; the runner reads the child's own high-water mark."""
    from benchmarks.run import construct_once

    ballast = bytearray(150 * 1024 * 1024)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    assert construct_once("bare-python")["peak_rss_mb"] < 100  # ru_maxrss would say > 150
    del ballast

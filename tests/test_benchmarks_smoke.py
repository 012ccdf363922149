"""The benchmark code keeps working: a smoke run checks every client's exact answers, never timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ["createagents-openai", "createagents-ollama", "openai-sdk", "ollama-sdk", "httpx-floor"]


def test_benchmark_smoke_run(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke", "--clients", *CLIENTS, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    results = json.loads(out.read_text())
    assert set(results["workloads"]) == {"stream", "concurrent", "first_token", "tools"}
    assert set(results["workloads"]["stream"]) == set(CLIENTS)
    assert "httpx-floor" not in results["workloads"]["tools"]  # the floor streams only
    assert results["import"]["createagents"]["median_ms"] > 0


def test_the_report_renders_from_results(tmp_path: Path) -> None:
    from benchmarks.report import render

    workloads = {
        w: {
            c: {
                "median": {"cpu_per_token_us": 1.0, "wall_s": 1.0, "ttft_median_ms": 1.0, "wall_per_chat_ms": 1.0},
                "ratio_to_openai-sdk": {"cpu_per_token_us": 0.1, "wall_s": 0.2},
                "ratio_to_ollama-sdk": {},
            }
            for c in ("createagents-openai", "openai-sdk")
        }
        for w in ("stream", "concurrent", "first_token", "tools")
    }
    results = {
        "rounds": 1,
        "sizes": {"stream": 10, "concurrent": [2, 3, 2], "first_token": [2, 5], "tools": 2},
        "machine": {"cpu": "x", "cores": 2, "platform": "p", "python": "3.11", "versions": {"openai": "1"}},
        "import": {"createagents": {"median_ms": 50.0}, "openai": {"median_ms": 900.0}},
        "workloads": workloads,
    }
    page = render(results, "chart.png")
    assert "| stream | createagents-openai | cpu_per_token_us | openai-sdk | 0.100 | ≤ 0.20 (goal 0.15) | yes |" in page
    assert "![ratios to the raw openai SDK](chart.png)" in page
    results["failures"] = ["round 2, concurrent, openai-agents: openai.APITimeoutError: Request timed out."]
    assert "- round 2, concurrent, openai-agents: openai.APITimeoutError" in render(results, "chart.png")


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

"""The serving benchmark keeps working: a smoke run of our server checks every streamed answer, never timings.

LiteLLM's proxy is left out here (`--no-litellm`): it is not in the test extra.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_serving_benchmark_smoke_run(tmp_path: Path) -> None:
    out = tmp_path / "serving.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.serving",
            "--smoke",
            "--no-litellm",
            "--out",
            str(out),
            "--docs",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["smoke"] is True and results["failures"] == []
    assert set(results["raw"]) == {"createagents"} and "litellm" in results["skipped"]

    (ours,) = results["raw"]["createagents"]
    n = results["sizes"]["concurrent"][0]
    concurrent = ours["concurrent"]
    assert concurrent["n"] == n and concurrent["errors"] == 0, concurrent
    assert concurrent["max_open"] == n  # every stream was open at once
    assert concurrent["peak_rss_mb"] >= concurrent["idle_rss_mb"] > 0
    assert concurrent["server_processes"] == 1
    assert ours["concurrent_failed"] == []
    assert ours["long"]["errors"] == 0 and ours["long"]["server_cpu_s"] >= 0
    ttft = ours["ttft"]
    assert ttft["errors"] == 0 and ttft["server_median_ms"] > 0 and ttft["direct_median_ms"] > 0

    summary = results["summary"]
    assert summary["ratios"] == {}
    by_name = {t["target"].split(" ")[0]: t for t in summary["targets"]}
    assert by_name["server"]["met"] is None  # no LiteLLM numbers to compare with
    assert by_name["1,000"]["met"] is None  # smoke sizes: the 1,000-stream target is not judged

    page = (tmp_path / "performance-serving.md").read_text()
    assert "SMOKE" in page and "Not run: left out (--no-litellm)." in page
    assert "| metric | createagents |" in page


def test_the_page_renders_with_litellm_failures() -> None:
    from benchmarks.serving import render, summarise

    def entry(cpu: float, n: int, errors: int, failed: list[dict[str, object]]) -> dict[str, object]:
        return {
            "startup_s": 1.0,
            "fresh_rss_mb": 40.0,
            "concurrent": {"n": n, "errors": errors, "wall_s": 3.0, "max_open": n, "idle_rss_mb": 40.0,
                           "peak_rss_mb": 80.0, "kib_per_stream": 40.0, "cpu_per_token_us": cpu},
            "concurrent_failed": failed,
            "long": {"cpu_per_token_us": cpu, "errors": 0},
            "ttft": {"added_median_ms": 0.5 if cpu < 100 else 20.0, "server_median_ms": 1.0, "errors": 0},
        }  # fmt: skip

    failure = {"n": 1000, "errors": 37, "error_samples": ["ServerDisconnectedError: gone"], "max_open": 900}
    results: dict[str, object] = {
        "smoke": False,
        "date": "2026-12-01",
        "rounds": 1,
        "sizes": {"long": 20000, "concurrent": [1000, 100, 20], "ttft": [100, 5], "warmup": 20, "fallback": [500]},
        "machine": {"cpu": "x", "cores": 2, "memory_gb": 8, "platform": "p", "python": "3.11", "versions": {}},
        "how": {"litellm": "litellm --config c.yaml"},
        "skipped": {},
        "raw": {"createagents": [entry(10.0, 1000, 0, [])], "litellm": [entry(800.0, 500, 0, [failure])]},
        "failures": [],
    }
    results["summary"] = summarise(results)
    assert results["summary"]["ratios"]["long.cpu_per_token_us"] == 10.0 / 800.0
    assert results["summary"]["ratios"]["concurrent.kib_per_stream"] is None  # not the same N
    assert [t["met"] for t in results["summary"]["targets"]] == [True, True, True]
    page = render(results, "chart.png")
    assert "failed at N = 1,000" in page and "37 errors" in page and "ServerDisconnectedError" in page
    assert "](chart.png)" in page

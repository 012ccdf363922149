"""The human-in-the-loop benchmark keeps working: a smoke run checks every answer and the page it writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_hitl_benchmark_smoke_run(tmp_path: Path) -> None:
    out = tmp_path / "hitl.json"
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.hitl", "--smoke", "--out", str(out), "--docs", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["smoke"] is True
    assert set(results["workloads"]["pause_resume"]) == {"memory", "sqlite"}
    for row in results["workloads"]["replay"].values():
        assert row["events"] >= 400 and row["replay_s"] > 0
    page = (tmp_path / "performance-hitl.md").read_text()
    assert "paused + resumed" in page and "Replaying a background run" in page

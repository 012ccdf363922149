"""The Responses API benchmark keeps working: it measures a working path, and writes numbers and its page.

Timings are not asserted (they are noisy): the ratio to the raw SDK belongs on the page, not in a test.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.responses import BASELINE, CLIENTS, OURS, PEERS, collect, expected_tokens, rendered, start_server

ROOT = Path(__file__).resolve().parent.parent


def test_the_served_stream_is_the_documented_event_sequence() -> None:
    body = rendered(3)
    names = [m.decode() for m in re.findall(rb"^event: (\S+)$", body, re.M)]
    assert names == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 3,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert body.endswith(b"0\r\n\r\n")  # the chunked body ends


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    server, address = start_server(300)
    try:
        yield address
    finally:
        server.kill()
        server.wait()


async def test_our_adapter_streams_exactly_the_served_tokens(url: str) -> None:
    stream, close = await CLIENTS[OURS](url)
    try:
        assert await collect(stream, 300) == expected_tokens(300)  # token by token, not just the joined text
        assert await collect(stream, 5) == expected_tokens(5)  # and again, on the kept connection
    finally:
        await close()


def test_responses_benchmark_smoke_run(tmp_path: Path) -> None:
    out = tmp_path / "responses.json"
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.responses", "--smoke", "--out", str(out), "--docs", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["smoke"] is True and results["failures"] == []
    installed = {name for name, module in PEERS.items() if importlib.util.find_spec(module) is not None}
    assert set(results["contenders"]) == {BASELINE, OURS} | installed
    tokens = results["sizes"]["tokens"]
    for entry in results["contenders"].values():
        assert entry["rounds_done"] == 1
        assert entry["median"]["cpu_per_token_us"] > 0
    assert results["contenders"][BASELINE]["ratio_to_openai_sdk"] == 1.0
    assert results["ratio"] is not None and results["ratio"] > 0  # a number, whatever it is on this machine
    assert f"/ {BASELINE}:" in run.stdout and ("PASS" in run.stdout or "FAIL" in run.stdout)
    page = (tmp_path / "performance-responses.md").read_text()
    assert f"| stream (Responses API) | {OURS} | cpu_per_token_us | {BASELINE} |" in page
    assert f"| {OURS} |" in page and f"{tokens:,}-token" in page

"""The structured-output benchmark keeps working: it measures a working path, and writes numbers and its page.

Timings are not asserted (they are noisy): the ratios belong on the page, not in a test.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.structured import (
    BASELINE,
    CLIENTS,
    OURS,
    OURS_PARTIAL,
    PEERS,
    Trip,
    deltas,
    expected,
    prompt,
    refusal,
    rendered,
)

ROOT = Path(__file__).resolve().parent.parent


def test_the_served_stream_is_the_answer_in_small_deltas() -> None:
    body = rendered(3)
    text = "".join(deltas(3))
    assert Trip.model_validate_json(text) == expected(3)
    assert body.count(b'"content":') == 1 + len(deltas(3))  # the role chunk, then one chunk per delta
    assert b"data: [DONE]" in body and body.endswith(b"0\r\n\r\n")


def test_the_server_answers_only_streamed_json_schema_requests() -> None:
    schema = {"type": "json_schema", "json_schema": {"name": "Trip", "schema": {"type": "object"}}}
    assert refusal(json.dumps({"stream": True, "response_format": schema}).encode()) is None
    assert refusal(json.dumps({"stream": True}).encode()) is not None  # no schema: not the path measured
    assert refusal(json.dumps({"response_format": schema}).encode()) is not None  # not streamed


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    from benchmarks.structured import start_server

    server, address = start_server(6)
    try:
        yield address
    finally:
        server.kill()
        server.wait()


@pytest.mark.parametrize("name", [OURS, OURS_PARTIAL])
async def test_our_answer_is_the_expected_object(url: str, name: str) -> None:
    ask, close = await CLIENTS[name](url)
    try:
        for stops in (6, 2):  # and again, on the kept connection
            answer = await ask(prompt(stops))
            assert type(answer) is Trip and answer == expected(stops)
    finally:
        await close()


def test_structured_benchmark_smoke_run(tmp_path: Path) -> None:
    out = tmp_path / "structured.json"
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.structured", "--smoke", "--out", str(out), "--docs", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["smoke"] is True and results["failures"] == []
    installed = {name for name, module in PEERS.items() if importlib.util.find_spec(module) is not None}
    assert set(results["contenders"]) == {BASELINE, "openai-sdk-stream", OURS, OURS_PARTIAL} | installed
    for entry in results["contenders"].values():
        assert entry["rounds_done"] == 1
        assert entry["median"]["cpu_per_answer_ms"] > 0 and entry["median"]["cpu_per_delta_us"] > 0
    assert results["contenders"][BASELINE]["ratio_to_openai-sdk"] == 1.0
    ours = results["contenders"][OURS]["ratio_to_openai-sdk"]
    assert ours is not None and ours > 0  # a number, whatever it is on this machine
    assert f"{OURS} / {BASELINE}:" in run.stdout
    page = (tmp_path / "performance-structured.md").read_text()
    assert f"| structured | {OURS} | cpu_per_answer_ms | {BASELINE} |" in page
    assert f"| {OURS_PARTIAL} |" in page and f"{results['sizes']['stops']} `Stop`s" in page
    assert "```python" not in page  # docs/ executes python blocks

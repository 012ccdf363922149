"""Metric records out: JSON (and back), and Prometheus text exposition via `prometheus_client`."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..application.metrics import LATENCY_BUCKETS, MetricsRecorder, Totals, token_type
from ..domain.metrics import MetricsRecord, ModelCallRecord, ToolCallRecord


def to_json(recorder: MetricsRecorder, path: str | Path | None = None) -> str:
    """The summary and every kept record as JSON; written to `path` when given."""
    text = json.dumps(
        {"summary": recorder.summary(), "records": [asdict(r) for r in recorder.records]},
        indent=2,
        allow_nan=False,
    )
    if path is not None:
        write_atomically(Path(path), text)
    return text


def records_from_json(text: str) -> list[MetricsRecord]:
    """Records back from `to_json` output."""
    kinds: dict[str, Any] = {"model_call": ModelCallRecord, "tool_call": ToolCallRecord}
    return [kinds[r["kind"]](**r) for r in json.loads(text)["records"]]


def to_prometheus(recorder: MetricsRecorder, path: str | Path | None = None) -> str:
    """Prometheus text exposition of the exact running totals; written to `path` when given."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

    class Collector:
        def collect(self) -> Iterable[Any]:
            calls = CounterMetricFamily(
                "createagents_model_calls", "Model calls.", labels=["provider", "model", "status"]
            )
            tokens = CounterMetricFamily(
                "createagents_tokens", "Tokens used, by type.", labels=["provider", "model", "type"]
            )
            latency = HistogramMetricFamily(
                "createagents_model_call_latency_seconds", "Model call latency.", labels=["provider", "model", "status"]
            )
            token_sums: dict[tuple[str, str, str], int] = {}
            for (provider, model, status), t in sorted(recorder.model_totals.items()):
                calls.add_metric([provider, model, status], t.count)
                latency.add_metric([provider, model, status], _buckets(t), sum_value=t.seconds)
                for name, count in t.tokens.items():  # summed over ok and error calls
                    key = (provider, model, token_type(name))
                    token_sums[key] = token_sums.get(key, 0) + count
            for labels, value in token_sums.items():
                tokens.add_metric(list(labels), value)
            tools = CounterMetricFamily("createagents_tool_calls", "Tool calls.", labels=["tool", "status"])
            duration = HistogramMetricFamily(
                "createagents_tool_call_duration_seconds", "Tool call duration.", labels=["tool", "status"]
            )
            for (tool, status), t in sorted(recorder.tool_totals.items()):
                tools.add_metric([tool, status], t.count)
                duration.add_metric([tool, status], _buckets(t), sum_value=t.seconds)
            threads = GaugeMetricFamily(
                "createagents_tool_threads",
                "Threads of the agent's sync-tool pool: size, running a call, stuck past a tool timeout.",
                labels=["state"],
            )
            for state, value in recorder.thread_gauges().items():
                threads.add_metric([state], value)
            output = CounterMetricFamily(
                "createagents_output_validation_failures",
                "Answers that did not fit the output type: retried, or failed the run.",
                labels=["outcome"],
            )
            for outcome, value in sorted(recorder.output_validation.items()):
                output.add_metric([outcome], value)
            return [calls, tokens, latency, tools, duration, threads, output]

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    if path is not None:
        write_atomically(Path(path), text)
    return text


def write_atomically(path: Path, text: str) -> None:
    """Write a temporary file beside `path`, then rename it over `path`.

    A reader (a Prometheus textfile collector) sees the old file or the new
    one, never half of one, as with `prometheus_client.write_to_textfile`.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _buckets(t: Totals) -> list[tuple[str, float]]:
    return [(repr(b), float(c)) for b, c in zip(LATENCY_BUCKETS, t.bucket_counts, strict=True)] + [
        ("+Inf", float(t.count))
    ]

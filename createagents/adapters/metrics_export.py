"""Metric records out: JSON (and back), and Prometheus text exposition via `prometheus_client`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..application.metrics import LATENCY_BUCKETS, MetricsRecorder, Totals
from ..domain.metrics import MetricsRecord, ModelCallRecord, ToolCallRecord


def to_json(recorder: MetricsRecorder, path: str | Path | None = None) -> str:
    """The summary and every kept record as JSON; written to `path` when given."""
    text = json.dumps(
        {"summary": recorder.summary(), "records": [asdict(r) for r in recorder.records]},
        indent=2,
        allow_nan=False,
    )
    if path is not None:
        Path(path).write_text(text)
    return text


def records_from_json(text: str) -> list[MetricsRecord]:
    """Records back from `to_json` output."""
    kinds: dict[str, Any] = {"model_call": ModelCallRecord, "tool_call": ToolCallRecord}
    return [kinds[r["kind"]](**r) for r in json.loads(text)["records"]]


def to_prometheus(recorder: MetricsRecorder, path: str | Path | None = None) -> str:
    """Prometheus text exposition of the exact running totals; written to `path` when given."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

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
                for kind in ("prompt", "completion", "cached", "reasoning"):
                    key = (provider, model, kind)
                    token_sums[key] = token_sums.get(key, 0) + getattr(t, f"{kind}_tokens")
            for labels, value in token_sums.items():
                tokens.add_metric(list(labels), value)
            tools = CounterMetricFamily("createagents_tool_calls", "Tool calls.", labels=["tool", "status"])
            duration = HistogramMetricFamily(
                "createagents_tool_call_duration_seconds", "Tool call duration.", labels=["tool", "status"]
            )
            for (tool, status), t in sorted(recorder.tool_totals.items()):
                tools.add_metric([tool, status], t.count)
                duration.add_metric([tool, status], _buckets(t), sum_value=t.seconds)
            return [calls, tokens, latency, tools, duration]

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    if path is not None:
        Path(path).write_text(text)
    return text


def _buckets(t: Totals) -> list[tuple[str, float]]:
    return [(repr(b), float(c)) for b, c in zip(LATENCY_BUCKETS, t.bucket_counts, strict=True)] + [
        ("+Inf", float(t.count))
    ]

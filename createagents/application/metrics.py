"""Metrics: run events -> records, a bounded in-memory recorder, and its summary.

Recorded in one place for every provider: the loop reports each model call
(`ModelCallFinished`, also on failure) and each tool call, and this observer
turns them into records. Running totals are kept apart from the bounded
window of records, so counters stay exact after old records are dropped.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..domain.errors import ConfigurationError
from ..domain.events import ModelCallFinished, OutputValidationFailed, RunEvent, ToolCallFinished
from ..domain.messages import TOKEN_FIELDS, USAGE_FIELDS
from ..domain.metrics import MetricsRecord, ModelCallRecord, ToolCallRecord
from .ports import MetricsSink, RunObserver
from .tool_threads import ToolThreads

_log = logging.getLogger("createagents")

Sink = MetricsSink | Callable[[MetricsRecord], None]


def model_record(event: ModelCallFinished) -> ModelCallRecord:
    u = event.usage
    return ModelCallRecord(
        timestamp=time.time(),
        provider=event.provider,
        model=event.model,
        conversation_id=event.conversation_id,
        latency=event.latency,
        time_to_first_token=event.time_to_first_token,
        total_tokens=u.total_tokens,
        tool_calls=event.tool_calls,
        finish_reason=event.finish_reason,
        success=event.error is None,
        error_type=event.error,
        **{name: getattr(u, name) for name in USAGE_FIELDS},
    )


def tool_record(event: ToolCallFinished) -> ToolCallRecord:
    return ToolCallRecord(
        timestamp=time.time(),
        tool_name=event.call.name,
        duration=event.duration,
        success=event.error is None,
        error_type=event.error,
    )


@dataclass(slots=True)
class Totals:
    """Exact running totals for one label set, never trimmed."""

    count: int = 0
    errors: int = 0
    seconds: float = 0.0
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOKEN_FIELDS, 0))  # by `Usage` field
    bucket_counts: list[int] = field(default_factory=list)


LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class MetricsRecorder(RunObserver):
    """The default recorder of an agent: the last `limit` records, exact totals, and forwarding to sinks."""

    def __init__(
        self, *, limit: int = 10_000, sinks: Iterable[Sink] = (), tool_threads: ToolThreads | None = None
    ) -> None:
        self.tool_threads = tool_threads
        self.records: deque[MetricsRecord] = deque(maxlen=limit)
        self.model_totals: dict[tuple[str, str, str], Totals] = {}  # (provider, model, status)
        self.tool_totals: dict[tuple[str, str], Totals] = {}  # (tool, status)
        self.output_validation = {"retried": 0, "failed": 0}  # answers that did not fit the output type
        self._sinks = [s.record if isinstance(s, MetricsSink) else s for s in sinks]
        if not all(callable(s) for s in self._sinks):
            raise ConfigurationError("metrics_sinks must be MetricsSink objects or callables taking a record")

    def observe(self, event: RunEvent) -> None:
        record: MetricsRecord
        if type(event) is ModelCallFinished:
            record = model_record(event)
        elif type(event) is ToolCallFinished:
            record = tool_record(event)
        elif type(event) is OutputValidationFailed:
            self.output_validation["retried" if event.retrying else "failed"] += 1
            return
        else:
            return
        self.add(record)

    def add(self, record: MetricsRecord) -> None:
        self.records.append(record)
        status = "ok" if record.success else "error"
        if isinstance(record, ModelCallRecord):
            t = self.model_totals.get((record.provider, record.model, status))
            if t is None:
                t = self.model_totals[(record.provider, record.model, status)] = _totals()
            _count(t, record.latency, record.success)
            tokens = t.tokens
            for name in TOKEN_FIELDS:
                tokens[name] += getattr(record, name)
        else:
            t = self.tool_totals.get((record.tool_name, status))
            if t is None:
                t = self.tool_totals[(record.tool_name, status)] = _totals()
            _count(t, record.duration, record.success)
        for sink in self._sinks:
            try:
                sink(record)
            except Exception:  # a user's sink must not break the run or the other sinks
                _log.exception("metrics sink %r failed", sink)

    def summary(self) -> dict[str, Any]:
        """Counts and error rates over all calls; percentiles over the records still kept."""
        model = [r for r in self.records if isinstance(r, ModelCallRecord)]
        tools = [r for r in self.records if isinstance(r, ToolCallRecord)]
        calls = sum(t.count for t in self.model_totals.values())
        errors = sum(t.errors for t in self.model_totals.values())
        tool_calls = sum(t.count for t in self.tool_totals.values())
        tool_errors = sum(t.errors for t in self.tool_totals.values())
        tokens = {token_type(name): sum(t.tokens[name] for t in self.model_totals.values()) for name in TOKEN_FIELDS}
        tokens["total"] = tokens["prompt"] + tokens["completion"]
        return {
            "model_calls": calls,
            "model_errors": errors,
            "error_rate": errors / calls if calls else 0.0,
            "latency": percentiles([r.latency for r in model]),
            "time_to_first_token": percentiles(
                [r.time_to_first_token for r in model if r.time_to_first_token is not None]
            ),
            "tokens": tokens,
            "tool_calls": tool_calls,
            "tool_errors": tool_errors,
            "tool_error_rate": tool_errors / tool_calls if tool_calls else 0.0,
            "tool_duration": percentiles([r.duration for r in tools]),
            "output_validation": dict(self.output_validation),
            "records_kept": len(self.records),
            "tool_threads": self.thread_gauges(),
        }

    def thread_gauges(self) -> dict[str, int]:
        """The sync-tool pool now: its size, threads running a call, and those stuck past a timeout."""
        pool = self.tool_threads
        if pool is None:
            return {"size": 0, "busy": 0, "stuck": 0}
        return {"size": pool.size, "busy": pool.busy, "stuck": pool.stuck}


def token_type(field_name: str) -> str:
    """The short name of a token field in summaries and exports: "prompt" for `prompt_tokens`."""
    return field_name.removesuffix("_tokens")


def _totals() -> Totals:
    return Totals(bucket_counts=[0] * len(LATENCY_BUCKETS))


def _count(t: Totals, seconds: float, success: bool) -> None:
    t.count += 1
    t.errors += not success
    t.seconds += seconds
    for i, bound in enumerate(LATENCY_BUCKETS):
        if seconds <= bound:
            t.bucket_counts[i] += 1


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return math.nan
    k = (len(sorted_values) - 1) * p
    low = math.floor(k)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (k - low)


def percentiles(values: Iterable[float]) -> dict[str, float | None]:
    data = sorted(values)
    if not data:
        return {"p50": None, "p95": None, "p99": None, "mean": None, "count": 0}
    return {
        "p50": percentile(data, 0.50),
        "p95": percentile(data, 0.95),
        "p99": percentile(data, 0.99),
        "mean": sum(data) / len(data),
        "count": len(data),
    }

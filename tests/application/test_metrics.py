"""Metrics recorded around every model and tool call, summaries, and the bound."""

from __future__ import annotations

import math

import pytest

from createagents import CreateAgent, ModelCallRecord, ProviderUnavailableError, ToolCallRecord
from createagents.application.metrics import MetricsRecorder, model_record, percentile, percentiles, token_type
from createagents.domain.events import ModelCallFinished
from createagents.domain.messages import TOKEN_FIELDS, USAGE_FIELDS, Usage
from createagents.testing import FunctionModel


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def broken() -> str:
    """Always fails."""
    raise RuntimeError("nope")


async def test_a_streamed_run_with_tools_records_each_model_and_tool_call() -> None:
    agent = CreateAgent(provider="test", tools=[add, broken])
    await agent.chat("hi")
    records = agent.metrics()
    model_calls = [r for r in records if isinstance(r, ModelCallRecord)]
    tool_calls = [r for r in records if isinstance(r, ToolCallRecord)]
    assert len(model_calls) == 2 and len(tool_calls) == 2
    first = model_calls[0]
    assert (first.provider, first.model, first.conversation_id) == ("test", "test", "default")
    assert first.tool_calls == 2 and first.success and first.error_type is None
    assert first.time_to_first_token is not None and 0 <= first.time_to_first_token <= first.latency
    assert first.total_tokens == first.prompt_tokens + first.completion_tokens > 0
    assert {(r.tool_name, r.success, r.error_type) for r in tool_calls} == {
        ("add", True, None),
        ("broken", False, "RuntimeError"),
    }
    summary = agent.metrics_summary()
    assert summary["model_calls"] == 2 and summary["tool_calls"] == 2 and summary["tool_errors"] == 1
    assert summary["tokens"]["total"] == sum(r.total_tokens for r in model_calls)
    assert summary["latency"]["count"] == 2


async def test_failed_calls_are_recorded_with_their_error_type() -> None:
    def down(messages: object, tools: object) -> str:
        raise ProviderUnavailableError("down")

    agent = CreateAgent(provider=FunctionModel(down))
    for _ in range(3):
        with pytest.raises(ProviderUnavailableError):
            await agent.chat("x")
    await CreateAgent(provider="test").chat("unrelated")  # another agent's records stay apart
    records = agent.metrics()
    assert [(r.success, r.error_type) for r in records] == [(False, "ProviderUnavailableError")] * 3
    assert agent.metrics_summary()["error_rate"] == 1.0


def test_percentiles_on_known_data() -> None:
    data = [float(x) for x in range(1, 101)]
    p = percentiles(reversed(data))
    assert p["p50"] == pytest.approx(50.5) and p["p95"] == pytest.approx(95.05) and p["p99"] == pytest.approx(99.01)
    assert p["mean"] == pytest.approx(50.5) and p["count"] == 100
    assert percentile([3.0], 0.99) == 3.0 and math.isnan(percentile([], 0.5))
    assert percentiles([])["p50"] is None


def test_the_bound_holds_under_100000_calls_and_totals_stay_exact() -> None:
    recorder = MetricsRecorder(limit=1000)
    for i in range(100_000):
        recorder.add(
            ModelCallRecord(
                timestamp=0.0,
                provider="p",
                model="m",
                conversation_id="c",
                latency=0.001 * (i % 100),
                time_to_first_token=None,
                prompt_tokens=2,
                completion_tokens=1,
                total_tokens=3,
                success=i % 10 != 0,
                error_type=None if i % 10 else "ProviderUnavailableError",
            )
        )
    assert len(recorder.records) == 1000
    assert recorder.records[0].latency == pytest.approx(0.001 * (99_000 % 100))  # the oldest were dropped
    summary = recorder.summary()
    assert summary["model_calls"] == 100_000 and summary["model_errors"] == 10_000
    assert summary["tokens"] == {
        "prompt": 200_000,
        "completion": 100_000,
        "total": 300_000,
        "cached": 0,
        "reasoning": 0,
    }
    assert summary["records_kept"] == 1000


def test_custom_sinks_callbacks_and_objects_receive_every_record() -> None:
    from createagents import MetricsSink

    got: list[object] = []

    class Sink(MetricsSink):
        def record(self, record: object) -> None:
            got.append(("object", type(record).__name__))

    def failing(record: object) -> None:
        raise ValueError("a buggy sink")

    agent = CreateAgent(provider="test", tools=[add], metrics_sinks=[failing, got.append, Sink()])
    agent.chat_sync("x")
    agent.close()
    assert [type(r).__name__ for r in got if not isinstance(r, tuple)] == [
        "ModelCallRecord",
        "ToolCallRecord",
        "ModelCallRecord",
    ]
    assert ("object", "ToolCallRecord") in got


def test_bad_metrics_arguments() -> None:
    from createagents import ConfigurationError

    with pytest.raises(ConfigurationError, match="metrics_sinks"):
        CreateAgent(provider="test", metrics_sinks=[42])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="metrics_limit"):
        CreateAgent(provider="test", metrics_limit=0)


def test_a_record_and_the_totals_take_every_usage_field() -> None:
    usage = Usage(**{name: i + 1 for i, name in enumerate(USAGE_FIELDS)})  # type: ignore[arg-type]
    event = ModelCallFinished(
        provider="p",
        model="m",
        conversation_id="c",
        latency=0.1,
        time_to_first_token=None,
        usage=usage,
        tool_calls=0,
        finish_reason="stop",
    )
    record = model_record(event)
    assert {name: getattr(record, name) for name in USAGE_FIELDS} == {
        name: getattr(usage, name) for name in USAGE_FIELDS
    }
    assert record.total_tokens == usage.total_tokens
    recorder = MetricsRecorder()
    recorder.observe(event)
    recorder.observe(event)
    tokens = recorder.summary()["tokens"]
    assert set(tokens) == {token_type(name) for name in TOKEN_FIELDS} | {"total"}
    assert tokens == {"prompt": 2, "completion": 4, "cached": 6, "reasoning": 8, "total": 6}


def test_a_recorder_refuses_a_sink_it_cannot_call() -> None:
    from createagents import ConfigurationError

    with pytest.raises(ConfigurationError, match="metrics_sinks must be MetricsSink objects or callables"):
        MetricsRecorder(sinks=[42])  # type: ignore[list-item]

"""Exports (JSON, Prometheus, OpenTelemetry), logging, and secrets, over the test model and over HTTP."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import createagents
from createagents import AuthenticationError, CreateAgent, ModelCallRecord
from createagents.adapters.metrics_export import to_prometheus
from createagents.metrics import OpenTelemetrySink, records_from_json
from tests.fakes.openai_server import FakeOpenAIServer, Script

from .conftest import SECRET


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


async def test_records_over_http_match_the_served_usage(openai_server: FakeOpenAIServer) -> None:
    usage = {
        "prompt_tokens": 40,
        "completion_tokens": 9,
        "total_tokens": 49,
        "prompt_tokens_details": {"cached_tokens": 32},
    }
    openai_server.add(Script(text=["a", "b", "c"], usage=usage, chunk_delay=0.01))
    async with CreateAgent(
        provider="openai", model="gpt-test", base_url=openai_server.v1, api_key=SECRET, max_retries=0
    ) as agent:
        await agent.chat("x")
        (record,) = agent.metrics()
    assert isinstance(record, ModelCallRecord) and record.provider == "openai"
    assert (record.prompt_tokens, record.completion_tokens, record.total_tokens, record.cached_tokens) == (
        40,
        9,
        49,
        32,
    )
    assert record.time_to_first_token is not None and record.time_to_first_token < record.latency
    assert record.finish_reason == "stop"


async def test_json_round_trip(tmp_path: Path) -> None:
    agent = CreateAgent(provider="test", tools=[add])
    await agent.chat("x")
    path = tmp_path / "metrics.json"
    text = agent.export_metrics_json(path)
    assert path.read_text() == text
    assert records_from_json(text) == agent.metrics()
    assert json.loads(text)["summary"]["model_calls"] == 2


async def test_prometheus_output_parses_back(tmp_path: Path) -> None:
    agent = CreateAgent(provider="test", tools=[add])
    await agent.chat("x")
    await agent.chat("y")
    text = agent.export_metrics_prometheus(tmp_path / "metrics.prom")
    assert (tmp_path / "metrics.prom").read_text() == text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    calls = {
        tuple(sorted(s.labels.items())): s.value
        for s in families["createagents_model_calls"].samples
        if s.name.endswith("_total")
    }
    assert calls == {(("model", "test"), ("provider", "test"), ("status", "ok")): 4.0}
    tokens = {s.labels["type"]: s.value for s in families["createagents_tokens"].samples if s.name.endswith("_total")}
    assert tokens["prompt"] + tokens["completion"] == agent.metrics_summary()["tokens"]["total"]
    latency = families["createagents_model_call_latency_seconds"]
    count = next(s.value for s in latency.samples if s.name.endswith("_count"))
    inf = next(s.value for s in latency.samples if s.labels.get("le") == "+Inf")
    assert count == inf == 4.0
    tool_calls = next(s for s in families["createagents_tool_calls"].samples if s.name.endswith("_total"))
    assert tool_calls.labels == {"tool": "add", "status": "ok"} and tool_calls.value == 2.0


def test_prometheus_counts_every_token_field_by_type() -> None:
    from createagents.application.metrics import MetricsRecorder, token_type
    from createagents.domain.messages import TOKEN_FIELDS

    recorder = MetricsRecorder()
    for success, cached in ((True, 32), (False, 0)):
        recorder.add(
            ModelCallRecord(
                timestamp=0.0,
                provider="p",
                model="m",
                conversation_id="c",
                latency=0.1,
                time_to_first_token=None,
                prompt_tokens=40,
                completion_tokens=9,
                total_tokens=49,
                cached_tokens=cached,
                reasoning_tokens=5,
                success=success,
            )
        )
    families = {f.name: f for f in text_string_to_metric_families(to_prometheus(recorder))}
    tokens = {s.labels["type"]: s.value for s in families["createagents_tokens"].samples if s.name.endswith("_total")}
    assert tokens == {"prompt": 80.0, "completion": 18.0, "cached": 32.0, "reasoning": 10.0}
    assert set(tokens) == {token_type(name) for name in TOKEN_FIELDS}


def test_the_opentelemetry_token_types_name_usage_fields() -> None:
    from createagents.adapters.otel import _TOKENS
    from createagents.domain.messages import TOKEN_FIELDS

    assert {name for name, _, _ in _TOKENS} <= set(TOKEN_FIELDS)


async def test_opentelemetry_spans_and_metrics_follow_the_genai_conventions() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    sink = OpenTelemetrySink(tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader]))
    agent = CreateAgent(provider="test", tools=[add], metrics_sinks=[sink])
    await agent.chat("x")
    names = [s.name for s in spans.get_finished_spans()]
    assert names == ["chat test", "execute_tool add", "chat test"]
    chat = spans.get_finished_spans()[0]
    assert chat.attributes is not None
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.provider.name"] == "test" and chat.attributes["gen_ai.request.model"] == "test"
    assert chat.attributes["gen_ai.usage.input_tokens"] > 0 and chat.attributes["gen_ai.usage.output_tokens"] > 0
    assert chat.end_time is not None and chat.start_time is not None and chat.end_time >= chat.start_time
    data = reader.get_metrics_data()
    assert data is not None
    metric_names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert {"gen_ai.client.token.usage", "gen_ai.client.operation.duration"} <= metric_names


def test_nothing_is_printed_by_default() -> None:
    code = (
        "import createagents, asyncio\n"
        "from createagents.testing import FunctionModel\n"
        "from createagents import ProviderUnavailableError\n"
        "def down(m, t): raise ProviderUnavailableError('down')\n"
        "a = createagents.CreateAgent(provider='test', tools=['currentdate'])\n"
        "print(asyncio.run(a.chat('x'))[:5])\n"
        "b = createagents.CreateAgent(provider=FunctionModel(down), observers=[lambda e: 1/0])\n"
        "try: asyncio.run(b.chat('x'))\n"
        "except ProviderUnavailableError: pass\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "Tool \n" and out.stderr == ""


async def test_configure_logging_logs_one_line_per_call_with_the_metric_fields() -> None:
    stream = io.StringIO()
    createagents.configure_logging(level="INFO", json=True, stream=stream)
    try:
        await CreateAgent(provider="test", tools=[add]).chat("x")
    finally:
        createagents.configure_logging(level="WARNING", stream=io.StringIO())
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["model_call", "tool_call", "model_call"]
    assert {"provider", "model", "latency", "time_to_first_token", "prompt_tokens", "success"} <= set(lines[0])
    assert lines[1]["tool_name"] == "add" and "time" in lines[1]
    with pytest.raises(createagents.ConfigurationError, match="log level"):
        createagents.configure_logging(level="LOUD")


async def test_a_secret_api_key_never_appears_in_logs_or_metrics(
    openai_server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the SDK's included
    stream = io.StringIO()
    createagents.configure_logging(level="DEBUG", stream=stream)
    try:
        openai_server.add(Script(status=401, error={"message": f"Incorrect API key provided: {SECRET}"}))
        openai_server.add(Script(text=["fine"]))
        async with CreateAgent(
            provider="openai", model="gpt-test", base_url=openai_server.v1, api_key=SECRET, max_retries=0
        ) as agent:
            with pytest.raises(AuthenticationError) as e:
                await agent.chat("x")
            await agent.chat("y")
            exported = agent.export_metrics_json() + agent.export_metrics_prometheus()
    finally:
        createagents.configure_logging(level="WARNING", stream=io.StringIO())
    assert "model_call" in stream.getvalue()
    for text in (caplog.text, stream.getvalue(), exported, str(e.value)):
        assert SECRET not in text


async def test_secret_tool_arguments_never_reach_logs_metrics_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    from createagents import ToolCallFinished, tool
    from createagents.testing import tool_call

    @tool(secret_args=["password"])
    def login(user: str, password: str) -> str:
        """Log in."""
        raise PermissionError(f"wrong password {password} for {user}")

    def script(messages: list[object], tools: object) -> object:
        return [tool_call("login", user="ana", password="hunter2")] if len(messages) == 1 else "ok"

    caplog.set_level(logging.DEBUG)
    stream = io.StringIO()
    createagents.configure_logging(level="DEBUG", json=True, stream=stream)
    try:
        from createagents.testing import FunctionModel

        agent = CreateAgent(provider=FunctionModel(script), tools=[login])
        events = [e async for e in agent.chat("x").events()]
    finally:
        createagents.configure_logging(level="WARNING", stream=io.StringIO())
    finished = next(e for e in events if isinstance(e, ToolCallFinished))
    assert finished.result == "Error: tool 'login' failed: PermissionError: wrong password *** for ana"
    assert "tool_call" in stream.getvalue()
    for text in (caplog.text, stream.getvalue(), agent.export_metrics_json()):
        assert "hunter2" not in text

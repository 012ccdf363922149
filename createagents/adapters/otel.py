"""OpenTelemetry: a span and GenAI metrics per model call and per tool call.

Follows the OpenTelemetry GenAI semantic conventions (`gen_ai.*`). Needs the
optional `opentelemetry-api` package (`pip install createagents[otel]`);
without an SDK configured, the API's no-op providers make it free.
"""

from __future__ import annotations

from typing import Any

from ..application.ports import MetricsSink
from ..domain.errors import ConfigurationError
from ..domain.metrics import MetricsRecord, ModelCallRecord

_PROVIDER_NAMES = {"azure": "azure.ai.openai"}  # our names -> the conventions' well-known values
_TOKENS = (  # the `Usage` fields the conventions name: (field, gen_ai.token.type, span attribute)
    ("prompt_tokens", "input", "gen_ai.usage.input_tokens"),
    ("completion_tokens", "output", "gen_ai.usage.output_tokens"),
)
_TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304]
_SECONDS_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]


class OpenTelemetrySink(MetricsSink):
    """Emits spans through `tracer_provider` and metrics through `meter_provider` (the globals by default)."""

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        try:
            from opentelemetry import metrics, trace
        except ImportError as e:
            raise ConfigurationError(
                "OpenTelemetrySink needs opentelemetry-api: pip install 'createagents[otel]'"
            ) from e
        self._trace = trace
        self._tracer = trace.get_tracer("createagents", tracer_provider=tracer_provider)
        meter = metrics.get_meter("createagents", meter_provider=meter_provider)
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self._duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=_SECONDS_BUCKETS,
        )
        self._ttfc = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to the first streamed chunk.",
            explicit_bucket_boundaries_advisory=_SECONDS_BUCKETS,
        )

    def record(self, record: MetricsRecord) -> None:
        end_ns = int(record.timestamp * 1e9)
        if isinstance(record, ModelCallRecord):
            self._model_call(record, end_ns)
            return
        attributes: dict[str, Any] = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": record.tool_name}
        if record.error_type:
            attributes["error.type"] = record.error_type
        self._span(f"execute_tool {record.tool_name}", attributes, end_ns, record.duration, record.error_type)
        self._duration.record(record.duration, attributes)

    def _model_call(self, r: ModelCallRecord, end_ns: int) -> None:
        common: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": _PROVIDER_NAMES.get(r.provider, r.provider),
            "gen_ai.request.model": r.model,
        }
        if r.error_type:
            common["error.type"] = r.error_type
        span_attributes = {
            **common,
            "gen_ai.conversation.id": r.conversation_id,
            **{attribute: getattr(r, name) for name, _, attribute in _TOKENS},
        }
        if r.finish_reason:
            span_attributes["gen_ai.response.finish_reasons"] = [r.finish_reason]
        self._span(f"chat {r.model}", span_attributes, end_ns, r.latency, r.error_type)
        self._duration.record(r.latency, common)
        if r.time_to_first_token is not None:
            self._ttfc.record(r.time_to_first_token, common)
        if r.success:
            for name, token_type, _ in _TOKENS:
                self._tokens.record(getattr(r, name), {**common, "gen_ai.token.type": token_type})

    def _span(self, name: str, attributes: dict[str, Any], end_ns: int, seconds: float, error: str | None) -> None:
        span = self._tracer.start_span(
            name, kind=self._trace.SpanKind.CLIENT, attributes=attributes, start_time=end_ns - int(seconds * 1e9)
        )
        if error:
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, error))
        span.end(end_time=end_ns)

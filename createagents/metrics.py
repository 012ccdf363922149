"""Metrics for users: the record types, the sink port, JSON reading and the OpenTelemetry sink."""

from .adapters.metrics_export import records_from_json
from .adapters.otel import OpenTelemetrySink
from .application.metrics import percentiles
from .application.ports import MetricsSink
from .domain.metrics import MetricsRecord, ModelCallRecord, ToolCallRecord

__all__ = [
    "MetricsRecord",
    "MetricsSink",
    "ModelCallRecord",
    "OpenTelemetrySink",
    "ToolCallRecord",
    "percentiles",
    "records_from_json",
]

"""Metric records: one per model call and one per tool call, the same for every provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelCallRecord:
    """One model round trip. Times are seconds; fields a provider does not report are 0 or None.

    It carries every field of `Usage` under the same name (filled from
    `USAGE_FIELDS`), plus `total_tokens`.
    """

    timestamp: float
    provider: str
    model: str
    conversation_id: str
    latency: float
    time_to_first_token: float | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    load_duration: float = 0.0
    prompt_eval_duration: float = 0.0
    eval_duration: float = 0.0
    tool_calls: int = 0
    finish_reason: str | None = None
    success: bool = True
    error_type: str | None = None
    kind: Literal["model_call"] = "model_call"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallRecord:
    """One tool call; `error_type` names what went wrong when it failed."""

    timestamp: float
    tool_name: str
    duration: float
    success: bool = True
    error_type: str | None = None
    kind: Literal["tool_call"] = "tool_call"


MetricsRecord: TypeAlias = ModelCallRecord | ToolCallRecord

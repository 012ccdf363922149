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

    # createagents 0.3's names for the same numbers (its `ChatMetrics`), for code written against it
    @property
    def latency_ms(self) -> float:
        return round(self.latency * 1000, 2)

    @property
    def tokens_used(self) -> int:
        return self.total_tokens

    @property
    def error_message(self) -> str | None:
        return self.error_type

    @property
    def load_duration_ms(self) -> float:
        return self.load_duration * 1000

    @property
    def prompt_eval_duration_ms(self) -> float:
        return self.prompt_eval_duration * 1000

    @property
    def eval_duration_ms(self) -> float:
        return self.eval_duration * 1000


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

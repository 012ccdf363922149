"""RunLimits: every numeric limit of an agent, checked in one place with one wording."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from createagents import ConfigurationError, RunLimits
from createagents.application.tool_threads import DEFAULT_TOOL_THREADS


def test_the_defaults_are_the_agents_defaults() -> None:
    limits = RunLimits()
    assert (limits.max_turns, limits.tool_timeout, limits.timeout, limits.max_retries) == (10, 60.0, 600.0, 2)
    assert (limits.history_max_size, limits.metrics_limit) == (None, 10_000)
    assert limits.tool_threads == DEFAULT_TOOL_THREADS


@pytest.mark.parametrize("name", ["max_turns", "tool_threads", "history_max_size", "metrics_limit"])
@pytest.mark.parametrize("value", [0, -1, 1.5, True, False, math.nan, math.inf, "3", None, 10**400])
def test_whole_number_limits_must_be_greater_than_0(name: str, value: Any) -> None:
    if value is None and name == "history_max_size":
        assert RunLimits(history_max_size=None).history_max_size is None  # None keeps the whole history
        return
    with pytest.raises(ConfigurationError) as e:
        RunLimits(**{name: value})
    assert str(e.value) == f"{name} must be a finite number greater than 0, got {value!r}"


@pytest.mark.parametrize("name", ["tool_timeout", "timeout"])
@pytest.mark.parametrize("value", [0, -0.5, True, math.nan, math.inf, -math.inf, "1", None, 10**400])
def test_seconds_must_be_finite_and_greater_than_0(name: str, value: Any) -> None:
    with pytest.raises(ConfigurationError) as e:
        RunLimits(**{name: value})
    assert str(e.value) == f"{name} must be a finite number greater than 0, got {value!r}"


@pytest.mark.parametrize("value", [-1, 1.0, True, "2", None])
def test_max_retries_must_be_a_whole_number_from_0(value: Any) -> None:
    with pytest.raises(ConfigurationError) as e:
        RunLimits(max_retries=value)
    assert str(e.value) == f"max_retries must be a whole number >= 0, got {value!r}"


def test_good_values_are_kept_and_seconds_become_floats() -> None:
    limits = RunLimits(max_turns=1, tool_timeout=2, timeout=0.5, max_retries=0, history_max_size=1, tool_threads=1)
    assert limits.tool_timeout == 2.0 and isinstance(limits.tool_timeout, float)
    assert limits.timeout == 0.5 and limits.max_retries == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.max_turns = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        RunLimits(3)  # type: ignore[misc]  # keyword-only

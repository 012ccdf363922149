"""The numeric limits of an agent, validated once when it is built.

`CreateAgent` passes its keyword arguments here, so every limit is checked in
one place, with one wording, and the facade only wires the checked values in.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from .errors import ConfigurationError


@dataclass(frozen=True, slots=True, kw_only=True)
class RunLimits:
    """How far an agent's runs may go; `RunLimits()` holds the defaults of `CreateAgent`.

    Every limit is a finite number greater than 0 (`max_retries` may be 0):
    NaN passes `> 0` checks the wrong way, infinity overflows timers, and
    `True` is not a count. Seconds are normalised to `float`. Invalid values
    raise `ConfigurationError` naming the argument.
    """

    max_turns: int = 10  # model calls per run
    tool_timeout: float = 60.0  # seconds per tool call, unless the tool sets its own
    tool_threads: int = 8  # the agent's pool for sync tools
    history_max_size: int | None = None  # messages of history sent to the model; None sends all
    history_max_tokens: int | None = None  # about this many tokens of history sent (4 characters a token)
    metrics_limit: int = 10_000  # metric records kept in memory
    timeout: float = 600.0  # seconds per provider request
    max_retries: int = 2  # provider retries after the first attempt; 0 turns them off

    def __post_init__(self) -> None:
        _positive("max_turns", self.max_turns, whole=True)
        _positive("tool_timeout", self.tool_timeout)
        _positive("timeout", self.timeout)
        _positive("metrics_limit", self.metrics_limit, whole=True)
        _positive("tool_threads", self.tool_threads, whole=True)
        if self.history_max_size is not None:
            _positive("history_max_size", self.history_max_size, whole=True)
        if self.history_max_tokens is not None:
            _positive("history_max_tokens", self.history_max_tokens, whole=True)
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigurationError(f"max_retries must be a whole number >= 0, got {self.max_retries!r}")
        object.__setattr__(self, "tool_timeout", float(self.tool_timeout))
        object.__setattr__(self, "timeout", float(self.timeout))


def _positive(name: str, value: object, *, whole: bool = False) -> None:
    """A whole number (or, unless `whole`, a float) greater than 0 and finite as a float; never a bool."""
    kinds = int if whole else int | float
    if isinstance(value, bool) or not isinstance(value, kinds) or not 0 < value <= sys.float_info.max:
        raise ConfigurationError(f"{name} must be a finite number greater than 0, got {value!r}")

"""Model settings, validated once when an agent is built.

A plain frozen dataclass rather than a pydantic model: seven keys do not
justify pydantic's import time, and the hand-written checks give errors that
name the key and the allowed values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, TypeAlias

from .errors import ConfigurationError

ThinkLevel: TypeAlias = bool | Literal["low", "medium", "high"]
_THINK_LEVELS = ("low", "medium", "high")
_CHOICES: dict[str, tuple[str, ...]] = {
    "reasoning_effort": ("none", "minimal", "low", "medium", "high", "xhigh"),
    "reasoning_summary": ("auto", "concise", "detailed"),
    "verbosity": ("low", "medium", "high"),
    "truncation": ("auto", "disabled"),
    "service_tier": ("auto", "default", "flex", "scale", "priority"),
}
ALIASES = {"max_output_tokens": "max_tokens"}  # the Responses API's name for the same limit


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSettings:
    """Sampling and reasoning settings; `None` means "the provider's default"."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    top_k: int | None = None
    stop: tuple[str, ...] | None = None
    seed: int | None = None
    think: ThinkLevel | None = None
    # OpenAI's reasoning and serving options; which API takes which is checked by each adapter
    reasoning_effort: str | None = None
    reasoning_summary: str | None = None
    verbosity: str | None = None
    truncation: str | None = None
    service_tier: str | None = None

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any] | None) -> ModelSettings:
        """Build settings from a user's `config` dict, raising `ConfigurationError` on any bad entry."""
        if config is None:
            return cls()
        if isinstance(config, ModelSettings):
            return config
        if not isinstance(config, Mapping):
            raise ConfigurationError(f"config must be a dict of settings, got {type(config).__name__}")
        allowed = [f.name for f in fields(cls)]
        values: dict[str, Any] = {}
        for given, value in config.items():
            if given == "stream":  # createagents 0.3's switch: a reply streams when it is iterated, so no setting
                if not isinstance(value, bool | None):
                    raise ConfigurationError(f"setting 'stream' must be true or false, got {value!r}")
                continue
            key = ALIASES.get(given, given)
            if key not in allowed:
                raise ConfigurationError(
                    f"unknown setting {given!r}; allowed settings: {', '.join([*allowed, *ALIASES])}"
                )
            if value is None:
                continue
            checked = _CHECKS[key](given, value)
            if key in values and values[key] != checked:
                raise ConfigurationError("settings 'max_tokens' and 'max_output_tokens' disagree: give one of them")
            values[key] = checked
        return cls(**values)

    def overridden(self, config: Mapping[str, Any] | None) -> ModelSettings:
        """These settings with `config`'s entries (validated the same way) taking precedence, for one run."""
        if not config:
            return self
        overrides = ModelSettings.from_mapping(config)
        changes = {
            f.name: getattr(overrides, f.name) for f in fields(overrides) if getattr(overrides, f.name) is not None
        }
        return replace(self, **changes)


def _number(key: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigurationError(f"setting {key!r} must be a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"setting {key!r} must be a whole number greater than 0, got {value!r}")
    return value


def _int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"setting {key!r} must be a whole number, got {value!r}")
    return value


def _stop(key: str, value: Any) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items or not all(isinstance(s, str) and s for s in items):
        raise ConfigurationError(
            f"setting {key!r} must be a non-empty string or a list of non-empty strings, got {value!r}"
        )
    return tuple(items)


def _think(key: str, value: Any) -> ThinkLevel:
    if isinstance(value, bool) or value in _THINK_LEVELS:
        return value  # type: ignore[no-any-return]
    raise ConfigurationError(f"setting {key!r} must be true, false, 'low', 'medium' or 'high', got {value!r}")


def _choice(key: str, value: Any) -> str:
    choices = _CHOICES[key]
    if value not in choices:
        raise ConfigurationError(f"setting {key!r} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return str(value)


_CHECKS = {
    "temperature": lambda k, v: _number(k, v, 0.0, 2.0),
    "top_p": lambda k, v: _number(k, v, 0.0, 1.0),
    "max_tokens": _positive_int,
    "top_k": _positive_int,
    "stop": _stop,
    "seed": _int,
    "think": _think,
    **{key: _choice for key in _CHOICES},
}

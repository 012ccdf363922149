"""The environment variables of createagents 0.3, honoured with the same meanings; explicit arguments win.

Read when an agent is built, never on import, and no `.env` file is read:
loading one is the application's choice (`python-dotenv`'s `load_dotenv()`
before building agents).
"""

from __future__ import annotations

import os
from typing import Any

from .domain.errors import ConfigurationError

_PREFIX = {"openai": "OPENAI", "ollama": "OLLAMA"}
_LIMITS = (
    ("TIMEOUT", "timeout", float),
    ("MAX_RETRIES", "max_retries", int),
    ("MAX_TOOL_ITERATIONS", "max_turns", int),
)


def environment_limits(provider: str) -> dict[str, Any]:
    """`timeout`, `max_retries` and `max_turns` as `OPENAI_*` / `OLLAMA_*` give them for `provider`."""
    prefix = _PREFIX.get(provider)
    found: dict[str, Any] = {}
    if prefix is None:
        return found
    for suffix, key, kind in _LIMITS:
        name = f"{prefix}_{suffix}"
        raw = os.environ.get(name)
        if not raw:
            continue
        try:
            found[key] = kind(raw)
        except ValueError:
            raise ConfigurationError(f"the environment variable {name} must be a number, got {raw!r}") from None
    return found


def configure_logging_from_environment() -> None:
    """`LOG_LEVEL`, `LOG_JSON_FORMAT`, `LOG_TO_FILE`, `LOG_FILE_PATH`: logs on, unless the code configured them."""
    from .adapters.structured_logging import LoggingConfig, logging_configured

    if logging_configured() or not any(os.environ.get(v) for v in ("LOG_LEVEL", "LOG_TO_FILE", "LOG_JSON_FORMAT")):
        return
    LoggingConfig.configure()

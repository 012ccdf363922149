"""Structured logs through structlog: one line per model call and per tool call, silent by default.

The package logger is the stdlib logger "createagents" with a `NullHandler`,
as a library should; `configure_logging()` attaches a handler. Lines carry
the fields of the metric record and nothing of the conversation's content;
known secrets (API keys) and secret-looking keys are masked before rendering.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from ..application.ports import MetricsSink
from ..domain.metrics import MetricsRecord
from ._secrets import mask_secrets, register_secret

__all__ = ["LoggingConfig", "LoggingSink", "configure_logging", "logging_configured", "register_secret"]

LOGGER_NAME = "createagents"
_SECRET_KEYS = frozenset({"api_key", "api-key", "authorization", "password", "secret", "token", "access_token"})
_std = logging.getLogger(LOGGER_NAME)
_state: dict[str, Any] = {"json": False, "handler": None, "logger": None}


def _mask(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if key.lower() in _SECRET_KEYS:
            event[key] = "***"
        elif isinstance(value, str):
            event[key] = mask_secrets(value)
    return event


def _logger() -> Any:
    if _state["logger"] is None:
        import structlog

        renderer = (
            structlog.processors.JSONRenderer()
            if _state["json"]
            else structlog.processors.KeyValueRenderer(key_order=["event"], sort_keys=False)
        )
        _state["logger"] = structlog.wrap_logger(
            _std,
            wrapper_class=structlog.stdlib.BoundLogger,
            processors=[structlog.processors.TimeStamper(fmt="iso", key="time"), _mask, renderer],
        )
    return _state["logger"]


class LoggingSink(MetricsSink):
    """Logs each record at INFO (WARNING when it failed); costs one level check when logging is off.

    `agent` (the agent's name, when it has one) goes on every line.
    """

    def __init__(self, agent: str | None = None) -> None:
        self.agent = agent

    def record(self, record: MetricsRecord) -> None:
        level = logging.INFO if record.success else logging.WARNING
        if not _std.isEnabledFor(level):
            return
        fields = asdict(record)
        kind = fields.pop("kind")
        fields.pop("timestamp")
        if self.agent:
            fields["agent"] = self.agent
        _logger().log(level, kind, **fields)


def configure_logging(
    level: str | int = "INFO", json: bool = False, stream: IO[str] | None = None, file: str | Path | None = None
) -> None:
    """Turn createagents' logs on: `level` for the "createagents" logger, JSON or key=value lines.

    Lines go to `stream` (stderr by default) or, with `file`, to that file,
    rotated at 10 MB with 5 kept (its folder is made).
    """
    if isinstance(level, str):
        resolved = logging.getLevelName(level.upper())
        if not isinstance(resolved, int):
            from ..domain.errors import ConfigurationError

            raise ConfigurationError(f"unknown log level {level!r}; use DEBUG, INFO, WARNING or ERROR")
        level = resolved
    if _state["handler"] is not None:
        _std.removeHandler(_state["handler"])
    handler: logging.Handler
    if file is not None:
        from logging.handlers import RotatingFileHandler

        Path(file).parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(file, maxBytes=10 * 1024 * 1024, backupCount=5, encoding="utf-8")
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    _std.addHandler(handler)
    _std.setLevel(level)
    _state.update(json=json, handler=handler, logger=None)


def logging_configured() -> bool:
    """Whether `configure_logging` attached a handler already (the user's call wins over the environment)."""
    return _state["handler"] is not None


class LoggingConfig:
    """createagents 0.3's logging switch, kept for code written for it: `configure_logging` does the work.

    As in 0.3, each argument not given falls back to its environment variable
    (`LOG_LEVEL`, `LOG_TO_FILE`, `LOG_FILE_PATH`, `LOG_JSON_FORMAT`).
    """

    @classmethod
    def configure(
        cls,
        level: str | int | None = None,
        *,
        log_to_file: bool | None = None,
        log_file_path: str | Path | None = None,
        json_format: bool | None = None,
        **_ignored: Any,
    ) -> None:
        import os

        to_file = _true(os.environ.get("LOG_TO_FILE")) if log_to_file is None else log_to_file
        file = (log_file_path or os.environ.get("LOG_FILE_PATH") or "logs/app.log") if to_file else None
        json = _true(os.environ.get("LOG_JSON_FORMAT")) if json_format is None else json_format
        configure_logging(level or os.environ.get("LOG_LEVEL") or "INFO", json=json, file=file)

    @classmethod
    def configure_for_development(cls, level: str | int = logging.INFO) -> None:
        configure_logging(level)

    @classmethod
    def set_level(cls, level: str | int) -> None:
        _std.setLevel(level.upper() if isinstance(level, str) else level)

    @classmethod
    def get_logger(cls, name: str = LOGGER_NAME) -> logging.Logger:
        return logging.getLogger(name)

    @classmethod
    def get_handlers(cls) -> list[logging.Handler]:
        return list(_std.handlers)

    @classmethod
    def reset(cls) -> None:
        """Silent again, as before any `configure`: the handler this module attached is removed and closed."""
        handler = _state["handler"]
        if handler is not None:
            _std.removeHandler(handler)
            handler.close()
        _std.setLevel(logging.NOTSET)
        _state.update(json=False, handler=None, logger=None)

    silence_package_logger = reset


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")

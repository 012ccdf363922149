"""What every store does alike with runs and paused turns: validation, JSON, and when a paused turn may go.

One copy, shared by the memory, SQLite and Redis stores, so every store
refuses bad input with the same error and stores the same JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..domain.errors import ConfigurationError

PAUSED_GRACE = 24 * 3600
"""Seconds past its `expires_at` a paused turn is still kept: the application refuses it; stores then drop it."""
ACTIVE_RUN_STATUSES = frozenset({"queued", "in_progress"})  # never dropped or swept: a process is running it

encode_json: Callable[[Any], str] = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode  # ASCII, no NaN


def paused_deadline(state: Mapping[str, Any]) -> float | None:
    """When a paused state may be dropped (unix seconds): its `expires_at` plus `PAUSED_GRACE`; None without one."""
    expires_at = state.get("expires_at")
    if isinstance(expires_at, bool) or not isinstance(expires_at, int | float) or not math.isfinite(expires_at):
        return None
    return float(expires_at) + PAUSED_GRACE


def check_run_id(run_id: object) -> str:
    if not isinstance(run_id, str) or not run_id:
        raise ConfigurationError(f"a run id must be a non-empty string, got {run_id!r}")
    return run_id


def run_record(record: Mapping[str, Any]) -> tuple[str, str]:
    """A new run's (status, record as JSON); ConfigurationError without a string `status` or for what is not JSON."""
    if not isinstance(record, Mapping):
        raise ConfigurationError(f"a run record must be a mapping, got {type(record).__name__}")
    status = record.get("status")
    if not isinstance(status, str):
        raise ConfigurationError(f"a run record needs a string 'status', got {status!r}")
    return status, json_text(dict(record), "a run record")


def run_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """The changes of an update as a JSON-checked copy; a `status` among them must be a string."""
    if not isinstance(changes, Mapping):
        raise ConfigurationError(f"run changes must be a mapping, got {type(changes).__name__}")
    if "status" in changes and not isinstance(changes["status"], str):
        raise ConfigurationError(f"a run's 'status' must be a string, got {changes['status']!r}")
    return decode_object(json_text(dict(changes), "run changes"))


def check_statuses(statuses: Sequence[str] | None) -> frozenset[str] | None:
    if statuses is None:
        return None
    if isinstance(statuses, str) or not all(isinstance(s, str) for s in statuses):
        raise ConfigurationError(f"statuses must be a list of strings, got {statuses!r}")
    return frozenset(statuses)


def encode_events(events: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each event as JSON; ConfigurationError (and nothing stored) when one is not a JSON object."""
    if isinstance(events, Mapping | str | bytes):
        raise ConfigurationError(f"events must be a list of JSON objects, got {type(events).__name__}")
    encoded = []
    for i, event in enumerate(events):
        if not isinstance(event, Mapping):
            raise ConfigurationError(f"event {i} is not a JSON object (a dict): {event!r:.100}")
        encoded.append(json_text(dict(event), f"event {i}"))
    return encoded


def event_window(after: int, limit: int) -> tuple[int, int]:
    """The list slice [start, stop) of the events numbered above `after`, at most `limit` of them."""
    for name, value in (("after", after), ("limit", limit)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigurationError(f"{name} must be a whole number, got {value!r}")
    start = max(after + 1, 0)
    return start, start + max(limit, 0)


def json_text(value: Any, what: str) -> str:
    try:
        return encode_json(value)
    except (TypeError, ValueError) as e:
        raise ConfigurationError(f"{what} must be JSON-ready: {e}") from None


def decode_object(text: str | bytes) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"a stored run record or event is not a JSON object: {text!r:.100}")
    return value


def decode_objects(items: Iterable[str | bytes]) -> list[dict[str, Any]]:
    """Stored events as dicts: one JSON parse for them all (several times faster than one per item)."""
    texts = list(items)
    if not texts:
        return []
    joined = (
        b"[" + b",".join(t if isinstance(t, bytes) else t.encode() for t in texts) + b"]"
        if isinstance(texts[0], bytes)
        else "[" + ",".join(t if isinstance(t, str) else t.decode() for t in texts) + "]"
    )
    try:
        values = json.loads(joined)
    except ValueError:
        values = None
    if not isinstance(values, list) or len(values) != len(texts) or not all(isinstance(v, dict) for v in values):
        return [decode_object(text) for text in texts]  # a damaged item: find it, and say which
    return values

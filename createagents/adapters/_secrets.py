"""Known secrets (API keys) and the one rule for masking them in errors and logs.

Only whole tokens that could be real credentials are masked: a key of a
few characters ("k", "test") is no credential, and masking it as a substring
turned "socket" into "soc***et". A real key quoted back by a provider
("Incorrect API key provided: sk-...") is still masked wherever it stands as
a token of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MIN_SECRET_LENGTH = 8
MASK = "***"
_registered: set[str] = set()
_cache: dict[frozenset[str], re.Pattern[str] | None] = {}
_TOKEN_CHARS = "A-Za-z0-9_"


def register_secret(value: str) -> None:
    """A value (an API key) that must never appear in an error message or a log line."""
    if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH:
        _registered.add(value)


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every registered secret, and each of `secrets`, masked where it stands as a whole token."""
    pattern = _pattern(frozenset(s for s in (*_registered, *secrets) if len(s) >= MIN_SECRET_LENGTH))
    return text if pattern is None else pattern.sub(MASK, text)


def _pattern(secrets: frozenset[str]) -> re.Pattern[str] | None:
    if secrets not in _cache:
        if len(_cache) > 64:
            _cache.clear()
        alternatives = "|".join(re.escape(s) for s in sorted(secrets, key=len, reverse=True))
        _cache[secrets] = (
            re.compile(f"(?<![{_TOKEN_CHARS}])(?:{alternatives})(?![{_TOKEN_CHARS}])") if secrets else None
        )
    return _cache[secrets]

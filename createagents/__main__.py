"""`createagents` and `python -m createagents`: serve, chat, run, demo (see `createagents.cli`)."""

from __future__ import annotations

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())

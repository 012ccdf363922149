"""Tools that ship with createagents, selectable by name: `tools=["currentdate"]`."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..application.tools import Tool, tool
from ..domain.errors import ConfigurationError


@tool
def currentdate(timezone: str = "UTC") -> str:
    """The current date and time in a time zone.

    Args:
        timezone: An IANA time zone name, such as "Europe/Lisbon" or "America/New_York".
    """
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown time zone {timezone!r}; use an IANA name such as 'Europe/Lisbon'") from e
    now = datetime.now(zone)
    return f"{now.strftime('%A')}, {now.isoformat(timespec='seconds')} ({timezone})"


BUILTIN_TOOLS: dict[str, Tool] = {"currentdate": currentdate}


def builtin_tool(name: str) -> Tool:
    try:
        return BUILTIN_TOOLS[name]
    except KeyError:
        raise ConfigurationError(
            f"unknown built-in tool {name!r}; built-in tools: {', '.join(sorted(BUILTIN_TOOLS))}"
        ) from None

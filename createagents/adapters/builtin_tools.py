"""Tools that ship with createagents, selectable by name: `tools=["currentdate", "readlocalfile"]`."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..application.tools import Tool, tool
from ..domain.errors import ConfigurationError
from ._file_tools import read_local_file


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


readlocalfile = read_local_file()  # FILE_TOOL_BASE_DIR read at each call; `read_local_file(...)` for other limits

BUILTIN_TOOLS: dict[str, Tool] = {"currentdate": currentdate, "readlocalfile": readlocalfile}


def builtin_tool(name: str) -> Tool:
    try:
        return BUILTIN_TOOLS[name.lower()]  # "CurrentDate" too, as createagents 0.3 matched them
    except KeyError:
        raise ConfigurationError(
            f"unknown built-in tool {name!r}; built-in tools: {', '.join(sorted(BUILTIN_TOOLS))}"
        ) from None


__all__ = ["BUILTIN_TOOLS", "builtin_tool", "currentdate", "read_local_file", "readlocalfile"]

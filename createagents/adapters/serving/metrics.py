"""`GET /metrics`: every served agent's Prometheus text, labelled by agent, and the server's own counters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def label_agent(line: str, agent: str) -> str:
    """A sample line with `agent="..."` as its first label."""
    name_end = len(line)
    for i, ch in enumerate(line):
        if ch in "{ ":
            name_end = i
            break
    label = f'agent="{_escape(agent)}"'
    if name_end < len(line) and line[name_end] == "{":
        rest = line[name_end + 1 :]
        return f"{line[:name_end]}{{{label}{'' if rest.startswith('}') else ','}{rest}"
    return f"{line[:name_end]}{{{label}}}{line[name_end:]}"


def merge_expositions(parts: Iterable[tuple[str, str]]) -> str:
    """Several agents' exposition texts as one: each family's HELP and TYPE once, its samples per agent."""
    headers: dict[str, list[str]] = {}
    samples: dict[str, list[str]] = {}
    for agent, text in parts:
        family = ""
        for line in text.splitlines():
            if not line:
                continue
            if line.startswith("#"):
                fields = line.split(" ", 3)
                if len(fields) >= 3 and fields[1] in ("HELP", "TYPE"):
                    family = fields[2]
                    known = headers.setdefault(family, [])
                    samples.setdefault(family, [])
                    if not any(h.split(" ", 2)[1] == fields[1] for h in known):
                        known.append(line)
                continue
            samples.setdefault(family, []).append(label_agent(line, agent))
    out: list[str] = []
    for family, lines in samples.items():
        out.extend(headers.get(family, ()))
        out.extend(lines)
    return "\n".join(out) + "\n" if out else ""


def server_exposition(
    requests: Mapping[tuple[str, str, int], int], *, requests_in_flight: int, streams_in_flight: int
) -> str:
    lines = [
        "# HELP createagents_server_requests_total HTTP requests answered, by route, method and status.",
        "# TYPE createagents_server_requests_total counter",
    ]
    for (route, method, status), count in sorted(requests.items()):
        lines.append(
            f'createagents_server_requests_total{{route="{_escape(route)}",method="{_escape(method)}",'
            f'status="{status}"}} {count}'
        )
    lines += [
        "# HELP createagents_server_requests_in_flight Requests being handled now.",
        "# TYPE createagents_server_requests_in_flight gauge",
        f"createagents_server_requests_in_flight {requests_in_flight}",
        "# HELP createagents_server_streams_in_flight Streamed responses being sent now.",
        "# TYPE createagents_server_streams_in_flight gauge",
        f"createagents_server_streams_in_flight {streams_in_flight}",
    ]
    return "\n".join(lines) + "\n"

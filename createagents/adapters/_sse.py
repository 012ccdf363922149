"""An incremental server-sent-events reader over raw bytes, shared by the HTTP adapters.

Reading bytes and splitting them ourselves costs a fraction of building an
SDK object per chunk; this is the hot path of every OpenAI-style stream.

What it reads, as the SSE specification says: lines end with LF, CRLF or a
lone CR; a blank line ends an event; an event's `data:` lines are joined
with "\\n"; one space after `data:` is dropped (`data:x` and `data: x` are
both "x"); comments (`:` lines), `event:`, `id:`, `retry:` and unknown
fields are skipped. The line splitting is `_lines.LineSplitter`: linear in
the length of a line, and a line (or an event's data) over `max_line` bytes
(16 MiB by default, see `_lines`) raises `ResponseFormatError`, which names
no provider: the caller names its own and closes the connection.

Where it departs from the specification: at the end of the stream, an event
not closed by a blank line still counts, where the specification discards it.
Some OpenAI-compatible servers end the stream right after their last
`data:` line; the last event can be the one that carries the finish reason
and the usage, and dropping it would turn a complete answer into a stream
that "ended early". A stream cut off in the middle of an event ends with a
transport error before this matters; one that ends cleanly with half an
event hands that half to the parser, which then fails on it with
`ResponseFormatError` rather than silently losing it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from ._lines import MAX_LINE, LineSplitter, line_too_long

__all__ = ["MAX_LINE", "sse_data"]


async def sse_data(chunks: AsyncIterator[bytes], *, max_line: int = MAX_LINE) -> AsyncIterator[bytes]:
    """Yield the `data` of each event, as bytes, as the events complete (see the module's docstring)."""
    splitter = LineSplitter(max_line)
    feed = splitter.feed_any
    data: list[bytes] = []
    size = 0  # of an event with several data lines, so far
    async for chunk in chunks:
        for line in feed(chunk):
            if not line:
                if data:
                    yield data[0] if len(data) == 1 else b"\n".join(data)
                    data = []
                    size = 0
            elif line[:5] == b"data:":
                value = line[6:] if line[5:6] == b" " else line[5:]
                if data:  # the rare event of several data lines: its whole size is capped too
                    size = (size or len(data[0])) + 1 + len(value)
                    if size > max_line:
                        raise line_too_long(max_line)
                data.append(value)
            elif line == b"data":  # a field name alone is the field with an empty value
                if data:
                    size = (size or len(data[0])) + 1
                    if size > max_line:
                        raise line_too_long(max_line)
                data.append(b"")
    line = splitter.rest()
    if line[:5] == b"data:":
        data.append(line[6:] if line[5:6] == b" " else line[5:])
    elif line == b"data":
        data.append(b"")
    if data:
        yield b"\n".join(data)

"""Bytes off the wire -> whole lines, in time linear in their length and with a cap on each line.

Shared by the SSE reader (OpenAI-style streams) and the Ollama adapter (NDJSON).

A partial line is kept as a list of the pieces that arrived and joined once,
when its end arrives; only the new chunk is searched for a line end. (Adding
each chunk to the partial line instead copies the whole line again on every
read: a server that never ends a line then costs time quadratic in its length,
on the event loop's thread.)

`MAX_LINE`, 16 MiB, is the default cap on one line. An OpenAI chunk or an
Ollama NDJSON line is a few hundred bytes, a few KB at most; but one line can
legitimately carry a whole tool call's arguments or a base64-encoded image
(about 12 MB of image in 16 MiB), so the cap sits three orders of magnitude
above the usual. Above it the stream fails with `ResponseFormatError` (the
caller closes the connection): a server that never ends its line costs at
most that much memory (about twice that while the last piece is joined) and
CPU linear in it, instead of all the memory there is. Callers take the cap
as a `max_line` argument.
"""

from __future__ import annotations

from ..domain.errors import ResponseFormatError

__all__ = ["MAX_LINE", "LineSplitter", "line_too_long"]

MAX_LINE = 16 * 1024 * 1024


def line_too_long(max_line: int) -> ResponseFormatError:
    return ResponseFormatError(f"the server sent a line longer than max_line ({max_line:,} bytes)")


class LineSplitter:
    """Feed it chunks as they arrive; it returns the lines each chunk completes, without their line ends.

    `feed` ends lines at LF only (NDJSON: a raw CR can only be JSON
    whitespace there). `feed_any` ends them at LF, CRLF or a lone CR (SSE),
    a CRLF split between two chunks included. Use one or the other for a
    stream. A line longer than `max_line` bytes raises `ResponseFormatError`
    as soon as it is known to be, ended or not.
    """

    __slots__ = ("_held", "_size", "_skip_lf", "max_line")

    def __init__(self, max_line: int = MAX_LINE) -> None:
        if max_line < 1:
            raise ValueError(f"max_line must be at least 1, got {max_line}")
        self.max_line = max_line
        self._held: list[bytes] = []  # the pieces of a line not ended yet
        self._size = 0  # their total length
        self._skip_lf = False  # the last chunk ended with CR: an LF first in the next one ends no line

    def feed(self, chunk: bytes) -> list[bytes]:
        lines = chunk.split(b"\n")
        tail = lines.pop()
        if self._held or len(chunk) > self.max_line:
            return self._complete(lines, tail, chunk)
        if tail:
            self._held.append(tail)
            self._size = len(tail)
        return lines

    def feed_any(self, chunk: bytes) -> list[bytes]:
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[0] == 10:  # the LF of a CRLF: the CR ended the line
                chunk = chunk[1:]
                if not chunk:
                    return []
        lines = chunk.splitlines()  # at LF, CR and CRLF, and only those, for bytes
        last = chunk[-1]
        if last == 10:
            tail = b""
        elif last == 13:
            tail = b""
            self._skip_lf = True
        else:
            tail = lines.pop()
        if self._held or len(chunk) > self.max_line:
            return self._complete(lines, tail, chunk)
        if tail:
            self._held.append(tail)
            self._size = len(tail)
        return lines

    def _complete(self, lines: list[bytes], tail: bytes, chunk: bytes) -> list[bytes]:
        """A line held from before, or a chunk big enough to hold a line over the cap."""
        held = self._held
        if held:
            if not lines:  # still no end to the line
                held.append(tail)
                self._size += len(tail)
                if self._size > self.max_line:
                    raise line_too_long(self.max_line)
                return lines
            if len(held) == 1:  # the usual: one piece held, ended by the first line of this chunk
                lines[0] = line = held.pop() + lines[0]
            else:
                held.append(lines[0])
                lines[0] = line = b"".join(held)
                held.clear()
            if len(line) > self.max_line:
                raise line_too_long(self.max_line)
        if tail:
            held.append(tail)
            self._size = len(tail)
        if len(chunk) > self.max_line and any(len(line) > self.max_line for line in (*lines, tail)):
            raise line_too_long(self.max_line)
        return lines

    def rest(self) -> bytes:
        """The last line when the stream ended without its line end (b"" if none); the splitter is then empty."""
        rest = b"".join(self._held)
        self._held.clear()
        self._size = 0
        return rest

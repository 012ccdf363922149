"""An incremental server-sent-events reader over raw bytes, shared by the HTTP adapters.

Reading bytes and splitting them ourselves costs a fraction of building an
SDK object per chunk; this is the hot path of every OpenAI-style stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator


async def sse_data(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Yield the `data` of each event; comments, `event:`, `id:` and `retry:` lines are skipped.

    Multi-line data is joined with a newline, as the SSE specification says;
    an event not closed by a blank line before the end still counts, because
    some servers end the stream without one.
    """
    pending = b""
    data: list[bytes] = []
    async for chunk in chunks:
        if pending:
            chunk = pending + chunk
        lines = chunk.split(b"\n")
        pending = lines.pop()
        for line in lines:
            if line[-1:] == b"\r":
                line = line[:-1]
            if not line:
                if data:
                    yield data[0] if len(data) == 1 else b"\n".join(data)
                    data = []
            elif line[:5] == b"data:":
                data.append(line[6:] if line[5:6] == b" " else line[5:])
    if pending[:5] == b"data:":
        data.append(pending[6:] if pending[5:6] == b" " else pending[5:])
    if data:
        yield b"\n".join(data)

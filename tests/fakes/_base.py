"""What the fake servers share: an aiohttp app on 127.0.0.1, port 0, started and stopped by a fixture.

Also the faults that act on the connection rather than on the wire format:
holding a request open without sending anything, and resetting (RST) it.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

from aiohttp import web

HOLD_POLL = 0.02  # seconds between checks that a held client is still there


class FakeServer:
    """Subclasses add their routes in `routes` and keep what they record."""

    def __init__(self) -> None:
        self.connections_closed = 0
        self._runner: web.AppRunner | None = None
        self._stopping = False
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def open_connections(self) -> int:
        """Client connections the server holds open right now (idle keep-alive ones included)."""
        server = self._runner.server if self._runner is not None else None
        return len(server.connections) if server is not None else 0

    async def wait_no_connections(self, within: float = 2.0) -> int:
        """Wait until no client connection is open; the number still open after `within` seconds."""
        for _ in range(int(within / 0.01)):
            if not self.open_connections:
                break
            await asyncio.sleep(0.01)
        return self.open_connections

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=2048)  # a thousand clients connect at once
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        """Stop serving; the port is then closed (a second call does nothing)."""
        runner, self._runner = self._runner, None
        self._stopping = True
        if runner is not None:
            await runner.cleanup()

    # -- connection faults ---------------------------------------------------

    async def write_pieces(
        self,
        request: web.Request,
        response: web.StreamResponse,
        pieces: list[bytes],
        faults: Any,
        *,
        at_once: bool = True,
    ) -> None:
        """Write a streamed body piece by piece, acting out the script's faults on the way.

        `faults` has `disconnect_after`, `reset_after`, `stall_after` (pieces
        sent first) and `chunk_delay`; without any, and `at_once`, the body
        goes in one write (a thousand streams stay cheap).
        """
        calm = faults.disconnect_after is None and faults.reset_after is None and faults.stall_after is None
        if at_once and calm and not faults.chunk_delay:
            await response.write_eof(b"".join(pieces))
            return
        for n, piece in enumerate(pieces):
            if faults.disconnect_after is not None and n == faults.disconnect_after:
                assert request.transport is not None
                request.transport.close()  # a dropped connection, mid-stream
                return
            if faults.reset_after is not None and n == faults.reset_after:
                await asyncio.sleep(0.05)  # the client reads what was sent before the reset arrives
                self.reset(request)
                return
            if faults.stall_after is not None and n == faults.stall_after:
                await self.hold(request)
                return
            if faults.chunk_delay:
                await asyncio.sleep(faults.chunk_delay)
            await response.write(piece)
        await response.write_eof()

    async def hold(self, request: web.Request) -> None:
        """Send nothing more and keep the connection open, until the client goes away or the server stops."""
        while not self._stopping:
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            await asyncio.sleep(HOLD_POLL)

    @staticmethod
    def reset(request: web.Request) -> None:
        """Drop the connection with a TCP reset (RST), as a crashed process or a middlebox would."""
        transport = request.transport
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

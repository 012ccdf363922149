"""What the fake servers share: an aiohttp app on 127.0.0.1, port 0, started and stopped by a fixture."""

from __future__ import annotations

from aiohttp import web


class FakeServer:
    """Subclasses add their routes in `routes` and keep what they record."""

    def __init__(self) -> None:
        self.connections_closed = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

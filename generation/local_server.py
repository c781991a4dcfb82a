"""A small aiohttp server on a local address, started once and closed on the way out: what the status page
(generation/status_server.py) and the webhook endpoint (generation/webhook_receiver.py) each are, with their own
routes."""

from __future__ import annotations

import abc

from aiohttp import web


class LocalServer(abc.ABC):
    """Listens on `host`:`port` (0: any free port) with the routes a subclass adds."""

    def __init__(self, *, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.address: tuple[str, int] | None = None

    @abc.abstractmethod
    def _add_routes(self, app: web.Application) -> None: ...

    async def start(self) -> tuple[str, int]:
        """Listen; the (host, port) it listens on. Raises OSError if it cannot."""
        app = web.Application()
        self._add_routes(app)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.address = (str(host), int(port))
        return self.address

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

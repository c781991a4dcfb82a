"""`/healthz` and `/metrics` over HTTP, when METRICS_PORT is set (never publish it beyond the host or a
private network: it needs no credentials).

- `GET /healthz`: 200 with a JSON report when healthy (generation/liveness.py), 503 with the same report and
  its reason otherwise.
- `GET /metrics`: the process's metrics in Prometheus' text format (generation/metrics.py).
"""

from __future__ import annotations

import json
import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from generation.liveness import Liveness
from generation.metrics import Metrics

log = logging.getLogger(__name__)


class StatusServer:
    """A small aiohttp server: start it once, close it on the way out."""

    def __init__(self, *, host: str, port: int, liveness: Liveness, metrics: Metrics) -> None:
        self._host = host
        self._port = port
        self._liveness = liveness
        self._metrics = metrics
        self._runner: web.AppRunner | None = None
        self.address: tuple[str, int] | None = None

    async def start(self) -> tuple[str, int]:
        """Listen; the (host, port) it listens on (port 0 picks a free one). Raises OSError if it cannot."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics_page)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
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

    async def _healthz(self, request: web.Request) -> web.Response:
        report = await self._liveness.check()
        return web.Response(
            text=json.dumps(report.to_json()), status=200 if report.ok else 503, content_type="application/json"
        )

    async def _metrics_page(self, request: web.Request) -> web.Response:
        response = web.Response(body=self._metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

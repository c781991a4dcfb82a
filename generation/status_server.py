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
from generation.local_server import LocalServer
from generation.metrics import Metrics

log = logging.getLogger(__name__)


class StatusServer(LocalServer):
    """`/healthz` and `/metrics`: start it once, close it on the way out."""

    def __init__(self, *, host: str, port: int, liveness: Liveness, metrics: Metrics) -> None:
        super().__init__(host=host, port=port)
        self._liveness = liveness
        self._metrics = metrics

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics_page)

    async def _healthz(self, request: web.Request) -> web.Response:
        report = await self._liveness.check()
        return web.Response(
            text=json.dumps(report.to_json()), status=200 if report.ok else 503, content_type="application/json"
        )

    async def _metrics_page(self, request: web.Request) -> web.Response:
        response = web.Response(body=self._metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

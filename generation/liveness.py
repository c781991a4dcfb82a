"""Is this process healthy? The one verdict behind `/healthz` and the heartbeat file `python bot.py --health`
reads: the Discord gateway is connected, the database answers, and the pipeline takes jobs.

An open circuit breaker (ToAPIs down) is reported but is not unhealthy: restarting the bot would not bring
ToAPIs back, and an orchestrator that restarts unhealthy containers would only make things worse.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DATABASE_TIMEOUT = 5.0
HEARTBEAT_INTERVAL = 10.0
# The heartbeat is stale (the process hangs, or is gone) once it is older than this.
HEARTBEAT_MAX_AGE = 60.0


@dataclass(frozen=True)
class HealthReport:
    """The verdict, why, and each part of it."""

    ok: bool
    reason: str
    gateway: bool
    database: bool
    pipeline: bool
    breaker_open: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"status": "ok" if self.ok else "unhealthy", **asdict(self)}


class Liveness:
    """Checks the parts of a healthy process; each is handed in, so that nothing here knows Discord."""

    def __init__(
        self,
        *,
        gateway_connected: Callable[[], bool],
        pipeline_accepting: Callable[[], bool],
        ping_database: Callable[[], Awaitable[None]],
        breaker_open: Callable[[], bool] = lambda: False,
        database_timeout: float = DATABASE_TIMEOUT,
    ) -> None:
        self._gateway_connected = gateway_connected
        self._pipeline_accepting = pipeline_accepting
        self._ping_database = ping_database
        self._breaker_open = breaker_open
        self._database_timeout = database_timeout

    async def check(self) -> HealthReport:
        gateway = self._gateway_connected()
        pipeline = self._pipeline_accepting()
        database = await self._database_answers()
        problems = [
            problem
            for problem, fine in (
                ("the Discord gateway is not connected", gateway),
                ("the database does not answer", database),
                ("the pipeline does not take jobs (starting or stopping)", pipeline),
            )
            if not fine
        ]
        return HealthReport(
            ok=not problems,
            reason="; ".join(problems) or "connected, the database answers, jobs are taken",
            gateway=gateway,
            database=database,
            pipeline=pipeline,
            breaker_open=self._breaker_open(),
        )

    async def _database_answers(self) -> bool:
        try:
            async with asyncio.timeout(self._database_timeout):
                await self._ping_database()
        except Exception as exc:
            log.warning("Health check: the database does not answer (%s)", type(exc).__name__)
            return False
        return True


class Heartbeat:
    """Keeps a small file fresh with the latest verdict, for `python bot.py --health` (Docker's HEALTHCHECK)."""

    def __init__(self, path: Path, liveness: Liveness, *, interval: float = HEARTBEAT_INTERVAL) -> None:
        self.path = path
        self._liveness = liveness
        self._interval = interval
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Beat now (something changed, e.g. the gateway connected)."""
        self._wake.set()

    async def run(self) -> None:
        """Beat every `interval` seconds (or when woken) until cancelled."""
        while True:
            self._wake.clear()
            report = await self._liveness.check()
            await asyncio.to_thread(self._write, {**report.to_json(), "time": time.time()})
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()

    async def stopped(self) -> None:
        """The process stops: the file says so at once rather than going stale."""
        report = {"status": "unhealthy", "ok": False, "reason": "the bot stopped", "time": time.time()}
        await asyncio.to_thread(self._write, report)

    def _write(self, report: dict[str, Any]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_name(self.path.name + ".tmp")
            partial.write_text(json.dumps(report), encoding="utf-8")
            os.replace(partial, self.path)
        except OSError as exc:
            log.warning("Could not write the heartbeat file %s: %s", self.path, exc)


def read_heartbeat(path: Path, *, max_age: float = HEARTBEAT_MAX_AGE, now: float | None = None) -> tuple[bool, str]:
    """Whether the heartbeat at `path` says healthy and is fresh, and why not."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False, f"no heartbeat at {path}: the bot is not running (or not yet started)"
    except (OSError, ValueError) as exc:
        return False, f"unreadable heartbeat at {path}: {exc}"
    if not isinstance(report, dict):
        return False, f"unreadable heartbeat at {path}"
    age = (time.time() if now is None else now) - float(report.get("time", 0))
    if age > max_age:
        return False, f"the heartbeat is {age:.0f} s old: the bot is not answering"
    if report.get("ok") is not True:
        return False, str(report.get("reason", "unhealthy"))
    return True, str(report.get("reason", "healthy"))

"""A circuit breaker in front of the upstream API.

After repeated upstream failures (or at once, when the key is rejected or the balance is empty) new jobs are
refused immediately instead of queueing for work that cannot succeed. While open, a cheap probe is tried every
`probe_interval`; its first success closes the breaker again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Probe = Callable[[], Awaitable[bool]]
# Called with (open, reason) on every change, so the operator hears when the upstream goes down and comes back.
# Synchronous: a listener that needs I/O schedules it itself.
Listener = Callable[[bool, str], None]


class CircuitBreaker:
    def __init__(
        self, *, threshold: int, probe: Probe, probe_interval: float, listener: Listener | None = None
    ) -> None:
        if threshold < 1:
            raise ValueError("threshold must be at least 1")
        self._threshold = threshold
        self._probe = probe
        self._probe_interval = probe_interval
        self._listener = listener
        self._failures = 0
        self._reason: str | None = None
        self._closed = asyncio.Event()
        self._closed.set()
        self._probing: asyncio.Task[None] | None = None

    @property
    def is_open(self) -> bool:
        return not self._closed.is_set()

    @property
    def reason(self) -> str | None:
        """Why the breaker is open (for the log and the operator), or None while closed."""
        return self._reason

    def record_success(self) -> None:
        self._failures = 0

    def record_failure(self, reason: str) -> None:
        """A transient upstream failure; the breaker opens after `threshold` of them in a row."""
        self._failures += 1
        if self._failures >= self._threshold:
            self.trip(reason)

    def trip(self, reason: str) -> None:
        """Open now (a failure no retry can fix, such as a rejected key)."""
        if self.is_open:
            return
        log.warning("Circuit breaker open: %s", reason)
        self._reason = reason
        self._closed.clear()
        self._probing = asyncio.create_task(self._probe_until_healthy(), name="circuit-breaker-probe")
        self._notify(True, reason)

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def aclose(self) -> None:
        if self._probing is not None:
            self._probing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probing

    async def _probe_until_healthy(self) -> None:
        while True:
            await asyncio.sleep(self._probe_interval)
            try:
                healthy = await self._probe()
            except Exception:
                log.exception("Circuit breaker probe raised")
                healthy = False
            if healthy:
                break
        log.warning("Circuit breaker closed: the upstream answers again")
        self._failures = 0
        self._reason = None
        self._closed.set()
        self._probing = None
        self._notify(False, "the upstream answers again")

    def _notify(self, is_open: bool, reason: str) -> None:
        if self._listener is None:
            return
        try:
            self._listener(is_open, reason)
        except Exception:
            log.exception("Circuit breaker listener failed")

"""The upstream's health as the pipeline sees it: the circuit breaker, its probe, and the operator's alerts.

Transient failures count towards opening the breaker; a rejected key or an empty balance opens it at once
(no job can succeed until the operator acts) and alerts the operator. While it is open, a cheap probe runs
until the upstream answers again. An empty balance is special: the probe's GET /models answers while the
account is empty, so only GET /balance showing a top-up closes a breaker that a 402 opened.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from generation.alerts import AlertKind, AlertThrottle
from generation.breaker import CircuitBreaker
from generation.failures import counts_against_upstream, is_service_problem
from toapis import AuthenticationError, ToAPIsClient, ToAPIsError

log = logging.getLogger(__name__)

BreakerListener = Callable[[bool], None]
"""Told `True` when the breaker opens and `False` when it closes again."""


class UpstreamHealth:
    """Owns the circuit breaker in front of ToAPIs and tells the operator when it opens and closes."""

    def __init__(
        self,
        client: ToAPIsClient,
        *,
        threshold: int,
        probe_interval: float,
        alerts: AlertThrottle | None = None,
    ) -> None:
        self._client = client
        self._alerts = alerts
        self._balance_exhausted = False
        self._listeners: list[BreakerListener] = []
        self.breaker = CircuitBreaker(
            threshold=threshold, probe=self._probe, probe_interval=probe_interval, listener=self._on_change
        )

    def listen(self, listener: BreakerListener) -> None:
        """Call `listener` on every change of the breaker (synchronously: it must not block)."""
        self._listeners.append(listener)

    @property
    def is_open(self) -> bool:
        return self.breaker.is_open

    def record_success(self) -> None:
        self.breaker.record_success()

    def record_failure(self, reason: str) -> None:
        self.breaker.record_failure(reason)

    def note_error(self, exc: ToAPIsError) -> None:
        """What an error raised before any task existed says about the upstream: a service problem trips the
        breaker, a transient failure counts towards it, a refusal of this request says nothing."""
        if is_service_problem(exc):
            self.service_problem(exc)
        elif counts_against_upstream(exc):
            self.breaker.record_failure(str(exc))

    def service_problem(self, exc: ToAPIsError) -> None:
        """The key was rejected or the balance is empty: alert the operator and stop taking jobs now."""
        kind = AlertKind.API_KEY_REJECTED if isinstance(exc, AuthenticationError) else AlertKind.BALANCE_EXHAUSTED
        if kind is AlertKind.BALANCE_EXHAUSTED:
            self._balance_exhausted = True
        if self._alerts is not None:
            self._alerts.raise_alert(kind, exc.message)
        self.breaker.trip(kind.value)

    async def wait_closed(self) -> None:
        await self.breaker.wait_closed()

    async def aclose(self) -> None:
        await self.breaker.aclose()

    async def _probe(self) -> bool:
        status = await self._client.check_health()
        if not status.ok:
            return False
        if self._balance_exhausted:
            balance = await self._client.get_balance()
            if balance.exhausted:
                return False
        return True

    def _on_change(self, is_open: bool, reason: str) -> None:
        if not is_open:
            self._balance_exhausted = False
        for listener in self._listeners:
            try:
                listener(is_open)
            except Exception:
                log.exception("A breaker listener failed")
        if self._alerts is None:
            return
        if is_open:
            # "Back" is over when it goes down again, not when it comes back: with several processes, the
            # first to see it back claims the burst, and the others' "back" is part of it.
            self._alerts.resolve(AlertKind.UPSTREAM_BACK)
            if reason not in (AlertKind.API_KEY_REJECTED.value, AlertKind.BALANCE_EXHAUSTED.value):
                self._alerts.raise_alert(AlertKind.UPSTREAM_DOWN, reason)
        else:
            for kind in AlertKind:
                if kind is not AlertKind.UPSTREAM_BACK:
                    self._alerts.resolve(kind)
            self._alerts.raise_alert(AlertKind.UPSTREAM_BACK, "")

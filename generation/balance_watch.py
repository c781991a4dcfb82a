"""The ToAPIs balance, read every ten minutes: for the metrics, `/imagine-admin status`, and LOW_BALANCE_ALERT.

The operator is alerted once each time the credits cross below the threshold (in the log, and through
OPERATOR_ALERT_WEBHOOK_URL where set); a top-up above it arms the alert again. An account whose quota is
unlimited is read once and then left alone: there is nothing to watch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from generation.alerts import AlertKind, AlertThrottle
from generation.metrics import Metrics
from toapis import AccountBalance, ToAPIsClient, ToAPIsError

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 600.0


@dataclass(frozen=True)
class BalanceReading:
    """A balance as read, and when (`time.time()`)."""

    balance: AccountBalance
    read_at: float


class BalanceWatch:
    """Reads the balance every `interval` seconds and alerts once per crossing below `threshold` credits."""

    def __init__(
        self,
        client: ToAPIsClient,
        *,
        threshold: float | None,
        alerts: AlertThrottle | None,
        metrics: Metrics | None = None,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self._client = client
        self._threshold = threshold
        self._alerts = alerts
        self._metrics = metrics if metrics is not None else Metrics()
        self._interval = interval
        # Unknown until the first reading: a crossing may have been told (and the claim kept in the database) by an
        # earlier process; the first reading above the threshold ends it, whoever told it.
        self._below: bool | None = None
        self.last: BalanceReading | None = None

    async def run(self) -> None:
        """Read now and every `interval` seconds, until cancelled (or for good once the account is unlimited)."""
        while True:
            reading = await self.read()
            if reading is not None and reading.balance.unlimited:
                log.info("The ToAPIs account's quota is unlimited: its balance is not watched")
                return
            await asyncio.sleep(self._interval)

    async def read(self) -> BalanceReading | None:
        """Read the balance once and act on it; None when it could not be read (logged)."""
        try:
            balance = await self._client.get_balance()
        except ToAPIsError as exc:
            log.warning("Could not read the ToAPIs balance: %s", exc)
            return None
        if not balance.found:
            log.warning("ToAPIs found no account for the key when asked for its balance")
            return None
        reading = BalanceReading(balance, time.time())
        self.last = reading
        self._metrics.balance(None if balance.unlimited else balance.remain_credits)
        self._check(balance)
        return reading

    def _check(self, balance: AccountBalance) -> None:
        credits, threshold = balance.remain_credits, self._threshold
        if threshold is None or credits is None or balance.unlimited:
            return
        if credits >= threshold:
            if self._below:
                log.info("The ToAPIs balance is back above LOW_BALANCE_ALERT (%g credits)", credits)
            if self._below is not False and self._alerts is not None:
                self._alerts.resolve(AlertKind.LOW_BALANCE)
            self._below = False
            return
        if self._below:
            return
        self._below = True
        detail = f"{credits:,.0f} credits left; LOW_BALANCE_ALERT is {threshold:,g}"
        if self._alerts is not None:
            self._alerts.raise_alert(AlertKind.LOW_BALANCE, detail)
        else:
            log.warning("Operator alert: %s %s", AlertKind.LOW_BALANCE.value, detail)

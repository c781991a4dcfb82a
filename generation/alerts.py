"""Operator alerts, once per burst.

When the API key is rejected every job fails the same way; the operator needs to hear it once, not once per
job. An alert of a kind is passed on, then further alerts of that kind are held back until `quiet_period` has
passed without one (the burst is over), or until the problem is resolved.

Processes sharing a database (several shards) each notice the same problem: each tells the servers it serves,
but the operator's webhook hears of a burst once in all. With `shared`, the first process to report a burst
claims it there, and only the alert that claimed it goes to the operator (`Alert.to_operator`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

log = logging.getLogger(__name__)


class AlertKind(StrEnum):
    API_KEY_REJECTED = "api_key_rejected"
    BALANCE_EXHAUSTED = "balance_exhausted"
    UPSTREAM_DOWN = "upstream_down"
    UPSTREAM_BACK = "upstream_back"
    LOW_BALANCE = "low_balance"
    WEBHOOK_NOT_CONFIGURED = "webhook_not_configured"


# What the operator reads; no member data and no secrets.
ALERT_TEXT: dict[AlertKind, str] = {
    AlertKind.API_KEY_REJECTED: "ToAPIs rejected the API key: generation is stopped until TOAPIS_API_KEY is fixed.",
    AlertKind.BALANCE_EXHAUSTED: "The ToAPIs account balance is too low: image generation fails until it is topped up.",
    AlertKind.UPSTREAM_DOWN: "ToAPIs is not answering: new /imagine requests are refused until it recovers.",
    AlertKind.UPSTREAM_BACK: "ToAPIs answers again: /imagine works again.",
    AlertKind.LOW_BALANCE: "The ToAPIs balance fell below LOW_BALANCE_ALERT: top it up before generation stops.",
    AlertKind.WEBHOOK_NOT_CONFIGURED: (
        "ToAPIs refuses callback_url: task webhooks are not set up for this key's Token, or WEBHOOK_PUBLIC_URL's "
        "scheme, host or port differ from its URL, so Imagine polls instead. Turn Task Webhooks on in the ToAPIs "
        "console with that URL (docs/operators.md)."
    ),
}

# Alerts for the operator alone (the log and their webhook): server admins cannot act on them.
OPERATOR_ONLY: frozenset[AlertKind] = frozenset({AlertKind.LOW_BALANCE, AlertKind.WEBHOOK_NOT_CONFIGURED})
# Alerts about a state that lasts until it is resolved, however long: told once until then, whichever process
# reports it and however late it starts, rather than again after each quiet period.
UNTIL_RESOLVED: frozenset[AlertKind] = frozenset({AlertKind.LOW_BALANCE})


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    detail: str
    to_operator: bool = True
    """Whether this process tells the operator's webhook: False when another process sharing the database
    already did for this burst."""

    @property
    def text(self) -> str:
        return f"{ALERT_TEXT[self.kind]} ({self.detail})" if self.detail else ALERT_TEXT[self.kind]


AlertSink = Callable[[Alert], None]


class SharedBursts(Protocol):
    """Bursts as every process sharing the database sees them (storage/alert_bursts.py)."""

    async def begin(self, kind: str, quiet_seconds: float) -> bool:
        """Whether this report claims the burst of `kind`: none was claimed within `quiet_seconds`."""
        ...

    async def end(self, kind: str) -> None:
        """The problem is over: the next report of `kind` claims a new burst."""
        ...


class AlertThrottle:
    """Passes the first alert of a burst to `sink` and holds back the rest of it."""

    def __init__(
        self,
        sink: AlertSink,
        *,
        quiet_period: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedBursts | None = None,
    ):
        self._sink = sink
        self._quiet_period = quiet_period
        self._clock = clock
        self._last_seen: dict[AlertKind, float] = {}
        self._shared = shared
        self._tail: asyncio.Task[None] | None = None

    def raise_alert(self, kind: AlertKind, detail: str = "") -> bool:
        """Report `kind`; returns whether it was passed on (False: part of a burst already reported)."""
        now = self._clock()
        last = self._last_seen.get(kind)
        self._last_seen[kind] = now
        if last is not None and now - last < self._quiet_period:
            return False
        log.warning("Operator alert: %s %s", kind.value, detail)
        if self._shared is None:
            self._pass_on(Alert(kind, detail))
        else:
            self._in_order(self._claim_and_pass_on(self._shared, kind, detail))
        return True

    def resolve(self, kind: AlertKind) -> None:
        """The problem is over: the next alert of this kind starts a new burst."""
        self._last_seen.pop(kind, None)
        if self._shared is not None:
            self._in_order(self._shared.end(kind.value))

    async def idle(self) -> None:
        """Wait until every alert and resolution so far has been handled (with `shared`, they take a while)."""
        while self._tail is not None and not self._tail.done():
            await asyncio.wait([self._tail])

    def _pass_on(self, alert: Alert) -> None:
        try:
            self._sink(alert)
        except Exception:
            log.exception("Alert sink failed")

    async def _claim_and_pass_on(self, shared: SharedBursts, kind: AlertKind, detail: str) -> None:
        try:
            first = await shared.begin(kind.value, math.inf if kind in UNTIL_RESOLVED else self._quiet_period)
        except Exception:
            # Better told twice than never: the operator is the one who can fix it.
            log.exception("Could not check whether another process already reported the alert")
            first = True
        self._pass_on(Alert(kind, detail, to_operator=first))

    def _in_order(self, step: Coroutine[Any, Any, None]) -> None:
        """Run `step` once the steps asked for before it are done: a burst is never ended before it was
        claimed, nor an alert passed on before the one raised before it."""
        previous = self._tail

        async def run() -> None:
            if previous is not None:
                await asyncio.wait([previous])
            try:
                await step
            except Exception:
                log.exception("Could not end an alert burst shared with the other processes")

        self._tail = asyncio.create_task(run(), name="operator-alert")

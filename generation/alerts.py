"""Operator alerts, once per burst.

When the API key is rejected every job fails the same way; the operator needs to hear it once, not once per
job. An alert of a kind is passed on, then further alerts of that kind are held back until `quiet_period` has
passed without one (the burst is over), or until the problem is resolved.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

log = logging.getLogger(__name__)


class AlertKind(StrEnum):
    API_KEY_REJECTED = "api_key_rejected"
    BALANCE_EXHAUSTED = "balance_exhausted"
    UPSTREAM_DOWN = "upstream_down"
    UPSTREAM_BACK = "upstream_back"
    LOW_BALANCE = "low_balance"


# What the operator reads; no member data and no secrets.
ALERT_TEXT: dict[AlertKind, str] = {
    AlertKind.API_KEY_REJECTED: "ToAPIs rejected the API key: generation is stopped until TOAPIS_API_KEY is fixed.",
    AlertKind.BALANCE_EXHAUSTED: "The ToAPIs account balance is too low: image generation fails until it is topped up.",
    AlertKind.UPSTREAM_DOWN: "ToAPIs is not answering: new /imagine requests are refused until it recovers.",
    AlertKind.UPSTREAM_BACK: "ToAPIs answers again: /imagine works again.",
    AlertKind.LOW_BALANCE: "The ToAPIs balance fell below LOW_BALANCE_ALERT: top it up before generation stops.",
}

# Alerts for the operator alone (the log and their webhook): server admins cannot act on them.
OPERATOR_ONLY: frozenset[AlertKind] = frozenset({AlertKind.LOW_BALANCE})


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    detail: str

    @property
    def text(self) -> str:
        return f"{ALERT_TEXT[self.kind]} ({self.detail})" if self.detail else ALERT_TEXT[self.kind]


AlertSink = Callable[[Alert], None]


class AlertThrottle:
    """Passes the first alert of a burst to `sink` and holds back the rest of it."""

    def __init__(self, sink: AlertSink, *, quiet_period: float = 600.0, clock: Callable[[], float] = time.monotonic):
        self._sink = sink
        self._quiet_period = quiet_period
        self._clock = clock
        self._last_seen: dict[AlertKind, float] = {}

    def raise_alert(self, kind: AlertKind, detail: str = "") -> bool:
        """Report `kind`; returns whether it was passed on (False: part of a burst already reported)."""
        now = self._clock()
        last = self._last_seen.get(kind)
        self._last_seen[kind] = now
        if last is not None and now - last < self._quiet_period:
            return False
        log.warning("Operator alert: %s %s", kind.value, detail)
        try:
            self._sink(Alert(kind, detail))
        except Exception:
            log.exception("Alert sink failed")
        return True

    def resolve(self, kind: AlertKind) -> None:
        """The problem is over: the next alert of this kind starts a new burst."""
        self._last_seen.pop(kind, None)

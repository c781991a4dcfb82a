"""Bursts of operator alerts as every process sharing the database sees them (docs/operators.md, Alerts).

Each process holds back the repeats of its own alerts; the operator's webhook must hear of a burst once in
all, so the first process to report one claims it here, and a resolved problem's claim is dropped.
"""

from __future__ import annotations

import math
from typing import Final

from storage.clock import Clock, to_epoch_ms, utc_now
from storage.database import Database

# Earlier than any claim's time (milliseconds since 1970): no claim is that old.
_BEFORE_ANY_CLAIM: Final = -(2**62)


class AlertBursts:
    """Claims of alert bursts, one row per kind of alert."""

    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def begin(self, kind: str, quiet_seconds: float) -> bool:
        """Claim the burst of `kind` unless it was claimed less than `quiet_seconds` ago (infinite: unless it was
        claimed and not ended); returns whether this call claimed it. One statement: of processes reporting at
        once, exactly one claims the burst."""
        now = to_epoch_ms(self._clock())
        quiet_since = now - round(quiet_seconds * 1000) if math.isfinite(quiet_seconds) else _BEFORE_ANY_CLAIM
        claimed = await self._db.execute(
            """
            INSERT INTO alert_bursts (kind, claimed_at) VALUES (:kind, :now)
            ON CONFLICT (kind) DO UPDATE SET claimed_at = excluded.claimed_at
            WHERE alert_bursts.claimed_at <= :quiet_since
            """,
            {"kind": kind, "now": now, "quiet_since": quiet_since},
        )
        return claimed > 0

    async def end(self, kind: str) -> None:
        """The problem is over: the next report of `kind` claims a new burst."""
        await self._db.execute("DELETE FROM alert_bursts WHERE kind = :kind", {"kind": kind})

"""What `/imagine-admin status` shows of the pipeline, the quotas, ToAPIs and the database (the Discord side,
shards and servers, is the cog's)."""

from __future__ import annotations

from dataclasses import dataclass

from generation.balance_watch import BalanceReading, BalanceWatch
from generation.pipeline import Pipeline
from storage.store import Storage


@dataclass(frozen=True)
class OperatorSnapshot:
    accepting: bool
    queued: int
    in_flight: int
    images_today: int
    global_daily_limit: int | None
    breaker_open: bool
    breaker_reason: str | None
    balance: BalanceReading | None
    database_bytes: int | None


class OperatorStatus:
    """Reads the figures of the operator's status, each from where it is kept."""

    def __init__(
        self, *, pipeline: Pipeline, store: Storage, balance: BalanceWatch, global_daily_limit: int | None
    ) -> None:
        self._pipeline = pipeline
        self._store = store
        self._balance = balance
        self._global_daily_limit = global_daily_limit

    async def snapshot(self) -> OperatorSnapshot:
        """The figures now; the balance is the last one read (read now if never)."""
        pipeline = self._pipeline
        balance = self._balance.last or await self._balance.read()
        return OperatorSnapshot(
            accepting=pipeline.accepting,
            queued=pipeline.queued,
            in_flight=pipeline.in_flight,
            images_today=await self._store.quotas.images_today(),
            global_daily_limit=self._global_daily_limit,
            breaker_open=pipeline.breaker.is_open,
            breaker_reason=pipeline.breaker.reason,
            balance=balance,
            database_bytes=await self._store.db.size_bytes(),
        )

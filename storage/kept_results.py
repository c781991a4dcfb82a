"""Results nobody could receive, kept so that the member can find them later (docs/guarantees.md).

When the channel refused the result and so did the member's direct messages, the job's images are refunded
(the member received nothing) and its result files are kept here, until RETENTION_DAYS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from storage.clock import Clock, to_epoch_ms, utc_now
from storage.database import Database


@dataclass(frozen=True)
class KeptResult:
    data: bytes = field(repr=False)
    mime_type: str


class KeptResults:
    """Keeps, loads and purges the results of jobs that could not be delivered."""

    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def keep(self, job_id: str, results: Sequence[KeptResult]) -> None:
        """Keep a job's results, in order (replacing any kept before)."""
        now = to_epoch_ms(self._clock())
        async with self._db.transaction():
            await self._db.execute("DELETE FROM kept_results WHERE job_id = :job_id", {"job_id": job_id})
            await self._db.execute_many(
                """
                INSERT INTO kept_results (job_id, position, data, mime_type, created_at)
                VALUES (:job_id, :position, :data, :mime_type, :now)
                """,
                [
                    {
                        "job_id": job_id,
                        "position": index,
                        "data": result.data,
                        "mime_type": result.mime_type,
                        "now": now,
                    }
                    for index, result in enumerate(results)
                ],
            )

    async def load(self, job_id: str) -> list[KeptResult]:
        """The job's kept results, in order (empty if none)."""
        rows = await self._db.fetch_all(
            "SELECT data, mime_type FROM kept_results WHERE job_id = :job_id ORDER BY position", {"job_id": job_id}
        )
        return [KeptResult(bytes(row["data"]), row["mime_type"]) for row in rows]

    async def purge_older_than(self, cutoff: datetime) -> int:
        """Delete results kept before `cutoff`; how many rows."""
        return await self._db.execute(
            "DELETE FROM kept_results WHERE created_at < :cutoff", {"cutoff": to_epoch_ms(cutoff)}
        )

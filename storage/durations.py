"""How long recent tasks took, per model and resolution: what the time left and the look-up schedule are
estimated from (generation/durations.py). Only the latest `keep` of each kind are kept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.clock import Clock, from_epoch_ms, to_epoch_ms, utc_now
from storage.database import Database


@dataclass(frozen=True)
class TaskDuration:
    """One finished task: its kind, how long it took (seconds) and when it was seen to end."""

    model: str
    resolution: str
    seconds: float
    finished_at: datetime


class TaskDurationRepository:
    """Records durations, trimming each kind to its latest ones, and reads them all back at start-up."""

    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def record(self, job_id: str, model: str, resolution: str, seconds: float, *, keep: int) -> None:
        """Record a job's task duration (once per job), then forget all but the latest `keep` of its kind."""
        params = {"model": model, "resolution": resolution}
        async with self._db.transaction():
            await self._db.execute(
                """
                INSERT INTO task_durations (job_id, model, resolution, duration_ms, finished_at)
                VALUES (:job_id, :model, :resolution, :duration_ms, :finished_at)
                ON CONFLICT (job_id) DO NOTHING
                """,
                {
                    **params,
                    "job_id": job_id,
                    "duration_ms": max(round(seconds * 1000), 0),
                    "finished_at": to_epoch_ms(self._clock()),
                },
            )
            await self._db.execute(
                """
                DELETE FROM task_durations
                WHERE model = :model AND resolution = :resolution AND job_id NOT IN (
                    SELECT job_id FROM task_durations WHERE model = :model AND resolution = :resolution
                    ORDER BY finished_at DESC, job_id DESC LIMIT :keep
                )
                """,
                {**params, "keep": keep},
            )

    async def latest(self, keep: int) -> list[TaskDuration]:
        """The latest `keep` durations of every kind, oldest first (another process may have added more)."""
        rows = await self._db.fetch_all(
            """
            SELECT model, resolution, duration_ms, finished_at FROM (
                SELECT model, resolution, duration_ms, finished_at, job_id, ROW_NUMBER() OVER (
                    PARTITION BY model, resolution ORDER BY finished_at DESC, job_id DESC
                ) AS newness
                FROM task_durations
            ) AS ranked
            WHERE newness <= :keep
            ORDER BY finished_at, job_id
            """,
            {"keep": keep},
        )
        return [
            TaskDuration(row["model"], row["resolution"], row["duration_ms"] / 1000, from_epoch_ms(row["finished_at"]))
            for row in rows
        ]

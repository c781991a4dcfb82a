"""ToAPIs webhook events as the database keeps them (docs/architecture.md, "Webhooks").

Each event id is recorded before its webhook is answered (`record`: one `INSERT … ON CONFLICT DO NOTHING`, so
of two deliveries of one event, in one process or several, exactly one is taken) and kept 25 hours (`prune`).
An event whose task this process could not wake (another process follows it, or nobody yet) names the process
that must (`wake_owner`); that process reads what is left for it (`wakes_for`) and clears it (`clear_wakes`).
On PostgreSQL the owner is also told at once (NOTIFY, heard through `listening_for_wakes`), so that it need not
wait for its next read.
The setup problems ToAPIs reported (`webhook_not_configured`) are kept for the operator (`note_problem`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from storage.clock import Clock, from_epoch_ms, to_epoch_ms, utc_now
from storage.database import Database, Row
from storage.jobs import JobState

WAKE_CHANNEL: Final = "imagine_webhook_wakes"
"""The channel on which a process is told that a wake-up was left for it; the payload is its owner name."""


@dataclass(frozen=True)
class EventTarget:
    """The unfinished job an event is about, where it stands, and the process that holds its lease (None: nobody,
    or no leases)."""

    job_id: str
    lease_owner: str | None
    state: JobState

    @property
    def awaits_its_task(self) -> bool:
        """Whether the job still waits for its task to end (submitting or running): only then is there a follower
        to wake, now or once the submit is answered."""
        return self.state in (JobState.SUBMITTING, JobState.RUNNING)


@dataclass(frozen=True)
class PendingWake:
    """A wake-up left for a process: the task to look up, and where its job stands now."""

    event_id: str
    task_id: str
    job_finished: bool
    """True when the job is finished or gone: nothing is left to wake."""
    lease_owner: str | None


@dataclass(frozen=True)
class WebhookProblem:
    problem: str
    noted_at: datetime
    detail: str


class WebhookEvents:
    """Received events, the wake-ups left for a process, and the setup problems ToAPIs reported."""

    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def target(self, *, task_id: str, job_id: str | None) -> EventTarget | None:
        """The unfinished job following `task_id`: the job `job_id` names (the event's business id, which Imagine
        sets to the job's id) if its task is that one or not known yet, else the job with that task id."""
        if job_id is not None:
            row = await self._db.fetch_one(
                """
                SELECT id, lease_owner, state FROM jobs
                WHERE id = :job_id AND (task_id IS NULL OR task_id = :task_id) AND state NOT IN ('completed', 'failed')
                """,
                {"job_id": job_id, "task_id": task_id},
            )
            if row is not None:
                return _target(row)
        row = await self._db.fetch_one(
            """
            SELECT id, lease_owner, state FROM jobs
            WHERE task_id = :task_id AND state NOT IN ('completed', 'failed')
            """,
            {"task_id": task_id},
        )
        return None if row is None else _target(row)

    async def record(
        self, event_id: str, *, task_id: str | None, job_id: str | None, wake_owner: str | None = None
    ) -> bool:
        """Record an event: True the first time, False for a repeat (which must change nothing)."""
        inserted = await self._db.execute(
            """
            INSERT INTO webhook_events (event_id, task_id, job_id, received_at, wake_owner)
            VALUES (:event_id, :task_id, :job_id, :now, :wake_owner)
            ON CONFLICT (event_id) DO NOTHING
            """,
            {
                "event_id": event_id,
                "task_id": task_id,
                "job_id": job_id,
                "now": to_epoch_ms(self._clock()),
                "wake_owner": wake_owner,
            },
        )
        if inserted and wake_owner is not None:
            await self._db.notify(WAKE_CHANNEL, wake_owner)
        return inserted > 0

    def listening_for_wakes(
        self, owner: str, heard: Callable[[], None]
    ) -> AbstractAsyncContextManager[Callable[[], bool]]:
        """For the block, call `heard()` whenever a wake-up is left for `owner` (PostgreSQL; never on SQLite, whose
        one process wakes its own followers); the block gets whether notifications still arrive."""

        def told(payload: str) -> None:
            if payload == owner:
                heard()

        return self._db.listening(WAKE_CHANNEL, told)

    async def wakes_for(self, owner: str) -> list[PendingWake]:
        """The wake-ups left for `owner`, oldest first (a handful at most: each is cleared once done)."""
        rows = await self._db.fetch_all(
            """
            SELECT w.event_id, w.task_id, j.state, j.lease_owner
            FROM webhook_events w LEFT JOIN jobs j ON j.id = w.job_id
            WHERE w.wake_owner = :owner
            ORDER BY w.received_at
            """,
            {"owner": owner},
        )
        return [
            PendingWake(
                event_id=row["event_id"],
                task_id=row["task_id"] or "",
                job_finished=row["state"] is None or row["state"] in ("completed", "failed"),
                lease_owner=row["lease_owner"],
            )
            for row in rows
        ]

    async def clear_wakes(self, event_ids: Sequence[str]) -> None:
        """Those wake-ups are done (or no longer needed); the events stay recorded."""
        if not event_ids:
            return
        await self._db.execute_many(
            "UPDATE webhook_events SET wake_owner = NULL WHERE event_id = :event_id",
            [{"event_id": event_id} for event_id in event_ids],
        )

    async def prune(self, retention: timedelta) -> int:
        """Forget the events received more than `retention` ago; returns how many."""
        before = to_epoch_ms(self._clock() - retention)
        return await self._db.execute("DELETE FROM webhook_events WHERE received_at < :before", {"before": before})

    # -- setup problems ----------------------------------------------------------------------------------------

    async def note_problem(self, problem: str, detail: str) -> bool:
        """Record that ToAPIs reported `problem` now; True when it was not already on record (tell the operator)."""
        params = {"problem": problem, "now": to_epoch_ms(self._clock()), "detail": detail}
        inserted = await self._db.execute(
            """
            INSERT INTO webhook_problems (problem, noted_at, detail) VALUES (:problem, :now, :detail)
            ON CONFLICT (problem) DO NOTHING
            """,
            params,
        )
        if inserted:
            return True
        await self._db.execute(
            "UPDATE webhook_problems SET noted_at = :now, detail = :detail WHERE problem = :problem", params
        )
        return False

    async def clear_problem(self, problem: str) -> bool:
        """The problem is over; True when it was on record."""
        return await self._db.execute("DELETE FROM webhook_problems WHERE problem = :problem", {"problem": problem}) > 0

    async def problems(self) -> list[WebhookProblem]:
        rows = await self._db.fetch_all("SELECT problem, noted_at, detail FROM webhook_problems ORDER BY problem")
        return [WebhookProblem(row["problem"], from_epoch_ms(row["noted_at"]), row["detail"]) for row in rows]


def _target(row: Row) -> EventTarget:
    return EventTarget(row["id"], row["lease_owner"], JobState(row["state"]))

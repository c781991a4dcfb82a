"""The usage log: one row per job, successful or not, kept for good (docs/guarantees.md).

Writing a job twice updates its row (the pipeline records a job when it ends, and may record it again after
a crash); it never duplicates it. The queries serve `/quota usage` (by member, by day, per member over a
period) and `/quota export`, which streams the log as CSV without holding it in memory.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any, Final, cast

from storage.clock import Clock, from_epoch_ms, optional_from_epoch_ms, optional_to_epoch_ms, to_epoch_ms, utc_now
from storage.database import Database, Row
from storage.jobs import Job

log = logging.getLogger(__name__)

_DAY_MS: Final = 86_400_000
FAILED_STATUS: Final = "failed"
BLOCKED_STATUS: Final = "blocked"
"""A prompt refused for a server's blocked word: in the log (and the export) with 0 images, never a job."""

CSV_COLUMNS: Final = (
    "job_id",
    "guild_id",
    "channel_id",
    "user_id",
    "prompt",
    "model",
    "aspect",
    "resolution",
    "n",
    "images",
    "weight",
    "weighted_images",
    "reference_count",
    "task_id",
    "status",
    "error",
    "created_at",
    "finished_at",
    "source",
)

# A stored error starts with its code (`record_job`): a failure kind, lowercase words joined by underscores.
_ERROR_CODE: Final = re.compile(r"[a-z][a-z0-9_]*")

# A spreadsheet runs a cell that starts with one of these as a formula: a prompt must stay text.
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class UsageEntry:
    """One job in the usage log. `images` is what was delivered; `n` what was asked for; each image counts as
    `weight` images in quotas and usage figures."""

    job_id: str
    guild_id: int
    channel_id: int
    user_id: int
    prompt: str
    model: str
    n: int
    images: int
    reference_count: int
    task_id: str | None
    status: str
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    aspect: str = "1:1"
    resolution: str = "1k"
    weight: int = 1
    source: str = "command"
    """How the member asked: command, button, form or message (storage/jobs.py, `JobKind.source`)."""

    @property
    def weighted_images(self) -> int:
        """What the delivered images counted as."""
        return self.images * self.weight


@dataclass(frozen=True)
class DailyUsage:
    """A guild's jobs on one UTC day; `images` counts weighted images (what quotas count). Prompts refused for a
    blocked word are no job: `blocked` counts them."""

    day: date
    jobs: int
    images: int
    failures: int
    blocked: int = 0


@dataclass(frozen=True)
class MemberUsageSummary:
    """One member's jobs in a period; `images` counts weighted images (what quotas count). Prompts refused for a
    blocked word are no job: `blocked` counts them."""

    user_id: int
    jobs: int
    images: int
    failures: int
    blocked: int = 0


def _entry_from_row(row: Row) -> UsageEntry:
    return UsageEntry(
        job_id=row["job_id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        user_id=row["user_id"],
        prompt=row["prompt"],
        model=row["model"],
        aspect=row["aspect"],
        resolution=row["resolution"],
        weight=row["weight"],
        n=row["n"],
        images=row["images"],
        reference_count=row["reference_count"],
        task_id=row["task_id"],
        status=row["status"],
        error=row["error"],
        created_at=from_epoch_ms(row["created_at"]),
        finished_at=optional_from_epoch_ms(row["finished_at"]),
        source=row["source"],
    )


_UPSERT: Final = """
    INSERT INTO usage_log (job_id, guild_id, channel_id, user_id, prompt, model, size, aspect, resolution, weight,
                           n, images, reference_count, task_id, status, error, created_at, finished_at, source)
    VALUES (:job_id, :guild_id, :channel_id, :user_id, :prompt, :model, :aspect, :aspect, :resolution, :weight,
            :n, :images, :reference_count, :task_id, :status, :error, :created_at, :finished_at, :source)
    ON CONFLICT (job_id) DO UPDATE SET
        guild_id = excluded.guild_id, channel_id = excluded.channel_id, user_id = excluded.user_id,
        prompt = excluded.prompt, model = excluded.model, size = excluded.size, aspect = excluded.aspect,
        resolution = excluded.resolution, weight = excluded.weight, n = excluded.n,
        images = excluded.images, reference_count = excluded.reference_count, task_id = excluded.task_id,
        status = excluded.status, error = excluded.error, created_at = excluded.created_at,
        finished_at = excluded.finished_at, source = excluded.source
"""


def _params(entry: UsageEntry) -> dict[str, Any]:
    return {
        "job_id": entry.job_id,
        "guild_id": entry.guild_id,
        "channel_id": entry.channel_id,
        "user_id": entry.user_id,
        "prompt": entry.prompt,
        "model": entry.model,
        "aspect": entry.aspect,
        "resolution": entry.resolution,
        "weight": entry.weight,
        "n": entry.n,
        "images": entry.images,
        "reference_count": entry.reference_count,
        "task_id": entry.task_id,
        "status": entry.status,
        "error": entry.error,
        "created_at": to_epoch_ms(entry.created_at),
        "finished_at": optional_to_epoch_ms(entry.finished_at),
        "source": entry.source,
    }


# What the summaries count: jobs (a blocked prompt is none), weighted images, failures, blocked prompts.
_COUNTS: Final = """
    COALESCE(SUM(CASE WHEN status = :blocked THEN 0 ELSE 1 END), 0) AS jobs,
    COALESCE(SUM(CASE WHEN status = :blocked THEN 0 ELSE images * weight END), 0) AS images,
    COALESCE(SUM(CASE WHEN status = :failed THEN 1 ELSE 0 END), 0) AS failures,
    COALESCE(SUM(CASE WHEN status = :blocked THEN 1 ELSE 0 END), 0) AS blocked
"""


def _time_range(start: datetime | None, end: datetime | None, params: dict[str, Any]) -> str:
    """SQL conditions for `start <= created_at < end` (either bound optional), filling `params`."""
    conditions = ""
    if start is not None:
        params["start"] = to_epoch_ms(start)
        conditions += " AND created_at >= :start"
    if end is not None:
        params["end"] = to_epoch_ms(end)
        conditions += " AND created_at < :end"
    return conditions


def _error_code(error: str | None) -> str:
    """What the export shows of a stored error: its code alone (a failure kind, such as `task_failed`). The rest
    is the service's or an exception's own words (a host name, say): for the operator, never a server's admins;
    a stored error without a code shows nothing."""
    code = (error or "").partition(":")[0].strip()
    return code if _ERROR_CODE.fullmatch(code) else ""


def _safe_cell(text: str | None) -> str:
    if text is None:
        return ""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _text_writer(file: IO[str] | IO[bytes]) -> Callable[[str], object]:
    """A function writing text to `file`, encoding it to UTF-8 if `file` is binary."""
    try:
        # A text file takes a str; a binary one refuses it. Works for any file-like, not only io classes.
        cast(IO[str], file).write("")
    except TypeError:
        binary = cast(IO[bytes], file)
        return lambda text: binary.write(text.encode("utf-8"))
    return cast(IO[str], file).write


class UsageLog:
    """Writes and queries the usage log."""

    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def record(
        self,
        *,
        job_id: str,
        guild_id: int,
        channel_id: int,
        user_id: int,
        prompt: str,
        model: str,
        n: int,
        images: int,
        reference_count: int,
        task_id: str | None,
        status: str,
        error: str | None,
        created_at: datetime,
        finished_at: datetime | None,
        aspect: str = "1:1",
        resolution: str = "1k",
        weight: int = 1,
        source: str = "command",
    ) -> None:
        """Write the job's row, or update it if the job was recorded before."""
        entry = UsageEntry(
            job_id=job_id,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            prompt=prompt,
            model=model,
            n=n,
            images=images,
            reference_count=reference_count,
            task_id=task_id,
            status=str(status),
            error=error,
            created_at=created_at,
            finished_at=finished_at,
            aspect=aspect,
            resolution=resolution,
            weight=weight,
            source=source,
        )
        await self._db.execute(_UPSERT, _params(entry))

    async def record_many(self, entries: Iterable[UsageEntry]) -> None:
        """Write (or update) many rows in one transaction: much faster than one `record` per row."""
        async with self._db.transaction():
            await self._db.execute_many(_UPSERT, (_params(entry) for entry in entries))

    async def record_job(self, job: Job) -> None:
        """Write a job's row from the job itself: its state is the status, its error code and message the error."""
        error = ": ".join(part for part in (job.error_code, job.error_message) if part) or None
        await self.record(
            job_id=job.id,
            guild_id=job.guild_id,
            channel_id=job.channel_id,
            user_id=job.user_id,
            prompt=job.prompt,
            model=job.model,
            aspect=job.aspect,
            resolution=job.resolution,
            weight=job.weight,
            n=job.n,
            images=job.images_delivered,
            reference_count=job.reference_count,
            task_id=job.task_id,
            status=job.state.value,
            error=error,
            created_at=job.created_at,
            finished_at=job.finished_at,
            source=job.kind.source,
        )

    async def get(self, job_id: str) -> UsageEntry | None:
        """The job's row, or `None`."""
        row = await self._db.fetch_one("SELECT * FROM usage_log WHERE job_id = :job_id", {"job_id": job_id})
        return None if row is None else _entry_from_row(row)

    async def for_member(
        self,
        guild_id: int,
        user_id: int,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        limit: int | None = None,
    ) -> list[UsageEntry]:
        """A member's jobs in a guild created in `[start, end)`, newest first, at most `limit` of them."""
        params: dict[str, Any] = {"guild_id": guild_id, "user_id": user_id}
        sql = "SELECT * FROM usage_log WHERE guild_id = :guild_id AND user_id = :user_id"
        sql += _time_range(start, end, params) + " ORDER BY created_at DESC, job_id DESC"
        if limit is not None:
            params["limit"] = limit
            sql += " LIMIT :limit"
        return [_entry_from_row(row) for row in await self._db.fetch_all(sql, params)]

    async def daily(self, guild_id: int, start: datetime, end: datetime) -> list[DailyUsage]:
        """A guild's jobs, images and failures per UTC day created in `[start, end)`; days without jobs omitted."""
        params: dict[str, Any] = {
            "guild_id": guild_id,
            "day_ms": _DAY_MS,
            "failed": FAILED_STATUS,
            "blocked": BLOCKED_STATUS,
        }
        # Integer division of epoch milliseconds gives the UTC day number, the same in SQLite and PostgreSQL.
        rows = await self._db.fetch_all(
            f"""
            SELECT created_at / :day_ms AS day_number, {_COUNTS}
            FROM usage_log
            WHERE guild_id = :guild_id{_time_range(start, end, params)}
            GROUP BY created_at / :day_ms
            ORDER BY day_number
            """,
            params,
        )
        return [
            DailyUsage(
                day=from_epoch_ms(row["day_number"] * _DAY_MS).date(),
                jobs=row["jobs"],
                images=row["images"],
                failures=row["failures"],
                blocked=row["blocked"],
            )
            for row in rows
        ]

    async def period_summary(self, guild_id: int, start: datetime, end: datetime) -> list[MemberUsageSummary]:
        """Per member of a guild, jobs, images and failures created in `[start, end)`; most images first.

        Reads only the covering index `usage_log_by_guild`.
        """
        params: dict[str, Any] = {"guild_id": guild_id, "failed": FAILED_STATUS, "blocked": BLOCKED_STATUS}
        rows = await self._db.fetch_all(
            f"""
            SELECT user_id, {_COUNTS}
            FROM usage_log
            WHERE guild_id = :guild_id{_time_range(start, end, params)}
            GROUP BY user_id
            ORDER BY images DESC, user_id
            """,
            params,
        )
        return [
            MemberUsageSummary(
                user_id=row["user_id"],
                jobs=row["jobs"],
                images=row["images"],
                failures=row["failures"],
                blocked=row["blocked"],
            )
            for row in rows
        ]

    async def export_csv(
        self,
        file: IO[str] | IO[bytes],
        *,
        guild_id: int | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        chunk_rows: int = 500,
    ) -> int:
        """Write the log (one guild's, or all; optionally created in `[start, end)`) as CSV; returns the row count.

        Rows stream from the database a chunk at a time and go to `file` as they come; a binary file gets
        UTF-8. The header is `CSV_COLUMNS`; instants are ISO 8601 UTC; `error` is the stored error's code only.
        A text cell that a spreadsheet would run as a formula (it starts with =, +, -, @) is written with a leading
        apostrophe.
        """
        params: dict[str, Any] = {}
        sql = "SELECT * FROM usage_log WHERE 1 = 1"
        if guild_id is not None:
            params["guild_id"] = guild_id
            sql += " AND guild_id = :guild_id"
        sql += _time_range(start, end, params) + " ORDER BY created_at, job_id"

        write = _text_writer(file)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        count = 0
        rows = self._db.iterate(sql, params, chunk_size=chunk_rows)
        try:
            async for row in rows:
                finished = row["finished_at"]
                writer.writerow(
                    (
                        row["job_id"],
                        row["guild_id"],
                        row["channel_id"],
                        row["user_id"],
                        _safe_cell(row["prompt"]),
                        row["model"],
                        row["aspect"],
                        row["resolution"],
                        row["n"],
                        row["images"],
                        row["weight"],
                        row["images"] * row["weight"],
                        row["reference_count"],
                        row["task_id"] or "",
                        row["status"],
                        _error_code(row["error"]),
                        from_epoch_ms(row["created_at"]).isoformat(),
                        "" if finished is None else from_epoch_ms(finished).isoformat(),
                        row["source"],
                    )
                )
                count += 1
                if count % chunk_rows == 0:
                    write(buffer.getvalue())
                    buffer.seek(0)
                    buffer.truncate()
        finally:
            await rows.aclose()
        write(buffer.getvalue())
        log.info("exported %s usage rows (guild %s)", count, guild_id if guild_id is not None else "all")
        return count

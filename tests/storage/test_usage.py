"""The usage log: one row per job, the queries behind /quota usage, and the streamed CSV export."""

from __future__ import annotations

import csv
import io
import tempfile
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from storage.database import Database
from storage.jobs import JobKind, JobRepository, JobState
from storage.usage import BLOCKED_STATUS, CSV_COLUMNS, UsageEntry, UsageLog
from tests.storage.conftest import FakeClock

GUILD = 900_000_000_000_000_001
OTHER_GUILD = 900_000_000_000_000_002
START = datetime(2026, 3, 1, tzinfo=UTC)

TRICKY_PROMPTS = [
    "plain",
    "commas, everywhere, really",
    'she said "hello" and left',
    "first line\nsecond line\r\nthird line",
    "unicode: 雪の富士山 🗻 — naïve café",
    "  leading and trailing spaces  ",
    "semi;colons;and|pipes\ttabs",
]


@pytest.fixture
def usage(db: Database, clock: FakeClock) -> UsageLog:
    return UsageLog(db, clock)


def entry(job_id: str, **overrides: Any) -> UsageEntry:
    return UsageEntry(**_values(job_id, **overrides))


async def record(usage: UsageLog, job_id: str, **overrides: Any) -> None:
    await usage.record(**_values(job_id, **overrides))


def _values(job_id: str, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "job_id": job_id,
        "guild_id": GUILD,
        "channel_id": 5,
        "user_id": 7,
        "prompt": "a cat",
        "model": "gpt-image-2",
        "aspect": "1:1",
        "resolution": "1k",
        "weight": 1,
        "n": 2,
        "images": 2,
        "reference_count": 0,
        "task_id": f"task-{job_id}",
        "status": "completed",
        "error": None,
        "created_at": START,
        "finished_at": START + timedelta(seconds=30),
    }
    values.update(overrides)
    return values


async def test_recording_a_job_twice_updates_its_row(usage: UsageLog, db: Database) -> None:
    await record(usage, "j1", status="running", images=0, finished_at=None, task_id=None)
    await record(usage, "j1", status="failed", images=0, error="content_policy: refused", task_id="t-1")
    assert await db.fetch_value("SELECT COUNT(*) FROM usage_log") == 1
    entry = await usage.get("j1")
    assert entry is not None
    assert (entry.status, entry.error, entry.task_id) == ("failed", "content_policy: refused", "t-1")
    assert entry.created_at == START
    assert entry.finished_at == START + timedelta(seconds=30)
    assert await usage.get("missing") is None


async def test_record_job_takes_everything_from_the_job(db: Database, usage: UsageLog, clock: FakeClock) -> None:
    jobs = JobRepository(db, clock)
    job = await jobs.create(
        guild_id=GUILD,
        channel_id=11,
        user_id=12,
        kind=JobKind.VARY,
        prompt="a dog",
        n=4,
        model="gpt-image-2",
        aspect="3:2",
        resolution="2k",
        weight=2,
        reference_count=1,
    )
    await jobs.set_state(job.id, JobState.RUNNING, task_id="task-x")
    await jobs.record_delivery(job.id, images_delivered=3, result_message_id=None)
    await jobs.set_state(job.id, JobState.DELIVERING)
    clock.advance(seconds=42)
    done = await jobs.set_state(job.id, JobState.COMPLETED)
    await usage.record_job(done)
    entry = await usage.get(job.id)
    assert entry is not None
    assert (entry.guild_id, entry.channel_id, entry.user_id, entry.prompt) == (GUILD, 11, 12, "a dog")
    assert (entry.aspect, entry.resolution, entry.weight, entry.weighted_images) == ("3:2", "2k", 2, 6)
    assert (entry.model, entry.n, entry.images, entry.reference_count) == (
        "gpt-image-2",
        4,
        3,
        1,
    )
    assert (entry.task_id, entry.status, entry.error) == ("task-x", "completed", None)
    assert (entry.created_at, entry.finished_at) == (done.created_at, done.finished_at)
    assert entry.source == "button"

    failed = await jobs.fail((await jobs.create(**_job_args())).id, "upstream_error", "HTTP 500")
    await usage.record_job(failed)
    failed_entry = await usage.get(failed.id)
    assert failed_entry is not None
    assert (failed_entry.status, failed_entry.error, failed_entry.images) == ("failed", "upstream_error: HTTP 500", 0)


def _job_args() -> dict[str, Any]:
    return {
        "guild_id": GUILD,
        "channel_id": 1,
        "user_id": 2,
        "kind": "imagine",
        "prompt": "p",
        "n": 1,
        "model": "m",
    }


async def test_record_many_writes_a_batch_and_updates_rows_already_there(usage: UsageLog, db: Database) -> None:
    await record(usage, "old", status="running", images=0)
    await usage.record_many([entry("old", status="completed", images=2), entry("new", user_id=8)])
    assert await db.fetch_value("SELECT COUNT(*) FROM usage_log") == 2
    old = await usage.get("old")
    assert old is not None
    assert (old.status, old.images) == ("completed", 2)


async def test_a_failing_batch_writes_nothing(usage: UsageLog, db: Database) -> None:
    naive = datetime(2026, 3, 1)  # naive on purpose: refused
    with pytest.raises(ValueError, match="naive datetime"):
        await usage.record_many([entry("a"), entry("b", created_at=naive)])
    assert await db.fetch_value("SELECT COUNT(*) FROM usage_log") == 0


async def test_for_member_returns_their_jobs_in_the_period_newest_first(usage: UsageLog) -> None:
    for day in range(5):
        await record(usage, f"mine{day}", created_at=START + timedelta(days=day))
    await record(usage, "someone else", user_id=8)
    await record(usage, "other guild", guild_id=OTHER_GUILD)
    entries = await usage.for_member(GUILD, 7, START + timedelta(days=1), START + timedelta(days=4))
    assert [e.job_id for e in entries] == ["mine3", "mine2", "mine1"]
    assert [e.job_id for e in await usage.for_member(GUILD, 7, limit=2)] == ["mine4", "mine3"]
    assert await usage.for_member(GUILD, 99) == []


async def test_daily_counts_images_and_failures_per_utc_day(usage: UsageLog) -> None:
    day1 = datetime(2026, 3, 1, tzinfo=UTC)
    await record(usage, "a", created_at=day1, images=2)
    await record(usage, "b", created_at=day1 + timedelta(hours=23, minutes=59, seconds=59), images=4)
    await record(usage, "c", created_at=day1 + timedelta(hours=12), images=0, status="failed", error="x")
    await record(usage, "d", created_at=day1 + timedelta(days=1), images=1)  # midnight: the next day
    await record(usage, "e", created_at=day1 + timedelta(days=3, hours=5), images=0, status="failed")
    await record(usage, "f", created_at=day1 + timedelta(days=9), images=3)  # outside the range
    await record(usage, "g", guild_id=OTHER_GUILD, created_at=day1, images=4)
    days = await usage.daily(GUILD, day1, day1 + timedelta(days=7))
    assert [(d.day, d.jobs, d.images, d.failures) for d in days] == [
        (date(2026, 3, 1), 3, 6, 1),
        (date(2026, 3, 2), 1, 1, 0),
        (date(2026, 3, 4), 1, 0, 1),
    ]


async def test_period_summary_per_member(usage: UsageLog) -> None:
    await usage.record_many(
        entry(f"m{member}-{job}", user_id=member, images=1 + job, created_at=START + timedelta(minutes=member))
        for member in range(1000)
        for job in range(member % 3 + 1)
    )
    await record(usage, "failed one", user_id=5, images=0, status="failed")
    await record(usage, "too late", user_id=5, images=4, created_at=START + timedelta(days=40))
    await record(usage, "elsewhere", user_id=5, images=4, guild_id=OTHER_GUILD)

    summary = await usage.period_summary(GUILD, START, START + timedelta(days=31))
    assert len(summary) == 1000
    by_member = {s.user_id: s for s in summary}
    assert (by_member[0].jobs, by_member[0].images, by_member[0].failures) == (1, 1, 0)
    assert (by_member[2].jobs, by_member[2].images, by_member[2].failures) == (3, 6, 0)
    # member 5 (5 % 3 == 2: three jobs, 6 images) plus one failure in the period
    assert (by_member[5].jobs, by_member[5].images, by_member[5].failures) == (4, 6, 1)
    assert [s.images for s in summary] == sorted((s.images for s in summary), reverse=True)
    assert await usage.period_summary(GUILD, START - timedelta(days=10), START) == []


async def test_blocked_prompts_count_as_no_job_and_no_image_but_are_counted_apart(usage: UsageLog) -> None:
    await record(usage, "made", images=2)
    await record(usage, "blocked-1", status=BLOCKED_STATUS, images=0, n=3, task_id=None)
    await record(usage, "blocked-2", status=BLOCKED_STATUS, images=0, user_id=8, task_id=None)
    await record(usage, "failed", images=0, status="failed")

    summary = await usage.period_summary(GUILD, START, START + timedelta(days=1))
    assert [(s.user_id, s.jobs, s.images, s.failures, s.blocked) for s in summary] == [(7, 2, 2, 1, 1), (8, 0, 0, 0, 1)]
    (day,) = await usage.daily(GUILD, START, START + timedelta(days=1))
    assert (day.jobs, day.images, day.failures, day.blocked) == (2, 2, 1, 2)
    file = io.BytesIO()
    assert await usage.export_csv(file, guild_id=GUILD) == 4
    rows = list(csv.DictReader(io.StringIO(file.getvalue().decode("utf-8"))))
    assert sorted((row["job_id"], row["status"], row["images"]) for row in rows if row["status"] == "blocked") == [
        ("blocked-1", "blocked", "0"),
        ("blocked-2", "blocked", "0"),
    ]


# -- CSV export ----------------------------------------------------------------------------------------------------


class CountingBinaryFile(io.BytesIO):
    """A binary file that counts its writes: a streamed export writes many times, in chunks."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, data: Any) -> int:
        self.writes += 1
        return super().write(data)


async def test_export_streams_10000_rows_with_proper_quoting(usage: UsageLog) -> None:
    await usage.record_many(
        entry(
            f"job{i:05d}",
            prompt=TRICKY_PROMPTS[i % len(TRICKY_PROMPTS)] + f" #{i}",
            user_id=i % 37,
            created_at=START + timedelta(seconds=i),
            error='task_failed: upstream said "no", twice\nreally' if i % 10 == 0 else None,
            task_id=None if i % 10 == 0 else f"task-{i}",
        )
        for i in range(10_000)
    )
    out = CountingBinaryFile()
    count = await usage.export_csv(out, guild_id=GUILD, chunk_rows=500)
    assert count == 10_000
    assert out.writes >= 10_000 // 500  # written as it streamed, not in one piece at the end
    parsed = list(csv.reader(io.StringIO(out.getvalue().decode("utf-8"), newline="")))
    assert tuple(parsed[0]) == CSV_COLUMNS
    body = parsed[1:]
    assert len(body) == 10_000
    column = {name: index for index, name in enumerate(CSV_COLUMNS)}
    for i, row in enumerate(body):
        assert row[column["job_id"]] == f"job{i:05d}"
        assert row[column["prompt"]] == TRICKY_PROMPTS[i % len(TRICKY_PROMPTS)] + f" #{i}"
        assert row[column["user_id"]] == str(i % 37)
        assert row[column["guild_id"]] == str(GUILD)
        assert row[column["created_at"]] == (START + timedelta(seconds=i)).isoformat()
    assert body[10][column["error"]] == "task_failed"
    assert body[10][column["task_id"]] == ""
    assert body[11][column["error"]] == ""
    assert body[11][column["finished_at"]] == (START + timedelta(seconds=30)).isoformat()


async def test_export_to_a_text_file_for_a_date_range(usage: UsageLog) -> None:
    for day in range(10):
        await record(usage, f"d{day}", created_at=START + timedelta(days=day), prompt=f"day {day}, 🎨")
    await record(usage, "other guild", guild_id=OTHER_GUILD, created_at=START + timedelta(days=3))
    out = io.StringIO(newline="")
    count = await usage.export_csv(out, guild_id=GUILD, start=START + timedelta(days=2), end=START + timedelta(days=5))
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert count == 3
    assert [(r["job_id"], r["prompt"]) for r in rows] == [("d2", "day 2, 🎨"), ("d3", "day 3, 🎨"), ("d4", "day 4, 🎨")]
    everything = io.StringIO(newline="")
    assert await usage.export_csv(everything) == 11


async def test_export_to_a_spooled_temporary_file_in_either_mode(usage: UsageLog) -> None:
    await record(usage, "j", prompt='naïve, "quoted"')
    with tempfile.SpooledTemporaryFile(mode="w+", newline="") as text_file:
        assert await usage.export_csv(text_file) == 1
        text_file.seek(0)
        assert next(iter(csv.DictReader(text_file)))["prompt"] == 'naïve, "quoted"'
    with tempfile.SpooledTemporaryFile(mode="w+b") as binary_file:
        assert await usage.export_csv(binary_file) == 1
        binary_file.seek(0)
        assert 'naïve, ""quoted""' in binary_file.read().decode("utf-8")


async def test_export_of_an_empty_log_is_just_the_header(usage: UsageLog) -> None:
    out = io.BytesIO()
    assert await usage.export_csv(out, guild_id=GUILD) == 0
    assert out.getvalue().decode() == ",".join(CSV_COLUMNS) + "\r\n"


async def test_export_keeps_prompts_from_running_as_spreadsheet_formulas(usage: UsageLog) -> None:
    await record(usage, "f1", prompt='=HYPERLINK("http://evil.example","click")', error="-1 images")
    await record(usage, "f2", prompt="@SUM(A1)", created_at=START + timedelta(seconds=1))
    out = io.StringIO(newline="")
    await usage.export_csv(out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert [r["prompt"] for r in rows] == ['\'=HYPERLINK("http://evil.example","click")', "'@SUM(A1)"]
    assert rows[0]["error"] == ""  # no code: nothing of it shows


@pytest.mark.parametrize(
    ("kind", "source"),
    [
        ("imagine", "command"),
        ("reroll", "button"),
        ("vary", "button"),
        ("context", "form"),
        ("remix", "form"),
        ("message", "message"),
    ],
)
async def test_the_log_says_how_each_job_was_asked_for(
    db: Database, usage: UsageLog, clock: FakeClock, kind: str, source: str
) -> None:
    jobs = JobRepository(db, clock)
    failed = await jobs.fail((await jobs.create(**(_job_args() | {"kind": kind}))).id, "cancelled")
    await usage.record_job(failed)
    entry = await usage.get(failed.id)
    assert entry is not None
    assert entry.source == source


async def test_the_export_shows_the_errors_code_never_the_services_or_an_exceptions_words(
    db: Database, usage: UsageLog, clock: FakeClock
) -> None:
    # Server admins download the export: the upstream's own text (an internal host name) is the operator's.
    jobs = JobRepository(db, clock)
    failed = await jobs.fail(
        (await jobs.create(**_job_args())).id, "upstream", "ToAPIs submit: cannot connect to db-7.internal:5432"
    )
    await usage.record_job(failed)
    await record(usage, "bare", error="Traceback: KeyError at internal.example", created_at=START + timedelta(days=1))
    out = io.StringIO(newline="")
    await usage.export_csv(out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert {row["job_id"]: row["error"] for row in rows} == {failed.id: "upstream", "bare": ""}
    assert "internal" not in out.getvalue()
    stored = await usage.get(failed.id)
    assert stored is not None
    assert stored.error == "upstream: ToAPIs submit: cannot connect to db-7.internal:5432"  # kept for the operator

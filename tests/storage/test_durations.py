"""Task durations on both engines: recorded once per job, trimmed to the latest of each kind, read back oldest
first."""

from __future__ import annotations

import asyncio

from storage.connect import open_database
from storage.database import Database
from storage.durations import TaskDurationRepository
from tests.storage.conftest import FakeClock


async def test_durations_are_read_back_oldest_first_per_kind(db: Database, clock: FakeClock) -> None:
    durations = TaskDurationRepository(db, clock)
    await durations.record("a", "gpt-image-2", "1k", 31.25, keep=20)
    clock.advance(seconds=1)
    await durations.record("b", "gpt-image-2", "2k", 52.0, keep=20)
    clock.advance(seconds=1)
    await durations.record("c", "gpt-image-2", "1k", 29.5, keep=20)

    latest = await durations.latest(20)
    assert [(d.model, d.resolution, d.seconds) for d in latest] == [
        ("gpt-image-2", "1k", 31.25),
        ("gpt-image-2", "2k", 52.0),
        ("gpt-image-2", "1k", 29.5),
    ]
    assert latest[-1].finished_at == clock.now


async def test_a_job_is_recorded_once(db: Database, clock: FakeClock) -> None:
    durations = TaskDurationRepository(db, clock)
    await durations.record("a", "gpt-image-2", "1k", 30.0, keep=20)
    clock.advance(seconds=5)
    await durations.record("a", "gpt-image-2", "1k", 35.0, keep=20)  # the same completion seen again
    assert [d.seconds for d in await durations.latest(20)] == [30.0]


async def test_each_kind_keeps_only_its_latest(db: Database, clock: FakeClock) -> None:
    durations = TaskDurationRepository(db, clock)
    await durations.record("other", "gpt-image-2", "4k", 90.0, keep=3)
    for index in range(6):
        clock.advance(seconds=1)
        await durations.record(f"job-{index}", "gpt-image-2", "1k", 20.0 + index, keep=3)
    latest = await durations.latest(20)
    assert [(d.resolution, d.seconds) for d in latest] == [("4k", 90.0), ("1k", 23.0), ("1k", 24.0), ("1k", 25.0)]
    assert [d.seconds for d in await durations.latest(2) if d.resolution == "1k"] == [24.0, 25.0]


async def test_processes_recording_at_once_never_fail_and_stay_trimmed(
    db: Database, db_url: str, clock: FakeClock
) -> None:
    # Trimming is tidying, not a limit: two writers at once may each leave the other's row (one too many, on
    # PostgreSQL), which the next record trims. Reads take the latest `keep` whatever the table holds.
    async with await open_database(db_url) as other:
        ours, theirs = TaskDurationRepository(db, clock), TaskDurationRepository(other, clock)
        for round_ in range(5):
            clock.advance(seconds=1)
            await asyncio.gather(
                ours.record(f"ours-{round_}", "gpt-image-2", "1k", 10.0, keep=4),
                theirs.record(f"theirs-{round_}", "gpt-image-2", "1k", 12.0, keep=4),
            )
        assert len(await ours.latest(20)) <= 5
        assert len(await ours.latest(4)) == 4
        clock.advance(seconds=1)
        await ours.record("last", "gpt-image-2", "1k", 11.0, keep=4)
        assert len(await theirs.latest(20)) == 4

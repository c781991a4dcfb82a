"""Reference images are deleted after RETENTION_DAYS; newer ones and the usage log stay."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from generation.housekeeping import LEDGER_KEPT, keep_tidy, purge_expired_references
from storage.store import Storage


async def job(store: Storage, job_id: str) -> str:
    await store.jobs.create(
        job_id=job_id, guild_id=1, channel_id=2, user_id=3, kind="imagine", prompt="p", n=1, model="m"
    )
    return job_id


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_references_older_than_the_retention_are_purged(tmp_path: Path) -> None:
    clock = Clock()
    async with await Storage.open(f"sqlite:///{tmp_path / 'db.sqlite'}", clock=clock) as store:
        await store.references.save(await job(store, "old-job"), [(b"\x89PNG old", "image/png")])
        clock.now += timedelta(days=20)
        await store.references.save(await job(store, "new-job"), [(b"\x89PNG new", "image/png")])
        clock.now += timedelta(days=11)  # old: 31 days, new: 11 days
        assert await purge_expired_references(store, retention_days=30) == 1
        assert await store.references.load("old-job") == []
        assert [image.data for image in await store.references.load("new-job")] == [b"\x89PNG new"]
        assert await purge_expired_references(store, retention_days=30) == 0


async def test_reservations_go_once_they_count_in_no_period_and_the_usage_log_stays(tmp_path: Path) -> None:
    clock = Clock()
    async with await Storage.open(f"sqlite:///{tmp_path / 'db.sqlite'}", clock=clock) as store:
        for job_id in ("old-job", "new-job"):
            assert (await store.quotas.reserve(await job(store, job_id), 1, 3, (), 2)).granted
            clock.now += LEDGER_KEPT - timedelta(days=1)
        await purge_expired_references(store, retention_days=30)
        # old: 122 days (two lots of 61), new: 61 days, still within LEDGER_KEPT
        assert await store.quotas.reservation("old-job") is None
        assert await store.quotas.reserved_for_job("new-job") == 2


async def test_keep_tidy_purges_at_once_and_survives_a_failed_round(tmp_path: Path) -> None:
    clock = Clock()
    async with await Storage.open(f"sqlite:///{tmp_path / 'db.sqlite'}", clock=clock) as store:
        await store.references.save(await job(store, "old-job"), [(b"\x89PNG old", "image/png")])
        clock.now += timedelta(days=40)
        calls = 0
        purged = asyncio.Event()
        real = store.references.purge_older_than

        async def flaky(cutoff: datetime) -> int:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("disk hiccup")
            count = await real(cutoff)
            purged.set()
            return count

        store.references.purge_older_than = flaky  # type: ignore[method-assign]
        task = asyncio.create_task(keep_tidy(store, retention_days=30, interval=0.001))
        try:
            await asyncio.wait_for(purged.wait(), timeout=5)
        finally:
            task.cancel()
        assert calls >= 2
        assert await store.references.load("old-job") == []

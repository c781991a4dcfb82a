"""Job leases: one process works a job at a time; a dead process's jobs are taken over when its leases expire."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from storage.connect import open_database
from storage.database import Database
from storage.jobs import Job, JobRepository, JobState
from tests.storage._racing import WAIT, race
from tests.storage.conftest import FakeClock

TTL = 30.0


@pytest.fixture
def jobs(db: Database, clock: FakeClock) -> JobRepository:
    return JobRepository(db, clock)


async def new_job(jobs: JobRepository) -> Job:
    return await jobs.create(guild_id=1, channel_id=2, user_id=3, kind="imagine", prompt="p", n=1, model="m")


async def test_a_new_job_has_no_lease_and_the_first_claim_takes_it(jobs: JobRepository, clock: FakeClock) -> None:
    job = await new_job(jobs)
    assert (job.lease_owner, job.lease_expires_at) == (None, None)
    assert await jobs.claim(job.id, "process-a", TTL)
    stored = await jobs.get(job.id)
    assert stored is not None
    assert stored.lease_owner == "process-a"
    assert stored.lease_expires_at == clock.now + timedelta(seconds=TTL)
    assert stored.updated_at == job.updated_at  # a lease is not a change of the job


async def test_a_held_lease_keeps_others_out_until_it_expires(jobs: JobRepository, clock: FakeClock) -> None:
    job = await new_job(jobs)
    assert await jobs.claim(job.id, "a", TTL)
    assert not await jobs.claim(job.id, "b", TTL)
    clock.advance(seconds=TTL - 0.001)
    assert not await jobs.claim(job.id, "b", TTL)
    clock.advance(seconds=0.001)  # expired the instant it ends
    assert await jobs.claim(job.id, "b", TTL)
    stored = await jobs.get(job.id)
    assert stored is not None
    assert stored.lease_owner == "b"
    assert not await jobs.claim(job.id, "a", TTL)  # the old holder lost it


async def test_claiming_again_extends_our_own_lease(jobs: JobRepository, clock: FakeClock) -> None:
    job = await new_job(jobs)
    assert await jobs.claim(job.id, "a", TTL)
    clock.advance(seconds=20)
    assert await jobs.claim(job.id, "a", TTL)
    clock.advance(seconds=20)  # 40 s after the first claim, 20 after the second
    assert not await jobs.claim(job.id, "b", TTL)


async def test_renew_extends_every_lease_of_one_owner_on_a_job_not_over(jobs: JobRepository, clock: FakeClock) -> None:
    mine = [await new_job(jobs) for _ in range(4)]
    theirs = await new_job(jobs)
    for job in mine:
        assert await jobs.claim(job.id, "a", TTL)
    assert await jobs.claim(theirs.id, "b", TTL)
    await jobs.fail(mine[2].id, "cancelled")
    await jobs.update(mine[2].id, delivered_at=clock.now)  # failed and told: its lease no longer matters
    await jobs.fail(mine[3].id, "cancelled")  # failed, its member not told yet: still a's to tell
    clock.advance(seconds=25)
    assert await jobs.renew_leases("a", TTL) == 3
    clock.advance(seconds=25)  # b's lease expired, a's were renewed
    assert await jobs.claim(theirs.id, "c", TTL)
    for job in (mine[0], mine[1], mine[3]):
        assert not await jobs.claim(job.id, "c", TTL)
    assert await jobs.renew_leases("nobody", TTL) == 0


async def test_renew_keeps_an_expired_lease_nobody_took_but_not_one_taken(
    jobs: JobRepository, clock: FakeClock
) -> None:
    kept, taken = await new_job(jobs), await new_job(jobs)
    for job in (kept, taken):
        assert await jobs.claim(job.id, "a", TTL)
    clock.advance(seconds=TTL + 5)  # a was slow to renew
    assert await jobs.claim(taken.id, "b", TTL)
    assert await jobs.renew_leases("a", TTL) == 1
    stored = await jobs.get(kept.id)
    assert stored is not None
    assert (stored.lease_owner, stored.lease_expires_at) == ("a", clock.now + timedelta(seconds=TTL))


async def test_release_lets_another_process_take_the_job_at_once(jobs: JobRepository) -> None:
    job = await new_job(jobs)
    assert await jobs.claim(job.id, "a", TTL)
    assert not await jobs.release(job.id, "b")  # only the holder can release
    assert not await jobs.claim(job.id, "b", TTL)
    assert await jobs.release(job.id, "a")
    assert not await jobs.release(job.id, "a")
    stored = await jobs.get(job.id)
    assert stored is not None
    assert (stored.lease_owner, stored.lease_expires_at) == (None, None)
    assert await jobs.claim(job.id, "b", TTL)


async def test_list_unfinished_still_lists_leased_jobs(jobs: JobRepository) -> None:
    # The pipeline filters by shard and claims; the list itself is unchanged.
    first, second = await new_job(jobs), await new_job(jobs)
    assert await jobs.claim(first.id, "a", TTL)
    assert sorted(job.id for job in await jobs.list_unfinished()) == sorted([first.id, second.id])


async def test_bad_claims_are_refused(jobs: JobRepository) -> None:
    job = await new_job(jobs)
    assert not await jobs.claim("no such job", "a", TTL)
    with pytest.raises(ValueError, match="owner"):
        await jobs.claim(job.id, "", TTL)
    for ttl in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="ttl_seconds"):
            await jobs.claim(job.id, "a", ttl)
        with pytest.raises(ValueError, match="ttl_seconds"):
            await jobs.renew_leases("a", ttl)
    stored = await jobs.get(job.id)
    assert stored is not None
    assert stored.lease_owner is None


async def test_concurrent_claims_give_each_job_to_exactly_one_owner(
    db: Database, db_url: str, clock: FakeClock
) -> None:
    async with await open_database(db_url, busy_timeout=WAIT) as other:
        here, there = JobRepository(db, clock), JobRepository(other, clock)
        created = [await new_job(here) for _ in range(40)]
        attempts = [
            (here if owner == "a" else there).claim(job.id, owner, TTL) for job in created for owner in ("a", "b")
        ]
        outcome = await asyncio.wait_for(asyncio.gather(*attempts), WAIT)
        for index, job in enumerate(created):
            won = [
                owner for owner, claimed in zip(("a", "b"), outcome[2 * index : 2 * index + 2], strict=True) if claimed
            ]
            stored = await here.get(job.id)
            assert stored is not None
            assert won == [stored.lease_owner]


SCRIPT = """
import asyncio, sys
from datetime import datetime
from storage.connect import open_database
from storage.jobs import JobRepository

async def main(url, owner, now):
    db = await open_database(url, busy_timeout=60)
    jobs = JobRepository(db, lambda: now)
    ids = [job.id for job in await jobs.list_unfinished()]
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    claimed = await asyncio.gather(*(jobs.claim(job_id, owner, 30) for job_id in ids))
    print(" ".join(job_id for job_id, won in zip(ids, claimed) if won), flush=True)
    await db.close()

asyncio.run(main(sys.argv[1], sys.argv[2], datetime.fromisoformat(sys.argv[3])))
"""


async def test_two_processes_racing_to_claim_share_the_jobs_without_overlap(
    jobs: JobRepository, db_url: str, clock: FakeClock
) -> None:
    created = [await new_job(jobs) for _ in range(100)]
    # A quarter are held by a third process that is still alive, and are out of the race.
    for job in created[:25]:
        assert await jobs.claim(job.id, "alive", TTL)
    outputs = await race(SCRIPT, [[db_url, owner, clock.now.isoformat()] for owner in ("p", "q")])
    won_by_p, won_by_q = (set(stdout.decode().split()) for stdout in outputs)
    assert not won_by_p & won_by_q
    assert won_by_p | won_by_q == {job.id for job in created[25:]}
    for job in created:
        stored = await jobs.get(job.id)
        assert stored is not None
        expected = "alive" if job in created[:25] else ("p" if job.id in won_by_p else "q")
        assert stored.lease_owner == expected
    assert all(job.state is JobState.QUEUED for job in await jobs.list_unfinished())

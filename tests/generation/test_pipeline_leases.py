"""Several processes on one database: each works only its shards' servers, and a job only while it holds its lease.

Two pipelines on two connections to one SQLite file stand for two processes (the leases are the same SQL on
PostgreSQL, where the storage tests race real processes for them).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator

import pytest

from generation.events import Failed
from generation.pipeline import Pipeline
from storage.errors import DatabaseError, LeaseLostError
from storage.jobs import Job, JobRepository, JobState
from storage.store import Storage
from tests.e2e.harness import wait_until
from tests.fakes.toapis import Timeline
from tests.generation.conftest import BlockingJobs, Board, Harness, RecordingReporter, request

TTL = 0.3


async def second_store(harness: Harness) -> Storage:
    return await Storage.open(harness.url, defaults=harness.defaults, clock=harness.clock)


@contextlib.asynccontextmanager
async def second_process(harness: Harness, *, ttl: float = TTL) -> AsyncIterator[Storage]:
    """Another process started on the job's database ("second", with leases of `ttl`): its store; the process and
    the store are closed on the way out."""
    store = await second_store(harness)
    try:
        second = await harness.start(store=store, lease_ttl=ttl, owner="second")
        try:
            yield store
        finally:
            await second.close()
    finally:
        await store.close()


async def test_a_process_resumes_only_the_jobs_of_its_own_servers(harness: Harness) -> None:
    harness.fake.queue_timeline(Timeline.never_ends(), Timeline.never_ends())
    first = await harness.start(lease_ttl=TTL, owner="first")
    mine = await harness.submit(first, request(guild_id=2))
    theirs = await harness.submit(first, request(guild_id=3))
    await harness.board.wait_for(lambda: len(harness.fake.tasks) == 2)
    await first.close()  # releases both leases

    for task in harness.fake.tasks.values():
        harness.fake.end_task(task.id)
    store = await second_store(harness)
    try:
        second = await harness.start(store=store, lease_ttl=TTL, owner="second", owns_guild=lambda gid: gid % 2 == 0)
        await harness.board.wait_finished([mine.id])
        left = await store.jobs.get(theirs.id)
        assert left is not None
        assert not left.is_finished  # another process's server: not resumed here
        assert theirs.id not in harness.board.shown
        await second.close()
    finally:
        await store.close()


async def test_a_job_held_by_a_live_process_is_left_alone_and_adopted_once_its_lease_runs_out(harness: Harness) -> None:
    assert harness.store is None
    store_a = await harness.open_store()
    blocking = BlockingJobs(store_a, after=JobState.RUNNING)
    first = await harness.start(store=dataclasses.replace(store_a, jobs=blocking), lease_ttl=TTL, owner="first")
    job = await harness.submit(first, request())
    await blocking.wait_stopped()

    async with second_process(harness) as store_b:
        # While the first process renews its lease, the second one does not touch the job.
        await asyncio.sleep(TTL)
        assert job.id not in harness.board.shown
        held = await store_b.jobs.get(job.id)
        assert held is not None
        assert held.state is JobState.RUNNING

        # The first process dies without a word (its lease keeper stops renewing, nothing is released).
        assert first._lease_keeper is not None
        first._lease_keeper.cancel()
        harness.clock.advance(seconds=2 * TTL)
        finished = (await harness.settled([job.id], timeout=10))[job.id]
        assert finished.state is JobState.COMPLETED
        assert len(harness.fake.tasks_for(job.id)) == 1  # polled again, never submitted twice
        assert harness.board.deliveries_after_recorded == 0


async def test_a_new_job_is_leased_to_the_process_that_admitted_it(harness: Harness) -> None:
    harness.fake.queue_timeline(Timeline.never_ends())
    pipeline = await harness.start(lease_ttl=TTL, owner="admitting")
    job = await harness.submit(pipeline, request())
    store = harness.store
    assert store is not None
    row = await store.db.fetch_one("SELECT lease_owner FROM jobs WHERE id = :id", {"id": job.id})
    assert row is not None
    assert row["lease_owner"] == "admitting"
    other = await second_store(harness)
    try:
        assert not await other.jobs.claim(job.id, "someone else", TTL)
    finally:
        await other.close()
    await pipeline.close()
    assert await store.jobs.claim(job.id, "someone else", TTL)  # released on close


async def test_without_leases_a_restart_takes_every_job_at_once(harness: Harness) -> None:
    harness.fake.queue_timeline(Timeline.never_ends())
    first = await harness.start()
    job = await harness.submit(first, request())
    await harness.board.wait_for(lambda: len(harness.fake.tasks) == 1)
    await first.close()
    second: Pipeline = await harness.start()
    (task,) = harness.fake.tasks.values()
    harness.fake.end_task(task.id)
    await harness.settled([job.id])
    assert len(harness.fake.tasks_for(job.id)) == 1
    await second.close()


async def test_a_process_that_cannot_renew_its_leases_lets_go_and_takes_the_job_up_again(harness: Harness) -> None:
    harness.fake.queue_timeline(Timeline.never_ends())
    pipeline = await harness.start(lease_ttl=TTL, owner="shaky")
    job = await harness.submit(pipeline, request())
    await harness.fake.wait_for(lambda: bool(harness.fake.tasks_for(job.id)))
    store = harness.store
    assert store is not None
    renew = store.jobs.renew_leases
    failing = True

    async def flaky(owner: str, ttl_seconds: float) -> int:
        if failing:
            raise RuntimeError("the database does not answer")
        return await renew(owner, ttl_seconds)

    store.jobs.renew_leases = flaky  # type: ignore[method-assign]
    await wait_until(lambda: pipeline.reporter_of(job.id) is None, 10, what="the job let go")
    failing = False
    (task,) = harness.fake.tasks_for(job.id)
    harness.fake.end_task(task.id)
    harness.clock.advance(seconds=2 * TTL)  # its lease ran out meanwhile: anyone may take it, we do
    finished = (await harness.settled([job.id], timeout=10))[job.id]
    assert finished.state is JobState.COMPLETED
    assert len(harness.fake.tasks_for(job.id)) == 1
    assert harness.board.deliveries_after_recorded == 0


async def test_a_process_frozen_past_its_lease_stops_at_its_next_write_and_posts_nothing(harness: Harness) -> None:
    # A deploy's overlap: the old process freezes (its lease keeper with it) just before posting the result; the
    # new one takes the job over and delivers it; the old one wakes up and must not post a second time.
    store_a = await harness.open_store()
    gate = asyncio.Event()
    blocking = BlockingJobs(store_a, after=JobState.DELIVERING, gate=gate)
    first = await harness.start(store=dataclasses.replace(store_a, jobs=blocking), lease_ttl=TTL, owner="first")
    job = await harness.submit(first, request())
    await blocking.wait_stopped()
    assert first._lease_keeper is not None
    first._lease_keeper.cancel()  # frozen: nothing renews its lease any more

    harness.clock.advance(seconds=2 * TTL)
    async with second_process(harness) as store_b:
        await harness.board.wait_finished([job.id])

        async def recorded() -> Job | None:
            # The delivery is recorded once the reporter returns: on PostgreSQL a read may come first.
            stored = await store_b.jobs.get(job.id)
            return stored if stored is not None and stored.is_finished else None

        taken = await wait_until(recorded, 10, what="the delivery recorded")
        assert (taken.state, taken.lease_owner) == (JobState.COMPLETED, "second")

        gate.set()  # the old process wakes up, about to post
        await wait_until(lambda: not first.reporter_of(job.id), 10, what="the old process to let go")
        assert harness.board.delivery_calls[job.id] == 1
        assert harness.board.deliveries_after_recorded == 0
        assert harness.board.failures.get(job.id) is None
        assert await store_b.db.fetch_value("SELECT COUNT(*) FROM usage_log WHERE job_id = :id", {"id": job.id}) == 1


async def test_a_write_through_a_lost_lease_changes_nothing(harness: Harness) -> None:
    store = await harness.open_store()
    job = await store.jobs.create(guild_id=1, channel_id=2, user_id=3, kind="imagine", prompt="a cat", n=1, model="m")
    assert await store.jobs.claim(job.id, "first", TTL)
    first = store.jobs.held_by("first")
    moved = await first.set_state(job.id, JobState.UPLOADING)
    assert moved.state is JobState.UPLOADING
    harness.clock.advance(seconds=2 * TTL)
    assert await store.jobs.claim(job.id, "second", TTL)

    with pytest.raises(LeaseLostError):
        await first.set_state(job.id, JobState.SUBMITTING)
    with pytest.raises(LeaseLostError):
        await first.update(job.id, task_id="task_1")
    with pytest.raises(LeaseLostError):
        await first.confirm_held(job.id)
    unchanged = await store.jobs.get(job.id)
    assert unchanged is not None
    assert (unchanged.state, unchanged.task_id) == (JobState.UPLOADING, None)
    await store.jobs.held_by("second").confirm_held(job.id)


class HeldReporter(RecordingReporter):
    """A reporter whose telling of a failure waits for `gate` (a slow Discord, or a process about to tell)."""

    def __init__(self, board: Board, gate: asyncio.Event) -> None:
        super().__init__(board, None)
        self.gate = gate
        self.telling = asyncio.Event()

    async def failed(self, event: Failed) -> None:
        self.telling.set()
        await self.gate.wait()
        await super().failed(event)


async def test_a_process_starting_while_another_tells_a_failure_leaves_it_to_that_one(harness: Harness) -> None:
    # A deploy's overlap: the new process starts while the old one is telling a failure it has just stored.
    ttl = 30.0  # the old process's lease stays live throughout, whatever the machine's speed
    harness.fake.queue_timeline(Timeline.failing("the model crashed"))
    first = await harness.start(lease_ttl=ttl, owner="first")
    reporter = HeldReporter(harness.board, gate := asyncio.Event())
    job = await first.submit(request(), reporter)
    reporter.bind(job.id)
    await reporter.telling.wait()

    async with second_process(harness, ttl=ttl) as store_b:
        assert job.id not in harness.board.failures  # not told by the new process
        gate.set()
        await harness.board.wait_finished([job.id])
        told = await wait_until(lambda: _told(store_b, job.id), 10, what="the failure noted as told")
        assert told.lease_owner == "first"
        (failed,) = harness.board.failures[job.id]
        assert not failed.details_lost  # told by the process that stored it


async def test_a_process_frozen_past_its_lease_before_telling_a_failure_tells_nothing(harness: Harness) -> None:
    # The old process stores a failure and freezes before telling it; the new one, starting once the lease has
    # run out, tells it; the old one wakes up and must not tell it a second time.
    harness.fake.queue_timeline(Timeline.failing("the model crashed"))
    first = await harness.start(lease_ttl=TTL, owner="first")
    gate, frozen = asyncio.Event(), asyncio.Event()
    spool = first._context.spool
    remove = spool.remove

    async def frozen_before_telling(job_id: str) -> None:
        frozen.set()
        await gate.wait()
        await remove(job_id)

    spool.remove = frozen_before_telling  # type: ignore[method-assign]
    job = await harness.submit(first, request())
    await frozen.wait()
    assert first._lease_keeper is not None
    first._lease_keeper.cancel()

    harness.clock.advance(seconds=2 * TTL)
    async with second_process(harness) as store_b:
        (failed,) = harness.board.failures[job.id]
        assert failed.details_lost  # told by the new process, from what was stored

        gate.set()  # the old process wakes up, about to tell
        await wait_until(lambda: not first.reporter_of(job.id), 10, what="the old process to let go")
        assert len(harness.board.failures[job.id]) == 1
        told = await _told(store_b, job.id)
        assert told is not None
        assert told.lease_owner == "second"


async def test_a_failure_left_to_a_process_that_dies_before_telling_it_is_told_once_its_lease_runs_out(
    harness: Harness,
) -> None:
    harness.fake.queue_timeline(Timeline.failing("the model crashed"))
    first = await harness.start(lease_ttl=TTL, owner="first")
    frozen = asyncio.Event()

    async def dead_before_telling(job_id: str) -> None:
        frozen.set()
        await asyncio.Event().wait()

    first._context.spool.remove = dead_before_telling  # type: ignore[method-assign]
    job = await harness.submit(first, request())
    await frozen.wait()
    assert first._lease_keeper is not None
    first._lease_keeper.cancel()

    async with second_process(harness) as store_b:
        assert job.id not in harness.board.failures  # its lease is live: left to its process at first
        told = await wait_until(lambda: _told(store_b, job.id), 10, what="the failure told after the lease")
        assert told.lease_owner == "second"
        (failed,) = harness.board.failures[job.id]
        assert failed.details_lost


async def test_a_failure_whose_telling_outlasts_the_lease_is_told_once(harness: Harness) -> None:
    # Telling is slow (Discord's rate limits, a DM instead): the teller's lease keeper keeps the failed job, untold
    # yet, leased to it, so a process starting meanwhile leaves it alone.
    harness.fake.queue_timeline(Timeline.failing("the model crashed"))
    first = await harness.start(lease_ttl=TTL, owner="first")
    reporter = HeldReporter(harness.board, gate := asyncio.Event())
    job = await first.submit(request(), reporter)
    reporter.bind(job.id)
    await reporter.telling.wait()
    harness.clock.advance(seconds=2 * TTL)  # the lease as taken has run out...
    assert harness.store is not None
    store = harness.store

    async def renewed() -> bool:
        stored = await store.jobs.get(job.id)
        return stored is not None and stored.lease_expires_at is not None and stored.lease_expires_at > store.clock()

    await wait_until(renewed, 10, what="the lease renewed while the failure is told")  # ...and was renewed
    async with second_process(harness) as store_b:
        gate.set()
        await harness.board.wait_finished([job.id])
        told = await wait_until(lambda: _told(store_b, job.id), 10, what="the failure noted as told")
        assert told.lease_owner == "first"
        (failed,) = harness.board.failures[job.id]
        assert not failed.details_lost


async def test_a_failure_the_database_kept_from_being_told_is_told_by_the_next_look(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lease cannot be checked before telling (the database is down for a moment): nothing is told then, and the
    # periodic look for untold failures tells it once the database answers.
    harness.fake.queue_timeline(Timeline.failing("the model crashed"))
    pipeline = await harness.start(lease_ttl=TTL, owner="first")
    confirm_held = JobRepository.confirm_held
    refused: list[str] = []

    async def down_once(self: JobRepository, job_id: str) -> None:
        if not refused:
            refused.append(job_id)
            raise DatabaseError("the database went away")
        await confirm_held(self, job_id)

    monkeypatch.setattr(JobRepository, "confirm_held", down_once)
    job = await harness.submit(pipeline, request())
    store = harness.store
    assert store is not None
    told = await wait_until(lambda: _told(store, job.id), 10, what="the failure told by the next look")
    assert refused == [job.id]
    (failed,) = harness.board.failures[job.id]
    assert failed.details_lost  # told from what was stored
    assert told.state is JobState.FAILED


async def _told(store: Storage, job_id: str) -> Job | None:
    job = await store.jobs.get(job_id)
    return job if job is not None and job.delivered_at is not None else None

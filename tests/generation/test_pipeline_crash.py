"""Crash after each step, restart on the same database: every job is delivered exactly once from one task.

A "crash" stops the pipeline at an exact point (a JobRepository that blocks there, or a fake that never
answers), closes it, reopens the database and starts a new pipeline, which resumes the job.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from generation.events import Completed, Late, Queued, Submitted
from generation.pipeline import Pipeline
from generation.requests import Reference
from storage.jobs import Job, JobState
from tests.fakes.toapis import Endpoint, Fault, Timeline
from tests.generation.conftest import WAIT, BlockingJobs, Harness, png_bytes, request

REFERENCE = Reference(png_bytes(40, 40, "orange"), "image/png")


async def crash(harness: Harness, pipeline: Pipeline, job: Job) -> Job:
    """Stop the pipeline, reopen the database; returns the job as the crash left it."""
    await pipeline.close()
    store = await harness.open_store()
    crashed = await store.jobs.get(job.id)
    assert crashed is not None
    return crashed


async def assert_delivered_once(harness: Harness, job: Job, *, n: int = 1) -> None:
    fake, board = harness.fake, harness.board
    jobs = await harness.settled([job.id])
    assert jobs[job.id].state is JobState.COMPLETED, board.failures.get(job.id)
    (task,) = fake.tasks_for(job.id)
    assert jobs[job.id].task_id == task.id
    assert board.shown[job.id].images == tuple(fake.result_png(task.id, i) for i in range(1, n + 1))
    assert board.deliveries_after_recorded == 0
    assert not board.failures
    store = harness.store
    assert store is not None
    usage = await store.usage.get(job.id)
    assert usage is not None
    assert (usage.status, usage.images, usage.task_id) == ("completed", n, task.id)
    assert await store.quotas.reserved_for_job(job.id) == n
    assert list(harness.spool_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("stop", "left_in"),
    [
        pytest.param({"before": JobState.UPLOADING}, JobState.QUEUED, id="after-admission"),
        pytest.param({"before": JobState.SUBMITTING}, JobState.UPLOADING, id="after-uploading"),
        pytest.param({"after": JobState.SUBMITTING}, JobState.SUBMITTING, id="submitting-stored-not-sent"),
        pytest.param({"before": JobState.RUNNING}, JobState.SUBMITTING, id="submit-sent-answer-not-stored"),
        pytest.param({"before": JobState.DELIVERING}, JobState.DOWNLOADING, id="after-downloading"),
        pytest.param({"after": JobState.DELIVERING}, JobState.DELIVERING, id="delivering-stored"),
        pytest.param({"before_delivery": True}, JobState.DELIVERING, id="delivered-not-recorded"),
    ],
)
async def test_a_crash_at_each_stored_step_ends_in_one_delivery_from_one_task(
    harness: Harness, stop: dict[str, Any], left_in: JobState
) -> None:
    fake = harness.fake
    store = await harness.open_store()
    blocking = BlockingJobs(store, **stop)
    pipeline = await harness.start(store=dataclasses.replace(store, jobs=blocking))
    job = await harness.submit(pipeline, request(n=2, references=(REFERENCE,)))
    await asyncio.wait_for(blocking.reached.wait(), WAIT)
    submits_before = len(fake.requests_to(Endpoint.SUBMIT))

    crashed = await crash(harness, pipeline, job)
    assert crashed.state is left_in
    if left_in is JobState.SUBMITTING:
        assert crashed.submit_started_at is not None
        assert crashed.task_id is None

    await harness.start()
    await assert_delivered_once(harness, job, n=2)
    if stop.get("before") is JobState.RUNNING:
        # The task was found by its client_business_id: nothing was submitted again.
        assert len(fake.requests_to(Endpoint.SUBMIT)) == submits_before == 1
    if stop.get("before_delivery"):
        # Shown once before the crash, shown again (idempotently) after it, then recorded.
        assert harness.board.delivery_calls[job.id] == 2


async def test_a_crash_while_running_resumes_polling_and_delivers(harness: Harness) -> None:
    fake, board = harness.fake, harness.board
    fake.queue_timeline(Timeline.never_ends(progress=30))
    pipeline = await harness.start()
    job = await harness.submit(pipeline, request())
    await fake.wait_for(lambda: len(fake.requests_to(Endpoint.LOOKUP)) >= 2)
    crashed = await crash(harness, pipeline, job)
    assert crashed.state is JobState.RUNNING
    (task,) = fake.tasks_for(job.id)
    assert crashed.task_id == task.id

    looked = len(fake.requests_to(Endpoint.LOOKUP))
    await harness.start()
    await fake.wait_for(lambda: len(fake.requests_to(Endpoint.LOOKUP)) > looked)
    fake.end_task(task.id)
    await assert_delivered_once(harness, job)
    assert len(fake.requests_to(Endpoint.SUBMIT)) == 1
    # A job with a task resumes polling at once: it does not wait in line again.
    assert board.events_of(job.id, Queued) == [Queued(1)]


async def test_a_crash_while_the_reporter_is_delivering_delivers_once_after_restart(harness: Harness) -> None:
    board = harness.board
    started = asyncio.Event()

    async def hang(event: Completed) -> None:
        started.set()
        await asyncio.get_running_loop().create_future()

    board.before_show = hang
    pipeline = await harness.start()
    job = await harness.submit(pipeline, request(n=3))
    await asyncio.wait_for(started.wait(), WAIT)
    crashed = await crash(harness, pipeline, job)
    assert crashed.state is JobState.DELIVERING
    assert crashed.delivered_at is None

    board.before_show = None
    await harness.start()
    await assert_delivered_once(harness, job, n=3)
    assert board.delivery_calls[job.id] == 2


async def test_an_ambiguous_submit_is_resolved_by_lookup_even_across_a_crash(harness: Harness) -> None:
    fake = harness.fake
    # The submit creates the task but its answer never arrives, and every lookup that would tell fails.
    fake.fail(Endpoint.SUBMIT, Fault.disconnect(), after_effect=True)
    fake.fail(Endpoint.LOOKUP, Fault.server_error(), times=None)
    pipeline = await harness.start()
    job = await harness.submit(pipeline, request())
    # The pipeline keeps asking (the client's retries, then its own) and never submits again meanwhile.
    await fake.wait_for(lambda: len(fake.requests_to(Endpoint.LOOKUP)) >= 8)
    assert len(fake.requests_to(Endpoint.SUBMIT)) == 1
    crashed = await crash(harness, pipeline, job)
    assert crashed.state is JobState.SUBMITTING
    assert crashed.task_id is None

    fake.clear_faults()
    await harness.start()
    await assert_delivered_once(harness, job)
    assert len(fake.requests_to(Endpoint.SUBMIT)) == 1
    (task,) = fake.tasks_for(job.id)
    assert Submitted(task.id) in harness.board.events(job.id)


async def test_an_ambiguous_submit_without_a_crash_finds_its_task(harness: Harness) -> None:
    fake = harness.fake
    fake.fail(Endpoint.SUBMIT, Fault.disconnect(), after_effect=True)
    fake.fail(Endpoint.LOOKUP, Fault.bad_gateway(), times=5)
    pipeline = await harness.start()
    job = await harness.submit(pipeline, request())
    await assert_delivered_once(harness, job)
    assert len(fake.requests_to(Endpoint.SUBMIT)) == 1
    assert not pipeline.breaker.is_open


async def test_an_ambiguous_submit_that_created_nothing_is_submitted_again(harness: Harness) -> None:
    fake = harness.fake
    # Dropped before it took effect: the lookup answers 404, so submitting again is safe.
    fake.fail(Endpoint.SUBMIT, Fault.disconnect())
    pipeline = await harness.start()
    job = await harness.submit(pipeline, request())
    await assert_delivered_once(harness, job)
    assert len(fake.requests_to(Endpoint.SUBMIT)) == 2


async def test_a_late_job_is_not_told_again_after_a_restart(harness: Harness) -> None:
    fake, board = harness.fake, harness.board
    fake.queue_timeline(Timeline.never_ends())
    pipeline = await harness.start(generation_timeout=0.02, late_poll_interval=0.01)
    job = await harness.submit(pipeline, request())
    await board.wait_for(lambda: bool(board.events_of(job.id, Late)))
    crashed = await crash(harness, pipeline, job)
    assert crashed.late_notified
    told = len(board.events_of(job.id, Late))

    looked = len(fake.requests_to(Endpoint.LOOKUP))
    await harness.start(generation_timeout=0.02, late_poll_interval=0.01)
    await fake.wait_for(lambda: len(fake.requests_to(Endpoint.LOOKUP)) > looked + 2)
    (task,) = fake.tasks_for(job.id)
    fake.end_task(task.id)
    await assert_delivered_once(harness, job)
    assert len(board.events_of(job.id, Late)) == told == 1

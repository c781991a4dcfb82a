"""Late tasks: told once (and not again after a restart), looked up less often, delivered when they end; a job
resumed after a long downtime looks at its task before calling it late or out of time."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from generation.events import FailureKind, Generating, Late
from storage.jobs import JobState
from tests.fakes.toapis import Endpoint, Timeline
from tests.generation.conftest import Harness, request


def lookup_times(harness: Harness, task_id: str) -> list[float]:
    return [req.time for req in harness.fake.requests_to(Endpoint.LOOKUP) if req.path.endswith(task_id)]


async def test_a_late_task_is_told_once_looked_up_less_often_and_delivered_when_it_ends(harness: Harness) -> None:
    fake, board = harness.fake, harness.board
    fake.queue_timeline(Timeline.never_ends(progress=40))
    pipeline = await harness.start(poll_interval=0.005, generation_timeout=0.05, late_poll_interval=0.1)
    job = await harness.submit(pipeline, request(n=2))
    await board.wait_for(lambda: bool(board.events_of(job.id, Late)))
    (task,) = fake.tasks_for(job.id)
    store = harness.store
    assert store is not None
    stored = await store.jobs.get(job.id)
    assert stored is not None
    assert stored.late_notified
    assert stored.state is JobState.RUNNING
    (late,) = board.events_of(job.id, Late)
    assert late.elapsed >= 0.05

    before = len(lookup_times(harness, task.id))
    assert before >= 1  # looked up before the timeout (how often depends on how busy the machine is)
    await fake.wait_for(lambda: len(lookup_times(harness, task.id)) >= before + 4)
    after = lookup_times(harness, task.id)[before:]
    gaps = [later - earlier for earlier, later in itertools.pairwise(after)]
    # late_poll_interval, less at most its 20 % jitter (and a little for the clock): never every poll_interval.
    assert min(gaps) >= 0.1 * 0.8 - 0.005

    fake.end_task(task.id)
    await harness.settled([job.id])
    assert board.shown[job.id].images == (fake.result_png(task.id, 1), fake.result_png(task.id, 2))
    assert len(board.events_of(job.id, Late)) == 1
    assert await store.quotas.reserved_for_job(job.id) == 2
    assert board.events_of(job.id, Generating)[-1].percent == 100


@pytest.mark.parametrize(
    "downtime",
    [
        pytest.param({"seconds": 60}, id="past-generation-timeout"),
        pytest.param({"days": 2}, id="past-late-limit"),
    ],
)
async def test_a_job_resumed_after_a_long_downtime_looks_before_calling_it_late(
    harness: Harness, downtime: dict[str, float]
) -> None:
    fake, board = harness.fake, harness.board
    fake.queue_timeline(Timeline.never_ends())
    settings: dict[str, Any] = {"generation_timeout": 30.0, "late_poll_interval": 5.0}
    pipeline = await harness.start(**settings)
    job = await harness.submit(pipeline, request())
    await fake.wait_for(lambda: len(fake.requests_to(Endpoint.LOOKUP)) >= 1)
    await pipeline.close()
    (task,) = fake.tasks_for(job.id)
    fake.end_task(task.id)  # it finished while the bot was down
    harness.clock.advance(**downtime)

    await harness.restart(pipeline, **settings)
    jobs = await harness.settled([job.id])
    assert jobs[job.id].state is JobState.COMPLETED, board.failures.get(job.id)
    assert not board.events_of(job.id, Late)
    assert board.shown[job.id].images == (fake.result_png(task.id, 1),)


async def test_a_task_still_running_after_a_downtime_past_the_timeout_is_late_at_once(harness: Harness) -> None:
    fake, board = harness.fake, harness.board
    fake.queue_timeline(Timeline.never_ends())
    pipeline = await harness.start(generation_timeout=30.0)
    job = await harness.submit(pipeline, request())
    await fake.wait_for(lambda: len(fake.requests_to(Endpoint.LOOKUP)) >= 1)
    harness.clock.advance(seconds=60)
    pipeline = await harness.restart(pipeline, generation_timeout=30.0, late_poll_interval=0.01)
    await board.wait_for(lambda: bool(board.events_of(job.id, Late)))
    (task,) = fake.tasks_for(job.id)
    fake.end_task(task.id)
    await harness.settled([job.id])
    assert job.id in board.shown
    assert len(board.events_of(job.id, Late)) == 1


async def test_a_job_resumed_after_the_late_limit_whose_task_still_runs_times_out(harness: Harness) -> None:
    fake, board = harness.fake, harness.board
    fake.queue_timeline(Timeline.never_ends())
    pipeline = await harness.start()
    job = await harness.submit(pipeline, request(n=2))
    await fake.wait_for(lambda: len(fake.requests_to(Endpoint.LOOKUP)) >= 1)
    harness.clock.advance(days=2)
    looked = len(fake.requests_to(Endpoint.LOOKUP))
    await harness.restart(pipeline)
    await harness.settled([job.id])
    assert board.failure(job.id).kind is FailureKind.TIMED_OUT
    assert board.failure(job.id).refunded == 0
    assert len(fake.requests_to(Endpoint.LOOKUP)) > looked  # it did look before giving up

"""What the pipeline does when things it did not plan for go wrong, with a task upstream that may bill."""

from __future__ import annotations

import pytest

import i18n
from cogs._texts import failure_text
from generation.events import Failed, FailureKind, Queued
from storage.jobs import JobState
from tests.fakes.toapis import Endpoint, Fault, Timeline
from tests.generation.conftest import Harness, RecordingReporter, request


async def test_a_look_up_refused_in_an_unplanned_way_is_tried_again_and_the_job_delivered(harness: Harness) -> None:
    harness.fake.queue_timeline(Timeline.simple(running=0.05))
    harness.fake.fail(Endpoint.LOOKUP, Fault.bad_request("something odd"), times=3)
    pipeline = await harness.start()
    job = await harness.submit(pipeline, request())
    finished = (await harness.settled([job.id]))[job.id]
    assert finished.state is JobState.COMPLETED
    assert len(harness.fake.tasks_for(job.id)) == 1


async def test_a_submit_nobody_can_confirm_for_a_day_ends_counted(harness: Harness) -> None:
    # The submit's answer was lost and the business-id look-up keeps failing: after a day, give up, counted.
    harness.fake.fail(Endpoint.SUBMIT, Fault.disconnect(), times=None, after_effect=True)
    harness.fake.fail(Endpoint.LOOKUP, Fault.server_error(), times=None)
    pipeline = await harness.start(late_limit=0.05)
    job = await harness.submit(pipeline, request(n=2))
    await harness.settled([job.id])
    failed = harness.board.failure(job.id)
    assert failed.kind is FailureKind.TIMED_OUT
    assert failed.refunded == 0
    assert harness.store is not None
    assert await harness.store.quotas.reserved_for_job(job.id) == 2
    assert len(harness.fake.tasks_for(job.id)) == 1  # never submitted twice


async def test_a_cancel_the_database_refuses_leaves_the_job_waiting(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.fake.queue_timeline(Timeline.never_ends())
    pipeline = await harness.start(max_concurrent_jobs=1)
    first = await harness.submit(pipeline, request(user_id=1))
    await harness.fake.wait_for(lambda: bool(harness.fake.tasks_for(first.id)))
    waiting = await harness.submit(pipeline, request(user_id=2))
    assert harness.store is not None

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database down")

    monkeypatch.setattr(harness.store.quotas, "refund", broken)
    with pytest.raises(RuntimeError):
        await pipeline.cancel(waiting.id, user_id=2)
    assert pipeline.place(waiting.id) == 1  # still in line, not lost
    monkeypatch.undo()
    assert await pipeline.cancel(waiting.id, user_id=2) is True
    assert harness.board.events_of(waiting.id, Queued)[-1] == Queued(1)


async def test_a_failure_the_member_was_not_told_of_is_told_at_the_next_start(harness: Harness) -> None:
    harness.fake.queue_timeline(Timeline.failing("the model crashed"))
    told: list[str] = []

    class Mute(RecordingReporter):
        async def failed(self, event: Failed) -> None:
            told.append(event.job.id)
            self.board.changed()
            raise RuntimeError("Discord is down right now")

    pipeline = await harness.start(reporters=lambda job: Mute(harness.board, job.id))
    mute = Mute(harness.board, None)
    job = await pipeline.submit(request(n=2), mute)
    mute.bind(job.id)
    await harness.board.wait_for(lambda: told == [job.id])
    assert harness.store is not None
    stored = await harness.store.jobs.get(job.id)
    assert stored is not None
    assert (stored.state, stored.delivered_at) == (JobState.FAILED, None)  # failed, refunded, not yet told

    await harness.restart(pipeline)
    await harness.board.wait_finished([job.id])
    (failed,) = harness.board.failures[job.id]
    assert failure_text(failed, i18n.SOURCE) == "This request could not be completed. Your images were not counted."
    assert failed.refunded == 2
    store = harness.store
    assert store is not None
    announced = await store.jobs.get(job.id)
    assert announced is not None
    assert announced.delivered_at is not None

    # Told once: a further start says nothing more.
    await harness.restart(harness.pipelines[-1])
    assert len(harness.board.failures[job.id]) == 1

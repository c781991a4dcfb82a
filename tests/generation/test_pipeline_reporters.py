"""The pipeline and its reporters: built by the factory when none is given, a reporter that raises never stops a
job, a delivery that keeps failing is left for the next start, unexpected errors and vanished references."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any, ClassVar

import i18n
from cogs._texts import failure_text
from generation.events import Completed, DeliveryReceipt, Failed, FailureKind, ProgressEvent, Queued, Uploading
from generation.requests import Reference
from storage.jobs import Job, JobRepository, JobState
from storage.store import Storage
from tests.fakes.toapis import Endpoint, Timeline
from tests.generation.conftest import BlockingJobs, Board, Harness, RecordingReporter, png_bytes, request


class RaisingReporter:
    """Every call fails: the pipeline must carry on regardless."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.calls: list[str] = []

    def _call(self, name: str) -> None:
        self.calls.append(name)
        self.board.changed()

    def progress(self, event: ProgressEvent) -> None:
        self._call(type(event).__name__)
        raise RuntimeError("the progress message is gone")

    async def deliver(self, event: Completed) -> DeliveryReceipt:
        self._call("deliver")
        raise RuntimeError("Discord exploded")

    async def failed(self, event: Failed) -> None:
        self._call("failed")
        raise RuntimeError("Discord exploded again")


async def test_without_a_reporter_the_factory_builds_one_and_the_reply_message_is_stored(harness: Harness) -> None:
    built: list[str] = []
    board = harness.board

    def factory(job: Job) -> Any:
        built.append(job.id)
        return board.factory(job)

    pipeline = await harness.start(reporters=factory)
    job = await pipeline.submit(dataclasses.replace(request(), reply_message_id=987))
    assert job.reply_message_id == 987
    await harness.settled([job.id])
    assert built == [job.id]
    assert board.events(job.id)[0] == Queued(1)
    assert job.id in board.shown


async def test_a_reporter_that_raises_does_not_stop_the_job(harness: Harness) -> None:
    reporter = RaisingReporter(harness.board)
    pipeline = await harness.start(delivery_attempts=2)
    job = await pipeline.submit(request(references=(Reference(png_bytes(), "image/png"),)), reporter)
    store = harness.store
    assert store is not None
    # Delivery raises on every attempt: the job is left delivering (for the next start), never failed.
    await harness.board.wait_for(lambda: reporter.calls.count("deliver") == 2)
    assert {"Queued", "Uploading", "Submitted", "Generating"} <= set(reporter.calls)
    assert harness.fake.tasks_for(job.id)

    await harness.restart(pipeline)
    await harness.settled([job.id])
    assert job.id in harness.board.shown


async def test_a_delivery_that_keeps_failing_is_left_for_the_next_start(harness: Harness) -> None:
    board = harness.board
    board.receipt_for = lambda event: DeliveryReceipt(delivered=False, detail="Discord is down")
    pipeline = await harness.start(delivery_attempts=3)
    job = await harness.submit(pipeline, request(n=2))
    await board.wait_for(lambda: board.delivery_calls.get(job.id, 0) == 3)
    store = harness.store
    assert store is not None
    stored = await store.jobs.get(job.id)
    assert stored is not None
    assert stored.state is JobState.DELIVERING
    assert not board.failures
    assert (harness.spool_dir / job.id).is_dir()  # the results wait in the spool

    board.receipt_for = None
    await harness.restart(pipeline)
    await harness.settled([job.id])
    assert board.delivery_calls[job.id] == 4
    assert job.id in board.shown
    assert len(harness.fake.requests_to(Endpoint.DOWNLOAD)) == 2  # not downloaded again


class ExplodingJobs(BlockingJobs):
    """Raises an unexpected error when asked to store `before`."""

    async def set_state(self, job_id: str, state: JobState, **fields: Any) -> Job:
        if state is self.before:
            raise RuntimeError(f"disk on fire while storing {state.value}")
        return await super().set_state(job_id, state, **fields)


async def test_an_unexpected_error_before_the_submit_fails_the_job_and_refunds(harness: Harness) -> None:
    store = await harness.open_store()
    exploding = ExplodingJobs(store, before=JobState.SUBMITTING)
    pipeline = await harness.start(store=dataclasses.replace(store, jobs=exploding))
    job = await harness.submit(pipeline, request(n=2))
    await harness.settled([job.id])
    failed = harness.board.failure(job.id)
    assert failed.kind is FailureKind.INTERNAL
    assert failed.refunded == 2
    assert "Your images were not counted" in failure_text(failed, i18n.SOURCE)
    usage = await store.usage.get(job.id)
    assert usage is not None
    assert usage.error == "internal: RuntimeError: disk on fire while storing submitting"
    assert not harness.fake.requests_to(Endpoint.SUBMIT)


async def test_an_unexpected_error_once_the_task_exists_leaves_the_job_to_be_taken_up_again(harness: Harness) -> None:
    # The task exists upstream (and may bill): the job is not given up, but found again and delivered.
    store = await harness.open_store()
    exploding = OnceExplodingJobs(store, before=JobState.RUNNING)
    pipeline = await harness.start(store=dataclasses.replace(store, jobs=exploding))
    job = await harness.submit(pipeline, request(n=2))
    await harness.settled([job.id])
    assert exploding.exploded == 1
    assert job.id in harness.board.shown
    assert not harness.board.failures
    assert len(harness.fake.tasks_for(job.id)) == 1  # looked up by its business id, never submitted again
    assert await store.quotas.reserved_for_job(job.id) == 2


class OnceExplodingJobs(JobRepository):
    """Raises an unexpected error the first time it is asked to store `before` (a passing database fault)."""

    def __init__(self, store: Storage, *, before: JobState) -> None:
        super().__init__(store.db, store.clock)
        self.before = before
        self.exploded = 0

    async def set_state(self, job_id: str, state: JobState, **fields: Any) -> Job:
        if state is self.before and not self.exploded:
            self.exploded += 1
            raise RuntimeError(f"disk hiccup while storing {state.value}")
        return await super().set_state(job_id, state, **fields)


async def test_references_purged_before_the_upload_fail_the_job_and_refund(harness: Harness) -> None:
    store = await harness.open_store()
    gate = asyncio.Event()
    jobs = BlockingJobs(store, before=JobState.UPLOADING, gate=gate)
    pipeline = await harness.start(store=dataclasses.replace(store, jobs=jobs))
    job = await harness.submit(pipeline, request(references=(Reference(png_bytes(), "image/png"),)))
    await jobs.wait_stopped(1)
    assert await store.references.purge_older_than(store.clock() + timedelta(days=1)) == 1
    gate.set()
    await harness.settled([job.id])
    failed = harness.board.failure(job.id)
    assert (failed.kind, failed.refunded) == (FailureKind.REFERENCES_GONE, 1)
    assert not harness.board.events_of(job.id, Uploading)
    assert not harness.fake.requests_to(Endpoint.UPLOAD)


class ClosableRecordingReporter(RecordingReporter):
    """A reporter with work of its own in the background (a pending progress edit) that close() must stop."""

    closed: ClassVar[list[str | None]] = []

    async def aclose(self) -> None:
        ClosableRecordingReporter.closed.append(self.job_id)


async def test_close_stops_the_reporters_of_unfinished_jobs(harness: Harness) -> None:
    fake, board = harness.fake, harness.board
    ClosableRecordingReporter.closed = []
    fake.queue_timeline(Timeline.instant(), Timeline.never_ends())
    pipeline = await harness.start(
        max_concurrent_jobs=1, reporters=lambda job: ClosableRecordingReporter(board, job.id)
    )
    jobs = []
    for user_id in (1, 2, 3):
        reporter = ClosableRecordingReporter(board, None)
        job = await pipeline.submit(request(user_id=user_id), reporter)
        reporter.bind(job.id)
        jobs.append(job)
        if user_id == 1:
            await harness.settled([job.id])  # finished: its reporter is done with already
    done, running, waiting = jobs
    await fake.wait_for(lambda: bool(fake.tasks_for(running.id)))
    assert pipeline.place(waiting.id) == 1
    await pipeline.close()
    assert sorted(ClosableRecordingReporter.closed, key=str) == sorted([running.id, waiting.id], key=str)
    # A plain Reporter (no aclose) is fine too: the other tests' pipelines close without one.
    assert done.id in board.shown


async def test_by_default_a_refused_delivery_is_tried_again_until_it_goes_through(harness: Harness) -> None:
    board = harness.board
    refusals = 4

    def receipt(event: object) -> DeliveryReceipt | None:
        nonlocal refusals
        if refusals:
            refusals -= 1
            return DeliveryReceipt(delivered=False, detail="Discord is down")
        return None

    board.receipt_for = receipt
    pipeline = await harness.start()  # delivery_attempts=None: no giving up while the process runs
    job = await harness.submit(pipeline, request())
    await harness.settled([job.id])
    assert board.delivery_calls[job.id] == 5
    assert job.id in board.shown
    assert not board.failures

"""Every way a job can fail: what is refunded (docs/guarantees.md, "Refunds"), what the usage log says,
what the member is told; the service problems that alert the operator once and trip the circuit breaker."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import i18n
from cogs._texts import failure_text
from generation.alerts import AlertKind
from generation.events import DeliveryReceipt, Failed, FailureKind, Late, Paused, Queued
from generation.refusals import Unavailable
from generation.requests import Reference
from storage.jobs import JobState
from tests.e2e.harness import wait_until
from tests.fakes.toapis import INSTANT_RETRY, Endpoint, FakeToAPIs, Fault, Timeline
from tests.generation.conftest import BlockingJobs, Harness, RecordingReporter, png_bytes, request
from toapis import DownloadedImage, DownloadError, ToAPIsClient

UNSUPPORTED = {"success": False, "message": "Unsupported image type. Allowed: JPEG, PNG, WebP, GIF"}


def arm(endpoint: Endpoint, fault: Fault) -> Callable[[FakeToAPIs], None]:
    return lambda fake: fake.fail(endpoint, fault, times=None)


def timeline(chosen: Timeline) -> Callable[[FakeToAPIs], None]:
    return lambda fake: fake.queue_timeline(chosen)


@pytest.mark.parametrize(
    ("setup", "kind", "tasks", "error", "said"),
    [
        pytest.param(
            timeline(Timeline.failing("the model crashed")),
            FailureKind.TASK_FAILED,
            1,
            "task_failed: generation_failed: the model crashed",
            "could not generate this image",
            id="task-failed",
        ),
        pytest.param(
            arm(Endpoint.SUBMIT, Fault.content_policy()),
            FailureKind.CONTENT_POLICY,
            0,
            "content_policy: ToAPIs submit: The prompt was rejected by the content policy",
            "content policy",
            id="content-policy-on-submit",
        ),
        pytest.param(
            timeline(Timeline.content_policy()),
            FailureKind.CONTENT_POLICY,
            1,
            "content_policy: generation_failed: Your request was rejected by the safety system",
            "content policy",
            id="content-policy-task",
        ),
        pytest.param(
            arm(Endpoint.SUBMIT, Fault.bad_request("size 1024x1024 is not supported", param="size")),
            FailureKind.BAD_REQUEST,
            0,
            "bad_request: ToAPIs submit: size 1024x1024 is not supported (HTTP 400, code invalid_request)",
            "The image service refused this request.",  # the service's words stay in the log
            id="bad-request",
        ),
        pytest.param(
            arm(Endpoint.LOOKUP, Fault.not_found()),
            FailureKind.TASK_LOST,
            1,
            "task_lost: ToAPIs task lookup: Task not found (HTTP 404, code 404)",
            "lost track of this job",
            id="task-not-found-404",
        ),
        pytest.param(
            arm(Endpoint.LOOKUP, Fault.task_not_exist()),
            FailureKind.TASK_LOST,
            1,
            "task_lost: ToAPIs task lookup: task_not_exist (HTTP 400)",
            "lost track of this job",
            id="task-not-exist-400",
        ),
        pytest.param(
            arm(Endpoint.SUBMIT, Fault.server_error()),
            FailureKind.UPSTREAM,
            0,
            "upstream: ToAPIs submit: Internal server error (HTTP 500, code internal_error)",
            "having trouble",
            id="server-errors-after-retries",
        ),
        pytest.param(
            arm(Endpoint.UPLOAD, Fault.answer(400, UNSUPPORTED)),
            FailureKind.BAD_REQUEST,
            0,
            "bad_request: ToAPIs upload: Unsupported image type",
            "refused reference image 1.",
            id="upload-rejected",
        ),
    ],
)
async def test_each_failure_refunds_the_images_and_is_logged(
    harness: Harness, setup: Callable[[FakeToAPIs], None], kind: FailureKind, tasks: int, error: str, said: str
) -> None:
    fake, board = harness.fake, harness.board
    setup(fake)
    pipeline = await harness.start(breaker_threshold=100)
    job = await harness.submit(pipeline, request(n=3, references=(Reference(png_bytes(), "image/png"),)))
    jobs = await harness.settled([job.id])
    store = harness.store
    assert store is not None

    failed = board.failure(job.id)
    assert failed.kind is kind
    assert said in failure_text(failed, i18n.SOURCE)
    assert "Your images were not counted" in failure_text(failed, i18n.SOURCE)
    assert failed.refunded == 3
    assert failed.job.state is JobState.FAILED
    assert job.id not in board.shown
    assert await store.quotas.reserved_for_job(job.id) == 0
    reservation = await store.quotas.reservation(job.id)
    assert reservation is not None
    assert reservation.reserved_images == 3

    stored = jobs[job.id]
    assert (stored.state, stored.error_code) == (JobState.FAILED, kind.value)
    usage = await store.usage.get(job.id)
    assert usage is not None
    assert (usage.status, usage.images, usage.n) == ("failed", 0, 3)
    assert usage.error is not None
    assert usage.error.startswith(error)
    assert usage.finished_at is not None
    assert len(fake.tasks_for(job.id)) == tasks
    assert usage.task_id == (fake.tasks_for(job.id)[0].id if tasks else None)
    assert list(harness.spool_dir.iterdir()) == []
    if kind is FailureKind.BAD_REQUEST and "upload" in error:
        assert not fake.requests_to(Endpoint.SUBMIT)


async def test_fewer_images_than_asked_refunds_the_missing_ones(harness: Harness) -> None:
    fake, board = harness.fake, harness.board
    fake.queue_timeline(Timeline.fewer_images(2))
    pipeline = await harness.start()
    job = await harness.submit(pipeline, request(n=4))
    await harness.settled([job.id])
    store = harness.store
    assert store is not None
    (task,) = fake.tasks_for(job.id)
    shown = board.shown[job.id]
    assert shown.images == (fake.result_png(task.id, 1), fake.result_png(task.id, 2))
    assert shown.refunded == 2
    assert await store.quotas.reserved_for_job(job.id) == 2
    usage = await store.usage.get(job.id)
    assert usage is not None
    assert (usage.status, usage.n, usage.images) == ("completed", 4, 2)


async def test_a_download_that_fails_is_not_refunded_since_the_task_completed(harness: Harness) -> None:
    fake, board = harness.fake, harness.board
    fake.fail(Endpoint.DOWNLOAD, Fault.answer(404, "Not Found"), times=None)
    pipeline = await harness.start()
    job = await harness.submit(pipeline, request(n=2))
    await harness.settled([job.id])
    store = harness.store
    assert store is not None
    failed = board.failure(job.id)
    assert failed.kind is FailureKind.DOWNLOAD
    assert failed.refunded == 0
    assert "stay counted" in failure_text(failed, i18n.SOURCE)
    assert await store.quotas.reserved_for_job(job.id) == 2
    usage = await store.usage.get(job.id)
    assert usage is not None
    assert usage.status == "failed"
    assert usage.error is not None
    assert usage.error.startswith("download: result 0: ")
    assert usage.task_id == fake.tasks_for(job.id)[0].id
    # Each result tried twice: once, then once more before giving up (the client itself does not retry a 404).
    assert len(fake.requests_to(Endpoint.DOWNLOAD)) == 4


async def test_a_result_that_failed_to_download_is_tried_again_before_delivery(harness: Harness) -> None:
    fake, board = harness.fake, harness.board
    fake.fail(Endpoint.DOWNLOAD, Fault.answer(404, "Not Found"))
    pipeline = await harness.start()
    job = await harness.submit(pipeline, request(n=2))
    await harness.settled([job.id])
    (task,) = fake.tasks_for(job.id)
    assert board.shown[job.id].images == (fake.result_png(task.id, 1), fake.result_png(task.id, 2))
    assert [request.status for request in fake.requests_to(Endpoint.DOWNLOAD)] == [404, 200, 200]


class BrokenFirstResult(ToAPIsClient):
    """The first result of every task cannot be downloaded; the others can."""

    async def download_image(
        self, url: str, *, max_bytes: int, dest: Path | None = None, timeout: float | None = None
    ) -> DownloadedImage:
        if url.endswith("/1.png"):
            raise DownloadError("the files host answered HTTP 410", status=410, operation="download")
        return await super().download_image(url, max_bytes=max_bytes, dest=dest, timeout=timeout)


async def test_results_that_cannot_be_downloaded_are_left_out_and_stay_counted(
    harness: Harness, toapis_session: aiohttp.ClientSession
) -> None:
    fake, board = harness.fake, harness.board
    harness.client = BrokenFirstResult(
        toapis_session, api_key=fake.api_key, base_url=fake.base_url, timeout=5.0, retry=INSTANT_RETRY
    )
    pipeline = await harness.start()
    job = await harness.submit(pipeline, request(n=2))
    await harness.settled([job.id])
    (task,) = fake.tasks_for(job.id)
    assert board.shown[job.id].images == (fake.result_png(task.id, 2),)
    assert board.shown[job.id].refunded == 0
    store = harness.store
    assert store is not None
    assert await store.quotas.reserved_for_job(job.id) == 2  # generated, hence billed
    usage = await store.usage.get(job.id)
    assert usage is not None
    assert (usage.status, usage.images) == ("completed", 1)


async def test_a_task_still_running_after_the_late_limit_fails_without_refund(harness: Harness) -> None:
    fake, board = harness.fake, harness.board
    fake.queue_timeline(Timeline.never_ends())
    pipeline = await harness.start(generation_timeout=0.02, late_poll_interval=0.01, late_limit=0.1)
    job = await harness.submit(pipeline, request(n=2))
    await harness.settled([job.id])
    store = harness.store
    assert store is not None
    failed = board.failure(job.id)
    assert failed.kind is FailureKind.TIMED_OUT
    assert failed.refunded == 0
    assert len(board.events_of(job.id, Late)) == 1
    assert await store.quotas.reserved_for_job(job.id) == 2
    usage = await store.usage.get(job.id)
    assert usage is not None
    assert usage.error is not None
    assert usage.error.startswith("timed_out: ")


async def test_a_permanent_delivery_failure_fails_the_job_without_refund(harness: Harness) -> None:
    board = harness.board
    board.receipt_for = lambda event: DeliveryReceipt(delivered=False, permanent=True, detail="channel deleted")
    pipeline = await harness.start()
    job = await harness.submit(pipeline, request(n=1))
    await harness.settled([job.id])
    failed = board.failure(job.id)
    assert failed.kind is FailureKind.DELIVERY
    assert failed.refunded == 0
    assert board.delivery_calls[job.id] == 1
    store = harness.store
    assert store is not None
    usage = await store.usage.get(job.id)
    assert usage is not None
    assert usage.error == "delivery: channel deleted"


async def test_a_transient_delivery_failure_is_retried(harness: Harness) -> None:
    board = harness.board
    calls = 0

    def flaky(event: Any) -> DeliveryReceipt | None:
        nonlocal calls
        calls += 1
        return DeliveryReceipt(delivered=False, detail="Discord 503") if calls < 3 else None

    board.receipt_for = flaky
    pipeline = await harness.start()
    job = await harness.submit(pipeline, request())
    jobs = await harness.settled([job.id])
    assert jobs[job.id].state is JobState.COMPLETED
    assert board.delivery_calls[job.id] == 3


# -- service problems: the key and the balance --------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "alert"),
    [
        pytest.param(Fault.unauthorized(), AlertKind.API_KEY_REJECTED, id="401"),
        pytest.param(Fault.insufficient_balance(), AlertKind.BALANCE_EXHAUSTED, id="402"),
    ],
)
async def test_a_key_or_balance_problem_fails_every_job_alerts_once_and_trips_the_breaker(
    harness: Harness, fault: Fault, alert: AlertKind
) -> None:
    fake, board = harness.fake, harness.board
    fake.fail(Endpoint.SUBMIT, fault, times=None)
    fake.fail(Endpoint.MODELS, fault, times=None)  # the probe fails the same way until it is fixed
    # Three jobs reach the submit together (the gate holds them until all are in flight).
    store = await harness.open_store()
    gate = asyncio.Event()
    jobs_repo = BlockingJobs(store, before=JobState.SUBMITTING, gate=gate)
    pipeline = await harness.start(store=dataclasses.replace(store, jobs=jobs_repo), max_concurrent_jobs=3)
    jobs = [await harness.submit(pipeline, request(user_id=100 + i, n=2)) for i in range(3)]
    await jobs_repo.wait_stopped(3)
    gate.set()
    await harness.settled(job.id for job in jobs)

    for job in jobs:
        failed = board.failure(job.id)
        assert failed.kind is FailureKind.UNAVAILABLE
        assert failure_text(failed, i18n.SOURCE).startswith(i18n.translate("failure.unavailable", i18n.SOURCE))
        assert failed.refunded == 2
        assert await store.quotas.reserved_for_job(job.id) == 0
        assert not fake.tasks_for(job.id)
    assert [seen.kind for seen in board.alerts] == [alert]
    assert pipeline.breaker.is_open

    with pytest.raises(Unavailable):
        await pipeline.submit(request(), board.reporter())
    probes = len(fake.requests_to(Endpoint.MODELS))
    await fake.wait_for(lambda: len(fake.requests_to(Endpoint.MODELS)) >= probes + 3)
    assert pipeline.breaker.is_open

    fake.clear_faults()
    await board.wait_for(lambda: not pipeline.breaker.is_open)
    assert [seen.kind for seen in board.alerts] == [alert, AlertKind.UPSTREAM_BACK]
    again = await harness.submit(pipeline, request())
    await harness.settled([again.id])
    assert again.id in board.shown


async def test_a_rejected_key_while_polling_pauses_the_job_until_the_key_works(harness: Harness) -> None:
    fake, board = harness.fake, harness.board
    fake.queue_timeline(Timeline.never_ends())
    pipeline = await harness.start()
    job = await harness.submit(pipeline, request(n=2))
    await fake.wait_for(lambda: len(fake.requests_to(Endpoint.LOOKUP)) >= 1)
    fake.fail(Endpoint.LOOKUP, Fault.unauthorized(), times=None)
    fake.fail(Endpoint.MODELS, Fault.unauthorized(), times=None)
    await board.wait_for(lambda: bool(board.events_of(job.id, Paused)))
    assert pipeline.breaker.is_open
    assert [seen.kind for seen in board.alerts] == [AlertKind.API_KEY_REJECTED]

    (task,) = fake.tasks_for(job.id)
    fake.end_task(task.id)
    fake.clear_faults()
    await harness.settled([job.id])
    # The task existed all along: it is delivered, not failed, and still counted.
    assert job.id in board.shown
    store = harness.store
    assert store is not None
    assert await store.quotas.reserved_for_job(job.id) == 2


# -- the circuit breaker --------------------------------------------------------------------------------------


async def test_the_breaker_opens_after_repeated_failures_refuses_at_once_and_closes_on_a_good_probe(
    harness: Harness,
) -> None:
    fake, board = harness.fake, harness.board
    fake.fail(Endpoint.SUBMIT, Fault.bad_gateway(), times=None)
    fake.fail(Endpoint.MODELS, Fault.unavailable(), times=4)
    pipeline = await harness.start(breaker_threshold=3)
    for attempt in range(3):
        assert not pipeline.breaker.is_open, attempt
        job = await harness.submit(pipeline, request(n=2))
        await harness.settled([job.id])
        failed = board.failure(job.id)
        assert (failed.kind, failed.refunded) == (FailureKind.UPSTREAM, 2)
    assert pipeline.breaker.is_open
    assert [seen.kind for seen in board.alerts] == [AlertKind.UPSTREAM_DOWN]
    assert "502" in board.alerts[0].detail

    submits = len(fake.requests_to(Endpoint.SUBMIT))
    with pytest.raises(Unavailable):
        await pipeline.submit(request(), board.reporter())
    assert len(fake.requests_to(Endpoint.SUBMIT)) == submits

    fake.clear_faults(Endpoint.SUBMIT)
    await board.wait_for(lambda: not pipeline.breaker.is_open)
    # Probed until it answered: four refusals, then the success that closed the breaker.
    models = fake.requests_to(Endpoint.MODELS)
    assert [request.status for request in models] == [503, 503, 503, 503, 200]
    assert [seen.kind for seen in board.alerts] == [AlertKind.UPSTREAM_DOWN, AlertKind.UPSTREAM_BACK]
    job = await harness.submit(pipeline, request())
    await harness.settled([job.id])
    assert job.id in board.shown


async def test_jobs_waiting_when_the_breaker_opens_wait_for_it_to_close(harness: Harness) -> None:
    fake, board = harness.fake, harness.board
    store = await harness.open_store()
    gate = asyncio.Event()
    jobs_repo = BlockingJobs(store, before=JobState.SUBMITTING, gate=gate)
    pipeline = await harness.start(
        store=dataclasses.replace(store, jobs=jobs_repo), max_concurrent_jobs=1, breaker_threshold=1
    )
    fake.fail(Endpoint.SUBMIT, Fault.server_error(), times=3)  # the first job's submit and the client's retries
    fake.fail(Endpoint.MODELS, Fault.server_error(), times=None)
    first = await harness.submit(pipeline, request(user_id=1))
    await jobs_repo.wait_stopped(1)
    waiting = await harness.submit(pipeline, request(user_id=2))
    assert board.events_of(waiting.id, Queued) == [Queued(1)]
    gate.set()

    await harness.settled([first.id])
    assert board.failure(first.id).kind is FailureKind.UPSTREAM
    assert pipeline.breaker.is_open
    await board.wait_for(lambda: bool(board.events_of(waiting.id, Paused)))
    probes = len(fake.requests_to(Endpoint.MODELS))
    await fake.wait_for(lambda: len(fake.requests_to(Endpoint.MODELS)) >= probes + 3)
    # Not sent upstream while the breaker is open: it would only fail.
    assert not fake.tasks_for(waiting.id)
    assert pipeline.queued == 1

    fake.clear_faults()
    await harness.settled([waiting.id])
    assert waiting.id in board.shown
    assert board.events_of(waiting.id, Queued) == [Queued(1), Queued(1)]


# -- cancelling -------------------------------------------------------------------------------------------------


async def test_cancel_while_queued_refunds_and_only_the_requester_may(harness: Harness) -> None:
    fake, board = harness.fake, harness.board
    fake.queue_timeline(Timeline.never_ends())
    pipeline = await harness.start(max_concurrent_jobs=1)
    running = await harness.submit(pipeline, request(user_id=1))
    await fake.wait_for(lambda: bool(fake.tasks_for(running.id)))
    mine = await harness.submit(pipeline, request(guild_id=1, user_id=2, n=3))
    other = await harness.submit(pipeline, request(guild_id=2, user_id=3))
    assert (pipeline.place(mine.id), pipeline.place(other.id)) == (1, 2)

    assert await pipeline.cancel(mine.id, user_id=3) is False  # someone else's job
    assert (pipeline.place(mine.id), pipeline.place(other.id)) == (1, 2)  # and it keeps its place
    assert await pipeline.cancel(running.id, user_id=1) is False  # already submitted
    assert await pipeline.cancel("no-such-job", user_id=2) is False
    assert not board.failures

    assert await pipeline.cancel(mine.id, user_id=2) is True
    await harness.settled([mine.id])
    failed = board.failure(mine.id)
    assert (failed.kind, failed.refunded) == (FailureKind.CANCELLED, 3)
    store = harness.store
    assert store is not None
    assert await store.quotas.reserved_for_job(mine.id) == 0
    usage = await store.usage.get(mine.id)
    assert usage is not None
    assert usage.status == "failed"
    assert usage.error is not None
    assert usage.error.startswith("cancelled")
    assert await pipeline.cancel(mine.id, user_id=2) is False  # only once
    # The job behind it moved up.
    assert board.events_of(other.id, Queued) == [Queued(2), Queued(1)]
    assert pipeline.place(other.id) == 1

    fake.end_task(fake.tasks_for(running.id)[0].id)
    await harness.settled([running.id, other.id])
    assert not fake.tasks_for(mine.id)
    assert {running.id, other.id} <= board.shown.keys()


async def test_a_job_kept_waiting_by_someone_elses_cancel_keeps_its_turn(harness: Harness) -> None:
    fake = harness.fake
    fake.queue_timeline(Timeline.never_ends())
    pipeline = await harness.start(max_concurrent_jobs=1)
    running = await harness.submit(pipeline, request(guild_id=1, user_id=1))
    await fake.wait_for(lambda: bool(fake.tasks_for(running.id)))
    first = await harness.submit(pipeline, request(guild_id=1, user_id=2))
    second = await harness.submit(pipeline, request(guild_id=2, user_id=3))
    assert await pipeline.cancel(first.id, user_id=3) is False
    fake.end_task(fake.tasks_for(running.id)[0].id)
    await harness.settled([running.id, first.id, second.id])
    order = [task.client_business_id for task in fake.tasks.values()]
    assert order == [running.id, first.id, second.id]


async def test_a_pause_does_not_restart_the_generation_timeout(harness: Harness) -> None:
    fake, board = harness.fake, harness.board
    fake.queue_timeline(Timeline.never_ends())
    pipeline = await harness.start(poll_interval=0.005, generation_timeout=0.3, late_poll_interval=5.0)
    job = await harness.submit(pipeline, request())
    await fake.wait_for(lambda: len(fake.requests_to(Endpoint.LOOKUP)) >= 1)
    fake.fail(Endpoint.LOOKUP, Fault.unauthorized(), times=None)
    fake.fail(Endpoint.MODELS, Fault.unauthorized(), times=None)
    await board.wait_for(lambda: bool(board.events_of(job.id, Paused)))
    (task,) = fake.tasks_for(job.id)
    # Paused past the job's generation timeout (each probe is a request, so this waits on requests, not a clock).
    await fake.wait_for(lambda: time.monotonic() - task.created > 0.4)
    assert not board.events_of(job.id, Late)

    cleared = time.monotonic()
    fake.clear_faults()
    await board.wait_for(lambda: bool(board.events_of(job.id, Late)))
    looks = [seen for seen in fake.requests_to(Endpoint.LOOKUP) if seen.time >= cleared]
    # One look when the key works again, then late at once: the timeout ran on during the pause.
    assert len(looks) <= 2
    fake.end_task(task.id)
    await harness.restart(pipeline)  # rather than wait out late_poll_interval
    await harness.settled([job.id])
    assert job.id in board.shown


async def test_a_job_that_ends_during_a_pause_is_delivered_when_the_key_works_again(harness: Harness) -> None:
    fake, board = harness.fake, harness.board
    fake.queue_timeline(Timeline.never_ends())
    pipeline = await harness.start(generation_timeout=0.05, late_poll_interval=600.0)
    job = await harness.submit(pipeline, request())
    await fake.wait_for(lambda: len(fake.requests_to(Endpoint.LOOKUP)) >= 1)
    fake.fail(Endpoint.LOOKUP, Fault.unauthorized(), times=None)
    fake.fail(Endpoint.MODELS, Fault.unauthorized(), times=None)
    await board.wait_for(lambda: bool(board.events_of(job.id, Paused)))
    (task,) = fake.tasks_for(job.id)
    fake.end_task(task.id)
    await fake.wait_for(lambda: time.monotonic() - task.created > 0.1)
    fake.clear_faults()
    # Delivered without waiting out late_poll_interval, and never called late: it had ended.
    await harness.settled([job.id])
    assert job.id in board.shown
    assert not board.events_of(job.id, Late)


async def test_the_pipeline_keeps_no_reporter_of_a_finished_job(harness: Harness) -> None:
    fake, board = harness.fake, harness.board
    fake.queue_timeline(Timeline.never_ends())
    pipeline = await harness.start(max_concurrent_jobs=1)
    refs = []
    jobs = []
    for user_id in (1, 2, 3):
        reporter = board.reporter()
        job = await pipeline.submit(request(user_id=user_id), reporter)
        reporter.bind(job.id)
        refs.append(weakref.ref(reporter))
        jobs.append(job)
        del reporter
    await fake.wait_for(lambda: bool(fake.tasks_for(jobs[0].id)))
    assert await pipeline.cancel(jobs[1].id, user_id=2)
    assert await pipeline.cancel(jobs[2].id, user_id=3)
    fake.end_task(fake.tasks_for(jobs[0].id)[0].id)
    await harness.settled(job.id for job in jobs)
    gc.collect()
    assert [ref() for ref in refs] == [None, None, None]


async def test_a_failure_told_after_a_restart_does_not_say_images_some_of_which_stay_counted_were_not(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two of four 2K images came back (two given back), then their delivery was refused for good: the two
    delivered stay counted. Told only after a restart (the first telling failed), the failure must not say the
    images were not counted."""
    fake, board = harness.fake, harness.board
    fake.queue_timeline(Timeline.fewer_images(2))
    board.receipt_for = lambda event: DeliveryReceipt(delivered=False, permanent=True, detail="channel deleted")
    told = RecordingReporter.failed

    async def first_telling_fails(self: RecordingReporter, event: Failed) -> None:
        if not event.details_lost:
            raise RuntimeError("Discord is down")
        await told(self, event)

    monkeypatch.setattr(RecordingReporter, "failed", first_telling_fails)
    pipeline = await harness.start()
    job = await harness.submit(pipeline, request(n=4, weight=2))
    store = harness.store
    assert store is not None

    async def failed_untold() -> bool:
        stored = await store.jobs.get(job.id)
        return stored is not None and stored.is_finished and pipeline.reporter_of(job.id) is None

    await wait_until(failed_untold, 10, what="the failure, stored and not told")
    assert await store.quotas.reserved_for_job(job.id) == 4  # the two delivered 2K images

    await harness.restart(pipeline)

    await board.wait_finished([job.id])
    failed = board.failure(job.id)
    assert (failed.kind, failed.details_lost) == (FailureKind.DELIVERY, True)
    assert failed.refunded == 0
    assert "not counted" not in failure_text(failed, i18n.SOURCE)

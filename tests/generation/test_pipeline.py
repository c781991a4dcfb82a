"""The pipeline end to end against the ToAPIs fake and a real SQLite file: a full job, references, refusals."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image, ImageChops, ImageStat

from generation.events import (
    Completed,
    Generating,
    Queued,
    Submitted,
    Uploading,
)
from generation.images import ImageProblem
from generation.pipeline import Pipeline
from generation.refusals import QuotaExceeded, ReferenceUnusable, Restarting
from generation.requests import Reference
from generation.validation import prepare_references
from storage.jobs import JobState
from storage.quotas import OperatorDefaults, Period, RuleScope
from tests.e2e.harness import wait_until
from tests.fakes.toapis import Endpoint, ResultFormat, Timeline
from tests.generation.conftest import Harness, png_bytes, request


async def test_a_full_job_is_delivered_recorded_and_cleaned_up(harness: Harness) -> None:
    fake, board = harness.fake, harness.board
    fake.queue_timeline(Timeline.never_ends(progress=60))
    pipeline = await harness.start()
    job = await harness.submit(
        pipeline, request(guild_id=7, channel_id=70, user_id=700, prompt="  a red fox in snow", n=2, aspect="3:2")
    )
    assert job.state is JobState.QUEUED
    # Held at 60 % until the member has seen it, then finished.
    await board.wait_for(lambda: 60 in [event.percent for event in board.events_of(job.id, Generating)])
    fake.end_task(fake.tasks_for(job.id)[0].id)
    await harness.settled([job.id])
    store = harness.store
    assert store is not None

    shown = board.shown[job.id]
    (task,) = fake.tasks_for(job.id)
    assert shown.images == (fake.result_png(task.id, 1), fake.result_png(task.id, 2))
    assert shown.mime_types == ("image/png", "image/png")
    assert shown.refunded == 0
    assert (task.n, task.size, task.prompt) == (2, "1536x1024", "  a red fox in snow")

    events = board.events(job.id)
    assert events[0] == Queued(1)
    assert Submitted(task.id) in events
    assert not board.events_of(job.id, Uploading)  # no references, nothing to upload
    percents = [event.percent for event in board.events_of(job.id, Generating)]
    assert percents == sorted(percents)
    assert percents[-1] == 100
    assert all(event.elapsed >= 0 for event in board.events_of(job.id, Generating))
    kinds = [type(event) for event in events]
    assert kinds.index(Queued) < kinds.index(Submitted) < kinds.index(Generating)

    stored = await store.jobs.get(job.id)
    assert stored is not None
    assert stored.state is JobState.COMPLETED
    assert stored.task_id == task.id
    assert stored.images_delivered == 2
    assert stored.result_message_id == 4242
    assert stored.delivered_at is not None

    usage = await store.usage.get(job.id)
    assert usage is not None
    assert (usage.guild_id, usage.channel_id, usage.user_id) == (7, 70, 700)
    assert usage.prompt == "  a red fox in snow"
    assert (usage.model, usage.aspect, usage.resolution, usage.n, usage.images) == ("gpt-image-2", "3:2", "1k", 2, 2)
    assert usage.reference_count == 0
    assert usage.task_id == task.id
    assert (usage.status, usage.error) == ("completed", None)
    assert usage.created_at == stored.created_at
    assert usage.finished_at is not None
    assert usage.finished_at >= usage.created_at

    assert await store.quotas.reserved_for_job(job.id) == 2
    # The spool goes right after the delivery is recorded (in a thread, off the event loop).
    await wait_until(lambda: not (harness.spool_dir / job.id).exists(), 5, what="the spool cleaned")
    assert board.delivery_calls[job.id] == 1
    assert board.deliveries_after_recorded == 0
    assert (pipeline.in_flight, pipeline.queued) == (0, 0)


async def test_references_are_uploaded_sent_with_the_submit_and_kept(harness: Harness) -> None:
    fake, board = harness.fake, harness.board
    first, second = png_bytes(80, 40, "red"), png_bytes(30, 60, "blue")
    pipeline = await harness.start()
    job = await harness.submit(
        pipeline, request(references=(Reference(first, "image/png"), Reference(second, "image/png")))
    )
    await harness.settled([job.id])
    assert job.id in board.shown

    uploads = fake.requests_to(Endpoint.UPLOAD)
    assert len(uploads) == 2
    for upload, data in zip(uploads, (first, second), strict=True):
        assert upload.headers["Content-Type"].startswith("multipart/form-data")
        assert upload.form is not None
        assert upload.form["file"].endswith(f"image/png {len(data)} bytes>")
        assert upload.form["purpose"] == "generation"
    assert [upload.data for upload in fake.uploads.values()] == [first, second]
    urls = [f"{fake.files_url}/uploads/{upload_id}.png" for upload_id in fake.uploads]
    (submit,) = fake.requests_to(Endpoint.SUBMIT)
    assert submit.json["reference_images"] == urls
    assert submit.json["client_business_id"] == job.id
    assert fake.tasks_for(job.id)[0].reference_images == tuple(urls)

    assert board.events_of(job.id, Uploading) == [Uploading(2)]
    store = harness.store
    assert store is not None
    kept = await store.references.load(job.id)
    assert [(image.data, image.mime_type) for image in kept] == [(first, "image/png"), (second, "image/png")]
    usage = await store.usage.get(job.id)
    assert usage is not None
    assert usage.reference_count == 2


async def test_results_sent_as_base64_are_spooled_and_delivered(harness: Harness) -> None:
    harness.fake.result_format = ResultFormat.B64_JSON
    pipeline = await harness.start()
    job = await harness.submit(pipeline, request(n=2))
    await harness.settled([job.id])
    (task,) = harness.fake.tasks_for(job.id)
    assert harness.board.shown[job.id].images == (
        harness.fake.result_png(task.id, 1),
        harness.fake.result_png(task.id, 2),
    )
    assert not harness.fake.requests_to(Endpoint.DOWNLOAD)
    # The spool goes right after the delivery is recorded (in a thread, off the event loop).
    await wait_until(lambda: not (harness.spool_dir / job.id).exists(), 5, what="the spool cleaned")


async def test_a_quota_refusal_names_the_rule_and_stores_and_uploads_nothing(harness: Harness) -> None:
    harness.defaults = OperatorDefaults(member_daily=3)
    pipeline = await harness.start()
    store = harness.store
    assert store is not None
    accepted = await harness.submit(pipeline, request(n=2))
    with pytest.raises(QuotaExceeded) as refused:
        await pipeline.submit(request(n=2, references=(Reference(png_bytes(), "image/png"),)), harness.board.reporter())
    quota = refused.value.usage
    assert quota is not None
    # What the member is told about comes with the refusal: which rule, what is left, when it resets.
    assert (quota.scope, quota.period, quota.limit, quota.remaining) == (RuleScope.MEMBER, Period.DAY, 3, 1)
    assert refused.value.requested == 2
    assert quota.resets_at == Period.DAY.next_start(harness.clock())

    await harness.settled([accepted.id])
    assert [job.id for job in await store.jobs.list_unfinished()] == []
    assert await store.db.fetch_value("SELECT COUNT(*) FROM jobs") == 1
    assert await store.db.fetch_value("SELECT COUNT(*) FROM quota_ledger") == 1
    assert await store.db.fetch_value("SELECT COUNT(*) FROM job_references") == 0
    assert not harness.fake.requests_to(Endpoint.UPLOAD)
    assert len(harness.fake.requests_to(Endpoint.SUBMIT)) == 1

    # A request that fits what is left is accepted.
    fits = await harness.submit(pipeline, request(n=1))
    await harness.settled([fits.id])
    assert fits.id in harness.board.shown


async def test_a_pipeline_not_started_or_closed_refuses_with_the_restart_message(harness: Harness) -> None:
    store = await harness.open_store()
    idle = Pipeline(config=harness.config(), client=harness.client, store=store, reporters=harness.board.factory)
    assert not idle.accepting
    with pytest.raises(Restarting):
        await idle.submit(request(), harness.board.reporter())

    pipeline = await harness.start()
    pipeline.check_available()  # accepting
    await pipeline.close()
    assert not pipeline.accepting
    with pytest.raises(Restarting):
        await pipeline.submit(request(), harness.board.reporter())
    assert await store.db.fetch_value("SELECT COUNT(*) FROM jobs") == 0


async def test_bad_references_are_refused_before_anything_is_reserved_or_uploaded(harness: Harness) -> None:
    pipeline = await harness.start()

    async def admit(blobs: list[bytes]) -> None:
        # As the cog does: prepare the references, then submit. A refusal there never reaches the pipeline.
        prepared = await prepare_references(blobs)
        references = tuple(Reference(image.data, image.mime_type) for image in prepared)
        await pipeline.submit(request(references=references), harness.board.reporter())

    with pytest.raises(ReferenceUnusable) as not_an_image:
        await admit([png_bytes(), b"%PDF-1.7 not an image at all"])
    assert (not_an_image.value.position, not_an_image.value.count) == (2, 2)
    assert not_an_image.value.problem is ImageProblem.NOT_AN_IMAGE
    with pytest.raises(ReferenceUnusable) as truncated:
        await admit([png_bytes()[:60]])
    assert (truncated.value.position, truncated.value.count) == (1, 1)
    assert truncated.value.problem is ImageProblem.UNREADABLE
    store = harness.store
    assert store is not None
    assert await store.db.fetch_value("SELECT COUNT(*) FROM quota_ledger") == 0
    assert await store.db.fetch_value("SELECT COUNT(*) FROM jobs") == 0
    assert not harness.fake.requests


async def test_completed_carries_the_job_for_the_embed(harness: Harness) -> None:
    events: list[Completed] = []

    async def keep(event: Completed) -> None:
        events.append(event)

    harness.board.before_show = keep
    pipeline = await harness.start()
    job = await harness.submit(pipeline, request(prompt="a teapot", n=1, aspect="2:3", resolution="2k", weight=2))
    await harness.settled([job.id])
    (event,) = events
    assert (event.job.id, event.job.prompt, event.job.n, event.job.user_id) == (job.id, "a teapot", 1, 100)
    assert (event.job.model, event.job.aspect, event.job.resolution, event.job.weight) == (
        "gpt-image-2",
        "2:3",
        "2k",
        2,
    )
    assert event.elapsed > 0
    assert [image.mime_type for image in event.images] == ["image/png"]
    assert not harness.board.failures


def noisy_gradient(width: int, height: int) -> Image.Image:
    """Structure (a gradient) that does not compress (noise): a PNG of it is large."""
    gradient = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    noise = Image.frombytes("RGB", (width, height), random.Random(7).randbytes(width * height * 3))
    return Image.blend(gradient, noise, 0.35)


async def test_a_12_mb_png_reference_is_reencoded_below_the_upload_limit_and_used(harness: Harness) -> None:
    original = noisy_gradient(2700, 1800)
    buffer = io.BytesIO()
    original.save(buffer, format="PNG")
    assert len(buffer.getvalue()) > 12_000_000
    (prepared,) = await prepare_references([buffer.getvalue()])

    pipeline = await harness.start()
    job = await harness.submit(pipeline, request(references=(Reference(prepared.data, prepared.mime_type),)))
    await harness.settled([job.id])
    assert job.id in harness.board.shown
    (upload,) = harness.fake.uploads.values()
    assert len(upload.data) <= 10_000_000
    sent = Image.open(io.BytesIO(upload.data))
    assert sent.width / sent.height == pytest.approx(1.5, rel=0.01)
    small = (48, 32)
    difference = ImageChops.difference(original.resize(small), sent.convert("RGB").resize(small))
    assert max(ImageStat.Stat(difference).mean) < 8  # still looks like the original

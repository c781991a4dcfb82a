"""/imagine when the image service fails: a short message, the images refunded, the failure in the usage log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import i18n
from storage.jobs import Job, JobState
from tests.cogs.conftest import World, WorldFactory, delivered, wait_until
from tests.fakes.discord import CallbackType, InteractionRecord, MessageRecord
from tests.fakes.toapis import Endpoint, Fault, Outcome, Timeline


def breaker_closed(world: World) -> Callable[[], Awaitable[bool]]:
    async def closed() -> bool:
        return not world.pipeline.breaker.is_open

    return closed


def showing_title(call: InteractionRecord, title: str) -> MessageRecord | None:
    original = call.original
    if original is None or original.deleted or not original.embeds:
        return None
    return original if original.embeds[0].get("title") == title else None


async def test_a_failed_task_shows_a_short_failure_and_refunds_the_images(world: World) -> None:
    world.api.queue_timeline(Timeline.failing("The upstream model crashed", code="model_error"))

    call = await world.imagine("a cat", n=3)

    reply = await world.discord.wait_for(lambda: showing_title(call, "Could not generate"), 15)
    embed = reply.embeds[0]
    assert embed["description"] == "The image service could not generate this image. Your images were not counted."
    assert reply.attachments == ()
    assert reply.components == ()
    assert reply.mentions_nobody
    job = await world.finished_job()
    (task,) = world.api.tasks_for(job.id)
    (row,) = await world.ledger()
    assert (row.job_id, row.reserved_images, row.images) == (job.id, 3, 0)
    usage = await world.store.usage.get(job.id)
    assert usage is not None
    assert (usage.status, usage.images, usage.task_id) == ("failed", 0, task.id)
    assert usage.error == "task_failed: model_error: The upstream model crashed"
    assert usage.finished_at is not None


async def test_a_content_policy_refusal_is_told_to_the_member_alone(world: World) -> None:
    world.api.queue_timeline(Timeline.content_policy(after=0.2))

    call = await world.imagine("something the service refuses")

    job = await world.finished_job()
    assert job.error_code == "content_policy"
    (row,) = await world.ledger()
    assert row.images == 0
    # The reporter runs right after the job is stored as failed.
    await world.discord.wait_for(lambda: call.original is not None and call.original.deleted, 10)
    notice = await world.discord.wait_for(lambda: next((m for m in call.followups if not m.deleted), None), 10)
    assert notice.ephemeral
    assert notice.mentions_nobody
    assert "content policy" in notice.embeds[0]["description"]
    assert "not counted" in notice.embeds[0]["description"]
    # Nothing is left in the channel for everyone to see.
    assert world.discord.channel_messages(world.channel) == []


async def test_a_content_policy_refusal_at_submit_reaches_the_member_before_any_progress_edit(world: World) -> None:
    # The first progress edit is held back by a rate limit, so the refusal comes while the reply is still the
    # "is thinking..." placeholder: what a slow Discord or a very fast refusal produces. A follow-up sent before
    # the reply is deleted would then become the public reply itself (and be deleted with it).
    world.discord.inject_429("PATCH /webhooks/*", times=1, retry_after=0.5)
    world.api.fail(Endpoint.SUBMIT, Fault.content_policy())

    call = await world.imagine("something the service refuses at once")

    job = await world.finished_job()
    assert job.error_code == "content_policy"
    await world.discord.wait_for(lambda: call.original is not None and call.original.deleted, 10)
    notice = await world.discord.wait_for(lambda: next((m for m in call.followups if not m.deleted), None), 10)
    assert notice.ephemeral
    assert "content policy" in notice.embeds[0]["description"]


async def test_a_rejected_key_refunds_and_refuses_the_next_request_at_once(world: World) -> None:
    # The key was revoked: the submit and the breaker's health probe are both answered 401.
    world.api.fail(Endpoint.SUBMIT, Fault.unauthorized(), times=None)
    world.api.fail(Endpoint.MODELS, Fault.unauthorized(), times=None)

    call = await world.imagine("a cat", n=2)

    reply = await world.discord.wait_for(lambda: showing_title(call, "Could not generate"), 15)
    assert (
        reply.embeds[0]["description"]
        == i18n.translate("failure.unavailable", i18n.SOURCE) + " Your images were not counted."
    )
    job = await world.finished_job()
    assert job.error_code == "unavailable"
    (row,) = await world.ledger()
    assert (row.reserved_images, row.images) == (2, 0)
    assert world.api.tasks_for(job.id) == []

    again = await world.imagine("another cat")

    await world.discord.wait_for(lambda: again.acknowledged, 10)
    assert again.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
    assert again.callback is not None
    assert again.callback.ephemeral
    assert again.callback.data is not None
    assert again.callback.data["content"] == i18n.translate("refusal.unavailable", i18n.SOURCE)
    assert len(await world.jobs()) == 1
    assert len(world.api.requests_to(Endpoint.SUBMIT)) == 1

    # The operator fixes the key: the breaker's probe succeeds and requests are taken again.
    world.api.clear_faults()
    await wait_until(breaker_closed(world))
    recovered = await world.imagine("a cat, at last")
    await world.discord.wait_for(lambda: delivered(recovered), 15)


async def test_an_upstream_that_keeps_failing_refunds_and_says_to_try_later(make_world: WorldFactory) -> None:
    async with make_world() as world:
        world.api.fail(Endpoint.SUBMIT, Fault.server_error(), times=None)

        call = await world.imagine("a cat")

        reply = await world.discord.wait_for(lambda: showing_title(call, "Could not generate"), 15)
        assert "try again in a few minutes" in reply.embeds[0]["description"]
        job = await world.finished_job()
        (row,) = await world.ledger()
        assert row.images == 0
        usage = await world.store.usage.get(job.id)
        assert usage is not None
        assert usage.status == "failed"
        assert usage.error is not None
        assert usage.error.startswith("upstream: ")


async def test_a_failure_discord_refuses_to_show_for_now_is_told_again_not_noted_as_told(
    make_world: WorldFactory,
) -> None:
    """Discord answers the failure's edit 429 until discord.py gives up: the member saw nothing, so the failure
    is not noted as told, and the next look for untold failures (here, the next start) tells it."""
    # A long edit interval keeps progress edits out of the way: after the first one, the next edit is the failure.
    async with make_world(PROGRESS_EDIT_INTERVAL="30") as world:
        world.api.queue_timeline(Timeline.never_ends())
        call = await world.imagine("a lighthouse in fog")

        async def running() -> bool:
            jobs = await world.jobs()
            return bool(jobs) and jobs[0].task_id is not None

        await wait_until(running)
        await world.discord.wait_for(lambda: call.original is not None and bool(call.original.edits), 10)
        # discord.py tries a webhook request five times on 429, then raises.
        refusals = world.discord.inject_429("PATCH /webhooks/*", times=5, retry_after=0.01)
        (job,) = await world.jobs()
        (task,) = world.api.tasks_for(job.id)

        world.api.end_task(task.id, Outcome.FAILED)

        failed = await world.finished_job()
        assert failed.state is JobState.FAILED
        await wait_until(lambda: _run_over(world, job.id))
        assert refusals.remaining == 0
        assert showing_title(call, "Could not generate") is None
        stored = await world.store.jobs.get(job.id)
        assert stored is not None
        assert stored.delivered_at is None  # not told: still owed

        await world.restart()

        await world.discord.wait_for(lambda: showing_title(call, "Could not generate"), 15)
        told = await wait_until(lambda: _told(world, job.id))
        assert told.delivered_at is not None


async def _run_over(world: World, job_id: str) -> bool:
    return world.pipeline.reporter_of(job_id) is None


async def _told(world: World, job_id: str) -> Job | None:
    job = await world.store.jobs.get(job_id)
    return job if job is not None and job.delivered_at is not None else None


async def test_a_failure_notice_the_channel_refuses_for_now_is_told_again_not_noted_as_told(world: World) -> None:
    """Past the reply's 15 minutes the failure goes to the channel, where Discord answers 429 until discord.py
    gives up: not told, so told again (here, at the next start), once."""
    world.api.queue_timeline(Timeline.never_ends())
    call = await world.imagine("a harbour at night")

    async def running() -> bool:
        jobs = await world.jobs()
        return bool(jobs) and jobs[0].task_id is not None

    await wait_until(running)
    world.discord.expire_token(call)
    # discord.py tries a request five times on 429, then raises.
    refusals = world.discord.inject_429("POST /channels/*/messages", times=5, retry_after=0.01)
    (job,) = await world.jobs()
    (task,) = world.api.tasks_for(job.id)

    world.api.end_task(task.id, Outcome.FAILED)

    await world.finished_job()
    await wait_until(lambda: _run_over(world, job.id))
    assert refusals.remaining == 0
    assert _notices(world) == []
    stored = await world.store.jobs.get(job.id)
    assert stored is not None
    assert stored.delivered_at is None  # not told: still owed

    await world.restart()

    await wait_until(lambda: _told(world, job.id))
    (notice,) = _notices(world)
    assert f"<@{world.member.id}>" in notice.content


def _notices(world: World) -> list[MessageRecord]:
    return [m for m in world.discord.channel_messages(world.channel) if m.interaction is None and not m.deleted]

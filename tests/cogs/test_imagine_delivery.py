"""/imagine results that cannot simply edit the reply: an expired token, a late task, a rate limit, a restart."""

from __future__ import annotations

import contextlib
import logging

import pytest

from cogs._outbox import job_nonce
from storage.jobs import Job, JobState
from tests.cogs.conftest import World, WorldFactory, delivered, running_job, wait_until
from tests.fakes.discord import MessageRecord, MessageVersion
from tests.fakes.toapis import Endpoint, Outcome, Timeline

WEBHOOK_MESSAGE = "/webhooks/{application_id}/{webhook_token}/messages/{message_id}"


def channel_result(world: World) -> MessageRecord | None:
    """The bot's message in the channel that carries images, if any."""
    for message in world.discord.channel_messages(world.channel):
        if message.interaction is None and message.attachments:
            return message
    return None


def assert_posted_for_the_requester(world: World, message: MessageRecord, job: Job, prompt: str) -> None:
    (task,) = world.api.tasks_for(job.id)
    assert message.author is world.discord.bot_user
    assert not message.ephemeral
    assert f"<@{world.member.id}>" in message.content
    assert message.pings.users == {world.member.id}
    assert message.pings.roles == frozenset()
    assert not message.pings.everyone
    assert message.nonce == job_nonce(job)
    assert [a.data for a in message.attachments] == [
        world.api.result_png(task.id, index) for index in range(1, job.n + 1)
    ]
    (embed,) = message.embeds
    assert embed["description"] == prompt
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Requested by"] == f"<@{world.member.id}>"


async def test_after_the_token_expires_the_result_goes_to_the_channel_pinging_only_the_requester(
    world: World,
) -> None:
    bob = world.guild.add_member("bob")
    role = world.guild.add_role("artists", mentionable=True)
    prompt = f"@everyone @here <@&{role.id}> <@{bob.id}> a crowd at dusk"
    world.api.queue_timeline(Timeline.never_ends())
    call = await world.imagine(prompt, n=2)
    job = await running_job(world)

    world.discord.expire_token(call)
    (task,) = world.api.tasks_for(job.id)
    world.api.end_task(task.id)

    message = await world.discord.wait_for(lambda: channel_result(world), 15, what="a channel message")
    assert_posted_for_the_requester(world, message, job, prompt)
    finished = await world.finished_job()
    assert finished.state is JobState.COMPLETED
    assert finished.result_message_id == message.id
    # The reply could not be edited any more: it never showed the images, and nothing else pinged anyone.
    assert call.original is not None
    assert not any(version.attachments for version in call.original.versions)
    for other in world.discord.messages:
        if other is not message:
            assert other.mentions_nobody, other
    assert len(world.discord.channel_messages(world.channel)) == 2  # the reply, and the result


async def test_a_rate_limited_result_edit_is_retried_and_the_result_still_arrives(make_world: WorldFactory) -> None:
    # A long edit interval keeps progress edits out of the way: after the first one, the next edit is the result.
    async with make_world(PROGRESS_EDIT_INTERVAL="30") as world:
        world.api.queue_timeline(Timeline.never_ends())
        call = await world.imagine("a cat in the rain", n=2)
        job = await running_job(world)
        await world.discord.wait_for(lambda: call.original is not None and bool(call.original.edits), 10)
        edits_before = len(world.discord.requests_to("PATCH", WEBHOOK_MESSAGE))
        injection = world.discord.inject_429("PATCH /webhooks/*", times=2, retry_after=0.05)
        (task,) = world.api.tasks_for(job.id)

        world.api.end_task(task.id)

        await world.discord.wait_for(lambda: delivered(call), 15)
        assert injection.hits == 2
        statuses = [r.status for r in world.discord.requests_to("PATCH", WEBHOOK_MESSAGE)[edits_before:]]
        assert statuses == [429, 429, 200]
        finished = await world.finished_job()
        assert finished.state is JobState.COMPLETED
        assert call.original is not None
        assert [a.data for a in call.original.attachments] == [world.api.result_png(task.id, i) for i in (1, 2)]
        assert channel_result(world) is None


async def test_a_late_job_says_so_and_is_posted_in_the_channel_when_it_ends(make_world: WorldFactory) -> None:
    async with make_world(GENERATION_TIMEOUT="0.2") as world:
        world.api.queue_timeline(Timeline.never_ends())
        call = await world.imagine("a slow cathedral")

        def late() -> MessageRecord | None:
            original = call.original
            if original is None or not original.embeds:
                return None
            return original if original.embeds[0].get("title") == "Taking longer than usual" else None

        reply = await world.discord.wait_for(late, 15, what="the late notice")
        assert "will mention you" in reply.embeds[0]["description"]
        job = await running_job(world)
        (task,) = world.api.tasks_for(job.id)
        # Still followed after the notice.
        looked_up = len(world.api.requests_to(Endpoint.LOOKUP))
        await world.api.wait_for(lambda: len(world.api.requests_to(Endpoint.LOOKUP)) > looked_up, 10)

        world.api.end_task(task.id)

        message = await world.discord.wait_for(lambda: channel_result(world), 15, what="a channel message")
        finished = await world.finished_job()
        assert finished.late_notified
        assert_posted_for_the_requester(world, message, finished, "a slow cathedral")
        # The reply now points to the result instead of saying it is late.
        await world.discord.wait_for(
            lambda: str(message.id) in (call.original.embeds[0].get("description", "") if call.original else ""), 10
        )


async def test_the_late_notice_stays_until_the_result(make_world: WorldFactory) -> None:
    async with make_world(GENERATION_TIMEOUT="0.2") as world:
        world.api.queue_timeline(Timeline.never_ends())
        call = await world.imagine("a slow cathedral")

        def says_late(version: MessageVersion) -> bool:
            return bool(version.embeds) and "will mention you" in version.embeds[0].get("description", "")

        def late_at() -> int | None:
            original = call.original
            if original is None:
                return None
            return next((i for i, v in enumerate(original.versions) if says_late(v)), None)

        first_late = await world.discord.wait_for(late_at, 15, what="the late notice")
        # The task keeps running and is looked up (less often); any edit that follows must still say it is late.
        looked_up = len(world.api.requests_to(Endpoint.LOOKUP))
        await world.api.wait_for(lambda: len(world.api.requests_to(Endpoint.LOOKUP)) > looked_up + 2, 10)
        with contextlib.suppress(TimeoutError):
            await world.discord.wait_for(
                lambda: call.original is not None and len(call.original.versions) > first_late + 1, 1
            )
        assert call.original is not None
        later = call.original.versions[first_late:]
        assert all(says_late(version) for version in later), [v.embeds[0].get("title") for v in later]


async def test_a_job_running_when_the_bot_restarts_is_delivered_once(world: World) -> None:
    world.api.queue_timeline(Timeline.never_ends())
    call = await world.imagine("a lighthouse through a restart", n=2)
    job = await running_job(world)
    (task,) = world.api.tasks_for(job.id)

    await world.restart()
    world.api.end_task(task.id)

    await world.discord.wait_for(lambda: delivered(call), 15)
    finished = await world.finished_job()
    assert finished.state is JobState.COMPLETED
    assert world.api.tasks_for(job.id) == [task]
    assert len(world.api.requests_to(Endpoint.SUBMIT)) == 1
    assert call.original is not None
    assert sum(1 for v in call.original.versions if v.attachments) == 1
    assert [a.data for a in call.original.attachments] == [world.api.result_png(task.id, i) for i in (1, 2)]
    assert channel_result(world) is None
    assert world.discord.channel_messages(world.channel) == [call.original]
    usage = await world.store.usage.get(job.id)
    assert usage is not None
    assert (usage.status, usage.images) == ("completed", 2)
    (row,) = await world.ledger()
    assert row.images == 2


async def test_a_job_queued_when_the_bot_restarts_is_delivered_once(make_world: WorldFactory) -> None:
    async with make_world(MAX_CONCURRENT_JOBS="1") as world:
        world.api.queue_timeline(Timeline.never_ends(), Timeline())
        first = await world.imagine("the first, which holds the only slot")
        running = await running_job(world)
        second = await world.imagine("the second, which waits")

        async def two_jobs() -> bool:
            return len(await world.jobs()) == 2

        await wait_until(two_jobs)
        await world.restart()
        (task,) = world.api.tasks_for(running.id)
        world.api.end_task(task.id)

        await world.discord.wait_for(lambda: delivered(first) and delivered(second), 15)
        for call in (first, second):
            assert call.original is not None
            assert sum(1 for v in call.original.versions if v.attachments) == 1
        assert len(world.api.requests_to(Endpoint.SUBMIT)) == 2

        async def both_completed() -> bool:
            # Recorded once Discord has answered the edit that delivered it, which the fake saw first.
            return {job.state for job in await world.jobs()} == {JobState.COMPLETED}

        await wait_until(both_completed)


async def test_results_over_the_upload_limit_are_re_encoded_to_fit(world: World) -> None:
    limit = 10 * 1024 * 1024  # the fake's (and Discord's) default upload limit
    world.api.result_min_bytes = limit + 1024 * 1024

    call = await world.imagine("two heavy images", n=2)

    await world.discord.wait_for(lambda: delivered(call), 20)
    assert call.original is not None
    attachments = call.original.attachments
    assert len(attachments) == 2
    for attachment in attachments:
        assert attachment.size <= limit
        assert attachment.content_type in ("image/jpeg", "image/webp", "image/png")
        assert (attachment.width, attachment.height) == (1024, 1024)
    assert [a.filename.rsplit(".", 1)[0] for a in attachments] == ["imagine-1", "imagine-2"]


async def test_a_4000_character_prompt_is_shown_whole_in_the_result_and_cut_in_progress(world: World) -> None:
    prompt = ("a very detailed description of a castle " * 200)[:3990] + " the end"
    assert len(prompt) == 3998

    call = await world.imagine(prompt)

    await world.discord.wait_for(lambda: delivered(call), 15)
    assert call.original is not None
    (embed,) = call.original.embeds
    assert embed["description"] == prompt
    progress = [field["value"] for version in call.original.edits[:-1] for e in version.embeds for field in e["fields"]]
    assert progress
    assert all(value.endswith("…") and prompt.startswith(value[:-1]) for value in progress)
    for version in call.original.edits:
        for shown in version.embeds:
            for field in shown.get("fields", []):
                assert len(field["value"]) <= 1024
            assert len(shown.get("description", "")) <= 4096
    # The prompt is stored whole: the usage log and a re-roll need it.
    job = await world.finished_job()
    assert job.prompt == prompt


async def test_a_stopped_bot_leaves_no_progress_edit_behind(
    make_world: WorldFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # A long edit interval: after the first edit, the next state waits in the editor for half a second. Stopping
    # the bot must drop it: an edit after the HTTP session closed fails with a traceback in the log.
    async with make_world(PROGRESS_EDIT_INTERVAL="0.5") as world:
        world.api.queue_timeline(Timeline.never_ends())
        call = await world.imagine("a job in flight at shutdown")
        await world.discord.wait_for(lambda: call.original is not None and bool(call.original.edits), 10)
        await running_job(world)
        await world.api.wait_for(lambda: len(world.api.requests_to(Endpoint.LOOKUP)) > 0, 10)

        await world.restart()

        def edit_failed() -> bool:
            return any(r.name == "cogs._throttle" and r.levelno >= logging.WARNING for r in caplog.records)

        async def stale_edit() -> bool:
            return edit_failed()

        # A stale edit would come when the old interval ends (half a second after the first edit).
        with contextlib.suppress(TimeoutError):
            await wait_until(stale_edit, 1.5)
        assert not edit_failed(), [r.getMessage() for r in caplog.records if r.name == "cogs._throttle"]


async def test_after_the_token_expires_a_failure_is_told_in_the_channel_to_the_requester(world: World) -> None:
    world.api.queue_timeline(Timeline.never_ends())
    call = await world.imagine("<@&1> @everyone a failing cat", n=2)
    job = await running_job(world)
    world.discord.expire_token(call)
    (task,) = world.api.tasks_for(job.id)

    world.api.end_task(task.id, Outcome.FAILED)

    def failure_notice() -> MessageRecord | None:
        return next((m for m in world.discord.channel_messages(world.channel) if m.interaction is None), None)

    message = await world.discord.wait_for(failure_notice, 15, what="the failure in the channel")
    assert message.content.startswith(f"<@{world.member.id}>")
    assert message.pings.users == {world.member.id}
    assert message.pings.roles == frozenset()
    assert not message.pings.everyone
    assert message.embeds[0]["title"] == "Could not generate"
    assert message.attachments == ()
    finished = await world.finished_job()
    assert finished.state is JobState.FAILED
    (row,) = await world.ledger()
    assert (row.reserved_images, row.images) == (2, 0)


async def test_a_job_late_after_its_token_expired_is_told_so_in_the_channel_once(make_world: WorldFactory) -> None:
    async with make_world(GENERATION_TIMEOUT="0.3") as world:
        world.api.queue_timeline(Timeline.never_ends())
        call = await world.imagine("a very slow cathedral")
        await world.discord.wait_for(lambda: bool(world.api.tasks), 10, what="the task")
        world.discord.expire_token(call)  # more than 15 minutes have passed, as far as Discord is concerned

        def late_notice() -> MessageRecord | None:
            return next(
                (m for m in world.discord.channel_messages(world.channel) if "longer than usual" in m.content), None
            )

        notice = await world.discord.wait_for(late_notice, 15, what="the late notice in the channel")
        assert notice.pings.users == frozenset({world.member.id})
        assert not notice.pings.roles
        assert not notice.pings.everyone
        (task,) = world.api.tasks.values()
        world.api.end_task(task.id)
        result = await world.discord.wait_for(lambda: channel_result(world), 15, what="the result in the channel")
        assert result.nonce != notice.nonce  # two messages, each recognised on its own after a crash
        assert [m for m in world.discord.channel_messages(world.channel) if "longer than usual" in m.content] == [
            notice
        ]

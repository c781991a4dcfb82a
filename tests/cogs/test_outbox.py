"""What outlives a job's reply goes to its channel, or to the member's DMs where the bot may not post
(cogs/_outbox.py): a channel that refuses the post although it allowed it at intake, a thread without Send
Messages in Threads, and a repeated post whose first copy was deleted meanwhile."""

from __future__ import annotations

import pytest

from cogs._outbox import Outbox, Post
from storage.jobs import JobState
from tests.cogs.conftest import World, running_job, wait_until
from tests.fakes.discord import BOOSTED_UPLOAD_LIMITS, FakeChannel, MessageRecord, Overwrite, Permission
from tests.fakes.toapis import Outcome, Timeline


def with_images(world: World, channel: FakeChannel) -> list[MessageRecord]:
    return [m for m in world.discord.channel_messages(channel) if m.attachments and not m.deleted]


async def test_a_channel_that_refuses_the_post_after_intake_sends_the_result_by_dm(world: World) -> None:
    world.api.queue_timeline(Timeline.never_ends())
    call = await world.imagine("a heron at dawn")
    job = await running_job(world)
    assert job.channel_postable
    # An admin takes Send Messages away meanwhile, and the token expires (15 minutes).
    world.channel.overwrites.append(Overwrite(world.guild.bot_role, deny=int(Permission.SEND_MESSAGES)))
    world.discord.expire_token(call)
    (task,) = world.api.tasks_for(job.id)

    world.api.end_task(task.id)

    finished = await world.finished_job()
    assert (finished.state, finished.images_delivered) == (JobState.COMPLETED, 1)
    dm = world.discord.dm_channel(world.member)
    (sent,) = with_images(world, dm)
    assert sent.content == f"Your images from <#{world.channel.id}> are ready."
    assert with_images(world, world.channel) == []


async def test_a_result_sent_by_dm_fits_the_dm_upload_limit_not_the_boosted_servers(world: World) -> None:
    """A server at boost level 2 takes 50 MiB files; a direct message from the bot, the default 10 MiB. A 12 MiB
    result fits the server as it is, but goes by DM re-encoded to fit there, rather than be refused by the DMs
    (413) and tried again for a day, counted and never received."""
    dm_limit = 10 * 1024 * 1024  # the fake's (and Discord's) default upload limit, which DMs keep
    world.guild.max_file_size = BOOSTED_UPLOAD_LIMITS[2]
    await world.restart()  # the bot learns the server's boost level as it connects

    async def boosted() -> bool:
        guild = world.bot.get_guild(world.guild.id)
        return guild is not None and guild.filesize_limit == BOOSTED_UPLOAD_LIMITS[2]

    await wait_until(boosted)
    world.api.result_min_bytes = dm_limit + 2 * 1024 * 1024
    world.api.queue_timeline(Timeline.never_ends())
    call = await world.imagine("a heavy heron at dawn")
    job = await running_job(world)
    world.channel.overwrites.append(Overwrite(world.guild.bot_role, deny=int(Permission.SEND_MESSAGES)))
    world.discord.expire_token(call)
    (task,) = world.api.tasks_for(job.id)

    world.api.end_task(task.id)

    finished = await world.finished_job()
    assert (finished.state, finished.images_delivered) == (JobState.COMPLETED, 1)
    (sent,) = with_images(world, world.discord.dm_channel(world.member))
    (attachment,) = sent.attachments
    assert attachment.size <= dm_limit
    fields = {field["name"]: field["value"] for field in sent.embeds[0]["fields"]}
    assert fields["Re-encoded to fit"].startswith("1 image re-encoded to fit")


@pytest.mark.parametrize(
    ("denied", "postable"),
    [(Permission.SEND_MESSAGES_IN_THREADS, False), (Permission.SEND_MESSAGES, True)],
    ids=["without-send-messages-in-threads", "without-send-messages"],
)
async def test_in_a_thread_send_messages_in_threads_decides_where_the_result_goes(
    world: World, denied: Permission, postable: bool
) -> None:
    """In a thread, Send Messages in Threads is what lets the bot post, and Send Messages does not count: a
    result that outlives its reply goes to the thread, or else by DM."""
    world.channel.overwrites.append(Overwrite(world.guild.bot_role, deny=int(denied)))
    thread = world.guild.add_thread(world.channel, "ideas", members=[world.guild.bot_member, world.member])
    world.api.queue_timeline(Timeline.never_ends())
    call = await world.imagine("a lantern in the thread", channel=thread)
    job = await running_job(world)

    assert job.channel_postable is postable
    world.discord.expire_token(call)
    (task,) = world.api.tasks_for(job.id)
    world.api.end_task(task.id)
    finished = await world.finished_job()
    assert (finished.state, finished.images_delivered) == (JobState.COMPLETED, 1)
    by_dm = with_images(world, world.discord.dm_channel(world.member))
    in_thread = with_images(world, thread)
    assert (len(in_thread), len(by_dm)) == ((1, 0) if postable else (0, 1))


async def test_a_repeated_post_whose_first_copy_was_deleted_counts_as_delivered(world: World) -> None:
    """The result was posted in the channel, a moderator deleted it, and the post is repeated (a crash before it
    was recorded): Discord answers the nonce 404 10008. That result was delivered; nothing is posted again,
    neither in the channel nor by DM."""
    world.api.queue_timeline(Timeline.never_ends())
    call = await world.imagine("a gull over the pier")
    job = await running_job(world)
    world.discord.expire_token(call)
    (task,) = world.api.tasks_for(job.id)
    world.api.end_task(task.id)
    await world.finished_job()
    (posted,) = with_images(world, world.channel)
    await world.discord.delete_message(posted)
    messages = len(world.discord.messages)

    post = Post(channel_text="again", dm_text="again", is_result=True)
    receipt = await Outbox(world.bot).send(job, post)

    assert receipt.delivered
    assert not receipt.direct
    assert len(world.discord.messages) == messages


async def test_a_failure_told_again_after_a_long_restart_is_not_posted_twice(world: World) -> None:
    """The failure notice was posted in the channel, and the process stopped before it noted that: the next start
    tells it again, past the nonce's few minutes, and finds the notice by the job its footer names."""
    world.api.queue_timeline(Timeline.never_ends())
    call = await world.imagine("a storm over the bay")
    job = await running_job(world)
    world.discord.expire_token(call)
    (task,) = world.api.tasks_for(job.id)
    world.api.end_task(task.id, Outcome.FAILED)

    def notices() -> list[MessageRecord]:
        return [m for m in world.discord.channel_messages(world.channel) if m.interaction is None]

    (notice,) = await world.discord.wait_for(notices, 15, what="the failure notice")
    reference = await world.bot.services.history.reference(await world.finished_job())
    assert notice.embeds[0]["footer"]["text"] == f"Job {reference}"
    await wait_until(lambda: world.store.db.fetch_all("SELECT id FROM jobs WHERE delivered_at IS NOT NULL"))
    await world.store.db.execute("UPDATE jobs SET delivered_at = NULL WHERE id = :id", {"id": job.id})
    world.discord.advance_time(60 * 60)  # the nonce no longer recognises a repeat

    await world.restart()

    await wait_until(lambda: world.store.db.fetch_all("SELECT id FROM jobs WHERE delivered_at IS NOT NULL"))
    assert notices() == [notice]

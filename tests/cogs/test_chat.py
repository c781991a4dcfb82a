"""Imagine in the conversation, in one process: messages that mention the bot, replies to its results, inline
options, refusals, and what is never done twice. The fake hides what Discord hides from a bot without the
Message Content intent, so what works here works with what the bot really receives."""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import timedelta
from typing import Any

import discord
import pytest
from PIL import Image

import i18n
from cogs._message_intake import MessageIntake, chat_nonce
from generation.message_requests import MessageRequestBook
from storage.clock import to_epoch_ms
from storage.jobs import Job, JobKind
from tests.cogs.conftest import World, WorldFactory, png_upload, wait_until
from tests.cogs.test_content_controls import log_channel, no_more_posts_in
from tests.cogs.test_help import help_of
from tests.cogs.test_imagine_settings import settings_fields
from tests.cogs.test_quota import command
from tests.fakes.discord import FakeMember, MessageRecord, Overwrite, Permission, Upload
from tests.fakes.toapis import Endpoint, Timeline

NOTICE = 0.2


def mention(world: World) -> str:
    return f"<@{world.discord.bot_user.id}>"


def bot_messages(world: World) -> list[MessageRecord]:
    """Every message the bot posted (deleted ones too), oldest first."""
    return [m for m in world.discord.messages if m.author is world.discord.bot_user]


def replies_to(world: World, message: MessageRecord) -> list[MessageRecord]:
    """The bot's replies to a member's message (deleted ones too)."""
    return [m for m in bot_messages(world) if m.reference is message]


async def reply_of(world: World, message: MessageRecord) -> MessageRecord:
    """The bot's one reply to `message`, once posted."""
    found: list[MessageRecord] = await world.discord.wait_for(
        lambda: [m for m in bot_messages(world) if m.reference is message], 15, what="the bot's reply"
    )
    (reply,) = found
    return reply


async def result_of(world: World, message: MessageRecord) -> MessageRecord:
    """The bot's reply to `message`, once it shows the images."""
    reply = await reply_of(world, message)
    await world.discord.wait_for(lambda: reply.attachments, 15, what="the result in the reply")
    return reply


async def job_of(world: World, message: MessageRecord) -> Job:
    """The job a message became, once finished."""

    async def finished() -> Job | None:
        claim = await world.store.message_requests.get(message.id)
        if claim is None or claim.job_id is None:
            return None
        job = await world.store.jobs.get(claim.job_id)
        return job if job is not None and job.is_finished else None

    job: Job = await wait_until(finished)
    return job


def colours(world: World, job_id: str) -> list[tuple[int, ...]]:
    """The colour of each reference image the job's submit sent (the fake's uploads, in order)."""
    (submit,) = [r for r in world.api.requests_to(Endpoint.SUBMIT) if r.json and r.json["client_business_id"] == job_id]
    found = []
    for url in submit.json["reference_images"]:
        upload = world.api.uploads[url.rsplit("/", 1)[1].rsplit(".", 1)[0]]
        found.append(colour_of(upload.data))
    return found


def colour_of(data: bytes) -> tuple[int, ...]:
    """The colour of an image's first pixel (the fakes' images are of one colour)."""
    pixel = Image.open(io.BytesIO(data)).convert("RGB").getpixel((0, 0))
    assert isinstance(pixel, tuple)
    return pixel


async def deleted(world: World, message: MessageRecord) -> None:
    """Wait until the message is deleted (a refusal deletes itself)."""
    await world.discord.wait_for(lambda: message.deleted, 10, what="the message deleted")


def pings_only(message: MessageRecord, member: FakeMember) -> bool:
    """The message notified the member it answers, and nobody else."""
    return message.versions[0].mentions.users == {member.id} and not message.versions[0].mentions.roles


async def say(world: World, text: str, *, files: tuple[Upload, ...] = (), **options: Any) -> MessageRecord:
    return await world.discord.post_message(world.channel, world.member, text, files=files, **options)


async def test_a_mention_with_two_images_is_a_job_answered_in_a_reply_that_pings_only_the_author(world: World) -> None:
    red, blue = png_upload("cat.png", colour="red"), png_upload("room.png", colour="blue")
    message = await say(world, f"{mention(world)} put the cat from the first into the second", files=(red, blue))

    reply = await result_of(world, message)
    job = await job_of(world, message)

    assert (job.kind, job.prompt, job.reference_count) == (
        JobKind.MESSAGE,
        "put the cat from the first into the second",
        2,
    )
    assert job.interaction_token is None
    assert job.reply_message_id == reply.id
    assert colours(world, job.id) == [(255, 0, 0), (0, 0, 255)]
    # A reply to the member's message, pinging them alone; then edited with progress and the result, in place.
    assert reply.reference is message
    assert reply.nonce == f"chat:{message.id}"
    assert pings_only(reply, world.member)
    assert reply.versions[0].content.endswith("is thinking…")
    assert any(v.embeds and not v.attachments for v in reply.edits), "progress was shown"
    assert [a.filename for a in reply.attachments] == ["imagine-1.png"]
    assert reply.embeds[0]["description"] == job.prompt
    assert any(custom_id.startswith(f"imagine:reroll:{job.id}") for custom_id in reply.custom_ids())
    assert reply.content == ""
    usage = await world.store.usage.get(job.id)
    assert usage is not None
    assert (usage.status, usage.source) == ("completed", "message")
    assert (job.result_message_id, len(bot_messages(world))) == (reply.id, 1)


async def test_a_reply_to_a_result_changes_it_with_its_images_and_options(world: World) -> None:
    first = await say(world, f"{mention(world)} a harbour at noon --ar 16:9 --n 2 --res 2k")
    result = await result_of(world, first)
    parent = await job_of(world, first)
    assert (parent.aspect, parent.n, parent.resolution) == ("16:9", 2, "2k")

    # The reply pings the bot (the client's default) without typing its mention, and adds an image of its own.
    change = await say(world, "make it night", files=(png_upload("moon.png", colour="yellow"),), reply_to=result)
    await result_of(world, change)
    job = await job_of(world, change)

    assert (job.prompt, job.parent_job_id, job.n) == ("make it night", parent.id, 1)
    assert (job.model, job.aspect, job.resolution) == (parent.model, "16:9", "2k")
    # Its own image first, then the result's: three references.
    (task,) = world.api.tasks_for(parent.id)
    expected = [(255, 255, 0), *(colour_of(world.api.result_png(task.id, i)) for i in (1, 2))]
    assert colours(world, job.id) == expected

    # What the new message says wins over the result's options.
    square = await say(world, f"{mention(world)} as a square --ar 1:1", reply_to=result, mention_author=False)
    await result_of(world, square)
    assert (await job_of(world, square)).aspect == "1:1"


async def test_refusals_are_short_replies_that_repeat_the_prompt_and_delete_themselves(world: World) -> None:
    world.bot.services.chat.notice_seconds = NOTICE
    world.bot.services.chat.refusal_seconds = 0  # one refusal after another, each answered
    art = world.guild.add_text_channel("art")
    await world.bot.services.server_settings.add_allowed_channel(world.guild.id, art.id)

    empty = await world.discord.post_message(art, world.member, f"{mention(world)}   --n 2")
    elsewhere = await say(world, f"{mention(world)} a red fox")
    bad_option = await world.discord.post_message(art, world.member, f"{mention(world)} a fox --n two")
    odd_shape = await world.discord.post_message(art, world.member, f"{mention(world)} a fox --ar 16:10")

    texts = {}
    for message in (empty, elsewhere, bad_option, odd_shape):
        refusal = await reply_of(world, message)
        assert pings_only(refusal, world.member)
        await deleted(world, refusal)
        texts[message.id] = (refusal.versions[0].content, refusal.versions[0].embeds)
    assert texts[empty.id][0] == "Your prompt is empty: describe the image you want."
    assert texts[elsewhere.id][0] == f"/imagine is not used in this channel. In this server, use it in <#{art.id}>."
    assert "red fox" in texts[elsewhere.id][1][0]["description"]  # the prompt, repeated
    assert texts[bad_option.id][0] == "`--n` takes a number of images, like `--n 2`, not `two`."
    assert texts[odd_shape.id][0].startswith("GPT Image 2 offers the aspect ratios 1:1, 3:2")
    assert world.api.requests_to(Endpoint.SUBMIT) == []
    assert await world.jobs() == []
    for refusal in bot_messages(world):
        assert refusal.versions[0].mentions.users == {world.member.id}


async def test_a_message_is_one_job_however_often_it_arrives_or_changes(world: World) -> None:
    message = await say(world, f"{mention(world)} a lighthouse")
    await result_of(world, message)
    await job_of(world, message)

    assert world.discord.redeliver(message) == "live"
    await world.discord.edit_message(message, content=f"{mention(world)} a lighthouse, at night")
    # Something that does reach the bot after both: by then, they were ignored.
    marker = await say(world, f"{mention(world)} a marker")
    await result_of(world, marker)

    assert len(await world.jobs()) == 2
    assert len(replies_to(world, message)) == 1
    assert [r.json["prompt"] for r in world.api.requests_to(Endpoint.SUBMIT) if r.json] == ["a lighthouse", "a marker"]


async def note_on(world: World, message: MessageRecord, result: MessageRecord) -> MessageRecord:
    """The bot's one other reply to `message`, beside its result: a note on what was left out."""
    found: list[MessageRecord] = await world.discord.wait_for(
        lambda: [m for m in replies_to(world, message) if m is not result], 15, what="the note"
    )
    (note,) = found
    return note


async def test_a_reply_to_another_members_message_uses_the_members_own_and_says_how_to_use_the_other(
    world: World,
) -> None:
    world.bot.services.chat.notice_seconds = 30
    bob = world.guild.add_member("bob")
    photo = await world.discord.post_message(world.channel, bob, "my dog", files=(png_upload(),))
    # Bob's message did not mention the bot: it arrived empty, so whether it holds images cannot be known. A reply
    # to it with a prompt (and an image) of the member's own is taken with those alone, and a note says how to use
    # Bob's images.
    own = png_upload("mine.png", colour="green")
    blue = await say(world, f"{mention(world)} make the dog blue", files=(own,), reply_to=photo)
    result = await result_of(world, blue)
    job = await job_of(world, blue)
    note = await note_on(world, blue, result)

    assert (job.prompt, job.reference_count) == ("make the dog blue", 1)
    assert colours(world, job.id) == [(0, 128, 0)]
    assert note.versions[0].content == i18n.translate(
        "notice.reply_target_hidden", i18n.SOURCE, menu=i18n.translate("menu.from_images", i18n.SOURCE)
    )
    assert "Imagine from images" in note.versions[0].content
    assert not note.versions[0].mentions.users  # the result's reply pinged the member already
    # With nothing of the member's own to go on, the answer says how to do it.
    empty = await say(world, f"{mention(world)}", reply_to=photo)
    hint = await reply_of(world, empty)
    assert "cannot see the message you replied to" in hint.content
    assert "Imagine from images" in hint.content
    assert len(await world.jobs()) == 1


async def test_what_the_bot_may_not_answer(world: World) -> None:
    # A message that does not mention the bot (a role or @everyone does not count) is nobody's business.
    role = world.guild.add_role("painters", mentionable=True)
    await say(world, f"<@&{role.id}> @everyone a cat")
    # Where the bot may not reply (no Read Message History), it says nothing and claims nothing.
    quiet = world.guild.add_text_channel(
        "quiet", overwrites=[Overwrite(world.guild.bot_role, deny=Permission.READ_MESSAGE_HISTORY)]
    )
    unanswered = await world.discord.post_message(quiet, world.member, f"{mention(world)} a cat")
    marker = await say(world, f"{mention(world)} a marker")
    await result_of(world, marker)

    assert bot_messages(world) == [await reply_of(world, marker)]
    assert await world.store.message_requests.get(unanswered.id) is None
    assert len(await world.jobs()) == 1


async def test_images_beyond_the_first_four_are_left_out_with_a_note(world: World) -> None:
    world.bot.services.chat.notice_seconds = 30
    colours_given = ["red", "blue", "yellow", "green", "white", "black"]
    files = tuple(png_upload(f"{name}.png", colour=name) for name in colours_given)
    message = await say(world, f"{mention(world)} all of these together", files=files)
    result = await result_of(world, message)
    job = await job_of(world, message)

    assert job.reference_count == 4
    assert colours(world, job.id) == [(255, 0, 0), (0, 0, 255), (255, 255, 0), (0, 128, 0)]
    note = await note_on(world, message, result)
    assert note.versions[0].content == i18n.translate("notice.first_images", i18n.SOURCE, used="4", given="6")
    assert not note.versions[0].mentions.users


async def test_a_server_off_the_allow_list_gets_no_answer_and_nothing_is_written(
    make_world: WorldFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # The bot was in this server before the operator listed another one: it stays, and works nowhere in it.
    async with make_world(ALLOWED_GUILD_IDS="123456789012345678") as world:
        message = await say(world, f"{mention(world)} a cat")

        async def passed_over() -> bool:
            return f"Not answering message {message.id}: server {world.guild.id} is not on" in caplog.text

        await wait_until(passed_over)
        assert bot_messages(world) == []
        assert await world.store.message_requests.get(message.id) is None
        assert await world.jobs() == []


async def test_admins_may_turn_the_conversation_off(world: World) -> None:
    world.bot.services.chat.notice_seconds = 30
    assert "In the conversation" in await help_of(world, world.member)

    off = await command(world, "imagine-settings chat off")
    message = await say(world, f"{mention(world)} a cat")
    note = await reply_of(world, message)
    shown = settings_fields(await command(world, "imagine-settings show"))

    assert off.content.startswith("Members can no longer ask by mentioning Imagine")
    assert note.content == "In this server, Imagine is used with /imagine rather than by mentioning it."
    assert await world.jobs() == []
    assert shown["In the conversation"] == "off: commands only"
    assert "In the conversation" not in await help_of(world, world.member)
    on = await command(world, "imagine-settings chat on")
    assert on.content.startswith("Members can now ask Imagine for images by mentioning it")
    assert world.bot.services.server_settings.get(world.guild.id).chat is True


async def test_a_blocked_prompt_is_refused_logged_as_a_message_and_starts_the_cooldown(world: World) -> None:
    world.bot.services.chat.notice_seconds = 30
    ops = await log_channel(world)
    await command(world, "imagine-settings mod-log on")
    await world.bot.services.server_settings.add_blocked_words(world.guild.id, ["forbidden"])
    message = await say(world, f"{mention(world)} a forbidden cat")
    refusal = await reply_of(world, message)
    assert refusal.content.startswith("Your prompt contains something this server does not allow")
    # The cooldown starts, so that the list cannot be probed for free.
    cooldowns = world.bot.services.intake.admission.cooldowns
    assert cooldowns.remaining(world.guild.id, world.member.id, 600) > 0
    # Written once the member was answered: the usage log, and the moderation log's one entry.
    rows = await wait_until(lambda: world.store.db.fetch_all("SELECT status, source FROM usage_log"))
    assert [(row["status"], row["source"]) for row in rows] == [("blocked", "message")]
    (entry,) = await no_more_posts_in(world, ops)
    (embed,) = entry.embeds
    assert embed["description"] == "||a forbidden cat ||"
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert fields["Member"] == f"<@{world.member.id}>"
    assert fields["Reason"].startswith("Blocked word")


async def test_refusals_to_one_member_are_not_repeated_while_one_is_shown(world: World) -> None:
    world.bot.services.chat.notice_seconds = 30
    first = await say(world, f"{mention(world)}")
    refusal = await reply_of(world, first)
    assert refusal.content == "Your prompt is empty: describe the image you want."

    # Again at once, another way: no second public refusal; the message is settled all the same.
    again = await say(world, f"{mention(world)} a fox --n two")
    await wait_until(lambda: _answered(world, again))
    bob = world.guild.add_member("bob")
    theirs = await world.discord.post_message(world.channel, bob, f"{mention(world)}")
    await reply_of(world, theirs)  # another member is answered

    assert replies_to(world, again) == []
    assert [m.reference for m in bot_messages(world)] == [first, theirs]


async def _answered(world: World, message: MessageRecord) -> bool:
    claim = await world.store.message_requests.get(message.id)
    return claim is not None and claim.answered_at is not None


async def test_with_the_conversation_off_a_channel_off_the_list_gets_no_answer(world: World) -> None:
    world.bot.services.chat.notice_seconds = 30
    art = world.guild.add_text_channel("art")
    await world.bot.services.server_settings.add_allowed_channel(world.guild.id, art.id)
    await command(world, "imagine-settings chat off", channel=art)

    elsewhere = await say(world, f"{mention(world)} a cat")
    listed = await world.discord.post_message(art, world.member, f"{mention(world)} a cat")
    note = await reply_of(world, listed)

    assert note.content == "In this server, Imagine is used with /imagine rather than by mentioning it."
    assert replies_to(world, elsewhere) == []
    assert await world.store.message_requests.get(elsewhere.id) is None


async def test_a_full_quota_turns_the_reply_into_the_refusal(make_world: WorldFactory) -> None:
    async with make_world(DEFAULT_MEMBER_DAILY_LIMIT="1") as world:
        world.bot.services.chat.notice_seconds = NOTICE
        message = await say(world, f"{mention(world)} two cats --n 2")
        reply = await reply_of(world, message)
        await deleted(world, reply)
        assert reply.versions[0].content.endswith("is thinking…")
        assert reply.versions[-1].content.startswith("You asked for 2 images, but only 1 of your limit")
        assert await world.jobs() == []
        claim = await world.store.message_requests.get(message.id)
        assert claim is not None
        assert (claim.answered_at is not None, claim.job_id) == (True, None)


async def test_a_refusal_shown_in_the_reply_holds_back_the_next_refusals_too(make_world: WorldFactory) -> None:
    # A refusal found after the reply (a full quota) is as public as one found before it: while it is shown, the
    # member's next refused messages are not answered, whether refused before a reply (the cooldown) or after.
    async with make_world(DEFAULT_MEMBER_DAILY_LIMIT="1") as world:
        world.bot.services.chat.notice_seconds = 30
        first = await say(world, f"{mention(world)} two cats --n 2")
        refusal = await reply_of(world, first)
        await world.discord.wait_for(lambda: "You asked for 2 images" in refusal.content, 15, what="the refusal")

        # No cooldown in this server: the same request passes the checks, is replied to, then refused again.
        again = await say(world, f"{mention(world)} two dogs --n 2")
        await wait_until(lambda: _answered(world, again))
        # With a cooldown, the next one is refused before any reply.
        await world.bot.services.server_settings.set_cooldown(world.guild.id, 600)
        world.bot.services.intake.admission.start_cooldown(world.guild.id, world.member.id)
        later = await say(world, f"{mention(world)} a cat")
        await wait_until(lambda: _answered(world, later))

        assert replies_to(world, later) == []
        # The reply to the second was taken back rather than turned into a second refusal.
        assert all(reply.deleted for reply in replies_to(world, again))
        assert [m for m in bot_messages(world) if not m.deleted] == [refusal]
        assert await world.jobs() == []


async def test_with_several_processes_a_request_another_left_after_this_start_is_answered_by_the_sweep(
    world: World,
) -> None:
    """Another process claimed a message just after this one started, then crashed: the start-up's look could not
    see it (another process's request in progress, for all it knew), so the periodic look answers it once it is
    older than the grace; a fresh claim (a request another process may still be taking) is left alone."""
    grace = timedelta(minutes=5)
    book = MessageRequestBook(world.store)
    intake = MessageIntake(
        world.bot,
        intake=world.bot.services.intake,
        requests=book,
        history=world.bot.services.history,
        server_settings=world.bot.services.server_settings,
        owed_grace=grace,
    )
    started = book.now()  # at or after the intake's start
    store = world.store.message_requests
    left, fresh = await say(world, "left by a crash"), await say(world, "still being taken")
    for source in (left, fresh):
        claimed = await store.claim(
            source.id, guild_id=world.guild.id, channel_id=world.channel.id, user_id=world.member.id, locale="en-US"
        )
        assert claimed
    # Claimed a millisecond after the start, less the grace: the start-up's look leaves it, the next look takes it.
    await world.store.db.execute(
        "UPDATE message_requests SET created_at = :at WHERE source_message_id = :id",
        {"at": to_epoch_ms(started - grace + timedelta(milliseconds=1)), "id": left.id},
    )
    assert await intake.answer_owed() == 0
    await asyncio.sleep(0.01)

    sweeping = asyncio.create_task(intake.keep_answering(0.01))
    try:

        async def left_answered() -> bool:
            claim = await store.get(left.id)
            return claim is not None and claim.answered_at is not None

        await wait_until(left_answered)
    finally:
        sweeping.cancel()
    (answer,) = replies_to(world, left)
    assert answer.content.startswith("Imagine restarted before it could take this request. Nothing was counted")
    claim = await store.get(fresh.id)
    assert claim is not None
    assert claim.answered_at is None
    assert replies_to(world, fresh) == []


async def test_one_process_has_no_periodic_look_a_crash_is_a_restart(world: World) -> None:
    # Without the grace (one process), every claim after the start is this process's own, in progress.
    await asyncio.wait_for(world.bot.services.chat.keep_answering(0.01), 1)


async def test_requests_a_crash_left_unanswered_are_answered_at_the_next_start(world: World) -> None:
    # What a crash leaves between the claim and the job, three ways: the reply posted and recorded; the reply
    # posted but not recorded yet; nothing posted. The bot's own client posts the replies, as it did before dying.
    store = world.store.message_requests
    channel = world.bot.get_partial_messageable(world.channel.id, guild_id=world.guild.id)
    sources = [await say(world, f"request {index}") for index in range(3)]
    posted = []
    for source in sources[:2]:
        reference = discord.MessageReference(message_id=source.id, channel_id=world.channel.id, guild_id=world.guild.id)
        posted.append(await channel.send("Imagine is thinking…", reference=reference, nonce=chat_nonce(source.id)))
    for source in sources:
        assert await store.claim(
            source.id, guild_id=world.guild.id, channel_id=world.channel.id, user_id=world.member.id, locale="en-US"
        )
    await store.set_reply(sources[0].id, posted[0].id)

    await world.restart()

    async def all_answered() -> bool:
        claims = [await world.store.message_requests.get(source.id) for source in sources]
        return all(claim is not None and claim.answered_at is not None for claim in claims)

    await wait_until(all_answered)
    answers = [replies_to(world, source) for source in sources]
    # The same reply where one was posted (edited, or found again by its nonce); a new one where none was.
    assert [[m.id for m in found] for found in answers[:2]] == [[posted[0].id], [posted[1].id]]
    assert len(answers[2]) == 1
    for (answer,) in answers:
        assert answer.content.startswith("Imagine restarted before it could take this request. Nothing was counted")
        assert answer.versions[-1].mentions.users <= {world.member.id}
    assert pings_only(answers[2][0], world.member)
    assert await world.jobs() == []


async def test_in_a_thread_where_the_allow_list_is_its_channels(world: World) -> None:
    await world.bot.services.server_settings.add_allowed_channel(world.guild.id, world.channel.id)
    thread = world.guild.add_thread(world.channel, "ideas", owner=world.member)
    message = await world.discord.post_message(thread, world.member, f"{mention(world)} a kite")
    reply = await result_of(world, message)
    assert reply.channel is thread
    assert (await job_of(world, message)).channel_id == thread.id


async def test_a_reply_deleted_while_the_job_runs_gives_way_to_a_channel_message(world: World) -> None:
    world.api.on_prompt("slow kite", Timeline.never_ends(progress=20))
    message = await say(world, f"{mention(world)} a slow kite")
    reply = await reply_of(world, message)
    claim = await wait_until(lambda: world.store.message_requests.get(message.id))

    async def submitted() -> Job | None:
        found = await world.store.message_requests.get(message.id)
        job = await world.store.jobs.get(found.job_id) if found is not None and found.job_id else None
        return job if job is not None and job.task_id else None

    job = await wait_until(submitted)
    assert claim.source_message_id == message.id
    await world.discord.delete_message(reply)
    world.api.end_task(job.task_id or "")

    posted = await world.discord.wait_for(
        lambda: [m for m in bot_messages(world) if m.attachments] or None, 15, what="the result in the channel"
    )
    (result,) = posted
    assert result.reference is None
    assert result.content == f"<@{world.member.id}>, your images are ready."
    assert result.versions[0].mentions.users == {world.member.id}
    assert (await job_of(world, message)).result_message_id == result.id


async def test_a_late_conversation_job_says_its_images_will_come_in_this_reply(make_world: WorldFactory) -> None:
    async with make_world(GENERATION_TIMEOUT="0.2") as world:
        world.api.queue_timeline(Timeline.never_ends())
        message = await say(world, f"{mention(world)} a slow cathedral")
        reply = await reply_of(world, message)

        def late() -> str | None:
            embeds = reply.embeds
            if not embeds or embeds[0].get("title") != i18n.translate("progress.title.late", i18n.SOURCE):
                return None
            return str(embeds[0]["description"])

        text = await world.discord.wait_for(late, 15, what="the late notice")
        assert "will show the images here" in text
        assert "mention you" not in text
        claim = await world.store.message_requests.get(message.id)
        assert claim is not None
        assert claim.job_id is not None
        (task,) = world.api.tasks_for(claim.job_id)
        world.api.end_task(task.id)
        await world.discord.wait_for(lambda: bool(reply.attachments), 15, what="the images, in the same reply")
        assert not [m for m in bot_messages(world) if m is not reply]

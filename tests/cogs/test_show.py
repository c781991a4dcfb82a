"""/show through the real bot: a job found again by the reference in its result's footer, posted again with its
buttons, and every rule about whose jobs, from which channels, into which channels; its suggestions, within their
budget when the database is slow."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import discord

from storage.jobs import Job, JobKind, JobState
from tests.cogs.conftest import World, delivered, png_upload, wait_until
from tests.cogs.test_quota import announce_role
from tests.cogs.test_welcome import welcome_in
from tests.fakes.discord import (
    CallbackType,
    FakeChannel,
    FakeMember,
    InteractionRecord,
    InteractionType,
    MessageRecord,
    Overwrite,
    Permission,
)
from tests.fakes.toapis import Endpoint, Timeline

REFERENCE = re.compile(r"^Job ([0-9a-f]{8,32})")


async def generate(
    world: World, prompt: str, *, user: FakeMember | None = None, channel: FakeChannel | None = None, **options: Any
) -> tuple[MessageRecord, str]:
    """A member's delivered /imagine: its result message and the reference in the result's footer."""
    call = await world.imagine(prompt, user=user, channel=channel, **options)
    await world.discord.wait_for(lambda: delivered(call), 15, what="the images")
    assert call.original is not None
    found = REFERENCE.match(call.original.embeds[0]["footer"]["text"])
    assert found is not None, call.original.embeds[0]
    return call.original, found.group(1)


async def show(
    world: World, reference: str, *, user: FakeMember | None = None, channel: FakeChannel | None = None
) -> InteractionRecord:
    return await world.discord.invoke_slash(
        "show", {"job": reference}, user=user or world.member, channel=channel or world.channel
    )


async def shown(world: World, call: InteractionRecord) -> MessageRecord:
    """The public reply that shows the job's images again."""
    await world.discord.wait_for(lambda: delivered(call) or bool(call.followups), 15, what="the images shown")
    assert call.followups == [], [m.content for m in call.followups]
    assert call.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    assert call.original is not None
    assert not call.original.ephemeral
    assert call.original.mentions_nobody
    return call.original


async def refused(world: World, call: InteractionRecord) -> str:
    """A refusal found after the defer: the public placeholder deleted, the reason told privately."""
    followup: MessageRecord = await world.discord.wait_for(
        lambda: call.followups[-1] if call.followups else None, 10, what="an ephemeral follow-up"
    )
    assert call.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    assert call.original is not None
    assert call.original.deleted
    assert not any(version.attachments for version in call.original.versions)
    assert followup.ephemeral
    assert followup.mentions_nobody
    return followup.content


async def refused_at_once(world: World, call: InteractionRecord) -> str:
    await world.discord.wait_for(lambda: call.acknowledged or call.failed, 10, what="the first response")
    assert call.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
    assert call.callback is not None
    assert call.callback.ephemeral
    assert call.callback.data is not None
    content = call.callback.data["content"]
    assert isinstance(content, str)
    return content


# -- showing a job again ------------------------------------------------------------------------------------------


async def test_a_member_shows_their_job_again_elsewhere_with_its_images_and_working_buttons(world: World) -> None:
    result, reference = await generate(world, "a lighthouse at dusk", n=2, aspect="16:9")
    (job,) = await world.jobs()
    assert reference == job.id[:8]
    lounge = world.guild.add_text_channel("lounge")

    call = await show(world, reference.upper(), channel=lounge)  # references are read in any case
    message = await shown(world, call)

    assert message.channel is lounge
    assert [(a.filename, a.data) for a in message.attachments] == [(a.filename, a.data) for a in result.attachments]
    (embed,) = message.embeds
    assert embed["description"] == "a lighthouse at dusk"
    assert {f["name"]: f["value"] for f in embed["fields"]} == {"Requested by": f"<@{world.member.id}>"}
    assert embed["footer"]["text"] == f"Job {reference} · GPT Image 2 · Widescreen 16:9 · 1K (standard)"
    assert message.custom_ids() == [
        f"imagine:reroll:{job.id}",
        f"imagine:remix:{job.id}:16:9:1k:gpt-image-2",
        f"imagine:delete:{job.id}:{world.member.id}",
        f"imagine:vary:{job.id}:0",
        f"imagine:vary:{job.id}:1",
    ]
    # The buttons work there: Re-roll repeats the job for whoever clicks, in that channel.
    bob = world.guild.add_member("bob")
    reroll = await world.discord.click(message, f"imagine:reroll:{job.id}", bob)
    await world.discord.wait_for(lambda: delivered(reroll), 15, what="the re-roll")
    again = (await world.jobs())[-1]
    assert (again.kind, again.parent_job_id, again.user_id, again.channel_id) == (
        JobKind.REROLL,
        job.id,
        bob.id,
        lounge.id,
    )
    assert again.prompt == "a lighthouse at dusk"
    # Nothing was generated or counted to show it.
    assert len(world.api.requests_to(Endpoint.SUBMIT)) == 2


# A prompt near Imagine's 4,000 characters: longer than what a result (3,500) and /show (300) used to show.
LONG_PROMPT = ("a harbour at dawn, gulls over the masts, " * 97).strip()


async def test_a_shown_message_carries_the_whole_prompt_for_remix_and_refusals_at_once(world: World) -> None:
    assert 3_900 < len(LONG_PROMPT) <= 4_000
    result, reference = await generate(world, LONG_PROMPT)
    (job,) = await world.jobs()
    assert result.embeds[0]["description"] == LONG_PROMPT

    message = await shown(world, await show(world, reference))

    assert message.embeds[0]["description"] == LONG_PROMPT
    # Remix's form is filled from the message, without I/O: with the whole prompt, not said to be cut.
    remix = await world.discord.click(message, f"imagine:remix:{job.id}:1:1:1k:gpt-image-2", world.member)
    await world.discord.wait_for(lambda: remix.modal is not None or remix.failed, 10, what="the form")
    assert remix.modal is not None
    (prompt,) = [item for item in remix.modal["components"] if item["component"].get("custom_id") == "prompt"]
    assert prompt["component"]["value"] == LONG_PROMPT
    assert "description" not in prompt
    # A refusal before any I/O (the cooldown) repeats the whole prompt, read from the message.
    await world.bot.services.server_settings.set_cooldown(world.guild.id, 600)
    world.bot.services.intake.admission.start_cooldown(world.guild.id, world.member.id)
    reroll = await world.discord.click(message, f"imagine:reroll:{job.id}", world.member)
    await world.discord.wait_for(lambda: reroll.acknowledged or reroll.failed, 10, what="the refusal")
    assert reroll.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
    assert reroll.original is not None
    (echo,) = [e for e in reroll.original.embeds if e.get("title") == "Your prompt"]
    assert echo["description"] == "```\n" + LONG_PROMPT + "\n```"


async def test_anothers_job_is_refused_unless_the_member_may_manage_messages(world: World) -> None:
    _, reference = await generate(world, "alice's castle")
    bob = world.guild.add_member("bob")

    text = await refused(world, await show(world, reference, user=bob))

    assert text == (
        "That job is another member's. You can show your own jobs; showing anyone's needs the Manage Messages "
        "permission."
    )
    mods = await announce_role(world, "Mods", Permission.MANAGE_MESSAGES)
    moderator = world.guild.add_member("mod", roles=[mods])
    message = await shown(world, await show(world, reference, user=moderator))
    fields = {f["name"]: f["value"] for f in message.embeds[0]["fields"]}
    assert fields == {"Requested by": f"<@{world.member.id}>", "Shown by": f"<@{moderator.id}>"}


async def test_a_job_of_another_server_is_never_found(world: World) -> None:
    _, reference = await generate(world, "a secret of the first server")
    # Added once the bot is ready, the server is joined, and welcomed: its one message there.
    await world.bot.wait_until_ready()
    other = world.discord.add_guild("Other server")
    hall = other.add_text_channel("hall")
    owner = other.owner
    welcome = await welcome_in(world, hall)

    # Not even its owner, who may manage every message there, finds it.
    text = await refused(world, await show(world, reference, user=owner, channel=hall))

    assert text == f"No job of this server has the reference `{reference}`. /history lists yours."
    assert world.discord.channel_messages(hall) == [welcome]


async def test_a_job_from_a_channel_the_member_cannot_view_is_refused(world: World) -> None:
    hidden = Permission.VIEW_CHANNEL | Permission.SEND_MESSAGES | Permission.READ_MESSAGE_HISTORY
    secret = world.guild.add_text_channel(
        "secret",
        overwrites=[
            Overwrite(world.guild.everyone, deny=Permission.VIEW_CHANNEL),
            Overwrite(world.member, allow=hidden),
            Overwrite(world.guild.bot_role, allow=hidden | Permission.ATTACH_FILES | Permission.EMBED_LINKS),
        ],
    )
    _, reference = await generate(world, "a plan made in secret", channel=secret)
    mods = await announce_role(world, "Mods", Permission.MANAGE_MESSAGES)
    moderator = world.guild.add_member("mod", roles=[mods])

    text = await refused(world, await show(world, reference, user=moderator))

    assert text == "That job was made in a channel you cannot see, so it cannot be shown."
    # Its requester, who sees it, may show it in #general.
    await shown(world, await show(world, reference))


async def test_a_job_from_an_age_restricted_channel_is_shown_only_in_one(world: World) -> None:
    after_dark = world.guild.add_text_channel("after-dark", nsfw=True)
    other_dark = world.guild.add_text_channel("late-night", nsfw=True)
    _, reference = await generate(world, "a moonlit scene", channel=after_dark)
    _, plain = await generate(world, "a sunny scene")

    text = await refused(world, await show(world, reference))

    assert text == "That job was made in an age-restricted channel: it can be shown only in an age-restricted channel."
    await shown(world, await show(world, reference, channel=other_dark))
    # The other way round is fine.
    await shown(world, await show(world, plain, channel=other_dark))


async def test_spoilers_stay_spoilers(world: World) -> None:
    png = png_upload().data
    posted = await bot_posts(world, [("SPOILER_imagine-1.png", png), ("imagine-2.png", png)])
    job = await delivered_job(world, posted.id, n=2)

    message = await shown(world, await show(world, job.id[:8]))

    assert [a.filename for a in message.attachments] == ["SPOILER_imagine-1.png", "imagine-2.png"]
    assert [a.data for a in message.attachments] == [png, png]


async def test_a_job_delivered_plainly_is_shown_as_spoilers_once_the_server_posts_results_as_spoilers(
    world: World,
) -> None:
    png = png_upload().data
    posted = await bot_posts(world, [("imagine-1.png", png)])  # delivered before the admins turned spoilers on
    job = await delivered_job(world, posted.id, n=1)
    await world.bot.services.server_settings.set_spoiler(world.guild.id, True, exempt_nsfw=True)
    after_dark = world.guild.add_text_channel("after-dark", nsfw=True)

    message = await shown(world, await show(world, job.id[:8]))
    exempt = await shown(world, await show(world, job.id[:8], channel=after_dark))

    assert [a.filename for a in message.attachments] == ["SPOILER_imagine-1.png"]
    assert [a.filename for a in exempt.attachments] == ["imagine-1.png"]  # age-restricted channels left out


async def test_images_sent_by_direct_message_are_shown_from_there(world: World) -> None:
    png = png_upload(colour="navy").data
    requester = await world.bot.fetch_user(world.member.id)
    posted = await requester.send(files=[discord.File(io.BytesIO(png), filename="imagine-1.png")])
    job = await delivered_job(world, posted.id, n=1)

    message = await shown(world, await show(world, job.id[:8]))

    assert message.channel is world.channel
    assert [(a.filename, a.data) for a in message.attachments] == [("imagine-1.png", png)]


async def test_show_follows_the_channel_allow_list_and_refuses_what_is_no_reference_at_once(world: World) -> None:
    _, reference = await generate(world, "a fox")
    art = world.guild.add_text_channel("art")
    await world.bot.services.server_settings.add_allowed_channel(world.guild.id, art.id)

    elsewhere = await refused_at_once(world, await show(world, reference))
    nonsense = await refused_at_once(world, await show(world, "not-a-ref", channel=art))

    assert elsewhere == f"/show is not used in this channel. In this server, use it in <#{art.id}>."
    assert nonsense.startswith("That is not a job reference.")
    await shown(world, await show(world, reference, channel=art))


async def test_a_deleted_result_or_a_job_without_images_cannot_be_shown(world: World) -> None:
    result, reference = await generate(world, "a short-lived sketch")
    (job,) = await world.jobs()
    delete = await world.discord.click(result, f"imagine:delete:{job.id}:{world.member.id}", world.member)
    await world.discord.wait_for(lambda: result.deleted, 10, what="the deletion")
    assert delete.acknowledged

    gone = await refused(world, await show(world, reference))

    assert gone == "The message with that job's images was deleted, so they cannot be shown again."
    world.api.on_prompt("a task that fails", Timeline.failing())
    await world.imagine("a task that fails")
    failed = await wait_until(lambda: _failed_job(world, "a task that fails"), 15)
    not_made = await refused(world, await show(world, failed.id[:8]))
    assert not_made == "That job has no images to show: it did not succeed."


async def _failed_job(world: World, prompt: str) -> Job | None:
    return next((job for job in await world.jobs() if job.prompt == prompt and job.state is JobState.FAILED), None)


# -- suggestions ----------------------------------------------------------------------------------------------


async def test_suggestions_are_the_members_own_delivered_jobs_newest_first(world: World) -> None:
    _, castle = await generate(world, "a castle on a hill")
    _, harbour = await generate(world, "a harbour\nat night")
    bob = world.guild.add_member("bob")
    await generate(world, "bob's castle", user=bob)

    everything = await world.discord.autocomplete("show", {"job": ""}, focused="job", user=world.member)
    castles = await world.discord.autocomplete("show", {"job": "CASTLE"}, focused="job", user=world.member)
    by_reference = await world.discord.autocomplete("show", {"job": castle[:5]}, focused="job", user=world.member)

    assert everything == [
        {"name": f"{harbour} · a harbour at night · just now", "value": harbour},
        {"name": f"{castle} · a castle on a hill · just now", "value": castle},
    ]
    assert castles == [everything[1]]
    assert by_reference == [everything[1]]


async def test_suggestions_are_cut_to_discords_limit(world: World) -> None:
    _, reference = await generate(world, "a very long prompt " * 20)

    (suggestion,) = await world.discord.autocomplete("show", {"job": ""}, focused="job", user=world.member)

    assert len(suggestion["name"]) == 100
    assert suggestion["name"].startswith(f"{reference} · a very long prompt a very")
    assert suggestion["name"].endswith("… · just now")


async def test_suggestions_give_up_within_their_budget_when_the_database_is_slow(world: World) -> None:
    _, reference = await generate(world, "a patient owl")

    async with database_busy(world):
        call = world.discord.autocomplete("show", {"job": ""}, focused="job", user=world.member)
        # Discord's own deadline is 3 s: the bot answers nothing in time rather than fail.
        assert await call == []
    (record,) = [i for i in world.discord.interactions if i.type is InteractionType.AUTOCOMPLETE]
    assert record.callback is not None
    assert record.callback.after_dispatch is not None
    assert 2.0 <= record.callback.after_dispatch < 3.0
    # Once the database answers again, so do the suggestions.
    (suggestion,) = await world.discord.autocomplete("show", {"job": ""}, focused="job", user=world.member)
    assert suggestion["value"] == reference


# -- helpers ----------------------------------------------------------------------------------------------------


@asynccontextmanager
async def database_busy(world: World) -> AsyncIterator[None]:
    """The bot's database is held by a long transaction (a large purge, say) until the block ends."""
    started, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with world.store.db.transaction():
            started.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await started.wait()
    try:
        yield
    finally:
        release.set()
        await holder


async def bot_posts(world: World, files: list[tuple[str, bytes]]) -> discord.Message:
    """A message the bot posts in #general with these files (as the reporter posts a result)."""
    channel = world.bot.get_channel(world.channel.id)
    assert isinstance(channel, discord.TextChannel)
    return await channel.send(files=[discord.File(io.BytesIO(data), filename=name) for name, data in files])


async def delivered_job(world: World, message_id: int, *, n: int) -> Job:
    """A job of the member in #general, completed with its images on the message `message_id`."""
    jobs = world.store.jobs
    job = await jobs.create(
        guild_id=world.guild.id,
        channel_id=world.channel.id,
        user_id=world.member.id,
        kind=JobKind.IMAGINE,
        prompt="a hidden surprise",
        n=n,
        model="gpt-image-2",
    )
    await jobs.set_state(job.id, JobState.DELIVERING)
    await jobs.record_delivery(job.id, images_delivered=n, result_message_id=message_id)
    return await jobs.set_state(job.id, JobState.COMPLETED)


async def test_a_job_from_a_private_thread_is_shown_by_its_requester_or_those_who_manage_threads(
    world: World,
) -> None:
    thread = world.guild.add_thread(
        world.channel, "just us", private=True, owner=world.member, members=[world.guild.bot_member]
    )
    _, reference = await generate(world, "a private sketch", channel=thread)
    mods = await announce_role(world, "Mods", Permission.MANAGE_MESSAGES)
    thread_mods = await announce_role(world, "Thread mods", Permission.MANAGE_MESSAGES | Permission.MANAGE_THREADS)

    hidden = await refused(world, await show(world, reference, user=world.guild.add_member("mod", roles=[mods])))

    assert hidden == "That job was made in a channel you cannot see, so it cannot be shown."
    await shown(world, await show(world, reference, user=world.guild.add_member("lead", roles=[thread_mods])))
    await shown(world, await show(world, reference))

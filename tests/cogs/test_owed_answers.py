"""An owed answer whose interaction token has died (15 minutes): the member is told in the channel, mentioning
only them; where the bot may not post, the record is dropped. A restart during intake answers the request."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import discord
import pytest

import i18n
from cogs._owed import OwedAnswerer
from storage.clock import utc_now
from storage.owed_answers import OwedAnswer
from storage.quotas import Period, RuleScope
from tests.cogs.conftest import World, WorldFactory, delivered, png_upload

RESTARTED = i18n.translate("owed.restarted", i18n.SOURCE, bot="Imagine")


def left_by_a_stopped_process(world: World, *, postable: bool = True) -> OwedAnswer:
    return OwedAnswer(
        interaction_id=4242,
        guild_id=world.guild.id,
        channel_id=world.channel.id,
        user_id=world.member.id,
        application_id=world.discord.application_id,
        interaction_token="long-dead-token",
        token_expires_at=utc_now() - timedelta(minutes=1),
        reply_message_id=1,
        prompt="a lighthouse <@&1> @everyone",
        options={"kind": "imagine", "n": 2, "aspect": "16:9", "attachments": 1},
        locale="en-US",
        channel_postable=postable,
    )


async def test_past_the_tokens_life_the_member_is_told_in_the_channel(world: World) -> None:
    await world.store.owed_answers.record(left_by_a_stopped_process(world), owner="before", ttl_seconds=60)

    await world.restart()

    (post,) = world.discord.channel_messages(world.channel)
    assert post.content == f"<@{world.member.id}> {RESTARTED}"
    assert post.pings.users == frozenset({world.member.id})
    assert not post.pings.roles
    assert not post.pings.everyone
    (embed,) = post.embeds
    assert "a lighthouse" in embed["description"]
    assert "aspect:16:9" in embed["fields"][0]["value"]
    assert "n:2" in embed["fields"][0]["value"]
    assert await world.store.owed_answers.count() == 0


async def test_a_left_request_whose_first_answer_failed_still_says_the_bot_restarted(world: World) -> None:
    await world.store.owed_answers.record(left_by_a_stopped_process(world), owner="before", ttl_seconds=60)
    refusals = world.discord.inject_429("POST /channels/*", times=5, retry_after=0.01)
    owed_answers, answerer = world.bot.services.owed_answers, OwedAnswerer(world.bot)

    assert await owed_answers.answer_left_over(answerer) == 0  # Discord would not take it: the next look will
    assert refusals.remaining == 0
    assert await owed_answers.answer_left_over(answerer) == 1

    (post,) = world.discord.channel_messages(world.channel)
    assert post.content == f"<@{world.member.id}> {RESTARTED}"
    assert await world.store.owed_answers.count() == 0


async def test_with_nowhere_to_post_the_record_is_dropped(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    await world.store.owed_answers.record(left_by_a_stopped_process(world, postable=False), owner="x", ttl_seconds=60)

    await world.restart()

    assert world.discord.channel_messages(world.channel) == []
    assert await world.store.owed_answers.count() == 0
    # Logged for the operator, with whom and where.
    (dropped,) = [record for record in caplog.records if record.message.startswith("Dropped the unanswered request")]
    assert dropped.levelno == logging.WARNING
    assert f"interaction 4242 (member {world.member.id}, channel {world.channel.id})" in dropped.message


async def test_a_channel_answer_the_member_deleted_before_a_crash_counts_as_answered(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """The start posted the answer, the member deleted it, and the process stopped before it forgot the record:
    the next start's post repeats the nonce, which Discord answers 404 10008. That is an answer (deleted by its
    reader), not a channel that refuses the bot."""
    caplog.set_level(logging.INFO)
    owed = left_by_a_stopped_process(world)
    await world.store.owed_answers.record(owed, owner="before", ttl_seconds=60)
    await world.restart()
    (post,) = world.discord.channel_messages(world.channel)
    await world.discord.delete_message(post)
    await world.store.owed_answers.record(owed, owner="before", ttl_seconds=60)
    caplog.clear()

    await world.restart()

    assert world.discord.channel_messages(world.channel) == []
    assert await world.store.owed_answers.count() == 0
    assert "Answered 1 request(s) a stopped process had acknowledged" in caplog.text
    assert "Dropped the unanswered request" not in caplog.text


async def test_a_stop_during_intake_answers_the_member_and_counts_nothing(world: World) -> None:
    world.discord.hold_cdn()
    call = await world.imagine("a fox in the snow", image=png_upload("fox.png"))
    await world.discord.wait_for(lambda: world.discord.cdn_requests >= 1, 15)
    assert await world.store.owed_answers.count() == 1

    await world.restart()
    world.discord.release_cdn()

    assert call.original is not None
    assert call.original.deleted
    (answer,) = call.followups
    assert answer.ephemeral
    assert answer.content == i18n.translate("owed.stopping", i18n.SOURCE, bot="Imagine")
    assert await world.store.owed_answers.count() == 0
    assert await world.jobs() == []


async def test_a_reply_the_callback_did_not_name_is_looked_up_and_delivered(world: World) -> None:
    # Discord's reference marks the callback's `response_message_id` optional: the bot asks for the reply instead.
    world.discord.state.callbacks_name_their_message = False
    call = await world.imagine("a lantern in the fog")
    await world.discord.wait_for(lambda: delivered(call), 15, what="the images")
    assert any(r.method == "GET" and r.path.endswith("/messages/@original") for r in world.discord.requests)
    assert await world.store.owed_answers.count() == 0


async def test_a_stop_while_the_reply_is_looked_up_answers_the_member(world: World) -> None:
    """Looking the reply up is I/O for the request: the member is owed an answer before it, so a stop meanwhile
    answers them, as during the rest of the intake."""
    world.discord.state.callbacks_name_their_message = False
    held = world.discord.inject_429("GET /webhooks/*", times=1, retry_after=30)
    call = await world.imagine("a lantern in the fog")
    await world.discord.wait_for(lambda: held.remaining == 0, 15, what="the look-up, held")
    assert await world.store.owed_answers.count() == 1

    await world.restart()

    (answer,) = call.followups
    assert answer.content == i18n.translate("owed.stopping", i18n.SOURCE, bot="Imagine")
    assert await world.store.owed_answers.count() == 0
    assert await world.jobs() == []


async def test_a_stop_while_a_mention_is_read_answers_in_its_reply(world: World) -> None:
    world.discord.hold_cdn()
    message = await world.discord.post_message(
        world.channel, world.member, f"<@{world.discord.bot_user.id}> a fox in the snow", files=(png_upload("fox.png"),)
    )
    await world.discord.wait_for(lambda: world.discord.cdn_requests >= 1, 15)

    await world.restart()
    world.discord.release_cdn()

    (reply,) = [m for m in world.discord.channel_messages(world.channel) if m.author is world.discord.bot_user]
    assert reply.reference is message
    assert i18n.translate("owed.stopping", i18n.SOURCE, bot="Imagine") in reply.content
    assert await world.jobs() == []
    # Answered: the next start does not answer it again.
    assert await world.store.message_requests.get(message.id) is not None
    assert len(reply.versions) == 2


async def test_a_stop_while_the_defer_is_in_flight_waits_for_the_request(
    make_world: WorldFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM arrives while the request's deferral is on its way to Discord: the stop counts the request as
    acknowledged already, so it waits for it (here, its admission) rather than return at once."""
    sent, arrives = asyncio.Event(), asyncio.Event()
    defer = discord.InteractionResponse.defer

    async def slow_defer(self: discord.InteractionResponse, **kwargs: Any) -> Any:
        sent.set()
        await arrives.wait()  # the network is slow
        return await defer(self, **kwargs)

    # A poll interval of 1 s gives the stop's drain 1.2 s: ample for an admission without images.
    async with make_world(TOAPIS_POLL_INTERVAL="1") as world:
        monkeypatch.setattr(discord.InteractionResponse, "defer", slow_defer)
        call = await world.imagine("a fox in the snow")
        await asyncio.wait_for(sent.wait(), 15)
        intake = world.bot.services.intake

        closing = asyncio.create_task(intake.close())
        for _ in range(3):
            await asyncio.sleep(0)
        assert not closing.done()  # it waits for the request
        arrives.set()
        await closing
        monkeypatch.undo()
        assert len(await world.jobs()) == 1  # admitted before the stop went on

        # Resumed and delivered by the next start.
        await world.restart()
        job = await world.finished_job()
        assert (job.state.value, job.images_delivered) == ("completed", 1)
        await world.discord.wait_for(lambda: delivered(call), 15, what="the images")
        assert await world.store.owed_answers.count() == 0


async def test_a_refusal_discord_would_not_take_is_answered_once_by_the_next_sweep(world: World) -> None:
    """The quota refuses the request after the defer, and Discord answers the private refusal 429 until discord.py
    gives up: the member is still owed an answer, which the sweep for owed answers gives (every minute), once; not
    an error now and a second answer at the next start."""
    await world.store.quotas.set_rule(world.guild.id, RuleScope.MEMBER, 0, Period.DAY)
    refusals = world.discord.inject_429("POST /webhooks/*", times=5, retry_after=0.01)

    call = await world.imagine("a kite over the dunes")
    await world.discord.wait_for(lambda: call.original is not None and call.original.deleted, 10)
    await world.interactions_handled()
    assert refusals.remaining == 0

    await world.bot.services.owed_answers.answer_left_over(OwedAnswerer(world.bot))

    (answer,) = call.followups
    assert answer.ephemeral
    # The bot never restarted: the member is told it could not answer in time.
    assert answer.content == i18n.translate("owed.unanswered", "en-US")
    assert "a kite over the dunes" in answer.embeds[0]["description"]
    assert await world.store.owed_answers.count() == 0
    assert await world.jobs() == []

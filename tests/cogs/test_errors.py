"""Errors become one short message: never two, never public, never "the application did not respond"."""

from __future__ import annotations

import asyncio

import pytest

from cogs._texts import generic_text, permission_names
from generation.admission import Admission
from generation.pipeline import Pipeline
from tests.cogs.conftest import World
from tests.cogs.test_prompt_repeated import TRICKY, prompt_in
from tests.cogs.test_quota import generate
from tests.fakes.discord import CallbackType, InteractionRecord

GENERIC = generic_text("en-US")


async def test_a_refused_command_is_answered_once_though_two_handlers_see_the_error(world: World) -> None:
    call = await world.discord.invoke_slash(
        "quota export", {"start": "yesterday"}, user=world.guild.owner, channel=world.channel
    )
    await world.discord.wait_for(lambda: call.callback is not None, 10)
    await asyncio.sleep(0.2)  # a second answer, if any, would come right after the first
    assert call.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
    assert call.callback is not None
    assert call.callback.ephemeral
    assert call.followups == []
    assert "`start` must be a date like 2026-11-01" in (call.callback.data or {}).get("content", "")


async def test_an_unexpected_error_after_the_defer_is_told_privately_and_the_reply_goes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: Pipeline, *args: object, **kwargs: object) -> object:
        raise RuntimeError("the database fell over")

    monkeypatch.setattr(Pipeline, "submit", broken)
    call = await world.imagine("a cat that breaks things")
    await world.discord.wait_for(lambda: bool(call.followups), 10)
    assert call.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    original = call.original
    assert original is not None
    assert original.deleted  # the public "thinking" reply is gone
    (followup,) = call.followups
    assert followup.ephemeral
    assert followup.content == GENERIC
    # The bot did I/O for the request (the defer, the owed answer), so the cooldown stands (docs/members.md):
    # handing it back would let a request that fails on our side be repeated for free.
    await world.bot.services.server_settings.set_cooldown(world.guild.id, 600)
    assert world.bot.services.intake.admission.cooldowns.remaining(world.guild.id, world.member.id, 600) > 0


def test_permissions_are_named_as_discords_client_names_them() -> None:
    assert permission_names(["manage_guild", "send_messages_in_threads"], "en-US") == [
        "Manage Server",
        "Send Messages in Threads",
    ]
    # A permission the catalog does not name yet: its flag, in words.
    assert permission_names(["create_expressions"], "en-US") == ["Create Expressions"]


async def test_an_unexpected_error_before_the_answer_repeats_the_prompt_of_the_request(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = await generate(world, TRICKY)
    assert result.original is not None
    (job,) = await world.jobs()

    def broken(self: Admission, *args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug before the first answer")

    monkeypatch.setattr(Admission, "check_place_and_pace", broken)

    async def answered(call: InteractionRecord) -> str:
        await world.discord.wait_for(lambda: call.acknowledged or call.failed, 10, what="the answer")
        assert call.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
        assert call.original is not None
        assert call.original.ephemeral
        assert call.original.content == GENERIC
        return prompt_in(call.original)

    # /imagine's prompt option, and the prompt on the result whose Re-roll was clicked.
    assert await answered(await world.imagine("a cat " + TRICKY)) == "a cat " + TRICKY
    assert await answered(await world.discord.click(result.original, f"imagine:reroll:{job.id}", world.member)) == (
        TRICKY
    )
    # A button that repeats no request (Delete, not the member's) repeats nothing.
    other = world.guild.add_member("bob")
    delete = await world.discord.click(result.original, f"imagine:delete:{job.id}:{world.member.id}", other)
    await world.discord.wait_for(lambda: delete.acknowledged, 10, what="the answer")
    assert delete.original is not None
    assert delete.original.embeds == ()

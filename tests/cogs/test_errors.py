"""Errors become one short message: never two, never public, never "the application did not respond"."""

from __future__ import annotations

import asyncio

import pytest

from cogs._texts import generic_text, permission_names
from generation.pipeline import Pipeline
from tests.cogs.conftest import World
from tests.fakes.discord import CallbackType

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
    # And the member is not kept waiting by a cooldown for a request that never ran.
    await world.bot.services.server_settings.set_cooldown(world.guild.id, 600)
    assert world.bot.services.intake.admission.cooldowns.remaining(world.guild.id, world.member.id, 600) == 0


def test_permissions_are_named_as_discords_client_names_them() -> None:
    assert permission_names(["manage_guild", "send_messages_in_threads"], "en-US") == [
        "Manage Server",
        "Send Messages in Threads",
    ]
    # A permission the catalog does not name yet: its flag, in words.
    assert permission_names(["create_expressions"], "en-US") == ["Create Expressions"]

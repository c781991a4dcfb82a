"""The welcome through the real bot: one short message for the admins when the bot is added to a server, in its
system channel or else the first text channel where it may write; never twice for a server, never at a start,
never in a server off the allow-list, and nothing where it may write nowhere."""

from __future__ import annotations

import logging

import pytest

import i18n
from tests.cogs.conftest import World, WorldFactory, wait_until
from tests.fakes.discord import FakeChannel, FakeGuild, MessageRecord, Overwrite, Permission

SERVER_ID = 4_242_424_242 << 22
WELCOME = i18n.translate("welcome", i18n.SOURCE)


async def welcome_in(world: World, channel: FakeChannel) -> MessageRecord:
    """The one message the bot posted in `channel`: the welcome."""
    message: MessageRecord = await world.discord.wait_for(
        lambda: next(iter(world.discord.channel_messages(channel)), None), 10, what="the welcome"
    )
    assert message.content == WELCOME
    assert message.author is world.discord.bot_user
    assert message.mentions_nobody
    return message


async def logged(caplog: pytest.LogCaptureFixture, text: str) -> None:
    async def seen() -> bool:
        return text in caplog.text

    await wait_until(seen, 10)


def bot_messages(world: World) -> list[MessageRecord]:
    return [m for m in world.discord.messages if m.author is world.discord.bot_user]


async def test_a_server_is_welcomed_once_however_often_the_bot_is_added(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # A server added in discord.py's first seconds counts as one it was in already: joins come once it is ready.
    await world.bot.wait_until_ready()
    studio = world.discord.add_guild("Studio", guild_id=SERVER_ID)
    lobby = studio.add_text_channel("lobby")

    await welcome_in(world, lobby)
    assert not await world.store.guild_settings.claim_welcome(SERVER_ID)  # recorded: it is not claimed again

    # An admin removes the bot and adds it again: no second welcome.
    world.discord.remove_bot(studio)
    again = world.discord.add_guild("Studio", guild_id=SERVER_ID)
    fresh = again.add_text_channel("lobby")
    await logged(caplog, f"Server {SERVER_ID} was welcomed before")
    # The world's own server, there when the bot started, arrived as available: it is never greeted.
    assert world.discord.channel_messages(fresh) == []
    assert world.discord.channel_messages(world.channel) == []
    assert len(bot_messages(world)) == 1


async def test_the_welcome_goes_to_the_first_channel_where_the_bot_may_write_if_any(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await world.bot.wait_until_ready()
    guild = world.discord.add_guild("Busy server")
    bot = guild.bot_role
    # The system channel is read-only for the bot; the first channel it is not allowed to see at all.
    announcements = guild.add_text_channel("announcements", overwrites=[Overwrite(bot, deny=Permission.SEND_MESSAGES)])
    guild.add_text_channel("mods", overwrites=[Overwrite(bot, deny=Permission.VIEW_CHANNEL)])
    guild.add_voice_channel("voice")
    chat = guild.add_text_channel("chat")
    guild.system_channel = announcements

    await welcome_in(world, chat)

    # Where it may write nowhere, nothing; added again with the right to write, it was never welcomed, so it is.
    muted = world.discord.add_guild("Muted", guild_id=SERVER_ID)
    muted.add_text_channel("general", overwrites=[Overwrite(muted.bot_role, deny=Permission.SEND_MESSAGES)])
    await logged(caplog, f"Server {SERVER_ID}: no channel where Imagine may write, so no welcome")
    assert len(bot_messages(world)) == 1
    world.discord.remove_bot(muted)
    again: FakeGuild = world.discord.add_guild("Muted", guild_id=SERVER_ID)
    await welcome_in(world, again.add_text_channel("general"))


async def test_a_server_off_the_allow_list_is_left_without_a_word(make_world: WorldFactory) -> None:
    allowed = 777 << 22
    async with make_world(guild_id=allowed, ALLOWED_GUILD_IDS=str(allowed)) as world:
        await world.bot.wait_until_ready()
        stranger = world.discord.add_guild("Stranger", guild_id=SERVER_ID)
        stranger.add_text_channel("general")

        await world.discord.wait_for(lambda: stranger in world.discord.state.left_guilds, 10, what="the bot leaving")

        assert bot_messages(world) == []
        assert await world.store.guild_settings.claim_welcome(SERVER_ID)  # it was never recorded as welcomed

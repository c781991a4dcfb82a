"""/help through the real bot: what Imagine does and how to use it, what applies to this member here (limits and
what is left, channels, models, cooldown), and the admin commands for those who may use them."""

from __future__ import annotations

from typing import Any

import i18n
from storage.quotas import Period, RuleScope
from tests.cogs.conftest import World, WorldFactory
from tests.cogs.test_quota import announce_role, assert_embed_within_limits, command, generate
from tests.fakes.discord import CallbackType, FakeMember, Permission


async def help_of(world: World, member: FakeMember) -> dict[str, Any]:
    """The member's /help: one ephemeral embed (deferred: the quotas are read) that pings nobody; its fields."""
    reply = await command(world, "help", user=member)
    assert reply.interaction is not None
    assert reply.interaction.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    (embed,) = reply.embeds
    assert_embed_within_limits(embed)
    assert embed["title"] == "Imagine"
    assert embed["description"].startswith("Imagine makes images from a description")
    return {field["name"]: field["value"] for field in embed["fields"]}


async def test_help_tells_a_member_what_applies_to_them_here(world: World) -> None:
    await world.store.quotas.set_rule(world.guild.id, RuleScope.MEMBER, 10, Period.WEEK)
    await generate(world, "three cats", n=3)

    fields = await help_of(world, world.member)

    assert list(fields) == [
        "How to use it",
        "In the conversation",
        "Your limits here",
        "Where",
        "Models",
        "Images per request",
        "Cooldown",
        "Languages",
    ]
    # Every language the bot speaks, each named in its own words.
    for code in i18n.SUPPORTED:
        assert i18n.language_name(code) in fields["Languages"]
    assert "`/imagine prompt:<text>`" in fields["How to use it"]
    assert "`/show job:<reference>`" in fields["How to use it"]
    limits = fields["Your limits here"].splitlines()
    assert limits[0].startswith("**The server's pool** today: 3 of 250 used, **247 left**. Resets <t:")
    assert limits[1].startswith("**Your limit** this week: 3 of 10 used, **7 left**. Resets <t:")
    assert limits[2] == "You have **7** images left now (a larger image counts as more than one)."
    assert (fields["Where"], fields["Models"]) == ("Every channel", "GPT Image 2 (default)")
    assert (fields["Images per request"], fields["Cooldown"]) == ("1 to 4", "None")


async def test_help_follows_the_servers_settings(make_world: WorldFactory) -> None:
    async with make_world(
        TOAPIS_MODELS="gpt-image-2,gemini-3-pro-image-preview",
        DEFAULT_MEMBER_DAILY_LIMIT="none",
        DEFAULT_SERVER_DAILY_LIMIT="none",
    ) as world:
        art = world.guild.add_text_channel("art")
        settings = world.bot.services.server_settings
        await settings.add_allowed_channel(world.guild.id, art.id)
        await settings.set_max_n(world.guild.id, 2)
        await settings.set_cooldown(world.guild.id, 90)

        fields = await help_of(world, world.member)

        assert fields["Your limits here"] == "No limits apply to you in this server."
        assert fields["Where"] == f"Only in <#{art.id}>"
        assert fields["Models"].startswith("GPT Image 2 (default), ")
        assert (fields["Images per request"], fields["Cooldown"]) == ("1 to 2", "1 min 30 s between two requests")


async def test_only_members_who_manage_the_server_see_the_admin_commands(world: World) -> None:
    admins = await announce_role(world, "Admins", Permission.MANAGE_GUILD)
    admin = world.guild.add_member("admin", roles=[admins])

    member_fields = await help_of(world, world.member)
    admin_fields = await help_of(world, admin)

    assert "For admins" not in member_fields
    assert admin_fields["For admins"].startswith("`/imagine-settings`: the channels where Imagine works")
    assert "`/quota`" in admin_fields["For admins"]

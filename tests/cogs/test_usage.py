"""/usage through the real bot: a plain member sees each rule that applies to them (the operator's defaults
included), what they used in its current period, what is left, and when it resets as a `<t:…:R>` timestamp."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from storage.quotas import Period, RuleScope
from tests.cogs.conftest import World, WorldFactory
from tests.cogs.test_quota import announce_role, command, description, generate, next_starts, resets_in
from tests.fakes.discord import CallbackType, FakeMember, InvocationRefused
from tests.fakes.toapis import Timeline


async def usage_of(world: World, member: FakeMember | None = None) -> list[str]:
    """The lines of the member's /usage, which must be a deferred, ephemeral embed that pings nobody."""
    reply = await command(world, "usage", user=member or world.member)
    assert reply.interaction is not None
    assert reply.interaction.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    assert reply.embeds[0]["title"] == "Your images"
    return description(reply).splitlines()


async def test_usage_is_for_every_member_in_servers_only(world: World) -> None:
    (usage,) = [c for c in world.discord.global_commands if c["name"] == "usage"]
    assert usage.get("default_member_permissions") is None
    assert usage["contexts"] == [0]
    with pytest.raises(InvocationRefused, match="not available in DMs"):
        await world.discord.invoke_slash("usage", user=world.member.user)


async def test_a_new_member_sees_the_operators_defaults_with_their_reset_time(world: World) -> None:
    before = datetime.now(UTC)
    lines = await usage_of(world)
    after = datetime.now(UTC)

    assert lines[0].startswith("**The server's pool** today: 0 of 250 used, **250 left**. Resets <t:")
    assert lines[1].startswith("**Your limit** today: 0 of 25 used, **25 left**. Resets <t:")
    assert lines[2:] == ["", "You have **25** images left now (a larger image counts as more than one)."]
    midnight = next_starts(Period.DAY, before, after)
    assert resets_in(lines[0])[0] in midnight
    assert resets_in(lines[1])[0] in midnight


async def test_usage_counts_the_members_images_and_the_whole_servers_pool(world: World) -> None:
    bob = world.guild.add_member("bob")
    await generate(world, "three cats", n=3)
    await generate(world, "two dogs", user=bob, n=2)

    lines = await usage_of(world)

    assert lines[0].startswith("**The server's pool** today: 5 of 250 used, **245 left**.")
    assert lines[1].startswith("**Your limit** today: 3 of 25 used, **22 left**.")
    assert lines[-1] == "You have **22** images left now (a larger image counts as more than one)."


async def test_usage_shows_the_operators_global_cap_counting_every_server(make_world: WorldFactory) -> None:
    async with make_world(GLOBAL_DAILY_LIMIT="1000", DEFAULT_MEMBER_DAILY_LIMIT="none") as world:
        # Another server's images count against the operator's cap, not against this server's pool.
        await world.store.quotas.reserve("elsewhere", world.guild.id + 1, 42, [], 4)
        await generate(world, "a cat")

        lines = await usage_of(world)

        assert lines[0].startswith("**The server's pool** today: 1 of 250 used")
        assert lines[1].startswith("**Imagine's overall limit** today: 5 of 1,000 used, **995 left**. Resets <t:")
        assert not any(line.startswith("**Your limit**") for line in lines)
        assert lines[-1] == "You have **249** images left now (a larger image counts as more than one)."


async def test_usage_without_any_limit_says_so(make_world: WorldFactory) -> None:
    async with make_world(DEFAULT_MEMBER_DAILY_LIMIT="none", DEFAULT_SERVER_DAILY_LIMIT="none") as world:
        assert await usage_of(world) == ["No limits apply to you in this server."]


async def test_usage_of_week_and_month_rules_resets_on_monday_and_the_first(world: World) -> None:
    await world.store.quotas.set_rule(world.guild.id, RuleScope.SERVER, 2_500_000 // 5, Period.MONTH)
    await world.store.quotas.set_rule(world.guild.id, RuleScope.MEMBER, 1_000_000, Period.WEEK)

    before = datetime.now(UTC)
    lines = await usage_of(world)
    after = datetime.now(UTC)

    assert lines[0].startswith("**The server's pool** this month: 0 of 500,000 used, **500,000 left**.")
    assert lines[1].startswith("**Your limit** this week: 0 of 1,000,000 used, **1,000,000 left**.")
    assert resets_in(lines[0])[0] in next_starts(Period.MONTH, before, after)
    assert resets_in(lines[1])[0] in next_starts(Period.WEEK, before, after)
    monday = datetime.fromtimestamp(resets_in(lines[1])[0], UTC)
    first = datetime.fromtimestamp(resets_in(lines[0])[0], UTC)
    assert (monday.weekday(), monday.hour, monday.minute) == (0, 0, 0)
    assert (first.day, first.hour, first.minute) == (1, 0, 0)
    assert lines[-1] == "You have **500,000** images left now (a larger image counts as more than one)."


async def test_usage_names_the_role_whose_limit_applies(world: World) -> None:
    vip = await announce_role(world, "vip")
    await command(world, "quota role", {"role": vip, "limit": 40, "period": "week"})
    bob = world.guild.add_member("bob", roles=[vip])
    await generate(world, "a cat", user=bob, n=2)

    lines = await usage_of(world, bob)

    assert lines[1].startswith(f"**Your limit from <@&{vip.id}>** this week: 2 of 40 used, **38 left**. Resets <t:")
    # Alice has no such role: the operator's member default applies to her.
    assert (await usage_of(world))[1].startswith("**Your limit** today: 0 of 25 used")


async def test_usage_when_generation_is_off(world: World) -> None:
    await command(world, "quota set", {"scope": "member", "limit": 0})

    lines = await usage_of(world)

    assert lines[1] == "**Your limit**: generation is off (a server admin can change that)."
    assert lines[-1] == "You have **0** images left now (a larger image counts as more than one)."


async def test_usage_after_a_reset_forgives_the_member_but_not_the_pool(world: World) -> None:
    await generate(world, "two cats", n=2)
    await command(world, "quota reset", {"member": world.member})

    lines = await usage_of(world)

    assert lines[0].startswith("**The server's pool** today: 2 of 250 used")
    assert lines[1].startswith("**Your limit** today: 0 of 25 used, **25 left**.")


async def test_usage_over_the_limit_shows_nothing_left(make_world: WorldFactory) -> None:
    async with make_world(DEFAULT_MEMBER_DAILY_LIMIT="1") as world:
        # Images reserved under an earlier, larger rule keep counting when the rule shrinks.
        await world.store.quotas.set_rule(world.guild.id, RuleScope.MEMBER, 5, Period.DAY)
        await generate(world, "three cats", n=3)
        await world.store.quotas.remove_rule(world.guild.id, RuleScope.MEMBER)

        lines = await usage_of(world)

        assert lines[1].startswith("**Your limit** today: 3 of 1 used, **0 left**.")
        assert lines[-1] == "You have **0** images left now (a larger image counts as more than one)."


async def test_images_of_a_failed_job_are_given_back(world: World) -> None:
    world.api.queue_timeline(Timeline.failing("The upstream model crashed"))
    call = await world.imagine("a doomed cat", n=3)
    await world.discord.wait_for(lambda: call.original is not None and bool(call.original.embeds), 15)
    job = await world.finished_job()
    assert job.error_code is not None

    lines = await usage_of(world)

    assert lines[0].startswith("**The server's pool** today: 0 of 250 used")
    assert lines[1].startswith("**Your limit** today: 0 of 25 used, **25 left**.")

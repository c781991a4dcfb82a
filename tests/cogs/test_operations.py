"""The operator's side of the real bot: /imagine-admin status in the operator's server only, for the application's
owner or team; its commands synced per scope and removed from an earlier server; the low-balance alert posted
once per crossing through OPERATOR_ALERT_WEBHOOK_URL, never in the servers' log channels."""

from __future__ import annotations

import dataclasses

import i18n
from settings import Secret
from tests.cogs.conftest import World, wait_until
from tests.cogs.test_quota import announce_channel, command
from tests.fakes.discord import FakeChannel, FakeMember, Permission
from tests.fakes.toapis import Endpoint, Fault
from tests.generation.test_operations import sample

NOT_AN_OPERATOR = i18n.translate("admin.not_operator", i18n.SOURCE)


async def restart_with(world: World, **changes: object) -> None:
    """Stop the bot and start it again with these settings changed (as a new .env and a restart would)."""
    assert world.settings is not None
    world.settings = dataclasses.replace(world.settings, **changes)  # type: ignore[arg-type]
    await world.restart()


def operator(world: World) -> FakeMember:
    """The application's owner, an administrator of the test server (the command is shown to administrators)."""
    owner = world.discord.application_owner
    found = world.guild.member(owner.id)
    if found is not None:
        return found
    return world.guild.add_member(owner, roles=[world.guild.add_role("Operators", Permission.ADMINISTRATOR)])


def names(commands: list[dict[str, object]]) -> list[object]:
    return [c["name"] for c in commands]


async def test_the_status_is_for_the_operator_in_their_server_only(world: World) -> None:
    assert "imagine-admin" not in names(world.discord.global_commands)  # no OPERATOR_GUILD_ID: no command
    syncs = len(world.discord.command_syncs)

    await restart_with(world, operator_guild_id=world.guild.id)

    (sync,) = world.discord.command_syncs[syncs:]  # the global commands did not change: not synced again
    assert sync.guild_id == world.guild.id
    assert names(world.discord.guild_commands(world.guild)) == ["imagine-admin"]
    assert "imagine-admin" not in names(world.discord.global_commands)
    (admin,) = world.discord.guild_commands(world.guild)
    assert str(admin["default_member_permissions"]) == str(int(Permission.ADMINISTRATOR))

    answer = await command(world, "imagine-admin status", user=operator(world))
    (embed,) = answer.embeds
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert fields["Version"] == "0.1.0"
    assert fields["Servers"] == "1"
    assert fields["Shards (1 in all)"].startswith("0: ")
    assert fields["Jobs"] == "0 waiting, 0 in flight"
    assert fields["Images today (UTC)"] == "0 (no limit)"
    assert fields["Circuit breaker"] == "closed (ToAPIs answers)"
    assert fields["ToAPIs balance"].startswith("Credits: 1,000 ($5.00), read ")
    assert fields["Database"].endswith(" MB")

    # The server's owner is an administrator, but not the bot's operator.
    refused = await command(world, "imagine-admin status", user=world.guild.owner)
    assert refused.content == NOT_AN_OPERATOR
    assert not refused.embeds


async def test_a_team_owns_the_commands_and_an_earlier_server_loses_them(world: World) -> None:
    ann = world.guild.add_member("ann")
    bob = world.guild.add_member("bob")
    admins = world.guild.add_role("Admins", Permission.ADMINISTRATOR)
    for member in (ann, bob):
        member.roles.append(admins)
    world.discord.set_team([ann.user], invited=[bob.user])
    await restart_with(world, operator_guild_id=world.guild.id)

    assert (await command(world, "imagine-admin status", user=ann)).embeds
    assert (await command(world, "imagine-admin status", user=bob)).content == NOT_AN_OPERATOR  # not accepted yet
    assert (await command(world, "imagine-admin status", user=operator(world))).content == NOT_AN_OPERATOR

    other = world.discord.add_guild("Operations")
    await restart_with(world, operator_guild_id=other.id)
    assert world.discord.guild_commands(world.guild) == []
    assert names(world.discord.guild_commands(other)) == ["imagine-admin"]

    syncs = len(world.discord.command_syncs)
    await restart_with(world, operator_guild_id=None)
    assert world.discord.guild_commands(other) == []
    # Only the removal: the global commands never changed.
    assert [s.guild_id for s in world.discord.command_syncs[syncs:]] == [other.id]
    await world.restart()
    assert len(world.discord.command_syncs) == syncs + 1  # nothing left to remove, nothing changed


async def test_the_low_balance_alert_fires_once_per_crossing_through_the_webhook(world: World) -> None:
    operators_channel = await announce_channel(world, "operator-alerts")
    url = world.discord.add_channel_webhook(operators_channel)
    log_channel = await announce_channel(world, "bot-log")
    await command(world, "imagine-settings log-channel", {"channel": log_channel})
    await restart_with(
        world,
        operator_alert_webhook_url=Secret(url),
        low_balance_alert=500.0,
        balance_check_interval=0.01,
    )
    api = world.api

    async def reads_after(count: int) -> None:
        async def enough() -> bool:
            return len(api.requests_to(Endpoint.BALANCE)) >= count

        await wait_until(enough, 10)

    def alerts(channel: FakeChannel) -> list[str]:
        return [message.content for message in world.discord.channel_messages(channel)]

    await reads_after(len(api.requests_to(Endpoint.BALANCE)) + 3)
    assert alerts(operators_channel) == []  # 1,000 credits: above the threshold

    api.remain_credits = 420
    await world.discord.wait_for(lambda: alerts(operators_channel), 10, what="the low-balance alert")
    await reads_after(len(api.requests_to(Endpoint.BALANCE)) + 5)
    (alert,) = alerts(operators_channel)  # still below: not again
    assert "LOW_BALANCE_ALERT" in alert
    assert "420 credits left" in alert

    api.remain_credits = 900  # topped up: armed again
    await reads_after(len(api.requests_to(Endpoint.BALANCE)) + 3)
    api.remain_credits = 100
    await world.discord.wait_for(lambda: len(alerts(operators_channel)) == 2, 10, what="the second crossing")
    assert "100 credits left" in alerts(operators_channel)[1]
    (message,) = world.discord.channel_messages(operators_channel)[1:]
    assert message.pings.nobody
    # The servers' admins cannot act on the operator's balance: nothing in their log channel.
    assert alerts(log_channel) == []


async def test_rate_limits_met_are_counted_per_service(world: World) -> None:
    metrics = world.bot.operations.metrics
    world.discord.inject_429("POST /interactions/*", retry_after=0.01)
    world.api.fail(Endpoint.BALANCE, Fault.rate_limited(0.01))
    await command(world, "usage", user=world.member)  # discord.py waits the 429 out and answers
    reading = await world.bot.operations.balance.read()  # the client waits the 429 out and reads
    assert reading is not None
    assert sample(metrics, "imagine_rate_limits_total", service="discord") == 1
    assert sample(metrics, "imagine_rate_limits_total", service="toapis") == 1

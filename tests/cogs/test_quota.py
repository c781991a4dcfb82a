"""/quota through the real bot: admins set, clear, show and reset rules, and read and export the usage log.

Every command is run by a member of the fake Discord; the tests assert on what the fake recorded (ephemeral
flags, text, embeds, files, pings) and on what the fake ToAPIs received. The helpers at the top are shared by
the other admin tests (test_imagine_settings, test_usage, test_alerts, test_pagination).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cogs._texts import generic_text
from storage.errors import StorageError
from storage.quotas import Period, RuleScope
from storage.usage import CSV_COLUMNS, UsageEntry
from tests.cogs.conftest import World, WorldFactory, png_upload, wait_until
from tests.fakes.discord import (
    CallbackType,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeRole,
    InteractionRecord,
    InvocationRefused,
    MessageRecord,
    Overwrite,
    Permission,
)
from tests.fakes.toapis import Endpoint, Timeline

GENERIC = generic_text("en-US")

RELATIVE_TIMESTAMP = re.compile(r"<t:(\d+):R>")

# Discord's embed limits (docs/discord.md).
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
EMBED_TOTAL_LIMIT = 6000


# -- helpers shared by the admin tests ----------------------------------------------------------------------------


async def answer(world: World, call: InteractionRecord, timeout: float = 10.0) -> MessageRecord:
    """The message that answered `call`: the immediate reply, or what the deferred "thinking" placeholder became."""

    def ready() -> MessageRecord | None:
        if call.failed:
            raise AssertionError(f"/{call.name}: {call.failure}")
        original = call.original
        return original if original is not None and not original.loading else None

    message: MessageRecord = await world.discord.wait_for(ready, timeout, what=f"the answer to /{call.name}")
    return message


async def command(
    world: World,
    name: str,
    options: dict[str, Any] | None = None,
    *,
    user: FakeMember | None = None,
    channel: FakeChannel | None = None,
) -> MessageRecord:
    """Run `/name` (as the server owner unless `user` says otherwise) and return its ephemeral answer.

    Every answer of the admin commands and of /usage concerns one person: it must be ephemeral and ping nobody.
    """
    call = await world.discord.invoke_slash(
        name, options or {}, user=user or world.guild.owner, channel=channel or world.channel
    )
    message = await answer(world, call)
    assert message.ephemeral, f"/{name} answered publicly: {message.content!r}"
    assert message.mentions_nobody, f"/{name} pinged someone: {message.pings}"
    assert call.callback is not None
    assert call.callback.ephemeral
    return message


def description(message: MessageRecord) -> str:
    """The description of the message's only embed."""
    (embed,) = message.embeds
    text = embed.get("description", "")
    assert isinstance(text, str)
    return text


def assert_embed_within_limits(embed: dict[str, Any]) -> None:
    """Discord refuses an embed over any of these limits (the fake would too; this names the culprit)."""
    title = embed.get("title") or ""
    text = embed.get("description") or ""
    footer = (embed.get("footer") or {}).get("text") or ""
    fields = embed.get("fields") or []
    assert len(title) <= TITLE_LIMIT
    assert len(text) <= DESCRIPTION_LIMIT
    assert len(footer) <= FOOTER_LIMIT
    assert all(len(f["value"]) <= FIELD_VALUE_LIMIT for f in fields)
    total = len(title) + len(text) + len(footer) + sum(len(f["name"]) + len(f["value"]) for f in fields)
    assert total <= EMBED_TOTAL_LIMIT


async def announce_role(world: World, name: str, permissions: int = 0) -> FakeRole:
    """Create a role while the bot is connected, as Discord does: GUILD_ROLE_CREATE, then it is in the cache."""
    role = world.guild.add_role(name, permissions)
    payload = {"guild_id": str(world.guild.id), "role": role.to_payload()}
    world.discord.gateway.dispatch("GUILD_ROLE_CREATE", payload, guild_id=world.guild.id)
    guild = world.bot.get_guild(world.guild.id)
    assert guild is not None

    async def cached() -> bool:
        return guild.get_role(role.id) is not None

    await wait_until(cached, 10)
    return role


async def announce_channel(world: World, name: str, *, overwrites: Iterable[Overwrite] = ()) -> FakeChannel:
    """Create a text channel while the bot is connected, as Discord does: CHANNEL_CREATE, then it is cached."""
    channel = world.guild.add_text_channel(name, overwrites=overwrites)
    world.discord.gateway.dispatch("CHANNEL_CREATE", channel.to_payload(), guild_id=world.guild.id)

    async def cached() -> bool:
        return world.bot.get_channel(channel.id) is not None

    await wait_until(cached, 10)
    return channel


async def flip(world: World, message: MessageRecord, custom_id: str, user: FakeMember) -> InteractionRecord:
    """`user` clicks a page button of `message`; the click must update the message in place."""
    click = await world.discord.click(message, custom_id, user)
    await world.discord.wait_for(lambda: click.acknowledged or click.failed, 10, what=f"the answer to {custom_id}")
    assert click.callback_type is CallbackType.UPDATE_MESSAGE, click.failure
    return click


def button(message: MessageRecord, custom_id: str) -> dict[str, Any]:
    """The button of `message` with that custom id."""
    for row in message.components:
        for component in row.get("components", []):
            if component.get("custom_id") == custom_id:
                return dict(component)
    raise AssertionError(f"no button {custom_id!r} in {message.custom_ids()}")


async def add_server(world: World, name: str) -> tuple[FakeGuild, FakeChannel]:
    """The bot joins another server while connected (GUILD_CREATE), with a channel of its own."""
    guild = world.discord.add_guild(name)
    channel = guild.add_text_channel("general")
    payload = guild.to_create_payload(members=[guild.bot_member], bot_user=world.discord.bot_user)
    world.discord.gateway.dispatch("GUILD_CREATE", payload, guild_id=guild.id)

    async def joined() -> bool:
        return world.bot.get_guild(guild.id) is not None

    await wait_until(joined, 10)
    return guild, channel


@contextlib.asynccontextmanager
async def write_lock_held_elsewhere(world: World) -> AsyncIterator[None]:
    """Another connection holds the database's write lock (a second process, a backup): the bot's writes wait."""
    assert world.settings is not None
    path = world.settings.database_url.removeprefix("sqlite:///")
    # It waits its turn for the lock in a thread of its own: the bot may be writing at that moment (its start-up
    # housekeeping, say), and a wait on the event loop would stop the bot from ever finishing that write.
    other = await asyncio.to_thread(sqlite3.connect, path, isolation_level=None, timeout=30, check_same_thread=False)
    try:
        await asyncio.to_thread(other.execute, "BEGIN IMMEDIATE")
        yield
        await asyncio.to_thread(other.execute, "ROLLBACK")
    finally:
        await asyncio.to_thread(other.close)


def delivered(call: InteractionRecord) -> bool:
    return call.original is not None and not call.original.deleted and bool(call.original.attachments)


async def generate(world: World, prompt: str, *, user: FakeMember | None = None, **options: Any) -> InteractionRecord:
    """A member's /imagine that is accepted and delivered."""
    call = await world.imagine(prompt, user=user, **options)
    await world.discord.wait_for(lambda: delivered(call) or bool(call.followups), 15, what="the images")
    assert delivered(call), [m.content for m in call.followups]
    return call


async def refused_quota(world: World, call: InteractionRecord) -> str:
    """The text of a refusal found after the defer (a quota): the deferred reply deleted, an ephemeral follow-up."""
    followup: MessageRecord = await world.discord.wait_for(
        lambda: call.followups[-1] if call.followups else None, 10, what="an ephemeral follow-up"
    )
    assert call.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    assert call.original is not None
    assert call.original.deleted
    assert followup.ephemeral
    assert followup.mentions_nobody
    return followup.content


def resets_in(text: str) -> list[int]:
    """The Unix times of every `<t:…:R>` timestamp in `text`."""
    return [int(found) for found in RELATIVE_TIMESTAMP.findall(text)]


def next_starts(period: Period, before: datetime, after: datetime) -> set[int]:
    """When the period resets, seen from either side of a command (a test may straddle midnight UTC)."""
    return {int(period.next_start(moment).timestamp()) for moment in (before, after)}


ADMIN_COMMANDS: list[tuple[str, dict[str, Any]]] = [
    ("quota set", {"scope": "member", "limit": 5}),
    ("quota role", {"limit": 5}),
    ("quota member", {"limit": 5}),
    ("quota clear", {"scope": "server"}),
    ("quota show", {}),
    ("quota reset", {}),
    ("quota usage", {}),
    ("quota export", {}),
]


# -- who may use /quota --------------------------------------------------------------------------------------------


async def test_quota_is_synced_for_manage_server_and_servers_only(world: World) -> None:
    (quota,) = [c for c in world.discord.global_commands if c["name"] == "quota"]
    assert quota["default_member_permissions"] == str(int(Permission.MANAGE_GUILD))
    assert quota["contexts"] == [0]
    names = sorted(option["name"] for option in quota["options"])
    assert names == ["clear", "export", "member", "reset", "role", "set", "show", "usage"]


@pytest.mark.parametrize(("name", "options"), ADMIN_COMMANDS, ids=[name for name, _ in ADMIN_COMMANDS])
async def test_a_plain_member_cannot_run_quota(world: World, name: str, options: dict[str, Any]) -> None:
    if name == "quota role":
        options = {**options, "role": world.guild.add_role("vip")}
    if name in ("quota reset", "quota member"):
        options = {**options, "member": world.member}

    with pytest.raises(InvocationRefused, match="default_member_permissions=32"):
        await world.discord.invoke_slash(name, options, user=world.member, channel=world.channel)

    assert world.discord.interactions == []
    assert await world.store.quotas.list_rules(world.guild.id) == []


async def test_a_member_whose_role_has_manage_server_may_run_quota(world: World) -> None:
    moderators = await announce_role(world, "moderators", int(Permission.MANAGE_GUILD))
    moderator = world.guild.add_member("mod", roles=[moderators])

    reply = await command(world, "quota set", {"scope": "server", "limit": 40}, user=moderator)

    assert reply.content == "The server pool is now 40 images per day. What was already used still counts."


async def test_rules_and_usage_are_per_server(world: World) -> None:
    second, lobby = await add_server(world, "Second server")
    carol = second.add_member("carol")
    await command(world, "quota set", {"scope": "member", "limit": 1})
    await generate(world, "a cat")

    # In the other server neither the rule nor the image counts.
    await generate(world, "two cats", user=carol, channel=lobby, n=2)

    usage = description(await command(world, "usage", user=carol, channel=lobby))
    assert "**The server's pool** today: 2 of 250 used" in usage
    assert "**Your limit** today: 2 of 25 used" in usage
    show = description(await command(world, "quota show", user=second.owner, channel=lobby))
    assert "**Each member** (operator default): 25 images per day" in show
    assert "**Server pool** (operator default): 250 images per day: **2** used" in show
    assert f"<@{world.member.id}>" not in show


async def test_an_unexpected_failure_is_answered_briefly_and_logged(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise StorageError("disk I/O error")

    monkeypatch.setattr(world.store.quotas, "set_rule", broken)
    monkeypatch.setattr(world.store.quotas, "usage_for_rules", broken)

    answered = await command(world, "quota set", {"scope": "member", "limit": 3})
    deferred = await command(world, "quota show")

    assert answered.content == GENERIC
    assert deferred.content == GENERIC
    assert deferred.embeds == ()
    assert "Unexpected error in quota set" in caplog.text
    assert "Unexpected error in quota show" in caplog.text


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("quota set", {"scope": "member", "limit": 5}),
        ("quota reset", {"member": "alice"}),
        ("imagine-settings max-n", {"value": 2}),
        ("imagine-settings channels add", {"channel": "general"}),
    ],
    ids=["quota-set", "quota-reset", "settings-max-n", "settings-channels-add"],
)
async def test_admin_commands_answer_first_when_the_database_is_slow(
    make_world: WorldFactory, name: str, options: dict[str, Any]
) -> None:
    # Discord's own deadline: answering first takes milliseconds, even on a busy machine.
    async with make_world(fake_discord={"ack_deadline": 3.0}) as world:
        people_and_places = {"alice": world.member, "general": world.channel}
        given = {key: people_and_places.get(value, value) for key, value in options.items()}
        async with write_lock_held_elsewhere(world):
            call = await world.discord.invoke_slash(name, given, user=world.guild.owner, channel=world.channel)
            await world.discord.wait_for(lambda: call.acknowledged or call.failed, 10, what="the first response")
        # Let the bot finish with the interaction (answered, or both its late answers refused) before judging.
        await world.discord.wait_for(
            lambda: call.acknowledged or len(call.refused_callbacks) >= 2, 10, what="the bot's last attempt"
        )

        assert call.acknowledged, call.failure
        reply = await answer(world, call)
        assert reply.ephemeral
        assert reply.content


# -- /quota set -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("period", list(Period))
@pytest.mark.parametrize("scope", [RuleScope.SERVER, RuleScope.MEMBER])
async def test_quota_set_stores_the_rule_for_each_scope_and_period(
    world: World, scope: RuleScope, period: Period
) -> None:
    reply = await command(world, "quota set", {"scope": scope.value, "limit": 1500, "period": period.value})

    who = "The server pool" if scope is RuleScope.SERVER else "Each member's limit"
    assert reply.content == f"{who} is now 1,500 images per {period.value}. What was already used still counts."
    (rule,) = await world.store.quotas.list_rules(world.guild.id)
    assert (rule.scope, rule.limit, rule.period, rule.role_id) == (scope, 1500, period, None)
    # The member sees it in /usage, with the period's own reset time.
    before = datetime.now(UTC)
    usage = description(await command(world, "usage", user=world.member))
    after = datetime.now(UTC)
    word = {Period.DAY: "today", Period.WEEK: "this week", Period.MONTH: "this month"}[period]
    whose = "The server's pool" if scope is RuleScope.SERVER else "Your limit"
    (line,) = [line for line in usage.splitlines() if line.startswith(f"**{whose}**")]
    assert line.startswith(f"**{whose}** {word}: 0 of 1,500 used, **1,500 left**.")
    (reset,) = resets_in(line)
    assert reset in next_starts(period, before, after)


async def test_quota_set_without_a_period_counts_days_and_replaces_the_earlier_rule(world: World) -> None:
    await command(world, "quota set", {"scope": "member", "limit": 7, "period": "month"})

    reply = await command(world, "quota set", {"scope": "member", "limit": 3})

    assert reply.content == "Each member's limit is now 3 images per day. What was already used still counts."
    (rule,) = await world.store.quotas.list_rules(world.guild.id)
    assert (rule.limit, rule.period) == (3, Period.DAY)


@pytest.mark.parametrize(
    "options",
    [
        {"scope": "member", "limit": -1},
        {"scope": "member", "limit": 1_000_001},
        {"scope": "role", "limit": 5},
        {"scope": "guild", "limit": 5},
        {"scope": "member", "limit": 5, "period": "year"},
        {"scope": "member"},
    ],
    ids=["negative", "over-a-million", "scope-role", "unknown-scope", "unknown-period", "no-limit"],
)
async def test_quota_set_bad_options_never_reach_the_bot(world: World, options: dict[str, Any]) -> None:
    with pytest.raises(InvocationRefused):
        await world.discord.invoke_slash("quota set", options, user=world.guild.owner, channel=world.channel)
    assert await world.store.quotas.list_rules(world.guild.id) == []


@pytest.mark.parametrize(
    ("scope", "rule_name"),
    [("server", "this server's limit for today"), ("member", "your limit for today")],
)
async def test_a_limit_of_0_turns_generation_off(world: World, scope: str, rule_name: str) -> None:
    reply = await command(world, "quota set", {"scope": scope, "limit": 0})
    assert "no images (generation off)" in reply.content

    call = await world.imagine("a cat", image=png_upload())

    text = await refused_quota(world, call)
    assert text.startswith(f"Image generation is turned off by {rule_name}.")
    assert await world.jobs() == []
    assert await world.ledger() == []
    assert world.api.requests_to(Endpoint.UPLOAD) == []
    assert world.api.requests_to(Endpoint.SUBMIT) == []


# -- /quota role and role overrides ----------------------------------------------------------------------------


async def test_quota_role_gives_the_role_its_own_limit_without_pinging_it(world: World) -> None:
    artists = await announce_role(world, "artists")

    reply = await command(world, "quota role", {"role": artists, "limit": 12, "period": "week"})

    assert reply.content.startswith(f"Members with <@&{artists.id}> now get 12 images per week instead of")
    assert reply.mentions_nobody
    (rule,) = await world.store.quotas.list_rules(world.guild.id)
    assert (rule.scope, rule.role_id, rule.limit, rule.period) == (RuleScope.ROLE, artists.id, 12, Period.WEEK)


async def test_the_largest_limit_among_a_members_roles_wins(world: World) -> None:
    await command(world, "quota set", {"scope": "member", "limit": 1})
    small = await announce_role(world, "small")
    large = await announce_role(world, "large")
    await command(world, "quota role", {"role": small, "limit": 2})
    await command(world, "quota role", {"role": large, "limit": 3})
    bob = world.guild.add_member("bob", roles=[small, large])

    usage = description(await command(world, "usage", user=bob))
    assert f"**Your limit from <@&{large.id}>** today: 0 of 3 used, **3 left**." in usage
    assert f"<@&{small.id}>" not in usage

    # Three images at once: more than the member rule (1) or the smaller role (2) would allow.
    await generate(world, "three cats", user=bob, n=3)
    refused = await world.imagine("one more", user=bob)
    text = await refused_quota(world, refused)
    assert f"You have reached the limit of your role <@&{large.id}> for today (3 images)." in text


async def test_removing_the_role_restores_the_member_rule_and_keeps_what_was_used(world: World) -> None:
    await command(world, "quota set", {"scope": "member", "limit": 4})
    trial = await announce_role(world, "trial")
    await command(world, "quota role", {"role": trial, "limit": 1})
    bob = world.guild.add_member("bob", roles=[trial])
    await generate(world, "a cat", user=bob)
    refused = await world.imagine("another cat", user=bob)
    assert f"the limit of your role <@&{trial.id}>" in await refused_quota(world, refused)

    bob.roles.remove(trial)

    usage = description(await command(world, "usage", user=bob))
    assert "**Your limit** today: 1 of 4 used, **3 left**." in usage
    assert f"<@&{trial.id}>" not in usage
    await generate(world, "two more cats", user=bob, n=3)
    assert sum(row.images for row in await world.ledger()) == 4


async def test_a_role_limit_of_0_turns_generation_off_for_that_role_only(world: World) -> None:
    muted = await announce_role(world, "muted")
    await command(world, "quota role", {"role": muted, "limit": 0})
    bob = world.guild.add_member("bob", roles=[muted])

    text = await refused_quota(world, await world.imagine("a cat", user=bob))

    assert text.startswith(f"Image generation is turned off by the limit of your role <@&{muted.id}>")
    await generate(world, "a cat")  # alice has no such role


async def test_a_rule_on_everyone_applies_to_every_member(world: World) -> None:
    # Every member holds @everyone, though Discord leaves it out of a member's roles (its id is the server's).
    everyone = world.guild.everyone
    reply = await command(world, "quota role", {"role": everyone, "limit": 0})
    assert reply.content.startswith(f"Members with <@&{everyone.id}> now get no images (generation off)")
    artists = await announce_role(world, "artists")
    await command(world, "quota role", {"role": artists, "limit": 1})
    bob = world.guild.add_member("bob", roles=[artists])

    text = await refused_quota(world, await world.imagine("a cat"))

    assert text.startswith(f"Image generation is turned off by the limit of your role <@&{everyone.id}>")
    assert await world.ledger() == []
    usage = description(await command(world, "usage"))
    assert f"<@&{everyone.id}>" in usage
    await generate(world, "a cat", user=bob)  # a larger role rule wins over @everyone's, as over any role's


# -- /quota clear -----------------------------------------------------------------------------------------------


async def test_a_deleted_roles_rule_goes_with_it(world: World) -> None:
    # No admin can pick a deleted role in /quota clear: its rule would stay listed for good, limiting nobody.
    artists, gone = await announce_role(world, "artists"), await announce_role(world, "gone soon")
    await command(world, "quota role", {"role": artists, "limit": 3})
    await command(world, "quota role", {"role": gone, "limit": 7})

    payload = {"guild_id": str(world.guild.id), "role_id": str(gone.id)}
    world.discord.gateway.dispatch("GUILD_ROLE_DELETE", payload, guild_id=world.guild.id)

    async def only_artists_left() -> bool:
        rules = await world.store.quotas.list_rules(world.guild.id)
        return [(r.role_id, r.limit) for r in rules] == [(artists.id, 3)]

    await wait_until(only_artists_left, 10)
    listing = description(await command(world, "quota show"))
    assert f"<@&{artists.id}>" in listing
    assert f"<@&{gone.id}>" not in listing


async def test_clearing_the_member_rule_restores_the_operators_default(make_world: WorldFactory) -> None:
    async with make_world(DEFAULT_MEMBER_DAILY_LIMIT="2") as world:
        await command(world, "quota set", {"scope": "member", "limit": 5})
        await generate(world, "three cats", n=3)

        reply = await command(world, "quota clear", {"scope": "member"})

        assert reply.content == "Removed the member limit: the operator's default applies again."
        assert await world.store.quotas.list_rules(world.guild.id) == []
        usage = description(await command(world, "usage", user=world.member))
        assert "**Your limit** today: 3 of 2 used, **0 left**." in usage
        text = await refused_quota(world, await world.imagine("one more"))
        assert text.startswith("You have reached your limit for today (2 images).")
        show = description(await command(world, "quota show"))
        assert "**Each member** (operator default): 2 images per day" in show


async def test_clearing_the_server_rule_restores_the_operators_pool(world: World) -> None:
    await command(world, "quota set", {"scope": "server", "limit": 1})
    await generate(world, "a cat")
    text = await refused_quota(world, await world.imagine("a dog", user=world.guild.add_member("bob")))
    assert re.match(r"You have reached this server's limit for today \(1 images?\)\.", text), text

    reply = await command(world, "quota clear", {"scope": "server"})

    assert reply.content == "Removed the server pool: the operator's default applies again."
    await generate(world, "a dog")
    show = description(await command(world, "quota show"))
    assert "**Server pool** (operator default): 250 images per day: **2** used" in show


async def test_clearing_a_role_rule_gives_its_members_the_member_limit_again(world: World) -> None:
    await command(world, "quota set", {"scope": "member", "limit": 2})
    vip = await announce_role(world, "vip")
    await command(world, "quota role", {"role": vip, "limit": 9})
    bob = world.guild.add_member("bob", roles=[vip])

    reply = await command(world, "quota clear", {"scope": "role", "role": vip})

    assert reply.content == f"Removed the rule for <@&{vip.id}>: those members get the member limit again."
    assert reply.mentions_nobody
    usage = description(await command(world, "usage", user=bob))
    assert "**Your limit** today: 0 of 2 used" in usage
    assert [rule.scope for rule in await world.store.quotas.list_rules(world.guild.id)] == [RuleScope.MEMBER]


async def test_clearing_a_role_rule_needs_the_role_and_only_a_role_rule_takes_one(world: World) -> None:
    vip = await announce_role(world, "vip")
    await command(world, "quota role", {"role": vip, "limit": 9})
    await command(world, "quota set", {"scope": "server", "limit": 90})

    without_role = await command(world, "quota clear", {"scope": "role"})
    role_for_server = await command(world, "quota clear", {"scope": "server", "role": vip})

    assert without_role.content == "Choose the `role` whose rule to remove."
    assert role_for_server.content == "A `role` is only for `scope: role`."
    for reply in (without_role, role_for_server):
        assert reply.interaction is not None
        assert reply.interaction.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
    assert len(await world.store.quotas.list_rules(world.guild.id)) == 2


@pytest.mark.parametrize(
    ("scope", "what"), [("server", "server pool"), ("member", "member limit"), ("role", "rule for <@&{role}>")]
)
async def test_clearing_a_rule_that_does_not_exist_says_so(world: World, scope: str, what: str) -> None:
    vip = await announce_role(world, "vip")
    options: dict[str, Any] = {"scope": scope} | ({"role": vip} if scope == "role" else {})

    reply = await command(world, "quota clear", options)

    assert reply.content == f"There was no {what.format(role=vip.id)} to remove."


# -- /quota show ------------------------------------------------------------------------------------------------


async def test_quota_show_lists_the_operators_defaults_marked_with_usage(make_world: WorldFactory) -> None:
    async with make_world(DEFAULT_MEMBER_DAILY_LIMIT="1500", DEFAULT_SERVER_DAILY_LIMIT="25000") as world:
        bob = world.guild.add_member("bob")
        await generate(world, "two cats", n=2)
        await generate(world, "a dog", user=bob)

        before = datetime.now(UTC)
        reply = await command(world, "quota show")
        after = datetime.now(UTC)

        (embed,) = reply.embeds
        assert embed["title"] == "Quotas"
        lines = description(reply).splitlines()
        assert lines[0] == "Usage counts images reserved in each rule's current period (UTC)."
        server = next(line for line in lines if line.startswith("**Server pool**"))
        assert server.startswith("**Server pool** (operator default): 25,000 images per day: **3** used, resets ")
        member = next(line for line in lines if line.startswith("**Each member**"))
        assert member.startswith("**Each member** (operator default): 1,500 images per day, resets ")
        for line in (server, member):
            (reset,) = resets_in(line)
            assert reset in next_starts(Period.DAY, before, after)
        # Per-member rules list each member's images this period, most first.
        start = lines.index(member)
        assert lines[start + 1 : start + 3] == [f"  • <@{world.member.id}>: 2", f"  • <@{bob.id}>: 1"]
        assert "footer" not in embed
        assert reply.components == ()


async def test_quota_show_marks_only_the_defaults_the_server_did_not_replace(world: World) -> None:
    vip = await announce_role(world, "vip")
    await command(world, "quota set", {"scope": "member", "limit": 3, "period": "week"})
    await command(world, "quota role", {"role": vip, "limit": 2_000, "period": "month"})

    text = description(await command(world, "quota show"))

    assert "**Server pool** (operator default): 250 images per day: **0** used" in text
    assert "**Each member**: 3 images per week, resets <t:" in text
    assert f"**Role <@&{vip.id}>**: 2,000 images per month, resets <t:" in text
    assert text.count("(operator default)") == 1


async def test_quota_show_without_any_limit_says_so(make_world: WorldFactory) -> None:
    async with make_world(DEFAULT_MEMBER_DAILY_LIMIT="none", DEFAULT_SERVER_DAILY_LIMIT="none") as world:
        text = description(await command(world, "quota show"))
        assert text.endswith("No limits apply.")


async def test_quota_show_cuts_a_long_member_list(world: World) -> None:
    members = [world.guild.add_member(f"member{i}") for i in range(12)]
    for index, member in enumerate(members):
        await world.store.quotas.reserve(f"job-{index}", world.guild.id, member.id, [], 1 + index % 3)

    text = description(await command(world, "quota show"))

    member_lines = [line for line in text.splitlines() if line.startswith("  • <@")]
    assert len(member_lines) == 10
    assert "  • … and 2 more members" in text


# A role rule's line lists every member who made images this period, whether they hold the role or not.
async def test_quota_show_lists_under_a_role_rule_only_the_members_with_that_role(world: World) -> None:
    vip = await announce_role(world, "vip")
    await command(world, "quota role", {"role": vip, "limit": 10})
    bob = world.guild.add_member("bob", roles=[vip])
    await generate(world, "a cat")  # alice: no role, the member rule
    await generate(world, "a dog", user=bob, n=2)

    lines = description(await command(world, "quota show")).splitlines()

    role_at = next(i for i, line in enumerate(lines) if line.startswith(f"**Role <@&{vip.id}>**"))
    member_at = next(i for i, line in enumerate(lines) if line.startswith("**Each member**"))
    under_role = [line for line in lines[role_at + 1 :] if line.startswith("  •")]
    under_member = [line for line in lines[member_at + 1 : role_at] if line.startswith("  •")]
    assert under_role == [f"  • <@{bob.id}>: 2"]
    assert under_member == [f"  • <@{world.member.id}>: 1"]


async def test_quota_show_pages_forty_role_rules(world: World) -> None:
    # Role rules need no cached role: /quota show names them by id.
    roles = [world.guild.add_role(f"tier-{i:02d}") for i in range(40)]
    for number, role in enumerate(roles, start=1):
        await world.store.quotas.set_rule(world.guild.id, RuleScope.ROLE, number * 100, Period.WEEK, role_id=role.id)

    reply = await command(world, "quota show")

    ids = reply.custom_ids()
    assert len(ids) == 2
    previous_id, next_id = ids
    pages = [dict(reply.embeds[0])]
    assert button(reply, previous_id)["label"] == "Previous"
    assert button(reply, previous_id)["disabled"]
    assert button(reply, next_id)["label"] == "Next"
    assert not button(reply, next_id).get("disabled")
    while not button(reply, next_id).get("disabled"):
        await flip(world, reply, next_id, world.guild.owner)
        pages.append(dict(reply.embeds[0]))
        assert len(pages) < 10, "Next never ends"
    assert len(pages) == 3
    assert [page["footer"]["text"] for page in pages] == ["Page 1 of 3", "Page 2 of 3", "Page 3 of 3"]
    for page in pages:
        assert page["title"] == "Quotas"
        assert_embed_within_limits(page)
    listed = "\n".join(page["description"] for page in pages)
    for number, role in enumerate(roles, start=1):
        assert listed.count(f"**Role <@&{role.id}>**: {number * 100:,} images per week") == 1
    # Previous goes back, and the member who asked is the only one who can see (and so flip) the listing.
    await flip(world, reply, previous_id, world.guild.owner)
    assert reply.embeds[0]["footer"]["text"] == "Page 2 of 3"
    admins = world.guild.add_role("admins", int(Permission.MANAGE_GUILD))
    other_admin = world.guild.add_member("other-admin", roles=[admins])
    with pytest.raises(InvocationRefused, match="only the member who invoked"):
        await world.discord.click(reply, next_id, other_admin)
    assert reply.mentions_nobody


# -- /quota reset -----------------------------------------------------------------------------------------------


async def test_a_member_at_the_limit_is_refused_before_any_upload_and_a_reset_lets_them_continue(
    world: World,
) -> None:
    await command(world, "quota set", {"scope": "member", "limit": 2})
    await generate(world, "two cats", n=2, image=png_upload())
    uploads, submits = len(world.api.requests_to(Endpoint.UPLOAD)), len(world.api.requests_to(Endpoint.SUBMIT))
    assert (uploads, submits) == (1, 1)

    refused = await world.imagine("two more", n=2, image=png_upload("other.png", colour="red"))

    assert (await refused_quota(world, refused)).startswith("You have reached your limit for today (2 images).")
    assert len(world.api.requests_to(Endpoint.UPLOAD)) == uploads
    assert len(world.api.requests_to(Endpoint.SUBMIT)) == submits
    assert len(await world.ledger()) == 1

    reply = await command(world, "quota reset", {"member": world.member})

    assert reply.content == (f"Forgave 2 images of <@{world.member.id}>'s usage. The server pool still counts them.")
    assert reply.mentions_nobody
    await generate(world, "two more", n=2, image=png_upload("other.png", colour="red"))
    assert len(world.api.requests_to(Endpoint.SUBMIT)) == submits + 1
    usage = description(await command(world, "usage", user=world.member))
    assert "**Your limit** today: 2 of 2 used, **0 left**." in usage
    assert "**The server's pool** today: 4 of 250 used" in usage


async def test_a_reset_does_not_lift_the_server_pool(world: World) -> None:
    await command(world, "quota set", {"scope": "server", "limit": 1})
    await generate(world, "a cat")

    reply = await command(world, "quota reset", {"member": world.member})

    assert reply.content.startswith("Forgave 1 image of ")
    text = await refused_quota(world, await world.imagine("another cat"))
    assert re.match(r"You have reached this server's limit for today \(1 images?\)\.", text), text
    show = description(await command(world, "quota show"))
    assert re.search(r"\*\*Server pool\*\*: 1 images? per day: \*\*1\*\* used", show), show


async def test_resetting_a_member_without_usage_forgives_nothing(world: World) -> None:
    bob = world.guild.add_member("bob")
    await generate(world, "a cat")

    reply = await command(world, "quota reset", {"member": bob})

    assert reply.content.startswith(f"Forgave 0 images of <@{bob.id}>'s usage.")
    reservation = await world.store.quotas.reservation((await world.finished_job()).id)
    assert reservation is not None
    assert reservation.forgiven_at is None


# -- /quota usage -----------------------------------------------------------------------------------------------


def usage_entry(
    index: int,
    world: World,
    *,
    user_id: int,
    created_at: datetime,
    images: int = 1,
    status: str = "completed",
    prompt: str | None = None,
    guild_id: int | None = None,
) -> UsageEntry:
    failed = status == "failed"
    return UsageEntry(
        job_id=f"job-{index:06d}",
        guild_id=world.guild.id if guild_id is None else guild_id,
        channel_id=world.channel.id,
        user_id=user_id,
        prompt=prompt if prompt is not None else f"prompt number {index}",
        model="gpt-image-2",
        aspect=("1:1", "3:2", "2:3")[index % 3],
        n=max(images, 1),
        images=0 if failed else images,
        reference_count=index % 5,
        task_id=None if failed and index % 2 else f"task-{index}",
        status=status,
        error="upstream: 500 Internal Server Error" if failed else None,
        created_at=created_at,
        finished_at=None if index % 7 == 0 else created_at + timedelta(seconds=30 + index % 50),
    )


async def test_quota_usage_by_member_and_by_day_with_thousands_separators(world: World) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    today = now.replace(hour=0, minute=0, second=0)
    bob = world.guild.add_member("bob")
    entries = [usage_entry(i, world, user_id=world.member.id, created_at=today, images=1) for i in range(1234)]
    entries += [
        usage_entry(2000 + i, world, user_id=bob.id, created_at=today - timedelta(days=2), status="failed")
        for i in range(3)
    ]
    entries.append(usage_entry(3000, world, user_id=bob.id, created_at=today - timedelta(days=2), images=4))
    # Older than the 7 days shown by default, and another server's: neither counts.
    entries.append(usage_entry(4000, world, user_id=bob.id, created_at=today - timedelta(days=10), images=4))
    entries.append(usage_entry(5000, world, user_id=bob.id, created_at=today, images=4, guild_id=world.guild.id + 1))
    await world.store.usage.record_many(entries)

    reply = await command(world, "quota usage")

    first_day = (today - timedelta(days=6)).date().isoformat()
    header = f"Since {first_day} (UTC): **1,238** images in all."
    by_member = reply.embeds[0]
    assert by_member["title"] == "Usage by member"
    assert by_member["description"].splitlines() == [
        header,
        "",
        f"<@{world.member.id}>: **1,234** images in 1,234 jobs",
        f"<@{bob.id}>: **4** images in 4 jobs, 3 failed",
    ]
    _previous_id, next_id = reply.custom_ids()
    await flip(world, reply, next_id, world.guild.owner)
    by_day = reply.embeds[0]
    assert by_day["title"] == "Usage by day"
    assert by_day["description"].splitlines() == [
        header,
        "",
        f"{today.date().isoformat()}: **1,234** images, 1,234 jobs",
        f"{(today - timedelta(days=2)).date().isoformat()}: **4** images, 4 jobs, 3 failed",
    ]
    for embed in (by_member, by_day):
        assert_embed_within_limits(embed)

    longer = description(await command(world, "quota usage", {"days": 14}))
    assert "**1,242** images in all." in longer
    assert f"<@{bob.id}>: **8** images in 5 jobs, 3 failed" in longer


async def test_quota_usage_pages_are_numbered_across_the_whole_listing(world: World) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    members = [world.guild.add_member(f"member{i:02d}") for i in range(20)]
    await world.store.usage.record_many(
        usage_entry(i, world, user_id=member.id, created_at=today) for i, member in enumerate(members)
    )

    reply = await command(world, "quota usage")
    _previous_id, next_id = reply.custom_ids()
    footers = [reply.embeds[0].get("footer", {}).get("text")]
    while not button(reply, next_id).get("disabled"):
        await flip(world, reply, next_id, world.guild.owner)
        footers.append(reply.embeds[0].get("footer", {}).get("text"))
        assert len(footers) < 10, "Next never ends"

    assert len(footers) == 3
    assert footers == [f"Page {k} of {len(footers)}" for k in range(1, len(footers) + 1)]


async def test_quota_usage_counts_real_jobs_and_their_failures(world: World) -> None:
    world.api.on_prompt("doomed", Timeline.failing("The upstream model crashed"))
    failed = await world.imagine("a doomed cat", n=3)
    await world.discord.wait_for(lambda: failed.original is not None and bool(failed.original.embeds), 15)
    await generate(world, "a fine cat", n=2)

    async def both_logged() -> bool:
        # A job is written to the usage log in the transaction that finishes it.
        jobs = await world.jobs()
        return len(jobs) == 2 and all(job.is_finished for job in jobs)

    await wait_until(both_logged, 10)
    reply = await command(world, "quota usage", {"days": 1})

    today = datetime.now(UTC).date().isoformat()
    assert description(reply).splitlines()[2:] == [f"<@{world.member.id}>: **2** images in 2 jobs, 1 failed"]
    _previous_id, next_id = reply.custom_ids()
    await flip(world, reply, next_id, world.guild.owner)
    assert description(reply).splitlines()[2:] == [f"{today}: **2** images, 2 jobs, 1 failed"]


async def test_quota_usage_without_jobs_says_so(world: World) -> None:
    reply = await command(world, "quota usage", {"days": 1})
    assert reply.embeds[0]["description"].endswith("No images yet.")


@pytest.mark.parametrize("days", [0, 367])
async def test_quota_usage_days_out_of_range_never_reach_the_bot(world: World, days: int) -> None:
    with pytest.raises(InvocationRefused):
        await world.discord.invoke_slash("quota usage", {"days": days}, user=world.guild.owner, channel=world.channel)


# -- /quota export ----------------------------------------------------------------------------------------------

AWKWARD_PROMPTS = [
    'a "quoted" cat, with commas, and more, commas',
    "two lines\nof prompt\r\nand a carriage return",
    '=HYPERLINK("http://example.invalid","click")',
    "+1 plus, -1 minus",
    "@everyone a crowd of émojis 🎨 and ünïcödé",
    "  spaces around  ",
    'a lone " quote',
]


def expected_row(entry: UsageEntry) -> list[str]:
    """A usage row as the CSV must hold it (a cell a spreadsheet would run as a formula starts with '; of an
    error, its code)."""

    def safe(text: str | None) -> str:
        if text is None:
            return ""
        return "'" + text if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text

    return [
        entry.job_id,
        str(entry.guild_id),
        str(entry.channel_id),
        str(entry.user_id),
        safe(entry.prompt),
        entry.model,
        entry.aspect,
        entry.resolution,
        str(entry.n),
        str(entry.images),
        str(entry.weight),
        str(entry.weighted_images),
        str(entry.reference_count),
        entry.task_id or "",
        entry.status,
        (entry.error or "").partition(":")[0],  # the code alone: the service's own words are the operator's
        entry.created_at.isoformat(),
        "" if entry.finished_at is None else entry.finished_at.isoformat(),
        entry.source,
    ]


def parse_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


async def export(world: World, options: dict[str, Any] | None = None) -> MessageRecord:
    return await command(world, "quota export", options)


async def test_quota_export_attaches_ten_thousand_rows_exactly(world: World) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    bob = world.guild.add_member("bob")
    entries = [
        usage_entry(
            i,
            world,
            user_id=(world.member.id, bob.id)[i % 2],
            # Millisecond instants, as the log stores them; every row a distinct time, in order.
            created_at=base + timedelta(minutes=i, milliseconds=i % 1000),
            images=i % 5,
            status="failed" if i % 11 == 0 else "completed",
            prompt=AWKWARD_PROMPTS[i % len(AWKWARD_PROMPTS)] + f" #{i}",
        )
        for i in range(10_000)
    ]
    await world.store.usage.record_many(entries)
    await world.store.usage.record_many([usage_entry(99_999, world, user_id=bob.id, created_at=base, guild_id=1)])

    reply = await export(world)

    assert reply.content == "The usage log: 10,000 rows."
    (attachment,) = reply.attachments
    assert attachment.filename == "imagine-usage.csv"
    interaction = reply.interaction
    assert interaction is not None
    assert attachment.size <= interaction.payload["attachment_size_limit"]
    rows = parse_csv(attachment.data)
    assert rows[0] == list(CSV_COLUMNS)
    assert len(rows) == 10_001
    assert rows[1:] == [expected_row(entry) for entry in entries]
    # The apostrophe defence keeps the rest of the prompt intact.
    assert rows[1 + 2][4] == "'" + AWKWARD_PROMPTS[2] + " #2"
    assert rows[1 + 1][4] == AWKWARD_PROMPTS[1] + " #1"


async def test_quota_export_of_a_range_of_days_includes_both_ends(world: World) -> None:
    days = [datetime(2026, 3, d, 23, 59, 59, 999_000, tzinfo=UTC) for d in range(1, 8)]
    entries = [usage_entry(i, world, user_id=world.member.id, created_at=day) for i, day in enumerate(days)]
    entries.append(usage_entry(50, world, user_id=world.member.id, created_at=datetime(2026, 3, 3, tzinfo=UTC)))
    await world.store.usage.record_many(entries)

    reply = await export(world, {"start": "2026-03-03", "end": " 2026-03-05 "})

    (attachment,) = reply.attachments
    rows = parse_csv(attachment.data)[1:]
    assert [row[0] for row in rows] == ["job-000050", "job-000002", "job-000003", "job-000004"]
    assert reply.content == "The usage log: 4 rows."
    only_start = parse_csv((await export(world, {"start": "2026-03-06"})).attachments[0].data)[1:]
    assert [row[0] for row in only_start] == ["job-000005", "job-000006"]
    only_end = parse_csv((await export(world, {"end": "2026-03-01"})).attachments[0].data)[1:]
    assert [row[0] for row in only_end] == ["job-000000"]


async def test_quota_export_to_the_last_day_of_the_calendar_includes_everything(world: World) -> None:
    entry = usage_entry(1, world, user_id=world.member.id, created_at=datetime(2026, 3, 3, tzinfo=UTC))
    await world.store.usage.record_many([entry])

    reply = await export(world, {"start": "0001-01-01", "end": "9999-12-31"})

    assert reply.content == "The usage log: 1 row."
    assert [row[0] for row in parse_csv(reply.attachments[0].data)[1:]] == [entry.job_id]


async def test_quota_export_of_an_empty_log_is_a_header_alone(world: World) -> None:
    reply = await export(world)

    assert reply.content == "The usage log: 0 rows."
    assert parse_csv(reply.attachments[0].data) == [list(CSV_COLUMNS)]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"start": "yesterday"}, "`start` must be a date like 2026-11-01, not 'yesterday'."),
        ({"end": "2026-02-30"}, "`end` must be a date like 2026-11-01, not '2026-02-30'."),
        ({"start": "2026-03-02", "end": "2026-03-01"}, "`start` must not be after `end`."),
    ],
    ids=["not-a-date", "no-such-day", "start-after-end"],
)
async def test_quota_export_refuses_bad_dates_at_once(world: World, options: dict[str, str], expected: str) -> None:
    reply = await export(world, options)

    assert reply.content == expected
    assert reply.attachments == ()
    assert reply.interaction is not None
    assert reply.interaction.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE


async def test_an_export_over_the_upload_limit_asks_for_a_shorter_range(make_world: WorldFactory) -> None:
    async with make_world(fake_discord={"max_file_size": 20_000}) as world:
        base = datetime(2026, 5, 1, tzinfo=UTC)
        entries = [
            usage_entry(i, world, user_id=world.member.id, created_at=base + timedelta(hours=i)) for i in range(500)
        ]
        await world.store.usage.record_many(entries)

        reply = await export(world)

        assert reply.attachments == ()
        assert "more than the" in reply.content
        assert "Choose a shorter range with `start` and `end`." in reply.content
        assert reply.interaction is not None
        assert reply.interaction.payload["attachment_size_limit"] == 20_000
        # A range that fits is attached.
        short = await export(world, {"start": "2026-05-01", "end": "2026-05-01"})
        assert short.content == "The usage log: 24 rows."
        assert len(parse_csv(short.attachments[0].data)) == 25


async def test_quota_export_covers_this_server_only(world: World) -> None:
    today = datetime.now(UTC)
    await world.store.usage.record_many(
        [
            usage_entry(1, world, user_id=world.member.id, created_at=today),
            usage_entry(2, world, user_id=world.member.id, created_at=today, guild_id=world.guild.id + 1),
        ]
    )

    rows = parse_csv((await export(world)).attachments[0].data)[1:]

    assert [(row[0], row[1]) for row in rows] == [("job-000001", str(world.guild.id))]


async def test_an_imagine_reaches_the_export_and_a_refused_request_does_not(world: World) -> None:
    await command(world, "quota set", {"scope": "member", "limit": 1})
    call = await generate(world, 'a cat, "quoted"')
    await refused_quota(world, await world.imagine("refused: no job"))
    job = await world.finished_job()
    today = datetime.now(UTC).date().isoformat()

    rows = parse_csv((await export(world, {"start": today})).attachments[0].data)

    assert call.original is not None
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert (row["job_id"], row["prompt"], row["status"], row["images"], row["n"]) == (
        job.id,
        'a cat, "quoted"',
        "completed",
        "1",
        "1",
    )
    assert row["user_id"] == str(world.member.id)
    assert row["task_id"] == (job.task_id or "")

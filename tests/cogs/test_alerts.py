"""Operator alerts through the real bot: when ToAPIs rejects the key, runs out of balance or stops answering,
every server's log channel (set with /imagine-settings log-channel) gets one message per burst, pinging nobody,
in words written for server admins: never the operator's details (those go to the log and the operator's
webhook).

A burst is closed by the alert that the upstream answers again (after the faults are cleared, the breaker's
probe succeeds): messages posted before it are in the channel by then, so counting them is deterministic.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
from types import SimpleNamespace
from typing import Any

import aiohttp
import discord
import pytest

import i18n
from cogs._alerts import AlertPoster
from cogs._texts import server_alert_text
from generation.alerts import Alert, AlertKind
from settings import Secret
from tests.cogs.conftest import World, WorldFactory, wait_until
from tests.cogs.test_quota import add_server, announce_channel, command
from tests.fakes.discord import (
    CallbackType,
    FakeChannel,
    InteractionRecord,
    MessageRecord,
    Overwrite,
    Permission,
)
from tests.fakes.toapis import Endpoint, Fault

KEY_REJECTED = server_alert_text(AlertKind.API_KEY_REJECTED, i18n.SOURCE)
BALANCE = server_alert_text(AlertKind.BALANCE_EXHAUSTED, i18n.SOURCE)
DOWN = server_alert_text(AlertKind.UPSTREAM_DOWN, i18n.SOURCE)
BACK = server_alert_text(AlertKind.UPSTREAM_BACK, i18n.SOURCE)


async def use_log_channel(world: World, name: str = "ops") -> FakeChannel:
    """An admin creates a channel and makes it the log channel."""
    channel = await announce_channel(world, name)
    await command(world, "imagine-settings log-channel", {"channel": channel})
    return channel


def alerts_in(world: World, channel: FakeChannel) -> list[str]:
    """The texts of the messages in `channel`, each of which must be an alert from the bot that pings nobody."""
    messages: list[MessageRecord] = world.discord.channel_messages(channel)
    for message in messages:
        assert message.author is world.discord.bot_user
        assert message.pings.nobody, message.content
        assert message.mentions_nobody
        assert message.content in (KEY_REJECTED, BALANCE, DOWN, BACK)
    return [message.content for message in messages]


def count(texts: list[str], alert: str) -> int:
    return sum(alert in text for text in texts)


async def outcome(world: World, call: InteractionRecord) -> CallbackType:
    """Wait until the request is settled: refused at once, or deferred and then its own job finished (the job is
    stored after the defer, so it is found by the interaction's token) or refused after the defer."""
    await world.discord.wait_for(lambda: call.acknowledged or call.failed, 10, what="the first response")
    assert call.callback_type is not None, call.failure
    if call.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE:

        async def settled() -> bool:
            jobs = [job for job in await world.jobs() if job.interaction_token == call.token]
            return bool(call.followups) or (bool(jobs) and jobs[0].is_finished)

        await wait_until(settled, 15)
    return call.callback_type


async def end_the_burst(world: World, channel: FakeChannel) -> list[str]:
    """Clear the faults and, if the breaker is open, wait for its "answers again" alert; returns every alert text
    of `channel`. Alerts raised before are in the channel by then: they were posted before the all-clear."""
    backs = count(alerts_in(world, channel), BACK)
    was_open = world.pipeline.breaker.is_open
    world.api.clear_faults()
    if was_open:
        await world.discord.wait_for(lambda: count(alerts_in(world, channel), BACK) > backs, 10, what="the all-clear")
    return alerts_in(world, channel)


async def test_a_rejected_key_is_reported_once_however_many_requests_follow(world: World) -> None:
    ops = await use_log_channel(world)
    # A revoked key: the submit and the breaker's probe are both refused.
    world.api.fail(Endpoint.SUBMIT, Fault.unauthorized(), times=None)
    world.api.fail(Endpoint.MODELS, Fault.unauthorized(), times=None)

    first = await world.imagine("a cat", n=2)
    assert await outcome(world, first) is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    for index in range(4):
        later = await world.imagine(f"cat {index}", user=world.guild.add_member(f"member{index}"))
        # The breaker is open: the rest are refused at once, before anything is reserved.
        assert await outcome(world, later) is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
        assert later.callback is not None
        assert later.callback.data is not None
        assert later.callback.data["content"] == i18n.translate("refusal.unavailable", i18n.SOURCE)
    await world.discord.wait_for(lambda: count(alerts_in(world, ops), KEY_REJECTED) > 0, 10, what="the alert")

    texts = await end_the_burst(world, ops)

    assert count(texts, KEY_REJECTED) == 1
    assert texts == [KEY_REJECTED, BACK]
    # What server admins read names no variable, key or upstream text: only the operator can fix it.
    assert "TOAPIS_API_KEY" not in texts[0]
    assert world.api.api_key not in texts[0]
    assert len(world.api.requests_to(Endpoint.SUBMIT)) == 1
    assert len(await world.jobs()) == 1
    # Only the log channel has the alert: the member's reply says only that Imagine cannot generate now.
    public = world.discord.channel_messages(world.channel)
    assert [message.interaction for message in public] == [first]
    assert all(message.content not in (KEY_REJECTED, BACK) for message in public)


async def test_without_a_log_channel_alerts_are_posted_nowhere(world: World) -> None:
    world.api.fail(Endpoint.SUBMIT, Fault.unauthorized(), times=None)
    world.api.fail(Endpoint.MODELS, Fault.unauthorized(), times=None)

    await outcome(world, await world.imagine("a cat"))

    assert world.pipeline.breaker.is_open
    world.api.clear_faults()

    async def closed() -> bool:
        return not world.pipeline.breaker.is_open

    await wait_until(closed, 10)
    assert world.discord.requests_to("POST", "/channels/{channel_id}/messages") == []
    assert all(message.content not in (KEY_REJECTED, BACK) for message in world.discord.messages)


async def test_an_upstream_that_stops_answering_is_reported_down_once_and_back_once(world: World) -> None:
    ops = await use_log_channel(world)
    # Down for good: every submit and every probe answer 500 (the client's own retries included).
    world.api.fail(Endpoint.SUBMIT, Fault.server_error(), times=None)
    world.api.fail(Endpoint.MODELS, Fault.server_error(), times=None)
    members = [world.guild.add_member(f"member{index}") for index in range(7)]

    # The breaker opens after five failures in a row; the requests after that are refused at once.
    calls = [await world.imagine(f"cat {index}", user=member) for index, member in enumerate(members)]
    for call in calls:
        await outcome(world, call)
    await world.discord.wait_for(lambda: count(alerts_in(world, ops), DOWN) > 0, 10, what="the alert")
    refused_at_once = [call for call in calls if call.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE]
    later = await world.imagine("after the breaker opened")
    assert await outcome(world, later) is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE

    texts = await end_the_burst(world, ops)

    assert count(texts, DOWN) == 1
    assert texts[-1] == BACK
    assert count(texts, BACK) == 1
    assert len(texts) == 2
    assert len(refused_at_once) + len(await world.jobs()) == len(calls)


async def test_each_servers_log_channel_gets_the_alert_even_if_another_cannot(world: World) -> None:
    ops = await use_log_channel(world)
    second, _ = await add_server(world, "Second server")
    second_ops = second.add_text_channel("imagine-alerts")
    world.discord.gateway.dispatch("CHANNEL_CREATE", second_ops.to_payload(), guild_id=second.id)
    third, _ = await add_server(world, "Third server")
    # The third server's admins took away the bot's right to post in their log channel.
    deny = Overwrite(third.bot_role, deny=int(Permission.SEND_MESSAGES))
    closed_ops = third.add_text_channel("closed", overwrites=[deny])
    world.discord.gateway.dispatch("CHANNEL_CREATE", closed_ops.to_payload(), guild_id=third.id)

    async def cached() -> bool:
        return world.bot.get_channel(second_ops.id) is not None and world.bot.get_channel(closed_ops.id) is not None

    await wait_until(cached, 10)
    await command(world, "imagine-settings log-channel", {"channel": second_ops}, user=second.owner, channel=second_ops)
    await command(world, "imagine-settings log-channel", {"channel": closed_ops}, user=third.owner, channel=closed_ops)
    world.api.fail(Endpoint.SUBMIT, Fault.insufficient_balance(), times=1)
    world.api.fail(Endpoint.MODELS, Fault.insufficient_balance(), times=None)

    await outcome(world, await world.imagine("a cat"))
    await world.discord.wait_for(lambda: count(alerts_in(world, second_ops), BALANCE) > 0, 10, what="the alert")

    assert alerts_in(world, ops) == alerts_in(world, second_ops)
    assert count(alerts_in(world, ops), BALANCE) == 1
    # The third server's channel was tried and refused (Missing Permissions); nothing appeared there.
    refused = await world.discord.wait_for(
        lambda: [r for r in world.discord.requests if r.status == 403 and f"/channels/{closed_ops.id}/" in r.path],
        10,
        what="the refused post",
    )
    assert refused[0].error_code == 50013
    assert world.discord.channel_messages(closed_ops) == []
    texts = await end_the_burst(world, second_ops)
    assert texts[-1] == BACK
    await world.discord.wait_for(lambda: count(alerts_in(world, ops), BACK) == 1, 10, what="the all-clear")


# The breaker's probe is GET /models, which a key without balance may still call: the breaker closes at once.
async def test_an_empty_balance_is_reported_once_and_not_as_back_until_it_is_topped_up(world: World) -> None:
    ops = await use_log_channel(world)
    # The account ran dry: submits are refused with 402; GET /models (not billed) still answers, and GET
    # /balance says the account is empty.
    world.api.remain_balance = world.api.remain_credits = 0

    for index in range(3):
        probes = len(world.api.requests_to(Endpoint.MODELS)) + len(world.api.requests_to(Endpoint.BALANCE))
        await outcome(world, await world.imagine(f"cat {index}", user=world.guild.add_member(f"member{index}")))

        # Give the breaker's probe its chance: it closes the breaker, or has looked twice and kept it open.
        async def probed(before: int = probes) -> bool:
            looked = len(world.api.requests_to(Endpoint.MODELS)) + len(world.api.requests_to(Endpoint.BALANCE))
            return not world.pipeline.breaker.is_open or looked - before >= 2

        await wait_until(probed, 10)

    assert world.pipeline.breaker.is_open  # the probe sees the empty account: no flapping
    world.api.remain_balance = 5.0  # topped up
    texts = await end_the_burst(world, ops)

    assert count(texts, BALANCE) == 1
    assert texts == [BALANCE, BACK]


async def test_alerts_reach_only_the_servers_on_the_allow_list(make_world: WorldFactory) -> None:
    main_guild = 7 << 22
    async with make_world(guild_id=main_guild, ALLOWED_GUILD_IDS=str(main_guild)) as world:
        ops = await use_log_channel(world)
        # A server the bot was in before the operator limited it keeps its old log channel setting.
        other, other_channel = await add_server(world, "Not allowed")
        await world.bot.services.server_settings.set_log_channel(other.id, other_channel.id)
        world.api.fail(Endpoint.SUBMIT, Fault.unauthorized(), times=None)
        world.api.fail(Endpoint.MODELS, Fault.unauthorized(), times=None)

        await outcome(world, await world.imagine("a cat"))
        await world.discord.wait_for(lambda: count(alerts_in(world, ops), KEY_REJECTED) > 0, 10, what="the alert")
        await end_the_burst(world, ops)

        assert world.discord.channel_messages(other_channel) == []
        assert not [r for r in world.discord.requests if f"/channels/{other_channel.id}/messages" in r.path]


async def test_the_operator_hears_the_details_through_their_webhook_while_servers_read_the_fixed_text(
    world: World,
) -> None:
    operators_channel = world.guild.add_text_channel("operators")
    url = world.discord.add_channel_webhook(operators_channel)
    assert world.settings is not None
    world.settings = dataclasses.replace(world.settings, operator_alert_webhook_url=Secret(url))
    await world.restart()
    ops = await use_log_channel(world)
    world.api.fail(Endpoint.SUBMIT, Fault.unauthorized(), times=None)
    world.api.fail(Endpoint.MODELS, Fault.unauthorized(), times=None)

    await outcome(world, await world.imagine("a cat"))
    await world.discord.wait_for(lambda: count(alerts_in(world, ops), KEY_REJECTED) > 0, 10, what="the alert")
    operator_texts = await world.discord.wait_for(
        lambda: [m.content for m in world.discord.channel_messages(operators_channel)], 10, what="the webhook post"
    )

    (detailed,) = operator_texts
    assert "TOAPIS_API_KEY" in detailed  # what to fix, for the one who can fix it
    assert world.api.api_key not in detailed
    assert alerts_in(world, ops) == [KEY_REJECTED]
    await end_the_burst(world, ops)


class _LogChannel:
    """What `get_partial_messageable` hands the poster: records what it is sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, content: str, **_: object) -> None:
        self.sent.append(content)


class _Client(discord.Client):
    """A client whose REST is `session` (as after login) and whose log channel records its posts."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        super().__init__(intents=discord.Intents.none())
        self.http._HTTPClient__session = session  # type: ignore[attr-defined]
        self.log_channel = _LogChannel()

    def get_partial_messageable(self, id: int, **_: object) -> Any:
        return self.log_channel


class _ServerSettings:
    def __init__(self, channels: dict[int, int]) -> None:
        self._channels = channels

    def log_channels(self) -> dict[int, int]:
        return self._channels

    def get(self, guild_id: int) -> Any:
        return SimpleNamespace(language=None)


async def test_an_unreachable_operator_webhook_keeps_no_alert_from_the_log_channels(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The operator's webhook host cannot be reached (no network, DNS, a firewall): aiohttp raises an OSError, not
    # a discord.HTTPException. It ended the post there: the servers' log channels never heard of the alert, and
    # asyncio logged "Task exception was never retrieved" with its traceback.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{closed}/api/v10")
    token = "Webhook-T0ken-" + "x" * 60
    url = f"https://discord.com/api/webhooks/123456789012345678/{token}"
    async with aiohttp.ClientSession() as session:
        client = _Client(session)
        poster = AlertPoster(
            client,
            server_settings=_ServerSettings({7 << 22: 42}),  # type: ignore[arg-type]
            guild_allowed=lambda guild_id: True,
            owns_guild=lambda guild_id: True,
            operator_webhook_url=Secret(url),
        )
        with caplog.at_level(logging.WARNING):
            poster(Alert(AlertKind.API_KEY_REJECTED, "401 from ToAPIs"))
            posted = poster._tail
            assert posted is not None
            await asyncio.wait([posted])

    assert posted.exception() is None
    assert client.log_channel.sent == [KEY_REJECTED]
    assert "Could not post an alert to OPERATOR_ALERT_WEBHOOK_URL" in caplog.text
    assert token not in caplog.text

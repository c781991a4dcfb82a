"""The fake's application (public or not, owned by a user or a team), the guilds list with its paging, and
channel webhooks an operator creates: raw HTTP, and discord.py's own reading of them."""

from __future__ import annotations

import aiohttp
import discord
import pytest

from tests.discord_fake.conftest import RawClient
from tests.fakes.discord import FakeDiscord


@pytest.fixture
def point_discord_py_at(fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)


async def test_the_application_is_public_and_owned_by_a_user_until_told_otherwise(
    fake: FakeDiscord, http: RawClient
) -> None:
    answer = await http.request("GET", "/oauth2/applications/@me")
    assert answer.body["bot_public"] is True
    assert answer.body["owner"]["id"] == str(fake.application_owner.id)
    assert answer.body["team"] is None

    fake.set_public(False)
    assert (await http.request("GET", "/oauth2/applications/@me")).body["bot_public"] is False


async def test_a_team_lists_its_members_with_their_membership(fake: FakeDiscord, http: RawClient) -> None:
    guild = fake.add_guild("Ops")
    ann, bob = guild.add_member("ann").user, guild.add_member("bob").user
    fake.set_team([ann], invited=[bob])

    body = (await http.request("GET", "/oauth2/applications/@me")).body
    members = {member["user"]["id"]: member["membership_state"] for member in body["team"]["members"]}
    assert members == {str(ann.id): 2, str(bob.id): 1}
    # The owner of a team's application is the team's pseudo-user, not a person.
    assert body["owner"]["id"] == body["team"]["id"]
    assert body["owner"]["id"] not in (str(ann.id), str(bob.id), str(fake.application_owner.id))


async def test_discord_py_reads_the_application(fake: FakeDiscord, point_discord_py_at: None) -> None:
    guild = fake.add_guild("Ops")
    ann = guild.add_member("ann").user
    fake.set_team([ann])
    fake.set_public(False)
    client = discord.Client(intents=discord.Intents.none())
    try:
        await client.login(fake.token)
        application = client.application
    finally:
        await client.close()
    assert application is not None
    assert application.bot_public is False
    assert application.team is not None
    assert [(m.id, m.membership_state) for m in application.team.members] == [
        (ann.id, discord.TeamMembershipState.accepted)
    ]


async def test_the_guilds_list_pages_by_id(fake: FakeDiscord, http: RawClient) -> None:
    guilds = sorted((fake.add_guild(f"Server {n}") for n in range(5)), key=lambda g: g.id)
    ids = [str(g.id) for g in guilds]

    first = await http.request("GET", "/users/@me/guilds", query={"limit": "2"})
    assert [g["id"] for g in first.body] == ids[:2]
    after = await http.request("GET", "/users/@me/guilds", query={"limit": "2", "after": ids[1]})
    assert [g["id"] for g in after.body] == ids[2:4]
    before = await http.request("GET", "/users/@me/guilds", query={"limit": "2", "before": ids[4]})
    assert [g["id"] for g in before.body] == ids[2:4]
    counted = await http.request("GET", "/users/@me/guilds", query={"with_counts": "true"})
    assert all("approximate_member_count" in g for g in counted.body)
    assert "approximate_member_count" not in first.body[0]
    too_many = await http.request("GET", "/users/@me/guilds", query={"limit": "201"})
    assert (too_many.status, too_many.code) == (400, 50035)


async def test_discord_py_fetches_every_guild_through_the_pages(fake: FakeDiscord, point_discord_py_at: None) -> None:
    created = {fake.add_guild(f"Server {n}").id for n in range(3)}
    client = discord.Client(intents=discord.Intents.none())
    try:
        await client.login(fake.token)
        found = {guild.id async for guild in client.fetch_guilds(limit=None)}
    finally:
        await client.close()
    assert found == created


async def test_a_channel_webhook_posts_in_its_channel_as_itself(fake: FakeDiscord, http: RawClient) -> None:
    guild = fake.add_guild("Ops")
    alerts = guild.add_text_channel("alerts")
    url = fake.add_channel_webhook(alerts, "Operator alerts")
    assert url.startswith("https://discord.com/api/webhooks/")
    webhook_id, token = url.rsplit("/", 2)[-2:]

    silent = await http.request("POST", f"/webhooks/{webhook_id}/{token}", json_body={"content": "one"}, auth=None)
    waited = await http.request(
        "POST", f"/webhooks/{webhook_id}/{token}", json_body={"content": "two"}, auth=None, query={"wait": "true"}
    )
    assert silent.status == 204
    assert waited.status == 200
    assert waited.body["webhook_id"] == webhook_id
    assert waited.body["author"]["id"] == webhook_id
    assert "application_id" not in waited.body
    messages = fake.channel_messages(alerts)
    assert [m.content for m in messages] == ["one", "two"]
    assert all(m.author.id == int(webhook_id) and m.author.bot for m in messages)

    wrong = await http.request("POST", f"/webhooks/{webhook_id}/{'x' * 68}", json_body={"content": "no"}, auth=None)
    assert (wrong.status, wrong.code) == (401, 50027)
    assert len(fake.channel_messages(alerts)) == 2


async def test_discord_py_sends_through_a_channel_webhook_url(fake: FakeDiscord, point_discord_py_at: None) -> None:
    guild = fake.add_guild("Ops")
    alerts = guild.add_text_channel("alerts")
    url = fake.add_channel_webhook(alerts)
    async with aiohttp.ClientSession() as session:
        webhook = discord.Webhook.from_url(url, session=session)
        await webhook.send("low balance", allowed_mentions=discord.AllowedMentions.none())
    (message,) = fake.channel_messages(alerts)
    assert message.content == "low balance"
    assert message.pings.nobody

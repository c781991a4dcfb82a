"""Members' messages reaching the bot: mentions, replies, edits, forwards, a repeated event, and the intents."""

from __future__ import annotations

import aiohttp
import pytest

from tests.discord_fake.conftest import (
    DIRECT_MESSAGES,
    GUILD_MESSAGES,
    GUILDS,
    IMAGINE_COMMAND,
    RawClient,
    World,
    event_about,
    identified,
    png_bytes,
)
from tests.fakes.discord import FakeDiscord, InvocationRefused, Overwrite, Permission, Upload


async def test_mentions_of_the_bot_a_role_and_everyone(
    fake: FakeDiscord, world: World, session: aiohttp.ClientSession
) -> None:
    gateway = await identified(session, fake)
    role = world.guild.bot_role

    await fake.post_message(world.general, world.alice, f"{fake.bot_user.mention} and {role.mention} and @everyone")
    event = (await gateway.until("MESSAGE_CREATE"))["d"]

    assert [u["id"] for u in event["mentions"]] == [str(fake.bot_user.id)]
    assert event["mention_roles"] == [str(role.id)]
    assert event["mention_everyone"] is True
    assert event["type"] == 0
    assert event["member"]["roles"] == []


async def test_a_reply_carries_its_reference_and_pings_the_author_unless_told_not_to(
    fake: FakeDiscord, world: World, http: RawClient, session: aiohttp.ClientSession
) -> None:
    gateway = await identified(session, fake)
    question = await fake.post_message(world.general, world.alice, "question")

    pinging = await fake.post_message(world.general, world.bob, "answer", reply_to=question)
    pinging_event = await event_about(gateway, pinging)
    quiet = await fake.post_message(world.general, world.bob, "answer", reply_to=question, mention_author=False)
    quiet_event = await event_about(gateway, quiet)
    await fake.delete_message(question)
    after_deletion = await http.request("GET", f"/channels/{world.general.id}/messages/{pinging.id}")

    assert pinging_event["type"] == quiet_event["type"] == 19
    assert pinging_event["message_reference"] == {
        "type": 0,
        "message_id": str(question.id),
        "channel_id": str(world.general.id),
        "guild_id": str(world.guild.id),
    }
    assert pinging_event["referenced_message"]["id"] == str(question.id)
    assert [u["id"] for u in pinging_event["mentions"]] == [str(world.alice.id)]
    assert quiet_event["mentions"] == []
    assert pinging.pings.users == {world.alice.id}
    assert quiet.mentions_nobody
    assert after_deletion.body["referenced_message"] is None
    with pytest.raises(InvocationRefused):
        await fake.post_message(world.no_files, world.bob, "elsewhere", reply_to=pinging)


async def test_an_edit_dispatches_message_update_with_the_whole_message(
    fake: FakeDiscord, world: World, session: aiohttp.ClientSession
) -> None:
    gateway = await identified(session, fake)
    post = await fake.post_message(world.general, world.alice, f"v1 {fake.bot_user.mention}")
    created = (await gateway.until("MESSAGE_CREATE"))["d"]

    await fake.edit_message(post, content=f"v2 {fake.bot_user.mention}")
    updated = (await gateway.until("MESSAGE_UPDATE"))["d"]

    assert created["edited_timestamp"] is None
    assert updated["id"] == str(post.id)
    assert updated["content"] == f"v2 {fake.bot_user.mention}"
    assert updated["edited_timestamp"] is not None
    assert updated["author"]["id"] == str(world.alice.id)
    assert [v.content for v in post.versions] == [f"v1 {fake.bot_user.mention}", f"v2 {fake.bot_user.mention}"]


async def test_a_message_create_can_be_delivered_twice(
    fake: FakeDiscord, world: World, session: aiohttp.ClientSession
) -> None:
    gateway = await identified(session, fake)
    post = await fake.post_message(world.general, world.alice, f"{fake.bot_user.mention} once")
    first = await gateway.until("MESSAGE_CREATE")
    await fake.edit_message(post, content=f"{fake.bot_user.mention} edited")

    assert fake.redeliver(post) == "live"
    await gateway.until("MESSAGE_UPDATE")
    second = await gateway.until("MESSAGE_CREATE")

    # The very same event (as first created, before the edit), with a new sequence number.
    assert second["d"] == first["d"]
    assert second["s"] > first["s"]
    assert fake.gateway_sessions[0].event_names.count("MESSAGE_CREATE") == 2


async def test_message_events_need_the_guild_messages_intent_and_dms_the_direct_messages_one(
    fake: FakeDiscord, world: World, http: RawClient, session: aiohttp.ClientSession
) -> None:
    await http.sync([IMAGINE_COMMAND])
    await identified(session, fake, intents=GUILDS)
    post = await fake.post_message(world.general, world.alice, f"{fake.bot_user.mention} hi")
    dm = await fake.post_message(fake.dm_channel(world.alice), world.alice, "private")
    call = await fake.invoke_slash("imagine", {"prompt": "p"}, user=world.alice, channel=world.general)
    only_guilds = fake.gateway_sessions[-1]
    await fake.wait_for(lambda: call.delivered_by)
    redelivered = fake.redeliver(post)
    messages = await identified(session, fake, intents=GUILDS | GUILD_MESSAGES)
    await fake.post_message(world.general, world.alice, f"{fake.bot_user.mention} again")
    await messages.until("MESSAGE_CREATE")
    await fake.post_message(fake.dm_channel(world.alice), world.alice, "private again")
    with_dms = await identified(session, fake, intents=GUILDS | GUILD_MESSAGES | DIRECT_MESSAGES)
    await fake.post_message(fake.dm_channel(world.alice), world.alice, "private, heard")
    dm_event = await with_dms.until("MESSAGE_CREATE")

    # With GUILDS alone: no message at all (mention or not), but interactions.
    assert only_guilds.event_names == ["READY", "GUILD_CREATE", "INTERACTION_CREATE"]
    assert redelivered is None
    assert dm.content == "private"
    assert fake.gateway_sessions[-2].event_names == ["READY", "GUILD_CREATE", "MESSAGE_CREATE"]
    assert dm_event["d"]["content"] == "private, heard"


async def test_members_post_only_where_they_could(fake: FakeDiscord, world: World) -> None:
    muted = world.guild.add_text_channel(
        "read-only", overwrites=[Overwrite(world.alice, deny=Permission.SEND_MESSAGES)]
    )
    no_files = world.guild.add_text_channel(
        "no-member-files", overwrites=[Overwrite(world.guild.everyone, deny=Permission.ATTACH_FILES)]
    )
    secret = world.guild.add_text_channel("secret", overwrites=[Overwrite(world.alice, deny=Permission.VIEW_CHANNEL)])
    other = fake.add_guild("Other server")

    with pytest.raises(InvocationRefused, match="may not post"):
        await fake.post_message(muted, world.alice, "hi")
    with pytest.raises(InvocationRefused, match="may not post"):
        await fake.post_message(no_files, world.alice, "", files=[Upload(png_bytes(), "x.png")])
    with pytest.raises(InvocationRefused, match="cannot see"):
        await fake.post_message(secret, world.alice, "hi")
    with pytest.raises(InvocationRefused, match="not a member"):
        await fake.post_message(other.add_text_channel("general"), world.alice, "hi")
    with pytest.raises(InvocationRefused, match="not in this DM"):
        await fake.post_message(fake.dm_channel(world.alice), world.bob, "hi")
    assert await fake.post_message(no_files, world.alice, "text is fine")


async def test_a_forward_has_no_content_of_its_own_and_a_snapshot_of_the_original(
    fake: FakeDiscord, world: World, http: RawClient
) -> None:
    image = png_bytes(6, 4)
    original = await fake.post_message(world.general, world.bob, "the boat", files=[Upload(image, "boat.png")])
    elsewhere = world.guild.add_text_channel("elsewhere")

    forward = await fake.post_forward(elsewhere, world.alice, original)
    fetched = await http.request("GET", f"/channels/{elsewhere.id}/messages/{forward.id}")

    assert (forward.content, forward.attachments) == ("", ())
    assert forward.is_forward
    assert forward.flags & (1 << 14)
    assert fetched.body["message_reference"] == {
        "type": 1,
        "message_id": str(original.id),
        "channel_id": str(world.general.id),
        "guild_id": str(world.guild.id),
    }
    assert "referenced_message" not in fetched.body
    assert fetched.body["type"] == 0
    (snapshot,) = forward.snapshots
    assert snapshot.content == "the boat"
    assert snapshot.attachments[0].data == image
    # Discord keeps the forwarded files as attachments of their own.
    assert snapshot.attachments[0].id != original.attachments[0].id
    wire = snapshot.to_payload()["message"]
    for key in ("type", "content", "embeds", "attachments", "timestamp", "edited_timestamp", "flags"):
        assert key in wire
    async with http.session.get(wire["attachments"][0]["url"]) as response:
        assert await response.read() == image


async def test_the_bots_reply_needs_read_message_history_and_a_message_that_still_exists(
    fake: FakeDiscord, world: World, http: RawClient
) -> None:
    no_history = world.guild.add_text_channel(
        "no-history", overwrites=[Overwrite(world.guild.bot_role, deny=Permission.READ_MESSAGE_HISTORY)]
    )
    there = await fake.post_message(no_history, world.alice, "hello")
    question = await fake.post_message(world.general, world.alice, "question")
    gone = await fake.post_message(world.general, world.alice, "soon gone")
    await fake.delete_message(gone)

    def reply(message_id: int, **reference: object) -> dict[str, object]:
        return {
            "content": "an answer",
            "message_reference": {"message_id": str(message_id), **reference},
            "allowed_mentions": {"parse": [], "users": [str(world.alice.id)], "replied_user": True},
        }

    refused_here = await http.request("POST", f"/channels/{no_history.id}/messages", json_body=reply(there.id))
    to_gone = await http.request("POST", f"/channels/{world.general.id}/messages", json_body=reply(gone.id))
    anyway = await http.request(
        "POST", f"/channels/{world.general.id}/messages", json_body=reply(gone.id, fail_if_not_exists=False)
    )
    answered = await http.request("POST", f"/channels/{world.general.id}/messages", json_body=reply(question.id))

    assert (refused_here.status, refused_here.code) == (403, 50013)
    assert (to_gone.status, to_gone.code) == (400, 50035)
    assert to_gone.field_errors("message_reference") == ["MESSAGE_REFERENCE_UNKNOWN_MESSAGE"]
    assert anyway.status == 200
    assert "message_reference" not in anyway.body
    assert answered.status == 200
    assert answered.body["type"] == 19
    assert answered.body["referenced_message"]["id"] == str(question.id)
    (posted,) = [m for m in fake.messages if m.id == int(answered.body["id"])]
    # The reply pings the author it answers (replied_user), and only because allowed_mentions lets it.
    assert posted.pings.users == {world.alice.id}

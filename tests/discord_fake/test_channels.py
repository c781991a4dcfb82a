"""Threads, forums, text in voice, channels that refuse the bot, and DMs, through raw HTTP and the gateway."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.discord_fake.conftest import IMAGINE_COMMAND, RawClient, World, connect, identified, png_bytes
from tests.fakes.discord import (
    ChannelType,
    FakeDiscord,
    FakeUser,
    InteractionRecord,
    InvocationRefused,
    Overwrite,
    Permission,
    Upload,
)


@pytest.fixture
async def synced(http: RawClient, world: World) -> World:
    answer = await http.sync([IMAGINE_COMMAND])
    assert answer.status == 200
    return world


def post_path(channel_id: int) -> str:
    return f"/channels/{channel_id}/messages"


async def answers_through_its_webhook(http: RawClient, call: InteractionRecord) -> list[int]:
    """Defer, edit the reply with a file and an embed, send a follow-up: the statuses."""
    deferred = await http.callback(call, {"type": 5})
    edited = await http.webhook(
        "PATCH",
        call,
        "/messages/@original",
        json_body={"content": "done", "embeds": [{"title": "result"}]},
        files=[("result.png", png_bytes())],
    )
    followup = await http.webhook("POST", call, json_body={"content": "and more"})
    return [deferred.status, edited.status, followup.status]


async def connect_and_read_guild(session: aiohttp.ClientSession, fake: FakeDiscord) -> dict[str, Any]:
    """The GUILD_CREATE that follows READY."""
    gateway = await connect(session, fake.gateway_url)
    await gateway.receive()
    await gateway.identify(fake.token)
    return dict((await gateway.until("GUILD_CREATE"))["d"])


async def test_guild_create_lists_the_threads_the_bot_can_see_with_their_parent(
    fake: FakeDiscord, world: World, session: aiohttp.ClientSession
) -> None:
    guild = world.guild
    public = guild.add_thread(world.general, "ideas", owner=world.alice)
    staff = guild.add_thread(world.general, "staff", private=True, members=[guild.bot_member])
    guild.add_thread(world.general, "secret", private=True, owner=world.alice)

    gateway = await connect_and_read_guild(session, fake)

    threads = {t["name"]: t for t in gateway["threads"]}
    assert set(threads) == {"ideas", "staff"}
    assert threads["ideas"]["id"] == str(public.id)
    assert threads["ideas"]["parent_id"] == str(world.general.id)
    assert threads["ideas"]["owner_id"] == str(world.alice.id)
    assert threads["ideas"]["type"] == ChannelType.PUBLIC_THREAD
    assert "member" not in threads["ideas"]
    assert threads["staff"]["type"] == ChannelType.PRIVATE_THREAD
    assert threads["staff"]["member"]["user_id"] == str(fake.bot_user.id)
    assert threads["staff"]["id"] == str(staff.id)
    assert str(public.id) not in {c["id"] for c in gateway["channels"]}


async def test_posting_in_a_thread_takes_send_messages_in_threads_not_send_messages(
    fake: FakeDiscord, synced: World, http: RawClient
) -> None:
    guild, bot_role = synced.guild, synced.guild.bot_role
    threads_only = guild.add_text_channel(
        "threads-only", overwrites=[Overwrite(bot_role, deny=Permission.SEND_MESSAGES)]
    )
    no_thread_posts = guild.add_text_channel(
        "no-thread-posts", overwrites=[Overwrite(guild.everyone, deny=Permission.SEND_MESSAGES_IN_THREADS)]
    )
    open_thread = guild.add_thread(threads_only, "open", owner=synced.alice)
    closed_thread = guild.add_thread(no_thread_posts, "closed", owner=synced.alice)

    in_open = await http.request("POST", post_path(open_thread.id), json_body={"content": "hi"})
    in_parent = await http.request("POST", post_path(threads_only.id), json_body={"content": "hi"})
    in_closed = await http.request("POST", post_path(closed_thread.id), json_body={"content": "hi"})
    call = await fake.invoke_slash("imagine", {"prompt": "p"}, user=synced.alice, channel=closed_thread)
    statuses = await answers_through_its_webhook(http, call)

    assert in_open.status == 200
    assert in_open.body["channel_id"] == str(open_thread.id)
    assert (in_parent.status, in_parent.code) == (403, 50013)
    assert (in_closed.status, in_closed.code) == (403, 50013)
    channel = call.payload["channel"]
    assert (channel["id"], channel["type"], channel["parent_id"]) == (
        str(closed_thread.id),
        ChannelType.PUBLIC_THREAD,
        str(no_thread_posts.id),
    )
    assert "thread_metadata" in channel
    granted = Permission(int(call.payload["app_permissions"]))
    # The parent's permissions, less what a thread needs Send Messages in Threads for.
    assert Permission.SEND_MESSAGES in granted
    for lost in (Permission.SEND_MESSAGES_IN_THREADS, Permission.ATTACH_FILES, Permission.EMBED_LINKS):
        assert lost not in granted
    assert statuses == [200, 200, 200]
    assert open_thread.message_count == 1


async def test_a_private_thread_is_for_its_members(fake: FakeDiscord, synced: World, http: RawClient) -> None:
    guild = synced.guild
    private = guild.add_thread(synced.general, "private", private=True, owner=synced.alice)
    with_bot = guild.add_thread(synced.general, "with the bot", private=True, members=[guild.bot_member])

    post = await http.request("POST", post_path(private.id), json_body={"content": "hi"})
    read = await http.request("GET", f"/channels/{private.id}")
    allowed = await http.request("POST", post_path(with_bot.id), json_body={"content": "hi"})
    call = await fake.invoke_slash("imagine", {"prompt": "p"}, user=synced.alice, channel=private)

    assert (post.status, post.code) == (403, 50001)
    assert read.code == 50001
    assert allowed.status == 200
    # The interaction comes all the same; only the bot's own posts are refused.
    assert call.payload["channel"]["type"] == ChannelType.PRIVATE_THREAD
    with pytest.raises(InvocationRefused, match="cannot see"):
        await fake.invoke_slash("imagine", {"prompt": "p"}, user=synced.bob, channel=private)
    with pytest.raises(InvocationRefused, match="cannot see"):
        await fake.post_message(private, synced.bob, "let me in")


async def test_a_forum_takes_posts_which_are_threads_with_a_starter_message(
    fake: FakeDiscord, synced: World, http: RawClient, session: aiohttp.ClientSession
) -> None:
    forum = synced.guild.add_forum_channel("art")
    gateway = await identified(session, fake)

    post = await fake.add_forum_post(
        forum, "my cat", synced.alice, "what do you think", files=[Upload(png_bytes(), "cat.png")]
    )
    thread_create = await gateway.until("THREAD_CREATE")
    message_create = await gateway.until("MESSAGE_CREATE")
    in_forum = await http.request("POST", post_path(forum.id), json_body={"content": "hi"})
    in_post = await http.request("POST", post_path(post.channel.id), json_body={"content": "nice"})
    call = await fake.invoke_slash("imagine", {"prompt": "p"}, user=synced.bob, channel=post.channel)

    thread = post.channel
    assert thread.type == ChannelType.PUBLIC_THREAD
    assert post.id == thread.id
    assert thread_create["d"]["id"] == str(thread.id)
    assert thread_create["d"]["parent_id"] == str(forum.id)
    assert thread_create["d"]["newly_created"] is True
    assert thread_create["s"] < message_create["s"]
    assert (message_create["d"]["id"], message_create["d"]["channel_id"]) == (str(thread.id), str(thread.id))
    assert (in_forum.status, in_forum.code) == (400, 50008)
    assert in_post.status == 200
    assert call.payload["channel"]["parent_id"] == str(forum.id)
    with pytest.raises(InvocationRefused):
        await fake.post_message(forum, synced.alice, "not a post")
    with pytest.raises(InvocationRefused):
        await fake.invoke_slash("imagine", {"prompt": "p"}, user=synced.alice, channel=forum)


async def test_a_voice_channel_has_a_text_chat(
    fake: FakeDiscord, synced: World, http: RawClient, session: aiohttp.ClientSession
) -> None:
    voice = synced.guild.add_voice_channel("lounge")
    guild_create = await connect_and_read_guild(session, fake)

    posted = await http.request("POST", post_path(voice.id), json_body={"content": "hello voice"})
    member_post = await fake.post_message(voice, synced.alice, "hi from voice")
    call = await fake.invoke_slash("imagine", {"prompt": "p"}, user=synced.alice, channel=voice)

    listed = next(c for c in guild_create["channels"] if c["id"] == str(voice.id))
    assert (listed["type"], listed["bitrate"], listed["user_limit"]) == (2, 64000, 0)
    assert posted.status == 200
    assert member_post.channel is voice
    assert call.payload["channel"]["type"] == ChannelType.GUILD_VOICE


async def test_channels_and_threads_created_while_connected_are_announced(
    fake: FakeDiscord, world: World, session: aiohttp.ClientSession
) -> None:
    gateway = await identified(session, fake)
    guild = world.guild

    channel = guild.add_text_channel("new")
    created = await gateway.until("CHANNEL_CREATE")
    guild.add_thread(channel, "hidden", private=True, owner=world.alice)
    thread = guild.add_thread(channel, "visible", owner=world.alice)
    announced = await gateway.until("THREAD_CREATE")

    assert created["d"]["id"] == str(channel.id)
    assert announced["d"]["id"] == str(thread.id)
    assert fake.gateway_sessions[0].event_names.count("THREAD_CREATE") == 1


async def test_an_age_restricted_channel_says_so_everywhere_the_bot_reads_channels(
    fake: FakeDiscord, synced: World, http: RawClient, session: aiohttp.ClientSession
) -> None:
    guild = synced.guild
    adults = guild.add_text_channel("adults", nsfw=True)
    forum = guild.add_forum_channel("adult-art", nsfw=True)

    at_start = await connect_and_read_guild(session, fake)
    read = await http.request("GET", f"/channels/{adults.id}")
    call = await fake.invoke_slash("imagine", {"prompt": "p"}, user=synced.alice, channel=adults)
    later = guild.add_text_channel("later", nsfw=True)

    channels = {c["name"]: c for c in at_start["channels"]}
    assert (channels["adults"]["nsfw"], channels["adult-art"]["nsfw"], channels["general"]["nsfw"]) == (
        True,
        True,
        False,
    )
    assert forum.nsfw
    assert read.body["nsfw"] is True
    assert call.payload["channel"]["nsfw"] is True
    assert later.to_payload()["nsfw"] is True
    # A thread carries no flag of its own: it is age-restricted when its parent is (discord.py asks the parent).
    thread = guild.add_thread(adults, "inside", owner=synced.alice)
    assert "nsfw" not in thread.to_payload()
    assert thread.parent is adults


async def test_a_channel_that_refuses_the_bot_still_takes_its_interaction_replies(
    fake: FakeDiscord, synced: World, http: RawClient
) -> None:
    guild = synced.guild
    refused = Permission.SEND_MESSAGES | Permission.ATTACH_FILES | Permission.EMBED_LINKS
    locked = guild.add_text_channel("locked", overwrites=[Overwrite(guild.bot_role, deny=refused)])

    posts = [
        await http.request("POST", post_path(locked.id), json_body={"content": "hi"}),
        await http.request("POST", post_path(synced.hidden.id), json_body={"content": "hi"}),
        await http.request("POST", post_path(synced.no_files.id), json_body={"content": "x"}, files=[("a.png", b"x")]),
    ]
    locked_call = await fake.invoke_slash("imagine", {"prompt": "p"}, user=synced.alice, channel=locked)
    hidden_call = await fake.invoke_slash("imagine", {"prompt": "p"}, user=synced.alice, channel=synced.hidden)
    replies = [
        await answers_through_its_webhook(http, locked_call),
        await answers_through_its_webhook(http, hidden_call),
    ]

    assert [(p.status, p.code) for p in posts] == [(403, 50013), (403, 50001), (403, 50013)]
    assert replies == [[200, 200, 200], [200, 200, 200]]
    locked_permissions = Permission(int(locked_call.payload["app_permissions"]))
    assert Permission.VIEW_CHANNEL in locked_permissions
    for missing in (Permission.SEND_MESSAGES, Permission.ATTACH_FILES, Permission.EMBED_LINKS):
        assert missing not in locked_permissions
    assert int(hidden_call.payload["app_permissions"]) == 0
    assert locked_call.original is not None
    assert locked_call.original.attachments[0].filename == "result.png"


async def test_dms_open_and_refuse_as_the_member_chose(fake: FakeDiscord, world: World, http: RawClient) -> None:
    other_bot = world.guild.add_member(FakeUser(id=fake.state.new_id(), username="other-bot", bot=True))

    opened = await http.request("POST", "/users/@me/channels", json_body={"recipient_id": str(world.alice.id)})
    sent = await http.request("POST", post_path(int(opened.body["id"])), json_body={"content": "your image is ready"})
    fake.refuse_dms(world.alice)
    refused = await http.request("POST", post_path(int(opened.body["id"])), json_body={"content": "again"})
    to_bot = await http.request("POST", "/users/@me/channels", json_body={"recipient_id": str(other_bot.id)})
    bot_refused = await http.request("POST", post_path(int(to_bot.body["id"])), json_body={"content": "hi"})
    stranger = await http.request("POST", "/users/@me/channels", json_body={"recipient_id": "1"})

    assert opened.status == 200
    assert opened.body["type"] == ChannelType.DM
    assert [r["id"] for r in opened.body["recipients"]] == [str(world.alice.id)]
    assert int(opened.body["id"]) == fake.dm_channel(world.alice).id
    assert sent.status == 200
    assert (refused.status, refused.code) == (403, 50007)
    assert (bot_refused.status, bot_refused.code) == (403, 50007)
    assert stranger.code == 10013
    assert [m.content for m in fake.channel_messages(fake.dm_channel(world.alice))] == ["your image is ready"]

"""The Message Content rule: a bot without the privileged intent reads other members' messages empty.

On the gateway (by the intents of the session) and on REST reads (by the application's privileged intents),
with Discord's exceptions: the bot's own messages, messages that mention it, DMs, and the target of a message
context menu command.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.discord_fake.conftest import (
    CONTEXT_MENU,
    INTENTS_DEFAULT,
    MESSAGE_CONTENT,
    RawClient,
    World,
    build_world,
    event_about,
    identified,
    png_bytes,
)
from tests.fakes.discord import FakeDiscord, Upload

EMPTY = {"content": "", "attachments": [], "embeds": [], "components": []}


def readable(message: dict[str, Any]) -> dict[str, Any]:
    return {key: message[key] for key in EMPTY}


async def test_another_members_message_arrives_empty_on_the_gateway_and_on_rest(
    fake: FakeDiscord, world: World, http: RawClient, session: aiohttp.ClientSession
) -> None:
    gateway = await identified(session, fake)
    path = f"/channels/{world.general.id}/messages"

    post = await fake.post_message(world.general, world.alice, "my secret plans", files=[Upload(png_bytes(), "a.png")])
    event = await event_about(gateway, post)
    fetched = await http.request("GET", f"{path}/{post.id}")
    history = await http.request("GET", path)

    assert readable(event) == EMPTY
    assert readable(fetched.body) == EMPTY
    assert [readable(m) for m in history.body] == [EMPTY]
    # The rest of the message is there, and the fake itself keeps everything.
    assert (event["author"]["id"], fetched.body["id"]) == (str(world.alice.id), str(post.id))
    assert post.content == "my secret plans"
    assert post.attachments[0].filename == "a.png"


async def test_the_bots_own_messages_mentions_of_it_and_dms_arrive_in_full(
    fake: FakeDiscord, world: World, http: RawClient, session: aiohttp.ClientSession
) -> None:
    gateway = await identified(session, fake)
    bot = fake.bot_user

    own = await http.request("POST", f"/channels/{world.general.id}/messages", json_body={"content": "bot text"})
    own_event = await gateway.until("MESSAGE_CREATE")
    mention = await fake.post_message(world.general, world.alice, f"{bot.mention} draw a cat")
    mention_event = await event_about(gateway, mention)
    dm = await fake.post_message(fake.dm_channel(world.alice), world.alice, "hello in private")
    dm_event = await event_about(gateway, dm)
    fetched = await http.request("GET", f"/channels/{world.general.id}/messages/{mention.id}")

    assert own_event["d"]["content"] == own.body["content"] == "bot text"
    assert mention_event["content"] == fetched.body["content"] == f"{bot.mention} draw a cat"
    assert [u["id"] for u in mention_event["mentions"]] == [str(bot.id)]
    assert dm_event["content"] == "hello in private"
    assert "guild_id" not in dm_event


async def test_role_and_everyone_mentions_do_not_count(
    fake: FakeDiscord, world: World, session: aiohttp.ClientSession
) -> None:
    gateway = await identified(session, fake)

    role = await fake.post_message(world.general, world.alice, f"{world.guild.bot_role.mention} hi")
    role_event = await event_about(gateway, role)
    everyone = await fake.post_message(world.general, world.alice, "@everyone hi")
    everyone_event = await event_about(gateway, everyone)

    assert role_event["content"] == everyone_event["content"] == ""
    assert role_event["mention_roles"] == [str(world.guild.bot_role.id)]
    assert everyone_event["mention_everyone"] is True


async def test_a_reply_that_pings_the_bot_is_readable_and_the_message_it_answers_is_judged_alone(
    fake: FakeDiscord, world: World, http: RawClient, session: aiohttp.ClientSession
) -> None:
    gateway = await identified(session, fake)
    answer = await http.request("POST", f"/channels/{world.general.id}/messages", json_body={"content": "result"})
    bot_message = fake.messages[-1]
    question = await fake.post_message(world.general, world.alice, "a question")

    pinging = await fake.post_message(world.general, world.bob, "again please", reply_to=bot_message)
    pinging_event = await event_about(gateway, pinging)
    silent = await fake.post_message(
        world.general, world.bob, "again, quietly", reply_to=bot_message, mention_author=False
    )
    silent_event = await event_about(gateway, silent)
    calling = await fake.post_message(world.general, world.bob, f"{fake.bot_user.mention} look", reply_to=question)
    calling_event = await event_about(gateway, calling)
    fetched = await http.request("GET", f"/channels/{world.general.id}/messages/{calling.id}")

    assert answer.status == 200
    assert pinging_event["content"] == "again please"
    assert pinging_event["referenced_message"]["content"] == "result"
    assert silent_event["content"] == ""
    assert silent_event["referenced_message"]["content"] == "result"
    assert calling_event["content"] == f"{fake.bot_user.mention} look"
    # Alice's question does not mention the bot: it stays empty inside Bob's reply.
    assert calling_event["referenced_message"]["id"] == str(question.id)
    assert readable(calling_event["referenced_message"]) == EMPTY
    assert readable(fetched.body["referenced_message"]) == EMPTY


async def test_an_edit_follows_the_rule_with_its_new_text(
    fake: FakeDiscord, world: World, session: aiohttp.ClientSession
) -> None:
    gateway = await identified(session, fake)
    post = await fake.post_message(world.general, world.alice, "nothing for the bot")
    await event_about(gateway, post)

    await fake.edit_message(post, content=f"now for {fake.bot_user.mention}")
    mentioning = await event_about(gateway, post, "MESSAGE_UPDATE")
    await fake.edit_message(post, content="never mind")
    plain = await event_about(gateway, post, "MESSAGE_UPDATE")

    assert mentioning["content"] == f"now for {fake.bot_user.mention}"
    assert plain["content"] == ""
    assert plain["edited_timestamp"] is not None


async def test_a_forwards_snapshots_are_empty_except_in_the_context_menus_resolved_message(
    fake: FakeDiscord, world: World, http: RawClient, session: aiohttp.ClientSession
) -> None:
    await http.sync([CONTEXT_MENU])
    gateway = await identified(session, fake)
    original = await fake.post_message(world.general, world.bob, "look", files=[Upload(png_bytes(), "boat.png")])
    forward = await fake.post_forward(world.general, world.alice, original)

    event = await event_about(gateway, forward)
    fetched = await http.request("GET", f"/channels/{world.general.id}/messages/{forward.id}")
    menu = await fake.invoke_message_context("Imagine from images", forward, user=world.alice)
    interaction = await gateway.until("INTERACTION_CREATE")

    for seen in (event, fetched.body):
        (snapshot,) = seen["message_snapshots"]
        assert readable(snapshot["message"]) == EMPTY
        assert seen["message_reference"]["type"] == 1
    resolved = interaction["d"]["data"]["resolved"]["messages"][str(forward.id)]
    assert menu.id == int(interaction["d"]["id"])
    assert resolved["message_snapshots"][0]["message"]["content"] == "look"
    assert [a["filename"] for a in resolved["message_snapshots"][0]["message"]["attachments"]] == ["boat.png"]


async def test_a_context_menus_target_arrives_in_full_in_the_interaction(
    fake: FakeDiscord, world: World, http: RawClient, session: aiohttp.ClientSession
) -> None:
    await http.sync([CONTEXT_MENU])
    gateway = await identified(session, fake)
    post = await fake.post_message(world.general, world.bob, "refs", files=[Upload(png_bytes(), "ref.png")])

    await fake.invoke_message_context("Imagine from images", post, user=world.alice)
    interaction = await gateway.until("INTERACTION_CREATE")
    fetched = await http.request("GET", f"/channels/{world.general.id}/messages/{post.id}")

    resolved = interaction["d"]["data"]["resolved"]["messages"][str(post.id)]
    assert resolved["content"] == "refs"
    assert [a["filename"] for a in resolved["attachments"]] == ["ref.png"]
    # Read again through REST afterwards, it is empty like any other member's message.
    assert readable(fetched.body) == EMPTY


async def test_with_the_privileged_intent_messages_arrive_in_full(
    http: RawClient, session: aiohttp.ClientSession
) -> None:
    async with FakeDiscord(privileged_intents=MESSAGE_CONTENT) as fake:
        world = build_world(fake)
        client = RawClient(fake, http.session)
        with_intent = await identified(session, fake, intents=INTENTS_DEFAULT | MESSAGE_CONTENT)
        post = await fake.post_message(world.general, world.alice, "plain text")
        full = await event_about(with_intent, post)
        fetched = await client.request("GET", f"/channels/{world.general.id}/messages/{post.id}")
        # A session that did not ask for the intent reads the gateway without it; REST follows the application.
        without = await identified(session, fake)
        second = await fake.post_message(world.general, world.alice, "more text")
        empty = await event_about(without, second)
        fetched_second = await client.request("GET", f"/channels/{world.general.id}/messages/{second.id}")

    assert full["content"] == fetched.body["content"] == "plain text"
    assert empty["content"] == ""
    assert fetched_second.body["content"] == "more text"

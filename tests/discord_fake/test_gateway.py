"""The fake's gateway with a raw websocket client: handshake, sequence numbers, heartbeats, resume, refusals."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.discord_fake.conftest import (
    IMAGINE_COMMAND,
    INTENTS_DEFAULT,
    MESSAGE_CONTENT,
    RawClient,
    World,
    connect,
)
from tests.fakes.discord import FakeDiscord


async def test_hello_identify_ready_and_guild_create(
    fake: FakeDiscord, world: World, session: aiohttp.ClientSession
) -> None:
    gateway = await connect(session, fake.gateway_url)

    hello = await gateway.receive()
    ready = await gateway.identify(fake.token)
    guild_create = await gateway.until("GUILD_CREATE")

    assert hello == {"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None}
    data = ready["d"]
    assert ready["s"] == 1
    assert data["user"]["id"] == str(fake.bot_user.id)
    assert data["application"] == {"id": str(fake.application_id), "flags": data["application"]["flags"]}
    assert data["guilds"] == [{"id": str(world.guild.id), "unavailable": True}]
    assert data["resume_gateway_url"] == fake.gateway_url.replace("/gateway", "/resume-gateway")
    assert data["shard"] == [0, 1]
    assert guild_create["s"] == 2
    guild = guild_create["d"]
    assert guild["id"] == str(world.guild.id)
    assert guild["member_count"] == len(world.guild.members)
    # Without the members intent Discord sends the bot's own member only.
    assert [m["user"]["id"] for m in guild["members"]] == [str(fake.bot_user.id)]
    assert {c["name"] for c in guild["channels"]} >= {"general", "hidden"}
    bot_role = next(r for r in guild["roles"] if r.get("tags", {}).get("bot_id") == str(fake.bot_user.id))
    assert int(bot_role["permissions"]) == world.guild.bot_role.permissions
    assert fake.gateway_sessions[0].identify["intents"] == INTENTS_DEFAULT
    assert "token" not in fake.gateway_sessions[0].identify


async def test_waiting_for_a_session_times_out_without_an_identify(fake: FakeDiscord) -> None:
    with pytest.raises(TimeoutError, match="IDENTIFY"):
        await fake.wait_for_session(timeout=0.05)


async def test_heartbeats_are_acknowledged(fake: FakeDiscord, world: World, session: aiohttp.ClientSession) -> None:
    gateway = await connect(session, fake.gateway_url)
    await gateway.receive()

    await gateway.send(1, None)
    ack = await gateway.receive()

    assert ack["op"] == 11
    assert fake.gateway_connections[0].heartbeats == 1


async def test_the_heartbeat_interval_is_a_parameter(session: aiohttp.ClientSession) -> None:
    async with FakeDiscord(heartbeat_interval=0.5) as fake:
        gateway = await connect(session, fake.gateway_url)
        hello = await gateway.receive()

    assert hello["d"]["heartbeat_interval"] == 500


async def test_zlib_stream_compression_when_asked(
    fake: FakeDiscord, world: World, session: aiohttp.ClientSession
) -> None:
    gateway = await connect(session, fake.gateway_url, compress="zlib-stream")

    hello = await gateway.receive()
    ready = await gateway.identify(fake.token)

    assert hello["op"] == 10
    assert ready["t"] == "READY"
    assert gateway.binary_frames >= 2
    assert fake.gateway_connections[0].compression == "zlib-stream"


@pytest.mark.parametrize(
    ("identify", "code"),
    [
        ({"token": "wrong", "intents": INTENTS_DEFAULT}, 4004),
        ({"token": None, "intents": INTENTS_DEFAULT | MESSAGE_CONTENT}, 4014),
        ({"token": None}, 4013),
        ({"token": None, "intents": INTENTS_DEFAULT, "shard": [1, 1]}, 4010),
    ],
)
async def test_identify_refusals_close_with_discords_codes(
    fake: FakeDiscord, session: aiohttp.ClientSession, identify: dict[str, Any], code: int
) -> None:
    gateway = await connect(session, fake.gateway_url)
    await gateway.receive()

    await gateway.send(2, {**identify, "token": identify["token"] or fake.token})

    assert await gateway.closed_with() == code


async def test_privileged_intents_can_be_enabled(session: aiohttp.ClientSession) -> None:
    async with FakeDiscord(privileged_intents=MESSAGE_CONTENT | 2) as fake:
        fake.add_guild("g").add_member("someone")
        gateway = await connect(session, fake.gateway_url)
        await gateway.receive()
        await gateway.identify(fake.token, intents=INTENTS_DEFAULT | MESSAGE_CONTENT | 2)
        guild = await gateway.until("GUILD_CREATE")

    assert len(guild["d"]["members"]) == 3


async def test_anything_before_identify_closes_with_4003_and_bad_frames_with_4002(
    fake: FakeDiscord, session: aiohttp.ClientSession
) -> None:
    early = await connect(session, fake.gateway_url)
    await early.receive()
    await early.send(3, {"status": "online"})
    garbled = await connect(session, fake.gateway_url)
    await garbled.receive()
    await garbled.ws.send_str("{not json")
    old = await connect(session, fake.gateway_url, version="9")

    assert await early.closed_with() == 4003
    assert await garbled.closed_with() == 4002
    assert await old.closed_with() == 4012


async def test_resume_replays_what_was_missed_then_resumed(
    fake: FakeDiscord, world: World, http: RawClient, session: aiohttp.ClientSession
) -> None:
    await http.sync([IMAGINE_COMMAND])
    gateway = await connect(session, fake.gateway_url)
    await gateway.receive()
    ready = await gateway.identify(fake.token)
    last = (await gateway.until("GUILD_CREATE"))["s"]

    assert await fake.drop_gateway() == 1
    assert await gateway.closed_with() == 4000
    call = await fake.invoke_slash("imagine", {"prompt": "while away"}, user=world.alice, channel=world.general)
    assert call.delivered_by not in ("live", "replayed")
    resumed = await connect(session, ready["d"]["resume_gateway_url"])
    await resumed.receive()
    await resumed.send(6, {"token": fake.token, "session_id": ready["d"]["session_id"], "seq": last})
    replayed = await resumed.receive()
    marker = await resumed.receive()

    assert (replayed["t"], replayed["s"]) == ("INTERACTION_CREATE", last + 1)
    assert replayed["d"]["id"] == str(call.id)
    assert (marker["t"], marker["s"]) == ("RESUMED", last + 2)
    assert call.delivered_by == "replayed"
    connection = fake.gateway_connections[-1]
    assert connection.resumed
    assert connection.path == "/resume-gateway"
    assert fake.gateway_sessions[0].resumes == 1
    assert fake.gateway_sessions[0].event_names == ["READY", "GUILD_CREATE", "INTERACTION_CREATE", "RESUMED"]


async def test_an_unknown_session_cannot_resume(fake: FakeDiscord, session: aiohttp.ClientSession) -> None:
    gateway = await connect(session, fake.gateway_url)
    await gateway.receive()

    await gateway.send(6, {"token": fake.token, "session_id": "nope", "seq": 1})

    assert await gateway.receive() == {"op": 9, "d": False, "s": None, "t": None}


async def test_a_clean_close_by_the_client_ends_the_session(
    fake: FakeDiscord, world: World, http: RawClient, session: aiohttp.ClientSession
) -> None:
    await http.sync([IMAGINE_COMMAND])
    gateway = await connect(session, fake.gateway_url)
    await gateway.receive()
    ready = await gateway.identify(fake.token)

    await gateway.ws.close(code=1000)
    await fake.wait_for(lambda: fake.gateway_sessions[0].invalidated)
    call = await fake.invoke_slash("imagine", {"prompt": "nobody home"}, user=world.alice, channel=world.general)
    again = await connect(session, fake.gateway_url)
    await again.receive()
    await again.send(6, {"token": fake.token, "session_id": ready["d"]["session_id"], "seq": ready["s"]})

    assert call.delivered_by is None
    assert (await again.receive())["op"] == 9


async def test_interactions_go_to_the_newest_session(
    fake: FakeDiscord, world: World, http: RawClient, session: aiohttp.ClientSession
) -> None:
    await http.sync([IMAGINE_COMMAND])
    old = await connect(session, fake.gateway_url)
    await old.receive()
    await old.identify(fake.token)
    new = await connect(session, fake.gateway_url)
    await new.receive()
    await new.identify(fake.token)
    await new.until("GUILD_CREATE")

    call = await fake.invoke_slash("imagine", {"prompt": "p"}, user=world.alice, channel=world.general)
    event = await new.until("INTERACTION_CREATE")

    assert event["d"]["id"] == str(call.id)
    assert call.delivered_by == "live"
    assert call.dispatched_at is not None
    assert call.dispatched_at >= call.created_at


async def test_member_messages_arrive_without_content_unless_the_intent_allows(
    fake: FakeDiscord, world: World, session: aiohttp.ClientSession
) -> None:
    gateway = await connect(session, fake.gateway_url)
    await gateway.receive()
    await gateway.identify(fake.token)
    await gateway.until("GUILD_CREATE")

    await fake.post_message(world.general, world.alice, "hello there")
    await fake.post_message(world.general, world.alice, f"hi {fake.bot_user.mention}")
    plain = await gateway.until("MESSAGE_CREATE")
    mention = await gateway.until("MESSAGE_CREATE")

    assert plain["d"]["content"] == ""
    assert plain["d"]["guild_id"] == str(world.guild.id)
    assert mention["d"]["content"] == f"hi {fake.bot_user.mention}"


async def test_reconnect_and_invalid_session_controls(
    fake: FakeDiscord, world: World, session: aiohttp.ClientSession
) -> None:
    gateway = await connect(session, fake.gateway_url)
    await gateway.receive()
    await gateway.identify(fake.token)
    await gateway.until("GUILD_CREATE")

    assert fake.request_reconnect() == 1
    assert fake.invalidate_session(resumable=False) == 1

    assert (await gateway.receive())["op"] == 7
    assert await gateway.receive() == {"op": 9, "d": False, "s": None, "t": None}
    assert fake.gateway_sessions[0].invalidated


async def test_an_outage_holds_new_connections_until_it_ends(
    fake: FakeDiscord, world: World, session: aiohttp.ClientSession
) -> None:
    first = await connect(session, fake.gateway_url)
    await first.receive()

    async with fake.gateway_outage():
        assert await first.closed_with() == 4000
        waiting = await connect(session, fake.gateway_url)
        with pytest.raises(asyncio.TimeoutError):
            await waiting.receive(timeout=0.1)
    hello = await waiting.receive()

    assert hello["op"] == 10


async def test_shards_get_their_own_guilds_and_interactions(
    fake: FakeDiscord, http: RawClient, session: aiohttp.ClientSession
) -> None:
    even = fake.add_guild("Even", guild_id=(1000 << 22) | 1)
    odd = fake.add_guild("Odd", guild_id=(1001 << 22) | 1)
    channel = odd.add_text_channel("general")
    member = odd.add_member("alice")
    await http.sync([IMAGINE_COMMAND])
    shards = []
    for shard_id in (0, 1):
        gateway = await connect(session, fake.gateway_url)
        await gateway.receive()
        ready = await gateway.identify(fake.token, shard=[shard_id, 2])
        shards.append((gateway, ready))

    call = await fake.invoke_slash("imagine", {"prompt": "p"}, user=member, channel=channel)
    event = await shards[1][0].until("INTERACTION_CREATE")

    assert [g["id"] for g in shards[0][1]["d"]["guilds"]] == [str(even.id)]
    assert [g["id"] for g in shards[1][1]["d"]["guilds"]] == [str(odd.id)]
    assert shards[1][1]["d"]["shard"] == [1, 2]
    assert event["d"]["id"] == str(call.id)
    assert fake.gateway_sessions[0].event_names == ["READY", "GUILD_CREATE"]


async def test_guild_members_can_be_requested(fake: FakeDiscord, world: World, session: aiohttp.ClientSession) -> None:
    gateway = await connect(session, fake.gateway_url)
    await gateway.receive()
    await gateway.identify(fake.token)

    await gateway.send(8, {"guild_id": str(world.guild.id), "user_ids": [str(world.alice.id), "1"], "nonce": "n1"})
    chunk = await gateway.until("GUILD_MEMBERS_CHUNK")

    assert [m["user"]["username"] for m in chunk["d"]["members"]] == ["alice"]
    assert chunk["d"]["not_found"] == ["1"]
    assert chunk["d"]["nonce"] == "n1"


async def test_a_drop_without_a_close_frame_and_zstd_falls_back_to_text(
    fake: FakeDiscord, session: aiohttp.ClientSession
) -> None:
    gateway = await connect(session, fake.gateway_url, compress="zstd-stream")
    hello = await gateway.ws.receive(timeout=5.0)

    await fake.drop_gateway(code=None)
    after = await gateway.ws.receive(timeout=5.0)

    assert hello.type == aiohttp.WSMsgType.TEXT
    assert after.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.ERROR)
    assert fake.gateway_connections[0].close_code is None
    assert fake.gateway_connections[0].closed_by == "fake"

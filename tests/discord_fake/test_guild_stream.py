"""Guilds that stream in after READY (held, released, delayed), and a guild joined while connected."""

from __future__ import annotations

import aiohttp

from tests.discord_fake.conftest import IMAGINE_COMMAND, RawClient, World, connect
from tests.fakes.discord import FakeDiscord


async def test_a_held_guild_is_unavailable_while_its_interactions_already_arrive(
    fake: FakeDiscord, world: World, http: RawClient, session: aiohttp.ClientSession
) -> None:
    await http.sync([IMAGINE_COMMAND])
    artists = world.guild.add_role("Artists")
    carol = world.guild.add_member("carol", roles=[artists, world.admins])
    fake.hold_guild(world.guild)
    gateway = await connect(session, fake.gateway_url)
    await gateway.receive()

    ready = await gateway.identify(fake.token)
    call = await fake.invoke_slash("imagine", {"prompt": "early"}, user=carol, channel=world.general)
    interaction = await gateway.until("INTERACTION_CREATE")
    before_release = list(fake.gateway_sessions[0].event_names)
    assert fake.release_guild(world.guild) == 1
    guild_create = await gateway.until("GUILD_CREATE")

    assert ready["d"]["guilds"] == [{"id": str(world.guild.id), "unavailable": True}]
    assert before_release == ["READY", "INTERACTION_CREATE"]
    assert interaction["d"]["id"] == str(call.id)
    assert interaction["d"]["member"]["roles"] == [str(artists.id), str(world.admins.id)]
    assert guild_create["d"]["id"] == str(world.guild.id)
    # Streaming in is not a join: discord.py fires on_guild_available for "unavailable": false.
    assert guild_create["d"]["unavailable"] is False
    assert fake.release_guild(world.guild) == 0


async def test_a_held_guild_can_stream_in_after_a_delay(
    fake: FakeDiscord, world: World, session: aiohttp.ClientSession
) -> None:
    fake.hold_guild(world.guild, delay=0.05)
    gateway = await connect(session, fake.gateway_url)
    await gateway.receive()

    await gateway.identify(fake.token)
    guild_create = await gateway.until("GUILD_CREATE")

    assert guild_create["d"]["id"] == str(world.guild.id)
    assert guild_create["d"]["unavailable"] is False


async def test_a_guild_added_while_connected_is_a_join_with_its_channels(
    fake: FakeDiscord, world: World, session: aiohttp.ClientSession
) -> None:
    gateway = await connect(session, fake.gateway_url)
    await gateway.receive()
    await gateway.identify(fake.token)
    await gateway.until("GUILD_CREATE")

    joined = fake.add_guild("New server")
    joined.add_text_channel("general")
    welcome = joined.add_text_channel("welcome")
    joined.system_channel = welcome
    join = await gateway.until("GUILD_CREATE")
    later = joined.add_text_channel("later")
    channel_create = await gateway.until("CHANNEL_CREATE")

    assert join["d"]["id"] == str(joined.id)
    # No "unavailable" key: that is what makes it a join (discord.py's on_guild_join).
    assert "unavailable" not in join["d"]
    assert join["d"]["system_channel_id"] == str(welcome.id)
    assert [c["name"] for c in join["d"]["channels"]] == ["general", "welcome"]
    assert channel_create["d"]["id"] == str(later.id)
    assert fake.gateway_sessions[0].event_names.count("GUILD_CREATE") == 2


async def test_a_guild_added_before_any_session_is_simply_in_ready(
    fake: FakeDiscord, world: World, session: aiohttp.ClientSession
) -> None:
    other = fake.add_guild("Other server")
    other.system_channel = None
    gateway = await connect(session, fake.gateway_url)
    await gateway.receive()

    ready = await gateway.identify(fake.token)
    first = await gateway.until("GUILD_CREATE")
    second = await gateway.until("GUILD_CREATE")

    assert [g["id"] for g in ready["d"]["guilds"]] == [str(world.guild.id), str(other.id)]
    assert [first["d"]["unavailable"], second["d"]["unavailable"]] == [False, False]
    assert second["d"]["system_channel_id"] is None

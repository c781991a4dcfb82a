"""A real discord.py bot process (``tests/e2e/minimal_bot.py``) against the fake: the fake speaks discord.py.

One bot process serves the whole module (its start-up is the main cost); each test works on its own
interactions and asserts on what the fake recorded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from tests.discord_fake.conftest import IMAGINE_COMMAND, World, build_world, png_bytes
from tests.e2e.harness import ROOT, ScriptProcess
from tests.fakes.discord import (
    DID_NOT_RESPOND,
    CallbackType,
    FakeDiscord,
    InteractionRecord,
    InvocationRefused,
    Upload,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

MINIMAL_BOT = ROOT / "tests" / "e2e" / "minimal_bot.py"
START_TIMEOUT = 30.0
STEP_TIMEOUT = 10.0


@dataclass
class Running:
    fake: FakeDiscord
    world: World
    bot: ScriptProcess


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running() -> AsyncIterator[Running]:
    async with FakeDiscord() as fake:
        world = build_world(fake)
        env = {**fake.bot_env(), "MINIMAL_BOT_EXTRAS": "1"}
        async with ScriptProcess.start(MINIMAL_BOT, env=env) as bot:
            await bot.wait_for_line(r"^READY guilds=1$", START_TIMEOUT)
            yield Running(fake, world, bot)


async def imagine(
    running: Running,
    prompt: str,
    *,
    options: dict[str, object] | None = None,
    deadline: float | None = None,
    token_lifetime: float | None = None,
) -> InteractionRecord:
    """Alice runs /imagine in #general."""
    return await running.fake.invoke_slash(
        "imagine",
        {"prompt": prompt, **(options or {})},
        user=running.world.alice,
        channel=running.world.general,
        deadline=deadline,
        token_lifetime=token_lifetime,
    )


async def test_login_ready_and_guild_create(running: Running) -> None:
    fake = running.fake

    first_calls = [(r.method, r.route) for r in fake.requests[:3]]
    session = await fake.wait_for_session()
    sync = await fake.wait_for_sync()
    connection = fake.gateway_connections[0]

    assert first_calls == [
        ("GET", "/users/@me"),
        ("GET", "/oauth2/applications/@me"),
        ("PUT", "/applications/{application_id}/commands"),
    ]
    assert sync.time < session.created_at
    assert session.event_names[:2] == ["READY", "GUILD_CREATE"]
    assert session.identify["intents"] == 53575421
    # discord.py asks for zlib-stream transport compression; the fake speaks it.
    assert connection.compression == "zlib-stream"
    assert connection.heartbeats >= 1
    assert fake.unknown_routes == []


async def test_the_command_sync_payload_is_recorded(running: Running) -> None:
    sync = running.fake.command_syncs[0]
    commands = {c["name"]: c for c in sync.payload}

    assert sync.status == 200
    assert set(commands) == {"imagine", "Imagine from images", "Describe message", "quota"}
    imagine = commands["imagine"]
    options = {o["name"]: o for o in imagine["options"]}
    assert (options["prompt"]["min_length"], options["prompt"]["max_length"]) == (1, 4000)
    assert [c["value"] for c in options["size"]["choices"]] == ["1024x1024", "1536x1024", "1024x1536"]
    assert (options["n"]["min_value"], options["n"]["max_value"]) == (1, 4)
    assert options["image"]["type"] == 11
    # The hand-written payload the raw tests use says what discord.py says.
    for name, expected in {o["name"]: o for o in IMAGINE_COMMAND["options"]}.items():
        assert {k: options[name].get(k) for k in ("type", "required", "min_value", "max_value", "max_length")} == {
            k: expected.get(k) for k in ("type", "required", "min_value", "max_value", "max_length")
        }
    quota = commands["quota"]
    # discord.py sends a group's permissions as a number, a command's as a string; Discord takes both.
    assert str(quota["default_member_permissions"]) == "32"
    stored = next(c for c in running.fake.global_commands if c["name"] == "quota")
    assert stored["default_member_permissions"] == "32"
    assert quota["contexts"] == [0]
    assert commands["Imagine from images"]["type"] == 3


async def test_a_slash_command_is_deferred_in_time_then_edited_with_the_file(running: Running) -> None:
    fake = running.fake
    image = png_bytes(16, 9)

    call = await imagine(running, "a cat", options={"n": 2, "size": "1536x1024", "image": Upload(image, "cat.png")})
    await fake.wait_for(lambda: call.original is not None and call.original.edits, STEP_TIMEOUT)

    assert call.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    assert call.response_time is not None
    assert call.response_time < 3.0
    assert call.delivered_by == "live"
    original = call.original
    assert original is not None
    assert original.content == "done n=2 size=1536x1024"
    (attachment,) = original.attachments
    assert attachment.data == image
    assert (attachment.filename, attachment.content_type, attachment.width, attachment.height) == (
        "cat.png",
        "image/png",
        16,
        9,
    )
    assert original.mentions_nobody
    assert original.edits[0].allowed_mentions == {"parse": []}
    assert original.edits[0].via == "webhook"
    cdn = [r for r in fake.requests if r.path.startswith("/ephemeral-attachments/")]
    assert [r.status for r in cdn] == [200]


async def test_a_followup_after_the_edit_is_a_new_ephemeral_message(running: Running) -> None:
    call = await imagine(running, "followup please")

    await running.fake.wait_for(lambda: call.followups, STEP_TIMEOUT)

    (followup,) = call.followups
    assert followup is not call.original
    assert followup.ephemeral
    assert followup.content == f"follow-up for {call.id}"
    await running.bot.wait_for_line(rf"^FOLLOWUP {call.id} {followup.id}$", STEP_TIMEOUT)


async def test_an_ephemeral_reply(running: Running) -> None:
    call = await imagine(running, "ephemeral please")

    await running.fake.wait_for(lambda: call.original is not None and call.original.edits, STEP_TIMEOUT)

    assert call.callback is not None
    assert call.callback.ephemeral
    assert call.original is not None
    assert call.original.ephemeral
    assert call.original not in running.fake.channel_messages(running.world.general)


async def test_an_answer_after_the_deadline_is_unknown_and_the_member_saw_a_failure(running: Running) -> None:
    call = await imagine(running, "ack_delay=0.6", deadline=0.3)

    await running.bot.wait_for_line(rf"^ERROR {call.id} defer 404 10062$", STEP_TIMEOUT)

    assert call.failed
    assert call.failure == DID_NOT_RESPOND
    assert call.callback is None
    assert [c.error_code for c in call.refused_callbacks] == [10062]
    late = call.refused_callbacks[0].after_dispatch
    assert late is not None
    assert late > 0.3


async def test_an_expired_token_refuses_the_edit(running: Running) -> None:
    call = await imagine(running, "too late", token_lifetime=0.0)

    await running.bot.wait_for_line(rf"^ERROR {call.id} edit 401 50027$", STEP_TIMEOUT)

    assert call.acknowledged
    assert call.original is not None
    assert call.original.loading
    assert [r.error_code for r in call.refused_requests] == [50027]


async def test_a_429_with_via_is_retried_by_discord_py(running: Running) -> None:
    fake = running.fake
    injection = fake.inject_429("PATCH /webhooks/*/messages/@original", retry_after=0.3)

    call = await imagine(running, "rate limited")
    await fake.wait_for(lambda: call.original is not None and call.original.edits, STEP_TIMEOUT)

    edits = [r for r in fake.requests if r.method == "PATCH" and call.token in r.path]
    assert [r.status for r in edits] == [429, 200]
    assert edits[1].time - edits[0].time >= 0.3
    assert injection.hits == 1


async def test_a_channel_message_nonce_repeat_returns_the_same_message_through_discord_py(running: Running) -> None:
    fake = running.fake
    fake.inject_429("POST /channels/*/messages", retry_after=0.1)

    call = await imagine(running, "channel")
    match = await running.bot.wait_for_line(rf"^CHANNEL {call.id} (\d+) (\d+)$", STEP_TIMEOUT)

    assert match.group(1) == match.group(2)
    posts = [r for r in fake.requests if r.route == "/channels/{channel_id}/messages" and r.method == "POST"]
    assert [r.status for r in posts] == [429, 200, 200]
    assert posts[1].body["nonce"] == posts[2].body["nonce"]
    assert posts[1].body["enforce_nonce"] is True
    copies = [m for m in fake.channel_messages(running.world.general) if m.content == f"channel copy for {call.id}"]
    assert len(copies) == 1


async def test_a_dropped_gateway_is_resumed_and_missed_interactions_replayed(running: Running) -> None:
    fake, bot = running.fake, running.bot
    start = len(bot.lines)
    connections = len(fake.gateway_connections)

    async with fake.gateway_outage():
        call = await imagine(running, "during the outage")
        assert call.delivered_by not in ("live", "replayed")
    await bot.wait_for_line(r"^RESUMED$", STEP_TIMEOUT, start=start)
    await fake.wait_for(lambda: call.original is not None and call.original.edits, STEP_TIMEOUT)

    assert call.delivered_by == "replayed"
    new = fake.gateway_connections[connections:]
    assert [c.resumed for c in new] == [True]
    assert new[0].path == "/resume-gateway"
    assert fake.gateway_connections[connections - 1].close_code == 4000
    assert len(fake.gateway_sessions) == 1


async def test_a_context_menu_modal_and_a_button(running: Running) -> None:
    fake, world = running.fake, running.world
    refs = [Upload(png_bytes(3, 3), "one.png"), Upload(png_bytes(5, 5), "two.png")]
    target = await fake.post_message(world.general, world.bob, "my references", files=refs)

    menu = await fake.invoke_message_context("Imagine from images", target, user=world.alice)
    await fake.wait_for(lambda: menu.modal, STEP_TIMEOUT)
    submit = await fake.submit_modal(menu, {"prompt": "a dog"})
    await fake.wait_for(lambda: submit.original is not None and submit.original.edits, STEP_TIMEOUT)
    assert submit.original is not None
    click = await fake.click(submit.original, "minimal:again", world.bob)
    await fake.wait_for(lambda: click.callback, STEP_TIMEOUT)

    assert menu.callback_type is CallbackType.MODAL
    assert menu.modal is not None
    assert menu.modal["custom_id"] == "imagine-from-images"
    assert [a.data for a in submit.original.versions[1].attachments] == [r.data for r in refs]
    assert submit.original.versions[1].content == "prompt: a dog"
    assert click.callback_type is CallbackType.UPDATE_MESSAGE
    assert submit.original.content == f"again by {world.bob.id}"
    assert submit.original.components == ()


async def test_a_subcommand_with_default_member_permissions(running: Running) -> None:
    fake, world = running.fake, running.world

    with pytest.raises(InvocationRefused):
        await fake.invoke_slash("quota set", {"scope": "member", "limit": 3}, user=world.alice, channel=world.general)
    call = await fake.invoke_slash(
        "quota set", {"scope": "member", "limit": 3}, user=world.admin, channel=world.general
    )
    await running.bot.wait_for_line(rf"^QUOTA {call.id} member 3$", STEP_TIMEOUT)

    assert call.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
    assert call.original is not None
    assert call.original.ephemeral
    assert call.original.content == "quota member 3"


async def test_discord_py_reads_a_forwards_files_in_its_snapshots(running: Running) -> None:
    fake, world = running.fake, running.world
    original = await fake.post_message(
        world.general, world.bob, "the boat", files=[Upload(png_bytes(), "boat.png"), Upload(png_bytes(), "sea.png")]
    )
    forward = await fake.post_forward(world.general, world.alice, original)

    menu = await fake.invoke_message_context("Describe message", forward, user=world.alice)
    line = await running.bot.wait_for_line(rf"^DESCRIBE {menu.id} (.*)$", STEP_TIMEOUT)

    # The forward's own content and files are empty; discord.py finds the files in message_snapshots.
    assert line.group(1) == "content='' files=[] snapshot_files=[['boat.png', 'sea.png']]"


async def test_a_server_joined_while_connected_fires_on_guild_join_and_no_other_does(running: Running) -> None:
    fake, world, bot = running.fake, running.world, running.bot

    joined = fake.add_guild("Joined later")
    joined.add_text_channel("rules")
    welcome = joined.add_text_channel("welcome")
    joined.system_channel = welcome
    await bot.wait_for_line(rf"^GUILD_JOIN {joined.id} system_channel={welcome.id}$", STEP_TIMEOUT)

    assert bot.matching(rf"^GUILD_AVAILABLE {world.guild.id}$")
    assert [m.group(0) for m in bot.matching(r"^GUILD_JOIN .*")] == [
        f"GUILD_JOIN {joined.id} system_channel={welcome.id}"
    ]


async def test_nothing_unknown_was_asked(running: Running) -> None:
    assert running.fake.unknown_routes == []
    assert not running.bot.matching(r"Traceback|ERROR discord")


async def test_the_floor_bot_syncs_one_command_and_stops_cleanly_on_sigterm() -> None:
    async with FakeDiscord() as fake:
        world = build_world(fake)
        async with ScriptProcess.start(MINIMAL_BOT, env=fake.bot_env()) as bot:
            await bot.wait_for_line(r"^READY", START_TIMEOUT)
            call = await fake.invoke_slash("imagine", {"prompt": "floor"}, user=world.alice, channel=world.general)
            await fake.wait_for(lambda: call.original is not None and call.original.edits, STEP_TIMEOUT)

            code = await bot.terminate()

        assert [c["name"] for c in fake.command_syncs[0].payload] == ["imagine"]
        assert call.original is not None
        assert call.original.attachments[0].data == b"minimal-bot floor"
        assert code == 0
        assert bot.lines[-1] == "CLOSED"
        # Client.close() asks for 1000, but its reader task closes first with 4000: the session stays resumable.
        closed = fake.gateway_connections[-1]
        assert (closed.closed_by, closed.close_code) == ("client", 4000)
        assert not fake.gateway_sessions[-1].invalidated

"""Start-up of the real ``python bot.py``: the command sync (what and when), ``.env``, configuration errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import BOT_SCRIPT, START_TIMEOUT, World, delivered, process_env
from tests.e2e.harness import ScriptProcess
from tests.fakes._discord_commands import allowed_in_bot_dm, allowed_in_guild
from tests.fakes.discord import InvocationRefused, Permission

pytestmark = pytest.mark.e2e

MANAGE_GUILD = str(int(Permission.MANAGE_GUILD))
STRING, INTEGER, SUB_COMMAND, USER, ROLE, ATTACHMENT = 3, 4, 1, 6, 8, 11
SUB_COMMAND_GROUP, BOOLEAN = 2, 5
SLASH, MESSAGE_MENU = 1, 3


def by_name(items: list[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in items or []}


def choice_values(option: dict[str, Any]) -> list[Any]:
    return [choice["value"] for choice in option.get("choices") or []]


def assert_imagine_command(command: dict[str, Any]) -> None:
    """``/imagine prompt:<text> [aspect] [resolution] [n] [model] [image]…[image4]`` as docs/members.md says."""
    assert command["type"] == SLASH
    assert command.get("default_member_permissions") is None  # every member
    options = command["options"]
    assert [o["name"] for o in options] == [
        "prompt",
        "aspect",
        "resolution",
        "n",
        "model",
        "image",
        "image2",
        "image3",
        "image4",
    ]
    prompt, aspect, resolution, n, model, *images = options
    assert (prompt["type"], prompt["required"], prompt["min_length"], prompt["max_length"]) == (STRING, True, 1, 4000)
    assert (aspect["type"], resolution["type"], model["type"]) == (STRING, STRING, STRING)
    assert not any(option.get("required") for option in (aspect, resolution, model))
    assert choice_values(aspect) == [
        "1:1",
        "3:2",
        "2:3",
        "4:3",
        "3:4",
        "5:4",
        "4:5",
        "16:9",
        "9:16",
        "2:1",
        "1:2",
        "21:9",
        "9:21",
    ]
    assert choice_values(resolution) == ["1k", "2k", "4k"]
    assert model.get("autocomplete") is True
    assert (n["type"], n.get("required", False), n["min_value"], n["max_value"]) == (INTEGER, False, 1, 4)
    for image in images:
        assert image["type"] == ATTACHMENT
        assert not image.get("required")


def assert_member_commands(commands: dict[tuple[str, int], dict[str, Any]]) -> None:
    """``/usage``, ``/show job:<reference>`` (suggested as typed), ``/history`` and ``/help``: for every member."""
    for name in ("usage", "show", "history", "help"):
        assert commands[name, SLASH].get("default_member_permissions") is None, name
    (job,) = commands["show", SLASH]["options"]
    assert (job["name"], job["type"], job["required"], job.get("autocomplete")) == ("job", STRING, True, True)
    assert not commands["history", SLASH].get("options")
    assert not commands["help", SLASH].get("options")


def assert_admin_group(command: dict[str, Any]) -> None:
    """Admin commands: Manage Server by default, servers only."""
    assert command["type"] == SLASH
    assert str(command["default_member_permissions"]) == MANAGE_GUILD


def assert_quota_command(command: dict[str, Any]) -> None:
    """``/quota set|role|member|clear|show|reset|usage|export`` with the options docs/admins.md lists."""
    assert_admin_group(command)
    subcommands = by_name(command["options"])
    assert set(subcommands) == {"set", "role", "member", "clear", "show", "reset", "usage", "export"}
    assert all(sub["type"] == SUB_COMMAND for sub in subcommands.values())
    set_options = by_name(subcommands["set"]["options"])
    assert choice_values(set_options["scope"]) == ["server", "member"]
    assert set_options["limit"]["type"] == INTEGER
    assert set_options["limit"]["min_value"] == 0
    assert choice_values(set_options["period"]) == ["day", "week", "month"]
    role_options = by_name(subcommands["role"]["options"])
    assert role_options["role"]["type"] == ROLE
    assert role_options["role"]["required"]
    assert choice_values(role_options["period"]) == ["day", "week", "month"]
    member_options = by_name(subcommands["member"]["options"])
    assert (member_options["member"]["type"], member_options["member"]["required"]) == (USER, True)
    assert (member_options["limit"]["min_value"], member_options["limit"]["required"]) == (0, True)
    assert choice_values(member_options["period"]) == ["day", "week", "month"]
    clear_options = by_name(subcommands["clear"]["options"])
    assert choice_values(clear_options["scope"]) == ["server", "member", "role", "member_override"]
    assert [choice["name"] for choice in clear_options["scope"]["choices"]][-1] == "member-override"
    assert not clear_options["role"].get("required")
    assert clear_options["member"]["type"] == USER
    assert not clear_options["member"].get("required")
    member = by_name(subcommands["reset"]["options"])["member"]
    assert member["type"] == USER
    assert member["required"]


def assert_settings_command(command: dict[str, Any]) -> None:
    """``/imagine-settings``: a group with ``show``, a maximum n of 1 to 4, and the content controls' groups."""
    assert_admin_group(command)
    subcommands = by_name(command["options"])
    assert "show" in subcommands
    groups = {name: by_name(sub["options"]) for name, sub in subcommands.items() if sub["type"] == SUB_COMMAND_GROUP}
    assert set(groups["blocked-words"]) == {"add", "remove", "list"}
    assert set(groups["spoiler"]) == {"on", "off"}
    assert set(groups["mod-log"]) == {"on", "off"}
    exempt = by_name(groups["spoiler"]["on"]["options"])["exempt-nsfw"]
    assert (exempt["type"], exempt.get("required", False)) == (BOOLEAN, False)
    integer_ranges = [
        (o["min_value"], o["max_value"])
        for sub in subcommands.values()
        for o in sub.get("options") or []
        if o["type"] == INTEGER and "max_value" in o
    ]
    assert (1, 4) in integer_ranges


def assert_synced_payload(payload: list[dict[str, Any]]) -> None:
    commands = {(c["name"], c["type"]): c for c in payload}
    assert set(commands) == {
        ("imagine", SLASH),
        ("usage", SLASH),
        ("show", SLASH),
        ("history", SLASH),
        ("help", SLASH),
        ("quota", SLASH),
        ("imagine-settings", SLASH),
        ("Imagine from images", MESSAGE_MENU),
    }
    assert_imagine_command(commands["imagine", SLASH])
    assert_member_commands(commands)
    assert_quota_command(commands["quota", SLASH])
    assert_settings_command(commands["imagine-settings", SLASH])
    for command in payload:
        # Everything works in servers only: not one command is offered in the bot's DMs.
        assert allowed_in_guild(command), command["name"]
        assert not allowed_in_bot_dm(command), command["name"]
        if command["type"] == SLASH:
            assert 1 <= len(command["description"]) <= 100


async def test_the_first_start_syncs_every_command_with_its_constraints(world: World) -> None:
    async with world.bot() as bot:
        (sync,) = world.discord.command_syncs
        assert sync.status == 200
        assert sync.guild_id is None  # global commands
        assert_synced_payload(sync.payload)
        assert [c["name"] for c in world.discord.global_commands] == [c["name"] for c in sync.payload]
        # Discord's client enforces what was synced: a member without Manage Server is not offered /quota.
        alice = world.member("alice")
        with pytest.raises(InvocationRefused, match="default_member_permissions"):
            await world.discord.invoke_slash("quota show", user=alice, channel=world.channel)
        with pytest.raises(InvocationRefused, match="4000"):
            await world.imagine(alice, "x" * 4001)
        with pytest.raises(InvocationRefused, match=r"1\.\.4"):
            await world.imagine(alice, "a cat", n=5)
        # An admin is, and gets an answer.
        call = await world.discord.invoke_slash("quota show", user=world.admin, channel=world.channel)
        await world.discord.wait_for(lambda: call.acknowledged or call.failed, START_TIMEOUT)
        assert call.callback is not None
        assert call.callback.ephemeral
        assert await bot.terminate() == 0


async def test_a_restart_syncs_again_only_with_sync(world: World) -> None:
    async with world.bot() as first:
        assert len(world.discord.command_syncs) == 1
        assert await first.terminate() == 0

    async with world.bot() as second:
        # Connected: the setup hook, where a sync would happen, is behind it.
        assert len(world.discord.command_syncs) == 1
        assert second.matching("not syncing")
        assert await second.terminate() == 0

    async with world.bot("--sync") as forced:
        assert len(world.discord.command_syncs) == 2
        first_sync, forced_sync = world.discord.command_syncs
        assert forced_sync.status == 200
        assert forced_sync.payload == first_sync.payload
        assert await forced.terminate() == 0


async def test_start_up_warns_once_when_nothing_bounds_the_bill(world: World) -> None:
    warning = "nothing bounds the ToAPIs bill"
    # Open to every server (no ALLOWED_GUILD_IDS) and GLOBAL_DAILY_LIMIT=none: one line says so, and what to set.
    async with world.bot(GLOBAL_DAILY_LIMIT="none") as unbounded:
        (line,) = unbounded.matching(warning)
        assert "ALLOWED_GUILD_IDS" in line.string
        assert "GLOBAL_DAILY_LIMIT" in line.string
        assert await unbounded.terminate() == 0
    async with world.bot(GLOBAL_DAILY_LIMIT="1000") as bounded:
        assert bounded.matching(warning) == []
        assert await bounded.terminate() == 0


async def test_two_values_in_the_env_file_of_the_working_directory_are_enough(world: World) -> None:
    # docs/operators.md: copy .env.example to .env, fill in two values, python bot.py. (The fakes' addresses stay in the
    # environment: they stand for Discord's and ToAPIs' defaults.) The database goes to its default place.
    env = world.env()
    secrets = {name: env.pop(name) for name in ("DISCORD_TOKEN", "TOAPIS_API_KEY")}
    del env["DATABASE_URL"]
    (world.directory / ".env").write_text("".join(f"{name}={value}\n" for name, value in secrets.items()))

    bot = await world.start_bot(env=env)

    # The fake opens a session only for the right token, and the REST calls before it carried it too.
    assert len(world.discord.gateway_sessions) == 1
    assert world.discord.command_syncs[0].status == 200
    assert (world.directory / "data" / "imagine.db").is_file()
    assert await bot.terminate() == 0


async def test_a_token_discord_rejects_is_named_and_exits_non_zero(world: World) -> None:
    env = process_env(world.env(DISCORD_TOKEN="not-the-token-of-this-bot"))

    async with ScriptProcess.start(BOT_SCRIPT, env=env, cwd=world.directory, inherit_env=False) as bot:
        code = await bot.wait_exit(START_TIMEOUT)

    assert code not in (0, None)
    assert bot.matching("DISCORD_TOKEN")
    assert not bot.matching("Traceback")
    assert not bot.matching("not-the-token-of-this-bot")
    assert world.discord.gateway_sessions == []
    assert [r.status for r in world.discord.requests_to("GET", "/users/@me")] == [401]


async def test_shard_count_and_shard_ids_decide_which_shards_the_process_runs(world: World) -> None:
    # Ids whose bits 22 and up put one server on each of two shards.
    even = world.discord.add_guild("Shard zero", guild_id=(1000 << 22) | 1)
    odd = world.discord.add_guild("Shard one", guild_id=(1001 << 22) | 1)
    lanterns = odd.add_text_channel("lanterns")
    olga = odd.add_member("olga")
    sessions = world.discord.gateway_sessions

    async with world.bot(SHARD_COUNT="2", SHARD_IDS="0") as zero:
        assert [s.shard for s in sessions] == [(0, 2)]
        assert sessions[0].handles(even.id)
        # Commands are global: shard 0's process syncs them.
        assert len(world.discord.command_syncs) == 1
        assert await zero.terminate() == 0

    async with world.bot(SHARD_COUNT="2", SHARD_IDS="1") as one:
        assert [s.shard for s in sessions[1:]] == [(1, 2)]
        assert sessions[1].handles(odd.id)
        assert not sessions[1].handles(even.id)
        assert len(world.discord.command_syncs) == 1
        # It serves its own shard's servers.
        call = await world.imagine(olga, "a paper lantern", channel=lanterns)
        await world.discord.wait_for(lambda: delivered(call), START_TIMEOUT, what="the images")
        assert await one.terminate() == 0


def config_env(tmp_path: Path, **env: str) -> dict[str, str]:
    """A complete configuration but for what ``env`` changes (``""`` removes a variable)."""
    base = {
        "DISCORD_TOKEN": "a-token",
        "TOAPIS_API_KEY": "sk-a-key",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'imagine.db'}",
    }
    merged = base | env
    return process_env({name: value for name, value in merged.items() if value})


async def run_to_exit(tmp_path: Path, env: dict[str, str]) -> ScriptProcess:
    async with ScriptProcess.start(BOT_SCRIPT, env=env, cwd=tmp_path, inherit_env=False) as bot:
        await bot.wait_exit(START_TIMEOUT)
    return bot


async def test_without_discord_token_it_says_so_and_exits_non_zero(tmp_path: Path) -> None:
    assert "DISCORD_TOKEN" not in config_env(tmp_path, DISCORD_TOKEN="")

    bot = await run_to_exit(tmp_path, config_env(tmp_path, DISCORD_TOKEN=""))

    assert bot.returncode not in (0, None)
    output = "\n".join(bot.lines)
    assert "DISCORD_TOKEN is required" in output
    assert "Traceback" not in output
    assert not (tmp_path / "data").exists()  # nothing was opened or created


async def test_every_configuration_problem_is_named_in_one_message(tmp_path: Path) -> None:
    env = config_env(
        tmp_path,
        DISCORD_TOKEN="",
        TOAPIS_API_KEY="your-toapis-api-key",
        TOAPIS_POLL_INTERVAL="fast",
        MAX_CONCURRENT_JOBS="0",
    )

    bot = await run_to_exit(tmp_path, env)

    assert bot.returncode not in (0, None)
    output = "\n".join(bot.lines)
    for name in ("DISCORD_TOKEN", "TOAPIS_API_KEY", "TOAPIS_POLL_INTERVAL", "MAX_CONCURRENT_JOBS"):
        assert name in output, name
    assert "Traceback" not in output
    assert not (tmp_path / "data").exists()

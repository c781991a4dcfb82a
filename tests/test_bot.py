"""bot.py, the composition root: configuration errors, the extensions, the command tree and its sync, SIGTERM."""

from __future__ import annotations

import ast
import contextlib
import logging
import os
import signal
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yarl
from multidict import CIMultiDict, CIMultiDictProxy

import bot as bot_module
from settings import load_settings
from storage.jobs import JobState
from storage.store import Storage
from tests.cogs.conftest import FAST_ENV, running_world
from tests.e2e.harness import ROOT, ScriptProcess, wait_until
from tests.fakes.discord import FakeChannel, FakeDiscord, FakeMember
from tests.fakes.toapis import Endpoint, FakeToAPIs, Timeline

BOT = ROOT / "bot.py"
START_TIMEOUT = 30.0


def clean_env(**variables: str) -> dict[str, str]:
    """An environment with nothing of Imagine's in it (nor a virtualenv's or the user's Python settings)."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **variables}


# -- configuration errors ------------------------------------------------------------------------------------


async def test_a_missing_configuration_is_one_clear_message_and_a_non_zero_exit(tmp_path: Path) -> None:
    assert not (tmp_path / ".env").exists()
    env = clean_env(TOAPIS_POLL_INTERVAL="soon", DATABASE_URL="mysql://db/imagine", LOG_LEVEL="LOUD")

    async with ScriptProcess.start(BOT, env=env, cwd=tmp_path, inherit_env=False) as process:
        code = await process.wait_exit(START_TIMEOUT)

    output = "\n".join(process.lines)
    assert code not in (0, None), output
    assert "Traceback" not in output
    for variable in ("DISCORD_TOKEN", "TOAPIS_API_KEY", "TOAPIS_POLL_INTERVAL", "DATABASE_URL", "LOG_LEVEL"):
        assert variable in output, (variable, output)
    # One message: a headline, then one line per problem.
    assert output.count("Imagine cannot start") == 1
    assert output.splitlines()[0].startswith("Imagine cannot start: the configuration has 5 problem(s)")
    assert len([line for line in output.splitlines() if line.startswith("  - ")]) == 5


async def test_a_configuration_error_never_shows_the_secrets_it_was_given(tmp_path: Path) -> None:
    token, key = "MTIzNDU2Nzg5MDEy.secret-discord-token", "sk-live-secret-toapis-key-0123456789"
    env = clean_env(DISCORD_TOKEN=token, TOAPIS_API_KEY=key, MAX_CONCURRENT_JOBS="many")

    async with ScriptProcess.start(BOT, env=env, cwd=tmp_path, inherit_env=False) as process:
        code = await process.wait_exit(START_TIMEOUT)

    output = "\n".join(process.lines)
    assert code != 0
    assert "MAX_CONCURRENT_JOBS" in output
    assert token not in output
    assert key not in output
    assert "Traceback" not in output


# -- extensions ----------------------------------------------------------------------------------------------


def modules_with_setup() -> set[str]:
    """`cogs.x` for every module of cogs/ that defines a module-level `async def setup`."""
    found = set()
    for path in sorted((ROOT / "cogs").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(node, ast.AsyncFunctionDef) and node.name == "setup" for node in tree.body):
            found.add(f"cogs.{path.stem}")
    return found


def test_every_cog_with_a_setup_is_an_extension() -> None:
    found = modules_with_setup()
    assert "cogs.imagine" in found
    assert set(bot_module.EXTENSIONS) == found
    assert len(bot_module.EXTENSIONS) == len(set(bot_module.EXTENSIONS))


async def test_every_extension_loads_and_the_commands_are_synced_once(tmp_path: Path) -> None:
    async with running_world(tmp_path, {}) as world:
        assert set(world.bot.extensions) == set(bot_module.EXTENSIONS)
        assert len(world.discord.command_syncs) == 1
        assert world.discord.global_commands

        # A second start with the same command tree does not sync again...
        await world.restart()
        assert set(world.bot.extensions) == set(bot_module.EXTENSIONS)
        assert len(world.discord.command_syncs) == 1

        # ...and `python bot.py --sync` always does.
        await world.restart(force_sync=True)
        first, forced = world.discord.command_syncs
        assert (first.status, forced.status) == (200, 200)
        assert (first.guild_id, forced.guild_id) == (None, None)
        assert forced.payload == first.payload


# -- the command tree ----------------------------------------------------------------------------------------


def options_of(command: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {option["name"]: option for option in command.get("options", [])}


def guild_only(command: dict[str, Any]) -> bool:
    contexts = command.get("contexts")
    if contexts is not None:
        return list(contexts) == [0]
    return command.get("dm_permission") is False


async def test_the_synced_imagine_command_matches_the_product(tmp_path: Path) -> None:
    async with running_world(tmp_path, {}) as world:
        commands = world.discord.global_commands

    (imagine,) = [c for c in commands if c["name"] == "imagine" and c.get("type", 1) == 1]
    assert guild_only(imagine)
    assert 0 < len(imagine["description"]) < 100
    options = options_of(imagine)
    assert list(options) == ["prompt", "aspect", "resolution", "n", "model", "image", "image2", "image3", "image4"]

    prompt = options["prompt"]
    assert (prompt["type"], prompt.get("required")) == (3, True)
    assert (prompt.get("min_length"), prompt.get("max_length")) == (1, 4000)

    aspect = options["aspect"]
    assert aspect["type"] == 3
    assert not aspect.get("required", False)
    assert [choice["value"] for choice in aspect["choices"]] == [
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
    assert [choice["name"] for choice in aspect["choices"]][:3] == ["Square 1:1", "Landscape 3:2", "Portrait 2:3"]
    resolution = options["resolution"]
    assert [(choice["name"], choice["value"]) for choice in resolution["choices"]] == [
        ("1K (standard)", "1k"),
        ("2K", "2k"),
        ("4K", "4k"),
    ]
    model = options["model"]
    assert (model["type"], model.get("autocomplete")) == (3, True)
    assert not model.get("required", False)

    n = options["n"]
    assert n["type"] == 4
    assert not n.get("required", False)
    assert (n.get("min_value"), n.get("max_value")) == (1, 4)

    for name in ("image", "image2", "image3", "image4"):
        assert options[name]["type"] == 11, name  # ATTACHMENT
        assert not options[name].get("required", False)
    for option in options.values():
        assert 0 < len(option["description"]) <= 100


async def test_every_synced_command_is_guild_only_with_a_short_description(tmp_path: Path) -> None:
    async with running_world(tmp_path, {}) as world:
        commands = world.discord.global_commands

    assert commands
    for command in commands:
        assert guild_only(command), command["name"]
        if command.get("type", 1) == 1:
            assert 0 < len(command["description"]) < 100, command["name"]


# -- the real process against the fakes ------------------------------------------------------------------------


@dataclass
class Fakes:
    api: FakeToAPIs
    discord: FakeDiscord
    channel: FakeChannel
    member: FakeMember
    env: dict[str, str]


@contextlib.asynccontextmanager
async def fakes_for_a_process(tmp_path: Path, **env: str) -> AsyncIterator[Fakes]:
    """Both fakes, a server with #general and alice, and the environment that points `python bot.py` at them."""
    async with FakeToAPIs() as api, FakeDiscord() as fake:
        guild = fake.add_guild("Test server")
        channel = guild.add_text_channel("general")
        member = guild.add_member("alice")
        full_env = clean_env(
            **fake.bot_env(),
            TOAPIS_API_KEY=api.api_key,
            TOAPIS_BASE_URL=api.base_url,
            DATABASE_URL=f"sqlite:///{tmp_path / 'imagine.db'}",
            **(FAST_ENV | env),
        )
        yield Fakes(api, fake, channel, member, full_env)


@pytest.mark.e2e
async def test_sigterm_exits_cleanly_and_the_next_start_delivers_the_job_once(tmp_path: Path) -> None:
    async with fakes_for_a_process(tmp_path) as world:
        api, fake, channel = world.api, world.discord, world.channel
        api.queue_timeline(Timeline.never_ends())

        async with ScriptProcess.start(BOT, env=world.env, cwd=tmp_path, inherit_env=False) as first:
            await fake.wait_for_session(START_TIMEOUT)
            call = await fake.invoke_slash(
                "imagine", {"prompt": "through a restart"}, user=world.member, channel=channel
            )
            task = await wait_until(lambda: next(iter(api.tasks.values()), None), START_TIMEOUT, what="a task")
            # Looked up: the task id is stored (the job is RUNNING), the case this test is about.
            await api.wait_for(lambda: len(api.requests_to(Endpoint.LOOKUP)) > 0, START_TIMEOUT)
            first.send_signal(signal.SIGTERM)
            code = await first.wait_exit(START_TIMEOUT)
            output = "\n".join(first.lines)
            assert code == 0, output
            assert "Received SIGTERM" in output
            assert "1 unfinished job(s) stay stored" in output
            assert "Imagine stopped" in output

        async with await Storage.open(f"sqlite:///{tmp_path / 'imagine.db'}") as store:
            (job,) = await store.jobs.list_unfinished()
            assert job.state is JobState.RUNNING
            assert job.task_id == task.id

        api.end_task(task.id)
        async with ScriptProcess.start(BOT, env=world.env, cwd=tmp_path, inherit_env=False) as second:
            await fake.wait_for_session(START_TIMEOUT, after=1)
            await fake.wait_for(
                lambda: call.original is not None and bool(call.original.attachments), START_TIMEOUT, what="images"
            )
            assert await second.terminate(START_TIMEOUT) == 0
        assert "Traceback" not in "\n".join(second.lines)

        assert call.original is not None
        assert sum(1 for version in call.original.versions if version.attachments) == 1
        assert list(api.tasks) == [task.id]
        assert fake.channel_messages(channel) == [call.original]
        # The second start found the command tree unchanged.
        assert len(fake.command_syncs) == 1


@pytest.mark.e2e
async def test_no_secret_reaches_the_output_even_at_debug_level(tmp_path: Path) -> None:
    async with fakes_for_a_process(tmp_path, LOG_LEVEL="DEBUG") as world:
        async with ScriptProcess.start(BOT, env=world.env, cwd=tmp_path, inherit_env=False) as process:
            await world.discord.wait_for_session(START_TIMEOUT)
            call = await world.discord.invoke_slash(
                "imagine", {"prompt": "a secretive cat"}, user=world.member, channel=world.channel
            )
            await world.discord.wait_for(
                lambda: call.original is not None and bool(call.original.attachments), START_TIMEOUT, what="images"
            )
            assert await process.terminate(START_TIMEOUT) == 0

        output = "\n".join(process.lines)
        assert "DEBUG" in output  # the level took effect
        secrets = {
            "Discord token": world.discord.token,
            "ToAPIs key": world.api.api_key,
            "interaction token": call.token,
        }
        leaked = [what for what, secret in secrets.items() if secret in output]
        assert leaked == []


@pytest.mark.parametrize(
    ("extra", "warned"),
    [
        ({"GLOBAL_DAILY_LIMIT": "none"}, True),
        ({}, False),  # the default caps the bill at 1,000 images a day
        ({"GLOBAL_DAILY_LIMIT": "none", "ALLOWED_GUILD_IDS": "123456789012345678"}, False),
    ],
)
def test_start_up_warns_once_when_nothing_bounds_the_bill(
    extra: dict[str, str], warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(
        {"DISCORD_TOKEN": "discord-token-value", "TOAPIS_API_KEY": "sk-toapis-value", **extra}, dotenv=False
    )
    with caplog.at_level(logging.WARNING, logger="imagine"):
        bot_module.warn_if_the_bill_is_unbounded(settings)
    lines = [r.getMessage() for r in caplog.records if "nothing bounds the ToAPIs bill" in r.getMessage()]
    assert len(lines) == (1 if warned else 0)


@pytest.mark.parametrize(
    ("url", "folder"),
    [
        ("sqlite:///data/imagine.db", Path("data")),
        ("sqlite:////var/lib/imagine/imagine.db", Path("/var/lib/imagine")),
        ("sqlite:///:memory:", None),  # no file to keep anything beside
        ("postgresql://imagine@db/imagine", None),
    ],
)
def test_the_spool_and_the_heartbeat_are_kept_beside_an_sqlite_file_else_in_the_temporary_folder(
    url: str, folder: Path | None
) -> None:
    settings = load_settings(
        {"DISCORD_TOKEN": "discord-token-value", "TOAPIS_API_KEY": "sk-toapis-value", "DATABASE_URL": url},
        dotenv=False,
    )
    config = bot_module.pipeline_config(settings, shared_database=settings.shared_database)
    temporary = Path(tempfile.gettempdir())
    assert config.spool_dir == (folder / "spool" if folder else temporary / "imagine-spool")
    assert bot_module.heartbeat_path(settings) == (
        folder / "heartbeat.json" if folder else temporary / "imagine-heartbeat.json"
    )


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_url_that_holds_an_interaction_or_webhook_token_is_logged_without_it(
    log_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # aiohttp's ClientResponseError (a malformed or oversized answer from Discord or a proxy) names the URL it
    # asked, and a reporter's edit asks one holding the interaction's token: log.exception printed it whole.
    token = "aW50ZXJhY3Rpb246MTIz.Interaction-T0ken_value"
    webhook_token = "Operator-Webhook-T0ken_value"
    url = yarl.URL(f"https://discord.com/api/v10/webhooks/123456789012345678/{token}/messages/@original")
    error = aiohttp.ClientResponseError(
        aiohttp.RequestInfo(url, "PATCH", CIMultiDictProxy(CIMultiDict()), url), (), status=400, message="Bad header"
    )
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        bot_module.configure_logging("INFO", log_format)
        log = logging.getLogger("generation.delivery")
        try:
            raise error
        except aiohttp.ClientResponseError:
            log.exception("job 1: delivery raised")
        log.warning("posting to https://discord.com/api/webhooks/123456789012345678/%s failed", webhook_token)
        log.warning("callback https://discord.com/api/v10/interactions/123456789012345678/%s/callback", token)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    out = capsys.readouterr().out
    assert "webhooks/123456789012345678/***/messages/@original" in out  # which request failed still shows
    assert token not in out
    assert webhook_token not in out

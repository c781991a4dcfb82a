"""What an operator sees of the real ``python bot.py``: ``--check`` (all fine, a refused key or token, the
database or the network down), the ready line, the start-up probe, one line for an unreachable Discord or
database, ``--health`` (heartbeat and /healthz), ``/metrics`` moving as a job runs, and JSON logs."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

import i18n
from tests.e2e.conftest import (
    BOT_SCRIPT,
    START_TIMEOUT,
    STEP_TIMEOUT,
    World,
    delivered,
    first_response,
    process_env,
)
from tests.e2e.harness import ScriptProcess, wait_until
from tests.fakes.discord import Permission
from tests.fakes.toapis import Endpoint

pytestmark = pytest.mark.e2e

# docs/operators.md: what the invite asks for.
INVITE_PERMISSIONS = int(
    Permission.VIEW_CHANNEL
    | Permission.SEND_MESSAGES
    | Permission.SEND_MESSAGES_IN_THREADS
    | Permission.EMBED_LINKS
    | Permission.ATTACH_FILES
    | Permission.READ_MESSAGE_HISTORY
)


def closed_port() -> int:
    """A port nothing listens on (bound, then released): connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def run_bot(world: World, *args: str, **env: str) -> ScriptProcess:
    """``python bot.py args...`` with the world's environment and ``env`` on top, run to its exit."""
    merged = {name: value for name, value in world.env(**env).items() if value}
    process = await ScriptProcess.spawn(
        BOT_SCRIPT, env=process_env(merged), args=args, cwd=world.directory, inherit_env=False
    )
    world.processes.append(process)  # its output is checked for secrets when the world closes
    await process.wait_exit(START_TIMEOUT)
    return process


def marks(process: ScriptProcess) -> dict[str, str]:
    """The check's lines by subject: "✓", "✗" or "⚠"."""
    found = {}
    for line in process.lines:
        match = re.match(r"^([✓✗⚠]) ([^:]+): ", line)
        if match:
            found[match.group(2)] = match.group(1)
    return found


def no_traceback(process: ScriptProcess) -> None:
    assert not process.matching("Traceback"), process.output()


def forget_wrong_key_requests(world: World) -> None:
    """The wrong key was the point of the test: its requests must not fail the world's route check."""
    world.api.requests[:] = [r for r in world.api.requests if r.key_ok is not False]


# -- --check ---------------------------------------------------------------------------------------------------


async def test_check_when_everything_is_fine_then_after_a_start(world: World) -> None:
    elsewhere = world.discord.add_guild("Someone else's server")
    allowed = {"ALLOWED_GUILD_IDS": str(world.guild.id)}

    first = await run_bot(world, "--check", **allowed)

    assert first.returncode == 0, first.output()
    assert marks(first) == {
        "configuration": "✓",
        "database": "✓",
        "ToAPIs": "✓",
        "models": "✓",
        "balance": "✓",
        "webhooks": "✓",
        "Discord": "✓",
        "application": "✓",
        "servers": "⚠",  # worth knowing, not in the way
        "commands": "✓",
    }
    assert first.matching(r"^✓ webhooks: off: tasks are followed by polling")
    assert first.matching(r"^✓ database: .*does not exist yet: the first start creates it")
    assert first.matching(r"^✓ models: gpt-image-2 offered to this key")
    assert first.matching(r"^✓ balance: 1,000 credits \(\$5\.00\) left")
    assert first.matching(rf"^✓ Discord: the token is valid: application Imagine \({world.discord.application_id}\)")
    assert first.matching(rf"^⚠ servers: in 2 servers, 1 of them off ALLOWED_GUILD_IDS .*{elsewhere.id}")
    assert first.matching(r"^✓ commands: the first start syncs them")
    (invite,) = first.matching(r"^Invite: (\S+)$")
    assert invite.group(1) == (
        f"https://discord.com/oauth2/authorize?client_id={world.discord.application_id}"
        f"&scope=bot+applications.commands&permissions={INVITE_PERMISSIONS}"
    )
    assert first.lines[-1] == "Ready to run."
    no_traceback(first)
    # Nothing was created or changed: no database, no command sync, no gateway session.
    assert not world.database.exists()
    assert world.discord.command_syncs == []
    assert world.discord.gateway_sessions == []
    # The image models were asked for with ?type=image (the plain list holds text models only).
    assert [r.query for r in world.api.requests_to(Endpoint.MODELS)][-1] == {"type": "image"}

    async with world.bot(**allowed) as bot:
        assert await bot.terminate() == 0
    second = await run_bot(world, "--check", **allowed)

    assert second.returncode == 0, second.output()
    assert second.matching(r"^✓ database: .* answers, schema version \d+ \(current\)")
    assert second.matching(r"^✓ commands: unchanged since the last sync")
    assert len(world.discord.command_syncs) == 1


async def test_check_names_a_refused_key_and_a_refused_token(world: World) -> None:
    process = await run_bot(world, "--check", TOAPIS_API_KEY="sk-not-the-key-0000", DISCORD_TOKEN="not-the-token")

    assert process.returncode == 1
    assert process.matching(r"^✗ ToAPIs: the key was refused .*Check TOAPIS_API_KEY")
    assert process.matching(r"^✗ Discord: the token was refused\. Reset it in the Developer Portal")
    assert process.lines[-1] == "2 problem(s) to fix before Imagine can run."
    no_traceback(process)
    output = "\n".join(process.lines)
    assert "sk-not-the-key-0000" not in output
    assert "not-the-token" not in output
    forget_wrong_key_requests(world)


async def test_check_names_every_configured_model_the_key_is_not_offered(world: World) -> None:
    # The default model is offered; another model the operator lists is not: --check must look at all of them.
    world.api.models = ("gpt-image-2",)

    process = await run_bot(world, "--check", TOAPIS_MODELS="gpt-image-2,flux-2-pro")

    assert process.returncode == 1, process.output()
    assert process.matching(r"^✗ models: not offered to this key: flux-2-pro \(it offers: gpt-image-2\)")
    assert process.lines[-1] == "1 problem(s) to fix before Imagine can run."
    no_traceback(process)


async def test_check_of_a_process_without_shard_0_says_shard_0s_process_syncs_the_commands(world: World) -> None:
    shards = {"SHARD_COUNT": "2", "SHARD_IDS": "1"}

    before = await run_bot(world, "--check", **shards)
    async with world.bot(**shards) as bot:
        assert await bot.terminate() == 0
    after = await run_bot(world, "--check", **shards)

    assert before.matching(r"^✓ commands: the first start of shard 0's process syncs them$"), before.output()
    # That process started and synced nothing: its own next start will not either.
    assert world.discord.command_syncs == []
    assert after.matching(r"^✓ commands: the next start of shard 0's process syncs them \(global\)$"), after.output()
    assert (before.returncode, after.returncode) == (0, 0)


async def test_check_with_the_database_unreachable(world: World) -> None:
    url = f"postgresql://imagine:db-secret-pw@127.0.0.1:{closed_port()}/imagine"

    process = await run_bot(world, "--check", DATABASE_URL=url)

    assert process.returncode == 1
    assert process.matching(r"^✗ database: could not connect to PostgreSQL: .*Check DATABASE_URL")
    assert marks(process)["ToAPIs"] == "✓"
    assert marks(process)["Discord"] == "✓"
    assert process.matching(r"^⚠ commands: cannot tell without the database")
    assert "db-secret-pw" not in "\n".join(process.lines)
    no_traceback(process)


async def test_check_with_the_network_down(world: World) -> None:
    process = await run_bot(
        world,
        "--check",
        TOAPIS_BASE_URL=f"http://127.0.0.1:{closed_port()}/v1",
        DISCORD_API_BASE_URL="http://discord.invalid/api/v10",  # a name that never resolves
    )

    assert process.returncode == 1
    assert process.matching(
        r"^✗ ToAPIs: cannot reach http://127\.0\.0\.1:\d+/v1: .*Check the network and TOAPIS_BASE_URL"
    )
    assert process.matching(r"^✗ Discord: cannot reach http://discord\.invalid/api/v10 .*Check the network")
    assert marks(process)["database"] == "✓"
    no_traceback(process)


async def test_check_with_a_configuration_problem(world: World) -> None:
    process = await run_bot(world, "--check", TOAPIS_API_KEY="", MAX_CONCURRENT_JOBS="many")

    assert process.returncode == 1
    assert process.matching(r"^✗ configuration: TOAPIS_API_KEY is required")
    assert process.matching(r"^✗ configuration: MAX_CONCURRENT_JOBS must be a whole number")
    assert world.api.requests == []
    no_traceback(process)


# -- start-up --------------------------------------------------------------------------------------------------


async def test_start_says_ready_once_with_the_invite(world: World) -> None:
    async with world.bot() as bot:
        line = await bot.wait_for_line(r"Ready as (\S+) \((\d+)\) in (\d+) servers?, (shard 0 of 1); invite: (\S+)")
        assert line.groups()[:4] == ("Imagine", str(world.discord.bot_user.id), "1", "shard 0 of 1")
        assert f"client_id={world.discord.application_id}" in line.group(5)
        assert bot.matching(r"ToAPIs answers and accepts the key")
        assert await bot.terminate() == 0
    assert len(bot.matching("Ready as")) == 1


async def test_a_rejected_key_is_an_error_at_start_and_requests_are_refused_at_once(world: World) -> None:
    async with world.bot(TOAPIS_API_KEY="sk-revoked-key-1234") as bot:
        await bot.wait_for_line(r"ERROR .*ToAPIs rejected TOAPIS_API_KEY", STEP_TIMEOUT)
        call = await world.imagine(world.member("alice"), "a cat")
        await first_response(world, call)
        assert call.callback is not None
        assert call.callback.ephemeral
        assert call.original is not None
        assert call.original.content == i18n.translate("refusal.unavailable", i18n.SOURCE)
        assert world.api.requests_to(Endpoint.SUBMIT) == []
        assert await bot.terminate() == 0
    assert "sk-revoked-key-1234" not in "\n".join(bot.lines)
    forget_wrong_key_requests(world)


async def test_discord_or_the_database_unreachable_at_start_is_one_line_and_exit_1(world: World) -> None:
    discord_down = await run_bot(world, DISCORD_API_BASE_URL=f"http://127.0.0.1:{closed_port()}/api/v10")
    database_down = await run_bot(world, DATABASE_URL=f"postgresql://imagine:pw@127.0.0.1:{closed_port()}/imagine")

    assert discord_down.returncode == 1
    assert discord_down.matching(r"ERROR .*Cannot reach Discord at http://127\.0\.0\.1:\d+/api/v10 .*check the network")
    no_traceback(discord_down)
    assert database_down.returncode == 1
    assert database_down.matching(r"ERROR .*Database problem: could not connect to PostgreSQL")
    no_traceback(database_down)


# -- health ----------------------------------------------------------------------------------------------------


def heartbeat(world: World) -> dict[str, Any] | None:
    path = world.directory / "heartbeat.json"
    try:
        found: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return found


async def test_health_reads_the_heartbeat_the_bot_keeps(world: World) -> None:
    async with world.bot() as bot:
        await wait_until(lambda: (heartbeat(world) or {}).get("ok"), START_TIMEOUT, what="a healthy heartbeat")
        healthy = await run_bot(world, "--health")
        assert healthy.returncode == 0, healthy.output()
        assert healthy.lines == ["healthy: connected, the database answers, jobs are taken"]
        assert await bot.terminate() == 0

    stopped = await run_bot(world, "--health")
    assert stopped.returncode == 1
    assert stopped.lines == ["unhealthy: the bot stopped"]

    (world.directory / "heartbeat.json").write_text(
        json.dumps({"ok": True, "reason": "fine", "time": time.time() - 300})
    )
    stale = await run_bot(world, "--health")
    assert stale.returncode == 1
    assert stale.matching(r"^unhealthy: the heartbeat is \d+ s old")


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def test_healthz_follows_the_gateway_and_health_probes_it(world: World) -> None:
    port = closed_port()
    async with world.bot(METRICS_PORT=str(port)) as bot:
        await bot.wait_for_line(rf"Health and metrics on http://127\.0\.0\.1:{port} ")
        healthz = f"http://127.0.0.1:{port}/healthz"

        async def status_is(expected: int) -> dict[str, Any] | None:
            status, body = await get(healthz)
            return json.loads(body) if status == expected else None

        report = await wait_until(lambda: status_is(200), START_TIMEOUT, what="/healthz 200")
        assert report == {
            "status": "ok",
            "ok": True,
            "reason": "connected, the database answers, jobs are taken",
            "gateway": True,
            "database": True,
            "pipeline": True,
            "breaker_open": False,
        }
        assert (await run_bot(world, "--health", METRICS_PORT=str(port))).returncode == 0

        async with world.discord.gateway_outage():
            down = await wait_until(lambda: status_is(503), STEP_TIMEOUT, what="/healthz 503")
            assert down["gateway"] is False
            assert down["reason"] == "the Discord gateway is not connected"
            probe = await run_bot(world, "--health", METRICS_PORT=str(port))
            assert probe.returncode == 1
            assert "the Discord gateway is not connected" in probe.output()

        await wait_until(lambda: status_is(200), START_TIMEOUT, what="/healthz 200 after the resume")
        assert await bot.terminate() == 0


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics page, parsed by prometheus_client's own parser."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: Mapping[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_parse_and_move_as_a_job_runs(world: World) -> None:
    port = closed_port()
    async with world.bot(METRICS_PORT=str(port)) as bot:
        await bot.wait_for_line(r"Health and metrics on ")
        url = f"http://127.0.0.1:{port}/metrics"
        await wait_until(lambda: world.api.requests_to(Endpoint.BALANCE), STEP_TIMEOUT, what="the balance read")
        status, text = await get(url)
        assert status == 200
        before = samples(text)
        assert value(before, "imagine_jobs_total", outcome="completed") == 0
        assert value(before, "imagine_toapis_balance_credits") == 1000

        alice = world.member("alice")
        call = await world.imagine(alice, "a lighthouse at dusk", n=2)
        await world.discord.wait_for(lambda: delivered(call), STEP_TIMEOUT, what="the images")
        job_id = await world.submitted_job("a lighthouse at dusk")
        await world.finished_row(job_id)

        async def counted() -> dict[Any, float] | None:
            found = samples((await get(url))[1])
            return found if value(found, "imagine_jobs_total", outcome="completed") == 1 else None

        after = await wait_until(counted, STEP_TIMEOUT, what="the completed job counted")
        assert value(after, "imagine_images_reserved_total") == 2
        assert value(after, "imagine_images_refunded_total") == 0
        assert value(after, "imagine_jobs_total", outcome="task_failed") == 0
        assert value(after, "imagine_upstream_latency_seconds_count", endpoint="submit") == 1
        assert value(after, "imagine_upstream_latency_seconds_count", endpoint="lookup") >= 1
        assert value(after, "imagine_upstream_latency_seconds_count", endpoint="download") >= 2
        assert value(after, "imagine_lookups_per_job_count") == 1
        lookups = len(world.api.requests_to(Endpoint.LOOKUP))
        assert value(after, "imagine_lookups_per_job_sum") == lookups
        assert value(after, "imagine_task_duration_seconds_count", model="gpt-image-2", resolution="1k") == 1
        assert value(after, "imagine_ack_latency_seconds_count") == 1
        assert value(after, "imagine_queue_depth") == 0
        assert value(after, "imagine_jobs_in_flight") == 0
        assert value(after, "imagine_breaker_open") == 0
        # No label carries a prompt, a user, a server or a job.
        labels = {label for key in after for _, label in key[1]}
        for private in ("lighthouse", str(alice.user.id), str(world.guild.id), job_id):
            assert not any(private in label for label in labels), private
        assert await bot.terminate() == 0


async def test_json_logs_parse_and_carry_the_job(world: World) -> None:
    async with world.bot(LOG_FORMAT="json") as bot:
        call = await world.imagine(world.member("alice"), "a paper crane")
        await world.discord.wait_for(lambda: delivered(call), STEP_TIMEOUT, what="the images")
        job_id = await world.submitted_job("a paper crane")
        await world.finished_row(job_id)
        await bot.wait_for_line(rf"job {job_id} delivered")
        assert await bot.terminate() == 0

    records = [json.loads(line) for line in bot.lines if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(record) for record in records)
    about_the_job = [record for record in records if record.get("job") == job_id]
    assert any(record["message"].startswith(f"job {job_id} accepted") for record in about_the_job)
    delivered_record = next(record for record in about_the_job if "delivered" in record["message"])
    assert delivered_record["guild"] == str(world.guild.id)
    assert delivered_record["shard"] == 0
    assert delivered_record["logger"] == "generation.delivery"


def test_heartbeat_path_is_beside_the_sqlite_database(tmp_path: Path) -> None:
    import bot as bot_module
    from settings import load_settings

    base = {"DISCORD_TOKEN": "t", "TOAPIS_API_KEY": "k"}
    sqlite = load_settings(base | {"DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'imagine.db'}"})
    assert bot_module.heartbeat_path(sqlite) == tmp_path / "data" / "heartbeat.json"
    shared = load_settings(base | {"DATABASE_URL": "postgresql://db/x", "SHARD_COUNT": "2", "SHARD_IDS": "1"})
    assert bot_module.heartbeat_path(shared).name == "imagine-heartbeat-1.json"

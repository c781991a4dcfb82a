"""Discord's rules the fake holds the bot to, through `python bot.py`: roles read from the interaction while a
server's data streams in, alerts posted once with several shard processes, channels the bot cannot post in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from storage.store import Storage
from tests.e2e.conftest import (
    STEP_TIMEOUT,
    World,
    delivered,
    first_response,
    open_world,
    progress_versions,
    settled,
)
from tests.fakes.discord import CallbackType, FakeChannel, InteractionRecord, Overwrite, Permission
from tests.fakes.toapis import Endpoint, Fault, Timeline
from tests.storage.conftest import fresh_schema

pytestmark = [pytest.mark.e2e]


async def last_word(world: World, call: InteractionRecord) -> str:
    """What the member was told: the refusal at once, or the follow-up after the defer."""
    await first_response(world, call)
    if call.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE:
        assert call.callback is not None
        assert call.callback.data is not None
        return str(call.callback.data["content"])
    followup = await world.discord.wait_for(lambda: call.followups[-1] if call.followups else None, STEP_TIMEOUT)
    return followup.content


async def test_a_role_limit_holds_for_an_interaction_that_arrives_before_its_servers_data(tmp_path: Path) -> None:
    async with open_world(tmp_path / "bot") as world:
        limited = world.guild.add_role("Limited")
        lea = world.guild.add_member("lea", roles=[limited])
        async with world.bot():
            answer = await world.discord.invoke_slash(
                "quota role", {"role": limited, "limit": 1}, user=world.admin, channel=world.channel
            )
            await first_response(world, answer)
        # The next start: the server's data comes late, and Lea's requests arrive before it.
        world.discord.hold_guild(world.guild)
        async with world.bot():
            first = await world.imagine(lea, "a cat")
            await world.discord.wait_for(lambda: delivered(first), STEP_TIMEOUT, what="the first image")
            second = await world.imagine(lea, "another cat")
            text = await last_word(world, second)
            world.discord.release_guild(world.guild)

        assert text.startswith(f"You have reached the limit of your role <@&{limited.id}> for today (1 image).")
        assert len(world.submits("another cat")) == 0


async def job_in_a_channel_the_bot_may_not_post_in(world: World, prompt: str, *, dms_open: bool) -> tuple[str, Any]:
    """A member asks in a channel where the bot may not post; the job outlives its reply (the token expires)."""
    deny = Overwrite(world.guild.bot_role, deny=int(Permission.SEND_MESSAGES))
    quiet = world.guild.add_text_channel("quiet", overwrites=[deny])
    ivy = world.member("ivy")
    world.discord.refuse_dms(ivy, refuse=not dms_open)
    world.api.on_prompt(prompt, Timeline.never_ends(progress=40))
    call = await world.imagine(ivy, prompt, channel=quiet)
    job_id = await world.submitted_job(prompt)
    (task,) = world.api.tasks_for(job_id)
    # The reply says where the images will go once it can no longer be edited.
    await world.discord.wait_for(
        lambda: any("direct message" in str(v.embeds) for v in progress_versions(call)), STEP_TIMEOUT, what="the note"
    )
    world.discord.expire_token(call)
    world.api.end_task(task.id)
    return job_id, (ivy, quiet, call)


async def test_a_job_that_outlives_its_reply_in_a_channel_the_bot_may_not_post_in_reaches_the_member_by_dm(
    world: World,
) -> None:
    async with world.bot():
        job_id, (ivy, quiet, _call) = await job_in_a_channel_the_bot_may_not_post_in(
            world, "a lantern in the fog", dms_open=True
        )
        row = await world.finished_row(job_id)

        assert (row["status"], row["images"]) == ("completed", 1)
        (dm,) = [m for m in world.discord.channel_messages(world.discord.dm_channel(ivy)) if m.attachments]
        assert dm.content == f"Your images from <#{quiet.id}> are ready."
        # Nothing went to the channel itself (only the interaction's own reply is there).
        assert not [m for m in world.discord.channel_messages(quiet) if m.attachments]
        assert world.ledger_images(job_id) == 1


async def test_a_result_neither_the_channel_nor_the_dms_take_is_refunded_and_kept(world: World) -> None:
    async with world.bot():
        job_id, (ivy, quiet, _call) = await job_in_a_channel_the_bot_may_not_post_in(
            world, "a lantern in the rain", dms_open=False
        )
        row = await world.finished_row(job_id)

        assert (row["status"], row["images"]) == ("failed", 0)
        assert str(row["error"]).startswith("undeliverable")
        assert world.ledger_images(job_id) == 0  # they received nothing: nothing is counted
        kept = world.rows("SELECT position, mime_type FROM kept_results WHERE job_id = ?", job_id)
        assert kept == [{"position": 0, "mime_type": "image/png"}]
        assert not [m for m in world.discord.channel_messages(quiet) if m.attachments]

        # Kept for the member: /show posts them (an interaction's reply needs no permission in the channel),
        # and nobody else may.
        other = await world.discord.invoke_slash("show", {"job": job_id[:8]}, user=world.member("jay"), channel=quiet)
        await world.discord.wait_for(lambda: settled(other), STEP_TIMEOUT, what="the refusal")
        assert not delivered(other)
        shown = await world.discord.invoke_slash("show", {"job": job_id[:8]}, user=ivy, channel=quiet)
        await world.discord.wait_for(lambda: delivered(shown), STEP_TIMEOUT, what="the kept images")
        assert shown.original is not None
        (task,) = world.api.tasks_for(job_id)
        assert [a.data for a in shown.original.attachments] == [world.api.result_png(task.id, 1)]


async def test_a_late_job_in_a_channel_the_bot_may_not_post_in_shows_its_result_in_the_reply_while_it_lives(
    world: World,
) -> None:
    """Late past GENERATION_TIMEOUT but well within the token's 15 minutes: the reply is the one place everyone
    sees the result (a channel post is refused), so it gets the images even with the member's DMs closed, and the
    late notice promises no mention in the channel."""
    prompt = "a slow lantern"
    async with world.bot(GENERATION_TIMEOUT="0.3"):
        deny = Overwrite(world.guild.bot_role, deny=int(Permission.SEND_MESSAGES))
        quiet = world.guild.add_text_channel("quiet", overwrites=[deny])
        ivy = world.member("ivy")
        world.discord.refuse_dms(ivy)
        world.api.on_prompt(prompt, Timeline.never_ends(progress=40))
        call = await world.imagine(ivy, prompt, channel=quiet)
        job_id = await world.submitted_job(prompt)
        (task,) = world.api.tasks_for(job_id)

        def late_notices() -> list[str]:
            return [
                str(v.embeds[0].get("description"))
                for v in progress_versions(call)
                if v.embeds and v.embeds[0].get("title") == "Taking longer than usual"
            ]

        await world.discord.wait_for(late_notices, STEP_TIMEOUT, what="the late notice")
        world.api.end_task(task.id)
        row = await world.finished_row(job_id)

        assert (row["status"], row["images"]) == ("completed", 1)
        assert call.original is not None
        assert [a.data for a in call.original.attachments] == [world.api.result_png(task.id, 1)]
        assert world.ledger_images(job_id) == 1
        assert "direct message" in late_notices()[-1]
        assert "mention you" not in late_notices()[-1]


async def test_an_alert_reaches_each_server_from_its_own_shard_and_the_operator_once_with_two_processes(
    world: World,
) -> None:
    """Two processes, one shard each, sharing PostgreSQL as docker-compose.sharded.yml deploys them, each finds
    at start-up that ToAPIs rejects the key: each server's log channel hears it once, from the process that runs
    its shard, and the operator's webhook once in all (docs/operators.md, Alerts). Skipped without
    TEST_POSTGRES_URL."""
    async with fresh_schema() as url:
        # One server on each shard of two: a snowflake's shard is (id >> 22) % 2.
        other_shard = 1 - (world.guild.id >> 22) % 2
        other = world.discord.add_guild("Second server", guild_id=((1_000_000 + other_shard) << 22) | 5)
        log_channels = {guild.id: guild.add_text_channel("bot-log") for guild in (world.guild, other)}
        logs = list(log_channels.values())
        operators = world.guild.add_text_channel("operators")
        async with await Storage.open(url) as store:
            for guild_id, channel in log_channels.items():
                await store.guild_settings.set_log_channel(guild_id, channel.id)
        world.api.fail(Endpoint.MODELS, Fault.unauthorized(), times=None)

        def texts(channel: FakeChannel) -> list[str]:
            return [m.content for m in world.discord.channel_messages(channel)]

        common = {
            "DATABASE_URL": url,
            "SHARD_COUNT": "2",
            "OPERATOR_ALERT_WEBHOOK_URL": world.discord.add_channel_webhook(operators),
        }
        first, second = logs
        async with world.bot(**common, SHARD_IDS=str(1 - other_shard)):
            # Each server hears it from the process of its shard: first this one's, then the other's.
            await world.discord.wait_for(lambda: texts(first), STEP_TIMEOUT, what="the first server's alert")
            async with world.bot(**common, SHARD_IDS=str(other_shard)):
                await world.discord.wait_for(lambda: texts(second), STEP_TIMEOUT, what="the second server's alert")
                world.api.clear_faults()
                # Each process posts its alerts in order, the operator's first: once both servers read the
                # all-clear, and so does the operator, every post of both processes is made.
                await world.discord.wait_for(
                    lambda: all("works again" in " ".join(texts(c)) for c in [*logs, operators]),
                    STEP_TIMEOUT,
                    what="the all-clear",
                )

        for channel in logs:
            # Two posts, the alert and the all-clear: the process of the other shard never tried to post here.
            assert len([r for r in world.discord.requests if f"/channels/{channel.id}/messages" in r.path]) == 2
            key, back = texts(channel)
            assert key.startswith("⚠️ Generation is paused by a problem the bot's owner must fix.")
            assert back.startswith("✅")
        told = texts(operators)
        assert len(told) == 2, told  # once in all, by whichever process claimed the burst
        assert "TOAPIS_API_KEY" in told[0]
        assert "works again" in told[1]

"""Where the result goes when the reply cannot take it: a late job, and a Discord that refuses for a while."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import STEP_TIMEOUT, World, progress_versions
from tests.fakes.discord import MessageRecord
from tests.fakes.toapis import Endpoint, Timeline

pytestmark = pytest.mark.e2e

GENERATION_TIMEOUT = 0.3
# Discord.py tries a request five times on 429; the pipeline makes five delivery attempts of that.
REFUSALS = 25
# A delivery retried with capped backoff gets through within a few seconds of Discord accepting again.
RECOVERY_TIMEOUT = 10.0


def results_in_channel(world: World) -> list[MessageRecord]:
    """Messages the bot posted in #general itself (not replies), with files."""
    return [m for m in world.discord.channel_messages(world.channel) if m.interaction is None and m.attachments]


def lookups(world: World, task_id: str) -> int:
    return sum(1 for r in world.api.requests_to(Endpoint.LOOKUP) if r.path.endswith(task_id))


async def test_a_late_job_is_told_so_and_its_requester_is_mentioned_with_the_result(world: World) -> None:
    kate = world.member("kate")
    prompt = "a slow glacier, for @everyone"
    world.api.on_prompt("slow glacier", Timeline.never_ends(progress=10))
    bot = await world.start_bot(env=world.env(GENERATION_TIMEOUT=str(GENERATION_TIMEOUT)))
    call = await world.imagine(kate, prompt)
    job_id = await world.submitted_job(prompt)
    (task,) = world.api.tasks_for(job_id)

    def told_late() -> bool:
        original = call.original
        return original is not None and "mention" in str(original.embeds).lower()

    await world.discord.wait_for(told_late, STEP_TIMEOUT, what="the late notice")
    # The bot keeps following the task; what the member was told stays.
    seen = lookups(world, task.id)
    await world.api.wait_for(lambda: lookups(world, task.id) >= seen + 2, STEP_TIMEOUT)
    assert told_late()
    world.api.end_task(task.id)

    (message,) = await world.discord.wait_for(lambda: results_in_channel(world), STEP_TIMEOUT, what="the result")
    row = await world.finished_row(job_id)

    assert row["status"] == "completed"
    assert [a.data for a in message.attachments] == [world.api.result_png(task.id, 1)]
    assert message.pings.users == frozenset({kate.id})
    assert not message.pings.everyone
    assert not message.pings.roles
    assert message.nonce
    assert results_in_channel(world) == [message]
    assert await bot.terminate() == 0


async def test_a_delivery_discord_refuses_for_a_while_goes_through_without_a_restart(world: World) -> None:
    lena = world.member("lena")
    prompt = "a stubborn mule on a mountain path"
    world.api.on_prompt("stubborn mule", Timeline.never_ends(progress=20))
    await world.start_bot()
    call = await world.imagine(lena, prompt)
    job_id = await world.submitted_job(prompt)
    (task,) = world.api.tasks_for(job_id)
    await world.discord.wait_for(lambda: progress_versions(call), STEP_TIMEOUT, what="a progress edit")
    # The result will go to the channel (the reply's token has expired), where Discord refuses it for a while.
    world.discord.expire_token(call)
    refusals = world.discord.inject_429("POST /channels/*/messages", times=REFUSALS, retry_after=0.01)
    world.api.end_task(task.id)
    await world.discord.wait_for(lambda: refusals.remaining == 0, STEP_TIMEOUT, what="the refusals")

    (message,) = await world.discord.wait_for(
        lambda: results_in_channel(world), RECOVERY_TIMEOUT, what="the result, once Discord accepts it"
    )

    assert [a.data for a in message.attachments] == [world.api.result_png(task.id, 1)]
    assert (await world.finished_row(job_id))["status"] == "completed"

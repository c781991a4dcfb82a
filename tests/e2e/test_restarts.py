"""A job survives the end of its process: SIGKILL (a crash) and SIGTERM (a clean stop), then ``python bot.py`` again.

Whatever the moment, the member gets one result, ToAPIs gets one task, and the usage log one row.
"""

from __future__ import annotations

import enum
import io
import signal
from typing import Any

import pytest
from PIL import Image

from tests.e2e.conftest import CHANNEL_MESSAGES, STEP_TIMEOUT, World, delivered, progress_versions
from tests.e2e.harness import wait_until
from tests.fakes.discord import InteractionRecord, Upload
from tests.fakes.toapis import Endpoint, Fault, Timeline

pytestmark = pytest.mark.e2e


class KillPoint(enum.Enum):
    """When the process dies."""

    UPLOADING = "a reference image is being uploaded"
    SUBMITTING = "the submit created the task upstream, but its answer has not arrived"
    RUNNING_ENDS_AFTER = "the task runs upstream, and ends after the restart"
    RUNNING_ENDS_WHILE_DOWN = "the task runs upstream, and ends while the bot is down"
    DOWNLOADING = "a result is half downloaded"


RUNNING = (KillPoint.RUNNING_ENDS_AFTER, KillPoint.RUNNING_ENDS_WHILE_DOWN)


def lookups(world: World, task_id: str, job_id: str) -> int:
    """Look-ups of a task (by its id or by the job's business id)."""
    return sum(1 for r in world.api.requests_to(Endpoint.LOOKUP) if r.path.endswith((task_id, job_id)))


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), "purple").save(buffer, format="PNG")
    return buffer.getvalue()


async def assert_delivered_once(world: World, call: InteractionRecord, job_id: str, n: int) -> None:
    """One upstream task, its images once in the member's reply, one completed usage row."""
    await world.discord.wait_for(lambda: delivered(call), STEP_TIMEOUT, what="the images")
    row = await world.finished_row(job_id)
    assert row["status"] == "completed"
    assert row["images"] == n
    (task,) = world.api.tasks_for(job_id)
    assert world.job_ids().count(job_id) == 1
    assert row["task_id"] == task.id
    original = call.original
    assert original is not None
    expected = [world.api.result_png(task.id, index) for index in range(1, n + 1)]
    assert [a.data for a in original.attachments] == expected
    # One result message, given its files once: no second copy in the reply's history or in the channel.
    assert world.bot_messages(with_files=True) == [original]
    assert len([v for v in original.versions if v.attachments]) == 1
    assert world.discord.channel_messages(world.channel) == [original]
    assert world.ledger_images(job_id) == n
    assert len(world.usage_rows(job_id)) == 1


async def reach(world: World, point: KillPoint, prompt: str) -> None:
    """Wait until the job is at ``point``."""
    api = world.api

    def held(endpoint: Endpoint) -> bool:
        # The fault is taken once the request has been read (the fake tells of nothing after that, hence the
        # polling): a request merely seen could still be cut short by the kill, leaving the fault armed for the
        # next process.
        return any(r.fault is not None for r in api.requests_to(endpoint))

    if point is KillPoint.UPLOADING:
        await wait_until(lambda: held(Endpoint.UPLOAD), STEP_TIMEOUT, what="the upload held")
    elif point is KillPoint.SUBMITTING:
        await api.wait_for(lambda: any(t.prompt == prompt for t in api.tasks.values()), STEP_TIMEOUT)
    elif point is KillPoint.DOWNLOADING:
        await wait_until(lambda: held(Endpoint.DOWNLOAD), STEP_TIMEOUT, what="the download held")
    else:
        job_id = await world.submitted_job(prompt)
        (task,) = api.tasks_for(job_id)
        # The bot follows the task: it stored the task id and is polling.
        await api.wait_for(lambda: lookups(world, task.id, job_id) >= 2, STEP_TIMEOUT)


@pytest.mark.parametrize("point", list(KillPoint), ids=lambda p: p.name.lower())
async def test_sigkill_mid_job_then_restart_delivers_it_exactly_once(world: World, point: KillPoint) -> None:
    alice = world.member("alice")
    prompt = "a lighthouse keeper's cat, watercolour"
    options: dict[str, Any] = {"n": 2}
    world.api.on_prompt("keeper", Timeline.never_ends(progress=40) if point in RUNNING else Timeline.instant())
    # Each fault holds the bot at its step for a minute: long enough to be killed there.
    if point is KillPoint.UPLOADING:
        options["image"] = Upload(png_bytes(), "reference.png", "image/png")
        world.api.fail(Endpoint.UPLOAD, Fault.slow(60))
    elif point is KillPoint.SUBMITTING:
        world.api.fail(Endpoint.SUBMIT, Fault.slow(60), after_effect=True)
    elif point is KillPoint.DOWNLOADING:
        world.api.fail(Endpoint.DOWNLOAD, Fault.stalled_body(60))
    first = await world.start_bot()

    call = await world.imagine(alice, prompt, **options)
    await reach(world, point, prompt)
    assert await first.kill() == -signal.SIGKILL
    assert not delivered(call)
    if point is KillPoint.RUNNING_ENDS_WHILE_DOWN:
        world.api.end_task(world.api.tasks_for(await world.submitted_job(prompt))[0].id)

    second = await world.start_bot()
    assert second.matching(r"Resumed 1 unfinished job")
    job_id = await world.submitted_job(prompt)
    if point is KillPoint.RUNNING_ENDS_AFTER:
        (task,) = world.api.tasks_for(job_id)
        await world.api.wait_for(lambda: lookups(world, task.id, job_id) >= 3, STEP_TIMEOUT)
        world.api.end_task(task.id)

    await assert_delivered_once(world, call, job_id, n=2)
    if point is KillPoint.UPLOADING:
        (submit,) = world.submits(prompt)
        assert len(submit["reference_images"]) == 1
    assert await second.terminate() == 0


async def test_sigkill_after_the_channel_post_a_long_restart_finds_the_post_and_posts_nothing_again(
    world: World,
) -> None:
    hana = world.member("hana")
    prompt = "a night ferry crossing the bay"
    world.api.on_prompt("night ferry", Timeline.never_ends(progress=50))
    # A late job's result goes to the channel (mentioning the member), then its reply is edited to point there.
    first = await world.start_bot(env=world.env(GENERATION_TIMEOUT="0.3"))
    call = await world.imagine(hana, prompt)
    job_id = await world.submitted_job(prompt)
    (task,) = world.api.tasks_for(job_id)

    def told_late() -> bool:
        return any(v.embeds and v.embeds[0].get("title") == "Taking longer than usual" for v in progress_versions(call))

    await world.discord.wait_for(told_late, STEP_TIMEOUT, what="the late notice")
    # The first edit of the reply after the channel post is held for a minute, and the process dies there:
    # posted, but not yet recorded as delivered.
    hold = world.discord.inject_429("PATCH /webhooks/*", retry_after=60, after="POST /channels/*/messages")
    world.api.end_task(task.id)
    await world.discord.wait_for(lambda: hold.hits, STEP_TIMEOUT, what="the edit after the channel post")
    (posted,) = world.bot_messages(with_files=True)
    assert await first.kill() == -signal.SIGKILL
    assert world.usage_rows(job_id) == []
    # Down longer than Discord remembers a nonce: a repeat with it would make a second message.
    world.discord.advance_time(10 * 60)

    second = await world.start_bot(env=world.env(GENERATION_TIMEOUT="0.3"))
    row = await world.finished_row(job_id)

    assert row["status"] == "completed"
    # The restarted bot looked at the channel's last messages first, found its post, and posted nothing.
    posts = [r for r in world.discord.requests_to("POST", CHANNEL_MESSAGES) if r.files]
    assert len(posts) == 1
    assert [r for r in world.discord.requests_to("GET", CHANNEL_MESSAGES) if r.status == 200]
    assert world.bot_messages(with_files=True) == [posted]
    assert [m for m in world.discord.channel_messages(world.channel) if m.attachments] == [posted]
    assert len(world.api.tasks_for(job_id)) == 1
    assert await second.terminate() == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
async def test_a_stop_signal_mid_job_exits_cleanly_and_the_next_start_finishes_it(
    world: World, signum: signal.Signals
) -> None:
    bob = world.member("bob")
    prompt = "a slow sunrise over the harbour"
    world.api.on_prompt("slow sunrise", Timeline.never_ends(progress=60))
    first = await world.start_bot()
    call = await world.imagine(bob, prompt)
    job_id = await world.submitted_job(prompt)
    (task,) = world.api.tasks_for(job_id)
    await world.api.wait_for(lambda: lookups(world, task.id, job_id) >= 2, STEP_TIMEOUT)

    first.send_signal(signum)
    assert await first.wait_exit(STEP_TIMEOUT) == 0

    assert first.matching(signum.name)
    assert first.matching(r"Imagine stopped")
    assert not first.matching("Traceback")
    # Stopped, not failed: nothing recorded as finished, nothing refunded, the member not told it failed.
    assert world.usage_rows(job_id) == []
    assert world.ledger_images(job_id) == 1
    assert call.original is not None
    assert not call.original.deleted
    assert "could not" not in str(call.original.embeds).lower()
    world.api.end_task(task.id)

    second = await world.start_bot()
    await assert_delivered_once(world, call, job_id, n=1)
    assert await second.terminate() == 0
    assert second.matching(r"Imagine stopped")


async def test_the_buttons_of_a_result_work_after_a_restart(world: World) -> None:
    carol = world.member("carol")
    prompt = "a paper boat on a puddle"
    first = await world.start_bot()
    call = await world.imagine(carol, prompt)
    await world.finished_row(await world.submitted_job(prompt))
    assert await first.terminate() == 0
    second = await world.start_bot()
    assert call.original is not None
    reroll = next(custom_id for custom_id in call.original.custom_ids() if custom_id.startswith("imagine:reroll:"))

    again = await world.discord.click(call.original, reroll, carol)
    await world.discord.wait_for(lambda: again.acknowledged or again.failed, STEP_TIMEOUT, what="an answer")

    assert not again.failed, again.failure
    await world.discord.wait_for(lambda: delivered(again), STEP_TIMEOUT, what="the re-rolled images")
    assert len(world.submits(prompt)) == 2
    assert await second.terminate() == 0

"""The line of waiting jobs, with MAX_CONCURRENT_JOBS=1: a waiting job shows its place, and its requester may
cancel it while nothing has been submitted."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import STEP_TIMEOUT, World, delivered
from tests.fakes.discord import MessageRecord
from tests.fakes.toapis import Timeline

pytestmark = pytest.mark.e2e


def description(message: MessageRecord | None) -> str:
    return " ".join(str(e.get("description") or "") for e in message.embeds) if message is not None else ""


def title(message: MessageRecord | None) -> str:
    return " ".join(str(e.get("title") or "") for e in message.embeds).lower() if message is not None else ""


async def test_a_waiting_job_shows_its_place_and_only_its_requester_can_cancel_it(world: World) -> None:
    alice, bob = world.member("alice"), world.member("bob")
    world.api.on_prompt("lighthouse beam", Timeline.never_ends(progress=20))
    bot = await world.start_bot(env=world.env(MAX_CONCURRENT_JOBS="1"))
    running = await world.imagine(alice, "a lighthouse beam sweeping the fog")
    running_job = await world.submitted_job("a lighthouse beam sweeping the fog")

    waiting = await world.imagine(bob, "a dog waiting its turn", n=2)

    def cancel_button() -> str | None:
        original = waiting.original
        ids = original.custom_ids() if original is not None else []
        return next((i for i in ids if i.startswith("imagine:cancel:")), None)

    cancel = await world.discord.wait_for(cancel_button, STEP_TIMEOUT, what="a Cancel button")
    assert waiting.original is not None
    assert re.search(r"\b1\b", description(waiting.original)), description(waiting.original)  # first in line
    (job,) = world.rows("SELECT id, state FROM jobs WHERE user_id = ?", bob.id)
    assert job["state"] == "queued"
    assert world.ledger_images(job["id"]) == 2

    # Not by someone else...
    refused = await world.discord.click(waiting.original, cancel, alice)
    await world.discord.wait_for(lambda: refused.acknowledged or refused.failed, STEP_TIMEOUT, what="an answer")
    assert refused.callback is not None
    assert refused.callback.ephemeral
    assert world.rows("SELECT state FROM jobs WHERE id = ?", job["id"]) == [{"state": "queued"}]
    # ...but by the member who asked: refunded, in the usage log, never submitted.
    cancelled = await world.discord.click(waiting.original, cancel, bob)
    row = await world.finished_row(job["id"])

    assert not cancelled.failed
    assert row["status"] == "failed"
    assert world.ledger_images(job["id"]) == 0
    assert world.submits("a dog waiting its turn") == []
    # The reply says so, and loses its button.
    await world.discord.wait_for(
        lambda: "cancel" in description(waiting.original).lower() + title(waiting.original) and not cancel_button(),
        STEP_TIMEOUT,
        what="the reply showing the cancellation",
    )
    # The job that held the slot is not disturbed.
    world.api.end_task(world.api.tasks_for(running_job)[0].id)
    await world.discord.wait_for(lambda: delivered(running), STEP_TIMEOUT, what="the running job's images")
    assert await bot.terminate() == 0

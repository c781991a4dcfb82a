"""Every acknowledged request gets an answer, even when the bot stops before taking it (docs/guarantees.md).

The bot is killed (SIGKILL) right after it deferred a request whose four large images it is still reading: the
next start answers the member's reply before it takes new work, with nothing reserved, uploaded or submitted.
It is killed in the middle of admission's transaction (PostgreSQL, where the test can hold the bot inside it):
the member gets an answer and no job, never both. And a clean stop (SIGTERM) answers the request it was reading
before the process exits.
"""

from __future__ import annotations

import functools
import io
import signal
from typing import Any

import asyncpg
import pytest
from PIL import Image

import i18n
from tests.e2e.conftest import STEP_TIMEOUT, World, delivered, first_response, settled
from tests.e2e.harness import wait_until
from tests.fakes.discord import FakeMember, InteractionRecord, Upload
from tests.fakes.toapis import Endpoint
from tests.storage.conftest import fresh_schema

pytestmark = pytest.mark.e2e

RESTARTED = i18n.translate("owed.restarted", i18n.SOURCE, bot="Imagine")
STOPPING = i18n.translate("owed.stopping", i18n.SOURCE, bot="Imagine")


@functools.cache
def large_photo(colour: str) -> bytes:
    """A photo-sized JPEG of a few MB (noise, which compresses as little as a photo does)."""
    image = Image.effect_noise((2400, 1600), 64).convert("RGB")
    image.paste(Image.new("RGB", (200, 200), colour), (0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def four_photos() -> dict[str, Any]:
    colours = ("red", "green", "blue", "gold")
    names = ("image", "image2", "image3", "image4")
    return {
        name: Upload(large_photo(colour), f"{colour}.jpg", "image/jpeg")
        for name, colour in zip(names, colours, strict=True)
    }


def owed_rows(world: World) -> list[dict[str, object]]:
    return world.rows("SELECT interaction_id, prompt FROM owed_answers")


async def acknowledged_and_reading(world: World, member: FakeMember, prompt: str) -> InteractionRecord:
    """`member` asks with four large images while the CDN holds them: deferred, recorded, being read."""
    world.discord.hold_cdn()
    call = await world.imagine(member, prompt, **four_photos())
    await first_response(world, call)
    assert call.original is not None
    assert call.original.loading
    await world.discord.wait_for(lambda: world.discord.cdn_requests >= 1, STEP_TIMEOUT, what="a download")
    return call


def assert_told_nothing_was_counted(call: InteractionRecord, text: str, prompt: str) -> None:
    original = call.original
    assert original is not None
    assert not original.loading
    assert original.content == text
    (embed,) = original.embeds
    assert prompt in embed["description"]
    assert "attach them again" in embed["fields"][0]["value"]
    assert original.mentions_nobody


async def test_a_request_killed_while_its_images_are_read_is_answered_at_the_next_start(world: World) -> None:
    prompt = "the cat from the first photo in the garden of the second"
    bot = await world.start_bot()
    call = await acknowledged_and_reading(world, world.member("ana"), prompt)
    await wait_until(lambda: owed_rows(world), STEP_TIMEOUT, what="the owed answer's record")

    await bot.kill()
    world.discord.release_cdn()
    downloads = world.discord.cdn_requests

    async with world.bot():
        # Answered before the new process took any work: by the time it is on the gateway, the reply says so.
        assert settled(call)
        assert_told_nothing_was_counted(call, RESTARTED, prompt)
        assert owed_rows(world) == []
        assert world.rows("SELECT id FROM jobs") == []
        assert world.rows("SELECT job_id FROM quota_ledger") == []
        assert world.api.requests_to(Endpoint.UPLOAD) == []
        assert world.api.requests_to(Endpoint.SUBMIT) == []
        assert world.discord.cdn_requests == downloads  # the images were not read again

        # And the member can send it again at once: the stop cost them no cooldown.
        again = await world.imagine(world.member("ana"), prompt)
        await world.discord.wait_for(lambda: delivered(again), STEP_TIMEOUT, what="the images")


async def test_a_kill_after_the_reply_was_deleted_for_a_private_answer_still_answers_privately(
    world: World,
) -> None:
    """A refusal after the defer deletes the public "thinking" reply, then sends its answer as a private
    follow-up, then forgets the record. Killed between the first two: the next start finds the reply gone while
    the token lives, and answers in a private follow-up rather than drop the record."""
    prompt = "a kite over the dunes"
    bot = await world.start_bot()
    call = await acknowledged_and_reading(world, world.member("dan"), prompt)
    await wait_until(lambda: owed_rows(world), STEP_TIMEOUT, what="the owed answer's record")
    await bot.kill()
    world.discord.release_cdn()
    assert call.original is not None
    await world.discord.delete_message(call.original)  # as the refusal did, just before the kill

    async with world.bot():
        (answer,) = call.followups
        assert answer.ephemeral
        assert answer.content == RESTARTED
        assert prompt in answer.embeds[0]["description"]
        assert owed_rows(world) == []
        assert [m for m in world.discord.channel_messages(world.channel) if not m.deleted] == []


async def test_a_clean_stop_answers_the_request_it_was_reading_before_it_exits(world: World) -> None:
    prompt = "a lighthouse from these four angles"
    bot = await world.start_bot()
    call = await acknowledged_and_reading(world, world.member("ben"), prompt)

    bot.send_signal(signal.SIGTERM)
    assert await bot.wait_exit(STEP_TIMEOUT) == 0
    # The process is gone and the member was answered: before it exited, privately, with the prompt.
    assert call.original is not None
    assert call.original.deleted
    (answer,) = call.followups
    assert answer.ephemeral
    assert answer.content == STOPPING
    assert prompt in answer.embeds[0]["description"]
    assert owed_rows(world) == []
    assert world.api.requests_to(Endpoint.SUBMIT) == []
    world.discord.release_cdn()


async def test_a_kill_inside_admissions_transaction_leaves_an_answer_and_no_job(world: World) -> None:
    async with fresh_schema() as url:
        prompt = "a harbour at dawn, from four references"
        # A poll interval of 30 s gives claims of 6 minutes (12 intervals): the next start must not wait for
        # the killed process's claim to run out.
        long_claims = {"DATABASE_URL": url, "TOAPIS_POLL_INTERVAL": "30"}
        bot = await world.start_bot(env=world.env(**long_claims))
        blocker, watcher = await asyncpg.connect(url), await asyncpg.connect(url)
        try:
            # The test holds the request's owed-answer row: admission, which deletes it in the job's own
            # transaction after reserving the images and storing the job, waits there.
            call = await acknowledged_and_reading(world, world.member("cleo"), prompt)
            (row,) = await wait_until(
                lambda: blocker.fetch("SELECT interaction_id FROM owed_answers"), STEP_TIMEOUT, what="the record"
            )
            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute(
                "SELECT 1 FROM owed_answers WHERE interaction_id = $1 FOR UPDATE", row["interaction_id"]
            )
            world.discord.release_cdn()

            async def waiting_inside() -> bool:
                # Asked on another connection: inside a transaction, the activity view is a snapshot.
                waiting = await watcher.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE "
                    "'%DELETE FROM owed_answers%'"
                )
                return bool(waiting)

            await wait_until(waiting_inside, STEP_TIMEOUT, what="admission waiting inside its transaction")
            await bot.kill()
            await transaction.rollback()
        finally:
            await blocker.close()
            await watcher.close()

        async with world.bot(**long_claims):
            # Answered at start-up, before the process is on the gateway.
            assert settled(call)
            assert_told_nothing_was_counted(call, RESTARTED, prompt)
            check = await asyncpg.connect(url)
            try:
                assert await check.fetch("SELECT id FROM jobs") == []
                assert await check.fetch("SELECT job_id FROM quota_ledger") == []
                assert await check.fetch("SELECT interaction_id FROM owed_answers") == []
            finally:
                await check.close()
        assert world.api.requests_to(Endpoint.SUBMIT) == []

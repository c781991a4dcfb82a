"""Remix through `python bot.py`: the form, opened on a result, is sent, as it is or after the bot was killed
and started again; the new job has the edited prompt, aspect and resolution and the same reference image, for
the member who sent it. And a refusal repeats the prompt, in a code block it cannot break out of."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    STEP_TIMEOUT,
    World,
    answered_in_time,
    delivered,
    first_response,
    open_world,
    png_bytes,
)
from tests.e2e.harness import wait_until
from tests.e2e.test_actions import upload_of
from tests.fakes.discord import CallbackType, Upload

pytestmark = [pytest.mark.e2e]


def labelled(modal: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """A modal's Labels by their text, each with its component."""
    assert modal is not None
    return {item["label"]: item["component"] for item in modal["components"] if item["type"] == 18}


async def test_a_remix_sent_after_a_crash_makes_the_edited_job_with_the_same_references(tmp_path: Path) -> None:
    async with open_world(tmp_path / "bot") as world:
        una, vic = world.member("una"), world.member("vic")
        kite = png_bytes((96, 64), "teal")
        first = await world.start_bot(env=world.env(DEFAULT_MEMBER_DAILY_LIMIT="4"))
        call = await world.imagine(una, "a kite over the dunes", image=Upload(kite, "kite.png", "image/png"))
        await world.discord.wait_for(lambda: delivered(call), STEP_TIMEOUT, what="the images")
        parent = await world.submitted_job("a kite over the dunes")
        assert call.original is not None
        (remix_id,) = [c for c in call.original.custom_ids() if c.startswith("imagine:remix:")]

        menu = await world.discord.click(call.original, remix_id, vic)
        await first_response(world, menu)
        answered_in_time(menu)
        assert menu.callback_type is CallbackType.MODAL
        fields = labelled(menu.modal)
        assert fields["Prompt"]["value"] == "a kite over the dunes"
        await wait_until(lambda: world.rows("SELECT id FROM forms"), STEP_TIMEOUT, what="the form kept")
        # Vic is still editing when the bot dies without a word, and starts again.
        await first.kill()
        await world.start_bot(env=world.env(DEFAULT_MEMBER_DAILY_LIMIT="4"))

        sent = await world.discord.submit_modal(
            menu, {"prompt": "a kite over the sea", "aspect": "16:9", "resolution": "2k"}
        )
        await world.discord.wait_for(lambda: delivered(sent), STEP_TIMEOUT, what="the remix")

        answered_in_time(sent)
        submit = world.submit_of("a kite over the sea")
        assert (submit["size"], submit["resolution"], submit["n"]) == ("16:9", "2k", 1)
        assert references_of(world, submit) == references_of(world, world.submit_of("a kite over the dunes"))
        (job,) = world.rows("SELECT id, kind, parent_job_id, user_id FROM jobs WHERE user_id = ?", vic.id)
        assert (job["kind"], job["parent_job_id"]) == ("remix", parent)
        assert world.ledger_images(job["id"]) == 2  # a 2K image counts as 2, against vic's limit

        # Over vic's limit (4): the remix is refused, and what vic typed comes back to be copied.
        again = await world.discord.click(call.original, remix_id, vic)
        await first_response(world, again)
        typed = "```\na kite ``` over @everyone"
        refused = await world.discord.submit_modal(again, {"prompt": typed, "resolution": "4k"})
        followup = await world.discord.wait_for(
            lambda: refused.followups[-1] if refused.followups else None, STEP_TIMEOUT, what="the refusal"
        )
        assert followup.ephemeral
        assert followup.content.startswith("You asked for 1 image")
        (echo,) = [e for e in followup.embeds if e.get("title") == "Your prompt"]
        assert echo["description"] == "```\n" + typed.replace("```", "``\u200b`") + "\n```"
        assert followup.mentions_nobody
        assert len(world.submits(typed)) == 0


async def test_a_remix_makes_the_edited_job_with_the_same_references(tmp_path: Path) -> None:
    async with open_world(tmp_path / "bot") as world:
        wes, xia = world.member("wes"), world.member("xia")
        shell = png_bytes((64, 96), "coral")
        await world.start_bot()
        call = await world.imagine(wes, "a shell on the sand", image=Upload(shell, "shell.png", "image/png"), n=2)
        await world.discord.wait_for(lambda: delivered(call), STEP_TIMEOUT, what="the images")
        parent = await world.submitted_job("a shell on the sand")
        assert call.original is not None
        (remix_id,) = [c for c in call.original.custom_ids() if c.startswith("imagine:remix:")]

        menu = await world.discord.click(call.original, remix_id, xia)
        await first_response(world, menu)
        answered_in_time(menu)
        assert menu.callback_type is CallbackType.MODAL
        assert labelled(menu.modal)["Prompt"]["value"] == "a shell on the sand"
        sent = await world.discord.submit_modal(menu, {"prompt": "a shell in the surf", "aspect": "2:3"})
        await world.discord.wait_for(lambda: delivered(sent), STEP_TIMEOUT, what="the remix")

        answered_in_time(sent)
        submit = world.submit_of("a shell in the surf")
        assert (submit["size"], submit["resolution"], submit["n"]) == ("2:3", "1k", 2)
        assert references_of(world, submit) == references_of(world, world.submit_of("a shell on the sand"))
        (job,) = world.rows("SELECT id, kind, parent_job_id FROM jobs WHERE user_id = ?", xia.id)
        assert (job["kind"], job["parent_job_id"]) == ("remix", parent)
        assert world.ledger_images(job["id"]) == 2  # two 1K images, against xia's quota
        assert sent.original is not None
        assert f"imagine:remix:{job['id']}:2:3:1k:gpt-image-2" in sent.original.custom_ids()


def references_of(world: World, submit: dict[str, Any]) -> list[bytes]:
    """The bytes of the reference images a submit named, as uploaded."""
    return [upload_of(world, url).data for url in submit["reference_images"]]

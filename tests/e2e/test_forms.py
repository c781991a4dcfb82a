""" "Imagine from images" as Discord really is, through `python bot.py`: the bot cannot read another member's
message again (the Message Content rule), so the form keeps what it needs when it is shown, and is answered
from that whenever it is sent: after a crash, at minute 15½, on a forward."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import STEP_TIMEOUT, World, answered_in_time, delivered, first_response, open_world, png_bytes
from tests.e2e.harness import wait_until
from tests.e2e.test_actions import CONTEXT_MENU, text_inputs, upload_of
from tests.fakes.discord import CallbackType, Upload

pytestmark = [pytest.mark.e2e]


def photos() -> list[Upload]:
    return [
        Upload(png_bytes((96, 64), "teal"), "boat.png", "image/png"),
        Upload(png_bytes((64, 64), "coral"), "sail.png", "image/png"),
    ]


async def submitted_images(world: World, prompt: str) -> list[bytes]:
    """The bytes of the references that reached ToAPIs with this prompt's submit, in order."""
    submit = world.submit_of(prompt)
    return [upload_of(world, url).data for url in submit["reference_images"]]


async def test_a_form_sent_after_a_crash_uses_exactly_the_messages_images(tmp_path: Path) -> None:
    async with open_world(tmp_path / "bot") as world:
        uma, vic = world.member("uma"), world.member("vic")
        sent = photos()
        # Another member's message: through REST or the gateway the bot sees it without its files.
        post = await world.discord.post_message(world.channel, vic, "our trip", files=sent)
        first = await world.start_bot()
        menu = await world.discord.invoke_message_context(CONTEXT_MENU, post, user=uma)
        await first_response(world, menu)
        assert menu.callback_type is CallbackType.MODAL
        (field,) = text_inputs(menu.modal)
        await wait_until(lambda: world.rows("SELECT id FROM forms"), STEP_TIMEOUT, what="the form kept")
        # The member is still typing when the bot dies without a word, and starts again.
        await first.kill()
        await world.start_bot()

        submitted = await world.discord.submit_modal(menu, {field: "the boat at night"})
        await world.discord.wait_for(lambda: delivered(submitted), STEP_TIMEOUT, what="the images")

        answered_in_time(submitted)
        assert await submitted_images(world, "the boat at night") == [upload.data for upload in sent]
        # Nothing was read back from the channel: the record had it all.
        reads = [r for r in world.discord.requests if r.method == "GET" and f"/messages/{post.id}" in r.path]
        assert reads == []


async def test_a_form_sent_at_minute_fifteen_and_a_half_is_answered(world: World) -> None:
    async with world.bot():
        uma, vic = world.member("uma"), world.member("vic")
        sent = photos()
        post = await world.discord.post_message(world.channel, vic, "", files=sent)
        menu = await world.discord.invoke_message_context(CONTEXT_MENU, post, user=uma)
        await first_response(world, menu)
        (field,) = text_inputs(menu.modal)
        await wait_until(lambda: world.rows("SELECT id FROM forms"), STEP_TIMEOUT, what="the form kept")
        # Past 15 minutes on Discord's clock only: the bot's runs in real time. tests/cogs/test_forms.py makes a
        # form's timeout run out on the bot's own clock.
        world.discord.advance_time(15.5 * 60)

        submitted = await world.discord.submit_modal(menu, {field: "the sail at dusk"})
        await world.discord.wait_for(lambda: delivered(submitted), STEP_TIMEOUT, what="the images")

        answered_in_time(submitted)
        assert await submitted_images(world, "the sail at dusk") == [upload.data for upload in sent]


async def test_a_forward_uses_the_forwarded_images_and_a_forward_without_any_says_so(world: World) -> None:
    async with world.bot():
        uma, vic = world.member("uma"), world.member("vic")
        sent = photos()
        original = await world.discord.post_message(world.channel, vic, "look", files=sent)
        forward = await world.discord.post_forward(world.channel, uma, original)
        words = await world.discord.post_message(world.channel, vic, "no pictures here")
        empty_forward = await world.discord.post_forward(world.channel, uma, words)

        menu = await world.discord.invoke_message_context(CONTEXT_MENU, forward, user=uma)
        await first_response(world, menu)
        (field,) = text_inputs(menu.modal)
        submitted = await world.discord.submit_modal(menu, {field: "the same, in winter"})
        await world.discord.wait_for(lambda: delivered(submitted), STEP_TIMEOUT, what="the images")
        assert await submitted_images(world, "the same, in winter") == [upload.data for upload in sent]

        refused = await world.discord.invoke_message_context(CONTEXT_MENU, empty_forward, user=uma)
        await first_response(world, refused)
        assert refused.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
        assert refused.callback is not None
        assert refused.callback.data is not None
        assert refused.callback.data["content"] == (
            "The message that was forwarded here has no images. Use this on a message with images."
        )

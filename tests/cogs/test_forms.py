""" "Imagine from images" is answered from the form's record, whenever it is sent (cogs/_forms.py): no timer in the
bot decides how long a form lives, neither discord.py's form (900 s by default) nor a listener of the bot's own.
Its record lives as long as the message's image links."""

from __future__ import annotations

import asyncio
import sys

import discord
import pytest

from tests.cogs.conftest import World, delivered, png_upload, wait_until
from tests.fakes._discord_records import iter_components
from tests.fakes.toapis import Endpoint

# What stands for discord.py's 15 minutes: a form that timed out on the bot's clock is forgotten by discord.py.
SHORT_TIMEOUT = 0.05


async def test_a_form_is_answered_after_discord_py_would_have_timed_it_out(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    timed_out = asyncio.Event()
    # The module the bot loaded as an extension (discord.py imports it anew).
    actions = sys.modules["cogs.actions"]

    class ShortLivedModal(actions.PromptModal):  # type: ignore[name-defined,misc]
        """The form as shown, with discord.py's timeout made short enough to run out during the test."""

        def __init__(self, form_id: str, locale: discord.Locale) -> None:
            super().__init__(form_id, locale)
            self.timeout = SHORT_TIMEOUT

        async def on_timeout(self) -> None:
            timed_out.set()

    monkeypatch.setattr(actions, "PromptModal", ShortLivedModal)
    vic = world.guild.add_member("vic")
    post = await world.discord.post_message(
        world.channel, vic, "", files=[png_upload("boat.png", colour="teal"), png_upload("sail.png", colour="coral")]
    )
    menu = await world.discord.invoke_message_context("Imagine from images", post, user=world.member)
    await world.discord.wait_for(lambda: menu.modal is not None, 10, what="the form")
    (field,) = [c["custom_id"] for c in iter_components(menu.modal and menu.modal["components"]) if c["type"] == 4]
    await wait_until(lambda: world.store.db.fetch_all("SELECT id FROM forms"))
    # Past the form's timeout on the bot's own clock (a form discord.py still held would be answered by nobody
    # now), and past 15 minutes on Discord's.
    await asyncio.sleep(SHORT_TIMEOUT * 4)
    assert not world.bot._connection._view_store._modals
    world.discord.advance_time(15.5 * 60)

    sent = await world.discord.submit_modal(menu, {field: "the boat at dusk"})

    await world.discord.wait_for(lambda: delivered(sent), 15, what="the images")
    (submit,) = world.api.requests_to(Endpoint.SUBMIT)
    assert submit.json is not None
    assert len(submit.json["reference_images"]) == 2
    assert not timed_out.is_set()  # let go of at once: there was nothing left to time out

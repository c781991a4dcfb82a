""" "Imagine from images" is answered from the form's record, whenever it is sent (cogs/_forms.py): no timer in the
bot decides how long a form lives, neither discord.py's form (900 s by default) nor a listener of the bot's own.
Its record lives as long as the message's image links."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import discord
import pytest

import i18n
from tests.cogs.conftest import World, WorldFactory, delivered, png_upload, wait_until
from tests.cogs.test_quota import refused_quota
from tests.fakes._discord_records import iter_components
from tests.fakes.discord import CallbackType, FakeMember, InteractionRecord
from tests.fakes.toapis import Endpoint
from toapis import catalog

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

        def __init__(self, form_id: str, locale: discord.Locale, model: catalog.ModelSpec | None = None) -> None:
            super().__init__(form_id, locale, model)
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


async def opened_form(world: World, *, user: FakeMember | None = None) -> tuple[InteractionRecord, dict[str, Any]]:
    """ "Imagine from images" on a member's message with one image: the menu's interaction and the form's text
    input, once the form's record is kept."""
    post = await world.discord.post_message(world.channel, world.member, "", files=[png_upload("boat.png")])
    menu = await world.discord.invoke_message_context("Imagine from images", post, user=user or world.member)
    await world.discord.wait_for(lambda: menu.modal is not None, 10, what="the form")
    assert menu.callback_type is CallbackType.MODAL
    (field,) = [c for c in iter_components(menu.modal and menu.modal["components"]) if c["type"] == 4]
    await wait_until(lambda: world.store.db.fetch_all("SELECT id FROM forms"))
    return menu, field


async def test_the_forms_prompt_takes_no_more_than_the_servers_default_model_does(make_world: WorldFactory) -> None:
    async with make_world(TOAPIS_MODELS="gpt-image-2,gpt-4o-image", TOAPIS_MODEL="gpt-4o-image") as world:
        _, field = await opened_form(world)

        assert field["max_length"] == catalog.get_model("gpt-4o-image").prompt_max == 1000


async def test_a_prompt_over_a_default_model_chosen_since_the_form_opened_is_refused_repeating_it(
    make_world: WorldFactory,
) -> None:
    async with make_world(TOAPIS_MODELS="gpt-image-2,gpt-4o-image") as world:
        menu, field = await opened_form(world)
        assert field["max_length"] == 4000
        await world.bot.services.server_settings.set_default_model(world.guild.id, "gpt-4o-image")
        typed = "x" * 1200

        sent = await world.discord.submit_modal(menu, {field["custom_id"]: typed})

        text = await refused_quota(world, sent)
        assert text == i18n.translate("refusal.prompt_too_long", i18n.SOURCE, length="1,200", limit="1,000")
        (echo,) = [e for e in sent.followups[-1].embeds if e.get("title") == "Your prompt"]
        assert echo["description"] == f"```\n{typed}\n```"
        assert world.api.tasks == {}


async def test_a_form_sent_in_a_channel_since_taken_off_the_servers_list_is_refused_at_once(world: World) -> None:
    other = world.guild.add_text_channel("art")
    menu, field = await opened_form(world)
    # The admins now allow another channel only.
    await world.bot.services.server_settings.add_allowed_channel(world.guild.id, other.id)

    sent = await world.discord.submit_modal(menu, {field["custom_id"]: "the boat <@1> at dusk"})

    await world.discord.wait_for(lambda: sent.acknowledged or sent.failed, 10, what="the refusal")
    assert sent.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE, sent.failure
    assert sent.original is not None
    assert sent.original.ephemeral
    assert f"<#{other.id}>" in sent.original.content
    (echo,) = [e for e in sent.original.embeds if e.get("title") == "Your prompt"]
    assert echo["description"] == "```\nthe boat <@1> at dusk\n```"
    assert sent.original.mentions_nobody
    assert world.api.tasks == {}


async def test_a_form_sent_after_two_restarts_is_answered_from_its_record(world: World) -> None:
    menu, field = await opened_form(world)
    await world.restart()
    await world.restart()

    sent = await world.discord.submit_modal(menu, {field["custom_id"]: "the boat after two restarts"})

    await world.discord.wait_for(lambda: delivered(sent), 15, what="the images")
    (submit,) = world.api.requests_to(Endpoint.SUBMIT)
    assert submit.json is not None
    assert (submit.json["prompt"], len(submit.json["reference_images"])) == ("the boat after two restarts", 1)


async def test_a_form_on_a_message_deleted_since_uses_the_images_it_kept_while_discord_hands_them_over(
    world: World,
) -> None:
    vic = world.guild.add_member("vic")
    post = await world.discord.post_message(world.channel, vic, "", files=[png_upload("boat.png", colour="navy")])
    menu = await world.discord.invoke_message_context("Imagine from images", post, user=world.member)
    await world.discord.wait_for(lambda: menu.modal is not None, 10, what="the form")
    (field,) = [c["custom_id"] for c in iter_components(menu.modal and menu.modal["components"]) if c["type"] == 4]
    await wait_until(lambda: world.store.db.fetch_all("SELECT id FROM forms"))
    await world.discord.delete_message(post)

    sent = await world.discord.submit_modal(menu, {field: "the boat, from memory"})

    await world.discord.wait_for(lambda: delivered(sent), 15, what="the images")
    (submit,) = world.api.requests_to(Endpoint.SUBMIT)
    assert submit.json is not None
    assert len(submit.json["reference_images"]) == 1
    # Nothing was read back from the channel: the record had it all.
    assert [r for r in world.discord.requests if r.method == "GET" and f"/messages/{post.id}" in r.path] == []


async def test_a_submit_discord_delivers_twice_starts_one_job(world: World) -> None:
    menu, field = await opened_form(world)
    sent = await world.discord.submit_modal(menu, {field["custom_id"]: "the boat, once"})
    await world.discord.wait_for(lambda: delivered(sent), 15, what="the images")

    def callbacks() -> list[object]:
        return [r for r in world.discord.requests if r.method == "POST" and f"/interactions/{sent.id}/" in r.path]

    assert len(callbacks()) == 1
    # The same INTERACTION_CREATE again (as a gateway may replay it): its token is answered already.
    world.discord.state.gateway.dispatch("INTERACTION_CREATE", sent.payload, guild_id=world.guild.id)
    await world.discord.wait_for(lambda: len(callbacks()) == 2, 10, what="the replay's answer, refused")
    await world.interactions_handled()

    assert len(world.api.requests_to(Endpoint.SUBMIT)) == 1
    assert len(await world.jobs()) == 1
    assert delivered(sent)

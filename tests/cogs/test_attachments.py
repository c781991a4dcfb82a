"""Discord's attachment URLs are signed and expire (their `ex` parameter): a form opened on a message's images
lives as long as their links (cogs/_attachments.py, cogs/actions.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from cogs._attachments import DEFAULT_URL_LIFETIME, ImageAttachment
from storage.clock import utc_now
from storage.forms import FormRecord
from tests.cogs.conftest import World, WorldFactory, delivered, png_upload, wait_until
from tests.cogs.test_quota import refused_quota
from tests.fakes._discord_records import iter_components

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def attachment(url: str) -> ImageAttachment:
    return ImageAttachment(1, url, "boat.png", 1000, "image/png")


def test_a_links_expiry_is_read_from_its_ex_parameter() -> None:
    expires = datetime(2026, 12, 2, 11, 30, tzinfo=UTC)
    url = f"https://cdn.discordapp.com/attachments/1/2/boat.png?ex={int(expires.timestamp()):x}&is=6931&hm=ab12&"

    assert attachment(url).expires_at(NOW) == expires


def test_a_link_that_does_not_say_lives_about_a_day() -> None:
    for url in (
        "https://cdn.discordapp.com/attachments/1/2/boat.png",
        "https://cdn.discordapp.com/attachments/1/2/boat.png?ex=not-hex&hm=ab12",
        "https://cdn.discordapp.com/attachments/1/2/boat.png?ex=" + "f" * 40,
    ):
        assert attachment(url).expires_at(NOW) == NOW + DEFAULT_URL_LIFETIME, url


async def test_a_form_sent_after_its_links_expired_asks_to_open_it_again(make_world: WorldFactory) -> None:
    # Links that live two seconds: the form's record lives no longer.
    async with make_world(fake_discord={"attachment_url_lifetime": 2.0}) as world:
        post = await world.discord.post_message(world.channel, world.member, "", files=[png_upload("boat.png")])
        menu = await world.discord.invoke_message_context("Imagine from images", post, user=world.member)
        await world.discord.wait_for(lambda: menu.modal is not None, 10, what="the form")
        (field,) = [c["custom_id"] for c in iter_components(menu.modal and menu.modal["components"]) if c["type"] == 4]

        async def kept() -> FormRecord | None:
            (row,) = await wait_until(lambda: world.store.db.fetch_all("SELECT id FROM forms"))
            return await world.store.forms.get(row["id"])

        record = await kept()
        assert record is not None
        assert record.expires_at <= utc_now() + timedelta(seconds=2)
        await asyncio.sleep((record.expires_at - utc_now()).total_seconds() + 0.1)

        sent = await world.discord.submit_modal(menu, {field: "a boat at night"})

        text = await refused_quota(world, sent)
        assert text.startswith("This form has expired. Use ")
        assert "Imagine from images" in text
        assert not delivered(sent)
        assert world.api.tasks == {}


async def test_a_form_whose_images_the_cdn_refuses_asks_to_open_it_again(world: World) -> None:
    """The record still lives by the bot's clock but the CDN refuses the links (they expired early, or the message
    is gone): the member cannot "attach it again" to a form, so the form asks to be opened again."""
    post = await world.discord.post_message(world.channel, world.member, "", files=[png_upload("boat.png")])
    menu = await world.discord.invoke_message_context("Imagine from images", post, user=world.member)
    await world.discord.wait_for(lambda: menu.modal is not None, 10, what="the form")
    (field,) = [c["custom_id"] for c in iter_components(menu.modal and menu.modal["components"]) if c["type"] == 4]
    await wait_until(lambda: world.store.db.fetch_all("SELECT id FROM forms"))
    world.discord.expire_attachment_urls()

    sent = await world.discord.submit_modal(menu, {field: "a boat at night"})

    text = await refused_quota(world, sent)
    assert text.startswith("This form has expired. Use ")
    assert world.api.tasks == {}

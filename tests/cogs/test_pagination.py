"""Long listings (cogs/_pagination.py): pages within Discord's embed limits, flipped with Previous / Next by the
member who asked.

`pages_of` is checked on its own; the Paginator through the real bot, with a small test command added to its tree
(no command of the bot sends a public listing, and only a public one can be clicked by someone else).
"""

from __future__ import annotations

from collections.abc import Iterator

import discord
import pytest
from discord import app_commands

import cogs._pagination as pagination
import i18n
from cogs._pagination import LINES_PER_PAGE, Paginator, numbered, pages_of, send_pages
from storage.quotas import Period, RuleScope
from tests.cogs.conftest import World
from tests.cogs.test_quota import (
    DESCRIPTION_LIMIT,
    answer,
    assert_embed_within_limits,
    button,
    command,
    flip,
)
from tests.fakes.discord import CallbackType, FakeMember, InvocationRefused, MessageRecord

# -- pages_of ---------------------------------------------------------------------------------------------------


def lines_of(pages: list[discord.Embed], header: str = "") -> list[str]:
    """Every listed line of `pages`, in order, without the header."""
    found: list[str] = []
    for page in pages:
        text = page.description or ""
        if header:
            assert text.startswith(header + "\n\n")
            text = text[len(header) + 2 :]
        found += text.split("\n")
    return found


def test_an_empty_listing_is_one_page_saying_so() -> None:
    (page,) = pages_of("Quotas", [], header="Counting images.", empty="No limits apply.", locale="en-US")

    assert page.title == "Quotas"
    assert page.description == "Counting images.\n\nNo limits apply."
    assert page.footer.text is None


def test_fifteen_lines_fit_one_page_and_sixteen_make_two() -> None:
    one = pages_of("T", [f"line {i}" for i in range(LINES_PER_PAGE)], locale="en-US")
    two = numbered(pages_of("T", [f"line {i}" for i in range(LINES_PER_PAGE + 1)], locale="en-US"), "en-US")

    assert LINES_PER_PAGE == 15
    assert len(one) == 1
    assert one[0].footer.text is None
    assert [page.footer.text for page in two] == ["Page 1 of 2", "Page 2 of 2"]
    assert lines_of(two) == [f"line {i}" for i in range(16)]


def test_long_lines_are_cut_and_every_page_stays_within_the_embed_limits() -> None:
    header = "Since 2026-11-01 (UTC): **123,456** images in all."
    lines = [f"{i:04d} " + "x" * (i % 900) for i in range(300)]

    pages = numbered(pages_of("Usage by member", lines, header=header, locale="en-US"), "en-US")

    assert len(pages) > 300 // LINES_PER_PAGE
    for number, page in enumerate(pages, start=1):
        assert_embed_within_limits(page.to_dict())  # type: ignore[arg-type]
        assert len(page.description or "") <= DESCRIPTION_LIMIT
        assert page.footer.text == f"Page {number} of {len(pages)}"
        assert page.colour == discord.Colour.blurple()
    # Nothing is lost or reordered; a line is cut to 500 characters.
    assert lines_of(pages, header) == [line[:500] for line in lines]


def test_a_colour_can_be_chosen() -> None:
    (page,) = pages_of("T", ["a"], colour=discord.Colour.red(), locale="en-US")
    assert page.colour == discord.Colour.red()


# -- the Paginator through the real bot -------------------------------------------------------------------------


async def add_listing_command(world: World) -> None:
    """`/listing count [public] [defer]`: `count` numbered lines through send_pages, like the admin listings."""

    @app_commands.command(name="listing", description="A numbered test listing")
    async def listing(interaction: discord.Interaction, count: int, public: bool = False, defer: bool = False) -> None:
        if defer:
            await interaction.response.defer(ephemeral=not public, thinking=True)
        lines = [f"line {number}" for number in range(1, count + 1)]
        await send_pages(
            interaction,
            pages_of("Listing", lines, header="A test listing.", locale=interaction.locale),
            ephemeral=not public,
        )

    world.bot.tree.add_command(listing)
    await world.bot.tree.sync()


async def listing(world: World, count: int, *, user: FakeMember | None = None, **options: bool) -> MessageRecord:
    call = await world.discord.invoke_slash(
        "listing", {"count": count, **options}, user=user or world.member, channel=world.channel
    )
    return await answer(world, call)


def shown_lines(message: MessageRecord) -> list[str]:
    return str(message.embeds[0]["description"]).split("\n")[2:]


def page_buttons(message: MessageRecord) -> Iterator[str]:
    previous_id, next_id = message.custom_ids()
    assert button(message, previous_id)["label"] == "Previous"
    assert button(message, next_id)["label"] == "Next"
    yield previous_id
    yield next_id


@pytest.mark.parametrize("defer", [False, True], ids=["answered", "deferred"])
async def test_previous_and_next_flip_through_every_page(world: World, defer: bool) -> None:
    await add_listing_command(world)

    reply = await listing(world, 40, defer=defer)

    assert reply.ephemeral
    previous_id, next_id = page_buttons(reply)
    assert shown_lines(reply) == [f"line {n}" for n in range(1, 16)]
    assert button(reply, previous_id).get("disabled") is True
    await flip(world, reply, next_id, world.member)
    assert shown_lines(reply) == [f"line {n}" for n in range(16, 31)]
    assert not button(reply, previous_id).get("disabled")
    await flip(world, reply, next_id, world.member)
    assert shown_lines(reply) == [f"line {n}" for n in range(31, 41)]
    assert reply.embeds[0]["footer"]["text"] == "Page 3 of 3"
    assert button(reply, next_id).get("disabled") is True
    with pytest.raises(InvocationRefused, match="disabled"):
        await world.discord.click(reply, next_id, world.member)
    await flip(world, reply, previous_id, world.member)
    assert reply.embeds[0]["footer"]["text"] == "Page 2 of 3"
    assert reply.mentions_nobody


async def test_a_single_page_has_no_buttons(world: World) -> None:
    await add_listing_command(world)

    reply = await listing(world, 15)

    assert reply.components == ()
    assert "footer" not in reply.embeds[0]
    assert shown_lines(reply) == [f"line {n}" for n in range(1, 16)]


async def test_only_the_member_who_asked_can_turn_a_public_listings_pages(world: World) -> None:
    await add_listing_command(world)
    reply = await listing(world, 40, public=True)
    assert not reply.ephemeral
    _, next_id = page_buttons(reply)
    bob = world.guild.add_member("bob")

    click = await world.discord.click(reply, next_id, bob)

    await world.discord.wait_for(lambda: click.acknowledged or click.failed, 10, what="the refusal")
    assert click.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
    assert click.original is not None
    assert click.original.ephemeral
    assert click.original.content == "Only the member who asked can turn these pages."
    assert reply.embeds[0].get("footer", {}).get("text") == "Page 1 of 3"
    assert reply.edits == []
    # The member who asked still can.
    await flip(world, reply, next_id, world.member)
    assert reply.embeds[0]["footer"]["text"] == "Page 2 of 3"


async def test_a_listing_whose_buttons_stopped_working_does_not_leave_them_clickable(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    views: list[Paginator] = []

    class QuickPaginator(Paginator):
        def __init__(
            self,
            pages: list[discord.Embed],
            *,
            owner_id: int,
            timeout: float = 300,
            client: discord.Client,
            locale: i18n.LocaleLike,
        ) -> None:
            super().__init__(pages, owner_id=owner_id, timeout=0.2, client=client, locale=locale)
            views.append(self)

    monkeypatch.setattr(pagination, "Paginator", QuickPaginator)
    for index in range(40):
        await world.store.quotas.set_rule(world.guild.id, RuleScope.ROLE, 5, Period.DAY, role_id=1000 + index)
    reply = await command(world, "quota show")
    (view,) = views
    _, next_id = page_buttons(reply)

    assert await view.wait()  # True: it timed out

    def stopped() -> bool:
        return bool(button(reply, next_id).get("disabled"))

    try:
        await world.discord.wait_for(stopped, 1, what="the buttons disabled")
    except TimeoutError:
        click = await world.discord.click(reply, next_id, world.guild.owner)
        await world.discord.wait_for(lambda: click.acknowledged or click.failed, 10, what="the click's answer")
        assert click.acknowledged, click.failure


async def test_a_click_on_a_listing_past_its_life_is_told_to_run_the_command_again(world: World) -> None:
    # After a restart the process no longer serves the listing, and its token (15 minutes) may be gone too, so
    # its buttons could not be greyed out: a click on them gets a short note rather than "interaction failed".
    await add_listing_command(world)
    reply = await listing(world, 40)
    _, next_id = page_buttons(reply)
    await world.restart()

    click = await world.discord.click(reply, next_id, world.member)

    await world.discord.wait_for(lambda: click.acknowledged or click.failed, 10, what="the note")
    assert click.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
    assert click.original is not None
    assert click.original.ephemeral
    assert click.original.content == "This listing has expired: run the command again to see it."
    assert shown_lines(reply) == [f"line {n}" for n in range(1, 16)]

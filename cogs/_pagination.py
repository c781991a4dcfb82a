"""Long listings as pages of embeds, flipped with buttons by the member who asked, in their locale."""

from __future__ import annotations

import contextlib
import secrets
import weakref
from collections.abc import Sequence
from typing import Final

import discord

import i18n
from cogs._gate import allowed_here
from cogs._limits import DESCRIPTION_LIMIT
from cogs._replies import answer

LINES_PER_PAGE = 15
PAGE_PREFIX: Final = "imagine:page:"
# The listings each bot can still turn, by key (a bot's, not the process's: tests run several bots in turn).
_LIVE: weakref.WeakKeyDictionary[discord.Client, set[str]] = weakref.WeakKeyDictionary()


def _live(client: discord.Client) -> set[str]:
    return _LIVE.setdefault(client, set())


def pages_of(
    title: str,
    lines: Sequence[str],
    *,
    locale: i18n.LocaleLike,
    header: str = "",
    empty: str | None = None,
    colour: discord.Colour | None = None,
) -> list[discord.Embed]:
    """Embeds of at most LINES_PER_PAGE lines each, every description within Discord's limit; `empty` (in
    `locale`, "Nothing yet." by default) when there is no line."""
    if empty is None:
        empty = i18n.translate("pages.empty", locale)
    chunks: list[list[str]] = []
    current: list[str] = []
    size = len(header)
    for line in lines or [empty]:
        line = line[:500]
        if current and (len(current) >= LINES_PER_PAGE or size + len(line) + 1 > DESCRIPTION_LIMIT - 100):
            chunks.append(current)
            current, size = [], len(header)
        current.append(line)
        size += len(line) + 1
    chunks.append(current)
    pages = []
    for chunk in chunks:
        description = "\n".join(([header, ""] if header else []) + chunk)
        pages.append(discord.Embed(title=title, description=description, colour=colour or discord.Colour.blurple()))
    return pages


def numbered(pages: Sequence[discord.Embed], locale: i18n.LocaleLike) -> list[discord.Embed]:
    """The pages with "Page k of n" footers, counted across the whole listing (several sections included)."""
    if len(pages) > 1:
        total = i18n.number(len(pages), locale)
        for number, page in enumerate(pages, start=1):
            page.set_footer(text=i18n.translate("pages.page", locale, number=i18n.number(number, locale), total=total))
    return list(pages)


class Paginator(discord.ui.View):
    """Previous / Next over `pages`; only `owner_id` may flip. Stops after `timeout` seconds (listings are
    ephemeral and short-lived, so they need not survive a restart), and then greys its buttons out, so that
    nobody clicks a button that no longer answers. The timeout stays within the 15 minutes the interaction's
    token can edit the message."""

    def __init__(
        self,
        pages: Sequence[discord.Embed],
        *,
        owner_id: int,
        timeout: float = 600,
        client: discord.Client,
        locale: i18n.LocaleLike,
    ) -> None:
        super().__init__(timeout=timeout)
        self.pages = numbered(pages, locale)
        self.locale = locale
        self.previous.label = i18n.translate("pages.previous", locale)
        self.next.label = i18n.translate("pages.next", locale)
        self.owner_id = owner_id
        self.index = 0
        self.interaction: discord.Interaction | None = None
        # Custom ids of this listing's own: a click that outlives it (a restart, a token past its 15 minutes
        # before the buttons could be greyed out) is recognised and answered by `answer_expired_listing`.
        key = secrets.token_hex(8)
        self.previous.custom_id = f"{PAGE_PREFIX}{key}:previous"
        self.next.custom_id = f"{PAGE_PREFIX}{key}:next"
        self._key = key
        self._listings = _live(client)
        self._listings.add(key)
        self._sync_buttons()

    def stop(self) -> None:
        self._listings.discard(self._key)
        super().stop()

    async def on_timeout(self) -> None:
        self._listings.discard(self._key)
        self.previous.disabled = self.next.disabled = True
        if self.interaction is not None:
            with contextlib.suppress(discord.HTTPException):
                await self.interaction.edit_original_response(view=self)

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if not await allowed_here(interaction):
            return False
        if interaction.user.id == self.owner_id:
            return True
        await interaction.response.send_message(i18n.translate("pages.not_yours", interaction.locale), ephemeral=True)
        return False

    @discord.ui.button(style=discord.ButtonStyle.secondary)  # labelled in the listing's locale (__init__)
    async def previous(self, interaction: discord.Interaction, button: discord.ui.Button[Paginator]) -> None:
        self.index = max(0, self.index - 1)
        await self._show(interaction)

    @discord.ui.button(style=discord.ButtonStyle.secondary)
    async def next(self, interaction: discord.Interaction, button: discord.ui.Button[Paginator]) -> None:
        self.index = min(len(self.pages) - 1, self.index + 1)
        await self._show(interaction)

    async def _show(self, interaction: discord.Interaction) -> None:
        self._sync_buttons()
        await interaction.response.edit_message(embed=self.pages[self.index], view=self)

    def _sync_buttons(self) -> None:
        self.previous.disabled = self.index == 0
        self.next.disabled = self.index >= len(self.pages) - 1


async def answer_expired_listing(interaction: discord.Interaction) -> None:
    """A listener for every interaction: a click on a listing this process no longer serves is answered with a
    short note to run the command again (instead of Discord's "This interaction failed")."""
    if interaction.type is not discord.InteractionType.component:
        return
    custom_id = str(dict(interaction.data or {}).get("custom_id", ""))
    live = _live(interaction.client)
    if not custom_id.startswith(PAGE_PREFIX) or custom_id.removeprefix(PAGE_PREFIX).split(":")[0] in live:
        return
    if not await allowed_here(interaction):
        return
    with contextlib.suppress(discord.HTTPException):
        await interaction.response.send_message(i18n.translate("pages.expired", interaction.locale), ephemeral=True)


async def send_pages(
    interaction: discord.Interaction, pages: Sequence[discord.Embed], *, ephemeral: bool = True
) -> None:
    """Answer (or follow up) with the first page, and buttons when there are more (in the member's locale)."""
    if len(pages) == 1:
        await answer(interaction, embed=pages[0], ephemeral=ephemeral)
        return
    view = Paginator(pages, owner_id=interaction.user.id, client=interaction.client, locale=interaction.locale)
    # Once the first answer (or the follow-up replacing a deferred one) exists, it is the original response.
    view.interaction = interaction
    await answer(interaction, embed=view.pages[0], view=view, ephemeral=ephemeral)

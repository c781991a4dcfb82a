"""Long listings as pages of embeds, flipped with buttons by the member who asked."""

from __future__ import annotations

from collections.abc import Sequence

import discord

from cogs._embeds import DESCRIPTION_LIMIT, NO_MENTIONS

LINES_PER_PAGE = 15


def pages_of(
    title: str,
    lines: Sequence[str],
    *,
    header: str = "",
    empty: str = "Nothing yet.",
    colour: discord.Colour | None = None,
) -> list[discord.Embed]:
    """Embeds of at most LINES_PER_PAGE lines each, every description within Discord's limit."""
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
    for number, chunk in enumerate(chunks, start=1):
        description = "\n".join(([header, ""] if header else []) + chunk)
        embed = discord.Embed(title=title, description=description, colour=colour or discord.Colour.blurple())
        if len(chunks) > 1:
            embed.set_footer(text=f"Page {number} of {len(chunks)}")
        pages.append(embed)
    return pages


class Paginator(discord.ui.View):
    """Previous / Next over `pages`; only `owner_id` may flip. Dies after `timeout` seconds (listings are
    ephemeral and short-lived, so they need not survive a restart)."""

    def __init__(self, pages: Sequence[discord.Embed], *, owner_id: int, timeout: float = 300) -> None:
        super().__init__(timeout=timeout)
        self.pages = list(pages)
        self.owner_id = owner_id
        self.index = 0
        self._sync_buttons()

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id == self.owner_id:
            return True
        await interaction.response.send_message("Only the member who asked can turn these pages.", ephemeral=True)
        return False

    @discord.ui.button(label="Previous", style=discord.ButtonStyle.secondary)
    async def previous(self, interaction: discord.Interaction, button: discord.ui.Button[Paginator]) -> None:
        self.index = max(0, self.index - 1)
        await self._show(interaction)

    @discord.ui.button(label="Next", style=discord.ButtonStyle.secondary)
    async def next(self, interaction: discord.Interaction, button: discord.ui.Button[Paginator]) -> None:
        self.index = min(len(self.pages) - 1, self.index + 1)
        await self._show(interaction)

    async def _show(self, interaction: discord.Interaction) -> None:
        self._sync_buttons()
        await interaction.response.edit_message(embed=self.pages[self.index], view=self)

    def _sync_buttons(self) -> None:
        self.previous.disabled = self.index == 0
        self.next.disabled = self.index >= len(self.pages) - 1


async def send_pages(
    interaction: discord.Interaction, pages: Sequence[discord.Embed], *, ephemeral: bool = True
) -> None:
    """Answer (or follow up) with the first page, and buttons when there are more."""
    view = Paginator(pages, owner_id=interaction.user.id) if len(pages) > 1 else discord.utils.MISSING
    if interaction.response.is_done():
        await interaction.followup.send(embed=pages[0], view=view, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS)
    else:
        await interaction.response.send_message(
            embed=pages[0], view=view, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS
        )

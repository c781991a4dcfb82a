"""Answering an interaction whether or not its first response (a defer) has been sent."""

from __future__ import annotations

import logging
from typing import Any

import discord

from cogs._embeds import NO_MENTIONS

log = logging.getLogger(__name__)


async def answer(interaction: discord.Interaction, content: str | None = None, **options: Any) -> None:
    """An ephemeral answer that mentions nobody: the first response, or a follow-up after a defer."""
    options.setdefault("ephemeral", True)
    options.setdefault("allowed_mentions", NO_MENTIONS)
    if content is not None:
        options["content"] = content
    if interaction.response.is_done():
        await interaction.followup.send(**options)
    else:
        await interaction.response.send_message(**options)


async def defer_privately(interaction: discord.Interaction) -> None:
    """The first response before any I/O: an ephemeral "thinking" placeholder the answer will replace."""
    await interaction.response.defer(ephemeral=True, thinking=True)


async def refuse_after_defer(interaction: discord.Interaction, text: str) -> None:
    """Refuse after a public deferred reply: delete the "thinking" placeholder, then tell the member privately (in
    that order: while the placeholder stands, Discord turns the first follow-up into the public reply itself)."""
    try:
        await interaction.delete_original_response()
    except discord.HTTPException:
        log.info("Could not delete the deferred reply", exc_info=True)
    await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)

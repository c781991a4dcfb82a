"""One gate in front of every door: the operator's server allow-list (ALLOWED_GUILD_IDS).

discord.py routes interactions through different doors: the command tree's `interaction_check` sees slash
commands, context menus and autocomplete; buttons go through their item's `interaction_check`; a form through
its modal's, or the listener that answers forms after a restart. Each door calls `allowed_here`, so an
interaction from a server off the list gets the same short private answer (autocomplete: no suggestions),
with the prompt of the request repeated as every refusal does, and changes nothing, whichever door it came
through.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from cogs._embeds import NO_MENTIONS, echo_prompt, request_prompt
from cogs._services import services_of
from cogs._texts import refusal_text
from generation.logs import bind_log_context
from generation.refusals import ServerNotAllowed

log = logging.getLogger(__name__)


async def allowed_here(interaction: discord.Interaction) -> bool:
    """Whether the bot works where the interaction comes from; if not, it is answered here and False returned."""
    guild_id = interaction.guild_id
    bind_log_context(guild=guild_id)  # this interaction's task: its log records name the server
    if guild_id is None or services_of(interaction.client).settings.guild_allowed(guild_id):
        return True
    log.info("Refused an interaction from server %s, which is not on ALLOWED_GUILD_IDS", guild_id)
    try:
        if interaction.type is discord.InteractionType.autocomplete:
            await interaction.response.autocomplete([])
        elif not interaction.response.is_done():
            await interaction.response.send_message(
                refusal_text(ServerNotAllowed(), interaction.locale),
                embeds=echo_prompt(request_prompt(interaction), interaction.locale),
                ephemeral=True,
                allowed_mentions=NO_MENTIONS,
            )
    except discord.HTTPException:
        log.info("Could not answer the refused interaction", exc_info=True)
    return False


class GatedTree(app_commands.CommandTree[discord.Client]):
    """The command tree, behind the gate: slash commands, context menus and autocomplete."""

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        return await allowed_here(interaction)


class Gated:
    """Mixed into buttons, views and forms: their `interaction_check` is the gate first."""

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        return await allowed_here(interaction)

"""Errors become short messages in one place; tracebacks go to the log."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from cogs._embeds import NO_MENTIONS
from cogs._texts import GENERIC, refusal_text
from generation.refusals import Refusal

log = logging.getLogger(__name__)

_ANSWERED = "imagine_error_answered"


def message_for(error: BaseException) -> str:
    """The member-facing text for an error raised by a command or a component."""
    if isinstance(error, app_commands.CommandInvokeError | app_commands.TransformerError) and error.__cause__:
        error = error.__cause__
    if isinstance(error, Refusal):
        return refusal_text(error)
    if isinstance(error, app_commands.NoPrivateMessage):
        return "This command works in servers only."
    if isinstance(error, app_commands.MissingPermissions):
        needed = ", ".join(name.replace("_", " ").title() for name in error.missing_permissions)
        return f"You need the {needed} permission to do that."
    if isinstance(error, app_commands.BotMissingPermissions):
        needed = ", ".join(name.replace("_", " ").title() for name in error.missing_permissions)
        return f"Imagine needs the {needed} permission in this channel."
    if isinstance(error, app_commands.CheckFailure):
        return "You cannot use this command here."
    return GENERIC


async def answer_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Tell the member, ephemerally, whether or not the interaction was answered already.

    Once per interaction: discord.py runs a cog's error handler and then the tree's for the same error.
    """
    if interaction.extras.get(_ANSWERED):
        return
    interaction.extras[_ANSWERED] = True
    text = message_for(error)
    if text == GENERIC:
        command = interaction.command.qualified_name if interaction.command else "a component"
        log.error("Unexpected error in %s", command, exc_info=error)
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        else:
            await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
    except discord.HTTPException:
        log.warning("Could not tell the member about an error", exc_info=True)

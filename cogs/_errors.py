"""Errors become short messages in one place; tracebacks go to the log."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

import i18n
from cogs._embeds import NO_MENTIONS, echo_prompt, request_prompt
from cogs._texts import generic_text, permission_names, refusal_text
from generation.refusals import Refusal

log = logging.getLogger(__name__)

_ANSWERED = "imagine_error_answered"


def _unexpected(error: BaseException) -> bool:
    """Whether the error is a bug rather than something the member can act on."""
    return not isinstance(error, Refusal | app_commands.CheckFailure)


def _permissions(names: list[str], locale: i18n.LocaleLike) -> str:
    # By the names Discord's own client shows in the member's language.
    return i18n.join(permission_names(names, locale), locale)


def message_for(error: BaseException, locale: i18n.LocaleLike) -> str:
    """The member-facing text for an error raised by a command or a component, in `locale` (the member's)."""
    error = _cause(error)
    if isinstance(error, Refusal):
        return refusal_text(error, locale)
    if isinstance(error, app_commands.NoPrivateMessage):
        return i18n.translate("error.servers_only", locale)
    if isinstance(error, app_commands.MissingPermissions):
        return i18n.translate(
            "error.member_missing_permissions", locale, permissions=_permissions(error.missing_permissions, locale)
        )
    if isinstance(error, app_commands.BotMissingPermissions):
        return i18n.translate(
            "error.bot_missing_permissions", locale, permissions=_permissions(error.missing_permissions, locale)
        )
    if isinstance(error, app_commands.CheckFailure):
        return i18n.translate("error.check_failed", locale)
    return generic_text(locale)


def _cause(error: BaseException) -> BaseException:
    if isinstance(error, app_commands.CommandInvokeError | app_commands.TransformerError) and error.__cause__:
        return error.__cause__
    return error


async def answer_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Tell the member, ephemerally, whether or not the interaction was answered already; with the prompt of
    their request repeated, if it carried one (`request_prompt`), as with every refusal and failure.

    Once per interaction: discord.py runs a cog's error handler and then the tree's for the same error.
    """
    if interaction.extras.get(_ANSWERED):
        return
    interaction.extras[_ANSWERED] = True
    text = message_for(error, interaction.locale)
    if _unexpected(_cause(error)):
        command = interaction.command.qualified_name if interaction.command else "a component"
        log.error("Unexpected error in %s", command, exc_info=error)
    embeds = echo_prompt(request_prompt(interaction), interaction.locale)
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, embeds=embeds, ephemeral=True, allowed_mentions=NO_MENTIONS)
        else:
            await interaction.response.send_message(text, embeds=embeds, ephemeral=True, allowed_mentions=NO_MENTIONS)
    except discord.HTTPException:
        log.warning("Could not tell the member about an error", exc_info=True)

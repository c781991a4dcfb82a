"""`/imagine-settings chat on|off`: whether members may ask for images by mentioning the bot in a message
(docs/admins.md). On by default; off, a mention is answered with a short note to use the commands."""

from __future__ import annotations

import discord
from discord import app_commands

import i18n
from cogs._errors import answer_error
from cogs._replies import answer, defer_privately
from cogs._services import Services
from cogs._translator import command_text
from storage.guild_settings import GuildSettings


def chat_status(settings: GuildSettings, locale: i18n.LocaleLike) -> str:
    """Whether the conversational way is on here, for `/imagine-settings show`."""
    if settings.chat:
        return i18n.translate("settings.chat.field_on", locale)
    return i18n.translate("settings.chat.field_off", locale)


class ChatGroup(app_commands.Group):
    """`/imagine-settings chat`, added by the settings cog to its group (it shares its Manage Server default)."""

    def __init__(self, services: Services) -> None:
        super().__init__(name="chat", description=command_text("command.imagine-settings.chat"))
        self.services = services

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await answer_error(interaction, error)

    @app_commands.command(name="on", description=command_text("command.imagine-settings.chat.on"))
    async def on(self, interaction: discord.Interaction) -> None:
        """Let members ask by mentioning the bot in a message."""
        assert interaction.guild_id is not None
        await defer_privately(interaction)
        await self.services.server_settings.set_chat(interaction.guild_id, True)
        await answer(interaction, i18n.translate("settings.chat.on", interaction.locale))

    @app_commands.command(name="off", description=command_text("command.imagine-settings.chat.off"))
    async def off(self, interaction: discord.Interaction) -> None:
        """Members ask with the commands only."""
        assert interaction.guild_id is not None
        await defer_privately(interaction)
        await self.services.server_settings.set_chat(interaction.guild_id, False)
        await answer(interaction, i18n.translate("settings.chat.off", interaction.locale))

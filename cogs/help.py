"""/help: what Imagine does and how to use it, what applies to this member here, and for admins what configures it."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

import i18n
from cogs._embeds import NO_MENTIONS
from cogs._errors import answer_error
from cogs._limits import FIELD_VALUE_LIMIT, cut
from cogs._replies import defer_privately
from cogs._services import Services, services_of
from cogs._texts import (
    HELP_ADMIN,
    HELP_HOW,
    HELP_INTRO,
    HELP_NO_LIMITS,
    HELP_TITLE,
    help_cooldown,
    help_places,
    images_left_line,
    usage_line,
)
from cogs._translator import command_text
from storage.quotas import RuleUsage


class HelpCog(commands.Cog):
    def __init__(self, bot: commands.Bot | commands.AutoShardedBot, services: Services) -> None:
        self.bot = bot
        self.services = services

    @app_commands.command(name="help", description=command_text("command.help"))
    @app_commands.guild_only()
    async def help(self, interaction: discord.Interaction) -> None:
        """Learn how to use this bot here: your limits, where it works, the models offered."""
        guild_id = interaction.guild_id
        assert guild_id is not None
        await defer_privately(interaction)
        roles = [role.id for role in getattr(interaction.user, "roles", [])]
        standing = await self.services.quotas.standing(guild_id, interaction.user.id, roles)
        embed = discord.Embed(title=HELP_TITLE, description=HELP_INTRO, colour=discord.Colour.blurple())
        embed.add_field(name="How to use it", value=HELP_HOW, inline=False)
        server = self.services.server_settings.get(guild_id)
        if server.chat:
            locale = interaction.locale
            embed.add_field(
                name=i18n.translate("help.chat.name", locale), value=i18n.translate("help.chat", locale), inline=False
            )
        embed.add_field(name="Your limits here", value=_limits(standing, interaction.locale), inline=False)
        menu = self.services.intake.admission.models
        default = menu.default_for(server)
        models = ", ".join(f"{spec.name} (default)" if spec is default else spec.name for spec in menu.offered(server))
        embed.add_field(name="Where", value=help_places(server.allowed_channel_ids, interaction.locale), inline=False)
        embed.add_field(name="Models", value=cut(models, FIELD_VALUE_LIMIT), inline=False)
        embed.add_field(name="Images per request", value=f"1 to {server.max_n}")
        embed.add_field(name="Cooldown", value=help_cooldown(server.cooldown_seconds))
        if interaction.permissions.manage_guild:
            embed.add_field(name="For admins", value=HELP_ADMIN, inline=False)
        await interaction.followup.send(embed=embed, ephemeral=True, allowed_mentions=NO_MENTIONS)

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await answer_error(interaction, error)


def _limits(standing: list[RuleUsage], locale: discord.Locale) -> str:
    """The member's standing: each rule that applies, then what they can make now."""
    if not standing:
        return HELP_NO_LIMITS
    lines = [usage_line(usage, locale) for usage in standing]
    lines.append(images_left_line(min(usage.remaining for usage in standing)))
    return cut("\n".join(lines), FIELD_VALUE_LIMIT)


async def setup(bot: commands.Bot | commands.AutoShardedBot) -> None:
    await bot.add_cog(HelpCog(bot, services_of(bot)))

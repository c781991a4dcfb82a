"""/usage: a member's images against each rule that applies to them, what is left, and when it resets."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from cogs._embeds import NO_MENTIONS
from cogs._errors import answer_error
from cogs._intake import role_ids_of
from cogs._replies import defer_privately
from cogs._services import Services, services_of
from cogs._texts import noun, usage_line


class UsageCog(commands.Cog):
    def __init__(self, bot: commands.Bot | commands.AutoShardedBot, services: Services) -> None:
        self.bot = bot
        self.services = services

    @app_commands.command(name="usage")
    @app_commands.guild_only()
    async def usage(self, interaction: discord.Interaction) -> None:
        """See how many images you have left, and when your limits reset."""
        assert interaction.guild_id is not None
        await defer_privately(interaction)
        roles = role_ids_of(interaction.user)
        usages = await self.services.quotas.standing(interaction.guild_id, interaction.user.id, roles)
        if usages:
            lines = [usage_line(usage) for usage in usages]
            left = min(usage.remaining for usage in usages)
            lines.append("")
            lines.append(f"You can make **{left:,}** more {noun(left, 'image')} now.")
        else:
            lines = ["No limits apply to you in this server."]
        embed = discord.Embed(title="Your images", description="\n".join(lines), colour=discord.Colour.blurple())
        await interaction.followup.send(embed=embed, ephemeral=True, allowed_mentions=NO_MENTIONS)

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await answer_error(interaction, error)


async def setup(bot: commands.Bot | commands.AutoShardedBot) -> None:
    await bot.add_cog(UsageCog(bot, services_of(bot)))

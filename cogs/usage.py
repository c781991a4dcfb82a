"""/usage: a member's images against each rule that applies to them, what is left, and when it resets."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from cogs._embeds import NO_MENTIONS, noun
from cogs._errors import answer_error
from cogs._services import Services, services_of
from storage.quotas import Period, RuleScope, RuleUsage

_PERIOD_WORD = {Period.DAY: "today", Period.WEEK: "this week", Period.MONTH: "this month"}


def usage_line(usage: RuleUsage) -> str:
    """One rule, in the member's terms: whose limit, used, left, and when it resets (in their own time zone)."""
    if usage.scope is RuleScope.SERVER:
        whose = "The server's pool"
    elif usage.scope is RuleScope.GLOBAL:
        whose = "Imagine's overall limit"
    elif usage.scope is RuleScope.ROLE:
        whose = f"Your limit from <@&{usage.role_id}>"
    else:
        whose = "Your limit"
    if usage.limit == 0:
        return f"**{whose}**: generation is off (a server admin can change that)."
    resets = discord.utils.format_dt(usage.resets_at, "R")
    return (
        f"**{whose}** {_PERIOD_WORD[usage.period]}: {usage.used:,} of {usage.limit:,} used, "
        f"**{usage.remaining:,} left**. Resets {resets}."
    )


class UsageCog(commands.Cog):
    def __init__(self, bot: commands.Bot | commands.AutoShardedBot, services: Services) -> None:
        self.bot = bot
        self.services = services

    @app_commands.command(name="usage")
    @app_commands.guild_only()
    async def usage(self, interaction: discord.Interaction) -> None:
        """See how many images you have left, and when your limits reset."""
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        roles = [role.id for role in getattr(interaction.user, "roles", [])]
        usages = await self.services.store.quotas.usage_for_member(interaction.guild_id, interaction.user.id, roles)
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

"""Remix: answers the forms a result's Remix button opened (cogs/_remix.py), whenever they are sent."""

from __future__ import annotations

import discord
from discord.ext import commands

from cogs import _forms
from cogs._gate import allowed_here
from cogs._remix import FORM_KIND, answer_form
from cogs._services import Services, services_of


class RemixCog(commands.Cog):
    def __init__(self, bot: commands.Bot | commands.AutoShardedBot, services: Services) -> None:
        self.bot = bot
        self.services = services

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """A sent Remix form, answered from its record (before or after a restart)."""
        form = _forms.submitted(interaction)
        if form is None or form[0] != FORM_KIND or not await allowed_here(interaction):
            return
        await answer_form(interaction, self.services, form[1])


async def setup(bot: commands.Bot | commands.AutoShardedBot) -> None:
    await bot.add_cog(RemixCog(bot, services_of(bot)))

"""The servers the bot is in: one added to a server off the allow-list leaves it; those already in are logged.

A server the bot joins while connected arrives as `on_guild_join`; servers it was already in arrive at
start-up as available, never as joins. So only a join makes the bot leave: a typo in ALLOWED_GUILD_IDS must
not make it leave every server it serves at the next start. Those are logged for the operator instead.
"""

from __future__ import annotations

import logging

import discord
from discord.ext import commands

from cogs._services import Services, services_of

log = logging.getLogger(__name__)


class ServersCog(commands.Cog):
    def __init__(self, bot: commands.Bot | commands.AutoShardedBot, services: Services) -> None:
        self.bot = bot
        self.services = services
        self._reported: set[int] = set()

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        if self.services.settings.guild_allowed(guild.id):
            log.info("Added to server %s (%s)", guild.id, guild.name)
            return
        log.warning("Added to server %s (%s), which is not on ALLOWED_GUILD_IDS: leaving it", guild.id, guild.name)
        try:
            await guild.leave()
        except discord.HTTPException:
            log.warning("Could not leave server %s", guild.id, exc_info=True)

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        if self.services.settings.guild_allowed(guild.id) or guild.id in self._reported:
            return
        self._reported.add(guild.id)
        log.warning(
            "The bot is in server %s (%s), which is not on ALLOWED_GUILD_IDS: it answers nothing there. Remove the "
            "bot from it, or add the id to ALLOWED_GUILD_IDS.",
            guild.id,
            guild.name,
        )


async def setup(bot: commands.Bot | commands.AutoShardedBot) -> None:
    await bot.add_cog(ServersCog(bot, services_of(bot)))

"""The servers the bot is in: one added to a server off the allow-list leaves it; one added to an allowed server
greets its admins once; those already in are logged. A role a server deletes takes its quota rule with it.

A server the bot joins while connected arrives as `on_guild_join`; servers it was already in arrive at
start-up as available, never as joins. So only a join makes the bot leave, or greet: a typo in ALLOWED_GUILD_IDS
must not make it leave every server it serves at the next start, and a restart must not greet anyone. Servers off
the list are logged for the operator instead.

The welcome (docs/admins.md, "The welcome") goes to the server's system channel, or else the first text channel
where the bot may write; nowhere if there is none; in the server's language (docs/i18n.md). It is recorded before
it is posted, so that a server that removes the bot and adds it again is not greeted twice.
"""

from __future__ import annotations

import logging

import discord
from discord.ext import commands

import i18n
from cogs._embeds import NO_MENTIONS
from cogs._locale import server_locale
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
            await self._welcome(guild)
            return
        log.warning("Added to server %s (%s), which is not on ALLOWED_GUILD_IDS: leaving it", guild.id, guild.name)
        try:
            await guild.leave()
        except discord.HTTPException:
            log.warning("Could not leave server %s", guild.id, exc_info=True)

    @commands.Cog.listener()
    async def on_guild_role_delete(self, role: discord.Role) -> None:
        # `/quota clear` picks a role from the server's list: a deleted role's rule could never be cleared, and
        # would stay in `/quota show` for good.
        if not self.services.settings.guild_allowed(role.guild.id):
            return
        if await self.services.quotas.forget_role(role.guild.id, role.id):
            log.info("Server %s deleted role %s: its quota rule is removed", role.guild.id, role.id)

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

    async def _welcome(self, guild: discord.Guild) -> None:
        channel = welcome_channel(guild)
        if channel is None:
            log.info("Server %s: no channel where Imagine may write, so no welcome", guild.id)
            return
        server_settings = self.services.server_settings
        if not await server_settings.claim_welcome(guild.id):
            log.info("Server %s was welcomed before", guild.id)
            return
        try:
            locale = server_locale(guild.preferred_locale, server_settings.get(guild.id).language)
            await channel.send(i18n.translate("welcome", locale), allowed_mentions=NO_MENTIONS)
        except discord.HTTPException:
            log.warning("Server %s: could not post the welcome in #%s", guild.id, channel.id, exc_info=True)
            await server_settings.release_welcome(guild.id)
            return
        log.info("Server %s welcomed in channel %s", guild.id, channel.id)


def welcome_channel(guild: discord.Guild) -> discord.TextChannel | None:
    """The system channel if the bot may write there, else the first text channel where it may; else None."""
    me = guild.me
    candidates = [guild.system_channel] if guild.system_channel is not None else []
    candidates += sorted(guild.text_channels, key=lambda channel: channel.position)
    for channel in candidates:
        permissions = channel.permissions_for(me)
        if permissions.view_channel and permissions.send_messages:
            return channel
    return None


async def setup(bot: commands.Bot | commands.AutoShardedBot) -> None:
    await bot.add_cog(ServersCog(bot, services_of(bot)))

"""/imagine-admin status: the operator's view of this process, in the operator's own server only.

The command exists only with OPERATOR_GUILD_ID: it is synced to that server alone (never globally), shown by
Discord to its administrators, and answered only for the application's owner or its team's members
(cogs/_operators.py). Everyone else is told so, privately, and sees nothing.
"""

from __future__ import annotations

import time

import discord
from discord import app_commands
from discord.ext import commands

from cogs._embeds import NO_MENTIONS
from cogs._errors import answer_error
from cogs._replies import answer, defer_privately
from cogs._services import Services, services_of
from generation.operator_status import OperatorSnapshot
from generation.version import VERSION

NOT_AN_OPERATOR = "Only the bot's owner (or its team) can use this command."


@app_commands.guild_only()
@app_commands.default_permissions(administrator=True)
class AdminCog(commands.GroupCog, group_name="imagine-admin", group_description="The bot owner's commands"):
    def __init__(self, bot: commands.AutoShardedBot, services: Services) -> None:
        self.bot = bot
        self.services = services
        self._started = time.monotonic()
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        if self.services.operators.allows(interaction.user.id):
            return True
        await answer(interaction, NOT_AN_OPERATOR)
        return False

    @app_commands.command(name="status")
    async def status(self, interaction: discord.Interaction) -> None:
        """This bot process: shards, servers, jobs, today's images, ToAPIs and the database."""
        await defer_privately(interaction)
        assert self.services.operator_status is not None  # built with the cog's services whenever it is loaded
        snapshot = await self.services.operator_status.snapshot()
        embed = status_embed(self.bot, snapshot, uptime=time.monotonic() - self._started)
        await interaction.followup.send(embed=embed, ephemeral=True, allowed_mentions=NO_MENTIONS)

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await answer_error(interaction, error)


def status_embed(bot: commands.AutoShardedBot, snapshot: OperatorSnapshot, *, uptime: float) -> discord.Embed:
    """The status, one field per figure."""
    embed = discord.Embed(title="Imagine status", colour=discord.Colour.blurple())
    embed.add_field(name="Version", value=VERSION)
    embed.add_field(name="Uptime", value=duration(uptime))
    embed.add_field(name="Servers", value=f"{len(bot.guilds):,}")
    shards = [
        f"{shard_id}: {'closed' if info.is_closed() else latency_text(info.latency)}"
        for shard_id, info in sorted(bot.shards.items())
    ]
    embed.add_field(name=f"Shards ({bot.shard_count or 1} in all)", value="\n".join(shards) or "none", inline=False)
    jobs = f"{snapshot.queued:,} waiting, {snapshot.in_flight:,} in flight"
    embed.add_field(name="Jobs", value=jobs if snapshot.accepting else f"{jobs} (not taking jobs)")
    limit = snapshot.global_daily_limit
    today = f"{snapshot.images_today:,} of {limit:,}" if limit is not None else f"{snapshot.images_today:,} (no limit)"
    embed.add_field(name="Images today (UTC)", value=today)
    breaker = f"open: {snapshot.breaker_reason}" if snapshot.breaker_open else "closed (ToAPIs answers)"
    embed.add_field(name="Circuit breaker", value=breaker[:1024], inline=False)
    embed.add_field(name="ToAPIs balance", value=balance_text(snapshot))
    size = snapshot.database_bytes
    embed.add_field(name="Database", value=f"{size / 1_000_000:,.1f} MB" if size is not None else "size unknown")
    return embed


def balance_text(snapshot: OperatorSnapshot) -> str:
    reading = snapshot.balance
    if reading is None:
        return "not read (ToAPIs did not answer)"
    balance = reading.balance
    if balance.unlimited:
        return "unlimited"
    credits = "?" if balance.remain_credits is None else f"{balance.remain_credits:,.0f}"
    dollars = "" if balance.remain_balance is None else f" (${balance.remain_balance:,.2f})"
    return f"{credits} credits{dollars}, read {duration(max(time.time() - reading.read_at, 0))} ago"


def latency_text(latency: float) -> str:
    return "connecting" if latency != latency or latency == float("inf") else f"{latency * 1000:,.0f} ms"


def duration(seconds: float) -> str:
    """ "3 d 4 h", "2 h 5 min", "42 s"."""
    seconds = int(seconds)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


async def setup(bot: commands.Bot | commands.AutoShardedBot) -> None:
    services = services_of(bot)
    guild_id = services.settings.operator_guild_id
    if guild_id is None or not isinstance(bot, commands.AutoShardedBot):
        return  # no operator's server: the command does not exist
    await bot.add_cog(AdminCog(bot, services), guild=discord.Object(guild_id))

"""/imagine-admin status: the operator's view of this process, in the operator's own server only.

The command exists only with OPERATOR_GUILD_ID: it is synced to that server alone (never globally), shown by
Discord to its administrators, and answered only for the application's owner or its team's members
(cogs/_operators.py). Everyone else is told so, privately, and sees nothing. The status speaks the operator's own
locale (a private answer); what the process reports in its own words (the circuit breaker's reason) stays as the
log has it.
"""

from __future__ import annotations

import time

import discord
from discord import app_commands
from discord.ext import commands

import i18n
from cogs._embeds import NO_MENTIONS
from cogs._errors import answer_error
from cogs._replies import answer, defer_privately
from cogs._services import Services, services_of
from cogs._texts import duration
from cogs._translator import command_text
from generation.operator_status import OperatorSnapshot
from generation.version import VERSION


@app_commands.guild_only()
@app_commands.default_permissions(administrator=True)
class AdminCog(commands.GroupCog, group_name="imagine-admin", group_description=command_text("command.imagine-admin")):
    def __init__(self, bot: commands.AutoShardedBot, services: Services) -> None:
        self.bot = bot
        self.services = services
        self._started = time.monotonic()
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        if self.services.operators.allows(interaction.user.id):
            return True
        await answer(interaction, i18n.translate("admin.not_operator", interaction.locale))
        return False

    @app_commands.command(name="status", description=command_text("command.imagine-admin.status"))
    async def status(self, interaction: discord.Interaction) -> None:
        """This bot process: shards, servers, jobs, today's images, ToAPIs and the database."""
        await defer_privately(interaction)
        assert self.services.operator_status is not None  # built with the cog's services whenever it is loaded
        snapshot = await self.services.operator_status.snapshot()
        embed = status_embed(self.bot, snapshot, uptime=time.monotonic() - self._started, locale=interaction.locale)
        await interaction.followup.send(embed=embed, ephemeral=True, allowed_mentions=NO_MENTIONS)

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await answer_error(interaction, error)


def status_embed(
    bot: commands.AutoShardedBot, snapshot: OperatorSnapshot, *, uptime: float, locale: i18n.LocaleLike
) -> discord.Embed:
    """The status, one field per figure, in the operator's `locale`."""

    def t(key: str, **params: object) -> str:
        return i18n.translate(key, locale, **params)

    def n(value: int) -> str:
        return i18n.number(value, locale)

    embed = discord.Embed(title=t("admin.title"), colour=discord.Colour.blurple())
    embed.add_field(name=t("admin.version"), value=VERSION)
    embed.add_field(name=t("admin.uptime"), value=duration(int(uptime), locale))
    embed.add_field(name=t("admin.servers"), value=n(len(bot.guilds)))
    shards = [
        f"{shard_id}: {t('admin.shard.closed') if info.is_closed() else latency_text(info.latency, locale)}"
        for shard_id, info in sorted(bot.shards.items())
    ]
    embed.add_field(
        name=t("admin.shards", count=n(bot.shard_count or 1)),
        value="\n".join(shards) or t("settings.none"),
        inline=False,
    )
    jobs = t("admin.jobs", queued=n(snapshot.queued), in_flight=n(snapshot.in_flight))
    embed.add_field(
        name=t("admin.field.jobs"), value=jobs if snapshot.accepting else t("admin.jobs.refusing", jobs=jobs)
    )
    limit = snapshot.global_daily_limit
    if limit is not None:
        today = t("admin.images_today.of", images=n(snapshot.images_today), limit=n(limit))
    else:
        today = t("admin.images_today.no_limit", images=n(snapshot.images_today))
    embed.add_field(name=t("admin.field.images_today"), value=today)
    if snapshot.breaker_open:
        breaker = t("admin.breaker.open", reason=snapshot.breaker_reason)
    else:
        breaker = t("admin.breaker.closed")
    embed.add_field(name=t("admin.field.breaker"), value=breaker[:1024], inline=False)
    embed.add_field(name=t("admin.field.balance"), value=balance_text(snapshot, locale))
    size = snapshot.database_bytes
    database = t("admin.database", size=i18n.number(size / 1_000_000, locale, decimals=1)) if size is not None else None
    embed.add_field(name=t("admin.field.database"), value=database or t("admin.database.unknown"))
    return embed


def balance_text(snapshot: OperatorSnapshot, locale: i18n.LocaleLike) -> str:
    reading = snapshot.balance
    if reading is None:
        return i18n.translate("admin.balance.unread", locale)
    balance = reading.balance
    if balance.unlimited:
        return i18n.translate("admin.balance.unlimited", locale)
    credits = "?" if balance.remain_credits is None else i18n.number(round(balance.remain_credits), locale)
    ago = duration(int(max(time.time() - reading.read_at, 0)), locale)
    if balance.remain_dollars is None:
        return i18n.translate("admin.balance", locale, credits=credits, ago=ago)
    dollars = i18n.number(balance.remain_dollars, locale, decimals=2)
    return i18n.translate("admin.balance.dollars", locale, credits=credits, dollars=dollars, ago=ago)


def latency_text(latency: float, locale: i18n.LocaleLike) -> str:
    if latency != latency or latency == float("inf"):
        return i18n.translate("admin.shard.connecting", locale)
    return i18n.translate("admin.shard.latency", locale, milliseconds=i18n.number(round(latency * 1000), locale))


async def setup(bot: commands.Bot | commands.AutoShardedBot) -> None:
    services = services_of(bot)
    guild_id = services.settings.operator_guild_id
    if guild_id is None or not isinstance(bot, commands.AutoShardedBot):
        return  # no operator's server: the command does not exist
    await bot.add_cog(AdminCog(bot, services), guild=discord.Object(guild_id))

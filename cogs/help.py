"""/help: what the bot does and how to use it, what applies to this member here, and for admins what configures it;
in the member's locale (a private answer)."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

import i18n
from cogs._embeds import NO_MENTIONS
from cogs._errors import answer_error
from cogs._intake import role_ids_of
from cogs._limits import FIELD_VALUE_LIMIT, cut
from cogs._replies import defer_privately
from cogs._services import Services, services_of
from cogs._texts import help_cooldown, help_how, help_places, usage_line
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
        # From the interaction, as every quota is read: `Member.roles` lacks those not cached yet after a start.
        roles = role_ids_of(interaction.user)
        standing = await self.services.quotas.standing(guild_id, interaction.user.id, roles)
        locale = interaction.locale

        def t(key: str, **params: object) -> str:
            return i18n.translate(key, locale, **params)

        embed = discord.Embed(title=t("help.title"), description=t("help.intro"), colour=discord.Colour.blurple())
        embed.add_field(name=t("help.field.how"), value=help_how(locale), inline=False)
        server = self.services.server_settings.get(guild_id)
        if server.chat:
            embed.add_field(name=t("help.chat.name"), value=t("help.chat"), inline=False)
        embed.add_field(name=t("help.field.limits"), value=_limits(standing, locale), inline=False)
        menu = self.services.intake.admission.models
        default = menu.default_for(server)
        names = [
            t("choice.model.default", model=spec.name) if spec is default else spec.name
            for spec in menu.offered(server)
        ]
        embed.add_field(name=t("help.field.where"), value=help_places(server.allowed_channel_ids, locale), inline=False)
        embed.add_field(
            name=t("help.field.models"), value=cut(i18n.join(names, locale), FIELD_VALUE_LIMIT), inline=False
        )
        per_request = t("list.range", first=i18n.number(1, locale), last=i18n.number(server.max_n, locale))
        embed.add_field(name=t("help.field.per_request"), value=per_request)
        embed.add_field(name=t("help.field.cooldown"), value=help_cooldown(server.cooldown_seconds, locale))
        # Each language in its own words, so that a member finds theirs whatever this text is in.
        languages = i18n.join([i18n.language_name(code) for code in i18n.SUPPORTED], locale)
        embed.add_field(name=t("help.field.languages"), value=t("help.languages", languages=languages), inline=False)
        if interaction.permissions.manage_guild:
            embed.add_field(name=t("help.field.admins"), value=t("help.admin"), inline=False)
        await interaction.followup.send(embed=embed, ephemeral=True, allowed_mentions=NO_MENTIONS)

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await answer_error(interaction, error)


def _limits(standing: list[RuleUsage], locale: discord.Locale) -> str:
    """The member's standing: each rule that applies, then what they can make now."""
    if not standing:
        return i18n.translate("usage.no_limits", locale)
    lines = [usage_line(usage, locale) for usage in standing]
    lines.append(i18n.plural("usage.can_make", min(usage.remaining for usage in standing), locale))
    return cut("\n".join(lines), FIELD_VALUE_LIMIT)


async def setup(bot: commands.Bot | commands.AutoShardedBot) -> None:
    await bot.add_cog(HelpCog(bot, services_of(bot)))

"""/quota: server admins cap what their server spends and see who uses it.

Counting follows docs/admins.md (How quotas count): images, not requests; UTC days, ISO weeks and calendar
months; a ledger of reservations stamped with their time, so changing a rule never resets what was used. Every
answer is private, in the admin's locale; the CSV export's column headers stay fixed English (machines read them).
"""

from __future__ import annotations

import logging
import tempfile
from datetime import UTC, date, datetime, timedelta
from typing import Final

import discord
from discord import app_commands
from discord.ext import commands

import i18n
from cogs._embeds import NO_MENTIONS
from cogs._errors import answer_error
from cogs._pagination import pages_of, send_pages
from cogs._replies import answer, defer_privately
from cogs._services import Services, services_of
from cogs._texts import cap_note, images, limit_text
from cogs._translator import command_text
from generation.quota_service import RuleSet
from generation.refusals import (
    DaysReversed,
    InvalidDay,
    MemberMissing,
    MemberNotExpected,
    RoleMissing,
    RoleNotExpected,
)
from storage.quotas import MemberImages, Period, RuleScope, RuleStatus

log = logging.getLogger(__name__)

PERIOD_CHOICES: Final = [
    app_commands.Choice(name=command_text(f"choice.period.{p.value}"), value=p.value) for p in Period
]
MAX_LIMIT: Final = 1_000_000
EXPORT_NAME: Final = "imagine-usage.csv"


def mebibytes(size: int, locale: i18n.LocaleLike) -> str:
    """A size as Discord states upload limits (10 MiB), to two significant digits when small."""
    value = size / 2**20
    shown = round(value) if value >= 10 else float(f"{value:.2g}")
    return i18n.translate("quota.mebibytes", locale, size=i18n.number(shown, locale))


def _parse_day(text: str | None, name: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidDay(name, text) from None


def _governed(status: RuleStatus, role_rules: frozenset[int], overridden: frozenset[int]) -> list[MemberImages]:
    """The members a per-member rule governs: none who has a limit of their own (`overridden`); a role rule
    those whose latest request it was checked against, the member rule everyone else (a role rule removed since
    counts as the member rule again)."""
    if status.scope is RuleScope.MEMBER_CAP:
        return list(status.members)
    members = [m for m in status.members if m.user_id not in overridden]
    if status.scope is RuleScope.ROLE:
        return [m for m in members if m.role_id == status.role_id]
    return [m for m in members if m.role_id is None or m.role_id not in role_rules]


def _scope_choices(*scopes: str) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=command_text(f"choice.scope.{scope}"), value=scope) for scope in scopes]


def _described(command: str, *options: str) -> dict[str, app_commands.locale_str]:
    """The descriptions of a /quota command's options, for `app_commands.describe`."""
    return {option: command_text(f"option.quota.{command}.{option}") for option in options}


_RULE_LABELS: Final = {
    RuleScope.SERVER: "quota.show.server",
    RuleScope.ROLE: "quota.show.role",
    RuleScope.MEMBER_OVERRIDE: "quota.show.member_override",
    RuleScope.SERVER_CAP: "quota.show.server_cap",
    RuleScope.MEMBER_CAP: "quota.show.member_cap",
}
# What /quota clear says, by scope and whether there was such a rule (the rule's name is part of the grammar).
_CLEARED: Final = {
    (RuleScope.SERVER, True): "quota.clear.server.removed",
    (RuleScope.SERVER, False): "quota.clear.server.none",
    (RuleScope.MEMBER, True): "quota.clear.member.removed",
    (RuleScope.MEMBER, False): "quota.clear.member.none",
    (RuleScope.ROLE, True): "quota.clear.role.removed",
    (RuleScope.ROLE, False): "quota.clear.role.none",
    (RuleScope.MEMBER_OVERRIDE, True): "quota.clear.member_override.removed",
    (RuleScope.MEMBER_OVERRIDE, False): "quota.clear.member_override.none",
}


def _rule_lines(
    status: RuleStatus, role_rules: frozenset[int], overridden: frozenset[int], locale: i18n.LocaleLike
) -> list[str]:
    def t(key: str, **params: object) -> str:
        return i18n.translate(key, locale, **params)

    resets = discord.utils.format_dt(status.resets_at, "R")
    label = t(_RULE_LABELS.get(status.scope, "quota.show.member"), role=status.role_id, member=status.user_id)
    limit = limit_text(status.limit, status.period, locale)
    if status.scope in (RuleScope.SERVER_CAP, RuleScope.MEMBER_CAP):
        head = t("quota.show.rule_cap", rule=label, limit=limit)
    elif status.is_default:
        head = t("quota.show.rule_default", rule=label, limit=limit)
    else:
        head = t("quota.show.rule", rule=label, limit=limit)
    if status.used is not None:
        return [t("quota.show.used", rule=head, used=i18n.number(status.used, locale), resets=resets)]
    lines = [t("quota.show.resets", rule=head, resets=resets)]
    members = _governed(status, role_rules, overridden)
    lines += [f"  • <@{m.user_id}>: {i18n.number(m.images, locale)}" for m in members[:10]]
    if len(members) > 10:
        lines.append("  • " + i18n.plural("quota.show.more_members", len(members) - 10, locale))
    return lines


async def _confirm(interaction: discord.Interaction, result: RuleSet, key: str, **mentions: int) -> None:
    """Tell the admin the rule now in force (the catalog's `key`, with its role or member), and the operator's cap
    when it is lower."""
    rule, locale = result.rule, interaction.locale
    text = i18n.translate(key, locale, limit=limit_text(rule.limit, rule.period, locale), **mentions)
    await answer(
        interaction, text + cap_note(result.cap_scope, result.cap, locale), ephemeral=True, allowed_mentions=NO_MENTIONS
    )


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class QuotaCog(commands.GroupCog, group_name="quota", group_description=command_text("command.quota")):
    def __init__(self, bot: commands.Bot | commands.AutoShardedBot, services: Services) -> None:
        self.bot = bot
        self.services = services
        super().__init__()

    @app_commands.command(name="set", description=command_text("command.quota.set"))
    @app_commands.describe(**_described("set", "scope", "limit", "period"))
    @app_commands.choices(scope=_scope_choices("server", "member"), period=PERIOD_CHOICES)
    async def set_rule(
        self,
        interaction: discord.Interaction,
        scope: str,
        limit: app_commands.Range[int, 0, MAX_LIMIT],
        period: str = Period.DAY.value,
    ) -> None:
        """Set the server's pool or each member's limit, in images per day, week or month."""
        assert interaction.guild_id is not None
        await defer_privately(interaction)
        result = await self.services.quotas.set_rule(interaction.guild_id, RuleScope(scope), limit, Period(period))
        key = "quota.set.server" if result.rule.scope is RuleScope.SERVER else "quota.set.member"
        await _confirm(interaction, result, key)

    @app_commands.command(name="role", description=command_text("command.quota.role"))
    @app_commands.describe(**_described("role", "role", "limit", "period"))
    @app_commands.choices(period=PERIOD_CHOICES)
    async def role_rule(
        self,
        interaction: discord.Interaction,
        role: discord.Role,
        limit: app_commands.Range[int, 0, MAX_LIMIT],
        period: str = Period.DAY.value,
    ) -> None:
        """Give members with a role their own limit (the largest among their roles applies)."""
        assert interaction.guild_id is not None
        await defer_privately(interaction)
        result = await self.services.quotas.set_rule(
            interaction.guild_id, RuleScope.ROLE, limit, Period(period), role_id=role.id
        )
        await _confirm(interaction, result, "quota.set.role", role=role.id)

    @app_commands.command(name="member", description=command_text("command.quota.member"))
    @app_commands.describe(**_described("member", "member", "limit", "period"))
    @app_commands.choices(period=PERIOD_CHOICES)
    async def member_rule(
        self,
        interaction: discord.Interaction,
        member: discord.User,
        limit: app_commands.Range[int, 0, MAX_LIMIT],
        period: str = Period.DAY.value,
    ) -> None:
        """Give one member their own limit: it wins over their role and member limits."""
        assert interaction.guild_id is not None
        await defer_privately(interaction)
        result = await self.services.quotas.set_rule(
            interaction.guild_id, RuleScope.MEMBER_OVERRIDE, limit, Period(period), user_id=member.id
        )
        await _confirm(interaction, result, "quota.set.member_override", member=member.id)

    @app_commands.command(name="clear", description=command_text("command.quota.clear"))
    @app_commands.describe(**_described("clear", "scope", "role", "member"))
    @app_commands.choices(scope=_scope_choices("server", "member", "role", RuleScope.MEMBER_OVERRIDE.value))
    async def clear_rule(
        self,
        interaction: discord.Interaction,
        scope: str,
        role: discord.Role | None = None,
        member: discord.User | None = None,
    ) -> None:
        """Remove a rule: the operator's default (or the member's other limits) applies again."""
        assert interaction.guild_id is not None
        rule_scope = RuleScope(scope)
        if rule_scope is RuleScope.ROLE and role is None:
            raise RoleMissing()
        if rule_scope is not RuleScope.ROLE and role is not None:
            raise RoleNotExpected()
        if rule_scope is RuleScope.MEMBER_OVERRIDE and member is None:
            raise MemberMissing()
        if rule_scope is not RuleScope.MEMBER_OVERRIDE and member is not None:
            raise MemberNotExpected()
        await defer_privately(interaction)
        removed = await self.services.quotas.remove_rule(
            interaction.guild_id, rule_scope, role.id if role else None, user_id=member.id if member else None
        )
        text = i18n.translate(
            _CLEARED[rule_scope, bool(removed)],
            interaction.locale,
            role=role.id if role else None,
            member=member.id if member else None,
        )
        await answer(interaction, text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @app_commands.command(name="show", description=command_text("command.quota.show"))
    async def show(self, interaction: discord.Interaction) -> None:
        """Show every rule and this period's usage against it."""
        assert interaction.guild_id is not None
        await defer_privately(interaction)
        statuses = await self.services.quotas.rules(interaction.guild_id)
        role_rules = frozenset(s.role_id for s in statuses if s.scope is RuleScope.ROLE and s.role_id is not None)
        overridden = frozenset(
            s.user_id for s in statuses if s.scope is RuleScope.MEMBER_OVERRIDE and s.user_id is not None
        )
        locale = interaction.locale
        lines = [line for status in statuses for line in _rule_lines(status, role_rules, overridden, locale)]
        pages = pages_of(
            i18n.translate("quota.show.title", locale),
            lines,
            header=i18n.translate("quota.show.header", locale),
            empty=i18n.translate("quota.show.empty", locale),
            locale=locale,
        )
        await send_pages(interaction, pages)

    @app_commands.command(name="reset", description=command_text("command.quota.reset"))
    @app_commands.describe(**_described("reset", "member"))
    async def reset(self, interaction: discord.Interaction, member: discord.Member) -> None:
        """Forgive a member's usage of member and role limits this period (the server pool still counts it)."""
        assert interaction.guild_id is not None
        await defer_privately(interaction)
        forgiven = await self.services.quotas.forgive(interaction.guild_id, member.id)
        locale = interaction.locale
        text = i18n.translate("quota.reset", locale, images=images(forgiven, locale), member=member.id)
        await answer(interaction, text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @app_commands.command(name="usage", description=command_text("command.quota.usage"))
    @app_commands.describe(**_described("usage", "days"))
    async def usage(self, interaction: discord.Interaction, days: app_commands.Range[int, 1, 366] = 7) -> None:
        """Show images and failures by member and by day."""
        assert interaction.guild_id is not None
        await defer_privately(interaction)
        end = datetime.now(UTC)
        start = (end - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
        quotas = self.services.quotas
        members = await quotas.by_member(interaction.guild_id, start, end)
        daily = await quotas.by_day(interaction.guild_id, start, end)
        locale = interaction.locale

        def line(key: str, images: int, jobs: int, failures: int, blocked: int, **where: object) -> str:
            jobs_text = i18n.plural("quota.usage.jobs", jobs, locale)
            parts = [i18n.plural(key, images, locale, jobs=jobs_text, **where)]
            if failures:
                parts.append(i18n.plural("quota.usage.failed", failures, locale))
            if blocked:
                parts.append(i18n.plural("quota.usage.blocked", blocked, locale))
            return i18n.join(parts, locale)

        member_lines = [
            line("quota.usage.member", m.images, m.jobs, m.failures, m.blocked, member=m.user_id) for m in members
        ]
        day_lines = [
            line("quota.usage.day", d.images, d.jobs, d.failures, d.blocked, day=d.day.isoformat())
            for d in reversed(daily)
        ]
        total = sum(m.images for m in members)
        header = i18n.plural("quota.usage.header", total, locale, since=start.date().isoformat())
        empty = i18n.translate("quota.usage.empty", locale)
        pages = pages_of(
            i18n.translate("quota.usage.by_member", locale), member_lines, header=header, empty=empty, locale=locale
        )
        pages += pages_of(
            i18n.translate("quota.usage.by_day", locale), day_lines, header=header, empty=empty, locale=locale
        )
        await send_pages(interaction, pages)

    @app_commands.command(name="export", description=command_text("command.quota.export"))
    @app_commands.describe(**_described("export", "start", "end"))
    async def export(self, interaction: discord.Interaction, start: str | None = None, end: str | None = None) -> None:
        """Attach the usage log as a CSV file, optionally for a range of days."""
        assert interaction.guild_id is not None
        first, last = _parse_day(start, "start"), _parse_day(end, "end")
        if first and last and first > last:
            raise DaysReversed()
        await defer_privately(interaction)
        since = datetime(first.year, first.month, first.day, tzinfo=UTC) if first else None
        # The day after the last one, when the calendar has one: after 9999-12-31 nothing is left to leave out.
        until = (
            datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
            if last and last < date.max
            else None
        )
        limit = interaction.filesize_limit
        with tempfile.TemporaryFile() as file:
            rows = await self.services.quotas.export_csv(file, guild_id=interaction.guild_id, start=since, end=until)
            size = file.tell()
            locale = interaction.locale
            if size > limit:
                await interaction.followup.send(
                    i18n.translate(
                        "quota.export.too_large", locale, size=mebibytes(size, locale), limit=mebibytes(limit, locale)
                    ),
                    ephemeral=True,
                )
                return
            file.seek(0)
            await interaction.followup.send(
                i18n.plural("quota.export.rows", rows, locale),
                file=discord.File(file, filename=EXPORT_NAME),
                ephemeral=True,
            )

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await answer_error(interaction, error)


async def setup(bot: commands.Bot | commands.AutoShardedBot) -> None:
    await bot.add_cog(QuotaCog(bot, services_of(bot)))

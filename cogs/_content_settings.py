"""The content controls of `/imagine-settings`: `blocked-words`, `spoiler` and `mod-log` (docs/admins.md).

Three subcommand groups that the settings cog (cogs/imagine_settings.py) adds to its own group, so that they
share its permissions (Manage Server) and its place in Discord. Every answer is private to the admin who asked,
in their locale; the list of blocked words is shown nowhere but in `blocked-words list`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import discord
from discord import app_commands

import i18n
from cogs._embeds import NO_MENTIONS
from cogs._errors import answer_error
from cogs._limits import MESSAGE_LIST_LIMIT, cut
from cogs._pagination import pages_of, send_pages
from cogs._replies import answer, defer_privately
from cogs._services import Services
from cogs._translator import command_text
from generation.blocked_words import MAX_ENTRY_LENGTH, parse_entries
from generation.refusals import NoUsableBlockedWord
from storage.guild_settings import GuildSettings

# What an admin may type at once into `blocked-words add` or `remove`: many entries, separated by commas.
MAX_ENTRIES_TEXT: Final = 4000
# `blocked-words add` may list what was added, what was blocked already and what was left out: the three share the
# room a message leaves for lists.
ADD_LIST_LIMIT: Final = MESSAGE_LIST_LIMIT // 3
# Characters of entries per line of `blocked-words list`: a page stays readable.
LIST_LINE_LENGTH: Final = 200


def spoiler_text(settings: GuildSettings, locale: i18n.LocaleLike) -> str:
    """Whether results are posted as spoilers here."""
    if not settings.spoiler:
        return i18n.translate("settings.off", locale)
    if settings.spoiler_exempt_nsfw:
        return i18n.translate("settings.spoiler.on_except_nsfw", locale)
    return i18n.translate("settings.on", locale)


def entries_text(entries: Iterable[str], limit: int = MESSAGE_LIST_LIMIT // 2) -> str:
    """Entries as code, comma-separated, cut between entries to about `limit` characters."""
    shown = ", ".join(f"`{entry}`" for entry in entries)
    if len(shown) <= limit:
        return shown
    return cut(shown[:limit].rsplit(", ", 1)[0], limit) + ", …"


def entry_lines(entries: Iterable[str]) -> list[str]:
    """Entries as code, in order, several to a line of about LIST_LINE_LENGTH characters."""
    lines: list[str] = []
    current = ""
    for entry in sorted(entries):
        item = f"`{entry}`"
        if current and len(current) + len(item) + 2 > LIST_LINE_LENGTH:
            lines.append(current)
            current = ""
        current = f"{current}, {item}" if current else item
    return [*lines, current] if current else lines


class _SettingsGroup(app_commands.Group):
    """A group of `/imagine-settings` subcommands with the services, answering errors as the cog does."""

    def __init__(self, services: Services, *, name: str) -> None:
        super().__init__(name=name, description=command_text(f"command.imagine-settings.{name}"))
        self.services = services

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await answer_error(interaction, error)


class BlockedWordsGroup(_SettingsGroup):
    def __init__(self, services: Services) -> None:
        super().__init__(services, name="blocked-words")

    @app_commands.command(name="add", description=command_text("command.imagine-settings.blocked-words.add"))
    @app_commands.describe(words=command_text("option.imagine-settings.blocked-words.add.words"))
    async def add(self, interaction: discord.Interaction, words: app_commands.Range[str, 1, MAX_ENTRIES_TEXT]) -> None:
        """Refuse every prompt that contains one of these words or phrases."""
        assert interaction.guild_id is not None
        locale = interaction.locale
        parsed = parse_entries(words)
        if not parsed.usable:
            raise NoUsableBlockedWord(parsed.unusable)
        await defer_privately(interaction)
        server_settings = self.services.server_settings
        before = server_settings.get(interaction.guild_id).blocked_words
        settings = await server_settings.add_blocked_words(interaction.guild_id, parsed.usable)
        added = [entry for entry in parsed.usable if entry not in before]
        there = [entry for entry in parsed.usable if entry in before]
        if added:
            lines = [i18n.translate("blocked.added", locale, entries=entries_text(added, ADD_LIST_LIMIT))]
        else:
            lines = [i18n.translate("blocked.nothing_new", locale)]
        if there:
            lines.append(i18n.translate("blocked.already", locale, entries=entries_text(there, ADD_LIST_LIMIT)))
        if parsed.unusable:
            limit = i18n.number(MAX_ENTRY_LENGTH, locale)
            left_out = entries_text(parsed.unusable, ADD_LIST_LIMIT)
            lines.append(i18n.translate("blocked.left_out", locale, limit=limit, entries=left_out))
        lines.append(i18n.plural("blocked.count_refused", len(settings.blocked_words), locale))
        await answer(interaction, "\n".join(lines), ephemeral=True)

    @app_commands.command(name="remove", description=command_text("command.imagine-settings.blocked-words.remove"))
    @app_commands.describe(words=command_text("option.imagine-settings.blocked-words.remove.words"))
    async def remove(
        self, interaction: discord.Interaction, words: app_commands.Range[str, 1, MAX_ENTRIES_TEXT]
    ) -> None:
        """Allow blocked words or phrases again."""
        assert interaction.guild_id is not None
        locale = interaction.locale
        parsed = parse_entries(words)
        before = self.services.server_settings.get(interaction.guild_id).blocked_words
        listed = [entry for entry in parsed.usable if entry in before]
        missing = [entry for entry in parsed.usable if entry not in before] + list(parsed.unusable)
        await defer_privately(interaction)
        settings = await self.services.server_settings.remove_blocked_words(interaction.guild_id, listed)
        if listed:
            lines = [i18n.translate("blocked.allowed", locale, entries=entries_text(listed))]
        else:
            lines = [i18n.translate("blocked.none_blocked", locale)]
        if listed and missing:
            lines.append(i18n.translate("blocked.not_listed", locale, entries=entries_text(missing)))
        lines.append(i18n.plural("blocked.count", len(settings.blocked_words), locale))
        await answer(interaction, "\n".join(lines), ephemeral=True)

    @app_commands.command(name="list", description=command_text("command.imagine-settings.blocked-words.list"))
    async def list_words(self, interaction: discord.Interaction) -> None:
        """List this server's blocked words and phrases (only you see the list)."""
        assert interaction.guild_id is not None
        locale = interaction.locale
        entries = self.services.server_settings.get(interaction.guild_id).blocked_words
        header = i18n.plural("blocked.list_header", len(entries), locale) if entries else ""
        pages = pages_of(
            i18n.translate("blocked.title", locale),
            entry_lines(entries),
            header=header,
            empty=i18n.translate("blocked.empty", locale),
            locale=locale,
        )
        await send_pages(interaction, pages)


class SpoilerGroup(_SettingsGroup):
    def __init__(self, services: Services) -> None:
        super().__init__(services, name="spoiler")

    @app_commands.command(name="on", description=command_text("command.imagine-settings.spoiler.on"))
    @app_commands.rename(exempt_nsfw="exempt-nsfw")
    @app_commands.describe(exempt_nsfw=command_text("option.imagine-settings.spoiler.on.exempt-nsfw"))
    async def on(self, interaction: discord.Interaction, exempt_nsfw: bool = False) -> None:
        """Post results as spoilers in this server: members click to see them."""
        assert interaction.guild_id is not None
        await defer_privately(interaction)
        await self.services.server_settings.set_spoiler(interaction.guild_id, True, exempt_nsfw=exempt_nsfw)
        if exempt_nsfw:
            text = i18n.translate("spoiler.on_except_nsfw", interaction.locale)
        else:
            text = i18n.translate("spoiler.on", interaction.locale)
        await answer(interaction, text, ephemeral=True)

    @app_commands.command(name="off", description=command_text("command.imagine-settings.spoiler.off"))
    async def off(self, interaction: discord.Interaction) -> None:
        """Post results plainly again."""
        assert interaction.guild_id is not None
        await defer_privately(interaction)
        await self.services.server_settings.set_spoiler(interaction.guild_id, False)
        await answer(interaction, i18n.translate("spoiler.off", interaction.locale), ephemeral=True)


class ModLogGroup(_SettingsGroup):
    def __init__(self, services: Services) -> None:
        super().__init__(services, name="mod-log")

    @app_commands.command(name="on", description=command_text("command.imagine-settings.mod-log.on"))
    async def on(self, interaction: discord.Interaction) -> None:
        """Post refused prompts (blocked words, the image service's content policy) to the log channel."""
        assert interaction.guild_id is not None
        await defer_privately(interaction)
        settings = await self.services.server_settings.set_mod_log(interaction.guild_id, True)
        if settings.log_channel_id is None:
            text = i18n.translate("modlog.on_no_channel", interaction.locale)
        else:
            text = i18n.translate("modlog.on", interaction.locale, channel=settings.log_channel_id)
        await answer(interaction, text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @app_commands.command(name="off", description=command_text("command.imagine-settings.mod-log.off"))
    async def off(self, interaction: discord.Interaction) -> None:
        """Stop posting refused prompts."""
        assert interaction.guild_id is not None
        await defer_privately(interaction)
        await self.services.server_settings.set_mod_log(interaction.guild_id, False)
        await answer(interaction, i18n.translate("modlog.off", interaction.locale), ephemeral=True)


def content_groups(services: Services) -> list[app_commands.Group]:
    """The content controls' groups, for the settings cog to add to `/imagine-settings`."""
    return [BlockedWordsGroup(services), SpoilerGroup(services), ModLogGroup(services)]

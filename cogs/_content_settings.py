"""The content controls of `/imagine-settings`: `blocked-words`, `spoiler` and `mod-log` (docs/admins.md).

Three subcommand groups that the settings cog (cogs/imagine_settings.py) adds to its own group, so that they
share its permissions (Manage Server) and its place in Discord. Every answer is private to the admin who asked;
the list of blocked words is shown nowhere but in `blocked-words list`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import discord
from discord import app_commands

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
# Characters of entries per line of `blocked-words list`: a page stays readable.
LIST_LINE_LENGTH: Final = 200


def spoiler_text(settings: GuildSettings) -> str:
    """Whether results are posted as spoilers here."""
    if not settings.spoiler:
        return "off"
    return "on, except in age-restricted channels" if settings.spoiler_exempt_nsfw else "on"


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
        parsed = parse_entries(words)
        if not parsed.usable:
            raise NoUsableBlockedWord(parsed.unusable)
        await defer_privately(interaction)
        server_settings = self.services.server_settings
        before = server_settings.get(interaction.guild_id).blocked_words
        settings = await server_settings.add_blocked_words(interaction.guild_id, parsed.usable)
        added = [entry for entry in parsed.usable if entry not in before]
        there = [entry for entry in parsed.usable if entry in before]
        lines = [f"Blocked: {entries_text(added)}." if added else "Nothing new to block."]
        if there:
            lines.append(f"Already blocked: {entries_text(there)}.")
        if parsed.unusable:
            lines.append(
                f"Left out (no letters or digits, a single letter, or over {MAX_ENTRY_LENGTH} characters): "
                f"{entries_text(parsed.unusable)}."
            )
        lines.append(
            f"This server blocks {len(settings.blocked_words):,} words or phrases. A prompt that contains one is "
            "refused, and its member is not told which."
        )
        await answer(interaction, "\n".join(lines), ephemeral=True)

    @app_commands.command(name="remove", description=command_text("command.imagine-settings.blocked-words.remove"))
    @app_commands.describe(words=command_text("option.imagine-settings.blocked-words.remove.words"))
    async def remove(
        self, interaction: discord.Interaction, words: app_commands.Range[str, 1, MAX_ENTRIES_TEXT]
    ) -> None:
        """Allow blocked words or phrases again."""
        assert interaction.guild_id is not None
        parsed = parse_entries(words)
        before = self.services.server_settings.get(interaction.guild_id).blocked_words
        listed = [entry for entry in parsed.usable if entry in before]
        missing = [entry for entry in parsed.usable if entry not in before] + list(parsed.unusable)
        await defer_privately(interaction)
        settings = await self.services.server_settings.remove_blocked_words(interaction.guild_id, listed)
        lines = [f"Allowed again: {entries_text(listed)}." if listed else "None of those was blocked."]
        if listed and missing:
            lines.append(f"Not on the list: {entries_text(missing)}.")
        lines.append(f"This server blocks {len(settings.blocked_words):,} words or phrases.")
        await answer(interaction, "\n".join(lines), ephemeral=True)

    @app_commands.command(name="list", description=command_text("command.imagine-settings.blocked-words.list"))
    async def list_words(self, interaction: discord.Interaction) -> None:
        """List this server's blocked words and phrases (only you see the list)."""
        assert interaction.guild_id is not None
        entries = self.services.server_settings.get(interaction.guild_id).blocked_words
        header = (
            f"{len(entries):,} words or phrases, as Imagine compares them (no case, accents or punctuation)."
            if entries
            else ""
        )
        await send_pages(
            interaction, pages_of("Blocked words", entry_lines(entries), header=header, empty="No word is blocked.")
        )


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
        where = ", except in age-restricted channels" if exempt_nsfw else ""
        await answer(interaction, f"Results are now posted as spoilers in this server{where}.", ephemeral=True)

    @app_commands.command(name="off", description=command_text("command.imagine-settings.spoiler.off"))
    async def off(self, interaction: discord.Interaction) -> None:
        """Post results plainly again."""
        assert interaction.guild_id is not None
        await defer_privately(interaction)
        await self.services.server_settings.set_spoiler(interaction.guild_id, False)
        await answer(interaction, "Results are posted plainly again.", ephemeral=True)


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
            text = "The moderation log is on, but no log channel is set: choose one with /imagine-settings log-channel."
        else:
            text = f"Refused prompts will be posted in <#{settings.log_channel_id}>, hidden in spoilers."
        await answer(interaction, text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @app_commands.command(name="off", description=command_text("command.imagine-settings.mod-log.off"))
    async def off(self, interaction: discord.Interaction) -> None:
        """Stop posting refused prompts."""
        assert interaction.guild_id is not None
        await defer_privately(interaction)
        await self.services.server_settings.set_mod_log(interaction.guild_id, False)
        await answer(interaction, "Refused prompts are no longer posted.", ephemeral=True)


def content_groups(services: Services) -> list[app_commands.Group]:
    """The content controls' groups, for the settings cog to add to `/imagine-settings`."""
    return [BlockedWordsGroup(services), SpoilerGroup(services), ModLogGroup(services)]

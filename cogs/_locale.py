"""Which locale a message speaks (docs/i18n.md): private answers the member's, what the channel sees the server's.

Private answers take `interaction.locale` as it is. What the whole channel sees (a job's progress and result)
and what the bot posts on its own speak the server's language: the one its admins chose with
`/imagine-settings language`, else the server's preferred locale as Discord sends it (`en-US` unless the
server is a Community server).
"""

from __future__ import annotations

import discord

import i18n


def server_locale(guild_locale: discord.Locale | None, language: str | None) -> str:
    """The locale code of a server's public messages: its chosen `language`, else its preferred locale."""
    if language:
        return language
    return guild_locale.value if guild_locale is not None else i18n.SOURCE


def public_locale(interaction: discord.Interaction, language: str | None) -> str:
    """The locale of what the channel will see about this interaction (a job's progress and result)."""
    return server_locale(interaction.guild_locale, language)


def guild_locale(client: discord.Client, guild_id: int, language: str | None) -> str:
    """The locale of what the bot posts on its own in a server (an alert, the moderation log): its chosen
    `language`, else its preferred locale as the cache has it (English when the server is not cached)."""
    guild = client.get_guild(guild_id)
    return server_locale(guild.preferred_locale if guild is not None else None, language)

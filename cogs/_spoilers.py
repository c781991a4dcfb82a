"""Whether a job's results are posted as spoilers: `/imagine-settings spoiler` (docs/admins.md, Spoilers)."""

from __future__ import annotations

from collections.abc import Callable

import discord

from generation.server_settings import ServerSettings
from storage.jobs import Job


def age_restricted(client: discord.Client, guild_id: int, channel_id: int) -> bool:
    """Whether the channel (or the channel a thread belongs to) is age-restricted, as the bot's cache knows it.

    A channel the cache does not hold counts as not age-restricted: the exemption is then not applied, and the
    results stay hidden, which is the safer side.
    """
    guild = client.get_guild(guild_id)
    if guild is None:
        return False
    channel = guild.get_channel_or_thread(channel_id)
    if isinstance(channel, discord.Thread):
        parent = channel.parent
        return parent is not None and parent.is_nsfw()
    return isinstance(channel, discord.TextChannel | discord.ForumChannel | discord.VoiceChannel) and channel.is_nsfw()


def spoiler_rule(client: discord.Client, server_settings: ServerSettings) -> Callable[[Job], bool]:
    """The rule a reporter asks at delivery: spoilers where the server turned them on, except in age-restricted
    channels when the admins exempted those."""

    def spoils(job: Job) -> bool:
        return spoils_in(client, server_settings, job.guild_id, job.channel_id)

    return spoils


def spoils_in(client: discord.Client, server_settings: ServerSettings, guild_id: int, channel_id: int) -> bool:
    """Whether results posted in this channel now are spoilers, by the server's setting as it stands (/show posts
    an older job's images again by it: docs/admins.md, Spoilers)."""
    settings = server_settings.get(guild_id)
    if not settings.spoiler:
        return False
    return not (settings.spoiler_exempt_nsfw and age_restricted(client, guild_id, channel_id))

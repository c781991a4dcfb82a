"""How the bot presents itself to the operator: the invite URL and the one line that says it is ready."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import discord

# What Imagine needs where it posts (docs/operators.md): threads need Send Messages in Threads.
INVITE_PERMISSIONS: Final = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
)
INVITE_SCOPES: Final = ("bot", "applications.commands")


def invite_url(application_id: int) -> str:
    """The URL that adds the bot to a server with its commands and the permissions it needs."""
    return discord.utils.oauth_url(application_id, permissions=INVITE_PERMISSIONS, scopes=INVITE_SCOPES)


def describe_shards(shard_ids: Sequence[int], shard_count: int) -> str:
    """ "shard 0 of 1", "shards 0-3 of 4", "shards 1, 3 of 4"."""
    ids = sorted(shard_ids)
    if len(ids) == 1:
        return f"shard {ids[0]} of {shard_count}"
    if ids == list(range(ids[0], ids[-1] + 1)):
        return f"shards {ids[0]}-{ids[-1]} of {shard_count}"
    return f"shards {', '.join(map(str, ids))} of {shard_count}"


def ready_line(bot: discord.AutoShardedClient) -> str:
    """ "Ready as Imagine (id) in N servers, shard 0 of 1; invite: URL"."""
    user = bot.user
    name, user_id = (user.name, user.id) if user is not None else ("?", 0)
    application_id = bot.application_id or user_id
    shards = describe_shards(list(bot.shards), bot.shard_count or 1)
    servers = len(bot.guilds)
    return (
        f"Ready as {name} ({user_id}) in {servers} server{'' if servers == 1 else 's'}, {shards}; "
        f"invite: {invite_url(application_id)}"
    )

"""The reply of a job asked for in the conversation: a message the bot posted in the channel, answering the
member's message (cogs/_message_intake.py), that the reporter edits with progress and the result.

Unlike an interaction's reply it has no token, so nothing expires: it is edited in place for as long as it
exists. Edits never ping; the reply pinged its author once, when it was posted. Editing its own message needs
no permission beyond seeing the channel; when the message or that access is gone, what it should have shown goes
to the channel or the member's DMs (cogs/_outbox.py).
"""

from __future__ import annotations

from typing import Final

import discord

from storage.jobs import Job

# The reply (10008), its channel (10003) or the bot's access to it (50001, 50013) is gone.
_GONE: Final = frozenset({10003, 10008, 50001, 50013})


def author_only(user_id: int) -> discord.AllowedMentions:
    """What the bot's answers in the conversation may ping: the member it replies to, and nobody else."""
    return discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(user_id)], replied_user=True)


class ChannelReply:
    """Edits and deletes a job's reply in its channel."""

    def __init__(self, client: discord.Client, job: Job, message_id: int) -> None:
        channel = client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        self._message = channel.get_partial_message(message_id)
        self._mentions = author_only(job.user_id)

    @classmethod
    def of(cls, client: discord.Client, job: Job) -> ChannelReply | None:
        """The job's channel reply, when its reply is one (no interaction token, a reply message); else None."""
        if job.interaction_token or job.reply_message_id is None:
            return None
        return cls(client, job, job.reply_message_id)

    @staticmethod
    def gone(exc: discord.HTTPException) -> bool:
        """Whether an error means the reply can no longer be edited, whatever is tried again."""
        return exc.code in _GONE

    async def edit(
        self,
        *,
        embeds: list[discord.Embed],
        view: discord.ui.View | None,
        attachments: list[discord.File] | None = None,
    ) -> discord.Message:
        """Show `embeds` (and `attachments`, which replace the reply's files, when given) instead of what it
        showed."""
        if attachments is None:
            return await self._message.edit(content=None, embeds=embeds, view=view, allowed_mentions=self._mentions)
        return await self._message.edit(
            content=None, embeds=embeds, view=view, attachments=attachments, allowed_mentions=self._mentions
        )

    async def delete(self) -> None:
        """Remove the reply."""
        await self._message.delete()

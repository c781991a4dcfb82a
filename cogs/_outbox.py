"""What outlives a job's interaction reply (its token lasts 15 minutes) is posted here: in the job's channel if
the bot may post there, else, or when the channel refuses, in the member's direct messages.

Interaction replies ignore the bot's permissions in a channel; ordinary messages do not. So a job whose channel
the bot may not post in (it knew at intake, from `app_permissions`) goes straight to the member's DMs, and one
whose channel post is refused (50001 Missing Access, 50013 Missing Permissions) goes there too. When the DMs
refuse as well (50007), nobody can receive it: the receipt says `unreachable`, and the pipeline keeps the result
and gives the images back.

Each post carries a nonce derived from the job, so Discord answers a repeat within minutes with the message it
already made. A result posted before a long restart is older than that: before posting a result, the last
messages there are searched for one of the bot's that carries this job's buttons (its own messages are never
hidden from it); before posting a failure notice, for one whose embed's footer names the job. A nonce whose
message the member deleted meanwhile is answered 404 10008: that result was delivered, and deleted by the
member.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import discord

from generation.events import DeliveryReceipt
from storage.errors import StorageError
from storage.jobs import Job

log = logging.getLogger(__name__)

# Codes that mean a channel will not take the bot's message: gone, or not allowed.
_CHANNEL_REFUSED: Final = frozenset({10003, 50001, 50013})
# The member's privacy settings (or a block) refuse the bot's DMs.
_DM_REFUSED: Final = frozenset({50007})
# The message a repeated nonce named was deleted meanwhile.
_UNKNOWN_MESSAGE: Final = 10008
# How far back a repost looks for its own earlier post.
LOOK_BACK: Final = 50

JobReference = Callable[[Job], Awaitable[str]]
"""A job's short reference, unique in its server (as `/show` takes it): what a posted message names it by."""


async def reference_or_none(reference: JobReference | None, job: Job) -> str | None:
    """The job's reference, or none (logged) when the database cannot say: a message without it rather than none."""
    if reference is None:
        return None
    try:
        return await reference(job)
    except StorageError:
        log.warning("job %s: could not read its reference", job.id, exc_info=True)
        return None


Files = Callable[[], Awaitable[list[discord.File]]]
"""Builds the files of a post (their streams are consumed by each attempt)."""


def job_nonce(job: Job, purpose: str = "") -> str:
    """A message nonce derived from the job (and what the message is for); Discord allows 25 characters."""
    return (purpose + job.id)[:25]


@dataclass(frozen=True)
class Post:
    """One message to post for a job: its words in the channel (mentioning the member) and in a DM."""

    channel_text: str
    dm_text: str
    purpose: str = ""
    """Part of the nonce: a job's result, late notice and failure notice are three messages."""
    embed: discord.Embed | None = None
    more_embeds: tuple[discord.Embed, ...] = ()
    """Shown after `embed` (a failure's: the prompt repeated)."""
    view: discord.ui.View | None = None
    files: Files | None = None
    is_result: bool = False
    """Results are looked for before posting (a post before a long restart is beyond the nonce's memory)."""
    footer: str | None = None
    """The footer that names the job on `embed` (a failure notice's): looked for before posting, as results are."""


class Outbox:
    """Posts a job's messages outside its interaction reply."""

    def __init__(self, client: discord.Client) -> None:
        self._client = client

    async def send(self, job: Job, post: Post, dm: Post | None = None) -> DeliveryReceipt:
        """Post in the channel (when the bot may) or else in the member's DMs; see the module docstring. `dm`: the
        post as it reads in the DMs, which the member alone sees, so in their own locale (`Job.private_locale`,
        docs/i18n.md); else `post` itself."""
        if job.channel_postable:
            receipt = await self._to_channel(job, post)
            if receipt.delivered or not receipt.permanent:
                return receipt
            log.info("job %s: the channel refused the post (%s); sending it by DM", job.id, receipt.detail)
        return await self._to_dm(job, dm or post)

    async def _to_channel(self, job: Job, post: Post) -> DeliveryReceipt:
        channel = self._client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        requester = discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(job.user_id)])
        return await self._post(job, channel, post, post.channel_text, requester, refused=_CHANNEL_REFUSED)

    async def _to_dm(self, job: Job, post: Post) -> DeliveryReceipt:
        try:
            channel = await self._client.create_dm(discord.Object(job.user_id))
        except discord.HTTPException as exc:
            detail = f"opening a DM: {exc.status}"  # not member-facing
            return DeliveryReceipt(False, permanent=True, unreachable=True, detail=detail)
        receipt = await self._post(
            job, channel, post, post.dm_text, discord.AllowedMentions.none(), refused=_DM_REFUSED
        )
        if not receipt.delivered and receipt.permanent:
            return DeliveryReceipt(False, permanent=True, unreachable=True, detail=receipt.detail)
        return dataclasses.replace(receipt, direct=True)

    async def _post(
        self,
        job: Job,
        channel: discord.abc.Messageable,
        post: Post,
        content: str,
        mentions: discord.AllowedMentions,
        *,
        refused: frozenset[int],
    ) -> DeliveryReceipt:
        if post.is_result or post.footer:
            earlier = await self._posted_before(job, channel, post)
            if earlier is not None:
                log.info("job %s: its %s was posted before (message %s)", job.id, post.purpose or "result", earlier)
                return DeliveryReceipt(True, earlier)
        try:
            message = await channel.send(
                content,
                embeds=[embed for embed in (post.embed, *post.more_embeds) if embed is not None],
                files=await post.files() if post.files else [],
                view=post.view or discord.utils.MISSING,
                allowed_mentions=mentions,
                nonce=job_nonce(job, post.purpose),
            )
        except discord.HTTPException as exc:
            if exc.code == _UNKNOWN_MESSAGE:
                # The nonce named the message this job posted before, which the member has deleted since.
                log.info("job %s: its earlier post was deleted by the member", job.id)
                return DeliveryReceipt(True)
            permanent = exc.code in refused or exc.status in (403, 404)
            where = getattr(channel, "id", "?")
            detail = f"posting in channel {where}: {exc.status} {exc.code} {exc.text}"  # not member-facing
            log.warning("job %s: %s", job.id, detail)
            return DeliveryReceipt(False, permanent=permanent, detail=detail)
        return DeliveryReceipt(True, message.id)

    async def _posted_before(self, job: Job, channel: discord.abc.Messageable, post: Post) -> int | None:
        """The id of a recent message of the bot's there that is this post: for a result, one that carries this
        job's result buttons (its reply, once it showed the result, or an earlier post); otherwise one whose first
        embed has the post's footer, which names the job."""
        marker = f"imagine:delete:{job.id}:"  # only a result has a Delete button

        def is_this_post(message: discord.Message) -> bool:
            if post.is_result and any(custom_id.startswith(marker) for custom_id in _custom_ids(message)):
                return True
            return bool(post.footer) and footer_of(message) == post.footer

        return await recent_message_of_the_bot(self._client, channel, is_this_post)


async def recent_message_of_the_bot(
    client: discord.Client, channel: discord.abc.Messageable, wanted: Callable[[discord.Message], bool]
) -> int | None:
    """The id of one of the bot's last `LOOK_BACK` messages in `channel` that is `wanted` (its own messages are
    never hidden from it); None when there is none, or when the bot cannot read the channel back (no Read Message
    History: the nonce still catches a repeat within minutes)."""
    me = client.user
    try:
        async for message in channel.history(limit=LOOK_BACK):
            if (me is None or message.author.id == me.id) and wanted(message):
                return message.id
    except discord.HTTPException as exc:
        log.info("Could not look back in channel %s for an earlier post: %s", getattr(channel, "id", "?"), exc)
    return None


def footer_of(message: discord.Message) -> str | None:
    """The footer of the message's first embed, which names the job a post is about."""
    return message.embeds[0].footer.text if message.embeds else None


def _custom_ids(message: discord.Message) -> list[str]:
    found: list[str] = []
    for row in message.components:
        for child in getattr(row, "children", ()):
            custom_id = getattr(child, "custom_id", None)
            if isinstance(custom_id, str):
                found.append(custom_id)
    return found

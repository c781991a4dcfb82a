"""The pipeline's reporter for Discord: progress edits, the result, failures.

One reporter per job. It edits the member's deferred reply through the interaction's webhook (built from the
stored application id and token, so a job resumed after a restart gets an equal reporter). Once the token has
expired (Discord allows 15 minutes) the result goes to the channel as a new message that mentions the
requester, and only them, with a nonce derived from the job so that a repeat after a crash is recognised. What the
channel sees speaks the job's locale (the server's when the job was admitted); what the requester alone reads (a
content-policy refusal told privately, anything sent by direct message) speaks theirs (`Job.private_locale`,
docs/i18n.md).

A job asked for in the conversation has no interaction: its reply is a message the bot posted in the channel
(cogs/_message_intake.py), which the reporter edits in place for as long as it exists, without a token to expire
(`ChannelReply`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Final

import discord

import i18n
from cogs._channel_reply import ChannelReply
from cogs._embeds import NO_MENTIONS, echo_prompt, problem_embed, progress_embed, result_embed
from cogs._outbox import JobReference, Outbox, Post, reference_or_none
from cogs._texts import failure_text, failure_title
from cogs._throttle import CoalescingEditor
from generation.events import (
    Completed,
    DeliveryReceipt,
    Failed,
    FailureKind,
    GeneratedImage,
    Generating,
    Late,
    Paused,
    ProgressEvent,
    Queued,
)
from generation.images import fit_bytes_within
from storage.clock import utc_now
from storage.jobs import Job
from toapis.mime import EXTENSIONS

log = logging.getLogger(__name__)

DEFAULT_FILESIZE_LIMIT: Final = 10 * 1024 * 1024
# An edit started this close to the token's expiry may arrive after it; use the channel instead.
TOKEN_MARGIN: Final = timedelta(seconds=20)

# Discord error codes that mean the interaction's webhook can no longer be used (the token expired or the
# reply is gone): the result goes to the channel instead.
_TOKEN_GONE: Final = frozenset({10015, 50027})
_MESSAGE_GONE: Final = frozenset({10008})
# Codes no retry will fix when posting to the channel: it is gone, or the bot may not post there.

ViewBuilder = Callable[[Job, int], discord.ui.View | None]
SpoilerRule = Callable[[Job], bool]
"""Whether a job's results are posted as spoilers (cogs/_spoilers.py)."""
FailureListener = Callable[[Failed], None]
"""Told of each failure before the member is (the moderation log); must not block."""


class FailureNotShown(Exception):
    """Discord did not take a failure notice this time: the failure stays untold, to be told again."""


def _for_now(exc: discord.HTTPException) -> bool:
    """Whether Discord refused only for now (a rate limit past discord.py's tries, an outage): worth trying later."""
    return exc.status == 429 or exc.status >= 500


def _token_gone(exc: discord.HTTPException) -> bool:
    return exc.status == 401 or exc.code in _TOKEN_GONE or exc.code in _MESSAGE_GONE


def as_read_privately(job: Job) -> Job:
    """The job as its requester alone reads it (an ephemeral follow-up, a direct message): its texts in their own
    locale rather than the server's (docs/i18n.md). Only for building what they read; never stored."""
    private = job.private_locale
    return job if private == job.locale else dataclasses.replace(job, locale=private)


class DiscordReporter:
    def __init__(
        self,
        client: discord.Client,
        job: Job,
        *,
        edit_interval: float,
        filesize_limit: int | None = None,
        result_view: ViewBuilder | None = None,
        queued_view: ViewBuilder | None = None,
        job_reference: JobReference | None = None,
        spoiler: SpoilerRule | None = None,
        on_failed: FailureListener | None = None,
    ) -> None:
        self._client = client
        self._job_reference = job_reference
        self._job = job
        self._filesize_limit = filesize_limit
        self._result_view = result_view
        self._queued_view = queued_view
        self._spoiler = spoiler
        self._on_failed = on_failed
        self._webhook: discord.Webhook | None = None
        if job.application_id is not None and job.interaction_token:
            webhook = discord.Webhook.partial(job.application_id, job.interaction_token, client=client)
            # The interaction's own webhook is an application webhook (what `Interaction.followup` builds):
            # only those may send ephemeral follow-ups.
            webhook.type = discord.WebhookType.application
            self._webhook = webhook
        # A request in the conversation: the reply is the bot's own channel message.
        self._channel_reply = ChannelReply.of(client, job) if self._webhook is None else None
        self._editor: CoalescingEditor[ProgressEvent] = CoalescingEditor(self._show, interval=edit_interval)
        self._outbox = Outbox(client)
        self._late = job.late_notified
        self._late_posted = job.late_notified  # told before a restart, one way or the other
        self._token_dead = False
        self._waiting = False
        self._settled = asyncio.Event()

    # -- Reporter ---------------------------------------------------------------------------------------------

    def progress(self, event: ProgressEvent) -> None:
        # A job is waiting (and may be cancelled) from Queued until it moves on; a pause does not move it.
        if isinstance(event, Queued):
            self._waiting = True
        elif not isinstance(event, Paused):
            self._waiting = False
        if isinstance(event, Late):
            self._late = True
        elif self._late and isinstance(event, Generating):
            # Once told the job is late, the member keeps seeing that (and that they will be mentioned).
            event = Late(event.elapsed)
        self._editor.update(event)

    async def aclose(self) -> None:
        """The pipeline stops (a shutdown): drop pending progress, so nothing is edited after it."""
        await self._editor.close()
        self._settled.set()

    async def reply_settled(self) -> None:
        """Wait until the reply is no longer the "thinking" placeholder: edited once (with progress or the
        result), deleted, or known to be beyond reach. Until then a follow-up would become the reply."""
        await self._settled.wait()

    async def deliver(self, event: Completed) -> DeliveryReceipt:
        try:
            return await self._deliver(event)
        finally:
            self._settled.set()

    async def failed(self, event: Failed) -> None:
        if self._on_failed is not None:
            try:
                self._on_failed(event)
            except Exception:
                log.exception("job %s: the failure listener failed", event.job.id)
        try:
            await self._failed(event)
        finally:
            self._settled.set()

    async def _deliver(self, event: Completed) -> DeliveryReceipt:
        await self._editor.close()
        job = event.job
        limit = self._upload_limit(job)
        # A direct message from the bot takes the default upload limit, however boosted the server is.
        dm_limit = min(limit, DEFAULT_FILESIZE_LIMIT)
        reference = await self._reference(job)
        spoiler = self._spoiler is not None and self._spoiler(job)

        def result_post(reader: Job, fits: int) -> Post:
            """The result in `reader`'s locale (the job's, or the requester's for a direct message), its files within
            `fits` bytes each. A result over it is re-encoded to fit; the embed links to the original while the image
            service keeps it (a day), when the result came as a link."""
            too_large = [image for image in event.images if image.size > fits]
            return Post(
                channel_text=i18n.translate("reporter.ready.channel", reader.locale, member=job.user_id),
                dm_text=i18n.translate("reporter.ready.dm", reader.locale, channel=job.channel_id),
                embed=result_embed(
                    reader,
                    images=len(event.images),
                    elapsed=event.elapsed,
                    refunded=event.refunded,
                    reencoded=len(too_large),
                    originals=tuple(image.source for image in too_large if image.source.startswith("https://")),
                    reference=reference,
                ),
                view=self._result_view(reader, len(event.images)) if self._result_view else None,
                # The files are consumed by each attempt (their streams are closed): each post builds them again.
                files=lambda: self._files(event.images, fits, spoiler=spoiler),
                is_result=True,
            )

        post = result_post(job, limit)
        assert post.embed is not None
        # A late job's member was told they would be mentioned in the channel, so the result goes there; unless
        # the bot may not post there: then the reply, while it can be edited, is the only place everyone sees it.
        in_reply = not job.late_notified or self._channel_reply is not None or not job.channel_postable
        if self._reply_editable(job) and in_reply:
            files = await self._files(event.images, limit, spoiler=spoiler)
            try:
                message = await self._edit_reply(embed=post.embed, view=post.view, attachments=files)
            except discord.HTTPException as exc:
                if not self._gone(exc):
                    detail = f"editing the reply: {exc.status} {exc.code} {exc.text}"  # not member-facing
                    return DeliveryReceipt(False, detail=detail)
                log.info("job %s: the reply can no longer be edited (%s); posting in the channel", job.id, exc.code)
            else:
                return DeliveryReceipt(True, message.id)
        receipt = await self._outbox.send(job, post, result_post(as_read_privately(job), dm_limit))
        if receipt.delivered and receipt.message_id is not None and self._reply_editable(job):
            await self._point_reply_to(receipt)
        return receipt

    async def _failed(self, event: Failed) -> None:
        await self._editor.close()
        job = event.job

        def failure_embeds(reader: Job) -> list[discord.Embed]:
            """The failure, then the prompt (wherever the failure goes, so that the member can copy it:
            docs/members.md), in `reader`'s locale."""
            title = failure_title(event, reader.locale)
            embed = problem_embed(failure_text(event, reader.locale), title=title)
            return [embed, *echo_prompt(job.prompt, reader.locale)]

        if self._reply_editable(job):
            try:
                if event.kind is FailureKind.CONTENT_POLICY and self._webhook is not None:
                    # Kindly: the public reply disappears and the refusal goes to the member alone, in their own
                    # locale. In that order: while the reply is still the "thinking" placeholder, Discord turns the
                    # first follow-up into the reply itself, which would make it public.
                    await self._delete_reply()
                    await self._webhook.send(
                        embeds=failure_embeds(as_read_privately(job)), ephemeral=True, allowed_mentions=NO_MENTIONS
                    )
                else:
                    embed, *prompt = failure_embeds(job)
                    await self._edit_reply(embed=embed, view=None, attachments=[], more=prompt)
                return
            except discord.HTTPException as exc:
                if _for_now(exc):
                    # Raised, not swallowed: the member saw nothing, so the failure must not be noted as told
                    # (generation/failures.py, `tell`); it is told again by the next look for untold failures.
                    raise
                if not self._gone(exc):
                    log.warning("job %s: could not show the failure: %s", job.id, exc)
                    return
        # Posted on its own, the notice names the job: the member can find it again, and so can a start that tells
        # the failure again after a crash (past the nonce's few minutes).
        reference = await self._reference(job)

        def notice(reader: Job) -> Post:
            """The failure notice in `reader`'s locale (the job's, or the requester's for a direct message)."""
            embed, *prompt = failure_embeds(reader)
            footer = i18n.translate("result.job", reader.locale, reference=reference) if reference else None
            if footer:
                embed.set_footer(text=footer)
            return Post(
                channel_text=i18n.translate("reporter.failed.channel", reader.locale, member=job.user_id),
                dm_text=i18n.translate("reporter.failed.dm", reader.locale, channel=job.channel_id),
                purpose="fail:",
                embed=embed,
                more_embeds=tuple(prompt),
                footer=footer,
            )

        receipt = await self._outbox.send(job, notice(job), self._privately(job, notice))
        if not receipt.delivered and not receipt.permanent:
            # Discord may take it later (a rate limit, an outage): not told yet, so not to be noted as told.
            raise FailureNotShown(f"job {job.id}: {receipt.detail}")

    # -- Discord plumbing -------------------------------------------------------------------------------------

    async def _show(self, event: ProgressEvent) -> None:
        job = self._job
        if self._reply_editable(job):
            view = self._queued_view(job, 0) if self._queued_view and self._waiting else None
            try:
                await self._edit_reply(embed=progress_embed(job, event), view=view)
                return
            except discord.HTTPException as exc:
                if not self._gone(exc):
                    raise
        self._settled.set()
        if isinstance(event, Late) and not self._late_posted:
            # The reply can no longer say it (its token expired): the member hears it in the channel, once.
            self._late_posted = True

            def late(reader: Job) -> Post:
                return Post(
                    channel_text=i18n.translate("reporter.late.channel", reader.locale, member=job.user_id),
                    dm_text=i18n.translate("reporter.late.dm", reader.locale, channel=job.channel_id),
                    purpose="late:",
                )

            await self._outbox.send(job, late(job), self._privately(job, late))

    @staticmethod
    def _privately(job: Job, post: Callable[[Job], Post]) -> Post | None:
        """The post as the requester reads it in their DMs, when their locale is not the job's (else the same)."""
        private = as_read_privately(job)
        return None if private is job else post(private)

    async def _reference(self, job: Job) -> str | None:
        """The job's reference for the result's footer; none rather than no result when the database fails."""
        return await reference_or_none(self._job_reference, job)

    def _gone(self, exc: discord.HTTPException) -> bool:
        """Whether the reply is beyond reach for good: its token expired, or (in the conversation) the message or
        the bot's access to the channel is gone. What it should show goes to the channel or the member's DMs."""
        return _token_gone(exc) or (self._channel_reply is not None and ChannelReply.gone(exc))

    def _reply_editable(self, job: Job) -> bool:
        if self._channel_reply is not None:
            return not self._token_dead  # a message has no token: editable until it is gone
        if self._token_dead or self._webhook is None or job.reply_message_id is None or job.token_expires_at is None:
            return False
        return utc_now() < job.token_expires_at - TOKEN_MARGIN

    async def _edit_reply(
        self,
        *,
        embed: discord.Embed,
        view: discord.ui.View | None,
        attachments: list[discord.File] | None = None,
        more: list[discord.Embed] | None = None,
    ) -> discord.Message:
        assert self._job.reply_message_id is not None
        embeds = [embed, *(more or [])]
        try:
            if self._channel_reply is not None:
                message = await self._channel_reply.edit(embeds=embeds, view=view, attachments=attachments)
            elif self._webhook is None:
                raise AssertionError("a reply is edited through the interaction's webhook or in the channel")
            elif attachments is None:
                message = await self._webhook.edit_message(
                    self._job.reply_message_id, content=None, embeds=embeds, view=view, allowed_mentions=NO_MENTIONS
                )
            else:
                message = await self._webhook.edit_message(
                    self._job.reply_message_id,
                    content=None,
                    embeds=embeds,
                    view=view,
                    attachments=attachments,
                    allowed_mentions=NO_MENTIONS,
                )
        except discord.HTTPException as exc:
            if self._gone(exc):
                self._token_dead = True  # Discord said so: no further edit is tried
                self._settled.set()  # beyond reach: nothing will replace the placeholder any more
            raise
        self._settled.set()
        return message

    async def _delete_reply(self) -> None:
        assert self._job.reply_message_id is not None
        try:
            if self._channel_reply is not None:
                await self._channel_reply.delete()
            else:
                assert self._webhook is not None
                await self._webhook.delete_message(self._job.reply_message_id)
        except discord.HTTPException as exc:
            log.info("job %s: could not delete the reply: %s", self._job.id, exc)
        self._settled.set()

    async def _point_reply_to(self, receipt: DeliveryReceipt) -> None:
        job = self._job
        if receipt.direct:
            text = i18n.translate("reporter.ready.sent_by_dm", job.locale)
        else:
            link = f"https://discord.com/channels/{job.guild_id}/{job.channel_id}/{receipt.message_id}"
            text = i18n.translate("reporter.ready.link", job.locale, link=link)
        embed = discord.Embed(description=text, colour=discord.Colour.green())
        try:
            await self._edit_reply(embed=embed, view=None, attachments=[])
        except discord.HTTPException as exc:
            log.info("job %s: could not update the reply: %s", job.id, exc)

    def _upload_limit(self, job: Job) -> int:
        if self._filesize_limit is not None:
            return self._filesize_limit
        guild = self._client.get_guild(job.guild_id)
        return guild.filesize_limit if guild is not None else DEFAULT_FILESIZE_LIMIT

    @staticmethod
    async def _files(images: tuple[GeneratedImage, ...], limit: int, *, spoiler: bool = False) -> list[discord.File]:
        """Discord files for the results, each re-encoded (in a thread) if it exceeds the upload limit, and
        named `SPOILER_…` when `spoiler`.

        A result that fits is streamed from its spool file, so many deliveries at once do not hold every
        image in memory.
        """
        files = []
        for index, image in enumerate(images, start=1):
            extension = EXTENSIONS.get(image.mime_type, "png")
            if image.size <= limit:
                files.append(discord.File(image.path, filename=f"imagine-{index}.{extension}", spoiler=spoiler))
                continue
            data = await asyncio.to_thread(image.read_bytes)
            fitted = await asyncio.to_thread(fit_bytes_within, data, max_bytes=limit)
            name = f"imagine-{index}.{fitted.extension}"
            files.append(discord.File(io.BytesIO(fitted.data), filename=name, spoiler=spoiler))
        return files

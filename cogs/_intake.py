"""Every way a member asks for images ends here: check, answer first, read the references, admit the job.

Answering (docs/architecture.md): refusals found without I/O are answered at once, ephemerally; otherwise the
first response is a deferred reply. A refusal found after that (an unreadable image, a quota) deletes the
deferred reply and answers with an ephemeral follow-up. From then on the pipeline owns the job and edits the
reply through the job's reporter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import discord

from cogs._attachments import ImageAttachment
from cogs._embeds import NO_MENTIONS, prompt_embed
from cogs._locale import public_locale
from cogs._mod_log import ModerationLog
from cogs._reporter import DiscordReporter
from cogs._texts import generic_text, refusal_text
from generation.admission import Admission
from generation.history import JobHistory
from generation.models import Choice
from generation.pipeline import Pipeline
from generation.quota_service import QuotaService
from generation.refusals import AttachmentUnreadable, NotInServer, PromptBlocked, QuotaExceeded, Refusal
from generation.requests import JobRequest, Reference
from generation.server_settings import ServerSettings
from generation.validation import prepare_references
from storage.jobs import Job, JobKind

log = logging.getLogger(__name__)

# How long a notice waits for the reply to stop being the "thinking" placeholder (its first edit).
NOTICE_WAIT: Final = 30.0
# Requests reading and preparing references at once: a flood of large attachments must not starve the event
# loop (each decode runs in a thread) or the memory. The rest wait their turn, already acknowledged.
REFERENCE_WORKERS: Final = 2


@dataclass(frozen=True)
class Draft:
    """What a request asks for, before it is checked and becomes a job."""

    prompt: str
    n: int
    kind: JobKind
    model: str | None = None
    """None: the server's default model."""
    aspect: str | None = None
    """None: 1:1."""
    resolution: str | None = None
    """None: the model's default."""
    attachments: tuple[ImageAttachment, ...] = ()
    """Read after the defer."""
    stored_references: Job | None = None
    """A stored job whose references this request repeats (a re-roll): read only once the quota allows it."""
    parent_job_id: str | None = None
    notice: str | None = None
    """Told to the member, ephemerally, once the job is accepted (e.g. that images were skipped)."""


DraftLoader = Callable[[], Awaitable[Draft]]


@dataclass(frozen=True)
class Origin:
    """Who asks, where, and how their job's reply is reached: an interaction's webhook (its token), or a message
    the bot posted in the channel (a request in the conversation: no token, nothing expires)."""

    guild_id: int
    channel_id: int
    user_id: int
    role_ids: frozenset[int]
    locale: str
    """The locale of what the channel sees: the server's (docs/i18n.md)."""
    reply_message_id: int
    application_id: int | None = None
    interaction_token: str | None = field(default=None, repr=False)
    token_expires_at: datetime | None = None
    channel_postable: bool = True
    source_message_id: int | None = None
    """The member's message, for a request in the conversation (its claim is tied to the job)."""


class Intake:
    """Turns an interaction and what it asks for into an admitted job, or an answer that says why not."""

    def __init__(
        self,
        *,
        admission: Admission,
        pipeline: Pipeline,
        quotas: QuotaService,
        history: JobHistory,
        server_settings: ServerSettings,
        moderation: ModerationLog | None = None,
        reference_workers: int = REFERENCE_WORKERS,
    ) -> None:
        self.admission = admission
        self._server_settings = server_settings
        self._pipeline = pipeline
        self._quotas = quotas
        self._history = history
        self._moderation = moderation
        self._reference_pool = asyncio.Semaphore(reference_workers)

    async def run(self, interaction: discord.Interaction, draft: Draft | DraftLoader) -> None:
        """Check, defer, read the references, and hand the job to the pipeline; shared by every way in.

        A `Draft` known at once (a slash command's options) is checked before the first response; a loader (a
        button that repeats a stored job) runs after the defer, since reading the database is I/O, and what it
        finds is checked then.
        """
        started = time.monotonic()
        guild_id, channel_id, user_id = interaction.guild_id, interaction.channel_id, interaction.user.id
        admission = self.admission
        try:
            if guild_id is None or channel_id is None:
                raise NotInServer()
            admission.check_place_and_pace(guild_id, channel_id, user_id, parent_id=parent_of(interaction))
            if isinstance(draft, Draft):
                self._check_draft(guild_id, draft)
        except Refusal as refusal:
            if isinstance(refusal, PromptBlocked) and guild_id is not None:
                admission.start_cooldown(guild_id, user_id)  # so that the blocked words cannot be probed for free
            await interaction.response.send_message(
                refusal_text(refusal, interaction.locale),
                embeds=_echo(refusal),
                ephemeral=True,
                allowed_mentions=NO_MENTIONS,
            )
            self._pipeline.metrics.acknowledged(time.monotonic() - started)
            self.log_refusal(refusal, guild_id, channel_id, user_id, source=_source_of(draft))
            return
        # Started before the defer, so that a second request sent meanwhile is refused. Once the bot has done
        # I/O for the request it is kept whatever the outcome, so that refusals cannot be had for free; only a
        # failure on Imagine's side gives it back.
        admission.start_cooldown(guild_id, user_id)
        try:
            callback = await interaction.response.defer(thinking=True)
        except BaseException:
            admission.give_back_cooldown(guild_id, user_id)
            raise
        self._pipeline.metrics.acknowledged(time.monotonic() - started)
        try:
            reply_id = callback.message_id if callback is not None else None
            if reply_id is None:
                reply_id = (await interaction.original_response()).id
            if not isinstance(draft, Draft):
                draft = await draft()
            origin = Origin(
                guild_id=guild_id,
                channel_id=channel_id,
                user_id=user_id,
                role_ids=role_ids_of(interaction.user),
                locale=public_locale(interaction, self._server_settings.get(guild_id).language),
                reply_message_id=reply_id,
                application_id=interaction.application_id,
                interaction_token=interaction.token,
                token_expires_at=interaction.expires_at,
                channel_postable=may_post(interaction),
            )
            job = await self.admit(interaction.client, draft, origin)
        except Refusal as refusal:
            await _refuse_after_defer(interaction, refusal_text(refusal, interaction.locale), _echo(refusal))
            self.log_refusal(refusal, guild_id, channel_id, user_id, source=_source_of(draft))
            return
        except Exception:
            # Answered here rather than by the error handler: while the public reply is still the "thinking"
            # placeholder, a follow-up would become that public reply.
            admission.give_back_cooldown(guild_id, user_id)
            log.exception("Unexpected error while accepting a request")
            await _refuse_after_defer(interaction, generic_text(interaction.locale))
            return
        if draft.notice:
            # Until the reply has been edited once it is the "thinking" placeholder, and Discord would turn a
            # follow-up into the (public) reply itself.
            reporter = self._pipeline.reporter_of(job.id)
            if isinstance(reporter, DiscordReporter):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(NOTICE_WAIT):
                        await reporter.reply_settled()
            await interaction.followup.send(draft.notice, ephemeral=True, allowed_mentions=NO_MENTIONS)

    async def admit(self, client: discord.Client, draft: Draft, origin: Origin) -> Job:
        """Everything after the first answer, for every way in: check the draft, look at the quota, read and
        prepare the references, and hand the job to the pipeline. A `Refusal` when it cannot be taken (nothing
        was counted)."""
        guild_id, user_id = origin.guild_id, origin.user_id
        prompt, choice = self._check_draft(guild_id, draft)
        # Read-only, before any download or decode: what the reservation would refuse anyway costs nothing.
        usage = await self._quotas.would_refuse(guild_id, user_id, origin.role_ids, draft.n * choice.weight)
        if usage is not None:
            raise QuotaExceeded(usage, draft.n, choice.weight)
        references = await self._references(client, draft)
        request = JobRequest(
            guild_id=guild_id,
            channel_id=origin.channel_id,
            user_id=user_id,
            prompt=prompt,
            model=choice.model.id,
            aspect=choice.aspect,
            resolution=choice.resolution,
            weight=choice.weight,
            n=draft.n,
            role_ids=origin.role_ids,
            references=references,
            kind=draft.kind,
            parent_job_id=draft.parent_job_id,
            application_id=origin.application_id,
            interaction_token=origin.interaction_token,
            token_expires_at=origin.token_expires_at,
            reply_message_id=origin.reply_message_id,
            channel_postable=origin.channel_postable,
            locale=origin.locale,
            source_message_id=origin.source_message_id,
        )
        return await self._pipeline.submit(request)

    def check_draft(self, guild_id: int, draft: Draft) -> tuple[str, Choice]:
        """The request's own options are acceptable in this server (see `Admission.check_options`). No I/O."""
        return self._check_draft(guild_id, draft)

    def log_refusal(
        self, refusal: Refusal, guild_id: int | None, channel_id: int | None, user_id: int, *, source: str
    ) -> None:
        """A prompt refused for a blocked word goes to the usage log (with how it was asked: `source`) and the
        moderation log, once the member has been answered (that is I/O)."""
        if isinstance(refusal, PromptBlocked) and self._moderation and guild_id is not None and channel_id is not None:
            self._moderation.blocked(refusal, guild_id=guild_id, channel_id=channel_id, user_id=user_id, source=source)

    async def _references(self, client: discord.Client, draft: Draft) -> tuple[Reference, ...]:
        """The request's references, stored ones (a re-roll's) first, then its attachments read and prepared:
        a few requests at a time."""
        async with self._reference_pool:
            stored: tuple[Reference, ...] = ()
            if draft.stored_references is not None:
                stored = await self._history.references(draft.stored_references)
            read = await _read_attachments(client, draft.attachments)
            prepared = await prepare_references(read)
        return (*stored, *(Reference(item.data, item.mime_type) for item in prepared))

    def _check_draft(self, guild_id: int, draft: Draft) -> tuple[str, Choice]:
        """The request's own options are acceptable in this server: the trimmed prompt and what it gets. No I/O."""
        return self.admission.check_options(
            guild_id,
            prompt=draft.prompt,
            n=draft.n,
            model=draft.model,
            aspect=draft.aspect,
            resolution=draft.resolution,
            reference_count=len(draft.attachments)
            + (draft.stored_references.reference_count if draft.stored_references else 0),
            attachment_sizes=[attachment.size for attachment in draft.attachments],
        )


def _source_of(draft: Draft | DraftLoader) -> str:
    """How the member asked, for the usage log (a loader's draft is known once loaded: a button's)."""
    return draft.kind.source if isinstance(draft, Draft) else JobKind.REROLL.source


async def _read_attachments(client: discord.Client, attachments: Sequence[ImageAttachment]) -> list[bytes]:
    blobs = []
    for position, attachment in enumerate(attachments, start=1):
        try:
            blobs.append(await attachment.read(client))
        except discord.HTTPException as exc:
            log.info("Could not read attachment %s: %s", position, exc)
            raise AttachmentUnreadable(position) from exc
    return blobs


async def _refuse_after_defer(
    interaction: discord.Interaction, text: str, embeds: Sequence[discord.Embed] = ()
) -> None:
    try:
        await interaction.delete_original_response()
    except discord.HTTPException:
        log.info("Could not delete the deferred reply", exc_info=True)
    await interaction.followup.send(text, embeds=list(embeds), ephemeral=True, allowed_mentions=NO_MENTIONS)


def _echo(refusal: Refusal) -> list[discord.Embed]:
    """What a refusal shows besides its text: a blocked prompt is repeated, so that it can be reworded."""
    return [prompt_embed(refusal.prompt)] if isinstance(refusal, PromptBlocked) else []


def may_post(interaction: discord.Interaction) -> bool:
    """Whether the bot may post its own messages where the interaction came from (`app_permissions`): replies to
    an interaction need none of these, messages that outlive its 15 minutes do. In a thread, Send Messages in
    Threads stands in for Send Messages."""
    permissions = interaction.app_permissions
    in_thread = isinstance(interaction.channel, discord.Thread) or parent_of(interaction) is not None
    sending = permissions.send_messages_in_threads if in_thread else permissions.send_messages
    return bool(permissions.view_channel and sending and permissions.embed_links and permissions.attach_files)


def parent_of(interaction: discord.Interaction) -> int | None:
    """The channel a thread or forum post belongs to (None outside threads): the allow-list is about it."""
    parent_id = getattr(interaction.channel, "parent_id", None)
    return parent_id if isinstance(parent_id, int) else None


def role_ids_of(user: discord.User | discord.Member) -> frozenset[int]:
    """The member's role ids as the interaction carries them. Not `Member.roles`: while a server's data is still
    streaming in after READY, discord.py drops the roles it has not cached, and a role's quota would be missed."""
    if isinstance(user, discord.Member):
        return frozenset(int(role_id) for role_id in user._roles)
    return frozenset()

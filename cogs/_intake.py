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
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import discord

import i18n
from cogs._attachments import ImageAttachment
from cogs._embeds import NO_MENTIONS, echo_prompt
from cogs._locale import public_locale
from cogs._mod_log import ModerationLog
from cogs._owed import owed_embeds
from cogs._reporter import DiscordReporter
from cogs._texts import generic_text, refusal_text
from generation.admission import Admission
from generation.history import JobHistory
from generation.models import Choice
from generation.owed_answers import OwedAnswers
from generation.pipeline import Pipeline
from generation.refusals import (
    AnsweredElsewhere,
    AttachmentUnreadable,
    FormExpired,
    NotInServer,
    PromptBlocked,
    Refusal,
    Restarting,
)
from generation.requests import JobRequest, Reference
from generation.server_settings import ServerSettings
from generation.validation import prepare_references
from storage.jobs import Job, JobKind
from storage.owed_answers import OwedAnswer
from toapis.catalog import ModelSpec

log = logging.getLogger(__name__)

# How long a notice waits for the reply to stop being the "thinking" placeholder (its first edit).
NOTICE_WAIT: Final = 30.0
# Requests reading and preparing references at once: a flood of large attachments must not starve the event
# loop (each decode runs in a thread) or the memory. The rest wait their turn, already acknowledged.
REFERENCE_WORKERS: Final = 2
# On SIGTERM: how long acknowledged requests may take to be admitted before the rest are answered instead (at
# most), and how long those answers may take. Together under Docker's 10 s between SIGTERM and SIGKILL.
INTAKE_DRAIN: Final = 6.0
ANSWER_WAIT: Final = 3.0


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
    member_locale: str | None = None
    """The locale of what the requester alone reads (an ephemeral follow-up, a DM): the one who asked, as their
    interaction says (`interaction.locale`: a re-roll's or a remix's is the clicker's); None when not known."""
    application_id: int | None = None
    interaction_token: str | None = field(default=None, repr=False)
    token_expires_at: datetime | None = None
    channel_postable: bool = True
    owed_interaction_id: int | None = None
    """The interaction whose owed answer admission takes in the job's transaction."""
    source_message_id: int | None = None
    """The member's message, for a request in the conversation (its claim is tied to the job)."""


class Intake:
    """Turns an interaction and what it asks for into an admitted job, or an answer that says why not."""

    def __init__(
        self,
        *,
        admission: Admission,
        pipeline: Pipeline,
        history: JobHistory,
        server_settings: ServerSettings,
        moderation: ModerationLog | None = None,
        owed: OwedAnswers | None = None,
        reference_workers: int = REFERENCE_WORKERS,
        drain_seconds: float = INTAKE_DRAIN,
    ) -> None:
        self.admission = admission
        self._server_settings = server_settings
        self._pipeline = pipeline
        self._history = history
        self._moderation = moderation
        self._reference_pool = asyncio.Semaphore(reference_workers)
        self._owed = owed
        self._drain_seconds = drain_seconds
        self._closing = False
        # Requests acknowledged (deferred) and not yet answered or admitted, and those of them being admitted.
        self._acknowledged: set[asyncio.Task[object]] = set()
        self._admitting: set[asyncio.Task[object]] = set()
        self._drained = asyncio.Event()
        self._drained.set()

    async def run(
        self,
        interaction: discord.Interaction,
        draft: Draft | DraftLoader,
        *,
        prompt: str | None = None,
        typed: Draft | None = None,
    ) -> None:
        """Check, defer, read the references, and hand the job to the pipeline; shared by every way in.

        A `Draft` known at once (a slash command's options) is checked before the first response; a loader (a
        button that repeats a stored job) runs after the defer, since reading the database is I/O, and what it
        finds is checked then.

        Every refusal repeats the request's prompt, so that the member never loses it (docs/members.md): the
        draft's once it is known, else `prompt`, what the caller knew without I/O (what the member typed in a
        form, or the prompt shown on the message whose button was clicked).

        `typed`: for a form, what the member typed and picked, known without I/O. Its prompt is checked for the
        server's blocked words before the first response, so that such a refusal is private and immediate like
        /imagine's; the loaded draft is checked again in full.
        """
        started = time.monotonic()
        guild_id, channel_id, user_id = interaction.guild_id, interaction.channel_id, interaction.user.id
        admission = self.admission
        try:
            if self._closing:
                raise Restarting()
            if guild_id is None or channel_id is None:
                raise NotInServer()
            admission.check_place_and_pace(guild_id, channel_id, user_id, parent_id=parent_of(interaction))
            if isinstance(draft, Draft):
                self._check_draft(guild_id, draft)
            elif typed is not None:
                admission.check_prompt(
                    guild_id,
                    typed.prompt,
                    n=typed.n,
                    model=typed.model,
                    aspect=typed.aspect,
                    resolution=typed.resolution,
                )
        except Refusal as refusal:
            if isinstance(refusal, PromptBlocked) and guild_id is not None:
                admission.start_cooldown(guild_id, user_id)  # so that the blocked words cannot be probed for free
            await interaction.response.send_message(
                refusal_text(refusal, interaction.locale),
                embeds=echo_prompt(_echoed(refusal, draft, prompt), interaction.locale),
                ephemeral=True,
                allowed_mentions=NO_MENTIONS,
            )
            self._pipeline.metrics.acknowledged(time.monotonic() - started)
            self.log_refusal(refusal, guild_id, channel_id, user_id, source=_source_of(typed or draft))
            return
        # Started before the defer, so that a second request sent meanwhile is refused. Once the bot has done
        # I/O for the request it is kept whatever the outcome (a refusal, a failure on Imagine's side, a stop), so
        # that no outcome can be had for free; only a defer that fails, when nothing was done, gives it back.
        admission.start_cooldown(guild_id, user_id)
        # Acknowledged from the moment the defer is sent: a stop that comes while it is in flight waits for the
        # request (and answers it) rather than find nothing to wait for.
        with self.acknowledged():
            try:
                callback = await interaction.response.defer(thinking=True)
            except BaseException:
                admission.give_back_cooldown(guild_id, user_id)
                raise
            self._pipeline.metrics.acknowledged(time.monotonic() - started)
            reply_id = callback.message_id if callback is not None else None
            # Owed before any other I/O: a reply whose id the callback did not name is answered, if it comes to
            # that, in the channel rather than by editing it.
            owed = await self._owe(interaction, draft, guild_id, channel_id, reply_id, prompt)
            await self._take(interaction, draft, guild_id, channel_id, reply_id, owed, prompt)

    @property
    def closing(self) -> bool:
        """The bot is stopping: no request is acknowledged any more (`close`)."""
        return self._closing

    @contextlib.contextmanager
    def acknowledged(self) -> Iterator[None]:
        """While the request of the current task is acknowledged and not yet answered or admitted: a stop waits
        for it, then interrupts it (`close`); every way in that acknowledges wraps its work in this."""
        task = asyncio.current_task()
        assert task is not None
        self._acknowledged.add(task)
        self._drained.clear()
        try:
            yield
        finally:
            self._acknowledged.discard(task)
            self._admitting.discard(task)
            if not self._acknowledged:
                self._drained.set()

    async def submit(self, request: JobRequest) -> Job:
        """The pipeline's admission of the current task's request. From here a stop waits for the admission's
        transaction rather than interrupt it: the request ends as a job or as an answer, never both."""
        task = asyncio.current_task()
        if task is not None and task in self._acknowledged:
            self._admitting.add(task)
        return await self._pipeline.submit(request)

    async def _owe(
        self,
        interaction: discord.Interaction,
        draft: Draft | DraftLoader,
        guild_id: int,
        channel_id: int,
        reply_id: int | None,
        known_prompt: str | None,
    ) -> OwedAnswer | None:
        """Record that the member is owed an answer, before any other I/O for the request (one small write);
        None when there is no record (no store given, or the write failed: logged)."""
        owed = OwedAnswer(
            interaction_id=interaction.id,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=interaction.user.id,
            application_id=interaction.application_id,
            interaction_token=interaction.token,
            token_expires_at=interaction.expires_at,
            reply_message_id=reply_id,
            prompt=draft.prompt if isinstance(draft, Draft) else known_prompt,
            options=_options(draft),
            locale=public_locale(interaction, self._server_settings.get(guild_id).language),
            channel_postable=may_post(interaction),
            member_locale=interaction.locale.value,
        )
        if self._owed is None or not await self._owed.record(owed):
            return None
        return owed

    async def _take(
        self,
        interaction: discord.Interaction,
        draft: Draft | DraftLoader,
        guild_id: int,
        channel_id: int,
        reply_id: int | None,
        owed: OwedAnswer | None,
        known_prompt: str | None,
    ) -> None:
        """After the defer: load and check the request, read its references, and admit it; every way out
        answers the member (a refusal, the job's reply, or why the bot could not take it)."""
        user_id = interaction.user.id
        try:
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
                member_locale=interaction.locale.value,
                application_id=interaction.application_id,
                interaction_token=interaction.token,
                token_expires_at=interaction.expires_at,
                channel_postable=may_post(interaction),
                owed_interaction_id=owed.interaction_id if owed else None,
            )
            request = await self.request_for(interaction.client, draft, origin)
            job = await self.submit(request)
        except AnsweredElsewhere:
            return
        except Refusal as refusal:
            echo = echo_prompt(_echoed(refusal, draft, known_prompt), interaction.locale)
            await self._answer(owed, _refuse_after_defer(interaction, refusal_text(refusal, interaction.locale), echo))
            self.log_refusal(refusal, guild_id, channel_id, user_id, source=_source_of(draft))
            return
        except asyncio.CancelledError:
            # The bot is stopping (`close`) and this request was not admitted: the member is told so, nothing was
            # counted, and the request can be sent again (to the next process, whose cooldowns start empty).
            with contextlib.suppress(Exception):
                text = i18n.translate("owed.stopping", interaction.locale)
                embeds = owed_embeds(owed, str(interaction.locale)) if owed else []
                await _refuse_after_defer(interaction, text, embeds)
                await self._settle(owed)
            raise
        except Exception:
            # Answered here rather than by the error handler: while the public reply is still the "thinking"
            # placeholder, a follow-up would become that public reply.
            log.exception("Unexpected error while accepting a request")
            echo = echo_prompt(draft.prompt if isinstance(draft, Draft) else known_prompt, interaction.locale)
            await self._answer(owed, _refuse_after_defer(interaction, generic_text(interaction.locale), echo))
            return
        if isinstance(draft, Draft) and draft.notice:
            # Until the reply has been edited once it is the "thinking" placeholder, and Discord would turn a
            # follow-up into the (public) reply itself.
            reporter = self._pipeline.reporter_of(job.id)
            if isinstance(reporter, DiscordReporter):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(NOTICE_WAIT):
                        await reporter.reply_settled()
            await interaction.followup.send(draft.notice, ephemeral=True, allowed_mentions=NO_MENTIONS)

    async def request_for(self, client: discord.Client, draft: Draft, origin: Origin) -> JobRequest:
        """What follows the first answer, for every way in, up to the admission: check the draft, look at the
        quota, read and prepare the references. A `Refusal` when it cannot be taken (nothing was counted)."""
        guild_id, user_id = origin.guild_id, origin.user_id
        prompt, choice = self._check_draft(guild_id, draft)
        await self.admission.check_quota(guild_id, user_id, origin.role_ids, draft.n, choice)
        references = await self._references(client, draft, choice.model)
        return JobRequest(
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
            member_locale=origin.member_locale,
            owed_interaction_id=origin.owed_interaction_id,
            source_message_id=origin.source_message_id,
        )

    async def admit(self, client: discord.Client, draft: Draft, origin: Origin) -> Job:
        """`request_for`, then the pipeline's admission: the job, or a `Refusal` (nothing was counted)."""
        return await self.submit(await self.request_for(client, draft, origin))

    def check_draft(self, guild_id: int, draft: Draft) -> tuple[str, Choice]:
        """The request's own options are acceptable in this server (see `Admission.check_options`). No I/O."""
        return self._check_draft(guild_id, draft)

    async def _answer(self, owed: OwedAnswer | None, answering: Awaitable[None]) -> None:
        """Answer after the defer, then forget the record. An answer Discord did not take (a rate limit past
        discord.py's tries, an outage) leaves the member owed one: the record is let go of, and the sweep for owed
        answers gives it (generation/owed_answers.py, `keep`), rather than the error handler now and the next start
        a second time."""
        try:
            await answering
        except discord.HTTPException:
            log.warning("Could not answer a request after its defer; left to the sweep for owed answers", exc_info=True)
            if owed is not None and self._owed is not None:
                await self._owed.release(owed.interaction_id)
            return
        await self._settle(owed)

    async def _settle(self, owed: OwedAnswer | None) -> None:
        if owed is not None and self._owed is not None:
            await self._owed.settle(owed.interaction_id)

    async def close(self) -> None:
        """Stop acknowledging requests (new ones are refused at once), let those acknowledged finish for up to
        the drain's seconds, then answer the rest (those not being admitted) that the bot is restarting."""
        self._closing = True
        if not self._acknowledged:
            return
        log.info("Finishing %d acknowledged request(s) before stopping", len(self._acknowledged))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._drain_seconds):
                await self._drained.wait()
        stopped = [task for task in self._acknowledged if task not in self._admitting]
        for task in stopped:
            task.cancel()
        # Their answers, and the admissions under way, end quickly: a bounded wait, whatever happens.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ANSWER_WAIT):
                await self._drained.wait()
        if stopped:
            log.info("Told %d member(s) that their request could not be taken before the stop", len(stopped))

    def log_refusal(
        self, refusal: Refusal, guild_id: int | None, channel_id: int | None, user_id: int, *, source: str
    ) -> None:
        """A prompt refused for a blocked word goes to the usage log (with how it was asked: `source`) and the
        moderation log, once the member has been answered (that is I/O)."""
        if isinstance(refusal, PromptBlocked) and self._moderation and guild_id is not None and channel_id is not None:
            self._moderation.blocked(refusal, guild_id=guild_id, channel_id=channel_id, user_id=user_id, source=source)

    async def _references(self, client: discord.Client, draft: Draft, model: ModelSpec) -> tuple[Reference, ...]:
        """The request's references, stored ones (a re-roll's) first, then its attachments read and prepared for
        `model`: a few requests at a time. Stored ones are not held to the model's rules again: only a result
        offers a re-roll or a remix, which keeps its model, and that model took them when the result was made."""
        async with self._reference_pool:
            stored: tuple[Reference, ...] = ()
            if draft.stored_references is not None:
                action = "remixed" if draft.kind is JobKind.REMIX else "re-rolled"
                stored = await self._history.references(draft.stored_references, action=action)
            try:
                read = await _read_attachments(client, draft.attachments)
            except AttachmentUnreadable as unreadable:
                if draft.kind is JobKind.CONTEXT:
                    # A form's images are a message's, which the member cannot attach again to the form: they
                    # open it anew on the message ("Imagine from images").
                    raise FormExpired() from unreadable
                raise
            prepared = await prepare_references(read, model=model)
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


def _echoed(refusal: Refusal, draft: Draft | DraftLoader, known: str | None) -> str | None:
    """The prompt a refusal repeats: the one refused for a blocked word, else the draft's, else what was known
    before the draft was read."""
    if isinstance(refusal, PromptBlocked):
        return refusal.prompt
    return draft.prompt if isinstance(draft, Draft) else known


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
    """The member's role ids as the interaction carries them, and @everyone's (the server's id), which Discord
    leaves out though every member holds it: a `/quota role` rule on @everyone applies to every member
    (docs/admins.md, Which limits apply to a member). Not `Member.roles`: while a server's data is still streaming
    in after READY, discord.py drops the roles it has not cached, and a role's quota would be missed."""
    if isinstance(user, discord.Member):
        return frozenset(int(role_id) for role_id in user._roles) | {user.guild.id}
    return frozenset()


def _options(draft: Draft | DraftLoader) -> dict[str, object]:
    """A request's options as given, for its owed answer (a loader's are known only once it has run)."""
    if not isinstance(draft, Draft):
        return {}
    given = {"kind": draft.kind.value, "n": draft.n, "model": draft.model, "aspect": draft.aspect}
    given |= {"resolution": draft.resolution, "attachments": len(draft.attachments)}
    return {name: value for name, value in given.items() if value is not None}

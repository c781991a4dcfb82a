"""Requests in the conversation: a message that mentions the bot asks for images (docs/members.md).

Its text without the mention is the prompt, with inline options taken out (generation/inline_options.py); its
images (the first four) are the references. A reply that mentions the bot on one of its results adds that
result's images (after the message's own, four in all) and keeps the job's model, aspect and resolution unless
the text says otherwise. What the bot cannot read is not guessed at: another member's message, which Discord
hides from a bot without the Message Content intent, is not used. A reply to one with a prompt of its own is taken
with the member's own text and images, and a note says how to use the other message's images (the context menu);
one with nothing to go on is answered with how to do it instead. Images beyond the first four are left out, and a
note says so.

Everything the slash command promises holds, through the same code: `Admission` (the server and channel
allow-lists, the cooldown, the options, blocked words) and `Intake.admit` (quotas, references, the pipeline).
What differs is the answer, since a message has no interaction:

- Only where the bot may answer: it needs View Channel, Send Messages (in a thread: Send Messages in Threads) and
  Read Message History (to reply) there, read from its cache; elsewhere it logs and does nothing.
- Each source message is claimed once before anything else (generation/message_requests.py): a MESSAGE_CREATE
  delivered again, or seen by two processes, starts nothing more; edits (MESSAGE_UPDATE) are not listened to.
- A refusal is a short reply to the author, pinging only them, with their prompt repeated; it deletes itself
  after a minute (`notice_seconds`; a restart meanwhile leaves it). One refusal per member while it is shown
  (`refusal_seconds`), whether found before the reply or after it (a full quota): refusals can be had for free (no
  cooldown starts before the checks pass, and a server may have none), and the channel must not fill with them;
  those meanwhile are logged and left unanswered (a reply already posted is deleted). Where the admins turned the
  conversation off, a channel off their allow-list gets no answer at all.
- A note on an accepted request (what was left out) is a reply of its own that pings nobody and deletes itself
  after `notice_seconds`, as the slash command's private notice would.
- Otherwise `reply_then_admit`: the reply is posted first, then the job admitted with that reply as the one its
  reporter edits (cogs/_channel_reply.py). `answer_owed`, at start-up, answers a claim a crash left between the
  two (docs/guarantees.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

import discord

import i18n
from cogs._attachments import ImageAttachment
from cogs._channel_reply import author_only
from cogs._embeds import NO_MENTIONS, echo_prompt
from cogs._intake import Draft, Intake, Origin, role_ids_of
from cogs._locale import server_locale
from cogs._texts import generic_text, refusal_text
from generation.admission import Admission
from generation.cooldowns import Cooldowns
from generation.history import JobHistory
from generation.inline_options import parse_inline_options
from generation.message_requests import MessageRequestBook
from generation.refusals import (
    AnsweredElsewhere,
    ChannelNotAllowed,
    ChannelNotPostable,
    ChatOff,
    PromptBlocked,
    Refusal,
    ReplyTargetHidden,
    Restarting,
    ServerNotAllowed,
)
from generation.server_settings import ServerSettings
from generation.validation import MAX_REFERENCES
from storage.jobs import Job, JobKind
from storage.message_requests import MessageRequest

log = logging.getLogger(__name__)

NOTICE_SECONDS: Final = 60.0
"""How long a refusal stays in the channel before it deletes itself."""
# Messages members write (a reply is type 19); system messages (joins, pins, boosts) ask for nothing.
_MEMBER_MESSAGES: Final = frozenset({discord.MessageType.default, discord.MessageType.reply})
# The result's buttons carry its job (cogs/_views.py): Re-roll's and Delete's custom ids.
_RESULT_BUTTON: Final = re.compile(r"^imagine:(?:reroll|delete):(?P<job>[0-9a-f]{32})(?::|$)")  # not member-facing
_USER_MENTION: Final = re.compile(r"<@!?(?P<id>[0-9]{1,20})>")  # not member-facing
_ROLE_MENTION: Final = re.compile(r"<@&(?P<id>[0-9]{1,20})>")  # not member-facing
_CHANNEL_MENTION: Final = re.compile(r"<#(?P<id>[0-9]{1,20})>")  # not member-facing


def addressed_to(message: discord.Message, me: discord.abc.Snowflake | None) -> bool:
    """Whether a member's message in a server mentions the bot itself (its user: not @everyone, @here or a role;
    a reply with its ping on mentions the author it answers). Only such messages reach a bot without the Message
    Content intent with their text and files. No I/O."""
    if me is None or message.guild is None or message.author.bot or message.webhook_id is not None:
        return False
    return message.type in _MEMBER_MESSAGES and any(user.id == me.id for user in message.mentions)


def chat_nonce(source_message_id: int) -> str:
    """The nonce of the bot's reply to a message: a repeat of the post (within minutes) is the same message."""
    return f"chat:{source_message_id}"[:25]


def result_job_id(message: discord.Message) -> str | None:
    """The job whose result (or whose images shown again with /show) a message of the bot's carries, if any."""
    for row in message.components:
        for child in getattr(row, "children", ()):
            match = _RESULT_BUTTON.match(getattr(child, "custom_id", None) or "")
            if match is not None:
                return match["job"]
    return None


def written_text(message: discord.Message, me_id: int) -> str:
    """The message's text without the bot's mention, other mentions read as names (a prompt goes to the image
    service, not to Discord: `<@123>` would mean nothing there)."""
    guild = message.guild
    text = re.sub(rf"<@!?{me_id}>", " ", message.content)

    def user(match: re.Match[str]) -> str:
        found = next((u for u in message.mentions if u.id == int(match["id"])), None)
        return f"@{found.display_name}" if found is not None else match[0]

    def role(match: re.Match[str]) -> str:
        found = guild.get_role(int(match["id"])) if guild is not None else None
        return f"@{found.name}" if found is not None else match[0]

    def channel(match: re.Match[str]) -> str:
        found = guild.get_channel_or_thread(int(match["id"])) if guild is not None else None
        return f"#{found.name}" if found is not None else match[0]

    text = _USER_MENTION.sub(user, text)
    text = _ROLE_MENTION.sub(role, text)
    return _CHANNEL_MENTION.sub(channel, text).strip()


@dataclass(frozen=True)
class _Replied:
    """What the message replies to, as far as it matters: images to add, and the job they came from; `hidden`
    when it is another member's message, which Discord does not show the bot."""

    images: tuple[ImageAttachment, ...] = ()
    parent: Job | None = None
    hidden: bool = False


class MessageIntake:
    """Turns a message that mentions the bot into a job, or a short answer that says why not."""

    def __init__(
        self,
        client: discord.Client,
        *,
        intake: Intake,
        requests: MessageRequestBook,
        history: JobHistory,
        server_settings: ServerSettings,
        owns_guild: Callable[[int], bool] = lambda guild_id: True,
        owed_grace: timedelta = timedelta(0),
        notice_seconds: float = NOTICE_SECONDS,
        refusal_seconds: float = NOTICE_SECONDS,
    ) -> None:
        self._client = client
        self._intake = intake
        self._requests = requests
        self._history = history
        self._server_settings = server_settings
        self._owns_guild = owns_guild
        # Claims made before this moment are a previous process's: what `answer_owed` may owe.
        self._built_at = requests.now()
        self._owed_grace = owed_grace
        self.notice_seconds = notice_seconds
        """Seconds a refusal stays before it deletes itself."""
        self.refusal_seconds = refusal_seconds
        """Seconds after a refusal during which the same member's next ones are not answered."""
        self._refused = Cooldowns()

    # -- a message arrives ----------------------------------------------------------------------------------

    async def handle(self, message: discord.Message) -> None:
        """Answer a message, if it is addressed to the bot (see the module docstring); never raises."""
        me = self._client.user
        if me is None or not addressed_to(message, me) or message.guild is None:
            return
        guild, channel, author = message.guild, message.channel, message.author
        admission = self._intake.admission
        try:
            admission.check_server(guild.id)
        except ServerNotAllowed:
            # Off ALLOWED_GUILD_IDS nothing is written or posted: a public refusal there would be the bot working.
            log.info("Not answering message %s: server %s is not on ALLOWED_GUILD_IDS", message.id, guild.id)
            return
        permissions = _permissions(message)
        if permissions is None or not _may_answer(permissions, channel):
            log.info("Not answering message %s in channel %s: the bot may not reply there", message.id, channel.id)
            return
        settings = self._server_settings.get(guild.id)
        if not settings.chat and not _listed(admission, guild.id, channel):
            # Admins who turned the conversation off and left this channel off their list want no answer here.
            log.info("Not answering message %s: chat is off and channel %s is not on the list", message.id, channel.id)
            return
        locale = server_locale(guild.preferred_locale, settings.language)
        try:
            if not await self._requests.claim(
                message.id, guild_id=guild.id, channel_id=channel.id, user_id=author.id, locale=locale
            ):
                log.info("Message %s was handled before (delivered again, or by another process)", message.id)
                return
        except Exception:
            log.exception("Could not claim message %s; not answering it", message.id)
            return
        written = written_text(message, me.id)
        try:
            if self._intake.closing:
                raise Restarting()
            if not settings.chat:
                raise ChatOff()
            admission.check_place_and_pace(guild.id, channel.id, author.id, parent_id=_parent_id(channel))
            if not (permissions.embed_links and permissions.attach_files):
                raise ChannelNotPostable()
            draft = await self._draft(message, written, locale)
            self._intake.check_draft(guild.id, draft)
        except Refusal as refusal:
            if isinstance(refusal, PromptBlocked):
                admission.start_cooldown(guild.id, author.id)  # so that the blocked words cannot be probed for free
            await self._refuse(message, refusal, written, locale)
            self._intake.log_refusal(refusal, guild.id, channel.id, author.id, source=JobKind.MESSAGE.source)
            return
        except Exception:
            log.exception("Unexpected error while reading message %s", message.id)
            await self._tell(message, generic_text(locale), written, locale=locale)
            return
        admission.start_cooldown(guild.id, author.id)
        with self._intake.acknowledged():
            await self.reply_then_admit(message, draft, written=written, locale=locale)

    async def reply_then_admit(
        self, message: discord.Message, draft: Draft, *, written: str, locale: str
    ) -> Job | None:
        """Post the reply, record it with the message's claim, then admit the job that will edit it: the one order
        that keeps a request in the conversation answered exactly once across a crash (docs/guarantees.md).

        A crash after the post leaves a claim with a reply and no job; before it, a claim with neither: the next
        start answers both (`answer_owed`), and a post repeated within minutes is the same message (its nonce).
        Returns the job, or None when the request was answered without one.
        """
        assert message.guild is not None
        guild_id, channel_id, user_id = message.guild.id, message.channel.id, message.author.id
        admission = self._intake.admission
        try:
            reply = await message.channel.send(
                i18n.translate("chat.thinking", locale),
                reference=message.to_reference(fail_if_not_exists=True),
                allowed_mentions=author_only(user_id),
                nonce=chat_nonce(message.id),
            )
        except discord.HTTPException as exc:
            # The member deleted the message meanwhile (Discord refuses a reply to it), or the channel refused.
            admission.give_back_cooldown(guild_id, user_id)
            log.info("Could not reply to message %s: %s %s %s", message.id, exc.status, exc.code, exc.text)
            await self._answered(message.id)
            return None
        try:
            await self._requests.set_reply(message.id, reply.id)
            origin = Origin(
                guild_id=guild_id,
                channel_id=channel_id,
                user_id=user_id,
                role_ids=role_ids_of(message.author),
                locale=locale,
                reply_message_id=reply.id,
                # A message carries no member locale: what the member alone reads (a result sent by DM) speaks the
                # server's, as the reply does (docs/i18n.md).
                member_locale=None,
                channel_postable=True,
                source_message_id=message.id,
            )
            job = await self._intake.admit(self._client, draft, origin)
        except AnsweredElsewhere:
            # Another process answered the claim meanwhile (in this reply): nothing more is said or recorded.
            return None
        except Refusal as refusal:
            if self._may_refuse(message, refusal):
                await self._show_refusal(reply, refusal_text(refusal, locale), written, user_id, locale)
            else:
                # Their previous refusal is still shown: this reply is taken back rather than made a second one.
                await self._take_back(reply)
            self._intake.log_refusal(refusal, guild_id, channel_id, user_id, source=JobKind.MESSAGE.source)
        except asyncio.CancelledError:
            # The bot is stopping (`Intake.close`) before this request became a job: the reply says so. The
            # cooldown is kept, as after the slash command's defer: the bot has done I/O for this request.
            with contextlib.suppress(Exception):
                await self._show_refusal(reply, i18n.translate("owed.stopping", locale), written, user_id, locale)
                await self._answered(message.id)
            raise
        except Exception:
            log.exception("Unexpected error while accepting message %s", message.id)
            await self._show_refusal(reply, generic_text(locale), written, user_id, locale)
        else:
            if draft.notice:
                await self._note(message, draft.notice)
            return job
        await self._answered(message.id)
        return None

    # -- what a crash left owed -----------------------------------------------------------------------------

    async def answer_owed(self, *, since_start: bool = False) -> int:
        """At start-up: answer each recent claim made before this process (less `owed_grace`, with several
        processes) that a crash left with neither a job nor an answer, in this process's servers, saying it was not
        taken and nothing was counted. Returns how many were answered.

        `since_start` (several processes only, from `keep_answering`): claims made before now less the grace,
        this process's own included. No request takes that long to become a job, and one that did would find its
        claim answered and make no job (AnsweredElsewhere)."""
        told = 0
        before = (self._requests.now() if since_start else self._built_at) - self._owed_grace
        for claim in await self._requests.owed(before=before):
            if not self._owns_guild(claim.guild_id):
                continue
            try:
                await self._answer_interrupted(claim)
            except discord.HTTPException as exc:
                if exc.status >= 500:
                    log.warning("Could not answer message %s yet: %s", claim.source_message_id, exc)
                    continue  # Discord's trouble: the next start tries again
                log.info("Could not answer message %s: %s %s", claim.source_message_id, exc.status, exc.code)
            await self._answered(claim.source_message_id)
            told += 1
        if told:
            log.info("Answered %d message request(s) a restart had interrupted", told)
        return told

    async def keep_answering(self, every: float) -> None:
        """Until cancelled, with several processes: answer the claims a process that crashed after this one started
        left, which the start-up's look (`answer_owed`) could not see yet."""
        if self._owed_grace <= timedelta(0):
            return  # one process: a crash is a restart, whose start-up answers them
        while True:
            await asyncio.sleep(every)
            try:
                await self.answer_owed(since_start=True)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Could not answer the message requests another process left; trying again")

    async def _answer_interrupted(self, claim: MessageRequest) -> None:
        channel = self._client.get_partial_messageable(claim.channel_id, guild_id=claim.guild_id)
        text = i18n.translate("owed.restarted", claim.locale)
        mentions = author_only(claim.user_id)
        if claim.reply_message_id is not None:
            await channel.get_partial_message(claim.reply_message_id).edit(
                content=text, embeds=[], view=None, allowed_mentions=mentions
            )
            return
        # The reply may have been posted just before the crash: the same nonce then answers with it.
        reference = discord.MessageReference(
            message_id=claim.source_message_id,
            channel_id=claim.channel_id,
            guild_id=claim.guild_id,
            fail_if_not_exists=True,
        )
        posted = await channel.send(
            text, reference=reference, allowed_mentions=mentions, nonce=chat_nonce(claim.source_message_id)
        )
        if posted.content != text:
            await posted.edit(content=text, embeds=[], view=None, allowed_mentions=mentions)

    # -- the parts ------------------------------------------------------------------------------------------

    async def _draft(self, message: discord.Message, written: str, locale: str) -> Draft:
        """What the message asks for, with a note (in `locale`) on what was left out; a `Refusal` for unreadable
        options, or for a reply to a message the bot cannot see that says nothing itself."""

        def t(key: str, **params: object) -> str:
            return i18n.translate(key, locale, **params)

        options = parse_inline_options(written)
        replied = await self._replied(message)
        if replied.hidden and not options.prompt:
            raise ReplyTargetHidden()
        parent = replied.parent
        own = [a for a in (ImageAttachment.of(attachment) for attachment in message.attachments) if a.is_image]
        images = (*own[:MAX_REFERENCES], *replied.images)[:MAX_REFERENCES]
        given = len(own) + len(replied.images)
        notes = [t("notice.reply_target_hidden", menu=t("menu.from_images"))] if replied.hidden else []
        if given > len(images):
            notes.append(
                t("notice.first_images", used=i18n.number(len(images), locale), given=i18n.number(given, locale))
            )
        return Draft(
            options.prompt,
            options.n if options.n is not None else 1,
            JobKind.MESSAGE,
            model=options.model or (parent.model if parent else None),
            aspect=options.aspect or (parent.aspect if parent else None),
            resolution=options.resolution or (parent.resolution if parent else None),
            attachments=images,
            parent_job_id=parent.id if parent else None,
            notice="\n".join(notes) or None,
        )

    async def _replied(self, message: discord.Message) -> _Replied:
        """The images of the message this one replies to, and its job when it is one of the bot's results."""
        reference = message.reference
        target = reference.resolved if reference is not None else None
        if not isinstance(target, discord.Message):
            return _Replied()  # not a reply, or its message is gone
        me = self._client.user
        assert me is not None
        images = tuple(a for a in (ImageAttachment.of(item) for item in target.attachments) if a.is_image)
        if target.author.id == me.id:
            job_id = result_job_id(target)
            parent = await self._history.get(job_id) if job_id is not None else None
            if parent is not None and parent.guild_id != (message.guild.id if message.guild else None):
                parent = None
            return _Replied(images, parent)
        if any(user.id == me.id for user in target.mentions):
            return _Replied(images)  # it mentioned the bot: Discord shows it in full
        # Whether it holds images at all cannot be known: it is not used.
        return _Replied(hidden=True)

    async def _refuse(self, message: discord.Message, refusal: Refusal, written: str, locale: str) -> None:
        """A short reply to the author, pinging only them, with what they wrote; gone after `notice_seconds`.
        Not while their previous refusal is shown (`refusal_seconds`): the claim is then settled without one."""
        if not self._may_refuse(message, refusal):
            await self._answered(message.id)
            return
        await self._tell(message, refusal_text(refusal, locale), written, locale=locale)

    def _may_refuse(self, message: discord.Message, refusal: Refusal) -> bool:
        """Whether the author may be shown this refusal, which then starts their `refusal_seconds`: not while their
        previous one is shown (the channel must not fill with refusals)."""
        assert message.guild is not None
        guild_id, user_id = message.guild.id, message.author.id
        if self._refused.remaining(guild_id, user_id, self.refusal_seconds) > 0:
            log.info(
                "Not answering message %s (%s): its author was refused moments ago", message.id, type(refusal).__name__
            )
            return False
        self._refused.start(guild_id, user_id)
        return True

    async def _note(self, message: discord.Message, text: str) -> None:
        """A note on an accepted request: a reply of its own that pings nobody, gone after `notice_seconds`."""
        try:
            await message.channel.send(
                text,
                reference=message.to_reference(fail_if_not_exists=False),
                allowed_mentions=NO_MENTIONS,
                delete_after=self.notice_seconds,
            )
        except discord.HTTPException as exc:
            log.info("Could not post a note on message %s: %s %s", message.id, exc.status, exc.code)

    async def _tell(self, message: discord.Message, text: str, written: str = "", *, locale: str) -> None:
        try:
            await message.channel.send(
                text,
                embeds=echo_prompt(written, locale),
                reference=message.to_reference(fail_if_not_exists=False),
                allowed_mentions=author_only(message.author.id),
                delete_after=self.notice_seconds,
            )
        except discord.HTTPException as exc:
            log.info("Could not answer message %s: %s %s", message.id, exc.status, exc.code)
        await self._answered(message.id)

    async def _show_refusal(self, reply: discord.Message, text: str, written: str, user_id: int, locale: str) -> None:
        """The reply becomes the refusal (the member was pinged when it was posted), then deletes itself."""
        try:
            await reply.edit(
                content=text,
                embeds=echo_prompt(written, locale),
                allowed_mentions=author_only(user_id),
                delete_after=self.notice_seconds,
            )
        except discord.HTTPException as exc:
            log.info("Could not show a refusal in reply %s: %s %s", reply.id, exc.status, exc.code)

    async def _take_back(self, reply: discord.Message) -> None:
        try:
            await reply.delete()
        except discord.HTTPException as exc:
            log.info("Could not delete reply %s: %s %s", reply.id, exc.status, exc.code)

    async def _answered(self, source_message_id: int) -> None:
        try:
            await self._requests.answered(source_message_id)
        except Exception:
            log.exception("Could not record that message %s was answered", source_message_id)


def _permissions(message: discord.Message) -> discord.Permissions | None:
    """The bot's permissions where the message was posted, from its cache (None when its member is not cached)."""
    guild = message.guild
    channel = message.channel
    me = guild.me if guild is not None else None
    if me is None or not isinstance(channel, discord.abc.GuildChannel | discord.Thread):
        return None
    return channel.permissions_for(me)


def _may_answer(permissions: discord.Permissions, channel: object) -> bool:
    """Whether the bot may reply where the message was posted (in a thread, Send Messages in Threads)."""
    sending = permissions.send_messages_in_threads if isinstance(channel, discord.Thread) else permissions.send_messages
    return bool(permissions.view_channel and sending and permissions.read_message_history)


def _listed(admission: Admission, guild_id: int, channel: object) -> bool:
    """Whether the server's channel allow-list lets the bot work in this channel (a thread: where its parent is)."""
    try:
        admission.check_place(guild_id, getattr(channel, "id", 0), parent_id=_parent_id(channel))
    except ChannelNotAllowed:
        return False
    return True


def _parent_id(channel: object) -> int | None:
    """The channel a thread belongs to (None outside threads): the allow-list is about it."""
    parent_id = getattr(channel, "parent_id", None)
    return parent_id if isinstance(parent_id, int) else None

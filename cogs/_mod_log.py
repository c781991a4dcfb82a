"""What follows a prompt refused for its content: the usage log's row, and the server's moderation log.

Two kinds of refusal are logged (docs/admins.md, Moderation log): a prompt holding one of the server's blocked
words (refused before the first response: the usage log's `blocked` row is written after it, never before), and
a job the image service declined under its content policy. When the server's admins turned the moderation log
on (`/imagine-settings mod-log on`) and chose a log channel, each refusal is posted there once: who, where, the
prompt hidden in a spoiler, and the reason as a fixed category, never the image service's own words; in the
server's language (docs/i18n.md). The posts ping nobody.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Final

import discord

import i18n
from cogs._embeds import NO_MENTIONS
from cogs._limits import DESCRIPTION_LIMIT, cut
from cogs._locale import guild_locale
from cogs._outbox import JobReference, footer_of, recent_message_of_the_bot, reference_or_none
from cogs._texts import mod_log_policy_reason
from generation.events import Failed, FailureKind
from generation.quota_service import QuotaService
from generation.refusals import PromptBlocked
from generation.server_settings import ServerSettings
from storage.jobs import Job

log = logging.getLogger(__name__)

ENTRY_COLOUR: Final = discord.Colour.orange()


def spoiler(text: str, limit: int = DESCRIPTION_LIMIT) -> str:
    """`text` hidden in a spoiler that nothing in it can end early.

    Backslashes, pipes and backticks are escaped (a `||` would close the spoiler, a trailing backslash would
    escape the closing pipes, a backtick could open a code span over them), and a space comes before the closing
    `||`, so a link at the end of the text cannot take the pipes into its address.
    """
    escaped = text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")
    # A cut may leave a lone backslash before its ellipsis: it escapes nothing there.
    return f"||{cut(escaped, limit - len('|| ||'))} ||"


Entry = Callable[[str], discord.Embed]
"""A moderation-log entry, made in the server's locale once it is known."""


def entry_embed(*, user_id: int, channel_id: int, prompt: str, reason: str, locale: i18n.LocaleLike) -> discord.Embed:
    """One moderation-log entry: the member (a mention, which an embed never pings), the channel, the prompt in
    a spoiler, and why it was refused."""
    embed = discord.Embed(
        title=i18n.translate("modlog.title", locale), description=spoiler(prompt), colour=ENTRY_COLOUR
    )
    embed.add_field(name=i18n.translate("modlog.member", locale), value=f"<@{user_id}>")
    embed.add_field(name=i18n.translate("modlog.channel", locale), value=f"<#{channel_id}>")
    embed.add_field(name=i18n.translate("modlog.reason", locale), value=reason, inline=False)
    return embed


class ModerationLog:
    """Records blocked prompts in the usage log and posts refusals to servers that asked for it.

    Its methods are synchronous: they are called while a member is answered (a blocked prompt) or a failure is
    told, and must not hold either up. The work runs in background tasks, kept until they end.
    """

    def __init__(
        self,
        client: discord.Client,
        *,
        server_settings: ServerSettings,
        quotas: QuotaService,
        job_reference: JobReference | None = None,
    ) -> None:
        self._client = client
        self._server_settings = server_settings
        self._quotas = quotas
        self._job_reference = job_reference
        self._tasks: set[asyncio.Task[None]] = set()

    def blocked(
        self, refusal: PromptBlocked, *, guild_id: int, channel_id: int, user_id: int, source: str = "command"
    ) -> None:
        """A prompt was refused for a blocked word (the member has been answered): log it, with how it was asked
        (`source`: command, button, form or message)."""
        self._spawn(self._blocked(refusal, guild_id, channel_id, user_id, source), "blocked-prompt")

    def job_failed(self, event: Failed) -> None:
        """A job failed: if the image service declined it under its content policy, post it, once.

        The entry names the job in its footer. When the failure is told again after a restart (`details_lost`), a
        crash may have come after its entry was posted: the log channel's recent messages are looked through for
        it first (a channel the bot cannot read back in gets it again rather than never)."""
        if event.kind is not FailureKind.CONTENT_POLICY:
            return
        job = event.job
        self._spawn(self._policy_refusal(event, job, look_back=event.details_lost), "mod-log")

    async def wait_idle(self) -> None:
        """Until every logging task started so far has ended (tests, and a clean stop)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _blocked(self, refusal: PromptBlocked, guild_id: int, channel_id: int, user_id: int, source: str) -> None:
        try:
            await self._quotas.record_blocked(
                refusal, guild_id=guild_id, channel_id=channel_id, user_id=user_id, source=source
            )
        except Exception:
            log.exception("Could not write a blocked prompt of guild %s to the usage log", guild_id)
        log.info("guild %s: a prompt of member %s was refused for a blocked word", guild_id, user_id)

        def entry(locale: str) -> discord.Embed:
            reason = i18n.translate("modlog.reason.blocked", locale)
            return entry_embed(
                user_id=user_id, channel_id=channel_id, prompt=refusal.prompt, reason=reason, locale=locale
            )

        await self._post(guild_id, entry)

    async def _policy_refusal(self, event: Failed, job: Job, *, look_back: bool) -> None:
        reference = await reference_or_none(self._job_reference, job)

        def entry(locale: str) -> discord.Embed:
            reason = mod_log_policy_reason(event.policy_category, locale)
            embed = entry_embed(
                user_id=job.user_id, channel_id=job.channel_id, prompt=job.prompt, reason=reason, locale=locale
            )
            if reference:
                embed.set_footer(text=i18n.translate("result.job", locale, reference=reference))
            return embed

        await self._post(job.guild_id, entry, unless_posted=look_back and bool(reference))

    async def _post(self, guild_id: int, entry: Entry, *, unless_posted: bool = False) -> None:
        settings = self._server_settings.get(guild_id)
        if not settings.mod_log or settings.log_channel_id is None or self._client.is_closed():
            return
        channel = self._client.get_partial_messageable(settings.log_channel_id, guild_id=guild_id)
        embed = entry(guild_locale(self._client, guild_id, settings.language))
        if unless_posted and await recent_message_of_the_bot(
            self._client, channel, lambda message: footer_of(message) == embed.footer.text
        ):
            return
        try:
            await channel.send(embed=embed, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            log.warning("Could not post to the moderation log (channel %s of guild %s): %s", channel.id, guild_id, exc)

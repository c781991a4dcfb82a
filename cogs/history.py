"""/show and /history: a job a member can find again by the short reference in its result's footer.

/show posts a job's images again, in the channel where it is run, re-uploaded from the job's result message with
the job's buttons. Its rules (docs/members.md, "Finding a job again"): a member's own jobs, or any job of the
server for someone with Manage Messages; never a job of another server, nor one from a channel the member cannot
view, nor one from an age-restricted channel into a channel that is not; spoilers stay spoilers, and the server's
spoiler setting as it stands applies (docs/admins.md, Spoilers); the channel allow-list applies. Its suggestions
read the database, the one I/O allowed before an interaction's answer (autocomplete's answer is its only
response), within AUTOCOMPLETE_BUDGET.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterable
from typing import Final

import discord
from discord import app_commands
from discord.ext import commands

import i18n
from cogs._embeds import NO_MENTIONS, shown_embed
from cogs._errors import answer_error
from cogs._intake import parent_of
from cogs._locale import public_locale
from cogs._pagination import pages_of, send_pages
from cogs._replies import defer_privately, refuse_after_defer
from cogs._services import Services, services_of
from cogs._spoilers import spoiler_rule, spoils_in
from cogs._texts import generic_text, history_line, refusal_text, sent_by_dm, suggestion_name
from cogs._translator import command_text
from cogs._views import result_view
from generation.events import FailureKind
from generation.history import parse_reference
from generation.refusals import (
    JobAgeRestricted,
    JobChannelHidden,
    JobNotFound,
    JobWithoutResult,
    NotInServer,
    NotYourJob,
    Refusal,
    ResultGone,
)
from storage.clock import utc_now
from storage.errors import StorageError
from storage.jobs import Job, JobState
from toapis.mime import extension_for

log = logging.getLogger(__name__)

# Discord waits 3 seconds for suggestions and shows none after that: answering none within 2 s beats a failure.
AUTOCOMPLETE_BUDGET: Final = 2.0
# Discord shows at most 25 suggestions, each named in at most 100 characters.
MAX_SUGGESTIONS: Final = 25
CHOICE_NAME_LIMIT: Final = 100
# The latest jobs the suggestions are chosen from, and that /history lists.
SUGGESTION_POOL: Final = 100
HISTORY_LIMIT: Final = 100

SourceChannel = discord.abc.GuildChannel | discord.Thread


class HistoryCog(commands.Cog):
    def __init__(self, bot: commands.Bot | commands.AutoShardedBot, services: Services) -> None:
        self.bot = bot
        self.services = services

    # -- /show -----------------------------------------------------------------------------------------------

    @app_commands.command(name="show", description=command_text("command.show"))
    @app_commands.guild_only()
    @app_commands.describe(job=command_text("option.show.job"))
    async def show(self, interaction: discord.Interaction, job: str) -> None:
        """Post a job's images here again, with their buttons."""
        guild_id, channel_id = interaction.guild_id, interaction.channel_id
        try:
            if guild_id is None or channel_id is None:
                raise NotInServer()
            self.services.intake.admission.check_place(
                guild_id, channel_id, parent_id=parent_of(interaction), command="/show"
            )
            reference = parse_reference(job)
        except Refusal as refusal:
            await interaction.response.send_message(
                refusal_text(refusal, interaction.locale), ephemeral=True, allowed_mentions=NO_MENTIONS
            )
            return
        await interaction.response.defer(thinking=True)
        settings = self.services.server_settings
        try:
            found = await self.services.history.find(guild_id, reference)
            if found is None:
                raise JobNotFound(reference)
            await self._check_may_show(interaction, found)
            files = await self._images_of(found, spoiler=spoils_in(self.bot, settings, guild_id, channel_id))
            # Posted for the whole channel: in the server's language, as a job's result would be now.
            public = public_locale(interaction, self.services.server_settings.get(guild_id).language)
            reference = await self.services.history.reference(found)
            embed = shown_embed(found, reference=reference, shown_by=interaction.user.id, locale=public)
            view = result_view(found, len(files), public)
            await interaction.edit_original_response(
                embed=embed, attachments=files, view=view, allowed_mentions=NO_MENTIONS
            )
        except Refusal as refusal:
            await refuse_after_defer(interaction, refusal_text(refusal, interaction.locale))
        except Exception:
            # Answered here: while the public reply is the "thinking" placeholder, a follow-up would become it.
            log.exception("Unexpected error in /show")
            await refuse_after_defer(interaction, generic_text(interaction.locale))
        else:
            log.info("job %s shown by %s in channel %s", found.id, interaction.user.id, channel_id)

    async def _check_may_show(self, interaction: discord.Interaction, job: Job) -> None:
        """The member may show this job here, or the refusal that says why not."""
        user = interaction.user
        if job.user_id != user.id and not interaction.permissions.manage_messages:
            raise NotYourJob()
        guild = interaction.guild
        if guild is None or not isinstance(user, discord.Member):
            raise JobChannelHidden()
        source = await _channel_of(guild, job.channel_id)
        if source is None or not _can_view(source, user, requester=job.user_id):
            raise JobChannelHidden()
        if _is_nsfw(source) and not _is_nsfw(interaction.channel):
            raise JobAgeRestricted()
        if _undeliverable(job):
            # Kept for its member alone: nobody else may post them (docs/members.md).
            if job.user_id != user.id:
                raise NotYourJob()
            return
        if job.state is not JobState.COMPLETED or job.result_message_id is None:
            raise JobWithoutResult(finished=job.is_finished)

    async def _images_of(self, job: Job, *, spoiler: bool) -> list[discord.File]:
        """The images on the job's result message (the bot's own: it may read them), to upload again; spoilers
        stay spoilers, and every image is one when `spoiler` (the server posts results here as spoilers now, as it
        may not have when the job was delivered). A result nobody could receive is posted from where it was
        kept."""
        if _undeliverable(job):
            kept = await self.services.history.kept_results(job)
            if not kept:
                raise ResultGone()
            spoiler = spoiler or spoiler_rule(self.bot, self.services.server_settings)(job)
            return [
                discord.File(
                    io.BytesIO(result.data),
                    filename=f"imagine-{index}.{extension_for(result.mime_type)}",
                    spoiler=spoiler,
                )
                for index, result in enumerate(kept, start=1)
            ]
        if job.result_deleted_at is not None:
            raise ResultGone()  # seen deleted: nothing to fetch
        message = await self._result_message(job)
        try:
            files = [await item.to_file(spoiler=spoiler or item.is_spoiler()) for item in message.attachments]
        except (discord.NotFound, discord.Forbidden) as exc:
            raise ResultGone() from exc
        if not files:
            raise ResultGone()
        return files

    async def _result_message(self, job: Job) -> discord.Message:
        """The job's result message: in its channel, or else in its requester's direct messages (where a result
        that outlived its reply goes when the channel refuses the bot's messages: cogs/_outbox.py)."""
        assert job.result_message_id is not None
        channel = self.bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        try:
            return await channel.fetch_message(job.result_message_id)
        except (discord.NotFound, discord.Forbidden):
            pass
        try:
            direct = await self.bot.create_dm(discord.Object(job.user_id))
            return await direct.fetch_message(job.result_message_id)
        except (discord.NotFound, discord.Forbidden) as exc:
            raise ResultGone() from exc

    # -- results deleted ------------------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        await self._results_deleted(payload.guild_id, (payload.message_id,))

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        await self._results_deleted(payload.guild_id, payload.message_ids)

    async def _results_deleted(self, guild_id: int | None, message_ids: Iterable[int]) -> None:
        """A deleted result message is noted on its job, so that /history no longer links to it (Discord tells
        the bot of every deletion in the channels it sees, by message id, whoever deleted it)."""
        if guild_id is None or not self.services.settings.guild_allowed(guild_id):
            return
        try:
            await self.services.history.results_deleted(message_ids)
        except Exception:
            log.exception("Could not note the deletion of messages %s", list(message_ids))

    @show.autocomplete("job")
    async def job_suggestions(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """The member's latest delivered jobs whose reference or prompt holds what was typed. The database is read
        within AUTOCOMPLETE_BUDGET; past it, no suggestion (Discord would show none anyway)."""
        if interaction.guild_id is None:
            return []
        try:
            async with asyncio.timeout(AUTOCOMPLETE_BUDGET):
                return await self._suggestions(interaction.guild_id, interaction.user.id, current, interaction.locale)
        except TimeoutError:
            log.warning("/show suggestions: the database did not answer within %.1f s", AUTOCOMPLETE_BUDGET)
        except StorageError:
            log.warning("/show suggestions: the database failed", exc_info=True)
        return []

    async def _suggestions(
        self, guild_id: int, user_id: int, current: str, locale: discord.Locale
    ) -> list[app_commands.Choice[str]]:
        history = self.services.history
        typed = current.strip().lower()
        jobs = [
            job
            for job in await history.recent(guild_id, user_id, limit=SUGGESTION_POOL)
            if (job.state is JobState.COMPLETED or _undeliverable(job))
            and (job.id.startswith(typed) or typed in job.prompt.lower())
        ]
        now = utc_now()
        return [
            app_commands.Choice(
                name=suggestion_name(
                    found.job,
                    found.reference,
                    (now - found.job.created_at).total_seconds(),
                    limit=CHOICE_NAME_LIMIT,
                    locale=locale,
                ),
                value=found.reference,
            )
            for found in await history.with_references(jobs[:MAX_SUGGESTIONS])
        ]

    # -- /history --------------------------------------------------------------------------------------------

    @app_commands.command(name="history", description=command_text("command.history"))
    @app_commands.guild_only()
    async def history(self, interaction: discord.Interaction) -> None:
        """List your latest jobs in this server, with their references and links to their images."""
        assert interaction.guild_id is not None
        await defer_privately(interaction)
        history = self.services.history
        jobs = await history.recent(interaction.guild_id, interaction.user.id, limit=HISTORY_LIMIT)
        locale = interaction.locale
        dm = await _dm_channel_id(interaction.user) if any(sent_by_dm(job) for job in jobs) else None
        lines = [
            history_line(found.job, found.reference, locale, dm_channel_id=dm)
            for found in await history.with_references(jobs)
        ]
        title, header = i18n.translate("history.title", locale), i18n.translate("history.header", locale)
        empty = i18n.translate("history.empty", locale)
        await send_pages(interaction, pages_of(title, lines, header=header, empty=empty, locale=locale))

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await answer_error(interaction, error)


async def _dm_channel_id(user: discord.User | discord.Member) -> int | None:
    """The member's DM channel with the bot, where results that the channel refused went (None if Discord will not
    open it: those jobs are then listed without a link)."""
    try:
        return (user.dm_channel or await user.create_dm()).id
    except discord.HTTPException:
        log.info("/history: could not open the DM channel of %s", user.id, exc_info=True)
        return None


async def _channel_of(guild: discord.Guild, channel_id: int) -> SourceChannel | None:
    """The job's channel: from the cache, or asked of Discord (an archived thread leaves the cache); None when
    Imagine cannot tell what it is."""
    cached = guild.get_channel_or_thread(channel_id)
    if cached is not None:
        return cached
    try:
        fetched = await guild.fetch_channel(channel_id)
    except discord.HTTPException:
        return None
    return fetched if isinstance(fetched, discord.abc.GuildChannel | discord.Thread) else None


def _can_view(channel: SourceChannel, member: discord.Member, *, requester: int) -> bool:
    """Whether the member can view the channel, by the permissions Imagine knows. A private thread is seen by its
    members alone, whom Imagine does not know: its requester was one, and Manage Threads sees them all."""
    try:
        permissions = channel.permissions_for(member)
    except discord.ClientException:  # a thread whose parent is not cached: unknown
        return False
    if not permissions.view_channel:
        return False
    if isinstance(channel, discord.Thread) and channel.is_private():
        return member.id == requester or permissions.manage_threads
    return True


def _is_nsfw(channel: object) -> bool:
    """Whether the channel is age-restricted (a thread: its parent); False when unknown."""
    is_nsfw = getattr(channel, "is_nsfw", None)
    return bool(is_nsfw()) if callable(is_nsfw) else False


async def setup(bot: commands.Bot | commands.AutoShardedBot) -> None:
    await bot.add_cog(HistoryCog(bot, services_of(bot)))


def _undeliverable(job: Job) -> bool:
    """A job whose images were made but that nobody could receive: its results were kept (cogs/_outbox.py)."""
    return job.state is JobState.FAILED and job.error_code == FailureKind.UNDELIVERABLE.value

"""/imagine: generate images from a prompt and up to four reference images.

Answering (product.md): checks that need no I/O refuse at once, ephemerally; otherwise the first response is a
deferred reply. A refusal found after that (an unreadable image, a quota) deletes the deferred reply and
answers with an ephemeral follow-up. From then on the pipeline owns the job and edits the reply through the
job's reporter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import discord
from discord import app_commands
from discord.ext import commands

from cogs._embeds import MESSAGE_LIST_LIMIT, NO_MENTIONS, channel_list, quota_refusal
from cogs._errors import GENERIC, answer_error
from cogs._reporter import DiscordReporter
from cogs._services import Services, services_of
from generation.requests import JobRefused, JobRequest, Reference
from generation.validation import (
    DEFAULT_SIZE,
    MAX_N,
    PROMPT_MAX_LENGTH,
    SIZES,
    RequestRejected,
    check_options,
    prepare_references,
)
from storage.jobs import JobKind

log = logging.getLogger(__name__)

# Bigger attachments are refused before anything is downloaded; smaller ones over the upload limit are
# re-encoded to fit.
MAX_ATTACHMENT_BYTES: Final = 50_000_000
# How long a notice waits for the reply to stop being the "thinking" placeholder (its first edit).
NOTICE_WAIT: Final = 30.0


@dataclass(frozen=True)
class Draft:
    """What a request asks for, before it is checked and becomes a job."""

    prompt: str
    size: str
    n: int
    kind: JobKind
    attachments: tuple[discord.Attachment, ...] = ()
    """Read after the defer."""
    references: tuple[Reference, ...] = ()
    """Bytes already at hand (a re-roll's stored references)."""
    parent_job_id: str | None = None
    notice: str | None = None
    """Told to the member, ephemerally, once the job is accepted (e.g. that images were skipped)."""


DraftLoader = Callable[[], Awaitable[Draft]]

SIZE_CHOICES: Final = [
    app_commands.Choice(name=f"{label} ({value.replace('x', '×')})", value=value) for value, label in SIZES.items()
]


class ImagineCog(commands.Cog):
    def __init__(self, bot: commands.Bot | commands.AutoShardedBot, services: Services) -> None:
        self.bot = bot
        self.services = services

    @app_commands.command(name="imagine")
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="What to draw, in up to 4,000 characters",
        size="The shape of the images (square by default)",
        n="How many images, 1 to 4 (1 by default)",
        image="A reference image to guide the result",
        image2="A second reference image",
        image3="A third reference image",
        image4="A fourth reference image",
    )
    @app_commands.choices(size=SIZE_CHOICES)
    async def imagine(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, PROMPT_MAX_LENGTH],
        size: str = DEFAULT_SIZE,
        n: app_commands.Range[int, 1, MAX_N] = 1,
        image: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
    ) -> None:
        """Generate images from a prompt, optionally guided by up to four reference images."""
        attachments = tuple(a for a in (image, image2, image3, image4) if a is not None)
        await self.run(interaction, Draft(prompt, size, n, JobKind.IMAGINE, attachments=attachments))

    async def run(self, interaction: discord.Interaction, draft: Draft | DraftLoader) -> None:
        """Check, defer, read the references, and hand the job to the pipeline; shared by every way in.

        A `Draft` known at once (a slash command's options) is checked before the first response; a loader (a
        button that repeats a stored job) runs after the defer, since reading the database is I/O, and what it
        finds is checked then.
        """
        guild_id, channel_id, user_id = interaction.guild_id, interaction.channel_id, interaction.user.id
        if guild_id is None or channel_id is None:
            await interaction.response.send_message("This works in servers only.", ephemeral=True)
            return
        try:
            self.check_place_and_pace(guild_id, channel_id, user_id)
            if isinstance(draft, Draft):
                self.check_draft(guild_id, draft)
        except (RequestRejected, JobRefused) as exc:
            await interaction.response.send_message(exc.reason, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        # Started before the defer, so that a second request sent meanwhile is refused; given back if this one
        # is not accepted after all.
        cooldowns = self.services.cooldowns
        cooldowns.start(guild_id, user_id)
        try:
            callback = await interaction.response.defer(thinking=True)
        except BaseException:
            cooldowns.cancel(guild_id, user_id)
            raise
        n = draft.n if isinstance(draft, Draft) else 0
        try:
            reply_id = callback.message_id if callback is not None else None
            if reply_id is None:
                reply_id = (await interaction.original_response()).id
            if not isinstance(draft, Draft):
                draft = await draft()
                n = draft.n
            prompt = self.check_draft(guild_id, draft)
            read = await self._read_attachments(draft.attachments)
            prepared = [Reference(item.data, item.mime_type) for item in await prepare_references(read)]
            request = JobRequest(
                guild_id=guild_id,
                channel_id=channel_id,
                user_id=user_id,
                prompt=prompt,
                size=draft.size,
                n=draft.n,
                role_ids=_role_ids(interaction.user),
                references=(*draft.references, *prepared),
                kind=draft.kind,
                parent_job_id=draft.parent_job_id,
                application_id=interaction.application_id,
                interaction_token=interaction.token,
                token_expires_at=interaction.expires_at,
                reply_message_id=reply_id,
            )
            job = await self.services.pipeline.submit(request)
        except (RequestRejected, JobRefused) as exc:
            cooldowns.cancel(guild_id, user_id)
            text = exc.reason
            if isinstance(exc, JobRefused) and exc.quota is not None:
                text = quota_refusal(exc.quota, n)
            await self._refuse_after_defer(interaction, text)
            return
        except Exception:
            # Answered here rather than by the error handler: while the public reply is still the "thinking"
            # placeholder, a follow-up would become that public reply.
            cooldowns.cancel(guild_id, user_id)
            log.exception("Unexpected error while accepting a request")
            await self._refuse_after_defer(interaction, GENERIC)
            return
        if draft.notice:
            # Until the reply has been edited once it is the "thinking" placeholder, and Discord would turn a
            # follow-up into the (public) reply itself.
            reporter = self.services.pipeline.reporter_of(job.id)
            if isinstance(reporter, DiscordReporter):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(NOTICE_WAIT):
                        await reporter.reply_settled()
            await interaction.followup.send(draft.notice, ephemeral=True, allowed_mentions=NO_MENTIONS)

    def check_place_and_pace(self, guild_id: int, channel_id: int, user_id: int) -> None:
        """The server, the channel and the member's cooldown allow a request now. No I/O."""
        self.services.pipeline.check_available(guild_id)
        server = self.services.server_settings.get(guild_id)
        if not server.channel_allowed(channel_id):
            places = channel_list(server.allowed_channel_ids, limit=MESSAGE_LIST_LIMIT)
            raise RequestRejected(f"/imagine is not used in this channel. In this server, use it in {places}.")
        wait = self.services.cooldowns.remaining(guild_id, user_id, server.cooldown_seconds)
        if wait > 0:
            when = discord.utils.format_dt(datetime.now(UTC) + timedelta(seconds=wait), "R")
            raise RequestRejected(f"You can use /imagine again {when}.")

    def check_draft(self, guild_id: int, draft: Draft) -> str:
        """The request's own options are acceptable in this server; returns the trimmed prompt. No I/O."""
        server = self.services.server_settings.get(guild_id)
        count = len(draft.attachments) + len(draft.references)
        cleaned = check_options(draft.prompt, draft.size, draft.n, max_n=server.max_n, reference_count=count)
        for position, attachment in enumerate(draft.attachments, start=1):
            if attachment.size > MAX_ATTACHMENT_BYTES:
                raise RequestRejected(
                    f"Image {position} is {attachment.size / 1_000_000:.0f} MB; reference images can be at most "
                    f"{MAX_ATTACHMENT_BYTES // 1_000_000} MB."
                )
        return cleaned

    async def _read_attachments(self, attachments: Sequence[discord.Attachment]) -> list[bytes]:
        blobs = []
        for position, attachment in enumerate(attachments, start=1):
            try:
                blobs.append(await attachment.read())
            except discord.HTTPException as exc:
                log.info("Could not read attachment %s: %s", position, exc)
                raise RequestRejected(
                    f"Imagine could not download image {position} from Discord. Attach it again and retry."
                ) from exc
        return blobs

    async def _refuse_after_defer(self, interaction: discord.Interaction, text: str) -> None:
        try:
            await interaction.delete_original_response()
        except discord.HTTPException:
            log.info("Could not delete the deferred reply", exc_info=True)
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await answer_error(interaction, error)


def _role_ids(user: discord.User | discord.Member) -> frozenset[int]:
    if isinstance(user, discord.Member):
        return frozenset(role.id for role in user.roles)
    return frozenset()


async def setup(bot: commands.Bot | commands.AutoShardedBot) -> None:
    await bot.add_cog(ImagineCog(bot, services_of(bot)))

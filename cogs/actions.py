"""What members do next with an image: Re-roll, Vary, Delete, Cancel, and "Imagine from images".

The buttons are DynamicItems (cogs/_views.py) resolved from their custom ids, so they work on messages posted
before a restart. Re-roll and Vary start a new job of the member who clicked, counted against their quota,
through the same path as /imagine (ImagineCog.run). What they repeat is read from the database after the
defer, since nothing that does I/O may come before an interaction's first response.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Final

import discord
from discord import app_commands
from discord.ext import commands

from cogs._embeds import NO_MENTIONS
from cogs._errors import answer_error
from cogs._services import Services, services_of
from cogs._views import DYNAMIC_ITEMS
from cogs.imagine import Draft, ImagineCog
from generation.pipeline import JobRefused, Reference
from generation.validation import MAX_REFERENCES, PROMPT_MAX_LENGTH, RequestRejected, nearest_size
from storage.jobs import Job, JobKind

log = logging.getLogger(__name__)

CONTEXT_MENU_NAME: Final = "Imagine from images"
IMAGE_EXTENSIONS: Final = (".png", ".jpg", ".jpeg", ".webp", ".gif")


def is_image(attachment: discord.Attachment) -> bool:
    """Whether an attachment looks like an image by what Discord says of it (its bytes are checked later)."""
    if attachment.content_type:
        return attachment.content_type.startswith("image/")
    return attachment.filename.lower().endswith(IMAGE_EXTENSIONS)


class PromptModal(discord.ui.Modal, title="Imagine from images"):
    prompt: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(
        label="Prompt",
        style=discord.TextStyle.paragraph,
        placeholder="What to make from these images",
        min_length=1,
        max_length=PROMPT_MAX_LENGTH,
    )

    def __init__(self, imagine: ImagineCog, images: list[discord.Attachment], skipped: int) -> None:
        super().__init__(timeout=15 * 60)
        self.imagine = imagine
        self.images = images
        self.skipped = skipped

    async def on_submit(self, interaction: discord.Interaction) -> None:
        first = self.images[0]
        size = nearest_size(first.width or 1, first.height or 1)
        notice = None
        if self.skipped:
            total = len(self.images) + self.skipped
            notice = f"Only the first {len(self.images)} of the {total} images are used as references."
        draft = Draft(self.prompt.value, size, 1, JobKind.CONTEXT, attachments=tuple(self.images), notice=notice)
        await self.imagine.run(interaction, draft)

    async def on_error(self, interaction: discord.Interaction, error: Exception, /) -> None:  # type: ignore[override]
        await answer_error(interaction, error)


class ResultActionsCog(commands.Cog):
    def __init__(self, bot: commands.Bot | commands.AutoShardedBot, services: Services) -> None:
        self.bot = bot
        self.services = services
        # The context_menu decorator cannot be used in a class: build the command here.
        self.from_images = app_commands.ContextMenu(name=CONTEXT_MENU_NAME, callback=self.imagine_from_images)
        self.from_images.guild_only = True
        self.from_images.on_error = self._context_menu_error

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.from_images)
        self.bot.add_dynamic_items(*DYNAMIC_ITEMS)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.from_images.name, type=self.from_images.type)
        self.bot.remove_dynamic_items(*DYNAMIC_ITEMS)

    @property
    def imagine(self) -> ImagineCog:
        cog = self.bot.get_cog("ImagineCog")
        if not isinstance(cog, ImagineCog):
            raise RuntimeError("the ImagineCog is not loaded")
        return cog

    # -- the context menu ------------------------------------------------------------------------------------

    async def imagine_from_images(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Use a message's images as references: a modal asks for the prompt."""
        images = [attachment for attachment in message.attachments if is_image(attachment)]
        if not images:
            await interaction.response.send_message(
                "That message has no images. Use this on a message with JPEG, PNG, WebP or GIF images.",
                ephemeral=True,
            )
            return
        try:
            assert interaction.guild_id is not None
            assert interaction.channel_id is not None
            self.imagine.check_place_and_pace(interaction.guild_id, interaction.channel_id, interaction.user.id)
        except (RequestRejected, JobRefused) as exc:
            await interaction.response.send_message(exc.reason, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        used = images[:MAX_REFERENCES]
        await interaction.response.send_modal(PromptModal(self.imagine, used, len(images) - len(used)))

    async def _context_menu_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await answer_error(interaction, error)

    # -- buttons -----------------------------------------------------------------------------------------------

    async def reroll(self, interaction: discord.Interaction, job_id: str) -> None:
        """A new job with the same prompt, size, n and references, for the member who clicked."""

        async def load() -> Draft:
            parent = await self._parent(job_id, "re-rolled")
            stored = await self.services.store.references.load(parent.id)
            if len(stored) != parent.reference_count:
                raise RequestRejected(
                    f"The reference images of this request are no longer kept (they are deleted after "
                    f"{self.services.settings.retention_days} days), so it cannot be re-rolled. "
                    "Start a new /imagine instead."
                )
            references = tuple(Reference(image.data, image.mime_type) for image in stored)
            return Draft(
                parent.prompt, parent.size, parent.n, JobKind.REROLL, references=references, parent_job_id=parent.id
            )

        await self.imagine.run(interaction, load)

    async def vary(self, interaction: discord.Interaction, job_id: str, index: int) -> None:
        """A new job with the same prompt and this image (the message's current attachment) as its reference."""
        attachments = interaction.message.attachments if interaction.message else []
        if index >= len(attachments):
            await interaction.response.send_message("That image is no longer on this message.", ephemeral=True)
            return
        image = attachments[index]

        async def load() -> Draft:
            parent = await self._parent(job_id, "varied")
            return Draft(
                parent.prompt, parent.size, parent.n, JobKind.VARY, attachments=(image,), parent_job_id=parent.id
            )

        await self.imagine.run(interaction, load)

    async def delete(self, interaction: discord.Interaction, job_id: str, requester_id: int) -> None:
        """The requester, or anyone with Manage Messages, deletes the result."""
        if interaction.user.id != requester_id and not interaction.permissions.manage_messages:
            await interaction.response.send_message(
                "Only the member who asked for these images, or someone with Manage Messages, can delete them.",
                ephemeral=True,
            )
            return
        await interaction.response.defer()
        # After a deferred update, the interaction's original response is the message with the button.
        with contextlib.suppress(discord.NotFound):  # already gone
            await interaction.delete_original_response()
        log.info("job %s: result deleted by %s", job_id, interaction.user.id)

    async def cancel(self, interaction: discord.Interaction, job_id: str, requester_id: int) -> None:
        """The requester cancels a job still waiting in line; its images are refunded."""
        if interaction.user.id != requester_id:
            await interaction.response.send_message("Only the member who asked can cancel this.", ephemeral=True)
            return
        await interaction.response.defer()
        if not await self.services.pipeline.cancel(job_id, requester_id):
            await interaction.followup.send(
                "Too late to cancel: generation has started, and the image service cannot stop it.", ephemeral=True
            )

    async def _parent(self, job_id: str, verb: str) -> Job:
        parent = await self.services.store.jobs.get(job_id)
        if parent is None:
            raise RequestRejected(f"Imagine no longer knows the request behind these images, so they cannot be {verb}.")
        return parent


async def setup(bot: commands.Bot | commands.AutoShardedBot) -> None:
    await bot.add_cog(ResultActionsCog(bot, services_of(bot)))

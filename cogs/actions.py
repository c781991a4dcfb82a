"""What members do next with an image: Re-roll, Vary, Delete, Cancel, and "Imagine from images".

The buttons are DynamicItems (cogs/_views.py) resolved from their custom ids, so they work on messages posted
before a restart. Re-roll and Vary start a new job of the member who clicked, counted against their quota,
through the same path as /imagine (ImagineCog.run). What they repeat is read from the database after the
defer, since nothing that does I/O may come before an interaction's first response.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any, Final

import discord
from discord import app_commands
from discord.ext import commands

from cogs._embeds import NO_MENTIONS
from cogs._errors import answer_error
from cogs._services import Services, services_of
from cogs._views import DYNAMIC_ITEMS
from cogs.imagine import Draft, ImagineCog
from generation.events import FailureKind
from generation.requests import JobRefused, Reference
from generation.validation import MAX_REFERENCES, PROMPT_MAX_LENGTH, RequestRejected, nearest_size
from storage.jobs import Job, JobKind, JobState

log = logging.getLogger(__name__)

CONTEXT_MENU_NAME: Final = "Imagine from images"
FORM_PREFIX: Final = "imagine:from-images:"
# A prompt form lives 15 minutes; a little more so that a submit in its last second is still discord.py's.
FORM_LIFETIME: Final = 16 * 60.0
IMAGE_EXTENSIONS: Final = (".png", ".jpg", ".jpeg", ".webp", ".gif")


def is_image(attachment: discord.Attachment) -> bool:
    """Whether an attachment looks like an image by what Discord says of it (its bytes are checked later)."""
    if attachment.content_type:
        return attachment.content_type.startswith("image/")
    return attachment.filename.lower().endswith(IMAGE_EXTENSIONS)


def from_images_draft(prompt: str, attachments: list[discord.Attachment]) -> Draft:
    """The request "Imagine from images" makes of a message: its first four images as references, the size
    closest to the first one's shape, one image; the member is told if images were left out."""
    images = [attachment for attachment in attachments if is_image(attachment)]
    if not images:
        raise RequestRejected("That message no longer has images.")
    used = images[:MAX_REFERENCES]
    notice = None
    if len(images) > len(used):
        notice = f"Only the first {len(used)} of the {len(images)} images are used as references."
    size = nearest_size(used[0].width or 1, used[0].height or 1)
    return Draft(prompt, size, 1, JobKind.CONTEXT, attachments=tuple(used), notice=notice)


def form_id(channel_id: int, message_id: int, user_id: int) -> str:
    """The prompt form's custom id: what a submit after a restart needs to find the message again."""
    return f"{FORM_PREFIX}{channel_id}:{message_id}:{user_id}"


class PromptModal(discord.ui.Modal, title="Imagine from images"):
    prompt: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(
        label="Prompt",
        style=discord.TextStyle.paragraph,
        placeholder="What to make from these images",
        min_length=1,
        max_length=PROMPT_MAX_LENGTH,
    )

    def __init__(self, actions: ResultActionsCog, message: discord.Message, user_id: int) -> None:
        super().__init__(timeout=FORM_LIFETIME - 60, custom_id=form_id(message.channel.id, message.id, user_id))
        self.actions = actions
        self.message = message
        actions.form_opened(self.custom_id)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self.actions.imagine.run(interaction, from_images_draft(self.prompt.value, self.message.attachments))

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
        # The prompt forms this process opened, until they time out: discord.py answers their submits (the
        # listener below must not answer them too, even after the form has been submitted).
        self._open_forms: dict[str, float] = {}

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
        await interaction.response.send_modal(PromptModal(self, message, interaction.user.id))

    def form_opened(self, custom_id: str) -> None:
        self._open_forms[custom_id] = time.monotonic() + FORM_LIFETIME

    def _form_is_open(self, custom_id: str) -> bool:
        now = time.monotonic()
        self._open_forms = {key: until for key, until in self._open_forms.items() if until > now}
        return custom_id in self._open_forms

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """A prompt form submitted after a restart (or after its 15 minutes): discord.py no longer knows it, so
        it is answered here from its custom id, which names the message; the images are read from it again."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        custom_id = str(data.get("custom_id", ""))
        if not custom_id.startswith(FORM_PREFIX) or self._form_is_open(custom_id):
            return
        try:
            channel_id, message_id, _user = (int(part) for part in custom_id.removeprefix(FORM_PREFIX).split(":"))
        except ValueError:
            return
        prompt = _text_value(data.get("components", []))

        async def load() -> Draft:
            channel = self.bot.get_partial_messageable(channel_id, guild_id=interaction.guild_id)
            try:
                message = await channel.fetch_message(message_id)
            except discord.HTTPException as exc:
                raise RequestRejected("That message is gone. Use Imagine from images on it again.") from exc
            return from_images_draft(prompt, message.attachments)

        await self.imagine.run(interaction, load)

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
        if await self.services.pipeline.cancel(job_id, requester_id):
            return
        job = await self.services.store.jobs.get(job_id)
        if job is None:
            text = "Imagine no longer knows this request."
        elif job.state is JobState.FAILED and job.error_code == FailureKind.CANCELLED.value:
            text = "It is already cancelled; your images were not counted."
        elif job.is_finished:
            text = "This request has already ended."
        else:
            text = "Too late to cancel: generation has started, and the image service cannot stop it."
        await interaction.followup.send(text, ephemeral=True)

    async def _parent(self, job_id: str, verb: str) -> Job:
        parent = await self.services.store.jobs.get(job_id)
        if parent is None:
            raise RequestRejected(f"Imagine no longer knows the request behind these images, so they cannot be {verb}.")
        return parent


async def setup(bot: commands.Bot | commands.AutoShardedBot) -> None:
    await bot.add_cog(ResultActionsCog(bot, services_of(bot)))


def _text_value(components: object) -> str:
    """The first text value in a modal submit's components (action rows or labels, at any depth)."""
    stack = [components]
    while stack:
        item = stack.pop(0)
        if isinstance(item, list):
            stack[:0] = item
        elif isinstance(item, dict):
            value = item.get("value")
            if isinstance(value, str):
                return value
            stack.extend(value for key, value in item.items() if key in ("components", "component"))
    return ""

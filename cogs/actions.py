""" "Imagine from images": a message context menu that asks for a prompt and uses the message's images.

The buttons on results are registered here (their handlers are cogs/_result_actions.py). The prompt form is
answered by discord.py while it is open in this process; a form submitted after a restart is answered by the
listener below from its custom id. Either way the job goes through the same intake as /imagine.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

import discord
from discord import app_commands
from discord.ext import commands

import i18n
from cogs._embeds import NO_MENTIONS
from cogs._errors import answer_error
from cogs._gate import Gated, allowed_here
from cogs._intake import Draft, parent_of
from cogs._services import Services, services_of
from cogs._texts import refusal_text
from cogs._translator import command_text
from cogs._views import DYNAMIC_ITEMS
from generation.refusals import MessageGone, MessageHasNoImages, Refusal
from generation.validation import MAX_REFERENCES, PROMPT_MAX_LENGTH
from storage.jobs import JobKind
from toapis import catalog
from toapis.catalog import ModelSpec

log = logging.getLogger(__name__)

MENU_KEY: Final = "menu.from_images"
FORM_PREFIX: Final = "imagine:from-images:"
# A prompt form lives 15 minutes; a little more so that a submit in its last second is still discord.py's.
FORM_LIFETIME: Final = 16 * 60.0
IMAGE_EXTENSIONS: Final = (".png", ".jpg", ".jpeg", ".webp", ".gif")


def is_image(attachment: discord.Attachment) -> bool:
    """Whether an attachment looks like an image by what Discord says of it (its bytes are checked later)."""
    if attachment.content_type:
        return attachment.content_type.startswith("image/")
    return attachment.filename.lower().endswith(IMAGE_EXTENSIONS)


def from_images_draft(
    prompt: str, attachments: list[discord.Attachment], model: ModelSpec | None, locale: i18n.LocaleLike
) -> Draft:
    """The request "Imagine from images" makes of a message: its first four images as references, the aspect
    ratio (among `model`'s) closest to the first one's shape, one image; the member is told (in `locale`) if
    images were left out."""
    images = [attachment for attachment in attachments if is_image(attachment)]
    if not images:
        raise MessageHasNoImages(anymore=True)
    used = images[:MAX_REFERENCES]
    notice = None
    if len(images) > len(used):
        notice = i18n.translate("notice.first_images", locale, used=len(used), given=len(images))
    aspect = catalog.nearest_aspect(used[0].width or 1, used[0].height or 1, model)
    return Draft(prompt, 1, JobKind.CONTEXT, aspect=aspect, attachments=tuple(used), notice=notice)


def form_id(channel_id: int, message_id: int, user_id: int) -> str:
    """The prompt form's custom id: what a submit after a restart needs to find the message again."""
    return f"{FORM_PREFIX}{channel_id}:{message_id}:{user_id}"


class PromptModal(Gated, discord.ui.Modal):
    """The form that asks for the prompt, in the member's locale."""

    def __init__(
        self, actions: ResultActionsCog, message: discord.Message, user_id: int, locale: discord.Locale
    ) -> None:
        super().__init__(
            title=i18n.translate(MENU_KEY, locale),
            timeout=FORM_LIFETIME - 60,
            custom_id=form_id(message.channel.id, message.id, user_id),
        )
        self.prompt: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(
            label=i18n.translate("form.prompt.label", locale),
            style=discord.TextStyle.paragraph,
            placeholder=i18n.translate("form.prompt.placeholder", locale),
            min_length=1,
            max_length=PROMPT_MAX_LENGTH,
        )
        self.add_item(self.prompt)
        self.actions = actions
        self.message = message
        actions.form_opened(self.custom_id)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self.actions.services.intake.run(
            interaction,
            from_images_draft(
                self.prompt.value,
                self.message.attachments,
                self.actions.default_model(interaction.guild_id),
                interaction.locale,
            ),
        )

    async def on_error(self, interaction: discord.Interaction, error: Exception, /) -> None:  # type: ignore[override]
        await answer_error(interaction, error)


class ResultActionsCog(commands.Cog):
    def __init__(self, bot: commands.Bot | commands.AutoShardedBot, services: Services) -> None:
        self.bot = bot
        self.services = services
        # The context_menu decorator cannot be used in a class: build the command here.
        self.from_images = app_commands.ContextMenu(name=command_text(MENU_KEY), callback=self.imagine_from_images)
        self.from_images.guild_only = True
        self.from_images.on_error = self._context_menu_error
        # The prompt forms this process opened, until they time out: discord.py answers their submits (the
        # listener below must not answer them too, even after the form has been submitted).
        self._open_forms: dict[str, float] = {}

    def default_model(self, guild_id: int | None) -> ModelSpec | None:
        """The model a request of this server uses when it names none (its aspect ratios are the ones to pick)."""
        if guild_id is None:
            return None
        return self.services.intake.admission.models.default_for(self.services.server_settings.get(guild_id))

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.from_images)
        self.bot.add_dynamic_items(*DYNAMIC_ITEMS)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.from_images.name, type=self.from_images.type)
        self.bot.remove_dynamic_items(*DYNAMIC_ITEMS)

    # -- the context menu ------------------------------------------------------------------------------------

    async def imagine_from_images(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Use a message's images as references: a modal asks for the prompt."""
        images = [attachment for attachment in message.attachments if is_image(attachment)]
        try:
            if not images:
                raise MessageHasNoImages()
            assert interaction.guild_id is not None
            assert interaction.channel_id is not None
            self.services.intake.admission.check_place_and_pace(
                interaction.guild_id, interaction.channel_id, interaction.user.id, parent_id=parent_of(interaction)
            )
        except Refusal as refusal:
            await interaction.response.send_message(
                refusal_text(refusal, interaction.locale), ephemeral=True, allowed_mentions=NO_MENTIONS
            )
            return
        await interaction.response.send_modal(PromptModal(self, message, interaction.user.id, interaction.locale))

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
        if not await allowed_here(interaction):
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
                raise MessageGone() from exc
            return from_images_draft(
                prompt, message.attachments, self.default_model(interaction.guild_id), interaction.locale
            )

        await self.services.intake.run(interaction, load)

    async def _context_menu_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await answer_error(interaction, error)


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

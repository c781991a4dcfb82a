""" "Imagine from images": a message context menu that asks for a prompt and uses the message's images.

When the form is shown, what answering it needs is kept (the images' ids, links, names, sizes and types, from
the full copy of the message the context menu receives): the bot may not read another member's message again
(the Message Content rule), and the form may be sent after a restart. Every submit is answered from that record
(cogs/_forms.py), until the images' links expire (about a day); then the member is asked to open it again. The
job goes through the same intake as /imagine. The buttons on results are registered here too (their handlers
are cogs/_result_actions.py).
"""

from __future__ import annotations

import logging
from typing import Final

import discord
from discord import app_commands
from discord.ext import commands

import i18n
from cogs import _forms
from cogs._attachments import ImageAttachment, message_images
from cogs._embeds import NO_MENTIONS
from cogs._errors import answer_error
from cogs._gate import allowed_here
from cogs._intake import Draft, parent_of
from cogs._services import Services, services_of
from cogs._texts import refusal_text
from cogs._translator import command_text
from cogs._views import DYNAMIC_ITEMS
from generation.refusals import FormExpired, MessageHasNoImages, Refusal
from generation.validation import MAX_REFERENCES, PROMPT_MAX_LENGTH
from storage.forms import FormRecord
from storage.jobs import JobKind
from toapis import catalog
from toapis.catalog import ModelSpec

log = logging.getLogger(__name__)

MENU_KEY: Final = "menu.from_images"
FORM_KIND: Final = "from-images"
PROMPT_FIELD: Final = "prompt"


def from_images_draft(prompt: str, record: FormRecord, model: ModelSpec | None, locale: i18n.LocaleLike) -> Draft:
    """The request a sent form makes: the message's first four images as references, the aspect ratio (among
    `model`'s) closest to the first one's shape, one image; the member is told (in `locale`) if images were left
    out."""
    used = tuple(ImageAttachment.from_dict(image) for image in record.payload["images"])
    total = int(record.payload["total"])
    notice = None
    if total > len(used):
        notice = i18n.translate("notice.first_images", locale, used=len(used), given=total)
    aspect = catalog.nearest_aspect(used[0].width or 1, used[0].height or 1, model)
    return Draft(prompt, 1, JobKind.CONTEXT, aspect=aspect, attachments=used, notice=notice)


class PromptModal(discord.ui.Modal):
    """The form: only its look. Its submit is answered from its record (cogs/_forms.py)."""

    def __init__(self, form_id: str, locale: discord.Locale, model: ModelSpec | None = None) -> None:
        super().__init__(title=i18n.translate(MENU_KEY, locale), custom_id=_forms.custom_id(FORM_KIND, form_id))
        self.prompt: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(
            label=i18n.translate("form.prompt.label", locale),
            style=discord.TextStyle.paragraph,
            placeholder=i18n.translate("form.prompt.placeholder", locale),
            min_length=1,
            # The model the job will use (the server's default, from memory): Discord holds the member to its limit
            # as they type. A default changed before the form is sent is checked then.
            max_length=model.prompt_max if model is not None else PROMPT_MAX_LENGTH,
            custom_id=PROMPT_FIELD,
        )
        self.add_item(self.prompt)


class ResultActionsCog(commands.Cog):
    def __init__(self, bot: commands.Bot | commands.AutoShardedBot, services: Services) -> None:
        self.bot = bot
        self.services = services
        # The context_menu decorator cannot be used in a class: build the command here.
        self.from_images = app_commands.ContextMenu(name=command_text(MENU_KEY), callback=self.imagine_from_images)
        self.from_images.guild_only = True
        self.from_images.on_error = self._context_menu_error

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
        # The context menu gets the message in full, whoever wrote it: what the form needs is taken from it now.
        images, forwarded = message_images(message)
        try:
            if not images:
                raise MessageHasNoImages(forwarded=forwarded)
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
        forms = self.services.forms
        form_id = forms.new_id()
        modal = PromptModal(form_id, interaction.locale, self.default_model(interaction.guild_id))
        await _forms.show(interaction, modal)
        used = images[:MAX_REFERENCES]
        try:
            await forms.open(
                form_id,
                kind=FORM_KIND,
                guild_id=interaction.guild_id,
                channel_id=interaction.channel_id,
                user_id=interaction.user.id,
                payload={"message_id": message.id, "images": [image.to_dict() for image in used], "total": len(images)},
                expires_at=min(image.expires_at() for image in used),
            )
        except Exception:
            # The form is shown already; its submit will tell the member to open it again.
            log.exception("Could not keep the form opened on message %s", message.id)

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """A sent "Imagine from images" form, answered from its record, whenever it comes."""
        form = _forms.submitted(interaction)
        if form is None or form[0] != FORM_KIND or not await allowed_here(interaction):
            return
        prompt = _forms.values(interaction).get(PROMPT_FIELD, "")

        async def load() -> Draft:
            record = await self.services.forms.find(form[1])
            # A form is the member's own, in the channel it was opened in.
            if record is None or (record.guild_id, record.channel_id, record.user_id) != (
                interaction.guild_id,
                interaction.channel_id,
                interaction.user.id,
            ):
                raise FormExpired()
            return from_images_draft(str(prompt), record, self.default_model(interaction.guild_id), interaction.locale)

        # The prompt is checked for blocked words before the first response; the images, once the record is read.
        typed = Draft(str(prompt), 1, JobKind.CONTEXT)
        await self.services.intake.run(interaction, load, prompt=str(prompt), typed=typed)

    async def _context_menu_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await answer_error(interaction, error)


async def setup(bot: commands.Bot | commands.AutoShardedBot) -> None:
    await bot.add_cog(ResultActionsCog(bot, services_of(bot)))

"""/imagine: generate images from a prompt and up to four reference images.

The command only translates its options into a `Draft`; every way in shares the intake (cogs/_intake.py),
which checks, answers first, reads the references and hands the job to the pipeline.
"""

from __future__ import annotations

from typing import Final

import discord
from discord import app_commands
from discord.ext import commands

from cogs._attachments import ImageAttachment
from cogs._errors import answer_error
from cogs._intake import Draft
from cogs._services import Services, services_of
from cogs._translator import command_text
from generation.validation import MAX_N, PROMPT_MAX_LENGTH
from storage.jobs import JobKind
from toapis import catalog

ASPECT_CHOICES: Final = [
    app_commands.Choice(name=command_text(f"aspect.{aspect}"), value=aspect) for aspect in catalog.ASPECTS
]
# The tiers members choose among; a model that offers others (0.5K, 3K) is used at its default or these.
RESOLUTION_CHOICES: Final = [
    app_commands.Choice(name=command_text(f"resolution.{tier}"), value=tier) for tier in ("1k", "2k", "4k")
]
# Discord shows at most 25 suggestions.
MAX_SUGGESTIONS: Final = 25


class ImagineCog(commands.Cog):
    def __init__(self, bot: commands.Bot | commands.AutoShardedBot, services: Services) -> None:
        self.bot = bot
        self.services = services

    @app_commands.command(name="imagine", description=command_text("command.imagine"))
    @app_commands.guild_only()
    @app_commands.describe(
        **{
            option: command_text(f"option.imagine.{option}")
            for option in ("prompt", "aspect", "resolution", "n", "model", "image", "image2", "image3", "image4")
        }
    )
    @app_commands.choices(aspect=ASPECT_CHOICES, resolution=RESOLUTION_CHOICES)
    async def imagine(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, PROMPT_MAX_LENGTH],
        aspect: str | None = None,
        resolution: str | None = None,
        n: app_commands.Range[int, 1, MAX_N] = 1,
        model: str | None = None,
        image: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
    ) -> None:
        """Generate images from a prompt, optionally guided by up to four reference images."""
        attachments = tuple(ImageAttachment.of(a) for a in (image, image2, image3, image4) if a is not None)
        draft = Draft(
            prompt,
            n,
            JobKind.IMAGINE,
            model=model,
            aspect=aspect,
            resolution=resolution,
            attachments=attachments,
        )
        await self.services.intake.run(interaction, draft)

    @imagine.autocomplete("model")
    async def model_suggestions(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """The models this server offers whose name or id contains what was typed. From memory: no I/O."""
        if interaction.guild_id is None:
            return []
        services = self.services
        menu = services.intake.admission.models
        server = services.server_settings.get(interaction.guild_id)
        default = menu.default_for(server)
        typed = current.strip().lower()
        suggestions = [
            app_commands.Choice(
                name=command_text("choice.model.default", model=spec.name) if spec is default else spec.name,
                value=spec.id,
            )
            for spec in menu.offered(server)
            if typed in spec.name.lower() or typed in spec.id.lower()
        ]
        return suggestions[:MAX_SUGGESTIONS]

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await answer_error(interaction, error)


async def setup(bot: commands.Bot | commands.AutoShardedBot) -> None:
    await bot.add_cog(ImagineCog(bot, services_of(bot)))

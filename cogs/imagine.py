"""/imagine: generate images from a prompt and up to four reference images.

The command only translates its options into a `Draft`; every way in shares the intake (cogs/_intake.py),
which checks, answers first, reads the references and hands the job to the pipeline.
"""

from __future__ import annotations

from typing import Final

import discord
from discord import app_commands
from discord.ext import commands

from cogs._errors import answer_error
from cogs._intake import Draft
from cogs._services import Services, services_of
from generation.validation import DEFAULT_SIZE, MAX_N, PROMPT_MAX_LENGTH, SIZES
from storage.jobs import JobKind

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
        await self.services.intake.run(interaction, Draft(prompt, size, n, JobKind.IMAGINE, attachments=attachments))

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await answer_error(interaction, error)


async def setup(bot: commands.Bot | commands.AutoShardedBot) -> None:
    await bot.add_cog(ImagineCog(bot, services_of(bot)))

"""Imagine in the conversation: a message that mentions the bot asks for images (docs/members.md).

The cog only listens: `on_message` hands each message to the message intake (cogs/_message_intake.py), which
decides whether it is addressed to the bot and answers it. Edits (MESSAGE_UPDATE) are not listened to, so an
edited message never starts a job. At start-up it answers the requests a crash left unanswered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

import discord
from discord.ext import commands

from cogs._message_intake import MessageIntake, addressed_to
from cogs._services import Services, services_of

log = logging.getLogger(__name__)

# With several processes, how often to look for the message requests a process that crashed since left unanswered.
OWED_SWEEP_SECONDS: Final = 60.0


class ChatCog(commands.Cog):
    def __init__(self, bot: commands.Bot | commands.AutoShardedBot, services: Services) -> None:
        self.bot = bot
        self.intake: MessageIntake = services.chat
        self._owed: asyncio.Task[None] | None = None

    async def cog_load(self) -> None:
        # In the background: the start-up goes on while Discord is told (REST works before the gateway is up).
        self._owed = asyncio.create_task(self._answer_owed(), name="chat-answer-owed")

    async def cog_unload(self) -> None:
        if self._owed is not None:
            self._owed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._owed

    async def _answer_owed(self) -> None:
        try:
            await self.intake.answer_owed()
        except Exception:
            log.exception("Could not answer the message requests a restart interrupted")
        await self.intake.keep_answering(OWED_SWEEP_SECONDS)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        # The cheap test first: most messages a server sends are not for the bot (and arrive without content).
        if addressed_to(message, self.bot.user):
            await self.intake.handle(message)


async def setup(bot: commands.Bot | commands.AutoShardedBot) -> None:
    await bot.add_cog(ChatCog(bot, services_of(bot)))

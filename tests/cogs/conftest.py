"""The real bot, in this process, against the loopback fakes of Discord and ToAPIs.

`make_world(**env)` starts both fakes, a server with a channel and a member, and the bot assembled exactly as
`python bot.py` does (bot.assemble) with the given environment on top of fast test defaults; it waits until the
bot is connected. Tests act as members through the fake and assert on what it recorded. `world.restart()` stops
the bot as SIGTERM would and starts a new one on the same database and fakes (`force_sync=True` is `--sync`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord
import pytest
from PIL import Image

import bot as bot_module
from bot import ImagineBot
from generation.pipeline import Pipeline
from settings import Settings, load_settings
from storage.jobs import Job, JobState
from storage.store import Storage
from tests.fakes.discord import FakeChannel, FakeDiscord, FakeGuild, FakeMember, InteractionRecord, Upload
from tests.fakes.toapis import FakeToAPIs

FAST_ENV = {
    "TOAPIS_POLL_INTERVAL": "0.01",
    "TOAPIS_LOOKUPS_PER_MINUTE": "600000",
    "TOAPIS_SUBMITS_PER_MINUTE": "600000",
    "PROGRESS_EDIT_INTERVAL": "0.02",
    "GENERATION_TIMEOUT": "30",
    "LOG_LEVEL": "INFO",
    # The operator's overall cap shows in /usage; tests that are about it set it themselves.
    "GLOBAL_DAILY_LIMIT": "none",
}


def png_upload(name: str = "ref.png", size: tuple[int, int] = (64, 48), colour: str = "teal") -> Upload:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return Upload(buffer.getvalue(), name, "image/png")


@dataclass(frozen=True)
class LedgerRow:
    """A job's reservation: `images` it holds now, of the `reserved_images` it reserved (refunds lower it)."""

    job_id: str
    images: int
    reserved_images: int


@dataclass
class World:
    discord: FakeDiscord
    api: FakeToAPIs
    guild: FakeGuild
    channel: FakeChannel
    member: FakeMember
    bot: ImagineBot
    others: dict[str, Any] = field(default_factory=dict)
    settings: Settings | None = None
    _bot_stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack, repr=False)

    @property
    def store(self) -> Storage:
        return self.bot.store

    @property
    def pipeline(self) -> Pipeline:
        return self.bot.services.pipeline

    async def imagine(
        self, prompt: str, *, user: FakeMember | None = None, channel: FakeChannel | None = None, **options: Any
    ) -> InteractionRecord:
        return await self.discord.invoke_slash(
            "imagine", {"prompt": prompt, **options}, user=user or self.member, channel=channel or self.channel
        )

    async def interactions_handled(self) -> None:
        """Until the bot has finished handling every interaction it has received: what it does after its answer
        (a usage row, say) may come after the answer the fake saw."""
        while busy := [task for task in asyncio.all_tasks() if _handles_an_interaction(task)]:
            await asyncio.gather(*busy, return_exceptions=True)

    async def jobs(self) -> list[Job]:
        rows = await self.store.db.fetch_all("SELECT id FROM jobs ORDER BY created_at")
        found = [await self.store.jobs.get(row["id"]) for row in rows]
        return [job for job in found if job is not None]

    async def ledger(self) -> list[LedgerRow]:
        """Every row of the quota ledger (one per job that reserved images), oldest first."""
        rows = await self.store.db.fetch_all(
            "SELECT job_id, images, reserved_images FROM quota_ledger ORDER BY reserved_at, job_id"
        )
        return [LedgerRow(row["job_id"], row["images"], row["reserved_images"]) for row in rows]

    async def finished_job(self, timeout: float = 15.0) -> Job:
        """The one job of the test, once it is completed or failed."""

        async def done() -> Job | None:
            jobs = await self.jobs()
            return jobs[0] if jobs and jobs[0].is_finished else None

        job: Job = await wait_until(done, timeout)
        return job

    async def restart(self, *, force_sync: bool = False, while_stopped: Callable[[], None] | None = None) -> None:
        """Stop the bot as SIGTERM does (unfinished jobs stay stored) and start a new one on the same database and
        fakes, as a second `python bot.py` would; `force_sync` is `--sync`; `while_stopped` changes the world
        while no bot is connected (a server added then arrives at the next start, not as a join)."""
        assert self.settings is not None
        await self._bot_stack.aclose()
        if while_stopped is not None:
            while_stopped()
        self._bot_stack = contextlib.AsyncExitStack()
        self.bot = await start_bot(self._bot_stack, self.discord, self.settings, force_sync=force_sync)


def _handles_an_interaction(task: asyncio.Task[Any]) -> bool:
    """A task discord.py runs for one interaction: a command's, a button's or a form's, or a listener's (forms
    answered from their record)."""
    name = task.get_name()
    return not task.done() and (name in _HANDLING or name.startswith(_DISPATCHING))


_HANDLING = ("CommandTree-invoker", "discord.py: on_interaction")
_DISPATCHING = ("discord-ui-view-dispatch-", "discord-ui-dynamic-item-", "discord-ui-modal-dispatch-")


def delivered(call: InteractionRecord) -> bool:
    """Whether the interaction's reply shows images (the job's result)."""
    return call.original is not None and not call.original.deleted and bool(call.original.attachments)


async def running_job(world: World) -> Job:
    """The test's one job, once its task exists upstream."""

    async def running() -> Job | None:
        jobs = await world.jobs()
        return jobs[0] if jobs and jobs[0].state is JobState.RUNNING else None

    job: Job = await wait_until(running)
    return job


async def wait_until(check: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
    """Re-check an async condition until it is truthy; for state outside the fakes (the database)."""
    async with asyncio.timeout(timeout):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.01)


async def start_bot(
    stack: contextlib.AsyncExitStack, fake: FakeDiscord, settings: Settings, *, force_sync: bool = False
) -> ImagineBot:
    """Assemble and start the bot as `python bot.py` does; closing `stack` stops it and closes what it opened."""
    bot = await stack.enter_async_context(bot_module.assemble(settings, force_sync=force_sync))
    await stack.enter_async_context(bot)
    # discord.py holds "ready" back until no GUILD_CREATE has come for this long (2 s by default, for Discord's
    # streaming of large bots' servers); the fake sends them all at once, so tests that wait for it wait less.
    bot._connection.guild_ready_timeout = 0.05
    sessions = len(fake.gateway_sessions)
    runner = asyncio.create_task(bot.start(settings.discord_token.reveal()))

    async def stop() -> None:
        await bot.close()
        await runner

    stack.push_async_callback(stop)
    # Not wait_until_ready: discord.py holds "ready" back 2 s after the last GUILD_CREATE. The setup hook
    # (command sync, pipeline start) has run before the gateway is reached, and the gateway delivers READY and
    # GUILD_CREATE before any interaction a test sends later.
    connected = asyncio.create_task(fake.wait_for_session(15, after=sessions))
    await asyncio.wait({runner, connected}, return_when=asyncio.FIRST_COMPLETED)
    if not connected.done():
        # The bot stopped before it connected: its own error says why (stop() re-raises it).
        connected.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await connected
        raise RuntimeError("the bot stopped before it connected to the fake gateway")
    connected.result()
    return bot


@contextlib.asynccontextmanager
async def running_world(
    tmp_path: Path, env: dict[str, str], *, guild_id: int | None = None, **fake_options: Any
) -> AsyncIterator[World]:
    saved_base, saved_gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    async with FakeToAPIs() as api, FakeDiscord(**fake_options) as fake:
        guild = fake.add_guild("Test server", guild_id=guild_id)
        channel = guild.add_text_channel("general")
        member = guild.add_member("alice")
        settings = load_settings(
            fake.bot_env()
            | {
                "TOAPIS_API_KEY": api.api_key,
                "TOAPIS_BASE_URL": api.base_url,
                "DATABASE_URL": f"sqlite:///{tmp_path / 'imagine.db'}",
            }
            | FAST_ENV
            | env
        )
        bot_module.point_discord_at(settings)
        stack = contextlib.AsyncExitStack()
        try:
            async with stack:
                bot = await start_bot(stack, fake, settings)
                world = World(fake, api, guild, channel, member, bot, settings=settings, _bot_stack=stack)
                try:
                    yield world
                finally:
                    # The world's bot may have been restarted: stop the one running now.
                    await world._bot_stack.aclose()
        finally:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved_base, saved_gateway


WorldFactory = Callable[..., contextlib.AbstractAsyncContextManager[World]]


@pytest.fixture
def make_world(tmp_path: Path) -> WorldFactory:
    """`async with make_world(ENV_VAR="value", fake_discord={...}) as world:`: a world with that environment;
    `guild_id` fixes the test server's id (to name it in ALLOWED_GUILD_IDS, say)."""

    def factory(
        fake_discord: dict[str, Any] | None = None, guild_id: int | None = None, **env: str
    ) -> contextlib.AbstractAsyncContextManager[World]:
        return running_world(tmp_path, env, guild_id=guild_id, **(fake_discord or {}))

    return factory


@pytest.fixture
async def world(make_world: WorldFactory) -> AsyncIterator[World]:
    async with make_world() as started:
        yield started

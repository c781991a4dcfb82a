"""Imagine's composition root: `python bot.py [--sync]`.

Reads the settings, sets up logging, opens the database and one aiohttp session for ToAPIs (discord.py keeps
its own for Discord), builds the pipeline and the bot, loads the cogs, and runs until SIGTERM or SIGINT. On
either signal it stops taking jobs and exits cleanly; unfinished jobs stay stored and resume at the next start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Final

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.ext import commands

from cogs._alerts import AlertPoster
from cogs._errors import answer_error
from cogs._gate import GatedTree
from cogs._intake import Intake
from cogs._mod_log import ModerationLog
from cogs._reporter import DiscordReporter
from cogs._result_actions import ResultActions
from cogs._services import Services
from cogs._spoilers import spoiler_rule
from cogs._views import queued_view, result_view
from generation.admission import Admission
from generation.alerts import AlertThrottle
from generation.cooldowns import Cooldowns
from generation.events import Reporter
from generation.history import JobHistory
from generation.housekeeping import keep_tidy
from generation.models import ModelMenu
from generation.pipeline import Pipeline, PipelineConfig
from generation.quota_service import QuotaService
from generation.server_settings import ServerSettings
from settings import ConfigError, Settings, load_settings
from storage.errors import StorageError
from storage.jobs import Job
from storage.quotas import OperatorDefaults
from storage.store import Storage
from toapis import ToAPIsClient

log = logging.getLogger("imagine")

EXTENSIONS: Final = (
    "cogs.imagine",
    "cogs.actions",
    "cogs.usage",
    "cogs.quota",
    "cogs.imagine_settings",
    "cogs.servers",
)

# Seconds a stopping bot waits for the moderation log's writes and posts still under way.
MOD_LOG_DRAIN: Final = 5.0

# Every request to ToAPIs runs under the client's own timeout; this is the session's outer bound.
TOAPIS_SESSION_TIMEOUT: Final = aiohttp.ClientTimeout(total=300, connect=30)


class ImagineBot(commands.AutoShardedBot):
    """The Discord side of Imagine. `services` is attached by `run` before the bot starts.

    It runs the shards `SHARD_IDS` of `SHARD_COUNT` (all of them by default; one shard unless SHARD_COUNT says
    otherwise). Given its shard count, discord.py connects to DEFAULT_GATEWAY, which DISCORD_GATEWAY_URL sets.
    """

    services: Services
    store: Storage

    def __init__(self, settings: Settings, *, force_sync: bool = False, shared_database: bool = False) -> None:
        intents = discord.Intents.none()
        intents.guilds = True  # guilds and channels in the cache: upload limits, permissions, alert channels
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            tree_cls=GatedTree,
            **shard_options(settings),
        )
        self.settings = settings
        self.force_sync = force_sync
        self.shared_database = shared_database
        self._background: list[asyncio.Task[None]] = []

    async def setup_hook(self) -> None:
        self.tree.error(self._on_tree_error)
        await self.services.server_settings.load()
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.sync_commands()
        await self.services.pipeline.start()
        self._background = [
            asyncio.create_task(keep_tidy(self.store, retention_days=self.settings.retention_days), name="housekeeping")
        ]
        if self.shared_database:
            # Other processes share the database: their /imagine-settings changes must reach this one.
            interval = self.settings.toapis_poll_interval * 6
            self._background.append(
                asyncio.create_task(self.services.server_settings.refresh_every(interval), name="settings-refresh")
            )

    async def close(self) -> None:
        for task in self._background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(AttributeError):
            await self.services.pipeline.close()
        with contextlib.suppress(AttributeError, TimeoutError):
            # A refused prompt's usage row and log entry are written after its answer: let them land.
            async with asyncio.timeout(MOD_LOG_DRAIN):
                await self.services.mod_log.wait_idle()
        await super().close()

    # -- commands --------------------------------------------------------------------------------------------

    def command_tree_hash(self) -> str:
        """A digest of the global commands as Discord would receive them."""
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands()]
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    async def sync_commands(self) -> None:
        """Sync the global commands when they changed since the last sync recorded for this application."""
        assert self.application_id is not None
        shards = self.settings.shard_ids
        if shards is not None and 0 not in shards and not self.force_sync:
            log.info("Commands are synced by the process that runs shard 0")
            return
        digest = self.command_tree_hash()
        repository = self.store.guild_settings
        if not self.force_sync and await repository.synced_tree_hash(self.application_id) == digest:
            log.info("Commands unchanged since the last sync; not syncing")
            return
        synced = await self.tree.sync()
        await repository.record_sync(self.application_id, digest)
        log.info("Synced %d global command(s)", len(synced))

    async def _on_tree_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await answer_error(interaction, error)

    # -- services' Discord side ------------------------------------------------------------------------------

    def build_reporter(self, job: Job) -> Reporter:
        """The reporter of a job, new or resumed: everything it needs is stored with the job."""
        return DiscordReporter(
            self,
            job,
            edit_interval=self.settings.progress_edit_interval,
            result_view=result_view,
            queued_view=queued_view,
            spoiler=spoiler_rule(self, self.services.server_settings),
            on_failed=self.services.mod_log.job_failed,
        )


def configure_logging(level: str) -> None:
    """One line per record on stdout. Libraries that would log secrets at DEBUG stay at INFO at most."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-8s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # At DEBUG these libraries log requests and statements with their parameters: tokens among them.
    for noisy in ("discord", "aiosqlite", "asyncpg"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.INFO))


def point_discord_at(settings: Settings) -> None:
    """Honour DISCORD_API_BASE_URL and DISCORD_GATEWAY_URL (a REST proxy, a Discord-compatible server, tests)."""
    if settings.discord_api_base_url:
        discord.http.Route.BASE = settings.discord_api_base_url
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


def shard_options(settings: Settings) -> dict[str, Any]:
    """How the bot shards: SHARD_COUNT (and SHARD_IDS) when set. Otherwise Discord's own gateway is asked how
    many shards the bot needs (all run here), unless DISCORD_GATEWAY_URL points elsewhere: discord.py would
    then connect to the URL Discord names instead, so one shard goes to the URL given."""
    if settings.shard_count is not None:
        return {
            "shard_count": settings.shard_count,
            "shard_ids": list(settings.shard_ids or range(settings.shard_count)),
        }
    if settings.discord_gateway_url is not None:
        return {"shard_count": 1, "shard_ids": [0]}
    return {}


def shard_filter(settings: Settings) -> Callable[[int], bool]:
    """Whether a server belongs to this process's shards (Discord's rule: (id >> 22) % shard_count)."""
    count, mine = settings.shard_count, settings.shard_ids
    if count is None or mine is None:
        return lambda guild_id: True
    shards = frozenset(mine)
    return lambda guild_id: (guild_id >> 22) % count in shards


def pipeline_config(settings: Settings, *, shared_database: bool) -> PipelineConfig:
    """The pipeline's settings. `shared_database`: several processes may use the database (PostgreSQL)."""
    # Results are spooled next to an SQLite database, so a restart finds them. With PostgreSQL there is no such
    # folder (and the container's working directory is not writable): the system's temporary folder, since a
    # result missing after a restart is downloaded again from its URL (valid for a day).
    if shared_database:
        spool = Path(tempfile.gettempdir()) / "imagine-spool"
    else:
        spool = Path(settings.database_url.removeprefix("sqlite:///")).parent / "spool"
    return PipelineConfig(
        model=settings.toapis_model,
        poll_interval=settings.toapis_poll_interval,
        generation_timeout=settings.generation_timeout,
        max_concurrent_jobs=settings.max_concurrent_jobs,
        spool_dir=spool,
        # Only PostgreSQL is shared by several processes; an SQLite file has one, which may take every job.
        lease_ttl=max(settings.toapis_poll_interval * 12, 1.0) if shared_database else None,
        owns_guild=shard_filter(settings),
        # Waits that have no variable of their own scale with the poll interval (defaults: 5 s and 30 s).
        retry_delay=settings.toapis_poll_interval,
        probe_interval=settings.toapis_poll_interval * 6,
    )


@contextlib.asynccontextmanager
async def assemble(settings: Settings, *, force_sync: bool = False) -> AsyncIterator[ImagineBot]:
    """Build the bot and everything it uses; close what it opened on the way out."""
    defaults = OperatorDefaults(
        member_daily=settings.default_member_daily_limit,
        server_daily=settings.default_server_daily_limit,
        global_daily=settings.global_daily_limit,
        server_daily_cap=settings.server_daily_cap,
        member_daily_cap=settings.member_daily_cap,
    )
    shared_database = settings.shared_database
    store = await Storage.open(settings.database_url, defaults=defaults)
    session = aiohttp.ClientSession(timeout=TOAPIS_SESSION_TIMEOUT)
    try:
        client = ToAPIsClient(
            session,
            api_key=settings.toapis_api_key.reveal(),
            base_url=settings.toapis_base_url,
            model=settings.toapis_model,
        )
        bot = ImagineBot(settings, force_sync=force_sync, shared_database=shared_database)
        bot.store = store
        server_settings = ServerSettings(store.guild_settings)
        alerts = AlertThrottle(
            AlertPoster(
                bot,
                server_settings=server_settings,
                guild_allowed=settings.guild_allowed,
                owns_guild=shard_filter(settings),
                operator_webhook_url=settings.operator_alert_webhook_url,
            )
        )
        pipeline = Pipeline(
            config=pipeline_config(settings, shared_database=shared_database),
            client=client,
            store=store,
            reporters=bot.build_reporter,
            alerts=alerts,
        )
        admission = Admission(
            guild_allowed=settings.guild_allowed,
            server_settings=server_settings,
            cooldowns=Cooldowns(),
            pipeline=pipeline,
            models=ModelMenu(settings.toapis_models, settings.toapis_model, settings.model_weights),
        )
        history = JobHistory(store, retention_days=settings.retention_days)
        quotas = QuotaService(store)
        mod_log = ModerationLog(bot, server_settings=server_settings, quotas=quotas)
        intake = Intake(admission=admission, pipeline=pipeline, quotas=quotas, history=history, moderation=mod_log)
        bot.services = Services(
            settings=settings,
            pipeline=pipeline,
            server_settings=server_settings,
            quotas=quotas,
            history=history,
            alerts=alerts,
            mod_log=mod_log,
            intake=intake,
            actions=ResultActions(intake=intake, history=history, pipeline=pipeline),
        )
        yield bot
    finally:
        await session.close()
        await store.close()


def warn_if_the_bill_is_unbounded(settings: Settings) -> None:
    """One line at start-up when nothing bounds what the operator pays: any server may use the bot, uncapped."""
    if not settings.allowed_guild_ids and settings.global_daily_limit is None:
        log.warning(
            "The bot works in every server that adds it (ALLOWED_GUILD_IDS is empty) and GLOBAL_DAILY_LIMIT is "
            "none: nothing bounds the ToAPIs bill. Set ALLOWED_GUILD_IDS to your servers' ids, or "
            "GLOBAL_DAILY_LIMIT to the images a day you will pay for."
        )


async def run(settings: Settings, *, force_sync: bool) -> None:
    warn_if_the_bill_is_unbounded(settings)
    async with assemble(settings, force_sync=force_sync) as bot:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, _request_shutdown, bot, signum)
        async with bot:
            await bot.start(settings.discord_token.reveal())
    log.info("Imagine stopped")


def _request_shutdown(bot: ImagineBot, signum: int) -> None:
    log.info("Received %s: no new jobs; stopping", signal.Signals(signum).name)
    asyncio.get_running_loop().create_task(bot.close())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bot.py", description="Run the Imagine Discord bot.")
    parser.add_argument("--sync", action="store_true", help="sync the slash commands even if they did not change")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    point_discord_at(settings)
    try:
        asyncio.run(run(settings, force_sync=args.sync))
    except StorageError as exc:
        log.error("Database problem: %s", exc)
        return 1
    except discord.LoginFailure:
        log.error("Discord rejected DISCORD_TOKEN: check the bot token in the Developer Portal (Bot tab)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

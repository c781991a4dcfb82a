"""Imagine's composition root: `python bot.py [--sync | --check | --health]`.

Reads the settings, sets up logging, opens the database and one aiohttp session for ToAPIs (discord.py keeps
its own for Discord), builds the pipeline and the bot, loads the cogs, and runs until SIGTERM or SIGINT. On
either signal it stops taking jobs and exits cleanly; unfinished jobs stay stored and resume at the next start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import signal
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.ext import commands

import i18n
from cogs._alerts import AlertPoster
from cogs._check import check_discord
from cogs._errors import answer_error
from cogs._gate import GatedTree
from cogs._intake import INTAKE_DRAIN, Intake
from cogs._message_intake import MessageIntake
from cogs._mod_log import ModerationLog
from cogs._owed import OwedAnswerer
from cogs._pagination import answer_expired_listing
from cogs._presence import invite_url, ready_line
from cogs._reporter import DiscordReporter
from cogs._result_actions import ResultActions
from cogs._services import Services
from cogs._spoilers import spoiler_rule
from cogs._translator import CatalogTranslator
from cogs._views import queued_view, result_view
from generation.admission import Admission
from generation.alerts import AlertThrottle
from generation.balance_watch import BalanceWatch
from generation.callbacks import NOT_CONFIGURED, WebhookCallbacks
from generation.checks import CheckLine, Mark, check_database, check_toapis, check_webhooks, fail, note, ok
from generation.cooldowns import Cooldowns
from generation.events import Reporter
from generation.forms import FormBook
from generation.history import JobHistory
from generation.housekeeping import keep_tidy
from generation.liveness import Heartbeat, Liveness, read_heartbeat
from generation.local_server import LocalServer
from generation.logs import JsonFormatter, LogContextFilter, TokenlessFormatter
from generation.message_requests import MessageRequestBook
from generation.metrics import Metrics
from generation.models import ModelMenu
from generation.operator_status import OperatorStatus
from generation.owed_answers import OwedAnswers
from generation.pipeline import Pipeline, PipelineConfig
from generation.quota_service import QuotaService
from generation.server_settings import ServerSettings
from generation.start_probe import probe_at_start
from generation.status_server import StatusServer
from generation.webhook_receiver import WebhookReceiver
from generation.webhook_relay import WakeupRelay
from settings import ConfigError, Settings, load_settings
from storage.errors import StorageError
from storage.jobs import Job
from storage.quotas import OperatorDefaults
from storage.schema_status import SchemaStatus
from storage.sqlite import sqlite_path_from_url
from storage.store import Storage
from toapis import RetryPolicy, ToAPIsClient

log = logging.getLogger("imagine")

EXTENSIONS: Final = (
    "cogs.imagine",
    "cogs.chat",
    "cogs.actions",
    "cogs.remix",
    "cogs.usage",
    "cogs.history",
    "cogs.help",
    "cogs.quota",
    "cogs.imagine_settings",
    "cogs.servers",
    "cogs.admin",
)

# With several processes on one database, a claim younger than this may be another process's request in progress.
CHAT_OWED_GRACE: Final = timedelta(minutes=5)

# Seconds a stopping bot waits for the moderation log's writes and posts still under way.
MOD_LOG_DRAIN: Final = 5.0
# Seconds a clean stop may take before the gateway closes: Docker sends SIGKILL 10 s after SIGTERM (`docker
# stop`), and closing the gateway and the sessions takes the rest. The intake's drain (at most 6 s, then 3 s of
# answers) comes first; the moderation log's last writes get what is left.
STOP_BUDGET: Final = 9.0

# Every request to ToAPIs runs under the client's own timeout; this is the session's outer bound.
TOAPIS_SESSION_TIMEOUT: Final = aiohttp.ClientTimeout(total=300, connect=30)


class StartupError(Exception):
    """Imagine cannot start for a reason one line explains (Discord unreachable, the metrics port taken)."""


@dataclass(frozen=True)
class Operations:
    """What keeps the operator informed: metrics, the balance watch, the health verdict and its heartbeat."""

    metrics: Metrics
    balance: BalanceWatch
    liveness: Liveness
    heartbeat: Heartbeat
    start_probe: Callable[[], Coroutine[Any, Any, None]]
    webhooks: WebhookReceiver | None = None
    """With webhooks on: the endpoint ToAPIs calls (started by `run`, before the bot)."""
    wakeup_relay: WakeupRelay | None = None
    """With webhooks on: the wake-ups webhooks left in the database for this process."""


class ImagineBot(commands.AutoShardedBot):
    """The Discord side of Imagine. `services` is attached by `run` before the bot starts.

    It runs the shards `SHARD_IDS` of `SHARD_COUNT` (all of them by default; one shard unless SHARD_COUNT says
    otherwise). Given its shard count, discord.py connects to DEFAULT_GATEWAY, which DISCORD_GATEWAY_URL sets.
    """

    services: Services
    store: Storage
    operations: Operations

    def __init__(
        self,
        settings: Settings,
        *,
        force_sync: bool = False,
        shared_database: bool = False,
        http_trace: aiohttp.TraceConfig | None = None,
    ) -> None:
        intents = discord.Intents.none()
        intents.guilds = True  # guilds and channels in the cache: upload limits, permissions, alert channels
        # Messages that mention the bot (the conversation, cogs/chat.py): not privileged. Without Message Content
        # (privileged, and not asked for), Discord sends other messages without their text or files.
        intents.guild_messages = True
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            max_messages=None,  # nothing reads the message cache; a busy server would only fill it
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            tree_cls=GatedTree,
            **shard_options(settings),
        )
        if http_trace is not None:
            # discord.py hands its own session this trace config at login (the metrics count Discord's 429s).
            self.http.http_trace = http_trace
        self.settings = settings
        self.force_sync = force_sync
        self.shared_database = shared_database
        self._background: list[asyncio.Task[None]] = []

    async def setup_hook(self) -> None:
        if self.settings.operator_guild_id is not None and self.application is not None:
            self.services.operators.resolve(self.application)
        # Texts name the bot by its own name.
        i18n.configure(bot_name=self.user.display_name if self.user else None, pseudo_alias=self.settings.pseudo_locale)
        await self.services.server_settings.load()
        await self.load_extensions()
        await self.sync_commands()
        # Before any new work: the members whose requests a stopped process acknowledged and never took.
        answer_owed = OwedAnswerer(self)
        await self.services.owed_answers.answer_left_over(answer_owed, at_start=True)
        await self.services.pipeline.start()
        operations = self.operations
        self._background = [
            asyncio.create_task(
                keep_tidy(self.store, retention_days=self.settings.retention_days), name="housekeeping"
            ),
            asyncio.create_task(operations.start_probe(), name="toapis-start-probe"),
            asyncio.create_task(operations.balance.run(), name="balance-watch"),
            asyncio.create_task(operations.heartbeat.run(), name="heartbeat"),
            asyncio.create_task(self.services.owed_answers.keep(answer_owed), name="owed-answers"),
        ]
        if operations.wakeup_relay is not None:
            self._background.append(asyncio.create_task(operations.wakeup_relay.run(), name="webhook-wakeups"))
        if self.shared_database:
            # Other processes share the database: their /imagine-settings changes must reach this one.
            interval = self.settings.toapis_poll_interval * 6
            self._background.append(
                asyncio.create_task(self.services.server_settings.refresh_every(interval), name="settings-refresh")
            )

    async def load_extensions(self) -> None:
        """The cogs, and with them the command tree (also what --check compares with the last sync)."""
        self.tree.error(self._on_tree_error)
        # The translator puts command texts in every supported locale (and so into the hash --check compares).
        i18n.configure(pseudo_alias=self.settings.pseudo_locale)
        await self.tree.set_translator(CatalogTranslator())
        self.add_listener(answer_expired_listing, "on_interaction")
        for extension in EXTENSIONS:
            await self.load_extension(extension)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_BUDGET
        with contextlib.suppress(AttributeError):
            # Every request acknowledged so far is admitted or answered before the pipeline stops.
            await self.services.intake.close()
        for task in self._background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(AttributeError):
            await self.services.pipeline.close()
        if self._background:
            await self.operations.heartbeat.stopped()
        with contextlib.suppress(AttributeError, TimeoutError):
            # A refused prompt's usage row and log entry are written after its answer: let them land.
            async with asyncio.timeout(max(0.0, min(MOD_LOG_DRAIN, deadline - loop.time()))):
                await self.services.mod_log.wait_idle()
        await super().close()

    # -- the gateway, as the operator sees it ----------------------------------------------------------------

    def gateway_connected(self) -> bool:
        """Every shard of this process has a live gateway connection."""
        shards = self.shards
        expected = len(self.shard_ids) if self.shard_ids else (self.shard_count or 1)
        return not self.is_closed() and len(shards) >= expected and not any(s.is_closed() for s in shards.values())

    async def on_ready(self) -> None:
        log.info("%s", ready_line(self))
        self.operations.heartbeat.wake()

    async def on_shard_connect(self, shard_id: int) -> None:
        # The shard count is known now (Discord may have chosen it): JSON log lines can name each server's shard.
        for handler in logging.getLogger().handlers:
            if isinstance(handler.formatter, JsonFormatter):
                handler.formatter.shard_count = self.shard_count
        self.operations.heartbeat.wake()

    async def on_shard_disconnect(self, shard_id: int) -> None:
        self.operations.heartbeat.wake()

    async def on_shard_resumed(self, shard_id: int) -> None:
        self.operations.heartbeat.wake()

    # -- commands --------------------------------------------------------------------------------------------

    def command_scopes(self) -> list[int | None]:
        """Where commands are synced: globally (None), and the operator's server when there is one."""
        operator = self.settings.operator_guild_id
        return [None] if operator is None else [None, operator]

    async def command_tree_hash(self, guild_id: int | None = None) -> str:
        """A digest of the commands of one scope as Discord would receive them: translated, so that a changed
        translation is synced too."""
        tree, translator = self.tree, self.tree.translator
        guild = None if guild_id is None else discord.Object(guild_id)
        payload = [
            await command.get_translated_payload(tree, translator) if translator else command.to_dict(tree)
            for command in tree.get_commands(guild=guild)
        ]
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    async def commands_to_sync(self, application_id: int) -> tuple[list[int | None], list[int]]:
        """The scopes whose commands changed since their last recorded sync, and the servers that still have
        commands of an earlier OPERATOR_GUILD_ID (to be removed)."""
        repository = self.store.guild_settings
        changed = [
            scope
            for scope in self.command_scopes()
            if await repository.synced_tree_hash(application_id, scope) != await self.command_tree_hash(scope)
        ]
        stale = [
            guild_id
            for guild_id in await repository.synced_guilds(application_id)
            if guild_id != self.settings.operator_guild_id
        ]
        return changed, stale

    async def sync_commands(self) -> None:
        """Sync each scope's commands when they changed since the last sync recorded for this application, and
        remove the commands of a server that is no longer the operator's."""
        assert self.application_id is not None
        shards = self.settings.shard_ids
        if shards is not None and 0 not in shards and not self.force_sync:
            log.info("Commands are synced by the process that runs shard 0")
            return
        changed, stale = await self.commands_to_sync(self.application_id)
        if self.force_sync:
            changed = self.command_scopes()
        if not changed and not stale:
            log.info("Commands unchanged since the last sync; not syncing")
        repository = self.store.guild_settings
        for scope in changed:
            guild = None if scope is None else discord.Object(scope)
            try:
                synced = await self.tree.sync(guild=guild)
            except discord.Forbidden as exc:
                # Not in that server (or added without the applications.commands scope): try at the next start.
                log.warning("Could not sync the operator's commands to server %s: %s", scope, exc.text or exc)
                continue
            await repository.record_sync(self.application_id, await self.command_tree_hash(scope), scope)
            where = "global command(s)" if scope is None else f"command(s) to the operator's server {scope}"
            log.info("Synced %d %s", len(synced), where)
        for guild_id in stale:
            try:
                await self.tree.sync(guild=discord.Object(guild_id))  # none for it in the tree: removes them
            except (discord.Forbidden, discord.NotFound) as exc:
                log.warning("Could not remove the operator's commands from server %s: %s", guild_id, exc.text or exc)
            else:
                log.info("Removed the operator's commands from server %s (no longer OPERATOR_GUILD_ID)", guild_id)
            await repository.forget_sync(self.application_id, guild_id)

    async def _on_tree_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await answer_error(interaction, error)

    async def on_message(self, message: discord.Message) -> None:
        """No text commands: a message that mentions the bot is a request, which the chat cog answers (this
        replaces discord.py's command processing, which would take "@Imagine help" for an unknown command)."""

    # -- services' Discord side ------------------------------------------------------------------------------

    def build_reporter(self, job: Job) -> Reporter:
        """The reporter of a job, new or resumed: everything it needs is stored with the job."""
        return DiscordReporter(
            self,
            job,
            edit_interval=self.settings.progress_edit_interval,
            result_view=result_view,
            queued_view=queued_view,
            job_reference=self.services.history.reference,
            spoiler=spoiler_rule(self, self.services.server_settings),
            on_failed=self.services.mod_log.job_failed,
        )


def configure_logging(level: str, log_format: str = "text") -> None:
    """One line per record on stdout (LOG_FORMAT: text, or a JSON object). Libraries that would log secrets at
    DEBUG stay at INFO at most."""
    handler = logging.StreamHandler(sys.stdout)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TokenlessFormatter("%(asctime)s %(levelname)-8s %(name)s: %(message)s"))
    handler.addFilter(LogContextFilter())
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


def beside_the_database(settings: Settings) -> Path | None:
    """The folder of the SQLite database's file, which keeps what a restart must find (the spool, the heartbeat);
    None without one: PostgreSQL (shared by several processes) or SQLite in memory. The one reading of
    DATABASE_URL here beyond `Settings.shared_database`, through storage's own."""
    if settings.shared_database:
        return None
    database_file = sqlite_path_from_url(settings.database_url)
    return database_file.parent if database_file is not None else None


def pipeline_config(settings: Settings, *, shared_database: bool) -> PipelineConfig:
    """The pipeline's settings. `shared_database`: several processes may use the database (PostgreSQL)."""
    # Results are spooled next to an SQLite database, so a restart finds them. With PostgreSQL there is no such
    # folder (and the container's working directory is not writable): the system's temporary folder, since a
    # result missing after a restart is downloaded again from its URL (valid for a day).
    folder = beside_the_database(settings)
    spool = folder / "spool" if folder is not None else Path(tempfile.gettempdir()) / "imagine-spool"
    return PipelineConfig(
        model=settings.toapis_model,
        poll_interval=settings.toapis_poll_interval,
        lookups_per_minute=settings.toapis_lookups_per_minute,
        submits_per_minute=settings.toapis_submits_per_minute,
        generation_timeout=settings.generation_timeout,
        max_concurrent_jobs=settings.max_concurrent_jobs,
        spool_dir=spool,
        # Only PostgreSQL is shared by several processes; an SQLite file has one, which may take every job.
        lease_ttl=max(settings.toapis_poll_interval * 12, 1.0) if shared_database else None,
        owns_guild=shard_filter(settings),
        # Waits that have no variable of their own scale with the poll interval (defaults: 5 s and 30 s).
        retry_delay=settings.toapis_poll_interval,
        probe_interval=settings.toapis_poll_interval * 6,
        # With webhooks, a webhook announces a task's end; look-ups go on, rarely, in case one is lost.
        webhook_safety_interval=settings.toapis_poll_interval * 6 if settings.webhooks_on else None,
    )


def heartbeat_path(settings: Settings) -> Path:
    """Where the heartbeat file is kept: next to an SQLite database (the data volume in Docker), otherwise in the
    system's temporary folder, one per set of shards."""
    folder = beside_the_database(settings)
    if folder is not None:
        return folder / "heartbeat.json"
    shards = "".join(f"-{shard}" for shard in settings.shard_ids or ())
    return Path(tempfile.gettempdir()) / f"imagine-heartbeat{shards}.json"


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
    metrics = Metrics()
    session = aiohttp.ClientSession(timeout=TOAPIS_SESSION_TIMEOUT, trace_configs=[metrics.toapis_trace()])
    try:
        client = ToAPIsClient(
            session,
            api_key=settings.toapis_api_key.reveal(),
            base_url=settings.toapis_base_url,
            model=settings.toapis_model,
        )
        bot = ImagineBot(
            settings, force_sync=force_sync, shared_database=shared_database, http_trace=metrics.discord_trace()
        )
        bot.store = store
        server_settings = ServerSettings(store.guild_settings)
        alerts = AlertThrottle(
            AlertPoster(
                bot,
                server_settings=server_settings,
                guild_allowed=settings.guild_allowed,
                owns_guild=shard_filter(settings),
                operator_webhook_url=settings.operator_alert_webhook_url,
            ),
            # Other processes notice the same problems: the operator's webhook hears of each burst once in all.
            shared=store.alert_bursts if shared_database else None,
        )
        config = pipeline_config(settings, shared_database=shared_database)
        callbacks = None
        if settings.webhooks_on:
            assert settings.webhook_public_url is not None  # webhooks_on: all three are set
            callbacks = WebhookCallbacks(settings.webhook_public_url, events=store.webhook_events, alerts=alerts)
        pipeline = Pipeline(
            config=config,
            client=client,
            store=store,
            reporters=bot.build_reporter,
            alerts=alerts,
            metrics=metrics,
            callbacks=callbacks,
        )
        metrics.watch(
            queued=lambda: pipeline.queued,
            in_flight=lambda: pipeline.in_flight,
            breaker_open=lambda: pipeline.breaker.is_open,
        )
        balance = BalanceWatch(
            client,
            threshold=settings.low_balance_alert,
            alerts=alerts,
            metrics=metrics,
            interval=settings.balance_check_interval,
        )
        liveness = Liveness(
            gateway_connected=bot.gateway_connected,
            pipeline_accepting=lambda: pipeline.accepting,
            ping_database=store.db.ping,
            breaker_open=lambda: pipeline.breaker.is_open,
        )
        bot.operations = Operations(
            metrics=metrics,
            balance=balance,
            liveness=liveness,
            heartbeat=Heartbeat(heartbeat_path(settings), liveness),
            start_probe=functools.partial(probe_at_start, client, pipeline.health),
            **webhook_services(settings, store, pipeline, config, metrics),
        )
        quotas = QuotaService(store)
        admission = Admission(
            guild_allowed=settings.guild_allowed,
            server_settings=server_settings,
            cooldowns=Cooldowns(),
            pipeline=pipeline,
            models=ModelMenu(settings.toapis_models, settings.toapis_model, settings.model_weights),
            quotas=quotas,
        )
        history = JobHistory(store, retention_days=settings.retention_days)
        mod_log = ModerationLog(bot, server_settings=server_settings, quotas=quotas, job_reference=history.reference)
        owed_answers = OwedAnswers(store, config)
        intake = Intake(
            admission=admission,
            pipeline=pipeline,
            history=history,
            server_settings=server_settings,
            moderation=mod_log,
            owed=owed_answers,
            # A wait with no variable of its own: it scales with the poll interval (docs/operators.md).
            drain_seconds=min(INTAKE_DRAIN, settings.toapis_poll_interval * 1.2),
        )
        bot.services = Services(
            settings=settings,
            pipeline=pipeline,
            server_settings=server_settings,
            quotas=quotas,
            history=history,
            forms=FormBook(store),
            alerts=alerts,
            mod_log=mod_log,
            intake=intake,
            owed_answers=owed_answers,
            actions=ResultActions(intake=intake, history=history, pipeline=pipeline),
            chat=MessageIntake(
                bot,
                intake=intake,
                requests=MessageRequestBook(store),
                history=history,
                server_settings=server_settings,
                owns_guild=shard_filter(settings),
                # Other processes may be answering their own requests right now: theirs are not owed yet.
                owed_grace=CHAT_OWED_GRACE if shared_database else timedelta(0),
            ),
            operator_status=OperatorStatus(
                pipeline=pipeline, store=store, balance=balance, global_daily_limit=settings.global_daily_limit
            ),
        )
        yield bot
    finally:
        await session.close()
        await store.close()


def webhook_services(
    settings: Settings, store: Storage, pipeline: Pipeline, config: PipelineConfig, metrics: Metrics
) -> dict[str, Any]:
    """With webhooks on, the receiver and the relay of wake-ups between processes (docs/architecture.md)."""
    if not settings.webhooks_on:
        return {}
    # webhooks_on: all three are set.
    assert settings.toapis_webhook_secret is not None
    assert settings.webhook_port is not None
    leased = config.lease_ttl is not None
    return {
        "webhooks": WebhookReceiver(
            host=settings.webhook_host,
            port=settings.webhook_port,
            secrets=[settings.toapis_webhook_secret.reveal()],
            events=store.webhook_events,
            wakeups=pipeline.wakeups,
            owner=config.owner,
            leased=leased,
            metrics=metrics,
        ),
        "wakeup_relay": WakeupRelay(store.webhook_events, pipeline.wakeups, owner=config.owner, leased=leased),
    }


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
    async with (
        assemble(settings, force_sync=force_sync) as bot,
        serve_status(settings, bot),
        serve_webhooks(settings, bot),
    ):
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, _request_shutdown, bot, signum)
        async with bot:
            try:
                await bot.start(settings.discord_token.reveal())
            except (aiohttp.ClientConnectionError, discord.GatewayNotFound, discord.DiscordServerError) as exc:
                raise StartupError(
                    f"Cannot reach Discord at {discord.http.Route.BASE} ({exc}): check the network"
                    + (" and DISCORD_API_BASE_URL" if settings.discord_api_base_url else "")
                ) from None
    log.info("Imagine stopped")


@contextlib.asynccontextmanager
async def serve_status(settings: Settings, bot: ImagineBot) -> AsyncIterator[None]:
    """With METRICS_PORT, /healthz and /metrics for as long as the bot runs."""
    if settings.metrics_port is None:
        yield
        return
    operations = bot.operations
    server = StatusServer(
        host=settings.metrics_host,
        port=settings.metrics_port,
        liveness=operations.liveness,
        metrics=operations.metrics,
    )
    async with serving(server, f"METRICS_PORT {settings.metrics_port} on {settings.metrics_host}") as (host, port):
        log.info("Health and metrics on http://%s:%d (/healthz, /metrics)", host, port)
        yield


@contextlib.asynccontextmanager
async def serve_webhooks(settings: Settings, bot: ImagineBot) -> AsyncIterator[None]:
    """With webhooks on, the endpoint ToAPIs calls, for as long as the bot runs."""
    receiver = bot.operations.webhooks
    if receiver is None:
        yield
        return
    async with serving(receiver, f"WEBHOOK_PORT {settings.webhook_port} on {settings.webhook_host}") as (host, port):
        log.info("ToAPIs webhooks received on http://%s:%d, for %s", host, port, settings.webhook_public_url)
        yield


@contextlib.asynccontextmanager
async def serving(server: LocalServer, where: str) -> AsyncIterator[tuple[str, int]]:
    """`server` listening for the block, at the address it yields; `where` names the setting when it cannot."""
    try:
        address = await server.start()
    except OSError as exc:
        raise StartupError(f"{where} cannot be used: {exc.strerror or exc}") from None
    try:
        yield address
    finally:
        await server.close()


def _request_shutdown(bot: ImagineBot, signum: int) -> None:
    log.info("Received %s: no new jobs; stopping", signal.Signals(signum).name)
    asyncio.get_running_loop().create_task(bot.close())


# -- python bot.py --check ------------------------------------------------------------------------------------

CHECK_TIMEOUT: Final = 15.0


async def check(settings: Settings, out: Callable[[str], None]) -> int:
    """Check everything Imagine needs, one line each; 0 when it can run, 1 otherwise."""
    lines: list[CheckLine] = []

    def say(line: CheckLine) -> None:
        lines.append(line)
        out(line.render())

    say(ok("configuration", "every variable is valid"))
    database, schema = await check_database(settings.database_url, timeout=CHECK_TIMEOUT)
    say(database)
    async with aiohttp.ClientSession() as session:
        client = ToAPIsClient(
            session,
            api_key=settings.toapis_api_key.reveal(),
            base_url=settings.toapis_base_url,
            model=settings.toapis_model,
            timeout=CHECK_TIMEOUT,
            retry=RetryPolicy(max_retries=0),
        )
        for line in await check_toapis(client, models=settings.toapis_models, low_balance=settings.low_balance_alert):
            say(line)
    say(await check_webhook_setup(settings, schema))
    found = await check_discord(
        settings.discord_token.reveal(),
        guild_allowed=settings.guild_allowed,
        restricted=bool(settings.allowed_guild_ids),
        operator_guild_id=settings.operator_guild_id,
    )
    for line in found.lines:
        say(line)
    if found.application_id is not None:
        say(await check_commands(settings, schema, found.application_id))
        out(f"Invite: {invite_url(found.application_id)}")
    failed = [line for line in lines if line.mark is Mark.FAIL]
    out("Ready to run." if not failed else f"{len(failed)} problem(s) to fix before Imagine can run.")
    return 1 if failed else 0


async def check_webhook_setup(settings: Settings, schema: SchemaStatus | None) -> CheckLine:
    """Webhooks on or off, and whether ToAPIs refused callback_url at the last submits (read from the database,
    when it exists and needs no migration: --check changes nothing)."""
    if not settings.webhooks_on:
        return check_webhooks(public_url=None, listen=None, refused=None)
    assert settings.webhook_port is not None  # webhooks_on: all three are set
    listen = (settings.webhook_host, settings.webhook_port)
    refused = None
    known = False
    if schema is not None and schema.exists and not schema.pending and not schema.too_new:
        try:
            async with await Storage.open(settings.database_url) as store:
                problems = await store.webhook_events.problems()
        except StorageError:
            pass
        else:
            known = True
            refused = next((problem for problem in problems if problem.problem == NOT_CONFIGURED), None)
    return check_webhooks(public_url=settings.webhook_public_url, listen=listen, refused=refused, known=known)


async def check_commands(settings: Settings, schema: SchemaStatus | None, application_id: int) -> CheckLine:
    """Whether the next start syncs commands: compares the command tree with the last sync recorded. Only the
    process that runs shard 0 syncs (ImagineBot.sync_commands), so with SHARD_IDS leaving it out, it says so."""
    start = "start" if settings.shard_ids is None or 0 in settings.shard_ids else "start of shard 0's process"
    if schema is None or schema.too_new:
        return note("commands", "cannot tell without the database")
    if not schema.exists:
        return ok("commands", f"the first {start} syncs them")
    if schema.pending:
        return ok("commands", "compared with the last sync once the next start has migrated the database")
    try:
        async with assemble(settings) as bot:
            await bot.load_extensions()
            changed, stale = await bot.commands_to_sync(application_id)
    except StorageError as exc:
        return note("commands", f"cannot tell: {exc}")
    if not changed and not stale:
        return ok("commands", "unchanged since the last sync")
    scopes = ["global" if scope is None else f"the operator's server {scope}" for scope in changed]
    scopes += [f"removal from server {guild_id}" for guild_id in stale]
    return ok("commands", f"the next {start} syncs them ({', '.join(scopes)})")


# -- python bot.py --health -----------------------------------------------------------------------------------

HEALTH_TIMEOUT: Final = 5.0


def health(settings: Settings, out: Callable[[str], None]) -> int:
    """Docker's HEALTHCHECK: /healthz when METRICS_PORT is set, else the heartbeat file; 0 healthy, 1 not."""
    if settings.metrics_port:
        host = settings.metrics_host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        url = f"http://{'[' + host + ']' if ':' in host else host}:{settings.metrics_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT) as response:
                out(response.read().decode(errors="replace"))
                return 0
        except urllib.error.HTTPError as exc:
            out(exc.read().decode(errors="replace"))
            return 1
        except (urllib.error.URLError, OSError) as exc:
            out(f"unhealthy: {url} does not answer ({getattr(exc, 'reason', exc)})")
            return 1
    healthy, reason = read_heartbeat(heartbeat_path(settings))
    out(f"{'healthy' if healthy else 'unhealthy'}: {reason}")
    return 0 if healthy else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bot.py", description="Run the Imagine Discord bot.")
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--sync", action="store_true", help="sync the slash commands even if they did not change")
    modes.add_argument(
        "--check", action="store_true", help="check the configuration, database, ToAPIs and Discord, then exit"
    )
    modes.add_argument("--health", action="store_true", help="exit 0 if the running bot is healthy, 1 if not")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        if args.check:
            for problem in exc.problems:
                print(fail("configuration", problem).render())
            return 1
        print(exc, file=sys.stderr)
        return 1 if args.health else 2
    if args.health:
        return health(settings, print)
    # --check speaks in its own lines; the libraries' warnings (voice support, intents) would only distract.
    configure_logging("ERROR" if args.check else settings.log_level, settings.log_format)
    point_discord_at(settings)
    if args.check:
        return asyncio.run(check(settings, functools.partial(print, flush=True)))
    try:
        asyncio.run(run(settings, force_sync=args.sync))
    except StorageError as exc:
        log.error("Database problem: %s", exc)
        return 1
    except discord.LoginFailure:
        log.error("Discord rejected DISCORD_TOKEN: check the bot token in the Developer Portal (Bot tab)")
        return 1
    except StartupError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

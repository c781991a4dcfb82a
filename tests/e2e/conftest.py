"""End-to-end fixtures: both loopback fakes in the test process, a server to act in, and `python bot.py`.

A :class:`World` holds the fakes of Discord and ToAPIs, one server ("Test server", #general, an admin) and a
directory that is both the bot's working directory (it holds no ``.env``, so only the environment given here
counts) and the home of its SQLite database. ``world.bot(...)`` runs the real ``bot.py`` as a subprocess with the
environment of docs/operators.md pointed at the fakes, and returns once it is connected to the fake gateway::

    async with world.bot(DEFAULT_MEMBER_DAILY_LIMIT="2") as bot:
        call = await world.imagine(world.member("alice"), "a cat")
        await world.discord.wait_for(lambda: delivered(call), STEP_TIMEOUT)
    # here the process has stopped, and nothing it printed contains a secret

Tests assert on what the fakes recorded and on the database the bot left behind (``world.rows``). Leaving a
world also checks that the bot never asked either fake for a route it does not serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest
from PIL import Image

from tests.e2e.harness import ROOT, ProcessFailed, ScriptProcess, wait_until
from tests.fakes.discord import (
    CallbackType,
    FakeChannel,
    FakeDiscord,
    FakeGuild,
    FakeMember,
    InteractionRecord,
    MessageRecord,
    Permission,
)
from tests.fakes.toapis import Endpoint, FakeToAPIs

BOT_SCRIPT: Final = ROOT / "bot.py"

# Generous bounds for a loaded machine: a start takes about a second, a job a fraction of one.
START_TIMEOUT: Final = 30.0
STEP_TIMEOUT: Final = 15.0

POLL_INTERVAL: Final = 0.05
PROGRESS_EDIT_INTERVAL: Final = 0.3

# Every variable of docs/operators.md that has a default, set explicitly so that nothing from the machine leaks in.
BASE_ENV: Final = {
    "TOAPIS_MODEL": "gpt-image-2",
    "TOAPIS_POLL_INTERVAL": str(POLL_INTERVAL),
    # Tests look tasks up many times faster than real ones: the budget must not be what they wait for.
    "TOAPIS_LOOKUPS_PER_MINUTE": "600000",
    "TOAPIS_SUBMITS_PER_MINUTE": "600000",
    "PROGRESS_EDIT_INTERVAL": str(PROGRESS_EDIT_INTERVAL),
    "GENERATION_TIMEOUT": "60",
    "MAX_CONCURRENT_JOBS": "8",
    "DEFAULT_MEMBER_DAILY_LIMIT": "25",
    "DEFAULT_SERVER_DAILY_LIMIT": "250",
    "GLOBAL_DAILY_LIMIT": "none",
    "RETENTION_DAYS": "30",
    "LOG_LEVEL": "INFO",
}

# What a Python process needs from the machine; nothing else of the test runner's environment is passed on.
_PASSED_THROUGH: Final = ("PATH", "HOME", "TMPDIR", "SYSTEMROOT")

WEBHOOK_MESSAGE: Final = "/webhooks/{application_id}/{webhook_token}/messages/{message_id}"
CHANNEL_MESSAGES: Final = "/channels/{channel_id}/messages"


def process_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` plus the little a Python process needs from the machine (and UTF-8 output)."""
    passed = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
    return passed | {"PYTHONIOENCODING": "utf-8", "PYTHONUNBUFFERED": "1"} | dict(env)


def delivered(call: InteractionRecord) -> bool:
    """Whether the reply to ``call`` shows files (the result)."""
    return call.original is not None and not call.original.deleted and bool(call.original.attachments)


def progress_versions(call: InteractionRecord) -> list[Any]:
    """The edits of the reply that showed progress (an embed, no files) before the result."""
    assert call.original is not None
    return [v for v in call.original.edits if v.embeds and not v.attachments]


def embed_fields(embed: Mapping[str, Any]) -> dict[str, str]:
    """An embed's fields by name."""
    return {f["name"]: f["value"] for f in embed.get("fields") or []}


@dataclass
class World:
    """Both fakes, one server, a directory for the bot; see the module docstring."""

    discord: FakeDiscord
    api: FakeToAPIs
    guild: FakeGuild
    channel: FakeChannel
    admin: FakeMember
    directory: Path
    processes: list[ScriptProcess] = field(default_factory=list)

    @property
    def database(self) -> Path:
        """The bot's SQLite file."""
        return self.directory / "imagine.db"

    def env(self, **overrides: str) -> dict[str, str]:
        """The environment of docs/operators.md pointed at the fakes, with ``overrides`` on top."""
        return (
            BASE_ENV
            | self.discord.bot_env()
            | {
                "TOAPIS_API_KEY": self.api.api_key,
                "TOAPIS_BASE_URL": self.api.base_url,
                "DATABASE_URL": f"sqlite:///{self.database}",
            }
            | overrides
        )

    def member(self, name: str, guild: FakeGuild | None = None) -> FakeMember:
        """A new member (before or after the bot connected: interactions carry the member)."""
        return (guild or self.guild).add_member(name)

    async def imagine(
        self, member: FakeMember, prompt: str, *, channel: FakeChannel | None = None, **options: Any
    ) -> InteractionRecord:
        """``member`` runs ``/imagine prompt:... [options]`` in #general (or ``channel``)."""
        return await self.discord.invoke_slash(
            "imagine", {"prompt": prompt, **options}, user=member, channel=channel or self.channel
        )

    # --- the bot process ------------------------------------------------------------------------------------

    async def start_bot(self, *args: str, env: Mapping[str, str] | None = None) -> ScriptProcess:
        """Start ``python bot.py args...`` and wait until it has identified on the fake gateway.

        The caller stops it (``terminate``, ``kill`` or ``stop``); ``check_output`` runs when the world closes.
        """
        sessions = len(self.discord.gateway_sessions)
        process = await ScriptProcess.spawn(
            BOT_SCRIPT, env=process_env(env or self.env()), args=args, cwd=self.directory, inherit_env=False
        )
        self.processes.append(process)
        await self._connected(process, after=sessions)
        return process

    async def _connected(self, process: ScriptProcess, *, after: int) -> None:
        identified = asyncio.create_task(self.discord.wait_for_session(START_TIMEOUT, after=after))
        exited = asyncio.create_task(process.wait_exit(START_TIMEOUT))
        try:
            await asyncio.wait({identified, exited}, return_when=asyncio.FIRST_COMPLETED)
            if identified.done() and identified.exception() is None:
                return
            raise ProcessFailed(
                f"bot.py did not connect to the fake gateway (exit {process.returncode}):\n{process.output()}"
            )
        finally:
            for task in (identified, exited):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    @contextlib.asynccontextmanager
    async def bot(self, *args: str, **env: str) -> AsyncIterator[ScriptProcess]:
        """``python bot.py args...`` with ``env`` on top of :meth:`env`, connected; stopped on the way out."""
        process = await self.start_bot(*args, env=self.env(**env))
        try:
            yield process
        finally:
            await process.stop()

    # --- what the bot left behind ---------------------------------------------------------------------------

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """Rows of a query on the bot's database (read in WAL mode beside the running bot, or after it)."""
        connection = sqlite3.connect(self.database, timeout=10)
        try:
            connection.row_factory = sqlite3.Row
            return [dict(row) for row in connection.execute(sql, params)]
        finally:
            connection.close()

    def usage_rows(self, job_id: str) -> list[dict[str, Any]]:
        """The usage log's rows of a job."""
        return self.rows("SELECT * FROM usage_log WHERE job_id = ?", job_id)

    def ledger_images(self, job_id: str) -> int | None:
        """The images a job still counts against the quotas (None: it reserved nothing)."""
        found = self.rows("SELECT images FROM quota_ledger WHERE job_id = ?", job_id)
        return found[0]["images"] if found else None

    def job_ids(self) -> list[str]:
        """Every job id the bot sent upstream, in submit order (the submit's client_business_id)."""
        return [r.json["client_business_id"] for r in self.api.requests_to(Endpoint.SUBMIT) if r.json]

    def submits(self, prompt: str) -> list[dict[str, Any]]:
        """The submits (JSON bodies) of this prompt."""
        return [r.json for r in self.api.requests_to(Endpoint.SUBMIT) if r.json and r.json.get("prompt") == prompt]

    def submit_of(self, prompt: str) -> dict[str, Any]:
        """The one submit of this prompt (its client_business_id is the job id)."""
        found = self.submits(prompt)
        assert len(found) == 1, f"{len(found)} submits of {prompt!r}"
        return found[0]

    async def submitted_job(self, prompt: str) -> str:
        """The id of the job of this prompt, once it has been submitted."""
        await wait_until(lambda: self.submits(prompt), STEP_TIMEOUT, what=f"a submit of {prompt!r}")
        job_id: str = self.submit_of(prompt)["client_business_id"]
        return job_id

    async def finished_row(self, job_id: str) -> dict[str, Any]:
        """The job's one usage-log row, once the bot has written it (the last step of every job)."""
        rows: list[dict[str, Any]] = await wait_until(
            lambda: self.usage_rows(job_id), STEP_TIMEOUT, what=f"the usage row of job {job_id}"
        )
        (row,) = rows
        return row

    def bot_messages(self, *, with_files: bool = False) -> list[MessageRecord]:
        """Every message the bot created (replies, follow-ups, channel messages), deleted ones too."""
        found = [m for m in self.discord.messages if m.author is self.discord.bot_user]
        return [m for m in found if any(v.attachments for v in m.versions)] if with_files else found

    def secrets(self) -> list[str]:
        """What must never appear in the bot's output: the bot token, the API key, interaction tokens."""
        return [self.discord.token, self.api.api_key, *(i.token for i in self.discord.interactions)]

    def check_output(self) -> None:
        """No secret in anything any bot process printed."""
        for process in self.processes:
            text = "\n".join(process.lines)
            leaked = [s[:6] + "…" for s in self.secrets() if s in text]
            assert not leaked, f"bot.py printed secrets starting {leaked}"

    def check_routes(self) -> None:
        """The bot asked neither fake for anything it does not serve, and always with the right API key."""
        assert self.discord.unknown_routes == [], [str(r) for r in self.discord.unknown_routes]
        unknown = [f"{r.method} {r.path}" for r in self.api.requests if r.endpoint is None]
        assert unknown == [], unknown
        keyless = [
            f"{r.method} {r.path}" for r in self.api.requests if r.endpoint is not Endpoint.DOWNLOAD and not r.key_ok
        ]
        assert keyless == [], keyless


@contextlib.asynccontextmanager
async def open_world(directory: Path, **discord_options: Any) -> AsyncIterator[World]:
    """Start both fakes and build the server; on the way out stop every bot left running, then check the records."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    async with FakeToAPIs() as api, FakeDiscord(**discord_options) as fake:
        guild = fake.add_guild("Test server")
        channel = guild.add_text_channel("general")
        admins = guild.add_role("Admins", Permission.MANAGE_GUILD)
        world = World(fake, api, guild, channel, guild.add_member("admin", roles=[admins]), directory)
        try:
            yield world
        finally:
            for process in world.processes:
                await process.stop()
        world.check_output()
        world.check_routes()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """A world for one test; the test starts the bot processes it needs."""
    async with open_world(tmp_path / "bot") as started:
        yield started


def request_files(requests: Sequence[Any]) -> list[tuple[str, int]]:
    """The (filename, size) of every file part of multipart requests."""
    return [(filename, size) for r in requests for (_field, filename, size) in r.files]


# --- shared by the test modules ---------------------------------------------------------------------------------

# Discord's: the first response must reach it within 3 seconds of the interaction.
ACK_DEADLINE: Final = 3.0


def png_bytes(size: tuple[int, int], colour: str) -> bytes:
    """A small real PNG of one colour, as a member would attach."""
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def answered_in_time(call: InteractionRecord) -> None:
    assert not call.failed, call.failure
    assert call.response_time is not None
    assert call.response_time < ACK_DEADLINE


async def first_response(world: World, call: InteractionRecord) -> None:
    await world.discord.wait_for(lambda: call.acknowledged or call.failed, STEP_TIMEOUT, what="a first response")


def settled(call: InteractionRecord) -> bool:
    """Whether the bot has said its last word: an answer, or its deferred reply edited or followed up."""
    if call.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE:
        return True
    return bool(call.followups) or (call.original is not None and not call.original.loading)

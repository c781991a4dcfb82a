"""Chaos: the real bot under load, upstream faults and crashes, then every guarantee of docs/guarantees.md checked.

`python bench/chaos.py --seed 7` runs `python bot.py` (one process on SQLite, or with `--postgres URL` two
processes on a fresh PostgreSQL schema, one per shard of two, one server on each) against the loopback fakes of
bench/run.py, served by this process. For `--duration` seconds about thirty members send a mix of requests:
/imagine with n 1-4, some at 2K, some with one to four PNG references (a few of them several MB); messages that
mention the bot, some with images; Re-roll clicks on results. The fake ToAPIs fails some tasks, refuses some for
the content policy, returns fewer images than asked for some, runs some slowly, and answers some submits,
look-ups and uploads with 500, 429, 502 or 503, or drops a submit's connection after creating its task (the
ambiguous submit). The server's pool and each member's limit are well below the demand, so that refusals happen.
At 3 to 5 random moments a bot process is killed (SIGKILL) and started again on the same database, and once it
is stopped with SIGTERM; after the load, one last kill and restart, then a quiet period until no job is
unfinished and nothing is owed (or `--settle` seconds), then a clean stop.

Checked, from the fakes' records and the database:

- every acknowledged request was answered: every deferred interaction's reply was edited or followed up, and its
  job (if any) ended; every message the bot claimed (`message_requests`) has a reply and a job or an answer;
- no job was delivered twice: one message with files per completed job; none for a failed one (a reply edited
  with the same job's files again, after a stop between that edit and its record, is counted apart);
- no job made two ToAPIs tasks (one task per client_business_id), and every task belongs to a job;
- no quota was exceeded (the server pool, each member, the overall limit, over the ledger), and each job's
  ledger row holds exactly what it should: a completed job its delivered images times its weight, a failed one
  nothing (its task failed, or it never had one) or, where docs/guarantees.md keeps images counted, what it
  reserved; one usage-log row per finished job, with the images delivered;
- after the quiet period: no unfinished job, no owed answer, no claimed message without a job or an answer.

Prints a summary and every violation with its interaction or job id; exits 1 if there is any. The seed fixes
every choice (requests, faults, kill moments); the interleaving with the bot still depends on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import io
import json
import os
import random
import re
import signal
import sqlite3
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from PIL import Image  # noqa: E402

import i18n  # noqa: E402
from bench.run import BOT, STRICT, World, imagine_env, world  # noqa: E402
from bench.storage_bench import postgres_schemas  # noqa: E402
from tests.e2e.harness import ScriptProcess  # noqa: E402
from tests.fakes.discord import (  # noqa: E402
    CallbackType,
    FakeChannel,
    FakeGuild,
    FakeMember,
    InteractionRecord,
    MessageRecord,
    Upload,
)
from tests.fakes.toapis import Endpoint, Fault, Timeline  # noqa: E402

MEMBERS = 30
MEMBER_LIMIT = 12  # a member's images a day
SERVER_LIMIT = 120  # a server's pool a day (`--pool`)
GLOBAL_LIMIT = 200  # with two servers (PostgreSQL): the operator's overall limit, below both pools together
DEADLINE = 10.0  # the fake's acknowledgement deadline: lenient for a loaded 2-core machine, but finite
RESTARTED = i18n.translate("owed.restarted", i18n.SOURCE, bot="Imagine")
STOPPING = i18n.translate("owed.stopping", i18n.SOURCE, bot="Imagine")
REROLL = re.compile(r"^imagine:reroll:(.+)$")

# How the fake ToAPIs runs a task, by a word in the prompt (re-rolls repeat the prompt, and so the behaviour).
BEHAVIOURS: dict[str, Timeline] = {
    "fails": Timeline.failing(after=1.0),
    "policy": Timeline.content_policy(after=0.8),
    "fewer": Timeline.fewer_images(1, after=1.5),
    "slowly": Timeline.simple(queued=2.0, running=14.0, progress=(10, 40, 70, 90)),
    "quickly": Timeline.simple(queued=0.2, running=0.8, progress=(50,)),
}
BEHAVIOUR_ODDS = {"fine": 56, "quickly": 14, "fails": 8, "policy": 7, "fewer": 7, "slowly": 8}


@dataclass
class Server:
    guild: FakeGuild
    channel: FakeChannel
    members: list[FakeMember]
    shard: int


@dataclass
class Ask:
    """A member's message that mentions the bot."""

    message: MessageRecord
    member: FakeMember
    sent_at: float


@dataclass
class Run:
    """What the run did, for the checks."""

    seed: int
    calls: list[InteractionRecord] = field(default_factory=list)
    asks: list[Ask] = field(default_factory=list)
    refused_by_client: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    kills: list[tuple[float, str]] = field(default_factory=list)
    processes: list[ScriptProcess] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def at(self) -> float:
        return time.monotonic() - self.started


# -- images -------------------------------------------------------------------------------------------------------


@functools.cache
def small_png(index: int) -> bytes:
    colours = ("red", "green", "blue", "gold", "purple", "teal", "orange", "white")
    buffer = io.BytesIO()
    Image.new("RGB", (96 + 16 * index, 64 + 8 * index), colours[index % len(colours)]).save(buffer, format="PNG")
    return buffer.getvalue()


@functools.cache
def large_png(index: int) -> bytes:
    """A PNG of a few MB: noise compresses as little as a photo does."""
    image = Image.effect_noise((1400, 1000), 60 + index).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def references(rng: random.Random) -> list[Upload]:
    count = rng.randint(1, 4)
    files = []
    for i in range(count):
        if rng.random() < 0.12:
            files.append(Upload(large_png(rng.randrange(2)), f"large{i}.png", "image/png"))
        else:
            files.append(Upload(small_png(rng.randrange(8)), f"ref{i}.png", "image/png"))
    return files


# -- the bot processes --------------------------------------------------------------------------------------------


class Bots:
    """The bot's processes (one per shard) on one database: start, kill, stop, restart."""

    def __init__(self, w: World, run: Run, envs: list[dict[str, str]], logs: Path) -> None:
        self.w = w
        self.run = run
        self.envs = envs
        self.logs = logs
        self.live: list[ScriptProcess | None] = [None] * len(envs)
        self.lock = asyncio.Lock()

    async def start(self, index: int) -> ScriptProcess:
        sessions = len(self.w.discord.gateway_sessions)
        process = await ScriptProcess.spawn(BOT, env=self.envs[index], cwd=self.w.folder)
        self.run.processes.append(process)
        self.live[index] = process
        identified = asyncio.ensure_future(self.w.discord.wait_for_session(120, after=sessions))
        exited = asyncio.ensure_future(process.wait_exit(120))
        try:
            await asyncio.wait({identified, exited}, return_when=asyncio.FIRST_COMPLETED)
            if not (identified.done() and identified.exception() is None):
                raise RuntimeError(f"the bot did not connect (exit {process.returncode}):\n{process.output()}")
        finally:
            for task in (identified, exited):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        return process

    async def crash(self, rng: random.Random, how: signal.Signals) -> None:
        """Stop one process with `how`, wait a moment, start it again on the same database."""
        async with self.lock:
            index = rng.randrange(len(self.envs))
            process = self.live[index]
            assert process is not None
            self.run.kills.append((self.run.at(), f"{how.name} shard-process {index} (pid {process.pid})"))
            print(f"# {self.run.at():6.1f} s: {how.name} process {index} (pid {process.pid})", file=sys.stderr)
            if how is signal.SIGKILL:
                await process.kill()
            else:
                process.send_signal(how)
                code = await process.wait_exit(60)
                if code != 0:
                    self.run.kills.append((self.run.at(), f"  (exit code {code} after {how.name})"))
            self.live[index] = None
            await asyncio.sleep(rng.uniform(0.3, 3.0))
            await self.start(index)

    async def stop_all(self) -> list[int]:
        codes = []
        for index, process in enumerate(self.live):
            if process is not None:
                codes.append(await process.terminate(60))
                self.live[index] = None
        return codes

    def save_logs(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        for number, process in enumerate(self.run.processes):
            (self.logs / f"bot-{number}-pid{process.pid}.log").write_text("\n".join(process.lines) + "\n")


# -- the load -----------------------------------------------------------------------------------------------------


def behaviour(rng: random.Random) -> str:
    names = list(BEHAVIOUR_ODDS)
    return rng.choices(names, weights=[BEHAVIOUR_ODDS[n] for n in names])[0]


def results_to_reroll(run: Run) -> list[tuple[MessageRecord, InteractionRecord]]:
    found = []
    for call in run.calls:
        original = call.original
        usable = original is not None and not original.deleted and bool(original.attachments)
        if usable and original is not None and any(REROLL.match(c) for c in original.custom_ids()):
            found.append((original, call))
    return found


async def one_request(w: World, run: Run, servers: list[Server], rng: random.Random, number: int) -> None:
    server = rng.choice(servers)
    member = rng.choice(server.members)
    kind = rng.choices(("imagine", "mention", "reroll"), weights=(60, 25, 15))[0]
    does = behaviour(rng)
    prompt = f"chaos {number} {does}: a lighthouse in a storm"
    n = rng.choices((1, 2, 3, 4), weights=(40, 25, 15, 20))[0]
    two_k = rng.random() < 0.15
    try:
        if kind == "reroll":
            candidates = results_to_reroll(run)
            if candidates:
                message, parent = rng.choice(candidates)
                button = next(c for c in message.custom_ids() if REROLL.match(c))
                owner = parent.member or member
                run.calls.append(await w.discord.click(message, button, owner, deadline=DEADLINE))
                return
            kind = "imagine"
        if kind == "imagine":
            options: dict[str, Any] = {"prompt": prompt, "n": n}
            if two_k:
                options["resolution"] = "2k"
            if rng.random() < 0.3:
                for name, upload in zip(("image", "image2", "image3", "image4"), references(rng), strict=False):
                    options[name] = upload
            call = await w.discord.invoke_slash(
                "imagine", options, user=member, channel=server.channel, deadline=DEADLINE
            )
            run.calls.append(call)
            return
        text = f"<@{w.discord.bot_user.id}> {prompt} --n {n}" + (" --res 2k" if two_k else "")
        files = references(rng) if rng.random() < 0.5 else []
        message = await w.discord.post_message(server.channel, member, text, files=files)
        run.asks.append(Ask(message, member, run.at()))
    except Exception as exc:  # the fake's client refused to send it (as Discord's would): not a request
        run.refused_by_client[f"{kind}: {type(exc).__name__}"] += 1


FAULTS: list[tuple[str, Endpoint, Callable[[], Fault], bool]] = [
    ("submit 429", Endpoint.SUBMIT, lambda: Fault.rate_limited(0.5), False),
    ("submit 500", Endpoint.SUBMIT, Fault.server_error, False),
    ("submit 503 paused", Endpoint.SUBMIT, Fault.unavailable, False),
    ("submit dropped after creating its task", Endpoint.SUBMIT, Fault.disconnect, True),
    ("submit slow (3 s)", Endpoint.SUBMIT, lambda: Fault.slow(3.0), False),
    ("look-up 500", Endpoint.LOOKUP, Fault.server_error, False),
    ("look-up 429", Endpoint.LOOKUP, lambda: Fault.rate_limited(0.5), False),
    ("look-up 502", Endpoint.LOOKUP, Fault.bad_gateway, False),
    ("upload 500", Endpoint.UPLOAD, Fault.server_error, False),
    ("upload 429", Endpoint.UPLOAD, lambda: Fault.rate_limited(0.5), False),
]


def arm_fault(w: World, run: Run, rng: random.Random) -> None:
    name, endpoint, make, after_effect = rng.choice(FAULTS)
    times = rng.choice((1, 1, 2, 3))
    w.api.fail(endpoint, make(), times=times, after_effect=after_effect)
    run.faults[name] += times


async def load(w: World, run: Run, servers: list[Server], rng: random.Random, duration: float, rate: float) -> None:
    number = 0
    deadline = time.monotonic() + duration
    pending: set[asyncio.Task[None]] = set()
    while time.monotonic() < deadline:
        await asyncio.sleep(rng.expovariate(rate))
        number += 1
        if rng.random() < 0.12:
            arm_fault(w, run, rng)
        task = asyncio.create_task(one_request(w, run, servers, random.Random(rng.random()), number))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)


async def crashes(bots: Bots, run: Run, rng: random.Random, duration: float) -> None:
    moments = sorted(rng.uniform(8, duration - 4) for _ in range(rng.randint(3, 5)))
    term_at = rng.choice(moments)  # the SIGTERM takes one of the moments' neighbourhood
    plan = [(m, signal.SIGKILL) for m in moments] + [(term_at + rng.uniform(2, 5), signal.SIGTERM)]
    for moment, how in sorted(plan):
        delay = moment - run.at()
        if delay > 0:
            await asyncio.sleep(delay)
        await bots.crash(rng, how)


# -- the database -------------------------------------------------------------------------------------------------

TABLES = ("jobs", "quota_ledger", "usage_log", "owed_answers", "message_requests")


async def read_tables(url: str) -> dict[str, list[dict[str, Any]]]:
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")

        def read() -> dict[str, list[dict[str, Any]]]:
            connection = sqlite3.connect(path, timeout=30)
            try:
                connection.row_factory = sqlite3.Row
                return {t: [dict(r) for r in connection.execute(f"SELECT * FROM {t}")] for t in TABLES}
            finally:
                connection.close()

        return await asyncio.to_thread(read)
    connection = await asyncpg.connect(url)
    try:
        return {t: [dict(r) for r in await connection.fetch(f"SELECT * FROM {t}")] for t in TABLES}
    finally:
        await connection.close()


async def settled_database(url: str, timeout: float) -> float:
    """Wait until no job is unfinished, nothing is owed and every claimed message has a job or an answer."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        tables = await read_tables(url)
        unfinished = [j for j in tables["jobs"] if j["state"] not in ("completed", "failed")]
        unanswered = [m for m in tables["message_requests"] if m["job_id"] is None and m["answered_at"] is None]
        if not unfinished and not tables["owed_answers"] and not unanswered:
            return time.monotonic() - started
        await asyncio.sleep(1.0)
    return time.monotonic() - started


# -- the checks ---------------------------------------------------------------------------------------------------


@dataclass
class Report:
    figures: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def violation(self, text: str) -> None:
        self.violations.append(text)


def texts_of(message: MessageRecord) -> str:
    return json.dumps([[v.content, list(v.embeds)] for v in message.versions])


def job_ids_of(message: MessageRecord) -> set[str]:
    """The jobs whose Re-roll button a message ever carried with files."""
    found = set()
    for version in message.versions:
        if version.attachments:
            for component in _components(version.components):
                match = REROLL.match(component.get("custom_id", ""))
                if match:
                    found.add(match.group(1))
    return found


def _components(components: Any) -> list[dict[str, Any]]:
    from tests.fakes._discord_records import iter_components

    return iter_components(components)


def check(
    w: World,
    run: Run,
    servers: list[Server],
    tables: Mapping[str, list[dict[str, Any]]],
    two_servers: bool,
    pool_limit: int,
) -> Report:
    report = Report()
    figures = report.figures
    bot = w.discord.bot_user
    jobs = {j["id"]: j for j in tables["jobs"]}
    ledger = {row["job_id"]: row for row in tables["quota_ledger"]}
    usage: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in tables["usage_log"]:
        usage[row["job_id"]].append(row)
    by_reply = {j["reply_message_id"]: j for j in tables["jobs"] if j["reply_message_id"] is not None}
    claims = {row["source_message_id"]: row for row in tables["message_requests"]}

    # Which messages carried each job's result.
    bot_messages = [m for m in w.discord.messages if m.author is bot]
    carriers: dict[str, list[MessageRecord]] = defaultdict(list)
    for message in bot_messages:
        for job_id in job_ids_of(message):
            carriers[job_id].append(message)

    # 1. Every acknowledged interaction was answered.
    for call in run.calls:
        figures["requests (interactions)"] += 1
        kind = call.name
        if call.callback is None:
            figures["not acknowledged (the bot was down or busy past the deadline)"] += 1
            continue
        figures["acknowledged"] += 1
        if call.callback_type is not CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE:
            figures[f"answered at once ({kind})"] += 1
            continue
        original = call.original
        job = by_reply.get(original.id) if original is not None else None
        said = " ".join(texts_of(m) for m in [*call.followups, *([original] if original else [])])
        if job is not None:
            figures[f"became a job, {job['state']}"] += 1
        elif RESTARTED in said:
            figures["answered: restarted before it was taken"] += 1
        elif STOPPING in said:
            figures["answered: stopping (SIGTERM)"] += 1
        elif original is not None and (not original.loading or call.followups):
            figures["answered: refused or could not be taken"] += 1
        answered = bool(call.followups) or (original is not None and not original.loading and not original.deleted)
        if not answered:
            report.violation(
                f"interaction {call.id} ({kind} by {call.user.username}): acknowledged, never answered"
                + (f" (job {job['id']}, {job['state']})" if job else "")
            )

    # 2. Every message the bot claimed was answered.
    for ask in run.asks:
        figures["requests (mentions)"] += 1
        claim = claims.get(ask.message.id)
        replies = [m for m in bot_messages if m.reference is ask.message]
        if claim is None:
            if replies:
                figures["mentions answered without a claim (refused at once)"] += 1
            else:
                figures["mentions never seen (the bot was down)"] += 1
            continue
        figures["mentions claimed"] += 1
        if claim["job_id"] is not None:
            job = jobs.get(claim["job_id"])
            figures[f"mention became a job, {job['state'] if job else 'MISSING'}"] += 1
            if job is None:
                report.violation(f"message {ask.message.id}: claimed by job {claim['job_id']}, which does not exist")
        elif claim["answered_at"] is not None:
            figures["mention answered without a job"] += 1
        else:
            report.violation(
                f"message {ask.message.id} by {ask.member.user.username}: claimed, neither a job nor answered"
            )
        if not replies:
            report.violation(f"message {ask.message.id} by {ask.member.user.username}: claimed, the bot never replied")

    # 3. Jobs: finished, delivered once, their ledger rows exact, one usage row each.
    for job_id, job in jobs.items():
        state = job["state"]
        figures[f"jobs {state}"] += 1
        weight = job["weight"]
        tasks = w.api.tasks_for(job_id)
        figures["ToAPIs tasks"] += len(tasks)
        if len(tasks) > 1:
            report.violation(f"job {job_id}: {len(tasks)} ToAPIs tasks ({', '.join(t.id for t in tasks)})")
        held = ledger[job_id]["images"] if job_id in ledger else None
        if held is None:
            report.violation(f"job {job_id}: no quota ledger row")
            continue
        if held > ledger[job_id]["reserved_images"]:
            report.violation(
                f"job {job_id}: holds {held} images, more than the {ledger[job_id]['reserved_images']} reserved"
            )
        delivered_by = carriers.get(job_id, [])
        if state not in ("completed", "failed"):
            report.violation(f"job {job_id}: left {state} after the quiet period")
            continue
        rows = usage.get(job_id, [])
        if len(rows) != 1:
            report.violation(f"job {job_id}: {len(rows)} usage-log rows")
        if state == "completed":
            figures["images delivered (weighted)"] += job["images_delivered"] * weight
            if len(delivered_by) != 1:
                report.violation(
                    f"job {job_id}: completed, its files in {len(delivered_by)} messages "
                    f"({', '.join(str(m.id) for m in delivered_by)})"
                )
            for message in delivered_by:
                sets = {tuple(a.id for a in v.attachments) for v in message.versions if v.attachments}
                if len(sets) > 1:
                    # A stop between the reply's edit with the files and the record of it: the next process edits
                    # the same reply again (generation/delivery.py: a repeated delivery is shown once). One message,
                    # one set of images for the member; counted, not a violation.
                    report.figures["results edited with their files again after a stop"] += 1
                    report.notes.append(f"job {job_id}: message {message.id} given its files {len(sets)} times")
                if len(message.attachments) != job["images_delivered"] and not message.deleted:
                    report.violation(
                        f"job {job_id}: {len(message.attachments)} files shown, {job['images_delivered']} recorded"
                    )
            if held != job["images_delivered"] * weight:
                report.violation(
                    f"job {job_id}: completed with {job['images_delivered']} image(s) x weight {weight}, "
                    f"the ledger holds {held}"
                )
            if rows and rows[0]["images"] != job["images_delivered"]:
                report.violation(f"job {job_id}: usage log says {rows[0]['images']} images")
            if tasks and job["task_id"] != tasks[0].id:
                report.violation(f"job {job_id}: stored task {job['task_id']}, ToAPIs made {tasks[0].id}")
        else:
            figures[f"failed: {job['error_code']}"] += 1
            if job["delivered_at"] is None:
                # Failures are stored, told, then noted as told (generation/failures.py, `tell`).
                report.violation(f"job {job_id}: failed ({job['error_code']}), its member never told")
            if delivered_by:
                report.violation(f"job {job_id}: failed, yet its files were posted in message {delivered_by[0].id}")
            task_failed = any(t.status == "failed" for t in tasks)
            if (not tasks or task_failed) and held != 0:
                report.violation(
                    f"job {job_id}: failed ({job['error_code']}) with "
                    + ("a failed task" if tasks else "no task")
                    + f", the ledger still holds {held}"
                )
            elif tasks and not task_failed and held != 0:
                report.notes.append(f"job {job_id}: failed ({job['error_code']}) after its task completed: {held} kept")
            figures["images held by failed jobs"] += held
    for job_id in ledger:
        if job_id not in jobs:
            report.violation(f"ledger row {job_id}: no such job (a reservation without a job)")
    for task in w.api.tasks.values():
        if task.client_business_id not in jobs:
            report.violation(f"ToAPIs task {task.id}: business id {task.client_business_id} is no job")

    # 4. No quota exceeded; the ledger is what was delivered plus what finished jobs keep.
    total = 0
    for server in servers:
        pool = sum(row["images"] for row in tables["quota_ledger"] if row["guild_id"] == server.guild.id)
        total += pool
        figures[f"server {server.guild.name}: ledger images"] = pool
        if pool > pool_limit:
            report.violation(f"server {server.guild.name}: {pool} images counted, limit {pool_limit}")
    per_member: Counter[tuple[int, int]] = Counter()
    for row in tables["quota_ledger"]:
        if row["forgiven_at"] is None:
            per_member[(row["guild_id"], row["user_id"])] += row["images"]
    for (guild_id, user_id), images in per_member.items():
        if images > MEMBER_LIMIT:
            report.violation(f"member {user_id} in {guild_id}: {images} images counted, limit {MEMBER_LIMIT}")
    if two_servers and total > GLOBAL_LIMIT:
        report.violation(f"overall: {total} images counted, limit {GLOBAL_LIMIT}")
    accounted = figures["images delivered (weighted)"] + figures["images held by failed jobs"]
    if total != accounted:
        report.violation(
            f"ledger holds {total} images; delivered {figures['images delivered (weighted)']} + kept "
            f"by failed jobs {figures['images held by failed jobs']} = {accounted}"
        )

    # 5. Nothing owed is left.
    for row in tables["owed_answers"]:
        report.violation(f"interaction {row['interaction_id']}: still owed an answer ({row['prompt']!r})")
    figures["submits sent"] = len(w.api.requests_to(Endpoint.SUBMIT))
    return report


# -- the run ------------------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def database(postgres: str | None, folder: Path) -> AsyncIterator[str]:
    if postgres is None:
        yield f"sqlite:///{folder / 'imagine.db'}"
        return
    async with postgres_schemas(postgres) as new_database:
        yield await new_database("chaos")


def build_servers(w: World, two: bool) -> list[Server]:
    first = w.channel.guild
    assert first is not None
    servers = [Server(first, w.channel, w.members, (first.id >> 22) % 2)]
    if two:
        # A second server on the other shard: each process serves one, and the overall limit spans both.
        while True:
            guild = w.discord.add_guild(f"Chaos {len(w.discord.guilds)}")
            if (guild.id >> 22) % 2 != servers[0].shard:
                break
        channel = guild.add_text_channel("chaos")
        half = MEMBERS // 2
        servers[0].members = w.members[:half]
        servers.append(
            Server(guild, channel, [guild.add_member(f"other{i}") for i in range(half)], 1 - servers[0].shard)
        )
    return servers


async def main(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    run = Run(args.seed)
    fine = Timeline.simple(queued=0.5, running=3.0, progress=(20, 60, 90))
    async with world(MEMBERS, timeline=fine, limits=STRICT) as w:
        for word, timeline in BEHAVIOURS.items():
            w.api.on_prompt(f" {word}:", timeline)
        two = args.postgres is not None
        servers = build_servers(w, two)
        async with database(args.postgres, w.folder) as url:
            base = imagine_env(
                w,
                DATABASE_URL=url,
                MAX_CONCURRENT_JOBS="6",
                DEFAULT_MEMBER_DAILY_LIMIT=str(MEMBER_LIMIT),
                DEFAULT_SERVER_DAILY_LIMIT=str(args.pool),
                GLOBAL_DAILY_LIMIT=str(GLOBAL_LIMIT) if two else "none",
                TOAPIS_POLL_INTERVAL="0.5",
                PROGRESS_EDIT_INTERVAL="1",
                LOG_LEVEL="INFO",
            )
            envs = [base | {"SHARD_COUNT": "2", "SHARD_IDS": str(s.shard)} for s in servers] if two else [base]
            bots = Bots(w, run, envs, Path(args.logs) / f"seed-{args.seed}")
            try:
                for index in range(len(envs)):
                    await bots.start(index)
                await w.discord.wait_for(lambda: w.discord.global_commands, 60, what="the commands")
                print(f"# seed {args.seed}: load for {args.duration:.0f} s", file=sys.stderr)
                await asyncio.gather(
                    load(w, run, servers, rng, args.duration, args.rate), crashes(bots, run, rng, args.duration)
                )
                # The last crash, with requests just sent, then the quiet period.
                for _ in range(3):
                    await one_request(w, run, servers, random.Random(rng.random()), 10_000 + _)
                await asyncio.sleep(rng.uniform(0.2, 1.5))
                await bots.crash(rng, signal.SIGKILL)
                w.api.clear_faults()
                took = await settled_database(url, args.settle)
                # Late answers (owed ones go out in the minute's sweep) and the last edits.
                await asyncio.sleep(3)
                print(f"# settled {took:.0f} s after the last restart", file=sys.stderr)
                codes = await bots.stop_all()
                if any(code != 0 for code in codes):
                    run.kills.append((run.at(), f"final SIGTERM exit codes {codes}"))
            finally:
                for process in bots.live:
                    if process is not None:
                        await process.stop()
                bots.save_logs()
            tables = await read_tables(url)
        report = check(w, run, servers, tables, two, args.pool)
    tracebacks = sum(1 for p in run.processes for line in p.lines if "Traceback" in line)
    print_summary(args, run, report, tracebacks)
    return 1 if report.violations else 0


def print_summary(args: argparse.Namespace, run: Run, report: Report, tracebacks: int) -> None:
    print(
        f"\nChaos run, seed {args.seed}, {'PostgreSQL, two processes' if args.postgres else 'SQLite'}, "
        f"{args.duration:.0f} s of load, pool {args.pool}, load average {os.getloadavg()[0]:.1f}"
    )
    for at, what in run.kills:
        print(f"  {at:6.1f} s  {what}")
    print(f"  faults armed: {dict(run.faults)}")
    if run.refused_by_client:
        print(f"  not sent (the client refused): {dict(run.refused_by_client)}")
    for name, value in sorted(report.figures.items()):
        print(f"  {name}: {value}")
    print(f"  tracebacks in the bot's output: {tracebacks} (logs in {args.logs})")
    for note in report.notes:
        print(f"  note: {note}")
    print(f"VIOLATIONS: {len(report.violations)}")
    for violation in report.violations:
        print(f"  ✗ {violation}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=float, default=75.0, help="seconds of load")
    parser.add_argument("--rate", type=float, default=3.0, help="requests a second, on average")
    parser.add_argument("--settle", type=float, default=240.0, help="at most this long for the quiet period")
    parser.add_argument("--pool", type=int, default=SERVER_LIMIT, help="each server's images a day")
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL server: a fresh schema, two processes")
    parser.add_argument("--logs", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "imagine-chaos"))
    sys.exit(asyncio.run(main(parser.parse_args())))

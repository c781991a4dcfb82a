"""What a busy server costs the bot: `python bench/run.py` prints one table (each figure the median of 3 runs).

The real bot (`python bot.py`) runs as a subprocess against the loopback fakes of Discord and ToAPIs, served by
this process; `MAX_CONCURRENT_JOBS` is above the load, so jobs are in flight rather than queued. Measured:

- acknowledgement latency (interaction dispatched -> deferred callback received by the fake), p50 and p99, at
  1, 50 and 200 concurrent /imagine, for Imagine and for a minimal discord.py bot that only defers (the floor);
- overhead per job with 200 jobs in flight: delivery (the reply edited with the files) minus the moment the bot
  could know the task had completed (the first look-up answered after it completed);
- task look-ups per job for a 30-second task and reply edits per job, with time scaled down 10x (a 3 s task,
  0.5 s poll interval, 0.2 s edit interval: the counts depend only on the ratios);
- peak RSS of the bot process with 200 jobs in flight, each with two 1 MB results;
- storage: quota reservations per second with 50 members at once, and usage rows written per second;
- bursts (bench/bursts.py): the acknowledgement of 20 bursts of 10, 30 and 50 /imagine, Imagine and the minimal
  bot side by side, of the first burst after connecting, and of bursts while 30 jobs are in flight; and 100 tasks
  completing within one second (`--only bursts` runs these alone).

Timing figures are medians and ratios on a shared, noisy machine: compare them, do not read them to the
millisecond.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage.quotas import OperatorDefaults  # noqa: E402
from storage.store import Storage  # noqa: E402
from storage.usage import UsageEntry  # noqa: E402
from tests.e2e.harness import ScriptProcess  # noqa: E402
from tests.fakes._png import solid_png  # noqa: E402
from tests.fakes.discord import FakeChannel, FakeDiscord, FakeMember, InteractionRecord  # noqa: E402
from tests.fakes.toapis import Endpoint, FakeToAPIs, Step, Timeline  # noqa: E402

BOT = ROOT / "bot.py"
MINIMAL_BOT = ROOT / "tests" / "e2e" / "minimal_bot.py"
RUNS = 3
LOAD = 200
# Between two requests one at a time: long enough for the previous one's admission and job to be under way.
IDLE_GAP = 0.3
SCALE = 10  # the look-up and edit figures run 10x faster than real time
# The fake Discord's rate limit per bucket: Discord's own (50 a second), or so generous that the fake is not what
# is measured (the older figures, made before the strict one was used).
STRICT = (50, 1.0)
GENEROUS = (1_000_000, 1.0)


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class World:
    api: FakeToAPIs
    discord: FakeDiscord
    channel: FakeChannel
    members: list[FakeMember]
    folder: Path


@contextlib.asynccontextmanager
async def world(
    members: int, *, timeline: Timeline | None = None, result_bytes: int = 0, limits: tuple[int, float] = GENEROUS
) -> AsyncIterator[World]:
    async with (
        FakeToAPIs(timeline=timeline) as api,
        FakeDiscord(ack_deadline=60.0, rate_limit=limits) as discord,
    ):
        api.result_min_bytes = result_bytes
        # The fake renders a distinct PNG per result (several ms of this process's CPU each); the bench needs no
        # distinct pixels, so every result of a size is the same bytes, rendered once: the fakes are not measured.
        api.result_png = functools.cache(lambda task_id, index: _one_png(api, task_id))  # type: ignore[method-assign]
        guild = discord.add_guild("Bench")
        channel = guild.add_text_channel("bench")
        people = [guild.add_member(f"member{i}") for i in range(members)]
        with tempfile.TemporaryDirectory(prefix="imagine-bench-") as folder:
            yield World(api, discord, channel, people, Path(folder))


def _one_png(api: FakeToAPIs, task_id: str) -> bytes:
    task = api.tasks[task_id]
    return solid_png(task.width, task.height, (90, 120, 200), min_bytes=api.result_min_bytes)


def imagine_env(w: World, **extra: str) -> dict[str, str]:
    return (
        w.discord.bot_env()
        | {
            "TOAPIS_API_KEY": w.api.api_key,
            "TOAPIS_BASE_URL": w.api.base_url,
            "DATABASE_URL": f"sqlite:///{w.folder / 'imagine.db'}",
            "MAX_CONCURRENT_JOBS": str(LOAD + 50),
            "DEFAULT_MEMBER_DAILY_LIMIT": "none",
            "DEFAULT_SERVER_DAILY_LIMIT": "none",
            "TOAPIS_POLL_INTERVAL": "0.5",
            "PROGRESS_EDIT_INTERVAL": "0.2",
            "LOG_LEVEL": "WARNING",
            "GLOBAL_DAILY_LIMIT": "none",
            # The fakes hold no account limits: what is measured is the bot, so its own pacing of submits (made
            # for ToAPIs' 5 a second) does not spread the loads these figures send at once.
            "TOAPIS_SUBMITS_PER_MINUTE": "1000000",
        }
        | extra
    )


@contextlib.asynccontextmanager
async def bot_process(w: World, script: Path, env: dict[str, str]) -> AsyncIterator[ScriptProcess]:
    sessions = len(w.discord.gateway_sessions)
    async with ScriptProcess.start(script, env=env, cwd=w.folder) as process:
        await w.discord.wait_for_session(60, after=sessions)
        yield process


async def invoke_all(w: World, count: int, prompt: str, **options: Any) -> list[InteractionRecord]:
    return list(
        await asyncio.gather(
            *(
                w.discord.invoke_slash(
                    "imagine", {"prompt": f"{prompt} {i}", **options}, user=w.members[i], channel=w.channel
                )
                for i in range(count)
            )
        )
    )


async def acknowledged(w: World, calls: Sequence[InteractionRecord], timeout: float = 120) -> list[float]:
    await w.discord.wait_for(lambda: all(c.callback is not None for c in calls), timeout, what="every callback")
    return [c.response_time for c in calls if c.response_time is not None]


# -- acknowledgement latency ------------------------------------------------------------------------------------


async def ack_latencies(script: Path, concurrency: int, gap: float = 0.0) -> list[float]:
    """One at a time (`concurrency` 1), each request is sent once the previous one is acknowledged, `gap`
    seconds later: with no gap it meets the previous request's admission and job on the loop; with a gap of a
    few hundred milliseconds that work is over and the bot is idle, as between the requests of a real server."""
    async with world(LOAD) as w:
        env = imagine_env(w) if script == BOT else w.discord.bot_env() | {"MINIMAL_BOT_DEFER_ONLY": "1"}
        async with bot_process(w, script, env):
            if concurrency == 1:
                latencies = []
                for i in range(30):
                    (call,) = await invoke_all_from(w, [w.members[i]], "a quiet request")
                    latencies += await acknowledged(w, [call])
                    await asyncio.sleep(gap)
                return latencies
            calls = await invoke_all(w, concurrency, "a busy request")
            return await acknowledged(w, calls)


async def invoke_all_from(w: World, members: Sequence[FakeMember], prompt: str) -> list[InteractionRecord]:
    return [await w.discord.invoke_slash("imagine", {"prompt": prompt}, user=m, channel=w.channel) for m in members]


# -- jobs in flight -----------------------------------------------------------------------------------------------


def delivered(call: InteractionRecord) -> bool:
    return call.original is not None and bool(call.original.attachments)


def read_peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


async def overheads_in_flight() -> list[float]:
    """200 jobs in flight, completing over 4 s: seconds from "the bot could know" to "delivered", per job."""
    async with world(LOAD) as w:
        w.api.queue_timeline(
            *(Timeline.simple(queued=1.0, running=4.0 + 8.0 * i / LOAD, progress=(20, 50, 80)) for i in range(LOAD))
        )
        # The default edit interval, and polls every 2 s: 200 jobs then make about 100 look-ups and 100 edits a
        # second, as a busy bot would. (The 10x-faster settings of the other figures would make that 1,400.)
        env = imagine_env(w, TOAPIS_POLL_INTERVAL="2", PROGRESS_EDIT_INTERVAL="2")
        async with bot_process(w, BOT, env):
            calls = await invoke_all(w, LOAD, "a crowded request", n=2)
            await w.discord.wait_for(lambda: all(delivered(c) for c in calls), 240, what="every delivery")
        # Both fakes run in this process: bring the Discord fake's clock onto time.monotonic().
        offset = time.monotonic() - w.discord.state.now()
        lookups = w.api.requests_to(Endpoint.LOOKUP)
        overheads = []
        for call in calls:
            assert call.original is not None
            delivered_at = next(v.time for v in call.original.versions if v.attachments) + offset
            prompt = call.payload["data"]["options"][0]["value"]
            task = next(t for t in w.api.tasks.values() if t.prompt == prompt)
            ended = task.created + task.ended_after()
            known = min(r.time for r in lookups if r.path.endswith(task.id) and r.time >= ended)
            overheads.append(delivered_at - known)
        return overheads


async def peak_rss_in_flight() -> int:
    """Peak RSS of the bot with 200 jobs in flight that all complete together, each with two 1 MB results."""
    timeline = Timeline.simple(queued=0.5, running=3.0, progress=(20, 50, 80))
    async with (
        world(LOAD, timeline=timeline, result_bytes=1_000_000) as w,
        bot_process(w, BOT, imagine_env(w)) as process,
    ):
        calls = await invoke_all(w, LOAD, "a heavy request", n=2)
        await w.discord.wait_for(lambda: all(delivered(c) for c in calls), 240, what="every delivery")
        return read_peak_rss(process.pid)


@dataclass
class Chatter:
    lookups_per_job: float
    edits_per_job: float
    min_edit_gap: float


async def lookups_and_edits() -> Chatter:
    """A 30 s task at 5 s polls and 2 s edits, run 10x faster: 3 s task, 0.5 s polls, 0.2 s edits."""
    steps = tuple(Step(0.3 * i, "in_progress", 10 * i) for i in range(1, 10))
    timeline = Timeline(steps=(Step(0.0, "queued", 0), *steps), ends_at=30 / SCALE)
    async with world(10, timeline=timeline) as w:
        env = imagine_env(w, TOAPIS_POLL_INTERVAL=str(5 / SCALE), PROGRESS_EDIT_INTERVAL=str(2 / SCALE))
        async with bot_process(w, BOT, env):
            calls = await invoke_all(w, 10, "a slow request")
            await w.discord.wait_for(lambda: all(delivered(c) for c in calls), 60, what="every delivery")
        lookups = w.api.requests_to(Endpoint.LOOKUP)
        per_job = [sum(1 for r in lookups if r.path.endswith(task.id)) for task in w.api.tasks.values()]
        edits = []
        gaps = []
        for call in calls:
            assert call.original is not None
            edits.append(len(call.original.versions) - 1)  # the first version is the defer
            # Progress edits are throttled; the result replaces them as soon as it is ready.
            progress = [v.time for v in call.original.versions[1:] if not v.attachments]
            gaps += [later - earlier for earlier, later in itertools.pairwise(progress)]
        return Chatter(median(per_job), median(edits), min(gaps) if gaps else float("nan"))


# -- storage ---------------------------------------------------------------------------------------------------


async def storage_rates() -> tuple[float, float]:
    """Quota reservations per second with 50 members at once; usage rows written per second (one per job)."""
    with tempfile.TemporaryDirectory(prefix="imagine-bench-") as folder:
        defaults = OperatorDefaults(member_daily=1_000_000, server_daily=1_000_000, global_daily=None)
        async with await Storage.open(f"sqlite:///{folder}/bench.db", defaults=defaults) as store:
            members, each = 50, 20

            async def member(user: int) -> None:
                for i in range(each):
                    await store.quotas.reserve(f"job-{user}-{i}", 1, user, (), 1)

            started = time.perf_counter()
            await asyncio.gather(*(member(user) for user in range(members)))
            reservations = members * each / (time.perf_counter() - started)

            now = datetime.now(UTC)
            rows = 2_000
            started = time.perf_counter()
            for i in range(rows):
                await store.usage.record(**_usage_row(i, now))
            usage = rows / (time.perf_counter() - started)
    return reservations, usage


def _usage_row(index: int, now: datetime) -> dict[str, Any]:
    entry = UsageEntry(
        job_id=f"bench-{index}",
        guild_id=1,
        channel_id=2,
        user_id=index % 1000,
        prompt=f"prompt {index}",
        model="gpt-image-2",
        n=1,
        images=1,
        reference_count=0,
        task_id=f"task_img_{index}",
        status="completed",
        error=None,
        created_at=now,
        finished_at=now,
    )
    return entry.__dict__


# -- the table ---------------------------------------------------------------------------------------------------


async def median_of_runs(runs: int, measure: Callable[[], Any]) -> list[Any]:
    return [await measure() for _ in range(runs)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


Row = tuple[str, str, str]


async def main(runs: int, only: str) -> None:
    started = time.perf_counter()
    rows: list[Row] = []
    if only in ("all", "acks"):
        rows += await ack_rows(runs, started)
    if only in ("all", "bursts"):
        from bench.bursts import burst_rows

        rows += await burst_rows(runs, started)
    if only in ("all", "jobs"):
        rows += await job_rows(runs, started)
    if only in ("all", "lookups"):
        from bench.lookup_bench import lookup_rows

        rows += lookup_rows()
    if only in ("all", "webhooks"):
        from bench.webhook_bench import webhook_rows

        rows += await webhook_rows(runs, started)
    print_table(f"Imagine benchmarks ({runs} runs each, medians)", rows, started)


def print_table(title: str, rows: Sequence[Row], started: float) -> None:
    """The rows as a Markdown table, under a line naming the machine and its load."""
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\n{title} on {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load}, {time.perf_counter() - started:.0f} s in all\n"
    )
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print(f"| {'measure'.ljust(width)} | {'figure'.ljust(value_width)} | note |")
    print(f"|{'-' * (width + 2)}|{'-' * (value_width + 2)}|------|")
    for measure, figure, note in rows:
        print(f"| {measure.ljust(width)} | {figure.ljust(value_width)} | {note} |")


async def ack_rows(runs: int, started: float) -> list[Row]:
    rows: list[Row] = []
    for concurrency, gap in ((1, 0.0), (1, IDLE_GAP), (50, 0.0), (LOAD, 0.0)):
        figures: dict[str, tuple[float, float]] = {}
        for name, script in (("imagine", BOT), ("minimal", MINIMAL_BOT)):
            samples = [await ack_latencies(script, concurrency, gap) for _ in range(runs)]
            figures[name] = (
                median([percentile(s, 0.5) for s in samples]),
                median([percentile(s, 0.99) for s in samples]),
            )
        (ip50, ip99), (mp50, mp99) = figures["imagine"], figures["minimal"]
        rows.append(
            (
                f"ack latency, {concurrency} concurrent{f', {gap * 1000:.0f} ms apart' if gap else ''}: p50 / p99",
                f"{ms(ip50)} / {ms(ip99)} (minimal bot {ms(mp50)} / {ms(mp99)})",
                f"p99 ratio {ip99 / mp99:.2f}" + (" (target <= 1.5)" if concurrency == LOAD else ""),
            )
        )
        print(f"# ack {concurrency}: done after {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return rows


async def job_rows(runs: int, started: float) -> list[Row]:
    rows: list[Row] = []
    overheads = [await overheads_in_flight() for _ in range(runs)]
    overhead_p50 = median([median(o) for o in overheads])
    overhead_p99 = median([percentile(o, 0.99) for o in overheads])
    rows.append(
        (
            "overhead per job, 200 in flight: median / p99",
            f"{ms(overhead_p50)} / {ms(overhead_p99)}",
            "target median < 50 ms",
        )
    )
    rss = median([await peak_rss_in_flight() for _ in range(runs)])
    rows.append(("peak RSS, 200 jobs in flight, 2 x 1 MB results each", f"{rss / 2**20:.0f} MiB", "target < 250 MB"))
    print(f"# in flight: done after {time.perf_counter() - started:.0f} s", file=sys.stderr)

    # Look-ups per task are the look-up schedule's rows (bench/lookup_bench.py); this run counts the edits.
    chatter = [await lookups_and_edits() for _ in range(runs)]
    rows.append(
        (
            "reply edits per job, same task at 2 s edit interval",
            f"{median([c.edits_per_job for c in chatter]):.1f}, closest two progress edits "
            f"{median([c.min_edit_gap for c in chatter]) * SCALE:.2f} s apart",
            "target: >= 2 s apart",
        )
    )

    rates = [await storage_rates() for _ in range(runs)]
    rows.append(("quota reservations per second, 50 members at once", f"{median([r[0] for r in rates]):,.0f}/s", ""))
    rows.append(("usage rows written per second (one per job)", f"{median([r[1] for r in rates]):,.0f}/s", ""))

    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument(
        "--only",
        choices=("all", "acks", "bursts", "jobs", "lookups", "webhooks"),
        default="all",
        help="one group of rows: acknowledgements one at a time and at once, bursts (of acknowledgements and of "
        "completions), jobs in flight, chatter and storage, the look-up schedule, or webhooks",
    )
    arguments = parser.parse_args()
    asyncio.run(main(arguments.runs, arguments.only))

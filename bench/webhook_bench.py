"""From a task's completion to the member's files, with webhooks: `python bench/webhook_bench.py` prints one table
(each figure the median of 3 runs).

The real bot (`python bot.py`) runs as a subprocess against the loopback fakes of Discord and ToAPIs (bench/run.py),
with TOAPIS_WEBHOOK_SECRET, WEBHOOK_PUBLIC_URL and WEBHOOK_PORT set; the fake ToAPIs calls the bot's receiver when
a task ends, as ToAPIs calls the operator's HTTPS proxy. TOAPIS_POLL_INTERVAL is 5 s (the default), so a safety
look-up comes only every 30 s: what is measured is the webhook's path (signature check, the event stored, the
follower woken, the look-up, the download, the reply edited with the files). Measured:

- one job at a time (20 jobs): from the moment the fake's task completes to the moment the fake Discord has the
  reply with its files, median and 90th percentile (target: median <= 100 ms);
- 30 jobs in flight whose tasks complete spread over 3 s: the same;
- for comparison, the same 30 jobs with webhooks off, found by polling every 5 s (the default);
- with `--postgres URL`: two bot processes on PostgreSQL, one per shard of two, every webhook reaching the
  process that does not hold the job (the operator's proxy sent it there), which records it and tells the holder
  through PostgreSQL's NOTIFY; the holder looks the task up and delivers. One job at a time and 30 in flight.

Timing figures are medians and ratios on a shared, noisy machine: compare them, do not read them to the
millisecond.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402
    BOT,
    Row,
    World,
    bot_process,
    delivered,
    imagine_env,
    invoke_all,
    median,
    ms,
    percentile,
    print_table,
    world,
)
from bench.storage_bench import postgres_schemas  # noqa: E402
from tests.e2e.harness import ScriptProcess  # noqa: E402
from tests.fakes.discord import InteractionRecord  # noqa: E402
from tests.fakes.toapis import Timeline  # noqa: E402

RUNS = 3
SECRET = "whsec_bench_0123456789abcdef0123456789"
PUBLIC_URL = "https://imagine.example.test/toapis/webhook"
ONE_AT_A_TIME = 20
IN_FLIGHT = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def completion_to_files(w: World, calls: list[InteractionRecord]) -> list[float]:
    """Seconds from each task's completion in the fake to the reply with files in the fake Discord."""
    api, discord = w.api, w.discord
    # Both fakes run in this process: bring the Discord fake's clock onto time.monotonic().
    offset = time.monotonic() - discord.state.now()
    lags = []
    for call in calls:
        assert call.original is not None
        posted = next(v.time for v in call.original.versions if v.attachments) + offset
        prompt = call.payload["data"]["options"][0]["value"]
        task = next(t for t in api.tasks.values() if t.prompt == prompt)
        lags.append(posted - (task.created + task.ended_after()))
    return lags


@contextlib.asynccontextmanager
async def two_processes(w: World, env: dict[str, str], postgres: str) -> AsyncIterator[None]:
    """The bot as two processes on one PostgreSQL schema, one per shard of two, the fake ToAPIs' webhooks all
    going to the process that does not run the bench's server: every one reaches the process without the lease."""
    assert w.channel.guild is not None
    holder_shard = (w.channel.guild.id >> 22) % 2
    to_other, unused = free_port(), free_port()
    w.api.webhooks.configure(url=PUBLIC_URL, secret=SECRET, forward_to=f"http://127.0.0.1:{to_other}")
    async with postgres_schemas(postgres) as new_database:
        shared = env | {"DATABASE_URL": await new_database("webhooks"), "SHARD_COUNT": "2"}
        # The holder first: it creates the schema, and the other process finds it current.
        async with (
            bot_process(w, BOT, shared | {"SHARD_IDS": str(holder_shard), "WEBHOOK_PORT": str(unused)}),
            bot_process(w, BOT, shared | {"SHARD_IDS": str(1 - holder_shard), "WEBHOOK_PORT": str(to_other)}),
        ):
            yield


async def measure(*, webhooks: bool, jobs: int, together: bool, postgres: str | None = None) -> list[float]:
    async with world(max(jobs, 1)) as w:
        spread = 3.0 if together else 0.0
        w.api.queue_timeline(
            *(
                Timeline.simple(queued=0.3, running=1.0 + spread * i / max(jobs - 1, 1), progress=(30, 60, 90))
                for i in range(jobs)
            )
        )
        env = imagine_env(w, TOAPIS_POLL_INTERVAL="5", PROGRESS_EDIT_INTERVAL="2")
        if webhooks and postgres is None:
            port = free_port()
            w.api.webhooks.configure(url=PUBLIC_URL, secret=SECRET, forward_to=f"http://127.0.0.1:{port}")
            env |= {"TOAPIS_WEBHOOK_SECRET": SECRET, "WEBHOOK_PUBLIC_URL": PUBLIC_URL, "WEBHOOK_PORT": str(port)}
        processes: contextlib.AbstractAsyncContextManager[ScriptProcess | None]
        if postgres is not None:
            env |= {"TOAPIS_WEBHOOK_SECRET": SECRET, "WEBHOOK_PUBLIC_URL": PUBLIC_URL}
            processes = two_processes(w, env, postgres)
        else:
            processes = bot_process(w, BOT, env)
        async with processes:
            if together:
                calls = await invoke_all(w, jobs, "a hooked request")
                await w.discord.wait_for(lambda: all(delivered(c) for c in calls), 120, what="every delivery")
            else:
                calls = []
                for i in range(jobs):
                    call = await w.discord.invoke_slash(
                        "imagine", {"prompt": f"a lone request {i}"}, user=w.members[0], channel=w.channel
                    )
                    await w.discord.wait_for(functools.partial(delivered, call), 60, what="the delivery")
                    calls.append(call)
        if webhooks:
            assert all(d.status == 200 for d in w.api.webhooks.deliveries), "a webhook was refused"
        return completion_to_files(w, calls)


async def webhook_rows(runs: int, started: float, postgres: str | None = None) -> list[Row]:
    """From a task's completion to the member's files, with webhooks and, for comparison, without; with
    `postgres`, also across two processes."""
    rows: list[Row] = []
    target = "target median <= 100 ms"
    cases: list[tuple[str, bool, int, bool, str, str | None]] = [
        ("webhooks, one job at a time", True, ONE_AT_A_TIME, False, target, None),
        (
            f"webhooks, {IN_FLIGHT} in flight completing over 3 s",
            True,
            IN_FLIGHT,
            True,
            "target median <= 100 ms",
            None,
        ),
        (f"polling every 5 s (webhooks off), {IN_FLIGHT} in flight", False, IN_FLIGHT, True, "for comparison", None),
    ]
    if postgres is not None:
        across = "two processes (PostgreSQL), each webhook at the one without the job"
        cases += [
            (f"{across}, one job at a time", True, ONE_AT_A_TIME, False, "", postgres),
            (f"{across}, {IN_FLIGHT} in flight completing over 3 s", True, IN_FLIGHT, True, "", postgres),
        ]
    for name, webhooks, jobs, together, note, database in cases:
        samples = [
            await measure(webhooks=webhooks, jobs=jobs, together=together, postgres=database) for _ in range(runs)
        ]
        p50 = median([median(s) for s in samples])
        p90 = median([percentile(s, 0.9) for s in samples])
        rows.append((f"completion to files, {name}: median / p90", f"{ms(p50)} / {ms(p90)}", note))
        print(f"# {name}: done after {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return rows


async def main(runs: int, postgres: str | None) -> None:
    started = time.perf_counter()
    rows = await webhook_rows(runs, started, postgres)
    print_table(f"Webhook benchmark ({runs} runs each, medians)", rows, started)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--postgres", metavar="URL", help="also across two processes on this PostgreSQL database")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.runs, arguments.postgres))

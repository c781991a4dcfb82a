"""What the owed answer costs: `python bench/owed_bench.py` prints one table (each figure the median of 3 runs).

Every request the bot defers is recorded at once (docs/guarantees.md, "Every acknowledged request"): one small
INSERT right after the deferral, deleted by admission in the job's transaction. Measured:

- acknowledgement latency (interaction dispatched -> deferred callback received by the fake), p50 and p99, at
  1, 50 and 200 concurrent /imagine, for the bot before the record (`--before`, a git revision, checked out
  into a temporary worktree), the bot now, and the minimal discord.py bot that only defers (the floor);
- the record alone: writes per second and the latency of one write (record, then settle), on an SQLite file
  and, with TEST_POSTGRES_URL, on PostgreSQL.

Timing figures are medians and ratios on a shared, noisy machine: compare them, do not read them to the
millisecond.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402
    BOT,
    LOAD,
    MINIMAL_BOT,
    acknowledged,
    bot_process,
    imagine_env,
    invoke_all,
    invoke_all_from,
    median,
    ms,
    percentile,
    print_table,
    world,
)
from storage.clock import utc_now  # noqa: E402
from storage.owed_answers import OwedAnswer  # noqa: E402
from storage.store import Storage  # noqa: E402

RUNS = 3
BEFORE = "2486b6e~1"  # the last commit without the record
WRITES = 2000


@contextlib.contextmanager
def checkout(revision: str) -> Iterator[Path]:
    """The bot as it was at `revision`, in a temporary git worktree."""
    folder = Path(tempfile.mkdtemp(prefix="imagine-before-"))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(folder), revision], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)], check=False)


async def ack_latencies(script: Path, concurrency: int) -> list[float]:
    async with world(LOAD) as w:
        minimal = script == MINIMAL_BOT
        env = w.discord.bot_env() | {"MINIMAL_BOT_DEFER_ONLY": "1"} if minimal else imagine_env(w)
        async with bot_process(w, script, env):
            if concurrency == 1:
                latencies: list[float] = []
                for i in range(30):
                    (call,) = await invoke_all_from(w, [w.members[i]], "a quiet request")
                    latencies += await acknowledged(w, [call])
                return latencies
            calls = await invoke_all(w, concurrency, "a busy request")
            return await acknowledged(w, calls)


def owed(interaction_id: int) -> OwedAnswer:
    return OwedAnswer(
        interaction_id=interaction_id,
        guild_id=1,
        channel_id=2,
        user_id=3,
        application_id=4,
        interaction_token="t" * 200,  # an interaction token's length
        token_expires_at=utc_now() + timedelta(minutes=15),
        reply_message_id=5,
        prompt="a lighthouse at dusk, in the style of an old postcard, " * 4,
        options={"kind": "imagine", "n": 2, "aspect": "16:9", "resolution": "2k", "attachments": 4},
        locale="en-US",
        channel_postable=True,
    )


async def record_rates(url: str) -> tuple[float, float]:
    """Writes per second (record then settle, one after the other) and the median latency of one record."""
    async with await Storage.open(url) as store:
        repository = store.owed_answers
        latencies = []
        started = time.perf_counter()
        for i in range(WRITES):
            before = time.perf_counter()
            await repository.record(owed(i), owner="bench", ttl_seconds=60)
            latencies.append(time.perf_counter() - before)
            await repository.settle(i)
        elapsed = time.perf_counter() - started
    return WRITES / elapsed, median(latencies)


async def main(runs: int, before: str) -> None:
    started = time.perf_counter()
    rows: list[tuple[str, str, str]] = []
    with checkout(before) as old:
        scripts = {"minimal": MINIMAL_BOT, "before": old / "bot.py", "now": BOT}
        for concurrency in (1, 50, LOAD):
            figures = {}
            for name, script in scripts.items():
                samples = [await ack_latencies(script, concurrency) for _ in range(runs)]
                figures[name] = (
                    median([percentile(s, 0.5) for s in samples]),
                    median([percentile(s, 0.99) for s in samples]),
                )
            (mp50, mp99), (bp50, bp99), (np50, np99) = figures["minimal"], figures["before"], figures["now"]
            rows.append(
                (
                    f"ack latency, {concurrency} concurrent: p50 / p99",
                    f"before {ms(bp50)} / {ms(bp99)}, now {ms(np50)} / {ms(np99)}, minimal bot {ms(mp50)} / {ms(mp99)}",
                    f"p99 ratio to minimal: before {bp99 / mp99:.2f}, now {np99 / mp99:.2f}",
                )
            )
            print(f"# ack {concurrency}: done after {time.perf_counter() - started:.0f} s", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="imagine-owed-") as folder:
        urls = {"SQLite file": f"sqlite:///{folder}/bench.db"}
        if os.environ.get("TEST_POSTGRES_URL"):
            urls["PostgreSQL"] = os.environ["TEST_POSTGRES_URL"]
        for name, url in urls.items():
            rates = [await record_rates(url) for _ in range(runs)]
            rows.append(
                (
                    f"owed-answer record, {name}: writes/s, one record",
                    f"{median([r[0] for r in rates]):,.0f}/s (record + settle), {ms(median([r[1] for r in rates]))}",
                    "",
                )
            )

    print_table(f"Owed-answer benchmarks ({runs} runs each, medians)", rows, started)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--before", default=BEFORE, help="the git revision to compare with (default: %(default)s)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.runs, arguments.before))

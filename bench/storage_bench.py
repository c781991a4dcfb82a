"""Storage benchmark: usage-log writes, the per-member period summary, the CSV export, quota reservations.

Run from the repository root: `python bench/storage_bench.py` (`--runs N` to change the 3 runs). Every
figure is the median of the runs, each on a fresh SQLite file in a temporary folder (WAL, synchronous=NORMAL,
as the bot runs it).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage.database import Database
from storage.quotas import OperatorDefaults, Period, QuotaRepository, RuleScope
from storage.usage import UsageEntry, UsageLog

GUILD = 123_456_789_012_345_678
MEMBERS = 1_000
ROWS = 10_000
BATCH = 100
BACKGROUND_ROWS = 90_000  # other guilds and older months: the summary must not read them
RESERVING_MEMBERS = 50
RESERVATIONS_EACH = 40
MONTH_START = datetime(2026, 3, 1, tzinfo=UTC)
QUOTA_NOW = datetime(2026, 3, 30, 12, tzinfo=UTC)
FILL_PER_DAY = 250


@dataclass(frozen=True)
class Figures:
    """One run's measurements, in seconds (rates are derived when printing)."""

    insert_one_by_one: float
    insert_batched: float
    summary: float
    export: float
    reservations: float
    reservations_busy: float


def usage_entry(index: int, guild_id: int = GUILD, start: datetime = MONTH_START) -> UsageEntry:
    created = start + timedelta(seconds=index * 97 % (28 * 86_400))
    return UsageEntry(
        job_id=f"{guild_id}-{index:07d}",
        guild_id=guild_id,
        channel_id=555,
        user_id=index % MEMBERS,
        prompt=f"a watercolour of lighthouse number {index}, in the rain, with gulls",
        model="gpt-image-2",
        size="1024x1024",
        n=1 + index % 4,
        images=1 + index % 4 if index % 20 else 0,
        reference_count=index % 2,
        task_id=f"task-{index}",
        status="completed" if index % 20 else "failed",
        error=None if index % 20 else "upstream_error: HTTP 500",
        created_at=created,
        finished_at=created + timedelta(seconds=40),
    )


async def timed(action: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


async def one_run(folder: Path, run: int) -> Figures:
    # One by one, as the bot writes them: one autocommitted upsert per finished job.
    async with await Database.open(f"sqlite:///{folder / f'single-{run}.db'}") as db:
        usage = UsageLog(db)

        async def insert_singly() -> None:
            for index in range(ROWS):
                entry = usage_entry(index)
                await usage.record(**{name: getattr(entry, name) for name in entry.__dataclass_fields__})

        insert_one_by_one = await timed(insert_singly)

    async with await Database.open(f"sqlite:///{folder / f'batched-{run}.db'}") as db:
        usage = UsageLog(db)

        async def insert_batched() -> None:
            for first in range(0, ROWS, BATCH):
                await usage.record_many(usage_entry(index) for index in range(first, first + BATCH))

        insert_batched_seconds = await timed(insert_batched)
        # Background the summary must skip: other guilds this month, and this guild's previous months.
        await usage.record_many(usage_entry(index, guild_id=GUILD + 1 + index % 30) for index in range(BACKGROUND_ROWS))
        await usage.record_many(
            usage_entry(ROWS + index, start=MONTH_START - timedelta(days=60)) for index in range(ROWS)
        )

        month_end = Period.MONTH.next_start(MONTH_START)

        async def summarise() -> None:
            summary = await usage.period_summary(GUILD, MONTH_START, month_end)
            assert len(summary) == MEMBERS, len(summary)

        await summarise()  # warm the page cache once, as a running bot has it
        summary_seconds = statistics.median([await timed(summarise) for _ in range(5)])

        async def export() -> None:
            out = io.BytesIO()
            count = await usage.export_csv(out, guild_id=GUILD, start=MONTH_START, end=month_end)
            assert count == ROWS, count

        export_seconds = await timed(export)

    async with await Database.open(f"sqlite:///{folder / f'quota-{run}.db'}") as db:
        # A clock the benchmark moves: late in a month, so a month-long pool has had time to fill.
        now = [QUOTA_NOW]
        quotas = QuotaRepository(
            db, OperatorDefaults(member_daily=25, server_daily=250, global_daily=1_000_000), lambda: now[0]
        )
        await quotas.set_rule(GUILD, RuleScope.SERVER, 1_000_000, Period.MONTH)
        await quotas.set_rule(GUILD, RuleScope.ROLE, 1_000, Period.WEEK, role_id=9)

        async def member(user_id: int, prefix: str) -> None:
            for index in range(RESERVATIONS_EACH):
                result = await quotas.reserve(f"{prefix}-{user_id}-{index}", GUILD, user_id, [9, 10, 11], 1)
                assert result.granted

        async def fifty_at_once(prefix: str) -> None:
            await asyncio.gather(*(member(user, prefix) for user in range(RESERVING_MEMBERS)))

        reservations = await timed(lambda: fifty_at_once("empty"))
        # Fill the month with what a busy guild reserves (250 a day), then measure again: the server pool's
        # sum now reads a month of ledger rows.
        for day in range(1, QUOTA_NOW.day):
            now[0] = QUOTA_NOW.replace(day=day)
            await asyncio.gather(
                *(quotas.reserve(f"fill-{day}-{i}", GUILD, 1_000 + i, [], 1) for i in range(FILL_PER_DAY))
            )
        now[0] = QUOTA_NOW
        reservations_busy = await timed(lambda: fifty_at_once("busy"))
        (pool,) = [usage for usage in await quotas.usage_for_member(GUILD, 0, [9]) if usage.scope is RuleScope.SERVER]
        assert pool.used == 2 * RESERVING_MEMBERS * RESERVATIONS_EACH + (QUOTA_NOW.day - 1) * FILL_PER_DAY, pool

    return Figures(
        insert_one_by_one, insert_batched_seconds, summary_seconds, export_seconds, reservations, reservations_busy
    )


async def main(runs: int) -> None:
    print(f"machine: {os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), {platform.machine()}")
    print(f"python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {platform.platform()}")
    results: list[Figures] = []
    with tempfile.TemporaryDirectory(prefix="imagine-bench-") as folder:
        for run in range(runs):
            results.append(await one_run(Path(folder), run))
            print(f"  run {run + 1}/{runs} done", flush=True)

    def median(name: str) -> float:
        return float(statistics.median(getattr(figures, name) for figures in results))

    single, batched = median("insert_one_by_one"), median("insert_batched")
    reserve = median("reservations")
    total_reservations = RESERVING_MEMBERS * RESERVATIONS_EACH
    print(f"medians of {runs} runs:")
    print(f"  usage log, {ROWS:,} inserts one by one:     {single:7.3f} s  ({ROWS / single:8,.0f} rows/s)")
    print(
        f"  usage log, {ROWS:,} inserts in batches of {BATCH}: {batched:7.3f} s  ({ROWS / batched:8,.0f} rows/s,"
        f" {single / batched:.1f}x)"
    )
    print(
        f"  period summary, {MEMBERS:,} members ({ROWS:,} rows in the month, {BACKGROUND_ROWS + ROWS:,} others):"
        f" {median('summary') * 1000:7.2f} ms"
    )
    print(f"  CSV export, {ROWS:,} rows:                  {median('export'):7.3f} s")
    busy = median("reservations_busy")
    print(
        f"  quota reservations, {RESERVING_MEMBERS} members at once, empty ledger: {total_reservations:,} in"
        f" {reserve:.3f} s ({total_reservations / reserve:,.0f} reservations/s)"
    )
    print(
        f"  quota reservations, {RESERVING_MEMBERS} members at once, month pool holding"
        f" {(QUOTA_NOW.day - 1) * FILL_PER_DAY:,} reservations: {total_reservations:,} in {busy:.3f} s"
        f" ({total_reservations / busy:,.0f} reservations/s)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(main(parser.parse_args().runs))

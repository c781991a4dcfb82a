"""Storage benchmark: usage-log writes, the per-member period summary, the CSV export, quota reservations.

Run from the repository root: `python bench/storage_bench.py` (`--runs N` to change the 3 runs). Every
figure is the median of the runs, each on a fresh SQLite file in a temporary folder (WAL, synchronous=NORMAL,
as the bot runs it). With `--postgres postgresql://...` the same figures are measured on PostgreSQL too, each
run in fresh schemas of that database (created, then dropped).
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
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage.connect import open_database
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


NewDatabase = Callable[[str], Awaitable[str]]
"""Returns the URL of a new, empty database for the given name."""


@asynccontextmanager
async def sqlite_files() -> AsyncIterator[NewDatabase]:
    with tempfile.TemporaryDirectory(prefix="imagine-bench-") as folder:

        async def new(name: str) -> str:
            return f"sqlite:///{Path(folder) / name}.db"

        yield new


@asynccontextmanager
async def postgres_schemas(server: str) -> AsyncIterator[NewDatabase]:
    schemas: list[str] = []

    async def new(name: str) -> str:
        schema = f"imagine_bench_{name.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
        connection = await asyncpg.connect(server)
        try:
            await connection.execute(f"CREATE SCHEMA {schema}")
        finally:
            await connection.close()
        schemas.append(schema)
        return f"{server}{'&' if '?' in server else '?'}search_path={schema}"

    try:
        yield new
    finally:
        connection = await asyncpg.connect(server)
        try:
            for schema in schemas:
                await connection.execute(f"DROP SCHEMA {schema} CASCADE")
        finally:
            await connection.close()


async def one_run(new_database: NewDatabase, run: int) -> Figures:
    # One by one, as the bot writes them: one autocommitted upsert per finished job.
    async with await open_database(await new_database(f"single-{run}")) as db:
        usage = UsageLog(db)

        async def insert_singly() -> None:
            for index in range(ROWS):
                entry = usage_entry(index)
                await usage.record(**{name: getattr(entry, name) for name in entry.__dataclass_fields__})

        insert_one_by_one = await timed(insert_singly)

    async with await open_database(await new_database(f"batched-{run}")) as db:
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

    async with await open_database(await new_database(f"quota-{run}")) as db:
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


async def measure(engine: str, places: Callable[[], AbstractAsyncContextManager[NewDatabase]], runs: int) -> None:
    results: list[Figures] = []
    async with places() as new_database:
        for run in range(runs):
            results.append(await one_run(new_database, run))
            print(f"  {engine}: run {run + 1}/{runs} done", flush=True)

    def median(name: str) -> float:
        return float(statistics.median(getattr(figures, name) for figures in results))

    single, batched = median("insert_one_by_one"), median("insert_batched")
    reserve = median("reservations")
    total_reservations = RESERVING_MEMBERS * RESERVATIONS_EACH
    print(f"{engine}, medians of {runs} runs:")
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


async def main(runs: int, postgres: str | None) -> None:
    print(f"machine: {os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), {platform.machine()}")
    print(f"python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {platform.platform()}")
    await measure("SQLite", sqlite_files, runs)
    if postgres is not None:
        connection = await asyncpg.connect(postgres)
        try:
            print(f"PostgreSQL {await connection.fetchval('SHOW server_version')}")
        finally:
            await connection.close()
        await measure("PostgreSQL", lambda: postgres_schemas(postgres), runs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", metavar="URL", help="also measure on this PostgreSQL database (fresh schemas)")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.runs, arguments.postgres))

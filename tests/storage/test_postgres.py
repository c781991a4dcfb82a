"""What only the PostgreSQL backend has: the pool, per-task transaction connections, timeouts, its errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path

import pytest

from storage.connect import open_database
from storage.database import Database
from storage.errors import DatabaseBusyError, DatabaseError
from storage.jobs import JobRepository, JobState
from storage.postgres import PostgresDatabase
from tests.storage.conftest import FakeClock, fresh_schema, postgres_server_url

WAIT = 10.0  # generous: the machine is shared and noisy


pytestmark = pytest.mark.postgres


@pytest.fixture
def backend() -> str:
    """Every test here is for PostgreSQL only (the conftest's runs both engines)."""
    postgres_server_url()
    return "postgres"


@pytest.fixture
async def pg(db_url: str) -> AsyncIterator[PostgresDatabase]:
    database = await open_database(db_url)
    assert isinstance(database, PostgresDatabase)
    try:
        yield database
    finally:
        await database.close()


async def backend_pid(db: Database) -> int:
    return int(await db.fetch_value("SELECT pg_backend_pid()"))


async def waiting_for_a_lock(db: Database) -> int:
    return int(await db.fetch_value("SELECT COUNT(*) FROM pg_locks WHERE NOT granted AND locktype = 'advisory'"))


async def until(condition: object, *, timeout: float = WAIT) -> None:
    """Wait until the coroutine function `condition` returns something true, checking every few ms."""
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_a_transaction_keeps_one_connection_and_other_tasks_use_others(pg: PostgresDatabase) -> None:
    async with pg.transaction():
        mine = await backend_pid(pg)
        assert [await backend_pid(pg) for _ in range(5)] == [mine] * 5
        async with pg.transaction():  # a savepoint, on the same connection
            assert await backend_pid(pg) == mine
        elsewhere = await asyncio.create_task(backend_pid(pg))
        assert elsewhere != mine
        # the server agrees: this connection is inside a transaction block
        assert await pg.fetch_value("SELECT now() = statement_timestamp()") is False


async def test_iterate_reads_through_a_server_side_cursor(pg: PostgresDatabase) -> None:
    await pg.execute("CREATE TABLE t (n INTEGER)")
    await pg.execute("INSERT INTO t SELECT generate_series(1, 100)")
    seen: list[int] = []
    async with pg.transaction(), aclosing(pg.iterate("SELECT n FROM t ORDER BY n", chunk_size=10)) as rows:
        async for row in rows:
            seen.append(row["n"])
            if len(seen) == 15:
                # the same connection (the transaction's) has the query open as a cursor
                cursors = "SELECT COUNT(*) FROM pg_cursors WHERE statement = 'SELECT n FROM t ORDER BY n'"
                assert await pg.fetch_value(cursors) == 1
    assert seen == list(range(1, 101))
    with pytest.raises(ValueError, match="chunk_size"):
        async for _row in pg.iterate("SELECT n FROM t", chunk_size=0):
            pass


async def test_the_pool_is_bounded_and_waiting_for_it_is_capped(db_url: str) -> None:
    async with await open_database(db_url, max_connections=1, query_timeout=0.3) as db:
        holding = asyncio.Event()
        release = asyncio.Event()

        async def hold() -> None:
            async with db.transaction():
                holding.set()
                await release.wait()

        holder = asyncio.create_task(hold())
        await asyncio.wait_for(holding.wait(), WAIT)
        started = time.monotonic()
        with pytest.raises(DatabaseBusyError, match="query timeout"):
            await db.fetch_value("SELECT 1")
        assert time.monotonic() - started < WAIT
        release.set()
        await asyncio.wait_for(holder, WAIT)
        assert await db.fetch_value("SELECT 1") == 1


async def test_every_statement_is_capped_by_the_query_timeout(db_url: str) -> None:
    async with await open_database(db_url, query_timeout=0.2) as db:
        with pytest.raises(DatabaseBusyError, match="within the query timeout"):
            await asyncio.wait_for(db.execute("SELECT pg_sleep(30)"), WAIT)
        # the statement was cancelled on the server, and the pool still works
        assert await db.fetch_value("SELECT 41 + 1") == 42


async def test_a_migration_and_the_wait_for_it_may_take_longer_than_the_query_timeout(tmp_path: Path) -> None:
    # An index built on a large table takes its time, and a second process starting meanwhile waits for it: a
    # start after a long history must not be refused for that. Ordinary statements stay capped.
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_slow.sql").write_text("-- Reason: slow\nSELECT pg_sleep(0.6);\nCREATE TABLE a (x INTEGER);\n")
    async with fresh_schema() as url:
        opened = await asyncio.gather(
            *(open_database(url, query_timeout=0.2, migrations_dir=folder) for _ in range(2)), return_exceptions=True
        )
        try:
            assert [getattr(db, "schema_version", db) for db in opened] == [1, 1]
            first = opened[0]
            assert isinstance(first, Database)
            with pytest.raises(DatabaseBusyError, match="within the query timeout"):
                await asyncio.wait_for(first.execute("SELECT pg_sleep(30)"), WAIT)
        finally:
            for db in opened:
                if isinstance(db, Database):
                    await db.close()


async def test_a_lock_held_past_the_busy_timeout_is_busy(pg: PostgresDatabase, db_url: str) -> None:
    holding = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with pg.transaction():
            await pg.lock("quotas")
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.wait_for(holding.wait(), WAIT)
    try:
        async with await open_database(db_url, busy_timeout=0.1) as impatient:
            with pytest.raises(DatabaseBusyError, match="busy timeout"):
                async with impatient.transaction():
                    await impatient.lock("quotas")
            # a different lock is free
            async with impatient.transaction():
                await impatient.lock("references")
    finally:
        release.set()
        await asyncio.wait_for(holder, WAIT)


async def test_cancelled_while_waiting_for_a_lock_leaves_no_orphan_transaction(
    pg: PostgresDatabase, db_url: str
) -> None:
    await pg.execute("CREATE TABLE t (name TEXT)")
    holding = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with pg.transaction():
            await pg.lock("x")
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.wait_for(holding.wait(), WAIT)
    async with await open_database(db_url, busy_timeout=WAIT) as waiting:

        async def wait_for_the_lock() -> None:
            async with waiting.transaction():
                await waiting.execute("INSERT INTO t (name) VALUES ('never')")
                await waiting.lock("x")

        waiter = asyncio.create_task(wait_for_the_lock())
        await until(lambda: _waiting_one(pg))
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(waiter, WAIT)
        # the server stopped waiting too, and the waiter's connection is back in the pool, rolled back
        await until(lambda: _waiting_none(pg))
        assert isinstance(waiting, PostgresDatabase)
        assert waiting._pool is not None
        assert waiting._pool.get_idle_size() == waiting._pool.get_size()
        release.set()
        await asyncio.wait_for(holder, WAIT)
        await waiting.execute("INSERT INTO t (name) VALUES ('committed')")
        assert [row["name"] for row in await pg.fetch_all("SELECT name FROM t")] == ["committed"]


async def _waiting_one(db: Database) -> bool:
    return await waiting_for_a_lock(db) == 1


async def _waiting_none(db: Database) -> bool:
    return await waiting_for_a_lock(db) == 0


async def test_close_waits_for_the_transaction_in_progress(pg: PostgresDatabase, db_url: str) -> None:
    await pg.execute("CREATE TABLE t (name TEXT)")
    inside = asyncio.Event()
    release = asyncio.Event()

    async def work() -> None:
        async with pg.transaction():
            await pg.execute("INSERT INTO t (name) VALUES ('before close')")
            inside.set()
            await release.wait()
            await pg.execute("INSERT INTO t (name) VALUES ('after close began')")

    worker = asyncio.create_task(work())
    await asyncio.wait_for(inside.wait(), WAIT)
    closing = asyncio.create_task(pg.close())
    await asyncio.sleep(0)
    assert not closing.done()
    release.set()
    await asyncio.wait_for(asyncio.gather(worker, closing), WAIT)
    async with await open_database(db_url) as again:
        names = sorted(row["name"] for row in await again.fetch_all("SELECT name FROM t"))
        assert names == ["after close began", "before close"]


async def test_a_wrongly_typed_parameter_is_named_without_its_value(pg: PostgresDatabase) -> None:
    with pytest.raises(DatabaseError) as caught:
        await pg.fetch_value("SELECT CAST(:id AS BIGINT) + 1", {"id": "secret-interaction-token"})
    assert ":id" in str(caught.value)
    assert "secret-interaction-token" not in str(caught.value)
    with pytest.raises(DatabaseError) as many:
        await pg.execute_many("SELECT CAST(:id AS BIGINT)", [{"id": 1}, {"id": "secret-interaction-token"}])
    assert ":id" in str(many.value)
    assert "secret-interaction-token" not in str(many.value)


async def test_concurrent_moves_of_one_job_are_serialized(pg: PostgresDatabase, db_url: str, clock: FakeClock) -> None:
    """set_state reads the state FOR UPDATE: of two processes completing one job, exactly one may."""
    async with await open_database(db_url) as other:
        mine, theirs = JobRepository(pg, clock), JobRepository(other, clock)
        created = [
            await mine.create(guild_id=1, channel_id=2, user_id=3, kind="imagine", prompt="p", n=1, model="m")
            for _ in range(20)
        ]
        for job in created:
            await mine.set_state(job.id, JobState.DELIVERING)
        outcome = await asyncio.gather(
            *(repo.set_state(job.id, JobState.COMPLETED) for job in created for repo in (mine, theirs)),
            return_exceptions=True,
        )
        for index, job in enumerate(created):
            pair = outcome[2 * index : 2 * index + 2]
            assert sum(1 for result in pair if not isinstance(result, BaseException)) == 1, pair
            assert [event.state for event in await mine.events(job.id)].count(JobState.COMPLETED) == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"min_connections": 0}, "min_connections"),
        ({"min_connections": 3, "max_connections": 2}, "min_connections"),
        ({"busy_timeout": 0}, "positive"),
        ({"query_timeout": -1}, "positive"),
    ],
)
async def test_bad_pool_options_are_refused(db_url: str, options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await open_database(db_url, **options)  # type: ignore[arg-type]

"""The Database facade: URLs, PRAGMAs, serialized transactions, savepoints, streaming reads, errors."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from pathlib import Path

import pytest

from storage.database import Database, sqlite_path_from_url
from storage.errors import (
    ConstraintViolationError,
    DatabaseBusyError,
    DatabaseClosedError,
    DatabaseError,
    UnsupportedDatabaseURLError,
)

WAIT = 10.0  # generous: the machine is shared and noisy


async def make_table(db: Database) -> None:
    await db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")


async def names(db: Database) -> list[str]:
    return [row["name"] for row in await db.fetch_all("SELECT name FROM t ORDER BY id")]


# -- URLs ------------------------------------------------------------------------------------------------------


def test_url_forms() -> None:
    assert sqlite_path_from_url("sqlite:///data/imagine.db") == Path("data/imagine.db")
    assert sqlite_path_from_url("sqlite:////var/lib/imagine.db") == Path("/var/lib/imagine.db")
    assert sqlite_path_from_url("sqlite://:memory:") is None
    assert sqlite_path_from_url("sqlite:///:memory:") is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://root:hunter2@db/imagine", "unknown scheme 'mysql'"),
        ("postgresql://imagine:hunter2@db/imagine", "PostgreSQL is not supported"),
        ("sqlite://relative.db", "three slashes"),
        ("sqlite:///", "three slashes"),
        ("data/imagine.db", "not a URL"),
        ("hunter2@x://y", "'(unreadable)'"),
    ],
)
def test_bad_urls_are_refused_clearly_without_secrets(url: str, expected: str) -> None:
    with pytest.raises(UnsupportedDatabaseURLError) as caught:
        sqlite_path_from_url(url)
    assert expected in str(caught.value)
    assert "hunter2" not in str(caught.value)


async def test_relative_url_creates_its_folder_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with await Database.open("sqlite:///nested/data/imagine.db") as db:
        assert db.path == (tmp_path / "nested" / "data" / "imagine.db").resolve()
        await make_table(db)
        await db.execute("INSERT INTO t (name) VALUES ('x')")
        monkeypatch.chdir(tmp_path / "nested")  # a later change of directory does not move the database
        assert [row["name"] async for row in db.iterate("SELECT name FROM t")] == ["x"]
    assert (tmp_path / "nested" / "data" / "imagine.db").is_file()


async def test_absolute_url_creates_its_folder(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "imagine.db"
    async with await Database.open(f"sqlite:///{target}") as db:
        assert db.schema_version > 0
    assert target.is_file()


async def test_memory_database_works_and_streams() -> None:
    async with await Database.open("sqlite://:memory:") as db:
        await make_table(db)
        await db.execute_many("INSERT INTO t (name) VALUES (:name)", [{"name": f"n{i}"} for i in range(25)])
        streamed = [row["name"] async for row in db.iterate("SELECT name FROM t ORDER BY id", chunk_size=7)]
        assert streamed == [f"n{i}" for i in range(25)]


async def test_pragmas(db: Database) -> None:
    assert (await db.fetch_value("PRAGMA journal_mode")).lower() == "wal"
    assert await db.fetch_value("PRAGMA foreign_keys") == 1
    assert await db.fetch_value("PRAGMA synchronous") == 1  # NORMAL
    assert await db.fetch_value("PRAGMA busy_timeout") == 5000


async def test_busy_timeout_is_a_parameter(db_url: str) -> None:
    async with await Database.open(db_url, busy_timeout=0.25) as db:
        assert await db.fetch_value("PRAGMA busy_timeout") == 250


# -- the facade --------------------------------------------------------------------------------------------------


async def test_execute_fetch_and_named_parameters(db: Database) -> None:
    await make_table(db)
    assert await db.execute("INSERT INTO t (name) VALUES (:name)", {"name": "a"}) == 1
    await db.execute_many("INSERT INTO t (name) VALUES (:name)", [{"name": "b"}, {"name": "c"}])
    assert await names(db) == ["a", "b", "c"]
    row = await db.fetch_one("SELECT id, name FROM t WHERE name = :name", {"name": "b"})
    assert row is not None
    assert (row["id"], row["name"], row[1]) == (2, "b", "b")
    assert await db.fetch_one("SELECT * FROM t WHERE name = :name", {"name": "zzz"}) is None
    assert await db.fetch_value("SELECT COUNT(*) FROM t") == 3
    assert await db.fetch_value("SELECT name FROM t WHERE id = :id", {"id": 99}) is None
    assert await db.execute("UPDATE t SET name = name || '!' WHERE id >= :id", {"id": 2}) == 2


async def test_engine_errors_become_storage_errors(db: Database) -> None:
    await make_table(db)
    await db.execute("INSERT INTO t (name) VALUES ('a')")
    with pytest.raises(ConstraintViolationError):
        await db.execute("INSERT INTO t (name) VALUES ('a')")
    with pytest.raises(DatabaseError, match="syntax error"):
        await db.execute("INSERT INTO nowhere VALUES (1) garbage")
    # the connection is still usable afterwards
    assert await names(db) == ["a"]


async def test_use_after_close_is_a_clear_error(db_url: str) -> None:
    db = await Database.open(db_url)
    await db.close()
    await db.close()  # twice is harmless
    with pytest.raises(DatabaseClosedError):
        await db.fetch_value("SELECT 1")
    with pytest.raises(DatabaseClosedError):
        async with db.transaction():
            pass


# -- transactions ------------------------------------------------------------------------------------------------


async def test_transaction_commits_together_or_not_at_all(db: Database) -> None:
    await make_table(db)

    async def insert_all(*values: str, fail: bool = False) -> None:
        async with db.transaction():
            for value in values:
                await db.execute("INSERT INTO t (name) VALUES (:name)", {"name": value})
            if fail:
                raise RuntimeError("boom")

    await insert_all("kept1", "kept2")
    with pytest.raises(RuntimeError):
        await insert_all("lost", fail=True)
    with pytest.raises(ConstraintViolationError):
        await insert_all("lost too", "kept1")
    assert await names(db) == ["kept1", "kept2"]


async def test_nested_transaction_is_a_savepoint(db: Database) -> None:
    await make_table(db)

    async def inner(name: str, *, fail: bool) -> None:
        async with db.transaction():
            await db.execute("INSERT INTO t (name) VALUES (:name)", {"name": name})
            if fail:
                raise RuntimeError("inner fails")

    async with db.transaction():
        await db.execute("INSERT INTO t (name) VALUES ('outer')")
        with pytest.raises(RuntimeError):
            await inner("inner, undone", fail=True)
        await inner("inner, kept", fail=False)
    assert await names(db) == ["outer", "inner, kept"]


async def test_other_coroutines_never_land_in_a_transaction_that_rolls_back(db: Database) -> None:
    await make_table(db)
    inside = asyncio.Event()
    release = asyncio.Event()

    async def failing_transaction() -> None:
        async with db.transaction():
            await db.execute("INSERT INTO t (name) VALUES ('rolled back')")
            inside.set()
            await release.wait()
            raise RuntimeError("abort")

    first = asyncio.create_task(failing_transaction())
    await asyncio.wait_for(inside.wait(), WAIT)
    # These run while the transaction is open: on a shared connection without the lock they would join it.
    plain = asyncio.create_task(db.execute("INSERT INTO t (name) VALUES ('plain statement')"))

    async def other_transaction() -> None:
        async with db.transaction():
            await db.execute("INSERT INTO t (name) VALUES ('other transaction')")

    other = asyncio.create_task(other_transaction())
    await asyncio.sleep(0)
    assert not plain.done()
    assert not other.done()
    release.set()
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(first, WAIT)
    await asyncio.wait_for(asyncio.gather(plain, other), WAIT)
    assert sorted(await names(db)) == ["other transaction", "plain statement"]


async def test_cancelled_transaction_rolls_back_and_releases_the_connection(db: Database) -> None:
    await make_table(db)
    inside = asyncio.Event()

    async def slow() -> None:
        async with db.transaction():
            await db.execute("INSERT INTO t (name) VALUES ('cancelled')")
            inside.set()
            await asyncio.Event().wait()  # forever, until cancelled

    task = asyncio.create_task(slow())
    await asyncio.wait_for(inside.wait(), WAIT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(db.execute("INSERT INTO t (name) VALUES ('after')"), WAIT)
    assert await names(db) == ["after"]


async def test_begin_immediate_makes_a_second_connection_wait_for_the_write_lock(db: Database, db_url: str) -> None:
    await make_table(db)
    async with await Database.open(db_url, busy_timeout=0.05) as impatient:
        async with db.transaction():
            await db.execute("INSERT INTO t (name) VALUES ('first')")
            with pytest.raises(DatabaseBusyError):
                async with impatient.transaction():
                    await impatient.execute("INSERT INTO t (name) VALUES ('second')")
        # once the lock is free the second connection writes, and sees the first one's row
        async with impatient.transaction():
            await impatient.execute("INSERT INTO t (name) VALUES ('second')")
        assert await names(impatient) == ["first", "second"]


async def test_cancelled_while_waiting_for_the_write_lock_leaves_no_orphan_transaction(
    db: Database, db_url: str
) -> None:
    await make_table(db)
    holding = asyncio.Event()
    release = asyncio.Event()

    async def hold_the_write_lock() -> None:
        async with db.transaction():
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold_the_write_lock())
    await asyncio.wait_for(holding.wait(), WAIT)
    async with await Database.open(db_url, busy_timeout=WAIT) as waiting:
        starting = asyncio.Event()

        async def wait_for_the_lock() -> None:
            starting.set()
            # nothing yields between here and queuing BEGIN IMMEDIATE, which then waits for the write lock
            async with waiting.transaction():
                await waiting.execute("INSERT INTO t (name) VALUES ('never')")

        waiter = asyncio.create_task(wait_for_the_lock())
        await asyncio.wait_for(starting.wait(), WAIT)
        assert waiting._lock.locked()
        assert not waiter.done()
        waiter.cancel()
        release.set()  # the queued BEGIN now gets the lock and runs
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(waiter, WAIT)
        await asyncio.wait_for(holder, WAIT)
        # a plain statement afterwards autocommits: it did not land in an orphaned transaction
        await waiting.execute("INSERT INTO t (name) VALUES ('committed')")
        assert await names(db) == ["committed"]


# -- streaming -----------------------------------------------------------------------------------------------------


async def test_iterate_streams_in_chunks_without_blocking_writers(db: Database) -> None:
    await make_table(db)
    await db.execute_many("INSERT INTO t (name) VALUES (:name)", [{"name": f"row{i:04d}"} for i in range(1200)])
    seen: list[str] = []
    async with aclosing(db.iterate("SELECT name FROM t ORDER BY id", chunk_size=100)) as rows:
        async for row in rows:
            seen.append(row["name"])
            if len(seen) == 150:
                # mid-stream, the shared connection is free: a write goes through at once
                await asyncio.wait_for(db.execute("INSERT INTO t (name) VALUES ('written meanwhile')"), WAIT)
    # the reader saw its snapshot: exactly the rows that existed when it started
    assert seen == [f"row{i:04d}" for i in range(1200)]
    assert await db.fetch_value("SELECT COUNT(*) FROM t") == 1201


async def test_iterate_stopped_early_closes_its_reader(db: Database) -> None:
    await make_table(db)
    await db.execute_many("INSERT INTO t (name) VALUES (:name)", [{"name": str(i)} for i in range(50)])
    async with aclosing(db.iterate("SELECT name FROM t", chunk_size=10)) as rows:
        async for _row in rows:
            break
    assert db._readers == set()


async def test_iterate_inside_a_transaction_sees_its_uncommitted_rows(db: Database) -> None:
    await make_table(db)
    async with db.transaction():
        await db.execute("INSERT INTO t (name) VALUES ('uncommitted')")
        assert [row["name"] async for row in db.iterate("SELECT name FROM t")] == ["uncommitted"]

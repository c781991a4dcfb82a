"""Where SQLite's statements run (storage/sqlite_connection.py): on the loop when quick, else in the thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from storage import sqlite_connection
from storage.sqlite import SQLiteDatabase
from storage.sqlite_connection import SQLiteConnection

# Enough work for SQLite to ask the progress handler many times (it asks every 1,000 steps), in a few ms.
COUNT_TO = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) SELECT SUM(i) FROM n"
SUM = 20000 * 20001 // 2


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every trip a statement makes to the connection's thread (checkpoints are not statements)."""
    made: list[str] = []
    in_thread = SQLiteConnection.in_thread

    async def counted(self: SQLiteConnection, work: Callable[[Any], Any]) -> Any:
        made.append("thread")
        return await in_thread(self, work)

    monkeypatch.setattr(SQLiteConnection, "in_thread", counted)
    return made


async def test_quick_statements_stay_on_the_loop(sqlite_db: SQLiteDatabase, trips: list[str]) -> None:
    async with sqlite_db.transaction():
        await sqlite_db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
        await sqlite_db.execute("INSERT INTO t (name) VALUES ('a')")
    assert await sqlite_db.fetch_value("SELECT name FROM t") == "a"
    assert trips == []


async def test_a_long_statement_outside_a_transaction_is_run_again_in_the_thread(
    sqlite_db: SQLiteDatabase, trips: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_connection, "BUDGET", 0.0)
    assert await sqlite_db.fetch_value(COUNT_TO) == SUM
    assert trips == ["thread"]
    # a write interrupted on the loop was undone whole: run again, it counts once
    await sqlite_db.execute("CREATE TABLE t (total INTEGER)")
    await sqlite_db.execute(f"INSERT INTO t (total) {COUNT_TO}")
    assert [row[0] for row in await sqlite_db.fetch_all("SELECT total FROM t")] == [SUM]


async def test_a_statement_inside_a_transaction_is_never_interrupted(
    sqlite_db: SQLiteDatabase, trips: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_connection, "BUDGET", 0.0)
    async with sqlite_db.transaction():
        await sqlite_db.execute("CREATE TABLE t (total INTEGER)")
        await sqlite_db.execute(f"INSERT INTO t (total) {COUNT_TO}")
    assert trips == []  # interrupting it would have rolled the whole transaction back
    monkeypatch.setattr(sqlite_connection, "BUDGET", 1.0)
    assert await sqlite_db.fetch_value("SELECT total FROM t") == SUM


async def test_a_bulk_transaction_runs_in_the_thread(sqlite_db: SQLiteDatabase, trips: list[str]) -> None:
    async with sqlite_db.transaction(bulk=True):
        await sqlite_db.execute("CREATE TABLE t (total INTEGER)")
        await sqlite_db.execute(f"INSERT INTO t (total) {COUNT_TO}")
    assert trips == ["thread", "thread"]
    assert await sqlite_db.fetch_value("SELECT total FROM t") == SUM


async def test_the_log_is_copied_into_the_file_by_the_thread(
    sqlite_db: SQLiteDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_connection, "CHECKPOINT_EVERY", 10)
    path = sqlite_db.path
    assert path is not None
    await sqlite_db.execute("CREATE TABLE t (data BLOB)")
    before = path.stat().st_size
    for _ in range(30):
        await sqlite_db.execute("INSERT INTO t (data) VALUES (zeroblob(8192))")
    connection = sqlite_db._live()
    assert connection._checkpoint is not None
    await asyncio.wait_for(asyncio.shield(connection._checkpoint), 10)
    assert path.stat().st_size > before


async def test_a_statement_in_the_thread_is_interrupted_when_its_caller_gives_up(
    sqlite_db: SQLiteDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_connection, "BUDGET", 0.0)
    endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT COUNT(*) FROM n"
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await sqlite_db.fetch_value(endless)
    # the thread let go of the connection: the next statement runs
    assert await sqlite_db.fetch_value("SELECT 1") == 1

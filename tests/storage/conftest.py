"""Fixtures for the storage tests: a migrated database on each engine, and a clock the test moves.

`db` and `db_url` run a test on SQLite (a new file in a temporary folder) and on PostgreSQL, in the database
`TEST_POSTGRES_URL` names. There each test gets a schema of its own that no other test touches meanwhile:
`db_url` the session's migrated schema, emptied before the test (every row deleted, tables a test created
dropped: migrating a new schema costs a fifth of a second, emptying one a few milliseconds);
`fresh_db_url` and `postgres_url` a new, unmigrated schema, dropped afterwards, for the tests of migrations
themselves. Without `TEST_POSTGRES_URL` the PostgreSQL runs are left out, and one line says so.
`sqlite_url` and `sqlite_db` are for what only SQLite has.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import asyncpg
import pytest

from storage.connect import open_database
from storage.copy import copy_order
from storage.database import Database
from storage.dialect import POSTGRESQL, POSTGRESQL_VERSION_TABLE
from storage.sqlite import SQLiteDatabase

SKIP_POSTGRES: Final = "PostgreSQL tests skipped: TEST_POSTGRES_URL is not set (.ci/run sets it)"
BACKENDS: Final = ("sqlite", "postgres")


class FakeClock:
    """A clock that stands still until the test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
        self.now = datetime(year, month, day, hour, minute, tzinfo=UTC)
        return self.now


def postgres_server_url() -> str:
    """`TEST_POSTGRES_URL`, or skip the test (every PostgreSQL skip comes from this line: one summary line)."""
    url = os.environ.get("TEST_POSTGRES_URL", "")
    if not url:
        pytest.skip(SKIP_POSTGRES)
    return url


def with_search_path(url: str, schema: str) -> str:
    """`url` with the schema as the connection's search_path (asyncpg passes unknown URL options as settings)."""
    return f"{url}{'&' if '?' in url else '?'}search_path={schema}"


async def _create_schema(server: str) -> str:
    schema = f"imagine_test_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f"CREATE SCHEMA {schema}")
    finally:
        await admin.close()
    return schema


async def _drop_schema(server: str, schema: str) -> None:
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await admin.close()


@asynccontextmanager
async def fresh_schema() -> AsyncIterator[str]:
    """A new, empty schema for one test, and a URL whose connections use it; dropped afterwards."""
    server = postgres_server_url()
    schema = await _create_schema(server)
    try:
        yield with_search_path(server, schema)
    finally:
        await _drop_schema(server, schema)


@dataclass(frozen=True)
class MigratedSchema:
    """The session's migrated PostgreSQL schema, and what emptying it needs to know."""

    server: str
    schema: str
    version: int
    delete_order: tuple[str, ...]
    """Every table migrations created, children before parents."""
    sequences: tuple[tuple[str, str], ...]
    """The auto-numbered columns, (table, column)."""

    @property
    def url(self) -> str:
        return with_search_path(self.server, self.schema)

    async def empty(self) -> None:
        """Delete every row, drop the tables a test created, and restart the counters: as good as new."""
        connection = await asyncpg.connect(self.server, server_settings={"search_path": self.schema})
        try:
            version = await connection.fetchval(f"SELECT MAX(version) FROM {POSTGRESQL_VERSION_TABLE}")
            assert version == self.version, "a test changed the shared schema's version: give it fresh_db_url"
            known = {*self.delete_order, POSTGRESQL_VERSION_TABLE}
            tables = await connection.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            )
            script = [f'DROP TABLE IF EXISTS "{row[0]}" CASCADE;' for row in tables if row[0] not in known]
            script += [f"DELETE FROM {table};" for table in self.delete_order]
            script += [
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), 1, false);"
                for table, column in self.sequences
            ]
            # One round trip: a script without parameters goes as one simple query.
            await connection.execute("\n".join(script))
        finally:
            await connection.close()


async def _migrated_schema(server: str) -> MigratedSchema:
    schema = await _create_schema(server)
    async with await open_database(with_search_path(server, schema)) as db:
        order = await copy_order(db)
        assert POSTGRESQL.list_sequences is not None
        sequences = tuple(
            (row["table_name"], row["column_name"]) for row in await db.fetch_all(POSTGRESQL.list_sequences)
        )
        return MigratedSchema(server, schema, db.schema_version, tuple(reversed(order)), sequences)


@pytest.fixture
def clock() -> FakeClock:
    # A Wednesday in the middle of a month: day, week and month boundaries are all some way off.
    return FakeClock(datetime(2026, 3, 11, 12, 0, tzinfo=UTC))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        postgres_server_url()
    return str(request.param)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "imagine.db"


@pytest.fixture
def sqlite_url(db_path: Path) -> str:
    # tmp_path is absolute, so this is the four-slash absolute form.
    return f"sqlite:///{db_path}"


@pytest.fixture(scope="session")
def migrated_schema() -> Iterator[MigratedSchema]:
    # A plain fixture running its own loops: it outlives every test's event loop.
    server = postgres_server_url()
    shared = asyncio.run(_migrated_schema(server))
    yield shared
    asyncio.run(_drop_schema(server, shared.schema))


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A new, unmigrated schema."""
    async with fresh_schema() as url:
        yield url


@pytest.fixture
def shared_schema(backend: str, request: pytest.FixtureRequest) -> MigratedSchema | None:
    # Plain, so that the session fixture is first set up outside any event loop; SQLite runs never ask for it.
    if backend == "sqlite":
        return None
    shared: MigratedSchema = request.getfixturevalue("migrated_schema")
    return shared


@pytest.fixture
async def db_url(sqlite_url: str, shared_schema: MigratedSchema | None) -> AsyncIterator[str]:
    """A migrated, empty database on the test's engine, that no other test uses."""
    if shared_schema is None:
        yield sqlite_url
        return
    await shared_schema.empty()
    yield shared_schema.url


@pytest.fixture
async def fresh_db_url(backend: str, sqlite_url: str) -> AsyncIterator[str]:
    """A new database on the test's engine that nothing has migrated yet."""
    if backend == "sqlite":
        yield sqlite_url
        return
    async with fresh_schema() as url:
        yield url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = await open_database(db_url)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def sqlite_db(sqlite_url: str) -> AsyncIterator[SQLiteDatabase]:
    database = await open_database(sqlite_url)
    assert isinstance(database, SQLiteDatabase)
    try:
        yield database
    finally:
        await database.close()


# -- without TEST_POSTGRES_URL: the PostgreSQL runs are left out, and one line says so --------------------------

_HERE: Final = Path(__file__).resolve().parent
_LEFT_OUT = pytest.StashKey[int]()


def _needs_postgres(item: pytest.Item) -> bool:
    if item.get_closest_marker("postgres") is not None:
        return True
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("backend") == "postgres":
        return True
    return bool({"postgres_url", "migrated_schema"} & set(getattr(item, "fixturenames", ())))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("TEST_POSTGRES_URL"):
        return
    left_out = [item for item in items if item.path.is_relative_to(_HERE) and _needs_postgres(item)]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        dropped = set(left_out)
        items[:] = [item for item in items if item not in dropped]
    config.stash[_LEFT_OUT] = len(left_out)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    left_out = config.stash.get(_LEFT_OUT, 0)
    if left_out:
        terminalreporter.write_line(f"{SKIP_POSTGRES}: {left_out} tests not run")

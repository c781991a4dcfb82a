"""The database facade every query goes through, whichever engine is behind it.

`open_database(url)` (storage/connect.py) opens SQLite (`sqlite:///path`, storage/sqlite.py) or PostgreSQL
(`postgresql://...`, storage/postgres.py) and applies pending migrations. Repositories write portable SQL with
named parameters (`:name`) and call only `execute`, `execute_many`, `fetch_one`, `fetch_all`, `fetch_value`, `iterate`,
`transaction` and `lock`; what must differ between engines lives in `dialect` (storage/dialect.py).

The semantics are the same on both engines:
- a transaction is the current task's: every statement the task runs inside the block belongs to it, other
  tasks' statements never do; a transaction inside a transaction of the same task is a savepoint; any
  exception (cancellation too) rolls the block back;
- a check followed by a write is exact when the transaction first takes `lock(name)` (or, for rows it is
  about to change, selects them with `dialect.row_lock`): SQLite serializes every write transaction anyway,
  PostgreSQL needs to be told what to serialize;
- `iterate` streams rows a chunk at a time from a consistent snapshot, without holding up writers.

Where they differ: outside a transaction, SQLite's reads wait for the transaction in progress (one shared
connection) while PostgreSQL's run at once on another pooled connection and see only what was committed; and
after a statement fails inside a transaction, PostgreSQL refuses every further statement of it, so let the
error leave the block (or contain it in a nested `transaction()`, whose savepoint undoes it).
"""

from __future__ import annotations

import abc
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Protocol, Self

from storage.dialect import Dialect, Engine
from storage.errors import DatabaseTooNewError, MigrationError, StorageError, UnsupportedDatabaseURLError
from storage.schema import Migration

log = logging.getLogger(__name__)

DEFAULT_BUSY_TIMEOUT: Final = 5.0
DEFAULT_QUERY_TIMEOUT: Final = 30.0
DEFAULT_CHUNK_SIZE: Final = 500
DEFAULT_MIN_CONNECTIONS: Final = 1
DEFAULT_MAX_CONNECTIONS: Final = 10

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
_POSTGRESQL_SCHEMES: Final = frozenset({"postgresql", "postgres"})
_EXPECTED: Final = "sqlite:///relative/path.db, sqlite:////absolute/path.db, sqlite://:memory: or postgresql://..."

Params = Mapping[str, Any]
"""Named parameters: `{"name": value}` for `:name` in the SQL."""


class Row(Protocol):
    """A result row, read by column name (`row["guild_id"]`) or position: sqlite3.Row or asyncpg.Record."""

    def __getitem__(self, key: str | int, /) -> Any: ...


def engine_from_url(url: str) -> Engine:
    """The engine a `DATABASE_URL` names, or a clear error. Messages show only the scheme: URLs carry passwords."""
    scheme, separator, _rest = url.partition("://")
    if not separator:
        raise UnsupportedDatabaseURLError(f"DATABASE_URL is not a URL: expected {_EXPECTED}")
    if scheme.lower() == "sqlite":
        return Engine.SQLITE
    if scheme.lower() in _POSTGRESQL_SCHEMES:
        return Engine.POSTGRESQL
    shown = scheme if _SCHEME.match(scheme) else "(unreadable)"
    raise UnsupportedDatabaseURLError(f"DATABASE_URL has an unknown scheme {shown!r}: expected {_EXPECTED}")


class Database(abc.ABC):
    """One database: its connection(s), transactions, migrations and the query facade.

    Open it with `await open_database(url)` (storage/connect.py, which applies pending migrations) and close
    it with `await db.close()`, or use `async with await open_database(url) as db:`.
    """

    def __init__(self) -> None:
        self._schema_version = 0

    # -- life cycle ------------------------------------------------------------------------------------------

    @abc.abstractmethod
    async def close(self) -> None:
        """Close after the transaction in progress (if any); closing twice is harmless."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    @abc.abstractmethod
    def dialect(self) -> Dialect:
        """The statements that differ on this engine."""

    @property
    def path(self) -> Path | None:
        """The database file (absolute) for a SQLite file; `None` in memory or on a server."""
        return None

    async def ping(self) -> None:
        """Raise unless the database answers a trivial query (the health check)."""
        await self.fetch_value("SELECT 1")

    async def size_bytes(self) -> int | None:
        """How much room the database takes (its files, or the server's figure), or None when unknown."""
        return None

    @property
    def schema_version(self) -> int:
        """The version of the newest migration applied."""
        return self._schema_version

    # -- notifications between processes -----------------------------------------------------------------------

    async def notify(self, channel: str, payload: str) -> None:
        """Tell the processes listening on `channel` of this database (PostgreSQL's NOTIFY). A file database has
        one process, so nobody else to tell: nothing to do."""
        return

    def listening(self, channel: str, heard: Callable[[str], None]) -> AbstractAsyncContextManager[Callable[[], bool]]:
        """For the block, call `heard(payload)` for each notification on `channel` (on the event loop); the block
        gets a function that says whether notifications still arrive (a lost connection ends them: listen again).
        A file database has one process: nothing to hear, ever."""
        return _nothing_to_hear()

    # -- the facade ------------------------------------------------------------------------------------------

    @abc.abstractmethod
    async def execute(self, sql: str, params: Params | None = None) -> int:
        """Run one statement; returns the number of rows it changed (-1 when not applicable)."""

    @abc.abstractmethod
    async def execute_many(self, sql: str, params: Iterable[Params]) -> None:
        """Run one statement once per parameter set, all or none (in the caller's transaction, or its own)."""

    @abc.abstractmethod
    async def fetch_all(self, sql: str, params: Params | None = None) -> list[Row]:
        """Every row of a query (or of an `INSERT/UPDATE ... RETURNING`)."""

    async def fetch_one(self, sql: str, params: Params | None = None) -> Row | None:
        """The first row of a query that returns at most a few rows, or `None`."""
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def fetch_value(self, sql: str, params: Params | None = None) -> Any:
        """The first column of the first row, or `None` when there is no row."""
        row = await self.fetch_one(sql, params)
        return None if row is None else row[0]

    @abc.abstractmethod
    def iterate(
        self, sql: str, params: Params | None = None, *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncGenerator[Row, None]:
        """Stream the rows of a query, `chunk_size` at a time, without building the whole list.

        Close the iterator when stopping early (`contextlib.aclosing`). Outside a transaction the rows come
        from a consistent snapshot of committed data, read on a connection of their own (writers are not
        held up); inside this task's transaction, from the transaction (its uncommitted rows included).
        """

    @abc.abstractmethod
    def transaction(self, *, bulk: bool = False) -> AbstractAsyncContextManager[None]:
        """All statements of the block commit together, or none does (on any exception, cancellation too).

        The transaction belongs to the task that opened it. Inside it, a nested `transaction()` of the same
        task is a savepoint: its failure undoes only itself. Do not await, inside the block, another task that
        waits for this transaction's locks. `bulk`: the block may take long (a purge); SQLite then runs it off
        the event loop (storage/sqlite_connection.py).
        """

    @property
    @abc.abstractmethod
    def in_transaction(self) -> bool:
        """Whether the current task is inside a transaction on this database."""

    async def lock(self, name: str) -> None:
        """Wait until no other transaction holds the lock `name`, then hold it until this transaction ends.

        What makes a read-then-write exact across processes (quota reservations, say). On SQLite a transaction
        already holds the database's write lock, so this only checks that there is a transaction.
        """
        if not self.in_transaction:
            raise StorageError(f"lock({name!r}) outside a transaction: the lock would be released at once")
        if self.dialect.advisory_lock is not None:
            await self.execute(self.dialect.advisory_lock, {"name": name})

    # -- migrations ------------------------------------------------------------------------------------------

    async def _migrate(self, migrations: list[Migration]) -> None:
        """Apply the pending migrations, each in its own transaction; refuse a database newer than the code."""
        known = len(migrations)
        current = await self._prepare_version_tracking()
        if current > known:
            raise DatabaseTooNewError(current, known)
        for migration in migrations[current:]:
            async with self.transaction():
                await self._hold_migration_lock()
                # Another process may have applied it while we waited for the lock.
                if await self._stored_version() >= migration.version:
                    continue
                log.info("applying migration %s: %s", migration.filename, migration.reason)
                for statement in migration.statements:
                    try:
                        await self.execute(statement)
                    except StorageError as exc:
                        raise MigrationError(
                            f"migration {migration.filename} failed and was rolled back: {exc}"
                        ) from exc
                await self._record_version(migration)
        version = await self._stored_version()
        if version > known:
            raise DatabaseTooNewError(version, known)
        self._schema_version = version

    @abc.abstractmethod
    async def _prepare_version_tracking(self) -> int:
        """Make sure the version can be stored, and return it (0 for an empty database)."""

    @abc.abstractmethod
    async def _hold_migration_lock(self) -> None:
        """Inside the migration's transaction: wait for any other process migrating this database."""

    @abc.abstractmethod
    async def _stored_version(self) -> int:
        """The version of the newest migration applied."""

    @abc.abstractmethod
    async def _record_version(self, migration: Migration) -> None:
        """Inside the migration's transaction: note that it was applied."""


@asynccontextmanager
async def _nothing_to_hear() -> AsyncIterator[Callable[[], bool]]:
    yield lambda: True

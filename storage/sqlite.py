"""SQLite: one long-lived connection, WAL, a busy timeout, serialized transactions.

Concurrency. One long-lived connection is shared by every coroutine, and a connection has one transaction
at a time: if two coroutines interleaved their statements, one's work would land in (or be rolled back with)
the other's transaction. So every use of the connection holds an `asyncio.Lock`, a transaction holds it from
`BEGIN` to `COMMIT`, and statements issued by the task that holds it (inside its own transaction) run
directly. Transactions start with `BEGIN IMMEDIATE`, which takes SQLite's write lock at once: a second
process (or a second `Database` on the same file) waits for it (`busy_timeout`) instead of reading a snapshot
that is stale by the time it writes. Together these make check-then-write sequences exact, which is why
`Database.lock` has nothing to add here.

Statements run on the event loop when they are quick, else in the connection's thread
(storage/sqlite_connection.py says when and why). Streaming reads (`iterate`) of a file database use a
short-lived read-only connection (aiosqlite): in WAL mode it reads a consistent snapshot without holding up the
writers for as long as the caller takes to consume the rows. The schema version is SQLite's own
`PRAGMA user_version`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Final, Self

import aiosqlite

from storage.database import DEFAULT_BUSY_TIMEOUT, DEFAULT_CHUNK_SIZE, Database, Params, Row
from storage.dialect import SQLITE, Dialect, Engine
from storage.errors import (
    ConstraintViolationError,
    DatabaseBusyError,
    DatabaseClosedError,
    DatabaseError,
    StorageError,
    UnsupportedDatabaseURLError,
)
from storage.schema import MIGRATIONS_DIR, Migration, load_migrations
from storage.sqlite_connection import SQLiteConnection, Work

log = logging.getLogger(__name__)

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
_SQLITE_BUSY: Final = 5
_SQLITE_LOCKED: Final = 6


def sqlite_path_from_url(url: str) -> Path | None:
    """The file a `sqlite:` URL names (`None` for an in-memory database), or a clear error.

    `sqlite:///data/imagine.db` is relative to the working directory, `sqlite:////var/lib/imagine.db` is
    absolute, `sqlite://:memory:` (or `sqlite:///:memory:`) lives in memory. Messages show only the scheme:
    a PostgreSQL URL carries a password.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        raise UnsupportedDatabaseURLError(
            "DATABASE_URL is not a URL: expected sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    shown = scheme if _SCHEME.match(scheme) else "(unreadable)"
    if scheme.lower() != "sqlite":
        raise UnsupportedDatabaseURLError(
            f"DATABASE_URL has an unknown scheme {shown!r}: expected sqlite:///relative/path.db, "
            "sqlite:////absolute/path.db or sqlite://:memory:"
        )
    if rest in {":memory:", "/:memory:"}:
        return None
    if not rest.startswith("/") or rest == "/":
        raise UnsupportedDatabaseURLError(
            "DATABASE_URL: a sqlite URL needs three slashes and a path (sqlite:///data/imagine.db), "
            "or four for an absolute path (sqlite:////var/lib/imagine.db)"
        )
    return Path(rest[1:])


def _translate(exc: sqlite3.Error) -> StorageError:
    if isinstance(exc, sqlite3.IntegrityError):
        return ConstraintViolationError(f"constraint violated: {exc}")
    if isinstance(exc, sqlite3.OperationalError) and (exc.sqlite_errorcode & 0xFF) in {_SQLITE_BUSY, _SQLITE_LOCKED}:
        return DatabaseBusyError(f"the database stayed locked by another connection past the busy timeout: {exc}")
    return DatabaseError(f"database error: {exc}")


@contextmanager
def _engine_errors() -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise _translate(exc) from exc


class SQLiteDatabase(Database):
    """One SQLite database: a long-lived connection, serialized transactions, and the query facade.

    Open it with `await open_database("sqlite:///...")`.
    """

    def __init__(self, connection: SQLiteConnection, path: Path | None, busy_timeout: float) -> None:
        """Wrap an open connection; use `open_database`, which also sets the PRAGMAs and migrates."""
        super().__init__()
        self._connection: SQLiteConnection | None = connection
        self._path = path
        self._busy_timeout = busy_timeout
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None
        self._in_transaction = False
        self._bulk = False
        self._savepoints = 0
        self._readers: set[aiosqlite.Connection] = set()

    # -- life cycle ------------------------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        migrations_dir: Path = MIGRATIONS_DIR,
    ) -> Self:
        """Open the database `url` names, creating its folder and file if needed, and apply pending migrations.

        `busy_timeout` is how many seconds a statement waits for another connection's write lock.
        Raises `UnsupportedDatabaseURLError`, `DatabaseTooNewError` or `MigrationError`.
        """
        named = sqlite_path_from_url(url)
        migrations = load_migrations(migrations_dir, Engine.SQLITE)
        # Resolved once: a later change of working directory must not move the database under our feet.
        path = None if named is None else named.resolve()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        with _engine_errors():
            connection = await SQLiteConnection.open(path, busy_timeout)
        database = cls(connection, path, busy_timeout)
        try:
            await database._configure()
            await database._migrate(migrations)
        except BaseException:
            await database.close()
            raise
        log.info("database %s ready at schema version %s", path or ":memory:", database.schema_version)
        return database

    async def close(self) -> None:
        """Close the connection after the transaction in progress (if any); closing twice is harmless."""
        if self._connection is None:
            return
        if self._owned():
            await self._close_now()
            return
        async with self._lock:
            await self._close_now()

    async def _close_now(self) -> None:
        connection, self._connection = self._connection, None
        for reader in list(self._readers):
            await reader.close()
        self._readers.clear()
        if connection is not None:
            await connection.close()

    @property
    def dialect(self) -> Dialect:
        """SQLite's statements."""
        return SQLITE

    @property
    def path(self) -> Path | None:
        """The database file (absolute), or `None` in memory."""
        return self._path

    async def size_bytes(self) -> int | None:
        """The database file and its write-ahead log, in bytes (None in memory)."""
        path = self._path
        if path is None:
            return None

        def measure() -> int:
            files = (path, path.with_name(path.name + "-wal"))
            return sum(file.stat().st_size for file in files if file.exists())

        return await asyncio.to_thread(measure)

    async def _configure(self) -> None:
        await self.execute("PRAGMA foreign_keys = ON")
        if self._path is not None:
            await self._switch_to_wal()
            self._live().checkpoint_in_thread()
        await self.execute("PRAGMA synchronous = NORMAL")

    async def _switch_to_wal(self) -> None:
        """Put the file in WAL mode (it stays so), waiting out other connections doing the same.

        Switching needs the file to itself, and SQLite refuses at once rather than calling the busy handler
        when processes open a new file together: so try again, for up to the busy timeout.
        """
        deadline = time.monotonic() + self._busy_timeout
        delay = 0.005
        while True:
            try:
                row = await self.fetch_one("PRAGMA journal_mode = WAL")
            except DatabaseBusyError:
                if time.monotonic() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.1)
                continue
            if row is None or str(row[0]).lower() != "wal":
                raise DatabaseError(f"could not switch {self._path} to WAL mode (got {row and row[0]!r})")
            return

    # -- migrations: the version is PRAGMA user_version, and BEGIN IMMEDIATE already excludes other writers ----

    async def _prepare_version_tracking(self) -> int:
        return await self._stored_version()

    async def _hold_migration_lock(self) -> None:
        pass

    async def _stored_version(self) -> int:
        return int(await self.fetch_value("PRAGMA user_version") or 0)

    async def _record_version(self, migration: Migration) -> None:
        # PRAGMA takes no parameters; the version is an int we produced, not input.
        await self.execute(f"PRAGMA user_version = {int(migration.version)}")

    # -- locking ---------------------------------------------------------------------------------------------

    def _owned(self) -> bool:
        return self._owner is not None and self._owner is asyncio.current_task()

    @property
    def in_transaction(self) -> bool:
        """Whether the current task is inside a transaction on this database."""
        return self._owned() and self._in_transaction

    def _live(self) -> SQLiteConnection:
        if self._connection is None:
            raise DatabaseClosedError("the database is closed")
        return self._connection

    async def _run(self, connection: SQLiteConnection, work: Work[Any], *, movable: bool = True) -> Any:
        """One statement's work: on the loop (outside a transaction, moved to the thread if long, unless not
        `movable`: a cursor's next rows cannot be read again), or in the thread for a whole bulk transaction."""
        with _engine_errors():
            if self._bulk:
                return await connection.in_thread(work)
            return await connection.run(work, movable=movable and not connection.in_transaction)

    @asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[SQLiteConnection]:
        """The connection, for this task alone: re-entrant for the task that already holds it."""
        if self._owned():
            yield self._live()
            return
        async with self._lock:
            connection = self._live()
            self._owner = asyncio.current_task()
            try:
                yield connection
            finally:
                self._owner = None

    # -- the facade ------------------------------------------------------------------------------------------

    async def execute(self, sql: str, params: Params | None = None) -> int:
        """Run one statement; returns the number of rows it changed (-1 when not applicable)."""
        async with self._exclusive() as connection:
            return int(await self._run(connection, lambda raw: raw.execute(sql, params or {}).rowcount))

    async def execute_many(self, sql: str, params: Iterable[Params]) -> None:
        """Run one statement once per parameter set, all or none (in the caller's transaction, or its own)."""
        if not self.in_transaction:
            # Outside a transaction sqlite3 would commit each statement on its own.
            async with self.transaction():
                await self.execute_many(sql, params)
            return
        rows = list(params)
        async with self._exclusive() as connection:
            await self._run(connection, lambda raw: raw.executemany(sql, rows))

    async def fetch_all(self, sql: str, params: Params | None = None) -> list[Row]:
        """Every row of a query (or of an `INSERT/UPDATE ... RETURNING`)."""
        async with self._exclusive() as connection:
            rows: list[Row] = await self._run(connection, lambda raw: raw.execute(sql, params or {}).fetchall())
            return rows

    async def iterate(
        self, sql: str, params: Params | None = None, *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncGenerator[Row, None]:
        """Stream the rows of a query, `chunk_size` at a time, without building the whole list.

        Close the iterator when stopping early (`contextlib.aclosing`). A file database is read through its
        own read-only connection (a consistent snapshot of committed data; writers are not held up); inside
        this task's transaction, or in memory, the shared connection is used and held until the end.
        """
        if self._path is None or self._owned():
            async with self._exclusive() as connection:
                async for row in self._own_rows(connection, sql, params, chunk_size):
                    yield row
            return
        reader = await self._open_reader()
        try:
            async for row in _rows(reader, sql, params, chunk_size):
                yield row
        finally:
            self._readers.discard(reader)
            await reader.close()

    async def _open_reader(self) -> aiosqlite.Connection:
        self._live()
        assert self._path is not None
        uri = self._path.as_uri() + "?mode=ro"
        with _engine_errors():
            reader = await aiosqlite.connect(uri, uri=True, isolation_level=None, timeout=self._busy_timeout)
        reader.row_factory = sqlite3.Row
        self._readers.add(reader)
        return reader

    @asynccontextmanager
    async def transaction(self, *, bulk: bool = False) -> AsyncIterator[None]:
        """All statements of the block commit together, or none does (on any exception, cancellation too).

        Other coroutines wait until the block ends; other connections to the file wait for the write lock.
        A transaction inside a transaction of the same task is a savepoint: its failure undoes only itself.
        Do not await, inside the block, another task that uses this database: it would wait for the block.
        `bulk`: the block may take long (a purge), so its statements run in the connection's thread rather than
        on the event loop.
        """
        if self._owned() and self._in_transaction:
            async with self._savepoint():
                yield
            return
        async with self._exclusive() as connection:
            if connection.in_transaction:
                # A transaction was cut short before its ROLLBACK could run: never build on its leftovers.
                log.warning("rolling back a transaction left open on the shared connection")
                self._rollback_quietly(connection)
            try:
                # On the loop unless another connection holds the write lock: then the thread waits for it (and,
                # cancelled meanwhile, keeps the connection until the BEGIN has run, rolled back below).
                await self._run(connection, lambda raw: raw.execute("BEGIN IMMEDIATE"))
            except asyncio.CancelledError:
                self._rollback_quietly(connection, expect_idle=True)
                raise
            self._in_transaction = True
            self._bulk = bulk
            try:
                yield
            except BaseException:
                self._in_transaction = self._bulk = False
                self._rollback_quietly(connection)
                raise
            self._in_transaction = self._bulk = False
            try:
                await self._run(connection, lambda raw: raw.execute("COMMIT"))
            except BaseException:
                self._rollback_quietly(connection)
                raise

    @asynccontextmanager
    async def _savepoint(self) -> AsyncIterator[None]:
        self._savepoints += 1
        name = f"imagine_savepoint_{self._savepoints}"
        try:
            await self.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                await self.execute(f"ROLLBACK TO SAVEPOINT {name}")
                await self.execute(f"RELEASE SAVEPOINT {name}")
                raise
            await self.execute(f"RELEASE SAVEPOINT {name}")
        finally:
            self._savepoints -= 1

    @staticmethod
    def _rollback_quietly(connection: SQLiteConnection, *, expect_idle: bool = False) -> None:
        # On the loop, at once: nothing can interrupt it, and a rollback takes no lock it could wait for.
        if expect_idle and not connection.in_transaction:
            return
        try:
            connection.raw.execute("ROLLBACK")
        except sqlite3.Error as exc:
            # expect_idle: the BEGIN it follows may have failed, leaving nothing to roll back.
            log.log(logging.DEBUG if expect_idle else logging.WARNING, "rollback failed: %s", exc)

    async def _own_rows(
        self, connection: SQLiteConnection, sql: str, params: Params | None, chunk_size: int
    ) -> AsyncGenerator[Row, None]:
        """A query's rows on the shared connection (held by the caller), a chunk at a time."""
        cursor: sqlite3.Cursor = await self._run(connection, lambda raw: raw.execute(sql, params or {}), movable=False)
        try:
            while True:
                rows: list[Row] = await self._run(connection, lambda _raw: cursor.fetchmany(chunk_size), movable=False)
                if not rows:
                    return
                for row in rows:
                    yield row
        finally:
            cursor.close()


async def _rows(
    connection: aiosqlite.Connection, sql: str, params: Params | None, chunk_size: int
) -> AsyncGenerator[Row, None]:
    """A query's rows, fetched `chunk_size` at a time; the cursor is closed however the iteration ends."""
    with _engine_errors():
        cursor = await connection.execute(sql, params or {})
    try:
        while True:
            with _engine_errors():
                rows = await cursor.fetchmany(chunk_size)
            if not rows:
                return
            for row in rows:
                yield row
    finally:
        await cursor.close()

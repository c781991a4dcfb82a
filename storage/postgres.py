"""PostgreSQL through asyncpg: a small connection pool behind the same facade as SQLite.

Concurrency. Statements outside a transaction run on any pooled connection. A transaction holds one pooled
connection from `BEGIN` to `COMMIT`, and every statement the task that opened it runs meanwhile goes to that
connection (a map from task to connection: tasks the block starts are not part of it, as on SQLite).
Transactions are READ COMMITTED: where a repository reads and then writes, it serializes with
`Database.lock(name)` (a transaction-level advisory lock) or `dialect.row_lock` (`SELECT ... FOR UPDATE`).

Timeouts. Every statement and every wait for a pooled connection is capped by `query_timeout`; a wait for a
row or advisory lock held by another transaction by `busy_timeout` (the server's `lock_timeout`), after which
it fails with `DatabaseBusyError`, as SQLite's busy timeout does. Migrations are the exception: a statement
of one (an index built on a large table) and the wait for another process's run only within `MIGRATION_TIMEOUT`,
so that a start-up after a long history is not refused for taking its time.

`iterate` streams through a server-side cursor: outside a transaction in a read-only REPEATABLE READ
transaction of its own (one snapshot, no writer held up), inside one on the transaction's connection.
Migrations are tracked in the `schema_migrations` table and run under an advisory lock, so processes starting
at once wait for each other instead of racing to create the same tables.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Self, TypeAlias

import asyncpg

from storage._placeholders import arguments, to_positional
from storage.database import (
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MIN_CONNECTIONS,
    DEFAULT_QUERY_TIMEOUT,
    Database,
    Params,
    Row,
)
from storage.dialect import POSTGRESQL, POSTGRESQL_VERSION_TABLE, Dialect, Engine
from storage.errors import (
    ConstraintViolationError,
    DatabaseBusyError,
    DatabaseClosedError,
    DatabaseError,
    StorageError,
    UnsupportedDatabaseURLError,
)
from storage.schema import MIGRATIONS_DIR, Migration, load_migrations

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    # Generic only in the type stubs.
    Connection: TypeAlias = PoolConnectionProxy[asyncpg.Record]
    _ConnectionBase: TypeAlias = asyncpg.Connection[asyncpg.Record]
else:
    _ConnectionBase = asyncpg.Connection

_ROW_COUNT: Final = re.compile(r"(\d+)$")
_DATA_ERROR: Final = re.compile(r"query argument \$(\d+)(.*?): .* \((.*)\)$", re.DOTALL)
# Waiting for another transaction's lock is being busy; so is losing a deadlock or a serialization race.
_BUSY_ERRORS: Final = (
    asyncpg.exceptions.LockNotAvailableError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
)
_ENGINE_ERRORS: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
# How long one statement of a migration, or the wait for another process's migration, may take.
MIGRATION_TIMEOUT: Final = 3600.0
# Set while this task migrates: its statements run within MIGRATION_TIMEOUT rather than the query timeout.
_migrating: ContextVar[bool] = ContextVar("migrating", default=False)


def _translate(exc: BaseException, names: tuple[str, ...], timeout: float) -> StorageError:
    if isinstance(exc, asyncpg.exceptions.IntegrityConstraintViolationError):
        return ConstraintViolationError(f"constraint violated: {exc}")
    if isinstance(exc, _BUSY_ERRORS):
        return DatabaseBusyError(f"another transaction held a lock past the busy timeout: {exc}")
    if isinstance(exc, TimeoutError):
        return DatabaseBusyError(f"PostgreSQL did not answer within the query timeout ({timeout:g} s)")
    if isinstance(exc, asyncpg.exceptions.DataError):
        # asyncpg's message quotes the value, which may be a secret (an interaction token): name the parameter.
        match = _DATA_ERROR.search(str(exc))
        if match is not None:
            number, where, reason = int(match.group(1)), match.group(2), match.group(3)
            name = names[number - 1] if 0 < number <= len(names) else f"${number}"
            return DatabaseError(f"database error: parameter :{name}{where} has the wrong type: {reason}")
        return DatabaseError("database error: a parameter has the wrong type")
    if isinstance(exc, OSError | asyncpg.exceptions.ConnectionDoesNotExistError):
        return DatabaseError(f"database error: lost the connection to PostgreSQL: {exc}")
    return DatabaseError(f"database error: {exc}")


@contextmanager
def _engine_errors(names: tuple[str, ...] = (), timeout: float = DEFAULT_QUERY_TIMEOUT) -> Iterator[None]:
    try:
        yield
    except _ENGINE_ERRORS as exc:
        raise _translate(exc, names, timeout) from exc


class _PooledConnection(_ConnectionBase):
    """A connection that goes back to the pool without a reset round trip.

    asyncpg's default sends `RESET ALL; CLOSE ALL; UNLISTEN *; pg_advisory_unlock_all()` on every release, a
    second round trip for every statement outside a transaction. Nothing here leaves session state behind:
    settings are `SET LOCAL`, locks and cursors end with their transaction, and the one connection that listens
    (`listening`) stops before it is released, or is closed. An open transaction (a cancelled block) is still
    rolled back on release.
    """

    def get_reset_query(self) -> str:
        return ""


def _row_count(status: str) -> int:
    # asyncpg returns the command tag: "INSERT 0 3", "UPDATE 2", "DELETE 0"; DDL has no count.
    match = _ROW_COUNT.search(status)
    return int(match.group(1)) if match else -1


class PostgresDatabase(Database):
    """A PostgreSQL database: a pool of connections, per-task transactions, and the query facade.

    Open it with `await open_database("postgresql://user@host:5432/name")`. Query parameters of the URL that
    are not connection options become server settings (`?search_path=imagine` selects a schema).
    """

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], busy_timeout: float, query_timeout: float) -> None:
        """Wrap an open pool; use `open_database`, which also migrates."""
        super().__init__()
        self._pool: asyncpg.Pool[asyncpg.Record] | None = pool
        self._busy_timeout = busy_timeout
        self._query_timeout = query_timeout
        self._transactions: dict[asyncio.Task[Any], Connection] = {}

    # -- life cycle ------------------------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        query_timeout: float = DEFAULT_QUERY_TIMEOUT,
        min_connections: int = DEFAULT_MIN_CONNECTIONS,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        migrations_dir: Path = MIGRATIONS_DIR,
    ) -> Self:
        """Connect a pool to the server `url` names and apply pending migrations.

        Raises `UnsupportedDatabaseURLError`, `DatabaseError` (the server cannot be reached or refuses us),
        `DatabaseTooNewError` or `MigrationError`. No message contains the URL: it may hold a password.
        """
        if not 1 <= min_connections <= max_connections:
            raise ValueError(f"need 1 <= min_connections <= max_connections, not {min_connections}, {max_connections}")
        if busy_timeout <= 0 or query_timeout <= 0:
            raise ValueError("busy_timeout and query_timeout must be positive")
        migrations = load_migrations(migrations_dir, Engine.POSTGRESQL)
        settings = {
            "application_name": "imagine",
            # In milliseconds; at least 1, since 0 would mean waiting for ever.
            "lock_timeout": str(max(1, round(busy_timeout * 1000))),
        }
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=min_connections,
                max_size=max_connections,
                command_timeout=query_timeout,
                timeout=query_timeout,
                server_settings=settings,
                connection_class=_PooledConnection,
            )
        except ValueError:
            # asyncpg's own message may quote the URL.
            raise UnsupportedDatabaseURLError(
                "DATABASE_URL is not a valid postgresql:// URL (not shown here: it may hold a password)"
            ) from None
        except _ENGINE_ERRORS as exc:
            reason = f"no answer within {query_timeout:g} s" if isinstance(exc, TimeoutError) else str(exc)
            raise DatabaseError(f"could not connect to PostgreSQL: {reason}") from exc
        database = cls(pool, busy_timeout, query_timeout)
        try:
            await database._migrate(migrations)
        except BaseException:
            await database.close()
            raise
        log.info("PostgreSQL database ready at schema version %s", database.schema_version)
        return database

    async def close(self) -> None:
        """Close the pool once every connection is back (transactions in progress end first)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), self._query_timeout)
        except TimeoutError:
            log.warning("PostgreSQL connections still in use after %s s: closing them anyway", self._query_timeout)
            pool.terminate()

    @property
    def dialect(self) -> Dialect:
        """PostgreSQL's statements."""
        return POSTGRESQL

    async def size_bytes(self) -> int | None:
        """The whole database's size as the server reports it (every schema in it)."""
        return int(await self.fetch_value("SELECT pg_database_size(current_database())"))

    # -- connections -----------------------------------------------------------------------------------------

    def _live(self) -> asyncpg.Pool[asyncpg.Record]:
        if self._pool is None:
            raise DatabaseClosedError("the database is closed")
        return self._pool

    @asynccontextmanager
    async def _acquire(self) -> AsyncIterator[Connection]:
        """A connection of the pool for this block, waiting at most `query_timeout` for one to be free."""
        pool = self._live()
        with _engine_errors(timeout=self._query_timeout):
            connection = await pool.acquire(timeout=self._query_timeout)
        try:
            yield connection
        finally:
            # The pool shields its release, and rolls back whatever a cancelled block left open.
            await pool.release(connection)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        """The current task's transaction connection (even while `close` waits for it), or any pooled one."""
        held = self._transactions.get(self._task())
        if held is not None:
            yield held
            return
        async with self._acquire() as connection:
            yield connection

    @staticmethod
    def _task() -> asyncio.Task[Any]:
        task = asyncio.current_task()
        if task is None:
            raise StorageError("the database is used from a task")
        return task

    @property
    def in_transaction(self) -> bool:
        """Whether the current task is inside a transaction on this database."""
        task = asyncio.current_task()
        return task is not None and task in self._transactions

    # -- notifications between processes -----------------------------------------------------------------------

    async def notify(self, channel: str, payload: str) -> None:
        """NOTIFY `channel` (delivered when the current transaction, if any, commits)."""
        await self.fetch_value("SELECT pg_notify(:channel, :payload)::text", {"channel": channel, "payload": payload})

    @asynccontextmanager
    async def listening(self, channel: str, heard: Callable[[str], None]) -> AsyncIterator[Callable[[], bool]]:
        """LISTEN on a connection of the pool held for the block."""

        def deliver(_connection: object, _pid: int, _channel: str, payload: object) -> None:
            heard(str(payload))

        async with self._acquire() as connection:
            with _engine_errors(timeout=self._query_timeout):
                await connection.add_listener(channel, deliver)
            try:
                yield lambda: not connection.is_closed()
            finally:
                if not connection.is_closed():
                    # The pool's reset does not UNLISTEN (`_PooledConnection`): a connection still listening must
                    # not go back to it.
                    try:
                        await connection.remove_listener(channel, deliver)
                    except _ENGINE_ERRORS:
                        connection.terminate()

    # -- the facade ------------------------------------------------------------------------------------------

    async def execute(self, sql: str, params: Params | None = None) -> int:
        """Run one statement; returns the number of rows it changed (-1 when not applicable)."""
        query, names = to_positional(sql)
        args = arguments(names, params)
        migrating = _migrating.get()
        async with self._connection() as connection:
            with _engine_errors(names, MIGRATION_TIMEOUT if migrating else self._query_timeout):
                status = await connection.execute(query, *args, timeout=MIGRATION_TIMEOUT if migrating else None)
        return _row_count(status)

    async def execute_many(self, sql: str, params: Iterable[Params]) -> None:
        """Run one statement once per parameter set, all or none (in the caller's transaction, or its own)."""
        query, names = to_positional(sql)
        # Built before anything is sent: a parameter set that fails to build leaves the database untouched.
        rows = [arguments(names, one) for one in params]
        if not rows:
            return
        async with self._connection() as connection:
            with _engine_errors(names, self._query_timeout):
                await connection.executemany(query, rows)

    async def fetch_all(self, sql: str, params: Params | None = None) -> list[Row]:
        """Every row of a query (or of an `INSERT/UPDATE ... RETURNING`)."""
        query, names = to_positional(sql)
        args = arguments(names, params)
        async with self._connection() as connection:
            with _engine_errors(names, self._query_timeout):
                return list(await connection.fetch(query, *args))

    async def iterate(
        self, sql: str, params: Params | None = None, *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncGenerator[Row, None]:
        """Stream the rows of a query through a server-side cursor, `chunk_size` at a time.

        Close the iterator when stopping early (`contextlib.aclosing`): it holds a pooled connection until then.
        """
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, not {chunk_size}")
        query, names = to_positional(sql)
        args = arguments(names, params)
        held = self._transactions.get(self._task())
        if held is not None:
            with _engine_errors(names, self._query_timeout):
                cursor = await held.cursor(query, *args)
            while rows := await self._next_chunk(cursor, chunk_size, names):
                for row in rows:
                    yield row
            return
        async with self._acquire() as connection:
            snapshot = connection.transaction(isolation="repeatable_read", readonly=True)
            with _engine_errors(names, self._query_timeout):
                await snapshot.start()
            try:
                with _engine_errors(names, self._query_timeout):
                    cursor = await connection.cursor(query, *args)
                while rows := await self._next_chunk(cursor, chunk_size, names):
                    for row in rows:
                        yield row
            finally:
                await self._rollback_quietly(snapshot)

    async def _next_chunk(
        self, cursor: asyncpg.cursor.Cursor[asyncpg.Record], size: int, names: tuple[str, ...]
    ) -> list[asyncpg.Record]:
        with _engine_errors(names, self._query_timeout):
            return await cursor.fetch(size)

    @asynccontextmanager
    async def transaction(self, *, bulk: bool = False) -> AsyncIterator[None]:
        """All statements of the block commit together, or none does (on any exception, cancellation too).

        The block holds one pooled connection; every statement of this task inside it runs there. Nested in
        a transaction of the same task, it is a savepoint. `bulk` changes nothing here: asyncpg never holds the
        event loop while the server works.
        """
        task = self._task()
        held = self._transactions.get(task)
        if held is not None:
            async with self._transaction_on(held):
                yield
            return
        async with self._acquire() as connection:
            self._transactions[task] = connection
            try:
                async with self._transaction_on(connection):
                    yield
            finally:
                del self._transactions[task]

    @asynccontextmanager
    async def _transaction_on(self, connection: Connection) -> AsyncIterator[None]:
        # asyncpg makes a nested transaction a savepoint.
        transaction = connection.transaction()
        with _engine_errors(timeout=self._query_timeout):
            await transaction.start()
        try:
            yield
        except BaseException:
            await self._rollback_quietly(transaction)
            raise
        with _engine_errors(timeout=self._query_timeout):
            await transaction.commit()

    @staticmethod
    async def _rollback_quietly(transaction: asyncpg.transaction.Transaction) -> None:
        try:
            await transaction.rollback()
        except _ENGINE_ERRORS as exc:
            # The connection goes back to the pool, which resets it (or drops it) anyway.
            log.warning("rollback failed: %s", exc)

    # -- migrations: a version table, and an advisory lock that makes processes take turns ----------------------

    async def _migrate(self, migrations: list[Migration]) -> None:
        token = _migrating.set(True)
        try:
            await super()._migrate(migrations)
        finally:
            _migrating.reset(token)

    async def _prepare_version_tracking(self) -> int:
        # Usually the table is there (every start but the first): no lock, no DDL.
        exists = await self.fetch_value("SELECT to_regclass(:table) IS NOT NULL", {"table": POSTGRESQL_VERSION_TABLE})
        if exists:
            return await self._stored_version()
        async with self.transaction():
            await self._hold_migration_lock()
            await self.execute(
                f"""
                CREATE TABLE IF NOT EXISTS {POSTGRESQL_VERSION_TABLE} (
                    version    INTEGER PRIMARY KEY,
                    name       TEXT NOT NULL,
                    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
                )
                """
            )
        return await self._stored_version()

    async def _hold_migration_lock(self) -> None:
        # Another process's migration may take longer than a busy timeout: wait as long as a statement may.
        await self.execute("SET LOCAL lock_timeout = 0")
        await self.lock("imagine-migrations")

    async def _stored_version(self) -> int:
        return int(await self.fetch_value(f"SELECT COALESCE(MAX(version), 0) FROM {POSTGRESQL_VERSION_TABLE}"))

    async def _record_version(self, migration: Migration) -> None:
        await self.execute(
            f"INSERT INTO {POSTGRESQL_VERSION_TABLE} (version, name) VALUES (:version, :name)",
            {"version": migration.version, "name": migration.filename},
        )

"""Copy every row of one Imagine database into another: how a deployment moves from SQLite to PostgreSQL.

Both databases are opened (and so migrated) by this version of Imagine, and must then have the same tables
and columns. The destination must be empty: the copy refuses to merge into data. Rows stream from the source
a batch at a time (rows of images one by one, and a batch is bounded by its bytes too) and are written in one
transaction on the destination, parents before children, so a failure leaves the destination as empty as it was.
Auto-numbered columns continue after the copied values. Run it with the bot stopped: rows written during the copy
might be missed.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Final

from storage.connect import open_database
from storage.database import Database
from storage.errors import StorageError

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE: Final = 500
BATCH_BYTES: Final = 16 * 1024 * 1024
"""A batch is written once it holds this many bytes of values, however few rows: a table of images (references up to
10 MB each, kept results up to 50 MB) would otherwise hold hundreds of them in memory, and send them in one statement
that outlasts the query timeout."""
_BINARY_TYPES: Final = frozenset({"bytea", "blob"})
_PARAMETER_NAME: Final = re.compile(r"[a-z_][a-z0-9_]*")


class CopyError(StorageError):
    """The copy was refused (the destination holds data, the schemas differ...); nothing was written."""


@dataclass(frozen=True)
class TableCount:
    """How many rows of one table were copied."""

    table: str
    rows: int


@dataclass(frozen=True)
class CopyReport:
    """What a copy did: the tables in the order they were copied, and how long it took."""

    tables: tuple[TableCount, ...]
    seconds: float

    @property
    def rows(self) -> int:
        """Rows copied, all tables together."""
        return sum(table.rows for table in self.tables)


def quote_identifier(name: str) -> str:
    """`name` as a quoted SQL identifier (the same on both engines)."""
    return '"' + name.replace('"', '""') + '"'


async def table_names(db: Database) -> list[str]:
    """The tables of the database that migrations created (not the engine's own), sorted."""
    return [str(row["name"]) for row in await db.fetch_all(db.dialect.list_tables)]


async def column_names(db: Database, table: str) -> list[str]:
    """The columns of `table`, in table order (empty for an unknown table)."""
    return [str(row["name"]) for row in await db.fetch_all(db.dialect.list_columns, {"table": table})]


async def binary_columns(db: Database, table: str) -> set[str]:
    """The columns of `table` that hold bytes (images)."""
    rows = await db.fetch_all(db.dialect.list_columns, {"table": table})
    return {str(row["name"]) for row in rows if str(row["type"]).lower() in _BINARY_TYPES}


async def row_count(db: Database, table: str) -> int:
    """The number of rows in `table`."""
    return int(await db.fetch_value(f"SELECT COUNT(*) FROM {quote_identifier(table)}"))


async def copy_order(db: Database) -> list[str]:
    """The tables, each after every table its foreign keys refer to (alphabetical among equals)."""
    tables = await table_names(db)
    parents: dict[str, set[str]] = {table: set() for table in tables}
    for row in await db.fetch_all(db.dialect.list_foreign_keys):
        child, parent = str(row["table_name"]), str(row["referenced_table"])
        if child in parents and parent in parents and parent != child:
            parents[child].add(parent)
    ordered: list[str] = []
    placed: set[str] = set()
    while len(ordered) < len(tables):
        ready = sorted(table for table in tables if table not in placed and parents[table] <= placed)
        if not ready:
            cycle = ", ".join(sorted(set(tables) - placed))
            raise CopyError(f"the foreign keys between {cycle} form a cycle: no order copies parents first")
        ordered.extend(ready)
        placed.update(ready)
    return ordered


async def _check_compatible(source: Database, destination: Database) -> list[tuple[str, list[str]]]:
    """The tables to copy with their columns, or `CopyError` if the databases cannot take a copy."""
    if source.schema_version != destination.schema_version:
        raise CopyError(
            f"the source is at schema version {source.schema_version} and the destination at "
            f"{destination.schema_version}: both must be migrated by the same version of Imagine"
        )
    source_tables, destination_tables = set(await table_names(source)), set(await table_names(destination))
    if source_tables != destination_tables:
        only_source = ", ".join(sorted(source_tables - destination_tables)) or "none"
        only_destination = ", ".join(sorted(destination_tables - source_tables)) or "none"
        raise CopyError(
            f"the databases have different tables (only in the source: {only_source}; only in the destination: "
            f"{only_destination})"
        )
    plan: list[tuple[str, list[str]]] = []
    for table in await copy_order(destination):
        columns = await column_names(destination, table)
        if set(columns) != set(await column_names(source, table)):
            raise CopyError(f"table {table} has different columns in the source and the destination")
        plan.append((table, columns))
    occupied = [f"{table} ({count} rows)" for table, _ in plan if (count := await row_count(destination, table))]
    if occupied:
        raise CopyError(
            "the destination is not empty: " + ", ".join(occupied) + ". Copy into a freshly created database "
            "(or schema), so that nothing is merged or overwritten"
        )
    return plan


async def copy_database(
    source: Database,
    destination: Database,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> CopyReport:
    """Copy every row of `source` into the empty `destination`, in one transaction on the destination.

    Rows are read `batch_size` at a time and written in batches of that size. Raises `CopyError` (nothing
    written) when the destination holds rows or the schemas differ, and any `StorageError` of either
    database (the destination's transaction rolled back).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, not {batch_size}")
    started = time.perf_counter()
    plan = await _check_compatible(source, destination)
    counts: list[TableCount] = []
    async with destination.transaction():
        for table, columns in plan:
            try:
                count = await _copy_table(source, destination, table, columns, batch_size)
            except StorageError as exc:
                raise CopyError(f"copying table {table} failed, so nothing was written: {exc}") from exc
            counts.append(TableCount(table, count))
            log.info("copied %s rows of %s", count, table)
        await _reset_sequences(destination)
    return CopyReport(tuple(counts), time.perf_counter() - started)


async def _copy_table(source: Database, destination: Database, table: str, columns: list[str], batch: int) -> int:
    listed = ", ".join(quote_identifier(column) for column in columns)
    # A parameter is named after its column (errors then name the column), when the name can be a parameter's.
    names = [column if _PARAMETER_NAME.fullmatch(column) else f"column{index}" for index, column in enumerate(columns)]
    placeholders = ", ".join(f":{name}" for name in names)
    insert = f"INSERT INTO {quote_identifier(table)} ({listed}) VALUES ({placeholders})"
    pending: list[dict[str, Any]] = []
    pending_bytes = 0
    copied = 0
    # Rows of images are read one at a time: a chunk of them could be larger than the memory at hand.
    chunk = 1 if await binary_columns(destination, table) else batch
    rows = source.iterate(f"SELECT {listed} FROM {quote_identifier(table)}", chunk_size=chunk)
    try:
        async for row in rows:
            values = {name: row[index] for index, name in enumerate(names)}
            pending.append(values)
            pending_bytes += sum(len(value) for value in values.values() if isinstance(value, bytes | str))
            if len(pending) >= batch or pending_bytes >= BATCH_BYTES:
                await destination.execute_many(insert, pending)
                copied += len(pending)
                pending, pending_bytes = [], 0
    finally:
        await rows.aclose()
    if pending:
        await destination.execute_many(insert, pending)
        copied += len(pending)
    return copied


async def _reset_sequences(destination: Database) -> None:
    """Move every auto-numbering counter past the copied values, so the next row does not collide."""
    dialect = destination.dialect
    if dialect.list_sequences is None or dialect.reset_sequence is None:
        return
    for row in await destination.fetch_all(dialect.list_sequences):
        table, column = str(row["table_name"]), str(row["column_name"])
        statement = dialect.reset_sequence.format(table=quote_identifier(table), column=quote_identifier(column))
        await destination.fetch_value(statement, {"table": quote_identifier(table), "column": column})
        log.info("moved the counter of %s.%s past the copied rows", table, column)


async def copy_between(source_url: str, destination_url: str, *, batch_size: int = DEFAULT_BATCH_SIZE) -> CopyReport:
    """Open (and migrate) both databases, copy, and close them: what `python -m storage copy` runs."""
    if source_url == destination_url:
        raise CopyError("the source and the destination are the same database")
    async with await open_database(source_url) as source, await open_database(destination_url) as destination:
        return await copy_database(source, destination, batch_size=batch_size)

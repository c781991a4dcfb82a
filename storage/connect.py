"""Opening a database by its URL: the one place that knows both engines (each imports storage/database.py)."""

from __future__ import annotations

from pathlib import Path

from storage.database import (
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MIN_CONNECTIONS,
    DEFAULT_QUERY_TIMEOUT,
    Database,
    engine_from_url,
)
from storage.dialect import Engine
from storage.postgres import PostgresDatabase
from storage.schema import MIGRATIONS_DIR
from storage.sqlite import SQLiteDatabase


async def open_database(
    url: str,
    *,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    query_timeout: float = DEFAULT_QUERY_TIMEOUT,
    min_connections: int = DEFAULT_MIN_CONNECTIONS,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    migrations_dir: Path = MIGRATIONS_DIR,
) -> Database:
    """Open the database `url` names and apply pending migrations.

    `busy_timeout`: seconds a statement waits for a lock another connection holds (SQLite's busy timeout,
    PostgreSQL's `lock_timeout`). PostgreSQL only: `query_timeout` caps every statement and the wait for a
    pooled connection; the pool keeps `min_connections` to `max_connections` connections.
    Raises `UnsupportedDatabaseURLError`, `DatabaseTooNewError`, `MigrationError` or `DatabaseError`.
    """
    if engine_from_url(url) is Engine.POSTGRESQL:
        return await PostgresDatabase.connect(
            url,
            busy_timeout=busy_timeout,
            query_timeout=query_timeout,
            min_connections=min_connections,
            max_connections=max_connections,
            migrations_dir=migrations_dir,
        )
    return await SQLiteDatabase.connect(url, busy_timeout=busy_timeout, migrations_dir=migrations_dir)

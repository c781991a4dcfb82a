"""What `python bot.py --check` says of the database: reachable, and which migrations are pending, without
changing it (no migration is applied, no file is created, SQLite's journal mode is left alone).

Messages never contain the URL: a PostgreSQL URL may hold a password.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import aiosqlite
import asyncpg

from storage.database import engine_from_url
from storage.dialect import POSTGRESQL_VERSION_TABLE, Engine
from storage.errors import DatabaseError, UnsupportedDatabaseURLError
from storage.schema import MIGRATIONS_DIR, Migration, load_migrations
from storage.sqlite import sqlite_path_from_url

DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class SchemaStatus:
    """The database's schema version against the migrations this version of Imagine ships."""

    engine: Engine
    version: int
    migrations: tuple[Migration, ...]
    exists: bool = True
    """False for an SQLite file not created yet (the first start creates it)."""

    @property
    def pending(self) -> tuple[Migration, ...]:
        """The migrations the next start applies."""
        return self.migrations[self.version :]

    @property
    def too_new(self) -> bool:
        """Written by a newer Imagine: this version refuses it."""
        return self.version > len(self.migrations)


async def schema_status(
    url: str, *, timeout: float = DEFAULT_TIMEOUT, migrations_dir: Path = MIGRATIONS_DIR
) -> SchemaStatus:
    """Read the schema version of the database `url` names. Raises `DatabaseError` when it cannot be read
    (unreachable, refused, not a database, a folder that cannot be written) and `UnsupportedDatabaseURLError`."""
    engine = engine_from_url(url)
    migrations = tuple(load_migrations(migrations_dir, engine))
    if engine is Engine.POSTGRESQL:
        return SchemaStatus(engine, await _postgres_version(url, timeout), migrations)
    path = sqlite_path_from_url(url)
    if path is None:
        return SchemaStatus(engine, 0, migrations, exists=False)
    if not await asyncio.to_thread(_exists_or_creatable, path):
        return SchemaStatus(engine, 0, migrations, exists=False)
    return SchemaStatus(engine, await _sqlite_version(path, timeout), migrations)


def _exists_or_creatable(path: Path) -> bool:
    """Whether the file exists; if not, raise unless its folder can be created and written."""
    if path.exists():
        return True
    folder = path.resolve().parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise DatabaseError(f"{path} does not exist, and {folder} cannot be written to create it")
    return False


async def _sqlite_version(path: Path, timeout: float) -> int:
    uri = f"{(await asyncio.to_thread(path.resolve)).as_uri()}?mode=ro"
    try:
        async with asyncio.timeout(timeout):
            async with aiosqlite.connect(uri, uri=True) as connection:
                cursor = await connection.execute("PRAGMA user_version")
                row = await cursor.fetchone()
                # user_version reads 0 from any file; a read of the schema proves it is a database.
                await connection.execute("SELECT count(*) FROM sqlite_master")
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot read {path}: {exc}") from exc
    except TimeoutError:
        raise DatabaseError(f"{path} did not answer within {timeout:g} s (locked?)") from None
    return int(row[0]) if row is not None else 0


async def _postgres_version(url: str, timeout: float) -> int:
    try:
        connection = await asyncpg.connect(url, timeout=timeout, command_timeout=timeout)
    except ValueError:
        raise UnsupportedDatabaseURLError(
            "DATABASE_URL is not a valid postgresql:// URL (not shown here: it may hold a password)"
        ) from None
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reason = f"no answer within {timeout:g} s" if isinstance(exc, TimeoutError) else str(exc)
        raise DatabaseError(f"could not connect to PostgreSQL: {reason}") from exc
    try:
        exists = await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", POSTGRESQL_VERSION_TABLE)
        if not exists:
            return 0
        return int(await connection.fetchval(f"SELECT COALESCE(MAX(version), 0) FROM {POSTGRESQL_VERSION_TABLE}"))
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DatabaseError(f"could not read the schema version from PostgreSQL: {exc}") from exc
    finally:
        await connection.close()

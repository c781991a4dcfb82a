"""What differs between the SQL engines, in one place: repositories write portable SQL and ask here for the rest.

Each engine has one frozen `Dialect`. Repositories use `row_lock` (and `Database.lock`, which runs
`advisory_lock`); the copy command uses the catalogue queries. Nothing outside this module writes an
engine-specific statement, except the backends' own bookkeeping (PRAGMAs, the PostgreSQL version table).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Engine(StrEnum):
    """The SQL engines Imagine runs on; the value is also the suffix of a migration's variant file."""

    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


@dataclass(frozen=True)
class Dialect:
    """The statements that differ between engines. Queries take `:name` parameters like every other."""

    engine: Engine
    row_lock: str
    """Appended to a `SELECT` of rows the transaction is about to change, so no other transaction changes
    them meanwhile. Empty on SQLite, whose transactions hold the whole database's write lock from `BEGIN`."""
    advisory_lock: str | None
    """Takes the lock named `:name` until the transaction ends (`None`: transactions are serialized anyway)."""
    list_tables: str
    """One row per table migrations created, column `name`, sorted."""
    list_columns: str
    """One row per column of `:table`, columns `name` and `type` (as declared, any case), in table order."""
    list_foreign_keys: str
    """One row per foreign key: `table_name` refers to `referenced_table`."""
    list_sequences: str | None
    """One row per auto-numbered column (`table_name`, `column_name`) whose counter a bulk copy must move."""
    reset_sequence: str | None
    """Moves the counter of `{table}.{column}` past the largest value in the table."""


SQLITE: Final = Dialect(
    engine=Engine.SQLITE,
    row_lock="",
    advisory_lock=None,
    list_tables="SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    list_columns="SELECT name, type FROM pragma_table_info(:table) ORDER BY cid",
    list_foreign_keys="""
        SELECT m.name AS table_name, f."table" AS referenced_table
        FROM sqlite_master AS m JOIN pragma_foreign_key_list(m.name) AS f
        WHERE m.type = 'table'
    """,
    # An INTEGER PRIMARY KEY continues from the largest rowid present: nothing to move.
    list_sequences=None,
    reset_sequence=None,
)

POSTGRESQL_VERSION_TABLE: Final = "schema_migrations"

POSTGRESQL: Final = Dialect(
    engine=Engine.POSTGRESQL,
    row_lock=" FOR UPDATE",
    # Keyed by schema too: two deployments sharing a database in different schemas do not wait for each other.
    advisory_lock="SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '/' || :name, 0))",
    list_tables=f"""
        SELECT table_name AS name FROM information_schema.tables
        WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
          AND table_name <> '{POSTGRESQL_VERSION_TABLE}'
        ORDER BY table_name
    """,
    list_columns="""
        SELECT column_name AS name, data_type AS type FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = :table
        ORDER BY ordinal_position
    """,
    list_foreign_keys="""
        SELECT child.relname AS table_name, parent.relname AS referenced_table
        FROM pg_constraint AS con
        JOIN pg_class AS child ON child.oid = con.conrelid
        JOIN pg_class AS parent ON parent.oid = con.confrelid
        WHERE con.contype = 'f' AND con.connamespace = current_schema()::regnamespace
    """,
    list_sequences="""
        SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = current_schema() AND (is_identity = 'YES' OR column_default LIKE 'nextval(%')
        ORDER BY table_name, column_name
    """,
    reset_sequence="""
        SELECT setval(pg_get_serial_sequence(:table, :column), COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1,
                      false)
    """,
)

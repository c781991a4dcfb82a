"""The numbered migrations in `storage/migrations/`: one sequence for every engine.

A migration is `NNNN_name.sql`, written in SQL that SQLite and PostgreSQL both accept. Where one statement
cannot be portable (an auto-numbered key, say), a dialect variant sits next to it: `NNNN_name.postgresql.sql`
(or `.sqlite.sql`) replaces the portable file on that engine only, so the numbering stays one sequence.
Every file starts with a `-- Reason:` line saying why the change exists.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from storage.dialect import Engine
from storage.errors import MigrationError

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)(?:\.([a-z]+))?\.sql$")
_REASON_LINE = re.compile(r"^--\s*Reason:\s*(\S.*)$")


@dataclass(frozen=True)
class Migration:
    """One numbered schema change, as it applies to one engine."""

    version: int
    name: str
    reason: str
    statements: tuple[str, ...]
    variant: Engine | None = None
    """The engine whose variant file this is, or `None` for the portable file."""

    @property
    def filename(self) -> str:
        """The file it was read from, as messages name it."""
        suffix = "" if self.variant is None else f".{self.variant.value}"
        return f"{self.version:04d}_{self.name}{suffix}.sql"


def split_statements(script: str) -> tuple[str, ...]:
    """The statements of an SQL script, split where SQLite itself considers a statement complete.

    Semicolons inside string literals, comments and trigger bodies do not end a statement.
    """
    statements: list[str] = []
    pending = ""
    pieces = script.split(";")
    for index, piece in enumerate(pieces):
        pending += piece if index == len(pieces) - 1 else piece + ";"
        if sqlite3.complete_statement(pending):
            statement = pending.strip()
            if _strip_comments(statement).strip(" \t\r\n;"):
                statements.append(statement)
            pending = ""
    if _strip_comments(pending).strip(" \t\r\n;"):
        raise MigrationError(f"incomplete SQL statement at the end of the script: {pending.strip()[:80]!r}")
    return tuple(statements)


def _strip_comments(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


def _read(path: Path, version: int, name: str, variant: Engine | None) -> Migration:
    text = path.read_text(encoding="utf-8")
    reason = next((m.group(1) for line in text.splitlines()[:5] if (m := _REASON_LINE.match(line))), None)
    if reason is None:
        raise MigrationError(f"migration {path.name!r} lacks a '-- Reason: ...' line in its first lines")
    statements = split_statements(text)
    if not statements:
        raise MigrationError(f"migration {path.name!r} has no statement")
    return Migration(version, name, reason, statements, variant)


def load_migrations(directory: Path = MIGRATIONS_DIR, engine: Engine = Engine.SQLITE) -> list[Migration]:
    """Every migration in `directory` as `engine` runs it, in order.

    Numbering must run 1, 2, 3... without a gap or a twin; a variant needs its portable file (same number
    and name) and names a known engine. Every file is checked, whichever engine it is for.
    """
    portable: dict[int, Migration] = {}
    variants: dict[tuple[int, Engine], Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise MigrationError(
                f"migration file {path.name!r} is not named NNNN_lowercase_name.sql (or NNNN_name.ENGINE.sql)"
            )
        version, name, suffix = int(match.group(1)), match.group(2), match.group(3)
        if suffix is None:
            if version in portable:
                raise MigrationError(
                    f"two migrations are numbered {version:04d}: {portable[version].filename} and {path.name}"
                )
            portable[version] = _read(path, version, name, None)
            continue
        try:
            variant = Engine(suffix)
        except ValueError:
            known = ", ".join(engine.value for engine in Engine)
            raise MigrationError(
                f"migration {path.name!r} is a variant for an unknown engine (known: {known})"
            ) from None
        variants[(version, variant)] = _read(path, version, name, variant)

    for (version, _engine), migration in variants.items():
        base = portable.get(version)
        if base is None or base.name != migration.name:
            raise MigrationError(f"variant {migration.filename} has no portable {version:04d}_{migration.name}.sql")
    for expected, version in enumerate(sorted(portable), start=1):
        if version != expected:
            raise MigrationError(
                f"migrations must be numbered 1, 2, 3... without gaps or duplicates: expected {expected:04d}, "
                f"found {portable[version].filename}"
            )
    return [variants.get((version, engine), portable[version]) for version in sorted(portable)]

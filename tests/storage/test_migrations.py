"""Migrations: applied in order on an empty file, a no-op the second time, a newer database refused."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path

import pytest

from storage.database import MIGRATIONS_DIR, Database, load_migrations, split_statements
from storage.errors import DatabaseTooNewError, MigrationError

EXPECTED_TABLES = {
    "jobs",
    "job_events",
    "usage_log",
    "quota_rules",
    "quota_ledger",
    "reference_blobs",
    "job_references",
    "guild_settings",
    "guild_allowed_channels",
    "command_syncs",
}


def schema_of(path: Path) -> tuple[int, list[tuple[str, str]]]:
    with sqlite3.connect(path) as raw:
        version = raw.execute("PRAGMA user_version").fetchone()[0]
        objects = raw.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
    return version, objects


def write_migrations(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_shipped_migrations_are_numbered_and_explained() -> None:
    migrations = load_migrations(MIGRATIONS_DIR)
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert all(m.reason for m in migrations)
    assert all(m.statements for m in migrations)


async def test_migrations_run_on_an_empty_file(db_path: Path, db_url: str) -> None:
    async with await Database.open(db_url) as db:
        assert db.schema_version == len(load_migrations())
    version, objects = schema_of(db_path)
    assert version == len(load_migrations())
    assert {name for name, _ in objects} >= EXPECTED_TABLES


async def test_running_them_again_changes_nothing(db_path: Path, db_url: str) -> None:
    async with await Database.open(db_url) as db:
        await db.execute("INSERT INTO command_syncs (application_id, tree_hash, synced_at) VALUES (1, 'h', 0)")
    before = schema_of(db_path)
    async with await Database.open(db_url) as db:
        assert await db.fetch_value("SELECT tree_hash FROM command_syncs WHERE application_id = 1") == "h"
    assert schema_of(db_path) == before


async def test_a_newer_database_is_refused_and_left_untouched(db_path: Path, db_url: str) -> None:
    async with await Database.open(db_url):
        pass
    with sqlite3.connect(db_path) as raw:
        raw.execute("PRAGMA user_version = 99")
    before = schema_of(db_path)
    with pytest.raises(DatabaseTooNewError) as caught:
        await Database.open(db_url)
    assert caught.value.database_version == 99
    assert "schema version 99" in str(caught.value)
    assert f"up to {len(load_migrations())}" in str(caught.value)
    assert schema_of(db_path) == before


async def test_two_processes_migrating_at_once_both_succeed(db_path: Path, db_url: str) -> None:
    first, second = await asyncio.gather(Database.open(db_url), Database.open(db_url))
    try:
        assert first.schema_version == second.schema_version == len(load_migrations())
    finally:
        await first.close()
        await second.close()
    assert schema_of(db_path)[0] == len(load_migrations())


async def test_pending_migrations_apply_in_order_each_in_its_own_transaction(tmp_path: Path) -> None:
    folder = write_migrations(
        tmp_path / "migrations",
        {
            "0001_first.sql": "-- Reason: a first table\nCREATE TABLE a (x INTEGER);\nINSERT INTO a VALUES (1);\n",
            "0002_second.sql": "-- Reason: uses the first\nCREATE TABLE b AS SELECT x + 1 AS y FROM a;\n",
        },
    )
    url = f"sqlite:///{tmp_path / 'custom.db'}"
    async with await Database.open(url, migrations_dir=folder) as db:
        assert db.schema_version == 2
        assert await db.fetch_value("SELECT y FROM b") == 2
    # a third migration added later is the only one applied on the next start
    write_migrations(folder, {"0003_third.sql": "-- Reason: later\nINSERT INTO a VALUES (3);\n"})
    async with await Database.open(url, migrations_dir=folder) as db:
        assert db.schema_version == 3
        assert [row["x"] for row in await db.fetch_all("SELECT x FROM a ORDER BY x")] == [1, 3]


async def test_a_failing_migration_is_rolled_back_entirely(tmp_path: Path) -> None:
    folder = write_migrations(
        tmp_path / "migrations",
        {
            "0001_good.sql": "-- Reason: fine\nCREATE TABLE a (x INTEGER);\n",
            "0002_bad.sql": (
                "-- Reason: breaks halfway\nCREATE TABLE half (x INTEGER);\nINSERT INTO missing VALUES (1);\n"
            ),
        },
    )
    path = tmp_path / "custom.db"
    with pytest.raises(MigrationError, match=r"0002_bad\.sql failed and was rolled back"):
        await Database.open(f"sqlite:///{path}", migrations_dir=folder)
    version, objects = schema_of(path)
    assert version == 1
    assert {name for name, _ in objects} == {"a"}


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"0001_ok.sql": "-- Reason: x\nSELECT 1;", "0003_gap.sql": "-- Reason: x\nSELECT 1;"}, "expected 0002"),
        ({"0001_a.sql": "-- Reason: x\nSELECT 1;", "0001_b.sql": "-- Reason: x\nSELECT 1;"}, "expected 0002"),
        ({"1_short.sql": "-- Reason: x\nSELECT 1;"}, "not named NNNN_lowercase_name.sql"),
        ({"0001_no_reason.sql": "SELECT 1;"}, "lacks a '-- Reason: ...' line"),
        ({"0001_empty.sql": "-- Reason: x\n-- nothing else;\n"}, "has no statement"),
        ({"0001_unfinished.sql": "-- Reason: x\nSELECT 1;\nCREATE TABLE t (x"}, "incomplete SQL statement"),
    ],
)
def test_malformed_migration_folders_are_refused(tmp_path: Path, files: dict[str, str], message: str) -> None:
    folder = write_migrations(tmp_path / "migrations", files)
    with pytest.raises(MigrationError, match=re.escape(message)):
        load_migrations(folder)


def test_statements_split_where_sqlite_says_they_end() -> None:
    script = """
    -- Reason: tricky; very
    CREATE TABLE t (x TEXT DEFAULT 'a;b'); -- a comment; with a semicolon
    CREATE TRIGGER tr AFTER INSERT ON t BEGIN
        UPDATE t SET x = 'c;d' WHERE rowid = new.rowid;
    END;
    INSERT INTO t VALUES ('e;f');
    """
    statements = split_statements(script)
    assert len(statements) == 3
    assert statements[0].endswith("CREATE TABLE t (x TEXT DEFAULT 'a;b');")
    assert statements[1].startswith("-- a comment; with a semicolon\n    CREATE TRIGGER")
    assert statements[1].endswith("END;")
    assert statements[2] == "INSERT INTO t VALUES ('e;f');"
    with sqlite3.connect(":memory:") as raw:
        for statement in statements:
            raw.execute(statement)
        assert raw.execute("SELECT x FROM t").fetchall() == [("c;d",)]

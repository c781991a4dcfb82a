"""Migrations on both engines: applied in order, a no-op the second time, a newer database refused, safe when
two processes start at once; dialect variants; the same tables and columns on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from storage.connect import open_database
from storage.copy import column_names, table_names
from storage.database import Database
from storage.dialect import POSTGRESQL_VERSION_TABLE, Engine
from storage.errors import DatabaseTooNewError, MigrationError
from storage.jobs import JobRepository
from storage.owed_answers import OwedAnswerRepository
from storage.schema import MIGRATIONS_DIR, load_migrations, split_statements

ENGINES = {"sqlite": Engine.SQLITE, "postgres": Engine.POSTGRESQL}
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
    "guild_blocked_words",
    "quota_member_overrides",
    "forms",
    "owed_answers",
    "kept_results",
    "message_requests",
    "alert_bursts",
    "webhook_events",
    "webhook_problems",
    "task_durations",
}


async def tables_and_columns(db: Database) -> dict[str, list[str]]:
    return {table: await column_names(db, table) for table in await table_names(db)}


async def raw_postgres_schema(url: str) -> tuple[list[int], list[tuple[str, str, str]]]:
    """The versions recorded and every column, read without Imagine's code (which refuses a newer database)."""
    connection = await asyncpg.connect(url)
    try:
        versions = [row[0] for row in await connection.fetch(f"SELECT version FROM {POSTGRESQL_VERSION_TABLE}")]
        columns = await connection.fetch(
            """
            SELECT table_name, column_name, data_type FROM information_schema.columns
            WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position
            """
        )
    finally:
        await connection.close()
    return sorted(versions), [(row[0], row[1], row[2]) for row in columns]


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


@pytest.mark.parametrize("engine", list(Engine))
def test_shipped_migrations_are_numbered_and_explained(engine: Engine) -> None:
    migrations = load_migrations(MIGRATIONS_DIR, engine)
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert all(m.reason for m in migrations)
    assert all(m.statements for m in migrations)
    assert all(m.variant in {None, engine} for m in migrations)
    # one sequence: the same numbers and names on every engine
    assert [(m.version, m.name) for m in migrations] == [(m.version, m.name) for m in load_migrations()]


async def test_migrations_run_on_an_empty_database(fresh_db_url: str) -> None:
    async with await open_database(fresh_db_url) as db:
        assert db.schema_version == len(load_migrations())
        assert set(await table_names(db)) == EXPECTED_TABLES


async def test_migrations_run_on_an_empty_file(db_path: Path, sqlite_url: str) -> None:
    async with await open_database(sqlite_url) as db:
        assert db.schema_version == len(load_migrations())
    version, objects = schema_of(db_path)
    assert version == len(load_migrations())
    assert {name for name, _ in objects} >= EXPECTED_TABLES


async def test_running_them_again_changes_nothing(fresh_db_url: str) -> None:
    async with await open_database(fresh_db_url) as db:
        await db.execute("INSERT INTO command_syncs (application_id, tree_hash, synced_at) VALUES (1, 'h', 0)")
        before = (db.schema_version, await tables_and_columns(db))
    async with await open_database(fresh_db_url) as db:
        assert await db.fetch_value("SELECT tree_hash FROM command_syncs WHERE application_id = 1") == "h"
        assert (db.schema_version, await tables_and_columns(db)) == before


async def test_running_them_again_changes_nothing_in_the_file(db_path: Path, sqlite_url: str) -> None:
    async with await open_database(sqlite_url):
        pass
    before = schema_of(db_path)
    async with await open_database(sqlite_url):
        pass
    assert schema_of(db_path) == before


async def test_both_engines_build_the_same_tables_and_columns(sqlite_url: str, postgres_url: str) -> None:
    async with await open_database(sqlite_url) as lite, await open_database(postgres_url) as server:
        assert await tables_and_columns(lite) == await tables_and_columns(server)
        assert lite.schema_version == server.schema_version


async def test_postgres_keeps_the_version_in_a_table(postgres_url: str) -> None:
    async with await open_database(postgres_url) as db:
        rows = await db.fetch_all(f"SELECT version, name FROM {POSTGRESQL_VERSION_TABLE} ORDER BY version")
        assert [(row["version"], row["name"]) for row in rows] == [
            (m.version, m.filename) for m in load_migrations(engine=Engine.POSTGRESQL)
        ]
        assert POSTGRESQL_VERSION_TABLE not in await table_names(db)  # bookkeeping, not data: never copied


async def test_a_newer_postgres_database_is_refused_and_left_untouched(postgres_url: str) -> None:
    async with await open_database(postgres_url) as db:
        await db.execute(f"INSERT INTO {POSTGRESQL_VERSION_TABLE} (version, name) VALUES (99, '0099_future.sql')")
    before = await raw_postgres_schema(postgres_url)
    with pytest.raises(DatabaseTooNewError) as caught:
        await open_database(postgres_url)
    assert caught.value.database_version == 99
    assert f"up to {len(load_migrations())}" in str(caught.value)
    assert await raw_postgres_schema(postgres_url) == before


async def test_a_newer_database_is_refused_and_left_untouched(db_path: Path, sqlite_url: str) -> None:
    db_url = sqlite_url
    async with await open_database(db_url):
        pass
    with sqlite3.connect(db_path) as raw:
        raw.execute("PRAGMA user_version = 99")
    before = schema_of(db_path)
    with pytest.raises(DatabaseTooNewError) as caught:
        await open_database(db_url)
    assert caught.value.database_version == 99
    assert "schema version 99" in str(caught.value)
    assert f"up to {len(load_migrations())}" in str(caught.value)
    assert schema_of(db_path) == before


async def test_two_processes_migrating_at_once_both_succeed(fresh_db_url: str) -> None:
    # Three at once: without the lock, PostgreSQL would fail the second CREATE TABLE of the same name.
    opened = await asyncio.gather(*(open_database(fresh_db_url) for _ in range(3)), return_exceptions=True)
    try:
        assert [getattr(db, "schema_version", db) for db in opened] == [len(load_migrations())] * 3
    finally:
        for db in opened:
            if isinstance(db, Database):
                await db.close()
    async with await open_database(fresh_db_url) as db:
        assert set(await table_names(db)) == EXPECTED_TABLES


async def test_pending_migrations_apply_in_order_each_in_its_own_transaction(tmp_path: Path, fresh_db_url: str) -> None:
    folder = write_migrations(
        tmp_path / "migrations",
        {
            "0001_first.sql": "-- Reason: a first table\nCREATE TABLE a (x INTEGER);\nINSERT INTO a VALUES (1);\n",
            "0002_second.sql": "-- Reason: uses the first\nCREATE TABLE b AS SELECT x + 1 AS y FROM a;\n",
        },
    )
    url = fresh_db_url
    async with await open_database(url, migrations_dir=folder) as db:
        assert db.schema_version == 2
        assert await db.fetch_value("SELECT y FROM b") == 2
    # a third migration added later is the only one applied on the next start
    write_migrations(folder, {"0003_third.sql": "-- Reason: later\nINSERT INTO a VALUES (3);\n"})
    async with await open_database(url, migrations_dir=folder) as db:
        assert db.schema_version == 3
        assert [row["x"] for row in await db.fetch_all("SELECT x FROM a ORDER BY x")] == [1, 3]


async def test_a_failing_migration_is_rolled_back_entirely(tmp_path: Path, fresh_db_url: str) -> None:
    folder = write_migrations(
        tmp_path / "migrations",
        {
            "0001_good.sql": "-- Reason: fine\nCREATE TABLE a (x INTEGER);\n",
            "0002_bad.sql": (
                "-- Reason: breaks halfway\nCREATE TABLE half (x INTEGER);\nINSERT INTO missing VALUES (1);\n"
            ),
        },
    )
    with pytest.raises(MigrationError, match=r"0002_bad\.sql failed and was rolled back"):
        await open_database(fresh_db_url, migrations_dir=folder)
    # the good one stays applied; opening with it alone shows the state the failure left
    async with await open_database(
        fresh_db_url,
        migrations_dir=write_migrations(
            tmp_path / "good",
            {
                "0001_good.sql": "-- Reason: fine\nCREATE TABLE a (x INTEGER);\n",
            },
        ),
    ) as db:
        assert db.schema_version == 1
        assert await table_names(db) == ["a"]


async def test_a_dialect_variant_replaces_its_migration_on_that_engine_only(
    tmp_path: Path, fresh_db_url: str, backend: str
) -> None:
    folder = write_migrations(
        tmp_path / "migrations",
        {
            "0001_numbers.sql": "-- Reason: portable\nCREATE TABLE n (id INTEGER PRIMARY KEY, v TEXT);\n",
            "0001_numbers.postgresql.sql": (
                "-- Reason: PostgreSQL spells it\n"
                "CREATE TABLE n (id INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v TEXT);\n"
            ),
            "0002_more.sql": "-- Reason: portable again\nINSERT INTO n (v) VALUES ('x');\n",
        },
    )
    engine = ENGINES[backend]
    migrations = load_migrations(folder, engine)
    assert [m.filename for m in migrations] == [
        "0001_numbers.postgresql.sql" if engine is Engine.POSTGRESQL else "0001_numbers.sql",
        "0002_more.sql",
    ]
    async with await open_database(fresh_db_url, migrations_dir=folder) as db:
        assert db.schema_version == 2
        await db.execute("INSERT INTO n (v) VALUES ('y')")
        rows = await db.fetch_all("SELECT id, v FROM n ORDER BY id")
        assert [(row["id"], row["v"]) for row in rows] == [(1, "x"), (2, "y")]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"0001_ok.sql": "-- Reason: x\nSELECT 1;", "0003_gap.sql": "-- Reason: x\nSELECT 1;"}, "expected 0002"),
        ({"0001_a.sql": "-- Reason: x\nSELECT 1;", "0001_b.sql": "-- Reason: x\nSELECT 1;"}, "two migrations"),
        ({"0001_a.sql": "-- Reason: x\nSELECT 1;", "0001_a.oracle.sql": "-- Reason: x\nSELECT 1;"}, "unknown engine"),
        ({"0001_a.sql": "-- Reason: x\nSELECT 1;", "0001_b.postgresql.sql": "-- Reason: x\nSELECT 1;"}, "no portable"),
        ({"0001_a.postgresql.sql": "-- Reason: x\nSELECT 1;"}, "no portable"),
        ({"0001_a.sql": "-- Reason: x\nSELECT 1;", "0001_a.sqlite.sql": "SELECT 1;"}, "lacks a '-- Reason"),
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


async def test_jobs_stored_in_pixel_sizes_become_ratios_at_1k_with_weight_1(tmp_path: Path) -> None:
    # A database as it was before the model surface (migrations up to 0008), with jobs of the three old sizes.
    before = tmp_path / "before"
    before.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if int(path.name[:4]) <= 8:
            (before / path.name).write_text(path.read_text())
    url = f"sqlite:///{tmp_path / 'old.db'}"
    async with await open_database(url, migrations_dir=before) as old:
        for index, size in enumerate(("1024x1024", "1536x1024", "1024x1536")):
            await old.execute(
                """
                INSERT INTO jobs (id, guild_id, channel_id, user_id, kind, prompt, size, n, model, state,
                                  created_at, updated_at)
                VALUES (:id, 1, 2, 3, 'imagine', 'a cat', :size, 2, 'gpt-image-2', 'completed', 0, 0)
                """,
                {"id": f"job{index}", "size": size},
            )
            await old.execute(
                """
                INSERT INTO usage_log (job_id, guild_id, channel_id, user_id, prompt, model, size, n, images, status,
                                       created_at)
                VALUES (:id, 1, 2, 3, 'a cat', 'gpt-image-2', :size, 2, 2, 'completed', 0)
                """,
                {"id": f"job{index}", "size": size},
            )
            await old.execute(
                """
                INSERT INTO quota_ledger (job_id, guild_id, user_id, images, reserved_images, reserved_at)
                VALUES (:id, 1, 3, 2, 2, 0)
                """,
                {"id": f"job{index}"},
            )
    async with await open_database(url) as db:
        jobs = await db.fetch_all("SELECT id, aspect, resolution, weight FROM jobs ORDER BY id")
        usage = await db.fetch_all("SELECT job_id, aspect, resolution, weight FROM usage_log ORDER BY job_id")
        ledger = await db.fetch_all("SELECT weight, images FROM quota_ledger ORDER BY job_id")
    expected = [("job0", "1:1", "1k", 1), ("job1", "3:2", "1k", 1), ("job2", "2:3", "1k", 1)]
    assert [(row[0], row[1], row[2], row[3]) for row in jobs] == expected
    assert [(row[0], row[1], row[2], row[3]) for row in usage] == expected
    assert [(row[0], row[1]) for row in ledger] == [(1, 2)] * 3


async def test_the_command_sync_record_becomes_the_global_scope(tmp_path: Path) -> None:
    # 0010: the record of a database synced before scopes existed is the global commands' record.
    shipped = sorted(p for p in MIGRATIONS_DIR.glob("*.sql") if int(p.name[:4]) < 10)
    before = write_migrations(tmp_path / "before", {p.name: p.read_text(encoding="utf-8") for p in shipped})
    url = f"sqlite:///{tmp_path / 'imagine.db'}"
    async with await open_database(url, migrations_dir=before) as db:
        await db.execute("INSERT INTO command_syncs (application_id, tree_hash, synced_at) VALUES (7, 'old', 5)")
    async with await open_database(url) as db:
        rows = await db.fetch_all("SELECT application_id, guild_id, tree_hash, synced_at FROM command_syncs")
        assert [(row[0], row[1], row[2], row[3]) for row in rows] == [(7, 0, "old", 5)]


async def test_usage_rows_before_the_conversation_say_how_their_job_was_asked_for(tmp_path: Path) -> None:
    # 0017: rows written before the source column are told by their job's kind; a row without a job (a blocked
    # prompt) was a command's.
    before = tmp_path / "before"
    before.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if int(path.name[:4]) <= 16:
            (before / path.name).write_text(path.read_text())
    url = f"sqlite:///{tmp_path / 'old.db'}"
    kinds = {"a": "imagine", "b": "reroll", "c": "vary", "d": "context"}
    async with await open_database(url, migrations_dir=before) as old:
        for job_id in (*kinds, "e"):
            if job_id in kinds:
                await old.execute(
                    """
                    INSERT INTO jobs (id, guild_id, channel_id, user_id, kind, prompt, size, n, model, state,
                                      created_at, updated_at)
                    VALUES (:id, 1, 2, 3, :kind, 'a cat', '1:1', 1, 'gpt-image-2', 'completed', 0, 0)
                    """,
                    {"id": job_id, "kind": kinds[job_id]},
                )
            await old.execute(
                """
                INSERT INTO usage_log (job_id, guild_id, channel_id, user_id, prompt, model, size, n, images, status,
                                       created_at)
                VALUES (:id, 1, 2, 3, 'a cat', 'gpt-image-2', '1:1', 1, 1, 'completed', 0)
                """,
                {"id": job_id},
            )
    async with await open_database(url) as db:
        rows = await db.fetch_all("SELECT job_id, source FROM usage_log ORDER BY job_id")
    assert [(row[0], row[1]) for row in rows] == [
        ("a", "command"),
        ("b", "button"),
        ("c", "button"),
        ("d", "form"),
        ("e", "command"),
    ]


async def test_jobs_and_owed_answers_from_before_0020_have_no_member_locale_and_speak_the_public_one_privately(
    tmp_path: Path, fresh_db_url: str
) -> None:
    """0020 adds the member's own locale, NULL for the rows already there (nobody knows it): their private messages
    go on speaking the public locale they were stored with, on both engines."""
    before = write_migrations(
        tmp_path / "before",
        {p.name: p.read_text(encoding="utf-8") for p in MIGRATIONS_DIR.glob("*.sql") if int(p.name[:4]) < 20},
    )
    async with await open_database(fresh_db_url, migrations_dir=before) as old:
        assert old.schema_version == 19
        await old.execute(
            """
            INSERT INTO jobs (id, guild_id, channel_id, user_id, kind, prompt, size, n, model, state, locale,
                              created_at, updated_at)
            VALUES ('a1', 1, 2, 3, 'imagine', 'an old harbour', '1:1', 1, 'gpt-image-2', 'running', 'de', 0, 0)
            """
        )
        await old.execute(
            """
            INSERT INTO owed_answers (interaction_id, guild_id, channel_id, user_id, application_id, interaction_token,
                                      token_expires_at, options, locale, channel_postable, owner, lease_expires_at,
                                      created_at)
            VALUES (7, 1, 2, 3, 4, 'token', 0, '{}', 'de', 1, 'before', 0, 0)
            """
        )

    async with await open_database(fresh_db_url) as db:
        assert db.schema_version == len(load_migrations())
        job = await JobRepository(db).get("a1")
        assert job is not None
        assert (job.locale, job.member_locale, job.private_locale) == ("de", None, "de")
        (owed,) = await OwedAnswerRepository(db).orphans("now", expired_only=False)
        assert (owed.locale, owed.member_locale, owed.private_locale) == ("de", None, "de")


async def test_both_engines_build_the_same_types_constraints_defaults_and_indexes(
    db_path: Path, sqlite_url: str, postgres_url: str
) -> None:
    """Not only the names: what each column holds, whether it may be NULL, its default, each table's key and each
    index (its columns and, for a partial index, that it is one), so that a query plans alike on both engines."""
    async with await open_database(sqlite_url), await open_database(postgres_url):
        pass
    meaning = {"TEXT": "text", "BIGINT": "bigint", "INTEGER": "integer", "BYTEA": "bytea"}
    with sqlite3.connect(db_path) as raw:
        tables = [row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        lite_columns = {
            (table, name): (meaning[declared.upper()], bool(notnull) or key > 0, default)
            for table in tables
            for name, declared, notnull, default, key in raw.execute(
                'SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?)', (table,)
            )
        }
        lite_keys = {
            table: tuple(
                row[0]
                for row in raw.execute("SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk", (table,))
            )
            for table in tables
        }
        lite_indexes = {
            (table, name): (
                tuple(row[2] for row in raw.execute("SELECT * FROM pragma_index_info(?)", (name,))),
                bool(partial),
            )
            for table in tables
            for _seq, name, _unique, origin, partial in raw.execute("SELECT * FROM pragma_index_list(?)", (table,))
            if origin == "c"
        }
    server = await asyncpg.connect(postgres_url)
    try:
        pg_columns = {
            (row["table_name"], row["column_name"]): (
                row["data_type"],
                row["is_nullable"] == "NO",
                # "0", "'1:1'::text", "nextval(...)" or an identity: the default's value as SQLite writes it.
                None if row["column_default"] is None else row["column_default"].split("::")[0],
            )
            for row in await server.fetch(
                """
                SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns
                WHERE table_schema = current_schema() AND table_name <> $1
                """,
                POSTGRESQL_VERSION_TABLE,
            )
        }
        pg_keys = {
            row["table"]: tuple(row["columns"])
            for row in await server.fetch(
                """
                SELECT c.relname AS table, array_agg(a.attname ORDER BY k.ordinality) AS columns
                FROM pg_constraint AS con JOIN pg_class AS c ON c.oid = con.conrelid
                CROSS JOIN unnest(con.conkey) WITH ORDINALITY AS k(number, ordinality)
                JOIN pg_attribute AS a ON a.attrelid = con.conrelid AND a.attnum = k.number
                WHERE con.contype = 'p' AND con.connamespace = current_schema()::regnamespace AND c.relname <> $1
                GROUP BY c.relname
                """,
                POSTGRESQL_VERSION_TABLE,
            )
        }
        pg_indexes = {
            (row["table"], row["index"]): (tuple(row["columns"]), row["partial"])
            for row in await server.fetch(
                """
                SELECT t.relname AS table, i.relname AS index, i_.indpred IS NOT NULL AS partial,
                       array_agg(a.attname ORDER BY k.ordinality) AS columns
                FROM pg_index AS i_
                JOIN pg_class AS i ON i.oid = i_.indexrelid JOIN pg_class AS t ON t.oid = i_.indrelid
                CROSS JOIN unnest(i_.indkey) WITH ORDINALITY AS k(number, ordinality)
                JOIN pg_attribute AS a ON a.attrelid = t.oid AND a.attnum = k.number
                WHERE t.relnamespace = current_schema()::regnamespace AND NOT i_.indisprimary
                GROUP BY t.relname, i.relname, i_.indpred IS NOT NULL
                """
            )
        }
    finally:
        await server.close()
    # job_events.id numbers itself on both: SQLite's INTEGER PRIMARY KEY, PostgreSQL's identity (0002's variant).
    assert lite_columns.pop(("job_events", "id")) == ("integer", True, None)
    assert pg_columns.pop(("job_events", "id")) == ("bigint", True, None)
    assert set(tables) == EXPECTED_TABLES
    assert lite_columns == pg_columns
    assert lite_keys == pg_keys
    assert ("jobs", "jobs_unfinished") in lite_indexes
    assert lite_indexes == pg_indexes

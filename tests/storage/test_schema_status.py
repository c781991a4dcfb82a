"""What --check reads of a database: its schema version and pending migrations, without changing anything;
the database's size; and the images counted today across servers."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest

from storage.connect import open_database
from storage.database import Database
from storage.errors import DatabaseError
from storage.quotas import QuotaRepository
from storage.schema import MIGRATIONS_DIR, load_migrations
from storage.schema_status import schema_status
from tests.storage.conftest import FakeClock
from tests.storage.test_migrations import write_migrations

SHIPPED = len(load_migrations())


async def test_a_migrated_database_has_nothing_pending(fresh_db_url: str) -> None:
    async with await open_database(fresh_db_url):
        pass
    status = await schema_status(fresh_db_url)
    assert (status.exists, status.version, status.pending, status.too_new) == (True, SHIPPED, (), False)


async def test_an_empty_database_has_everything_pending(fresh_db_url: str) -> None:
    status = await schema_status(fresh_db_url)
    assert status.version == 0
    assert [m.version for m in status.pending] == list(range(1, SHIPPED + 1))


async def test_pending_migrations_are_named_and_nothing_is_changed(tmp_path: Path) -> None:
    older = write_migrations(
        tmp_path / "older",
        {p.name: p.read_text(encoding="utf-8") for p in sorted(MIGRATIONS_DIR.glob("*.sql")) if int(p.name[:4]) < 8},
    )
    path = tmp_path / "imagine.db"
    url = f"sqlite:///{path}"
    async with await open_database(url, migrations_dir=older):
        pass
    before = path.read_bytes()
    status = await schema_status(url)
    assert status.version == 7
    assert [m.filename for m in status.pending][:1] == ["0008_ledger_rule.sql"]
    assert path.read_bytes() == before


async def test_a_newer_database_is_called_too_new(tmp_path: Path) -> None:
    path = tmp_path / "imagine.db"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE t (x INTEGER)")
        raw.execute("PRAGMA user_version = 99")
    status = await schema_status(f"sqlite:///{path}")
    assert status.too_new


async def test_a_missing_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "data" / "imagine.db"
    status = await schema_status(f"sqlite:///{path}")
    assert (status.exists, status.version) == (False, 0)
    assert not path.parent.exists()


async def test_a_file_that_cannot_be_created_or_read_is_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the database's folder should be")
    with pytest.raises(DatabaseError, match="cannot be written"):
        await schema_status(f"sqlite:///{blocker / 'imagine.db'}")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database at all, not even close" * 100)
    with pytest.raises(DatabaseError, match="cannot read"):
        await schema_status(f"sqlite:///{garbage}")


async def test_an_unreachable_postgres_is_one_error_without_the_password() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DatabaseError, match="could not connect to PostgreSQL") as caught:
        await schema_status(f"postgresql://imagine:s3cret-pw@127.0.0.1:{port}/imagine", timeout=5)
    assert "s3cret-pw" not in str(caught.value)


async def test_the_size_and_todays_images(db: Database, clock: FakeClock) -> None:
    size = await db.size_bytes()
    assert size is not None
    assert size > 0
    quotas = QuotaRepository(db, None, clock)
    assert await quotas.images_today() == 0
    await quotas.reserve("job-a", 1, 10, [], 3)
    await quotas.reserve("job-b", 2, 20, [], 2)
    assert await quotas.images_today() == 5
    await quotas.refund("job-a", 1)
    assert await quotas.images_today() == 4
    clock.advance(days=1)
    assert await quotas.images_today() == 0

"""Fixtures for the storage tests: a migrated database in a real SQLite file, and a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.database import Database


class FakeClock:
    """A clock that stands still until the test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
        self.now = datetime(year, month, day, hour, minute, tzinfo=UTC)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    # A Wednesday in the middle of a month: day, week and month boundaries are all some way off.
    return FakeClock(datetime(2026, 3, 11, 12, 0, tzinfo=UTC))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "imagine.db"


@pytest.fixture
def db_url(db_path: Path) -> str:
    # tmp_path is absolute, so this is the four-slash absolute form.
    return f"sqlite:///{db_path}"


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = await Database.open(db_url)
    try:
        yield database
    finally:
        await database.close()

"""The durations service: no estimate before enough tasks, recent ones weighing most, the time left never
negative, kept in the database (both engines) and read back at start-up, and a failing database never in the way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from generation.durations import TaskDurations
from storage.store import Storage
from tests.storage.conftest import fresh_schema


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    if request.param == "sqlite":
        async with await Storage.open(f"sqlite:///{tmp_path / 'imagine.db'}") as opened:
            yield opened
        return
    async with fresh_schema() as url, await Storage.open(url) as opened:
        yield opened


def test_nothing_is_estimated_before_enough_tasks() -> None:
    durations = TaskDurations(enough=5)
    for index in range(4):
        durations.record(f"job-{index}", "gpt-image-2", "1k", 30.0)
    assert durations.expected("gpt-image-2", "1k") is None
    durations.record("job-4", "gpt-image-2", "1k", 30.0)
    expected = durations.expected("gpt-image-2", "1k")
    assert expected is not None
    assert expected.typical == 30.0
    assert durations.expected("gpt-image-2", "2k") is None  # kinds are apart


def test_recent_durations_weigh_most_and_only_the_latest_are_kept() -> None:
    durations = TaskDurations(keep=10, enough=5)
    for index in range(5):
        durations.record(f"old-{index}", "gpt-image-2", "1k", 60.0)
    for index in range(5):
        durations.record(f"new-{index}", "gpt-image-2", "1k", 20.0)
    expected = durations.expected("gpt-image-2", "1k")
    assert expected is not None
    assert expected.typical == 20.0  # half the tasks each, but the recent half weighs more
    assert expected.weights[-1] == 1.0
    assert expected.weights[0] < expected.weights[-1]
    for index in range(10):
        durations.record(f"newer-{index}", "gpt-image-2", "1k", 25.0)
    expected = durations.expected("gpt-image-2", "1k")
    assert expected is not None
    assert set(expected.durations) == {25.0}


def test_the_time_left_is_never_negative_and_gone_once_overdue() -> None:
    durations = TaskDurations(enough=1)
    durations.record("job", "gpt-image-2", "1k", 30.0)
    expected = durations.expected("gpt-image-2", "1k")
    assert expected is not None
    assert expected.remaining(10.0) == 20.0
    assert expected.remaining(30.0) is None
    assert expected.remaining(45.0) is None


async def test_durations_are_kept_in_the_database_and_read_back(store: Storage) -> None:
    durations = TaskDurations(store.durations, enough=3)
    for index, seconds in enumerate((28.0, 31.0, 30.0)):
        durations.record(f"job-{index}", "gpt-image-2", "4k", seconds)
    await durations.aclose()

    restarted = TaskDurations(store.durations, enough=3)
    assert restarted.expected("gpt-image-2", "4k") is None
    await restarted.load()
    expected = restarted.expected("gpt-image-2", "4k")
    assert expected is not None
    assert sorted(expected.durations) == [28.0, 30.0, 31.0]  # written at once: their order may tie


async def test_a_failing_database_loses_a_duration_but_never_fails_the_job(tmp_path: Path) -> None:
    opened = await Storage.open(f"sqlite:///{tmp_path / 'imagine.db'}")
    await opened.close()  # every statement fails from now on
    durations = TaskDurations(opened.durations, enough=1)
    await durations.load()  # logged, not raised
    durations.record("job", "gpt-image-2", "1k", 30.0)  # remembered at once; the write fails in the background
    await durations.aclose()
    assert durations.expected("gpt-image-2", "1k") is not None

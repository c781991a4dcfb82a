"""The durations service: no estimate before enough tasks, recent ones weighing most, the time left never
negative, kept in the database (both engines) and read back at start-up, and a failing database never in the way.
The look-up budget: a second's worth at most, then its rate, and each task's share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from generation.durations import TaskDurations
from generation.lookup_budget import LookupBudget
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


class Clock:
    """A clock that moves only when the budget sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_the_budget_allows_a_seconds_worth_then_its_rate() -> None:
    clock = Clock()
    budget = LookupBudget(600, clock=clock, sleep=clock.sleep)  # 10 a second
    for _ in range(10):
        await budget.take()
    assert clock.slept == []  # a second's worth at once
    for _ in range(5):
        await budget.take()
    assert clock.slept == pytest.approx([0.1] * 5)  # then one every tenth of a second
    clock.now += 60.0  # a quiet minute fills the bucket again, no more than a second's worth
    for _ in range(11):
        await budget.take()
    assert len(clock.slept) == 6


def test_each_followed_task_gets_its_share_of_the_budget() -> None:
    budget = LookupBudget(120)  # 2 a second
    assert budget.share() == 0.5
    with budget.following(), budget.following(), budget.following():
        assert budget.followed == 3
        assert budget.share() == 1.5
    assert budget.followed == 0
    assert LookupBudget(None).share() == 0.0

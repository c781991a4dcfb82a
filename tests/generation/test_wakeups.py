"""A wake-up ends a follower's sleep early, is kept across a look-up, and means nothing for unwatched tasks."""

from __future__ import annotations

import asyncio

from generation.wakeups import EARLY_KEPT, TaskWakeups


async def test_wake_ends_the_sleep_of_a_watched_task() -> None:
    wakeups = TaskWakeups()
    with wakeups.watch("task-1"):
        sleeper = asyncio.create_task(wakeups.sleep("task-1", 30.0))
        await asyncio.sleep(0)
        assert wakeups.wake("task-1") is True
        assert await asyncio.wait_for(sleeper, 1.0) is True


async def test_a_wake_during_a_look_up_is_kept_for_the_next_sleep() -> None:
    wakeups = TaskWakeups()
    with wakeups.watch("task-1"):
        wakeups.wake("task-1")  # no one sleeps yet: the follower is looking the task up
        assert await asyncio.wait_for(wakeups.sleep("task-1", 30.0), 1.0) is True
        assert await wakeups.sleep("task-1", 0.001) is False  # the wake-up was used once


async def test_unwatched_tasks_are_not_woken_and_sleep_plainly() -> None:
    wakeups = TaskWakeups()
    assert wakeups.wake("task-unknown") is False
    assert await wakeups.sleep("task-unknown", 0.001) is False
    with wakeups.watch("task-1"):
        assert wakeups.watching("task-1")
    assert not wakeups.watching("task-1")
    assert wakeups.wake("task-1") is False


async def test_a_wake_up_before_the_task_is_followed_wakes_its_follower_from_the_start() -> None:
    wakeups = TaskWakeups()
    assert wakeups.wake("task-1", when_followed=True) is False  # nobody follows it yet
    with wakeups.watch("task-1"):
        assert await asyncio.wait_for(wakeups.sleep("task-1", 30.0), 1.0) is True
    with wakeups.watch("task-1"):  # used once
        assert await wakeups.sleep("task-1", 0.001) is False


async def test_only_the_newest_early_wake_ups_are_kept() -> None:
    wakeups = TaskWakeups()
    for index in range(EARLY_KEPT + 10):
        wakeups.wake(f"task-{index}", when_followed=True)
    with wakeups.watch("task-9"):  # pushed out by newer ones
        assert await wakeups.sleep("task-9", 0.001) is False
    with wakeups.watch("task-10"):  # the oldest kept
        assert await asyncio.wait_for(wakeups.sleep("task-10", 30.0), 1.0) is True

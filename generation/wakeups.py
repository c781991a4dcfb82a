"""Wake-ups for jobs that wait on their task upstream.

A job's follower sleeps between look-ups; something that learns a task has ended (a verified webhook,
docs/architecture.md) wakes it so that it looks at once instead of at its next scheduled look-up. A wake-up is
only a hint: the follower still looks the task up and goes through the same state transition as polling, so
a wake-up for an unknown, repeated or forged task changes nothing but the time of one look-up.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

EARLY_KEPT: Final = 1_000
"""Wake-ups kept for tasks not followed yet (the newest; each a task id): the webhook of a task whose submit is
still being answered comes before its follower, which then looks at once instead of at its first scheduled
look-up. A wake-up whose follower never comes (another process took the job) only takes a slot until pushed out."""


class TaskWakeups:
    """The tasks this process follows now, each with a flag that ends its follower's current or next sleep."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._early: OrderedDict[str, None] = OrderedDict()

    @contextmanager
    def watch(self, task_id: str) -> Iterator[None]:
        """Follow `task_id` for the block: a wake-up that comes during a look-up is kept for the next sleep."""
        event = self._events.setdefault(task_id, asyncio.Event())
        if task_id in self._early:
            del self._early[task_id]
            event.set()
        try:
            yield
        finally:
            if self._events.get(task_id) is event:
                del self._events[task_id]

    def wake(self, task_id: str, *, when_followed: bool = False) -> bool:
        """Wake the follower of `task_id`; False when this process does not follow it (the caller may record
        the wake-up for the process that does). `when_followed`: should this process start following it soon,
        its follower starts woken."""
        event = self._events.get(task_id)
        if event is None:
            if when_followed:
                self._early[task_id] = None
                self._early.move_to_end(task_id)
                while len(self._early) > EARLY_KEPT:
                    self._early.popitem(last=False)
            return False
        event.set()
        return True

    def watching(self, task_id: str) -> bool:
        return task_id in self._events

    async def sleep(self, task_id: str, seconds: float) -> bool:
        """Sleep up to `seconds`; True when woken (at once if a wake-up came since the last sleep). Outside a
        `watch` of the task it is a plain sleep."""
        event = self._events.get(task_id)
        if event is None:
            await asyncio.sleep(max(seconds, 0.0))
            return False
        try:
            await asyncio.wait_for(event.wait(), timeout=max(seconds, 0.0))
        except TimeoutError:
            return False
        event.clear()
        return True

"""The account's requests a minute, shared by every job this process works: one budget for task look-ups
(docs/operators.md, `TOAPIS_LOOKUPS_PER_MINUTE`), another for submits (`TOAPIS_SUBMITS_PER_MINUTE`).

ToAPIs counts both per account (look-ups: 3,000 a minute, 50 a second, 500 in 10 s; submits: 300 a minute, 5 a
second, 50 in 10 s, for the default group; all keys and all processes together). Each process keeps to its share
by spacing its requests evenly at its rate, so that no second, ten seconds or minute goes over whatever window
ToAPIs counts in (a bucket that let a second's worth through at once would let twice the rate through in one
second). For look-ups, each followed task also has a fair share, which the look-up schedule takes as its least
delay so that tasks near their end are not starved by a queue at the budget. When ToAPIs answers 429 (or pauses
submits), the whole budget holds for its Retry-After (a second without one): the limit is the account's, so
every other request would meet the same answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager


class RateBudget:
    """Requests a minute for this process; None: no limit (tests)."""

    def __init__(
        self,
        per_minute: int | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._rate = None if per_minute is None else per_minute / 60.0
        # One request at a time: evenly spaced at the rate, never a burst above it.
        self._capacity = 0.0 if self._rate is None else 1.0
        self._tokens = self._capacity
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = asyncio.Lock()
        self._followed = 0
        self._held_until = float("-inf")

    @contextmanager
    def following(self) -> Iterator[None]:
        """Count one more task followed for the block (its share of the budget is then smaller)."""
        self._followed += 1
        try:
            yield
        finally:
            self._followed -= 1

    def share(self) -> float:
        """The least seconds between two look-ups of one task, were every followed task to look equally often."""
        if self._rate is None:
            return 0.0
        return max(self._followed, 1) / self._rate

    def rate_limited(self, retry_after: float | None) -> None:
        """ToAPIs answered 429 (or paused submits): nothing through this budget for `retry_after` seconds (a second
        without)."""
        seconds = retry_after if retry_after is not None and retry_after > 0 else 1.0
        self._held_until = max(self._held_until, self._clock() + seconds)

    async def take(self) -> None:
        """Wait until one more request fits the budget (and any hold a 429 asked for is over), then count it.
        Waiters go in turn."""
        if self._rate is None and self._held_until <= self._clock():
            return
        async with self._lock:
            held = self._held_until - self._clock()
            if held > 0:
                await self._sleep(held)
            if self._rate is None:
                return
            self._refill()
            if self._tokens < 1.0:
                await self._sleep((1.0 - self._tokens) / self._rate)
                self._refill()
            self._tokens -= 1.0

    def _refill(self) -> None:
        assert self._rate is not None
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
        self._updated = now

"""Per-member cooldowns, in memory: checked before an interaction's first response, so no I/O.

A cooldown starts when a request passes the checks and is given back if the request is refused later, so a
refused request does not make the member wait. It is not kept across restarts: a restart is rare enough.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Cooldowns:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._started: dict[tuple[int, int], float] = {}

    def remaining(self, guild_id: int, user_id: int, seconds: float) -> float:
        """Seconds until the member may ask again (0 if they may now)."""
        started = self._started.get((guild_id, user_id))
        if started is None or seconds <= 0:
            return 0.0
        return max(0.0, started + seconds - self._clock())

    def start(self, guild_id: int, user_id: int) -> None:
        self._started[(guild_id, user_id)] = self._clock()
        if len(self._started) > 10_000:
            self._forget_old()

    def cancel(self, guild_id: int, user_id: int) -> None:
        self._started.pop((guild_id, user_id), None)

    def _forget_old(self) -> None:
        # Cooldowns are minutes at most in practice; an hour-old entry can no longer hold anyone back.
        horizon = self._clock() - 3600
        self._started = {key: at for key, at in self._started.items() if at > horizon}

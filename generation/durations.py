"""How long tasks take, per model and resolution: the time left a member is shown, and what the look-up schedule
aims at (docs/architecture.md, "Look-ups timed to the task").

A duration runs from the submit to the first look-up that saw the task complete: what a member waits for. The
latest `KEEP` of each kind are kept in memory and in the database (storage/durations.py), so a restart keeps
them; recent ones weigh most. An estimate is given only once `ENOUGH` are known: fewer say too little.

Recording is never on a job's way to delivery: memory is updated at once, the database in the background, and a
database that fails only loses that one duration.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Final

from storage.durations import TaskDurationRepository

log = logging.getLogger(__name__)

KEEP: Final = 20
"""Durations kept per model and resolution."""
ENOUGH: Final = 5
"""Durations needed before anything is estimated."""
DECAY: Final = 0.9
"""Each older duration weighs this much of the next newer one (the 20th, about an eighth of the newest)."""


@dataclass(frozen=True)
class Expectation:
    """What recent tasks of one kind say about the next: their durations (oldest first) with their weights,
    and the weighted median."""

    durations: tuple[float, ...]
    weights: tuple[float, ...]

    @property
    def typical(self) -> float:
        """The weighted median: half the weight took at most this long."""
        ordered = sorted(zip(self.durations, self.weights, strict=True))
        half = sum(self.weights) / 2
        running = 0.0
        for duration, weight in ordered:
            running += weight
            if running >= half:
                return duration
        return ordered[-1][0]

    def remaining(self, elapsed: float) -> float | None:
        """Seconds left after `elapsed` since the submit, or None once the task is past the typical duration."""
        left = self.typical - elapsed
        return left if left > 0 else None


class TaskDurations:
    """The recent durations of each model and resolution, loaded at start-up and kept up to date."""

    def __init__(self, repository: TaskDurationRepository | None = None, *, keep: int = KEEP, enough: int = ENOUGH):
        self._repository = repository
        self._keep = keep
        self._enough = enough
        self._kinds: dict[tuple[str, str], deque[float]] = {}
        self._writes: set[asyncio.Task[None]] = set()

    async def load(self) -> None:
        """Read the latest durations of every kind (what another process recorded too). A database that fails
        leaves the estimates to build up again from the next tasks."""
        if self._repository is None:
            return
        try:
            stored = await self._repository.latest(self._keep)
        except Exception:
            log.exception("Reading the recent task durations failed; estimates start afresh")
            return
        for duration in stored:
            self._remember(duration.model, duration.resolution, duration.seconds)

    def expected(self, model: str, resolution: str) -> Expectation | None:
        """What recent tasks of this kind took, or None while fewer than `enough` are known."""
        durations = self._kinds.get((model, resolution))
        if durations is None or len(durations) < self._enough:
            return None
        count = len(durations)
        return Expectation(tuple(durations), tuple(DECAY ** (count - 1 - index) for index in range(count)))

    def record(self, job_id: str, model: str, resolution: str, seconds: float) -> None:
        """A task of this kind completed `seconds` after its submit: remember it now, store it in the background."""
        self._remember(model, resolution, seconds)
        if self._repository is None:
            return
        write = asyncio.create_task(self._store(job_id, model, resolution, seconds), name=f"duration-{job_id}")
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)

    async def aclose(self) -> None:
        """Finish the writes in progress (a stop should not lose them)."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    def _remember(self, model: str, resolution: str, seconds: float) -> None:
        kind = self._kinds.get((model, resolution))
        if kind is None:
            kind = self._kinds[(model, resolution)] = deque(maxlen=self._keep)
        kind.append(seconds)

    async def _store(self, job_id: str, model: str, resolution: str, seconds: float) -> None:
        assert self._repository is not None
        try:
            await self._repository.record(job_id, model, resolution, seconds, keep=self._keep)
        except Exception:
            log.warning("job %s: its task's duration could not be stored", job_id, exc_info=True)

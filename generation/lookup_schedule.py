"""When to look a running task up next: often near its expected end, rarely far from it (docs/architecture.md,
"Look-ups timed to the task").

Pure: no I/O and no clock, so that every decision can be tested from given numbers. What is known about a task
becomes a belief about when it ends, a mixture of normal distributions:

- the recent durations of tasks of its model and resolution (generation/durations.py), one bump each, weighted
  as the service weighs them;
- the progress it reports and its rate: a line through the progress seen at the look-ups so far, extended to
  100 %. With the history too, it narrows each bump (a product of normals); a little of each belief is kept
  apart, so that a progress that jumps, or a task unlike its history, is still caught, only later.

The next look-up comes when the chance that the task ends before it, given that it had not ended at the last
one, reaches `chance`: far from the likely end that chance builds up slowly, so look-ups are rare; near it,
every `min_interval`. Never later than a part (`far_fraction`) of the time to the likely end, so an early end is
seen; never later than `base_interval` while the belief is weak (one progress value, no history). Nothing known:
`base_interval`, as before. A task past every likely end is looked up ever less often, up to `base_interval`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from generation.durations import Expectation

HISTORY_SPREAD: Final = 0.04
"""How widely one recorded duration is believed, as a part of it (a 30 s task: ±1.2 s)."""
LEAST_SPREAD: Final = 0.5
"""No end is believed more narrowly than this part of `min_interval`: the look-ups cannot tell it closer."""
PROGRESS_SPREAD: Final = 0.25
"""How widely a progress line's end is believed, as a part of the time left to it."""
KEPT_APART: Final = 0.1
"""The weight of each belief kept apart from their product."""
QUIET: Final = 0.05
"""A stretch where the task ends with less than this chance may be skipped beyond `base_interval`."""
OVERDUE: Final = 0.02
"""Below this chance left that the task ends later, it is past every likely end."""


@dataclass(frozen=True)
class Sample:
    """One look-up of the running task: when (seconds since the submit) and the progress it reported."""

    at: float
    progress: int


@dataclass(frozen=True)
class ScheduleConfig:
    """The schedule's knobs, in seconds."""

    base_interval: float
    """TOAPIS_POLL_INTERVAL: the interval while nothing is known."""
    min_interval: float = 1.0
    """The least time between two look-ups of one task."""
    max_interval: float = 30.0
    """The most, however far the likely end."""
    chance: float = 0.25
    far_fraction: float = 0.5
    safety_interval: float | None = None
    """Webhooks announce the end: look-ups only at this slow, safety rate."""
    jitter: float = 0.1
    """Delays vary by up to this part of them, so that tasks submitted together do not look up together."""


@dataclass(frozen=True)
class _Bump:
    mean: float
    spread: float
    weight: float

    def above(self, moment: float) -> float:
        """The weight of this bump after `moment`."""
        return self.weight * (1.0 - _normal_cdf((moment - self.mean) / self.spread))


def next_delay(
    *,
    elapsed: float,
    samples: Sequence[Sample],
    history: Expectation | None,
    config: ScheduleConfig,
    floor: float = 0.0,
    rand: float = 0.5,
) -> float:
    """Seconds from now (`elapsed` seconds after the submit, just after a look-up that saw the task running, or
    before the first) to the next look-up. `floor`: the least delay the account's look-up budget leaves each
    task now; `rand` in [0, 1): where in the jitter this delay falls (0.5: none)."""
    least = max(config.min_interval, floor)
    if config.safety_interval is not None:
        return _jittered(max(config.safety_interval, least), config.jitter, rand, least)
    bumps = _belief(samples, history, LEAST_SPREAD * config.min_interval)
    if not bumps:
        return _jittered(max(config.base_interval, least), config.jitter, rand, least)
    left = sum(bump.above(elapsed) for bump in bumps)
    total = sum(bump.weight for bump in bumps)
    if left < OVERDUE * total:
        # Past every likely end: soon after it, look often; then less and less, up to the base interval.
        likely_end = sum(bump.mean * bump.weight for bump in bumps) / total
        delay = min(max(0.5 * (elapsed - likely_end), least), max(config.base_interval, least))
        return _jittered(delay, config.jitter, rand, least)
    # Beyond `base_interval` only over a stretch where the task is unlikely to end (`QUIET`), and never more
    # than a part of the time to the likely end: an early end is still seen.
    median = _moment_when(bumps, elapsed, 0.5 * left, math.inf)
    far = min(config.max_interval, max(config.far_fraction * (median - elapsed), least))
    quiet = _moment_when(bumps, elapsed, QUIET * left, elapsed + far) - elapsed
    likely = _moment_when(bumps, elapsed, config.chance * left, elapsed + config.base_interval) - elapsed
    delay = max(likely, quiet, least)
    return _jittered(delay, config.jitter, rand, least)


def progress_end(samples: Sequence[Sample], least: float = 0.5) -> tuple[float, float] | None:
    """When the reported progress says the task ends, and how widely that is believed; None if it says nothing.

    A line through the first and the latest progress values seen (their first sightings), extended to 100 %;
    with one value only, nothing (no rate yet, and one value may be a jump).
    """
    sightings: list[Sample] = []
    for sample in samples:
        if sample.progress > 0 and (not sightings or sample.progress > sightings[-1].progress):
            sightings.append(sample)
    if not sightings:
        return None
    last = sightings[-1]
    latest = samples[-1].at
    if last.progress >= 100:
        return latest, least
    if len(sightings) == 1:
        return None  # no rate yet (and one value may be a jump: it says little about the end)
    first = sightings[0]
    rate = (last.progress - first.progress) / (last.at - first.at) if last.at > first.at else 0.0
    if rate <= 0:
        return None
    end = last.at + (100 - last.progress) / rate
    return end, max(least, PROGRESS_SPREAD * max(end - latest, 0.0))


def _belief(samples: Sequence[Sample], history: Expectation | None, least: float) -> list[_Bump]:
    """The bumps of the belief (none when nothing is known), none narrower than `least`."""
    past = _history_bumps(history, least) if history is not None else []
    progress = progress_end(samples, least)
    if progress is None:
        return past
    end, spread = progress
    now = _Bump(end, spread, 1.0)
    if not past:
        return [now]
    total = sum(bump.weight for bump in past)
    both = [_product(bump, now) for bump in past]
    agreement = sum(bump.weight for bump in both)
    bumps = []
    if agreement > 0:  # else they disagree beyond any overlap: each belief is kept as it is
        bumps = [_Bump(bump.mean, bump.spread, (1 - 2 * KEPT_APART) * bump.weight / agreement) for bump in both]
    bumps += [_Bump(bump.mean, bump.spread, KEPT_APART * bump.weight / total) for bump in past]
    bumps.append(_Bump(end, spread, KEPT_APART))
    return bumps


def _history_bumps(history: Expectation, least: float) -> list[_Bump]:
    """One bump per recent duration, as wide as the durations are spread (Silverman's rule of thumb), at least
    `HISTORY_SPREAD` of the duration."""
    weights, durations = history.weights, history.durations
    total = sum(weights)
    mean = sum(d * w for d, w in zip(durations, weights, strict=True)) / total
    deviation = math.sqrt(sum(w * (d - mean) ** 2 for d, w in zip(durations, weights, strict=True)) / total)
    width = 0.9 * deviation * len(durations) ** -0.2
    return [_Bump(d, max(least, HISTORY_SPREAD * d, width), w) for d, w in zip(durations, weights, strict=True)]


def _product(a: _Bump, b: _Bump) -> _Bump:
    """The bump of a product of two normals, weighted by how well they agree."""
    va, vb = a.spread**2, b.spread**2
    mean = (a.mean * vb + b.mean * va) / (va + vb)
    spread = math.sqrt(va * vb / (va + vb))
    together = math.sqrt(va + vb)
    agreement = math.exp(-0.5 * ((a.mean - b.mean) / together) ** 2) / together
    return _Bump(mean, spread, a.weight * agreement)


def _moment_when(bumps: Sequence[_Bump], start: float, mass: float, limit: float) -> float:
    """The first moment after `start` by which `mass` of the belief has passed (bisection), at most `limit`."""
    left_at_start = sum(bump.above(start) for bump in bumps)

    def passed(moment: float) -> float:
        return left_at_start - sum(bump.above(moment) for bump in bumps)

    high = limit
    if not math.isfinite(high):
        high = max(bump.mean + 8 * bump.spread for bump in bumps)
        if high <= start:
            return start
    if passed(high) < mass:
        return high
    low = start
    for _ in range(40):
        middle = (low + high) / 2
        if passed(middle) >= mass:
            high = middle
        else:
            low = middle
        if high - low < 0.01:
            break
    return high


def _normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _jittered(delay: float, jitter: float, rand: float, least: float) -> float:
    return max(delay * (1.0 + jitter * (2.0 * rand - 1.0)), least)

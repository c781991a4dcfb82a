"""The look-up schedule's decisions from given progress and history: the base interval when nothing is known,
rare look-ups far from the expected end and one a second near it, never faster than the budget's share, the
slow safety interval with webhooks, and less and less often once a task is overdue."""

from __future__ import annotations

import itertools

import pytest

from generation.durations import DECAY, Expectation
from generation.lookup_schedule import Sample, ScheduleConfig, next_delay, progress_end

CONFIG = ScheduleConfig(base_interval=5.0)


def history(*durations: float) -> Expectation:
    count = len(durations)
    return Expectation(tuple(durations), tuple(DECAY ** (count - 1 - index) for index in range(count)))


THIRTY = history(29.6, 30.4, 30.1, 29.9, 30.6, 30.2, 29.8, 30.3)


def delay(elapsed: float, samples: tuple[Sample, ...] = (), past: Expectation | None = None, **knobs: float) -> float:
    config = ScheduleConfig(**{"base_interval": 5.0, **knobs})
    return next_delay(elapsed=elapsed, samples=samples, history=past, config=config)


def looks(past: Expectation | None, samples_at: dict[float, int] | None = None, until: float = 40.0) -> list[float]:
    """The moments of the look-ups of a task that never ends, from its submit, with no jitter."""
    moments: list[float] = []
    samples: list[Sample] = []
    now = 0.0
    while now < until:
        now += next_delay(elapsed=now, samples=samples, history=past, config=CONFIG)
        moments.append(now)
        progress = 0 if samples_at is None else max((p for at, p in samples_at.items() if at <= now), default=0)
        samples.append(Sample(now, progress))
    return moments


def test_with_nothing_known_the_base_interval_is_kept() -> None:
    assert delay(0.0) == 5.0
    assert delay(12.0, (Sample(5.0, 0), Sample(10.0, 0))) == 5.0


def test_the_delay_varies_by_the_jitter_and_never_below_the_least_interval() -> None:
    config = ScheduleConfig(base_interval=5.0, jitter=0.1)
    spread = [next_delay(elapsed=0, samples=(), history=None, config=config, rand=r) for r in (0.0, 0.5, 0.999)]
    assert spread[0] == pytest.approx(4.5)
    assert spread[1] == 5.0
    assert spread[2] == pytest.approx(5.5, abs=0.01)
    near_end = [next_delay(elapsed=30.0, samples=(), history=THIRTY, config=config, rand=r) for r in (0.0, 0.999)]
    assert min(near_end) >= config.min_interval


def test_a_history_makes_look_ups_rare_far_from_the_end_and_one_a_second_near_it() -> None:
    moments = looks(THIRTY, until=31.0)
    assert moments[0] >= 12.0  # far from the end: the first look waits
    before = [moment for moment in moments if moment < 27.0]
    assert len(before) <= 4
    near = [moment for moment in moments if 28.5 <= moment <= 31.0]
    gaps = [b - a for a, b in itertools.pairwise(near)]
    assert gaps
    assert all(gap == pytest.approx(1.0, abs=0.01) for gap in gaps)
    assert len([moment for moment in moments if moment <= 31.0]) <= 8


def test_a_climbing_progress_alone_times_the_look_ups() -> None:
    # 10 % at 5 s, 40 % at 15 s: 3 % a second, so the end is expected at 35 s.
    samples = (Sample(5.0, 10), Sample(10.0, 25), Sample(15.0, 40))
    assert progress_end(samples) == pytest.approx((35.0, 5.0))
    assert delay(15.0, samples) > 5.0  # the end is far: beyond the base interval
    late_samples = (*samples, Sample(30.0, 85))
    assert delay(30.0, late_samples) < 5.0  # it is near: sooner


def test_one_progress_value_says_nothing_a_jump_may_be_anywhere() -> None:
    samples = (Sample(5.0, 0), Sample(10.0, 0), Sample(15.0, 60))
    assert progress_end(samples) is None
    assert delay(15.0, samples) == 5.0


def test_a_progress_at_100_means_the_end_is_now() -> None:
    samples = (Sample(5.0, 40), Sample(10.0, 100))
    assert progress_end(samples) == pytest.approx((10.0, 0.5))
    assert delay(10.0, samples) == 1.0


def test_a_history_and_a_progress_that_agree_keep_the_end_where_both_put_it() -> None:
    samples = (Sample(10.0, 33), Sample(20.0, 66))
    assert progress_end(samples) == pytest.approx((30.3, 2.58), abs=0.01)
    for elapsed in (25.0, 27.0, 28.0, 29.0):
        assert delay(elapsed, samples, THIRTY) == pytest.approx(delay(elapsed, (), THIRTY), abs=0.2)


def test_a_task_unlike_its_history_is_still_caught() -> None:
    # The history says 30 s; this task's progress says 60 s. Near 30 s it is looked up often (the history may
    # be right); past it, the progress is followed: rare look-ups while its end is far, often near it.
    samples = (Sample(10.0, 16), Sample(20.0, 33))
    assert delay(29.0, samples, THIRTY) <= 1.5
    later = (*samples, Sample(40.0, 66))
    end, _ = progress_end(later) or (0.0, 0.0)
    assert 60.0 <= end <= 61.0
    assert 5.0 < delay(40.0, later, THIRTY) <= 0.5 * (end - 40.0) + 0.1
    near = (*later, Sample(58.0, 96))
    assert delay(58.0, near, THIRTY) <= 2.5


def test_a_wide_history_without_progress_waits_beyond_the_base_interval_only_before_its_shortest() -> None:
    wide = history(12.0, 85.0, 40.0, 63.0, 20.0, 77.0, 31.0, 55.0)
    assert delay(0.0, (), wide) < 12.0
    for now in (15.0, 30.0, 60.0):
        assert delay(now, (), wide) <= 5.0


def test_an_overdue_task_is_looked_up_less_and_less_up_to_the_base_interval() -> None:
    assert delay(32.0, (), THIRTY) < delay(36.0, (), THIRTY) <= 5.0
    assert delay(60.0, (), THIRTY) == 5.0


def test_the_budget_share_is_the_least_delay() -> None:
    assert next_delay(elapsed=30.0, samples=(), history=THIRTY, config=CONFIG, floor=2.5) >= 2.5
    assert next_delay(elapsed=0.0, samples=(), history=None, config=CONFIG, floor=8.0) == 8.0


def test_with_webhooks_only_the_safety_interval_is_used() -> None:
    config = ScheduleConfig(base_interval=5.0, safety_interval=60.0)
    for now in (0.0, 29.5, 30.5, 45.0):
        assert next_delay(elapsed=now, samples=(), history=THIRTY, config=config) == 60.0
    assert next_delay(elapsed=0.0, samples=(), history=None, config=config) == 60.0


def test_the_least_interval_scales_the_schedule() -> None:
    # Ten times faster: a 3 s history, a 0.1 s least interval, a 0.5 s base.
    fast = history(*(duration / 10 for duration in THIRTY.durations))
    config = ScheduleConfig(base_interval=0.5, min_interval=0.1, max_interval=3.0)
    assert next_delay(elapsed=2.95, samples=(), history=fast, config=config) == pytest.approx(0.1)
    assert next_delay(elapsed=0.0, samples=(), history=fast, config=config) >= 1.2

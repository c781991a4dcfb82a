"""The retry policy: capped exponential backoff, jitter, Retry-After."""

from __future__ import annotations

import pytest

from toapis import RetryPolicy


def test_backoff_doubles_from_half_a_second_up_to_the_cap() -> None:
    policy = RetryPolicy(max_retries=10)
    delays = [policy.backoff(attempt, rand=lambda: 0.0) for attempt in range(7)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_jitter_takes_off_at_most_a_quarter() -> None:
    policy = RetryPolicy()
    assert policy.backoff(0, rand=lambda: 1.0) == pytest.approx(0.375)
    assert policy.backoff(3, rand=lambda: 0.5) == pytest.approx(4.0 * 0.875)


def test_no_delay_once_the_retries_are_used_up() -> None:
    policy = RetryPolicy(max_retries=2)
    assert policy.delay_before_retry(0) is not None
    assert policy.delay_before_retry(1) is not None
    assert policy.delay_before_retry(2) is None
    assert RetryPolicy(max_retries=0).delay_before_retry(0) is None


def test_retry_after_replaces_the_backoff() -> None:
    policy = RetryPolicy()
    assert policy.delay_before_retry(0, retry_after=7.0) == 7.0
    assert policy.delay_before_retry(1, retry_after=0.0) == 0.0
    assert policy.delay_before_retry(0, retry_after=-3.0) == 0.0


def test_a_retry_after_longer_than_the_limit_is_not_waited_for() -> None:
    policy = RetryPolicy(max_retry_after=120.0)
    assert policy.delay_before_retry(0, retry_after=120.0) == 120.0
    assert policy.delay_before_retry(0, retry_after=121.0) is None


@pytest.mark.parametrize(
    "options",
    [{"max_retries": -1}, {"initial_delay": -0.1}, {"max_delay": -1.0}, {"jitter": 1.5}, {"max_retry_after": -1.0}],
)
def test_nonsense_policies_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        RetryPolicy(**options)  # type: ignore[arg-type]

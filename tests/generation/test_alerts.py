"""Operator alerts: the first of a burst is passed on, the rest held back until the burst ends or is resolved."""

from __future__ import annotations

import logging

import pytest

from generation.alerts import ALERT_TEXT, Alert, AlertKind, AlertThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sent() -> list[Alert]:
    return []


@pytest.fixture
def throttle(sent: list[Alert], clock: Clock) -> AlertThrottle:
    return AlertThrottle(sent.append, quiet_period=60.0, clock=clock)


def test_the_first_alert_of_a_burst_is_passed_on_and_the_rest_held_back(
    throttle: AlertThrottle, sent: list[Alert], clock: Clock
) -> None:
    assert throttle.raise_alert(AlertKind.API_KEY_REJECTED, "Invalid API key provided (HTTP 401)") is True
    for _ in range(5):
        clock.now += 10
        assert throttle.raise_alert(AlertKind.API_KEY_REJECTED, "again") is False
    assert sent == [Alert(AlertKind.API_KEY_REJECTED, "Invalid API key provided (HTTP 401)")]


def test_a_burst_ends_after_a_quiet_period_without_one(
    throttle: AlertThrottle, sent: list[Alert], clock: Clock
) -> None:
    throttle.raise_alert(AlertKind.BALANCE_EXHAUSTED)
    clock.now += 50
    assert throttle.raise_alert(AlertKind.BALANCE_EXHAUSTED) is False  # still the burst: it extends it
    clock.now += 59.9
    assert throttle.raise_alert(AlertKind.BALANCE_EXHAUSTED) is False
    clock.now += 60
    assert throttle.raise_alert(AlertKind.BALANCE_EXHAUSTED) is True
    assert [alert.kind for alert in sent] == [AlertKind.BALANCE_EXHAUSTED] * 2


def test_kinds_are_throttled_separately(throttle: AlertThrottle, sent: list[Alert]) -> None:
    assert throttle.raise_alert(AlertKind.UPSTREAM_DOWN, "502")
    assert throttle.raise_alert(AlertKind.API_KEY_REJECTED)
    assert not throttle.raise_alert(AlertKind.UPSTREAM_DOWN, "504")
    assert throttle.raise_alert(AlertKind.UPSTREAM_BACK)
    assert [alert.kind for alert in sent] == [
        AlertKind.UPSTREAM_DOWN,
        AlertKind.API_KEY_REJECTED,
        AlertKind.UPSTREAM_BACK,
    ]


def test_resolving_a_problem_starts_a_new_burst(throttle: AlertThrottle, sent: list[Alert]) -> None:
    throttle.raise_alert(AlertKind.API_KEY_REJECTED)
    throttle.resolve(AlertKind.API_KEY_REJECTED)
    assert throttle.raise_alert(AlertKind.API_KEY_REJECTED) is True
    throttle.resolve(AlertKind.UPSTREAM_DOWN)  # never raised: nothing to resolve, no error
    assert len(sent) == 2


def test_a_failing_sink_is_logged_and_does_not_reach_the_caller(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    def broken(alert: Alert) -> None:
        raise RuntimeError("the log channel is gone")

    throttle = AlertThrottle(broken, quiet_period=60.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="generation.alerts"):
        assert throttle.raise_alert(AlertKind.UPSTREAM_DOWN, "timeout") is True
    assert "Alert sink failed" in caplog.text
    assert "Operator alert: upstream_down timeout" in caplog.text
    assert throttle.raise_alert(AlertKind.UPSTREAM_DOWN) is False  # it still counts as told


def test_alert_text_is_the_operators_sentence_with_the_detail() -> None:
    assert set(ALERT_TEXT) == set(AlertKind)
    plain = Alert(AlertKind.UPSTREAM_BACK, "")
    assert plain.text == "ToAPIs answers again: /imagine works again."
    detailed = Alert(AlertKind.API_KEY_REJECTED, "Invalid API key provided")
    assert detailed.text == (
        "ToAPIs rejected the API key: generation is stopped until TOAPIS_API_KEY is fixed. (Invalid API key provided)"
    )

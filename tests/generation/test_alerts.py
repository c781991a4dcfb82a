"""Operator alerts: the first of a burst is passed on, the rest held back until the burst ends or is resolved; with
a shared database, only the process that claimed a burst tells the operator."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from generation.alerts import ALERT_TEXT, Alert, AlertKind, AlertThrottle
from storage.store import Storage


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


# -- several processes sharing the database --------------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Storage]:
    async with await Storage.open(f"sqlite:///{tmp_path / 'imagine.db'}") as opened:
        yield opened


def process(store: Storage, clock: Clock) -> tuple[AlertThrottle, list[Alert]]:
    """One process's throttle on the shared database, and what it passed on."""
    sent: list[Alert] = []
    return AlertThrottle(sent.append, quiet_period=60.0, clock=clock, shared=store.alert_bursts), sent


async def test_every_process_tells_its_servers_and_only_the_first_to_report_a_burst_tells_the_operator(
    store: Storage, clock: Clock
) -> None:
    (first, first_sent), (second, second_sent) = process(store, clock), process(store, clock)
    assert first.raise_alert(AlertKind.API_KEY_REJECTED, "401")
    await first.idle()
    assert second.raise_alert(AlertKind.API_KEY_REJECTED, "401")
    await second.idle()
    assert first_sent == [Alert(AlertKind.API_KEY_REJECTED, "401", to_operator=True)]
    assert second_sent == [Alert(AlertKind.API_KEY_REJECTED, "401", to_operator=False)]


async def test_a_problem_resolved_anywhere_lets_the_next_burst_reach_the_operator(store: Storage, clock: Clock) -> None:
    (first, first_sent), (second, second_sent) = process(store, clock), process(store, clock)
    first.raise_alert(AlertKind.UPSTREAM_DOWN, "502")
    # Asked for at once: each step waits for the one before it, so the burst is claimed, ended, claimed again.
    first.resolve(AlertKind.UPSTREAM_DOWN)
    first.raise_alert(AlertKind.UPSTREAM_DOWN, "504")
    await first.idle()
    second.raise_alert(AlertKind.UPSTREAM_DOWN, "504")
    await second.idle()
    assert [alert.to_operator for alert in first_sent] == [True, True]
    assert [alert.to_operator for alert in second_sent] == [False]


async def test_when_the_database_cannot_say_the_operator_is_told_anyway(
    store: Storage, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    throttle, sent = process(store, clock)
    await store.close()
    with caplog.at_level(logging.WARNING, logger="generation.alerts"):
        throttle.raise_alert(AlertKind.BALANCE_EXHAUSTED, "402")
        await throttle.idle()
    assert sent == [Alert(AlertKind.BALANCE_EXHAUSTED, "402", to_operator=True)]
    assert "Could not check whether another process already reported the alert" in caplog.text

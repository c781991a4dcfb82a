"""The circuit breaker: opens after repeated failures or at once, probes, closes, tells its listener."""

from __future__ import annotations

import asyncio

import pytest

from generation.breaker import CircuitBreaker


class Probe:
    def __init__(self, answers: list[bool]) -> None:
        self.answers = answers
        self.calls = 0
        self.called_twice = asyncio.Event()

    async def __call__(self) -> bool:
        self.calls += 1
        if self.calls >= 2:
            self.called_twice.set()
        if self.calls > len(self.answers):
            return self.answers[-1]
        return self.answers[self.calls - 1]


async def test_opens_after_threshold_consecutive_failures_and_closes_after_a_good_probe() -> None:
    changes: list[tuple[bool, str]] = []
    probe = Probe([False, False, True])
    breaker = CircuitBreaker(
        threshold=3, probe=probe, probe_interval=0.001, listener=lambda is_open, why: changes.append((is_open, why))
    )
    breaker.record_failure("502")
    breaker.record_failure("502")
    breaker.record_success()  # a success in between resets the count
    breaker.record_failure("502")
    breaker.record_failure("502")
    closed_before = breaker.is_open
    breaker.record_failure("504 from the gateway")
    assert (closed_before, breaker.is_open, breaker.reason) == (False, True, "504 from the gateway")
    await asyncio.wait_for(breaker.wait_closed(), timeout=5)
    assert (breaker.is_open, breaker.reason) == (False, None)
    assert probe.calls == 3
    assert changes == [(True, "504 from the gateway"), (False, "the upstream answers again")]
    await breaker.aclose()


async def test_trip_opens_at_once_and_a_raising_probe_counts_as_unhealthy() -> None:
    calls = 0

    async def probe() -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("probe exploded")
        return True

    breaker = CircuitBreaker(threshold=5, probe=probe, probe_interval=0.001)
    breaker.trip("API key rejected")
    breaker.trip("again")  # already open: the first reason stays
    assert breaker.is_open
    assert breaker.reason == "API key rejected"
    await asyncio.wait_for(breaker.wait_closed(), timeout=5)
    assert calls == 2
    await breaker.aclose()


async def test_aclose_stops_probing() -> None:
    probe = Probe([False])
    breaker = CircuitBreaker(threshold=1, probe=probe, probe_interval=0.001)
    breaker.record_failure("down")
    await asyncio.wait_for(probe.called_twice.wait(), timeout=5)
    await breaker.aclose()
    seen = probe.calls
    await asyncio.sleep(0.02)
    assert probe.calls == seen
    assert breaker.is_open


def test_threshold_must_be_positive() -> None:
    async def probe() -> bool:
        return True

    with pytest.raises(ValueError, match="threshold"):
        CircuitBreaker(threshold=0, probe=probe, probe_interval=1)

"""Alert bursts shared through the database: of the processes reporting a burst, exactly one claims it, again only
after a quiet period or once the problem was resolved."""

from __future__ import annotations

import asyncio
import math

from storage.alert_bursts import AlertBursts
from storage.connect import open_database
from storage.database import Database
from tests.storage.conftest import FakeClock

QUIET = 600.0


async def test_a_burst_is_claimed_once_until_its_quiet_period_has_passed(db: Database, clock: FakeClock) -> None:
    bursts = AlertBursts(db, clock)
    assert await bursts.begin("api_key_rejected", QUIET)
    assert not await bursts.begin("api_key_rejected", QUIET)
    assert await bursts.begin("upstream_down", QUIET)  # kinds are claimed separately
    clock.advance(seconds=QUIET - 0.001)
    assert not await bursts.begin("api_key_rejected", QUIET)
    clock.advance(seconds=0.001)
    assert await bursts.begin("api_key_rejected", QUIET)
    assert not await bursts.begin("api_key_rejected", QUIET)  # counted from the new claim


async def test_ending_a_burst_lets_the_next_report_claim_a_new_one(db: Database, clock: FakeClock) -> None:
    bursts = AlertBursts(db, clock)
    assert await bursts.begin("balance_exhausted", QUIET)
    await bursts.end("balance_exhausted")
    await bursts.end("upstream_back")  # never claimed: nothing to end, no error
    assert await bursts.begin("balance_exhausted", QUIET)


async def test_a_claim_without_a_quiet_period_lasts_until_it_is_ended(db: Database, clock: FakeClock) -> None:
    bursts = AlertBursts(db, clock)
    assert await bursts.begin("low_balance", math.inf)
    clock.advance(seconds=365 * 24 * 3600)
    assert not await bursts.begin("low_balance", math.inf)
    await bursts.end("low_balance")
    assert await bursts.begin("low_balance", math.inf)


async def test_of_processes_reporting_at_once_exactly_one_claims_the_burst(
    db: Database, db_url: str, clock: FakeClock
) -> None:
    async with await open_database(db_url) as other:
        ours, theirs = AlertBursts(db, clock), AlertBursts(other, clock)
        for _ in range(20):
            claims = await asyncio.gather(ours.begin("upstream_down", QUIET), theirs.begin("upstream_down", QUIET))
            assert sorted(claims) == [False, True]
            await ours.end("upstream_down")

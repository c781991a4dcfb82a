"""No quota is ever exceeded, whatever the concurrency: coroutines, two connections, two processes.

Every test runs on SQLite (one file) and on PostgreSQL (one schema): two `Database` objects are two SQLite
connections, or two connection pools, as two processes would have.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from storage.connect import open_database
from storage.database import Database
from storage.quotas import OperatorDefaults, Period, QuotaRepository, RuleScope
from tests.storage._racing import WAIT, race
from tests.storage.conftest import FakeClock

GUILD = 42
MEMBER = 7
LIMIT = 100


async def ledger_total(db: Database) -> int:
    return int(await db.fetch_value("SELECT COALESCE(SUM(images), 0) FROM quota_ledger"))


async def test_1000_concurrent_reservations_on_one_connection_grant_exactly_the_limit(
    db: Database, clock: FakeClock
) -> None:
    quotas = QuotaRepository(db, OperatorDefaults(), clock)
    await quotas.set_rule(GUILD, RuleScope.MEMBER, LIMIT, Period.DAY)
    results = await asyncio.wait_for(
        asyncio.gather(*(quotas.reserve(f"job{i}", GUILD, MEMBER, [], 1) for i in range(1000))), WAIT
    )
    assert sum(r.granted for r in results) == LIMIT
    assert await ledger_total(db) == LIMIT
    refused = [r for r in results if not r.granted]
    assert all(r.refused_by is not None and r.refused_by.used == LIMIT for r in refused)


async def test_1000_concurrent_reservations_through_two_connections_grant_exactly_the_limit(
    db_url: str, clock: FakeClock
) -> None:
    # Two Database objects on one database: two SQLite connections (each with its own thread), or two pools.
    first = await open_database(db_url, busy_timeout=WAIT)
    second = await open_database(db_url, busy_timeout=WAIT)
    try:
        one = QuotaRepository(first, OperatorDefaults(), clock)
        two = QuotaRepository(second, OperatorDefaults(), clock)
        await one.set_rule(GUILD, RuleScope.SERVER, LIMIT, Period.DAY)
        # Taking turns first: each connection sees what the other wrote the moment it was committed.
        for i in range(20):
            assert (await (one if i % 2 else two).reserve(f"turn{i}", GUILD, i, [], 1)).granted
        # Then 1,000 at once, half through each connection, racing for the 80 images left.
        reservations = [(one if i % 2 else two).reserve(f"job{i}", GUILD, i % 50, [], 1) for i in range(1000)]
        results = await asyncio.wait_for(asyncio.gather(*reservations), WAIT)
        assert sum(r.granted for r in results) == LIMIT - 20
        assert await ledger_total(first) == await ledger_total(second) == LIMIT
        assert all(r.refused_by is not None and r.refused_by.used == LIMIT for r in results if not r.granted)
    finally:
        await first.close()
        await second.close()


async def test_mixed_sizes_never_overshoot(db: Database, clock: FakeClock) -> None:
    quotas = QuotaRepository(db, OperatorDefaults(), clock)
    await quotas.set_rule(GUILD, RuleScope.SERVER, 97, Period.WEEK)
    results = await asyncio.gather(*(quotas.reserve(f"job{i}", GUILD, i, [], 1 + i % 4) for i in range(300)))
    total = sum(r.requested for r in results if r.granted)
    assert total == await ledger_total(db)
    assert 97 - 3 <= total <= 97  # full but never over: at most a 4 that no longer fits is refused


async def test_concurrent_refunds_and_reservations_stay_exact(db: Database, clock: FakeClock) -> None:
    quotas = QuotaRepository(db, OperatorDefaults(), clock)
    await quotas.set_rule(GUILD, RuleScope.MEMBER, 10, Period.DAY)
    first = await asyncio.gather(*(quotas.reserve(f"a{i}", GUILD, MEMBER, [], 1) for i in range(10)))
    assert all(r.granted for r in first)
    # five refunds race twenty new requests: exactly five of those can fit
    outcome = await asyncio.gather(
        *(quotas.refund(f"a{i}") for i in range(5)),
        *(quotas.reserve(f"b{i}", GUILD, MEMBER, [], 1) for i in range(20)),
    )
    refunds, reservations = outcome[:5], outcome[5:]
    assert refunds == [1] * 5
    granted = sum(1 for r in reservations if getattr(r, "granted", False))
    assert granted <= 5
    assert await ledger_total(db) == 5 + granted <= 10


async def test_concurrent_refunds_through_two_connections_give_back_exactly_what_was_held(
    db: Database, db_url: str, clock: FakeClock
) -> None:
    async with await open_database(db_url, busy_timeout=WAIT) as other:
        one, two = QuotaRepository(db, OperatorDefaults(), clock), QuotaRepository(other, OperatorDefaults(), clock)
        for job in range(10):
            assert (await one.reserve(f"job{job}", GUILD, MEMBER, [], 4)).granted
        # 80 refunds of one image race for the 40 held: without serializing, two would read the same count and
        # both take it, giving back more than was held (or breaking the ledger's images >= 0 check).
        refunds = [(one if i % 2 else two).refund(f"job{i % 10}", 1) for i in range(80)]
        given_back = await asyncio.wait_for(asyncio.gather(*refunds), WAIT)
        assert sum(given_back) == 40
        assert await ledger_total(db) == 0
        # and forgiving while reserving never lets a member past the limit
        await one.set_rule(GUILD, RuleScope.MEMBER, 5, Period.DAY)
        outcome = await asyncio.gather(
            two.forgive(GUILD, MEMBER),
            *((one if i % 2 else two).reserve(f"late{i}", GUILD, MEMBER, [], 1) for i in range(20)),
        )
        assert 5 <= sum(1 for r in outcome[1:] if getattr(r, "granted", False)) <= 10


SCRIPT = """
import asyncio, sys
from datetime import datetime
from storage.connect import open_database
from storage.quotas import OperatorDefaults, QuotaRepository

async def main(url, prefix, count, now):
    db = await open_database(url, busy_timeout=60)
    quotas = QuotaRepository(db, OperatorDefaults(), lambda: now)
    print("ready", flush=True)
    sys.stdin.readline()  # start together
    results = await asyncio.gather(*(quotas.reserve(f"{prefix}{i}", 42, i % 50, [], 1) for i in range(count)))
    print(sum(r.granted for r in results), flush=True)
    await db.close()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), datetime.fromisoformat(sys.argv[4])))
"""


async def test_two_processes_reserving_at_once_grant_exactly_the_limit(db: Database, db_url: str) -> None:
    """1,000 reservations, 500 from each of two processes started together, against a limit of 100."""
    now = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
    quotas = QuotaRepository(db, OperatorDefaults(), lambda: now)
    await quotas.set_rule(GUILD, RuleScope.SERVER, LIMIT, Period.DAY)
    outputs = await race(SCRIPT, [[db_url, prefix, "500", now.isoformat()] for prefix in ("p", "q")])
    granted = [int(stdout.strip()) for stdout in outputs]
    assert sum(granted) == LIMIT
    assert await ledger_total(db) == LIMIT


async def test_twenty_members_at_once_against_a_pool_of_ten_weighted_images(db: Database, clock: FakeClock) -> None:
    # Each asks for one 2K image, which counts as 2: the pool of 10 takes exactly five of them, whatever the order.
    quotas = QuotaRepository(db, OperatorDefaults(), clock)
    await quotas.set_rule(GUILD, RuleScope.SERVER, 10, Period.DAY)
    results = await asyncio.wait_for(
        asyncio.gather(*(quotas.reserve(f"job{i}", GUILD, i, [], 1, weight=2) for i in range(20))), WAIT
    )
    assert sum(r.granted for r in results) == 5
    assert await ledger_total(db) == 10
    assert all(
        r.refused_by is not None and (r.refused_by.used, r.requested) == (10, 2) for r in results if not r.granted
    )
    # A refund gives back exactly what the job reserved, its weight included.
    granted = next(r for r in results if r.granted)
    assert await quotas.refund(granted.job_id) == 2
    assert await ledger_total(db) == 8


async def test_members_at_once_with_weights_1_2_and_4_never_exceed_a_pool_of_ten(
    db: Database, clock: FakeClock
) -> None:
    # 1K, 2K and 4K images by default weights, seven of each, racing for a pool of 10: whatever the order, the
    # pool is never exceeded, each reservation holds its own weight, and a request is refused only when its
    # weight does not fit in what the others left.
    quotas = QuotaRepository(db, OperatorDefaults(), clock)
    await quotas.set_rule(GUILD, RuleScope.SERVER, 10, Period.DAY)
    weights = {f"job{i}": (1, 2, 4)[i % 3] for i in range(21)}
    results = await asyncio.wait_for(
        asyncio.gather(*(quotas.reserve(job, GUILD, i, [], 1, weight=w) for i, (job, w) in enumerate(weights.items()))),
        WAIT,
    )
    total = await ledger_total(db)
    granted = [r for r in results if r.granted]
    refused = [r for r in results if not r.granted]
    assert total <= 10
    assert total == sum(weights[r.job_id] for r in granted)
    assert all(r.requested == weights[r.job_id] for r in results)
    assert all(r.refused_by is not None and r.refused_by.used + r.requested > 10 for r in refused)
    assert all(total + r.requested > 10 for r in refused)
    assert refused  # 49 weighted images asked of 10
    assert granted
    # Each refund gives back what its own job reserved, whatever the others weigh.
    for result in granted:
        assert await quotas.refund(result.job_id) == weights[result.job_id]
    assert await ledger_total(db) == 0

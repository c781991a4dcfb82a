"""The queries a process runs over and over read through an index, on both engines: none of them reads every row of
a table that keeps growing (jobs and the usage log are kept for good, the ledger for 62 days).

Each repository call runs as it does in the bot, its statements are recorded, and each is explained by the engine:
SQLite's plan must not `SCAN` a table without an index, PostgreSQL's (with sequential scans priced out, so that a
table of a few rows is not read whole just because it is small) must hold no `Seq Scan`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from storage.database import Database, Params
from storage.dialect import Engine
from storage.jobs import JobState
from storage.quotas import OperatorDefaults, Period, RuleScope
from storage.store import Storage
from tests.storage.conftest import FakeClock

GUILD = 900_000_000_000_000_001
ROLE = 777_000_000_000_000_001
MEMBER = 42
GROWING = ("jobs", "job_events", "usage_log", "quota_ledger", "webhook_events")
_SQLITE_FULL_SCAN = re.compile(r"\bSCAN (\w+)(?! USING (?:COVERING )?INDEX)")


class Recorder:
    """Notes every statement the repositories send, with its parameters."""

    def __init__(self, db: Database) -> None:
        self.statements: list[tuple[str, Params | None]] = []
        self._execute, self._fetch_all = db.execute, db.fetch_all

        async def execute(sql: str, params: Params | None = None) -> int:
            self.statements.append((sql, params))
            return await self._execute(sql, params)

        async def fetch_all(sql: str, params: Params | None = None) -> list[Any]:
            self.statements.append((sql, params))
            return await self._fetch_all(sql, params)

        db.execute = execute  # type: ignore[method-assign]
        db.fetch_all = fetch_all  # type: ignore[method-assign]

    async def full_scans(self, db: Database) -> list[tuple[str, str]]:
        """The growing tables some recorded statement reads whole, with the statement."""
        found: list[tuple[str, str]] = []
        for sql, params in self.statements:
            if not re.match(r"\s*(SELECT|UPDATE|DELETE|INSERT)", sql, re.IGNORECASE) or "pg_advisory" in sql:
                continue
            if db.dialect.engine is Engine.SQLITE:
                plan = "\n".join(str(row[3]) for row in await self._fetch_all("EXPLAIN QUERY PLAN " + sql, params))
                tables = _SQLITE_FULL_SCAN.findall(plan)
            else:
                async with db.transaction():
                    await self._execute("SET LOCAL enable_seqscan = off")
                    plan = "\n".join(str(row[0]) for row in await self._fetch_all("EXPLAIN " + sql, params))
                tables = re.findall(r"Seq Scan on (\w+)", plan)
            found += [(table, " ".join(sql.split())) for table in tables if table in GROWING]
        return found


async def _a_finished_history(store: Storage, clock: FakeClock) -> str:
    """A few jobs of every fate, so that every statement has rows to plan for; the id of one of them."""
    job_id = ""
    for index in range(6):
        clock.advance(minutes=5)
        job = await store.jobs.create(
            guild_id=GUILD, channel_id=5, user_id=MEMBER, kind="imagine", prompt=f"p{index}", n=1, model="m"
        )
        job_id = job.id
        await store.quotas.reserve(job.id, GUILD, MEMBER, [ROLE], 1)
        await store.jobs.claim(job.id, "process-a", 60)
        if index % 2:
            await store.jobs.set_state(job.id, JobState.RUNNING, task_id=f"t{index}")
        else:
            await store.jobs.fail(job.id, "upstream_error")
    return job_id


Call = Callable[[Storage, FakeClock, str], Awaitable[object]]

CALLS: dict[str, Call] = {
    "renew a process's leases": lambda store, clock, job: store.jobs.renew_leases("process-a", 60),
    "look for failures nobody was told of": lambda store, clock, job: store.jobs.list_unannounced_failures(
        clock.now - timedelta(minutes=30)
    ),
    "list the unfinished jobs": lambda store, clock, job: store.jobs.list_unfinished(),
    "reserve": lambda store, clock, job: store.quotas.reserve("new-job", GUILD, MEMBER, [ROLE], 1),
    "usage for a member": lambda store, clock, job: store.quotas.usage_for_member(GUILD, MEMBER, [ROLE]),
    "history of a member": lambda store, clock, job: store.jobs.recent_of_member(GUILD, MEMBER, limit=10),
    "usage log of a member": lambda store, clock, job: store.usage.for_member(GUILD, MEMBER, limit=10),
    "a job by its reference": lambda store, clock, job: store.jobs.oldest_with_prefix(GUILD, job[:4]),
    "a job's events": lambda store, clock, job: store.jobs.events(job),
    "the job a webhook is for": lambda store, clock, job: store.webhook_events.target(task_id="t1", job_id=None),
    "the wake-ups left for a process": lambda store, clock, job: store.webhook_events.wakes_for("process-a"),
    "a message deleted in a server": lambda store, clock, job: store.jobs.note_results_deleted([123_456_789]),
}


@pytest.mark.parametrize("call", CALLS)
async def test_a_frequent_query_reads_through_an_index(db: Database, clock: FakeClock, call: str) -> None:
    defaults = OperatorDefaults(member_daily=100, global_daily=1000, member_daily_cap=200)
    store = Storage.on(db, defaults=defaults, clock=clock)
    await store.quotas.set_rule(GUILD, RuleScope.SERVER, 500, Period.WEEK)
    await store.quotas.set_rule(GUILD, RuleScope.ROLE, 50, Period.MONTH, role_id=ROLE)
    job_id = await _a_finished_history(store, clock)
    recorder = Recorder(db)
    await CALLS[call](store, clock, job_id)
    assert recorder.statements, "the call sent no statement: the test would prove nothing"
    assert await recorder.full_scans(db) == []

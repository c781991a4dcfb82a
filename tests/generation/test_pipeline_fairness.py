"""The waiting line in the pipeline: servers and members take turns, places are announced and follow the line,
and under load no more than MAX_CONCURRENT_JOBS tasks are upstream while no quota is exceeded."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
from typing import Any

from generation.events import Queued
from generation.pipeline import Pipeline
from generation.refusals import QuotaExceeded
from storage.jobs import Job, JobState
from storage.quotas import OperatorDefaults
from storage.store import Storage
from tests.fakes.toapis import Endpoint, Timeline
from tests.generation.conftest import BlockingJobs, Harness, request


async def gated(
    harness: Harness, *, before: JobState = JobState.SUBMITTING, **overrides: Any
) -> tuple[Pipeline, BlockingJobs, asyncio.Event]:
    """A pipeline whose jobs stop before storing `before` until the gate opens, so a test can fill the line first."""
    store: Storage = await harness.open_store()
    gate = asyncio.Event()
    jobs = BlockingJobs(store, before=before, gate=gate)
    pipeline = await harness.start(store=dataclasses.replace(store, jobs=jobs), **overrides)
    return pipeline, jobs, gate


def upstream_order(harness: Harness) -> list[str | None]:
    """Business ids (job ids) in the order their tasks were created upstream."""
    return [task.client_business_id for task in sorted(harness.fake.tasks.values(), key=lambda task: task.created)]


async def test_thirty_jobs_from_three_servers_are_interleaved(harness: Harness) -> None:
    pipeline, jobs_repo, gate = await gated(harness, max_concurrent_jobs=2)
    # The worst order for fairness: the busy server's whole backlog arrives first.
    a = [await harness.submit(pipeline, request(guild_id=1, user_id=10 + i % 4)) for i in range(20)]
    await jobs_repo.wait_stopped(2)
    b = [await harness.submit(pipeline, request(guild_id=2, user_id=20)) for _ in range(5)]
    c = [await harness.submit(pipeline, request(guild_id=3, user_id=30 + i)) for i in range(5)]
    assert pipeline.queued == 28
    gate.set()
    await harness.settled(job.id for job in a + b + c)
    assert len(harness.board.shown) == 30

    order = upstream_order(harness)
    assert sorted(order, key=str) == sorted((job.id for job in a + b + c), key=str)
    position = {job_id: index for index, job_id in enumerate(order)}
    last_ten_a = min(position[job.id] for job in a[10:])
    assert max(position[job.id] for job in b + c) < last_ten_a
    # Round robin after the two that held the slots: A, B, C, A, B, C, ... Two jobs in flight together may
    # reach the upstream in either order, so each may be a place or two off.
    for k in range(5):
        assert abs(position[b[k].id] - (3 + 3 * k)) <= 2, (k, order)
        assert abs(position[c[k].id] - (4 + 3 * k)) <= 2, (k, order)


async def test_members_of_one_server_take_turns(harness: Harness) -> None:
    pipeline, jobs_repo, gate = await gated(harness, max_concurrent_jobs=1)
    first = await harness.submit(pipeline, request(user_id=1))
    await jobs_repo.wait_stopped(1)
    busy = [await harness.submit(pipeline, request(user_id=1)) for _ in range(5)]
    second = [await harness.submit(pipeline, request(user_id=2)) for _ in range(2)]
    third = [await harness.submit(pipeline, request(user_id=3)) for _ in range(2)]
    gate.set()
    await harness.settled(job.id for job in [first, *busy, *second, *third])
    # One slot: the upstream order is exactly the line's.
    expected = [first, busy[0], second[0], third[0], busy[1], second[1], third[1], busy[2], busy[3], busy[4]]
    assert upstream_order(harness) == [job.id for job in expected]


async def test_places_are_announced_and_follow_the_line(harness: Harness) -> None:
    board = harness.board
    pipeline, jobs_repo, gate = await gated(harness, max_concurrent_jobs=1)
    first = await harness.submit(pipeline, request(guild_id=1, user_id=1))
    await jobs_repo.wait_stopped(1)
    assert board.events_of(first.id, Queued) == [Queued(1)]
    assert pipeline.place(first.id) is None  # no longer waiting

    x = [await harness.submit(pipeline, request(guild_id=1, user_id=1)) for _ in range(3)]
    y = await harness.submit(pipeline, request(guild_id=2, user_id=2))
    z = await harness.submit(pipeline, request(guild_id=3, user_id=3))
    # The line: x0, y, z, x1, x2. Newcomers from other servers move ahead of a backlog.
    assert [pipeline.place(job.id) for job in (*x, y, z)] == [1, 4, 5, 2, 3]
    assert board.events_of(x[1].id, Queued) == [Queued(2), Queued(3), Queued(4)]
    assert board.events_of(z.id, Queued) == [Queued(3)]

    assert await pipeline.cancel(y.id, user_id=2)
    assert [pipeline.place(job.id) for job in (x[0], z, x[1], x[2])] == [1, 2, 3, 4]
    assert board.events_of(z.id, Queued) == [Queued(3), Queued(2)]

    gate.set()
    await harness.settled(job.id for job in (first, *x, y, z))
    # Each was told every place it had, down to 1, and never the same place twice in a row.
    assert board.events_of(z.id, Queued) == [Queued(3), Queued(2), Queued(1)]
    assert board.events_of(x[2].id, Queued) == [
        Queued(3),
        Queued(4),
        Queued(5),
        Queued(4),
        Queued(3),
        Queued(2),
        Queued(1),
    ]
    for job in (first, *x, z):
        places = [event.place for event in board.events_of(job.id, Queued)]
        assert all(earlier != later for earlier, later in itertools.pairwise(places))
        assert places[-1] == 1
    assert pipeline.queued == 0


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    current = peak = 0
    for _, change in edges:
        current += change
        peak = max(peak, current)
    return peak


async def test_fifty_jobs_at_once_all_complete_within_the_limits(harness: Harness) -> None:
    fake, board = harness.fake, harness.board
    rng = random.Random(4)
    fake.queue_timeline(
        *(Timeline.simple(queued=rng.uniform(0, 0.01), running=rng.uniform(0.005, 0.03)) for _ in range(60))
    )
    harness.defaults = OperatorDefaults(member_daily=5)
    # The first four tasks are held upstream together (their jobs stop before storing RUNNING), so the limit is
    # surely reached once; the gate then stays open.
    pipeline, jobs_repo, gate = await gated(harness, max_concurrent_jobs=4, before=JobState.RUNNING)
    in_flight_seen: list[int] = []
    board.before_show = lambda event: _sample(in_flight_seen, pipeline)

    # Ten members in three servers each ask six times at once: five of each fit the daily limit.
    requests = [request(guild_id=1 + member % 3, user_id=member, n=1) for member in range(10) for _ in range(6)]
    outcomes = await asyncio.gather(
        *(pipeline.submit(job_request, board.reporter()) for job_request in requests), return_exceptions=True
    )
    await jobs_repo.wait_stopped(4)
    assert len(fake.tasks) == 4
    gate.set()
    accepted = [outcome for outcome in outcomes if isinstance(outcome, Job)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, QuotaExceeded)]
    assert (len(accepted), len(refused)) == (50, 10)
    assert all(refusal.usage is not None and refusal.usage.remaining == 0 for refusal in refused)
    await harness.settled(job.id for job in accepted)
    assert len(board.shown) == 50
    assert not board.failures

    store = harness.store
    assert store is not None
    per_member = await store.db.fetch_all(
        "SELECT user_id, SUM(images) AS images FROM quota_ledger GROUP BY user_id ORDER BY user_id"
    )
    assert [(row["user_id"], row["images"]) for row in per_member] == [(member, 5) for member in range(10)]

    # A task is upstream from its creation to the look-up that saw it end (its slot is freed only after that).
    last_lookup: dict[str, float] = {}
    for seen in fake.requests_to(Endpoint.LOOKUP):
        last_lookup[seen.path.rsplit("/", 1)[1]] = seen.time
    intervals = [(task.created, last_lookup[task.id]) for task in fake.tasks.values()]
    assert len(intervals) == 50
    assert max_overlap(intervals) == 4  # the limit, and all of it used
    assert max(in_flight_seen) <= 4
    assert (pipeline.in_flight, pipeline.queued) == (0, 0)


async def _sample(seen: list[int], pipeline: Pipeline) -> None:
    seen.append(pipeline.in_flight)

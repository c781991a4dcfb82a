"""ToAPIs as a shared, rate-limited upstream (docs/operators.md, "When ToAPIs is busy"): a burst of jobs is paced
within the account's submit limit, and a submit or an upload refused for the rate (429) or while submits are paused
(503 `rate_limit_unavailable`) waits and goes through, without failing the job, without a second task, and without
calling ToAPIs down."""

from __future__ import annotations

import pytest

from generation import context
from generation.rate_budget import RateBudget
from generation.requests import Reference
from tests.fakes.toapis import Endpoint, Fault, Timeline
from tests.generation.conftest import Harness, png_bytes, request
from tests.generation.test_rate_budget import Clock, CountingBudget


async def test_a_burst_beyond_the_submit_limit_is_delivered_whole_with_one_task_per_job(harness: Harness) -> None:
    fake, board = harness.fake, harness.board
    # The account allows far fewer submits a moment than the burst: ToAPIs answers the rest 429.
    fake.set_rate_limit(Endpoint.SUBMIT, limit=5, window=0.2)
    pipeline = await harness.start(max_concurrent_jobs=40)
    jobs = [await harness.submit(pipeline, request(user_id=100 + i)) for i in range(40)]
    await harness.settled([job.id for job in jobs], timeout=60)

    assert board.failures == {}
    assert sorted(board.shown) == sorted(job.id for job in jobs)
    for job in jobs:
        assert len(fake.tasks_for(job.id)) == 1
    # Busy is not down: the operator is told nothing, and new requests are taken.
    assert board.alerts == []
    assert not pipeline.breaker.is_open


async def test_every_submit_takes_from_the_submit_budget(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    CountingBudget.created.clear()
    monkeypatch.setattr(context, "RateBudget", CountingBudget)
    fake = harness.fake
    fake.fail(Endpoint.SUBMIT, Fault.rate_limited(0.0), times=3)  # one more than the client's own retries
    pipeline = await harness.start(submits_per_minute=60_000, lookups_per_minute=60_000)
    _lookups, submits = CountingBudget.created
    job = await harness.submit(pipeline)
    await harness.settled([job.id])
    assert job.id in harness.board.shown
    # The first submit (and the client's two retries of it), then the job's own second submit, after the 429s.
    assert len(fake.requests_to(Endpoint.SUBMIT)) == 4
    assert submits.takes == 2


async def test_paused_submits_wait_while_running_tasks_are_still_looked_up_and_delivered(harness: Harness) -> None:
    fake, board = harness.fake, harness.board
    fake.queue_timeline(Timeline.never_ends())
    pipeline = await harness.start(breaker_threshold=3)
    running = await harness.submit(pipeline, request(user_id=100))
    await fake.wait_for(lambda: len(fake.requests_to(Endpoint.LOOKUP)) >= 1)
    (task,) = fake.tasks_for(running.id)

    # ToAPIs pauses submits, for longer than the client's retries and the breaker's threshold.
    fake.fail(Endpoint.SUBMIT, Fault.unavailable(), times=None)
    waiting = await harness.submit(pipeline, request(user_id=101))
    await fake.wait_for(lambda: len(fake.requests_to(Endpoint.SUBMIT)) >= 1 + 3 * 3)
    assert not board.finished(waiting.id)
    assert not pipeline.breaker.is_open
    assert board.alerts == []

    # Look-ups go on: the running task is delivered while submits are paused.
    fake.end_task(task.id)
    await harness.settled([running.id])
    assert running.id in board.shown
    assert not board.finished(waiting.id)

    fake.clear_faults()
    await harness.settled([waiting.id])
    assert waiting.id in board.shown
    assert len(fake.tasks_for(waiting.id)) == 1
    assert board.alerts == []


async def test_an_upload_refused_for_the_rate_waits_and_goes_through(harness: Harness) -> None:
    fake, board = harness.fake, harness.board
    fake.fail(Endpoint.UPLOAD, Fault.rate_limited(0.0), times=7)  # beyond the client's retries, twice over
    pipeline = await harness.start()
    references = tuple(Reference(png_bytes(colour=colour), "image/png") for colour in ("red", "green", "blue", "gray"))
    job = await harness.submit(pipeline, request(references=references))
    await harness.settled([job.id])
    assert board.failures == {}
    assert job.id in board.shown
    assert len(fake.tasks_for(job.id)) == 1
    assert board.alerts == []


async def test_the_budget_never_lets_more_than_its_rate_through_in_any_second() -> None:
    clock = Clock()
    budget = RateBudget(600, clock=clock, sleep=clock.sleep)  # 10 a second
    taken: list[float] = []
    for _ in range(40):
        await budget.take()
        taken.append(clock.now)
    for start in taken:
        assert sum(1 for when in taken if start <= when < start + 1.0) <= 10, start


@pytest.mark.parametrize("submits_per_minute", [None, 4_800])
async def test_a_burst_under_the_documented_limits_is_delivered_whole(
    harness: Harness, submits_per_minute: int | None
) -> None:
    # ToAPIs's limits, with 50 ms standing for a second; paced at 4 a "second" (240 a minute), or not at all.
    fake, board = harness.fake, harness.board
    fake.set_documented_rate_limits(second=0.05)
    pipeline = await harness.start(max_concurrent_jobs=60, submits_per_minute=submits_per_minute)
    jobs = [await harness.submit(pipeline, request(user_id=100 + i)) for i in range(60)]
    await harness.settled([job.id for job in jobs], timeout=60)
    assert board.failures == {}
    assert all(len(fake.tasks_for(job.id)) == 1 for job in jobs)
    assert board.alerts == []
    refused = sum(1 for r in fake.requests_to(Endpoint.SUBMIT) if r.status == 429)
    if submits_per_minute is not None:
        # Paced within the limits, the burst meets next to no 429 (unpaced: several for each job).
        assert refused < len(jobs) / 4, refused

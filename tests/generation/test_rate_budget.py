"""The look-up budget: a second's worth at most, then its rate, and each task's share; and a follower takes one
token for each look-up it makes, whichever path makes it (scheduled, resumed, after a refused look-up)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest

from generation import context
from generation.rate_budget import RateBudget
from storage.jobs import JobState
from tests.fakes.toapis import Endpoint, Fault, Timeline
from tests.generation.conftest import Harness
from tests.generation.test_pipeline_reporters import OnceExplodingJobs


class Clock:
    """A clock that moves only when the budget sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_the_budget_spaces_its_requests_evenly_at_its_rate() -> None:
    clock = Clock()
    budget = RateBudget(600, clock=clock, sleep=clock.sleep)  # 10 a second
    for _ in range(6):
        await budget.take()
    assert clock.slept == pytest.approx([0.1] * 5)  # one at once, then one every tenth of a second
    clock.now += 60.0  # a quiet minute saves up no burst: one at once again, then the rate
    for _ in range(3):
        await budget.take()
    assert clock.slept[5:] == pytest.approx([0.1] * 2)


def test_each_followed_task_gets_its_share_of_the_budget() -> None:
    budget = RateBudget(120)  # 2 a second
    assert budget.share() == 0.5
    with budget.following(), budget.following(), budget.following():
        assert budget.share() == 1.5
    assert budget.share() == 0.5
    assert RateBudget(None).share() == 0.0


class CountingBudget(RateBudget):
    """The budget, counting the look-ups it let through."""

    created: ClassVar[list[CountingBudget]] = []

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.takes = 0
        CountingBudget.created.append(self)

    async def take(self) -> None:
        await super().take()
        self.takes += 1


async def test_every_look_up_of_a_followed_task_takes_from_the_budget(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    CountingBudget.created.clear()
    monkeypatch.setattr(context, "RateBudget", CountingBudget)
    fake = harness.fake
    fake.queue_timeline(Timeline.simple(running=0.05, progress=(20, 40, 60, 80)))
    # A slow submit answer: the follower looks at once (as after a restart), then on its schedule.
    fake.fail(Endpoint.SUBMIT, Fault.slow(0.02))
    fake.fail(Endpoint.LOOKUP, Fault.rate_limited(), times=1)
    fake.fail(Endpoint.LOOKUP, Fault.server_error(), times=1)
    fake.fail(Endpoint.LOOKUP, Fault.bad_request(), times=1)  # refused: the follower looks again, more slowly
    pipeline = await harness.start(lookups_per_minute=60_000)
    budget, _submits = CountingBudget.created
    job = await harness.submit(pipeline)
    await harness.settled([job.id])
    (task,) = fake.tasks_for(job.id)
    lookups = [r for r in fake.requests_to(Endpoint.LOOKUP) if r.path.endswith(task.id)]
    assert len(lookups) >= 4  # the three refused, and the one that saw the end
    assert budget.takes == len(lookups)


async def test_a_look_up_by_business_id_takes_from_the_budget_too(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The job fails to store its task id once: taken up again, it finds its task by its business id.
    CountingBudget.created.clear()
    monkeypatch.setattr(context, "RateBudget", CountingBudget)
    store = await harness.open_store()
    exploding = OnceExplodingJobs(store, before=JobState.RUNNING)
    pipeline = await harness.start(store=dataclasses.replace(store, jobs=exploding), lookups_per_minute=60_000)
    budget, _submits = CountingBudget.created
    job = await harness.submit(pipeline)
    await harness.settled([job.id])
    by_business_id = [r for r in harness.fake.requests_to(Endpoint.LOOKUP) if r.path.endswith(job.id)]
    assert by_business_id
    assert budget.takes == len(harness.fake.requests_to(Endpoint.LOOKUP))


async def test_a_429_holds_every_look_up_for_its_retry_after() -> None:
    clock = Clock()
    budget = RateBudget(600, clock=clock, sleep=clock.sleep)
    budget.rate_limited(2.5)
    await budget.take()
    assert clock.slept == [2.5]
    budget.rate_limited(None)  # no Retry-After: a second
    budget.rate_limited(0.2)  # a shorter one does not cut the longer short
    await budget.take()
    assert clock.slept == [2.5, 1.0]
    unlimited = RateBudget(None, clock=clock, sleep=clock.sleep)  # the hold applies without a rate too
    unlimited.rate_limited(0.5)
    await unlimited.take()
    await unlimited.take()
    assert clock.slept == [2.5, 1.0, 0.5]


async def test_a_429_on_one_tasks_look_up_holds_the_look_ups_of_every_task(harness: Harness) -> None:
    fake = harness.fake
    fake.queue_timeline(*[Timeline.never_ends()] * 3)
    pipeline = await harness.start(poll_interval=0.005)
    jobs = [await harness.submit(pipeline) for _ in range(3)]
    await fake.wait_for(lambda: len(fake.requests_to(Endpoint.LOOKUP)) >= 6)
    fake.fail(Endpoint.LOOKUP, Fault.rate_limited(0.5))
    await fake.wait_for(lambda: any(r.status == 429 for r in fake.requests_to(Endpoint.LOOKUP)))
    lookups = fake.requests_to(Endpoint.LOOKUP)
    refused = next(r for r in lookups if r.status == 429)
    await fake.wait_for(lambda: fake.requests_to(Endpoint.LOOKUP)[-1].time > refused.time + 0.5)
    held = [r for r in fake.requests_to(Endpoint.LOOKUP) if refused.time < r.time < refused.time + 0.45]
    # Only look-ups already on their way when the 429 came; every task looks every 5 ms otherwise.
    assert len(held) <= 2
    for job in jobs:
        fake.end_task(fake.tasks_for(job.id)[0].id)
    await harness.settled([job.id for job in jobs])


async def test_each_followed_task_looks_no_more_often_than_its_share_so_none_queues_at_the_budget(
    harness: Harness,
) -> None:
    # 1,200 look-ups a minute for three tasks whose schedule would look every 5 ms: each looks at most every
    # 0.15 s, so the three together stay within the budget, each gets its share, and no queue builds at the budget
    # (where a task near its end would wait behind the others).
    fake = harness.fake
    fake.queue_timeline(*[Timeline.never_ends()] * 3)
    pipeline = await harness.start(poll_interval=0.005, lookups_per_minute=1200)
    jobs = [await harness.submit(pipeline) for _ in range(3)]
    await fake.wait_for(lambda: len(fake.requests_to(Endpoint.LOOKUP)) >= 30)
    lookups = fake.requests_to(Endpoint.LOOKUP)[:30]
    per_task = [sum(1 for r in lookups if r.path.endswith(fake.tasks_for(job.id)[0].id)) for job in jobs]
    assert min(per_task) >= 8, per_task  # each its share, none starved
    # Evenly spaced: no more than the rate in any second (the budget only ever makes look-ups later).
    assert len(lookups) - 1 <= (lookups[-1].time - lookups[0].time) * 20 + 1
    for job in jobs:
        fake.end_task(fake.tasks_for(job.id)[0].id)
    await harness.settled([job.id for job in jobs])

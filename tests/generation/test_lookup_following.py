"""The follower on the look-up schedule, against the fake ToAPIs: durations recorded and kept across a restart,
the time left shown once enough are known, look-ups held back far from the expected end, and with webhooks only
the safety interval (a wake-up cutting it short)."""

from __future__ import annotations

import asyncio

import pytest

from generation.callbacks import WebhookCallbacks
from generation.events import Generating, Submitted
from generation.pipeline import Pipeline
from tests.e2e.harness import wait_until
from tests.fakes.toapis import Endpoint, FakeToAPIs, Timeline
from tests.generation.conftest import Harness, request


def lookups_of(fake: FakeToAPIs, task_id: str) -> list[float]:
    """When the fake received each look-up of a task (time.monotonic())."""
    return [r.time for r in fake.requests_to(Endpoint.LOOKUP) if r.path.endswith(task_id)]


def prime(pipeline: Pipeline, seconds: float, count: int = 5, resolution: str = "1k") -> None:
    for index in range(count):
        pipeline.durations.record(f"earlier-{resolution}-{index}", "gpt-image-2", resolution, seconds)


async def with_webhooks(harness: Harness, *, min_lookup_interval: float) -> Pipeline:
    """A pipeline whose submits' callback_url ToAPIs accepts, with safety look-ups every 600 s. The fake's
    deliveries go to a closed port and are lost: the wake-ups are the test's to make."""
    url = "https://imagine.example/toapis"
    harness.fake.webhooks.configure(url=url, secret="whsec_" + "0" * 32, forward_to="http://127.0.0.1:9")
    store = await harness.open_store()
    callbacks = WebhookCallbacks(url, events=store.webhook_events, alerts=None)
    return await harness.start(
        poll_interval=1.0, webhook_safety_interval=600.0, min_lookup_interval=min_lookup_interval, callbacks=callbacks
    )


async def test_completed_tasks_are_recorded_and_kept_across_a_restart(harness: Harness) -> None:
    pipeline = await harness.start()
    jobs = [await harness.submit(pipeline, request(resolution="2k")) for _ in range(5)]
    await harness.settled([job.id for job in jobs])
    expected = pipeline.durations.expected("gpt-image-2", "2k")
    assert expected is not None
    assert len(expected.durations) == 5
    assert all(0 < seconds < 10 for seconds in expected.durations)
    assert pipeline.durations.expected("gpt-image-2", "1k") is None

    restarted = await harness.restart(pipeline)
    again = restarted.durations.expected("gpt-image-2", "2k")
    assert again is not None
    assert sorted(again.durations) == pytest.approx(sorted(expected.durations), abs=0.001)


async def test_a_failed_task_records_no_duration(harness: Harness) -> None:
    harness.fake.queue_timeline(*[Timeline.failing()] * 5)
    pipeline = await harness.start()
    jobs = [await harness.submit(pipeline) for _ in range(5)]
    await harness.settled([job.id for job in jobs])
    assert pipeline.durations.expected("gpt-image-2", "1k") is None
    store = harness.store
    assert store is not None
    assert await store.durations.latest(20) == []


async def test_the_time_left_is_shown_once_enough_durations_are_known(harness: Harness) -> None:
    fake, board = harness.fake, harness.board
    fake.queue_timeline(Timeline.never_ends(progress=30))
    pipeline = await harness.start()
    prime(pipeline, 30.0)
    job = await harness.submit(pipeline)
    await board.wait_for(lambda: any(event.remaining is not None for event in board.events_of(job.id, Generating)))
    shown = [event.remaining for event in board.events_of(job.id, Generating) if event.remaining is not None]
    assert all(25.0 < remaining < 30.0 for remaining in shown)
    fake.end_task(fake.tasks_for(job.id)[0].id)
    await harness.settled([job.id])
    assert board.events_of(job.id, Generating)[-1].remaining is None  # the end shows no time left

    # Without enough durations of its kind, nothing is estimated.
    fake.queue_timeline(Timeline.never_ends(progress=30))
    other = await harness.submit(pipeline, request(resolution="4k"))
    await board.wait_for(lambda: bool(board.events_of(other.id, Generating)))
    await wait_until(lambda: len(lookups_of(fake, fake.tasks_for(other.id)[0].id)) >= 3)
    assert all(event.remaining is None for event in board.events_of(other.id, Generating))
    fake.end_task(fake.tasks_for(other.id)[0].id)
    await harness.settled([other.id])


async def test_far_from_the_expected_end_the_task_is_not_looked_up(harness: Harness) -> None:
    fake = harness.fake
    fake.queue_timeline(Timeline.simple(running=0.8, progress=(0,)))
    pipeline = await harness.start(poll_interval=0.1, min_lookup_interval=0.02)
    prime(pipeline, 0.8)
    job = await harness.submit(pipeline)
    await harness.settled([job.id])
    (task,) = fake.tasks_for(job.id)
    moments = lookups_of(fake, task.id)
    # Fixed polling would have looked at 0.1 s; the history says 0.8 s, so the first look waits about half of it.
    assert moments[0] - task.created >= 0.3
    assert len(moments) <= 12


async def test_with_webhooks_only_safety_look_ups_are_made_and_a_wake_up_ends_the_wait(harness: Harness) -> None:
    fake, board = harness.fake, harness.board
    fake.queue_timeline(Timeline.never_ends(progress=30))
    pipeline = await with_webhooks(harness, min_lookup_interval=0.005)
    prime(pipeline, 0.05)  # a dense schedule would look many times a second
    job = await harness.submit(pipeline)
    await board.wait_for(lambda: bool(board.events_of(job.id, Submitted)))
    (task,) = fake.tasks_for(job.id)
    await asyncio.sleep(0.2)  # four expected durations: the schedule alone would have looked by now
    assert lookups_of(fake, task.id) == []
    fake.end_task(task.id)
    # Until the follower watches the task, a wake-up finds nobody to wake.
    await wait_until(lambda: pipeline.wakeups.wake(task.id))
    await harness.settled([job.id])
    assert len(lookups_of(fake, task.id)) == 1  # only the one the wake-up asked for


async def test_a_wake_up_the_status_does_not_show_yet_is_looked_at_again_soon(harness: Harness) -> None:
    # The webhook may come before the status API shows the end: the look-up it wakes still sees the task running.
    # The next one comes at the schedule's least interval, not after the safety interval (600 s here).
    fake, board = harness.fake, harness.board
    fake.queue_timeline(Timeline.never_ends(progress=30))
    pipeline = await with_webhooks(harness, min_lookup_interval=0.01)
    job = await harness.submit(pipeline)
    await board.wait_for(lambda: bool(board.events_of(job.id, Submitted)))
    (task,) = fake.tasks_for(job.id)
    await wait_until(lambda: pipeline.wakeups.wake(task.id))
    await fake.wait_for(lambda: len(lookups_of(fake, task.id)) == 1)
    fake.end_task(task.id)  # the status API catches up
    await harness.settled([job.id])
    assert len(lookups_of(fake, task.id)) >= 2

"""Webhook events in the database: an id is taken once, by one process of several; events are found for their job
and kept 25 hours; wake-ups wait for the process that must act; setup problems are noted once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest

from storage.connect import open_database
from storage.database import Database
from storage.jobs import JobRepository, JobState
from storage.webhook_events import WAKE_CHANNEL, EventTarget, WebhookEvents
from tests.storage.conftest import FakeClock


@pytest.fixture
def events(db: Database, clock: FakeClock) -> WebhookEvents:
    return WebhookEvents(db, clock)


@pytest.fixture
def jobs(db: Database, clock: FakeClock) -> JobRepository:
    return JobRepository(db, clock)


async def running_job(jobs: JobRepository, task_id: str | None) -> str:
    job = await jobs.create(guild_id=1, channel_id=2, user_id=3, kind="imagine", prompt="p", n=1, model="m")
    if task_id is None:
        await jobs.set_state(job.id, JobState.SUBMITTING)
    else:
        await jobs.set_state(job.id, JobState.RUNNING, task_id=task_id)
    return job.id


async def test_an_event_id_is_recorded_once(events: WebhookEvents) -> None:
    assert await events.record("evt_1", task_id="task_a", job_id=None)
    assert not await events.record("evt_1", task_id="task_a", job_id=None)
    assert await events.record("evt_2", task_id="task_a", job_id=None)
    assert not await events.record("evt_2", task_id="task_a", job_id=None)


async def test_of_processes_recording_one_event_at_once_exactly_one_takes_it(
    db: Database, db_url: str, clock: FakeClock
) -> None:
    async with await open_database(db_url) as other:
        ours, theirs = WebhookEvents(db, clock), WebhookEvents(other, clock)
        taken = await asyncio.gather(
            *(store.record("evt_race", task_id="t", job_id=None) for store in (ours, theirs, ours, theirs))
        )
    assert sorted(taken) == [False, False, False, True]


async def test_events_are_kept_25_hours_then_pruned(events: WebhookEvents, clock: FakeClock) -> None:
    await events.record("evt_old", task_id="t", job_id=None)
    clock.advance(hours=1)
    await events.record("evt_new", task_id="t", job_id=None)
    clock.advance(hours=24, seconds=-1)
    assert await events.prune(timedelta(hours=25)) == 0
    clock.advance(seconds=2)
    assert await events.prune(timedelta(hours=25)) == 1
    assert not await events.record("evt_new", task_id="t", job_id=None)  # still remembered
    assert await events.record("evt_old", task_id="t", job_id=None)  # forgotten: ToAPIs stopped retrying long ago


async def test_the_target_is_the_unfinished_job_by_business_id_or_by_task(
    events: WebhookEvents, jobs: JobRepository
) -> None:
    submitting = await running_job(jobs, None)  # its submit has not been answered yet
    running = await running_job(jobs, "task_b")
    await jobs.claim(running, "process-a", 30.0)
    assert await events.target(task_id="task_a", job_id=submitting) == EventTarget(
        submitting, None, JobState.SUBMITTING
    )
    assert await events.target(task_id="task_b", job_id=running) == EventTarget(running, "process-a", JobState.RUNNING)
    assert await events.target(task_id="task_b", job_id=None) == EventTarget(running, "process-a", JobState.RUNNING)
    # A business id whose job follows another task names nothing; the task id still finds its job.
    other = await running_job(jobs, "task_c")
    assert await events.target(task_id="task_b", job_id=other) == EventTarget(running, "process-a", JobState.RUNNING)
    assert await events.target(task_id="task_unknown", job_id="job-unknown") is None
    assert all(EventTarget("job", None, state).awaits_its_task for state in (JobState.SUBMITTING, JobState.RUNNING))
    await jobs.set_state(running, JobState.DOWNLOADING)
    downloading = await events.target(task_id="task_b", job_id=running)
    assert downloading is not None
    assert not downloading.awaits_its_task  # nothing to wake: its task has ended
    await jobs.set_state(running, JobState.DELIVERING)
    await jobs.set_state(running, JobState.COMPLETED)
    assert await events.target(task_id="task_b", job_id=running) is None  # finished: nothing to wake


async def test_wake_ups_wait_for_their_process_until_cleared(events: WebhookEvents, jobs: JobRepository) -> None:
    job = await running_job(jobs, "task_a")
    await jobs.claim(job, "process-a", 30.0)
    await events.record("evt_1", task_id="task_a", job_id=job, wake_owner="process-a")
    await events.record("evt_2", task_id="task_x", job_id="gone", wake_owner="process-a")
    await events.record("evt_3", task_id="task_a", job_id=job, wake_owner="process-b")
    assert await events.wakes_for("nobody") == []
    (only_b,) = await events.wakes_for("process-b")
    assert (only_b.event_id, only_b.task_id, only_b.job_finished, only_b.lease_owner) == (
        "evt_3",
        "task_a",
        False,
        "process-a",
    )
    first, gone = await events.wakes_for("process-a")
    assert (first.event_id, first.job_finished) == ("evt_1", False)
    assert (gone.event_id, gone.job_finished) == ("evt_2", True)  # its job does not exist
    await events.clear_wakes(["evt_1", "evt_2"])
    await events.clear_wakes([])
    assert await events.wakes_for("process-a") == []
    for event_id in ("evt_1", "evt_2", "evt_3"):  # the events themselves stay recorded
        assert not await events.record(event_id, task_id="task_a", job_id=job)


async def test_a_problem_is_new_once_until_cleared(events: WebhookEvents, clock: FakeClock) -> None:
    assert await events.problems() == []
    assert await events.note_problem("webhook_not_configured", "first (HTTP 400)")
    clock.advance(minutes=5)
    assert not await events.note_problem("webhook_not_configured", "again (HTTP 400)")
    (problem,) = await events.problems()
    assert (problem.problem, problem.detail, problem.noted_at) == (
        "webhook_not_configured",
        "again (HTTP 400)",
        clock.now,
    )
    assert await events.clear_problem("webhook_not_configured")
    assert not await events.clear_problem("webhook_not_configured")
    assert await events.note_problem("webhook_not_configured", "later")


async def test_a_wake_up_left_for_a_process_is_told_at_once_on_postgresql(
    db: Database, db_url: str, clock: FakeClock
) -> None:
    if db.dialect.engine.value == "sqlite":
        pytest.skip("one process per file database: nobody else to tell")
    async with await open_database(db_url) as other:
        told: list[str] = []
        changed = asyncio.Event()

        def hear(payload: str) -> None:
            told.append(payload)
            changed.set()

        async with other.listening(WAKE_CHANNEL, hear) as hearing:
            assert hearing()
            ours = WebhookEvents(db, clock)
            assert await ours.record("evt_1", task_id="t", job_id=None, wake_owner="holder")
            assert not await ours.record("evt_1", task_id="t", job_id=None, wake_owner="holder")  # a repeat
            await ours.record("evt_2", task_id="t", job_id=None)  # nobody to wake
            await ours.record("evt_3", task_id="t", job_id=None, wake_owner="bystander")
            # One connection hears its notifications in the order they were sent: once the last is heard, anything
            # the repeat or the event without an owner had told would have been heard before it.
            while "bystander" not in told:
                changed.clear()
                await asyncio.wait_for(changed.wait(), 10)
            assert told == ["holder", "bystander"]


async def test_a_process_hears_only_the_wake_ups_left_for_it(events: WebhookEvents) -> None:
    heard: list[str] = []

    class Channel:
        """The database's notifications, handed to the test to send."""

        def __init__(self) -> None:
            self.told: Callable[[str], None] | None = None

        @contextlib.asynccontextmanager
        async def listening(self, channel: str, told: Callable[[str], None]) -> AsyncIterator[Callable[[], bool]]:
            assert channel == WAKE_CHANNEL
            self.told = told
            yield lambda: True

    channel = Channel()
    listener = WebhookEvents(channel, events._clock)  # type: ignore[arg-type]
    async with listener.listening_for_wakes("holder", lambda: heard.append("woken")):
        assert channel.told is not None
        channel.told("bystander")
        channel.told("holder")
    assert heard == ["woken"]

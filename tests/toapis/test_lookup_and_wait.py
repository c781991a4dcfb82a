"""Looking tasks up (by task id and by business id) and waiting for them to end."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable

import pytest

from tests.fakes.toapis import Endpoint, FakeToAPIs, Fault, Outcome, RecordedRequest, ResultFormat, Timeline
from tests.toapis._helpers import submit
from toapis import (
    AuthenticationError,
    BadRequestError,
    Task,
    TaskNotFoundError,
    TaskStatus,
    TaskWaitTimeoutError,
    ToAPIsClient,
)

GENEROUS = 10.0  # seconds: an upper bound for conditions that take milliseconds on an idle machine


def lookups(fake: FakeToAPIs) -> list[RecordedRequest]:
    return fake.requests_to(Endpoint.LOOKUP)


def lookups_reach(fake: FakeToAPIs, count: int) -> Callable[[], bool]:
    return lambda: len(lookups(fake)) >= count


# --- lookups ------------------------------------------------------------------------------------------------------


async def test_a_completed_task_lists_every_image(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.queue_timeline(Timeline.instant())
    submitted = await submit(toapis_client, "job-1", n=3)
    task = await toapis_client.get_task(submitted.id)
    assert task.status is TaskStatus.COMPLETED
    assert task.progress == 100
    assert [image.url for image in task.images] == [toapis_fake.result_url(task.id, i) for i in (1, 2, 3)]
    assert task.completed_at is not None
    assert task.expires_at is not None
    assert (task.expires_at - task.completed_at).total_seconds() == 86_400


async def test_a_running_task(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.queue_timeline(Timeline.never_ends(progress=35))
    submitted = await submit(toapis_client, "job-1")
    task = await toapis_client.get_task(submitted.id)
    assert (task.status, task.progress, task.images, task.error) == (TaskStatus.IN_PROGRESS, 35, (), None)
    assert task.is_running


async def test_b64_results_are_decoded(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.queue_timeline(Timeline.instant())
    toapis_fake.result_format = ResultFormat.B64_JSON
    submitted = await submit(toapis_client, "job-1", n=2)
    task = await toapis_client.get_task(submitted.id)
    assert [image.data for image in task.images] == [toapis_fake.result_png(task.id, i) for i in (1, 2)]
    assert all(image.url is None for image in task.images)


async def test_a_top_level_url_alone_is_read(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.queue_timeline(Timeline.instant())
    toapis_fake.result_format = ResultFormat.TOP_LEVEL_URL
    submitted = await submit(toapis_client, "job-1")
    task = await toapis_client.get_task(submitted.id)
    assert [image.url for image in task.images] == [toapis_fake.result_url(task.id, 1)]


async def test_fewer_images_than_asked_are_reported_as_they_are(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    toapis_fake.queue_timeline(Timeline.fewer_images(1, after=0.0))
    submitted = await submit(toapis_client, "job-1", n=4)
    assert len((await toapis_client.get_task(submitted.id)).images) == 1


async def test_find_task_by_business_id(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    submitted = await submit(toapis_client, "job-find")
    found = await toapis_client.find_task("job-find")
    assert found is not None
    assert found.id == submitted.id
    assert found.client_business_id == "job-find"
    assert lookups(toapis_fake)[-1].path == "/v1/images/generations/job-find"


@pytest.mark.parametrize("variant", [False, True], ids=["404", "task_not_exist"])
async def test_find_task_is_none_for_an_unknown_business_id(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs, variant: bool
) -> None:
    toapis_fake.task_not_exist_variant = variant
    assert await toapis_client.find_task("job-never-submitted") is None
    assert len(lookups(toapis_fake)) == 1


async def test_find_task_sees_the_newest_of_duplicates(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    await submit(toapis_client, "job-dup")
    newest = await submit(toapis_client, "job-dup")
    found = await toapis_client.find_task("job-dup")
    assert found is not None
    assert found.id == newest.id


@pytest.mark.parametrize(
    "fault", [Fault.server_error(), Fault.bad_gateway(), Fault.rate_limited(retry_after=0), Fault.truncated()]
)
async def test_lookups_are_retried(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs, fault: Fault) -> None:
    submitted = await submit(toapis_client, "job-1")
    toapis_fake.fail(Endpoint.LOOKUP, fault, times=2)
    task = await toapis_client.get_task(submitted.id)
    assert task.id == submitted.id
    assert len(lookups(toapis_fake)) == 3


async def test_ids_are_quoted_into_the_path(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    with pytest.raises(TaskNotFoundError):
        await toapis_client.get_task("odd id/../x?y")
    assert lookups(toapis_fake)[0].path == "/v1/images/generations/odd id/../x?y"
    with pytest.raises(BadRequestError, match="the id is empty"):
        await toapis_client.get_task("")


# --- waiting ------------------------------------------------------------------------------------------------------


async def test_wait_reports_each_change_of_status_or_progress_once(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    toapis_fake.queue_timeline(Timeline.never_ends())
    submitted = await submit(toapis_client, "job-1", n=2)
    states = [("queued", 0), ("submitted", 0), ("pending", 0), ("in_progress", 0), ("in_progress", 60), ("odd", 60)]
    toapis_fake.set_task_state(submitted.id, *states[0])

    async def drive() -> None:
        # Hold every state for at least three lookups, so that repeated sightings must be folded into one report.
        for status, progress in states:
            toapis_fake.set_task_state(submitted.id, status, progress)
            await toapis_fake.wait_for(lookups_reach(toapis_fake, len(lookups(toapis_fake)) + 3))
        toapis_fake.end_task(submitted.id)

    reports: list[tuple[TaskStatus, int]] = []

    async def on_update(task: Task) -> None:
        reports.append((task.status, task.progress))

    driver = asyncio.create_task(drive())
    task = await toapis_client.wait_for_task(
        submitted.id, interval=0.001, deadline=GENEROUS, on_update=on_update, first_delay=0
    )
    await driver
    assert reports == [
        (TaskStatus.QUEUED, 0),
        (TaskStatus.SUBMITTED, 0),
        (TaskStatus.PENDING, 0),
        (TaskStatus.IN_PROGRESS, 0),
        (TaskStatus.IN_PROGRESS, 60),
        (TaskStatus.UNKNOWN, 60),  # an undocumented status keeps the wait going
        (TaskStatus.COMPLETED, 100),
    ]
    assert len(lookups(toapis_fake)) >= 3 * len(states)
    assert task.status is TaskStatus.COMPLETED
    assert len(task.images) == 2


async def test_wait_accepts_a_plain_function_and_no_callback(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    submitted = await submit(toapis_client, "job-1")
    seen: list[TaskStatus] = []
    task = await toapis_client.wait_for_task(
        submitted.id, interval=0.002, deadline=GENEROUS, on_update=lambda t: seen.append(t.status)
    )
    assert seen[-1] is TaskStatus.COMPLETED
    assert task.status is TaskStatus.COMPLETED
    again = await toapis_client.wait_for_task(submitted.id, interval=0.002, deadline=None)
    assert again.id == task.id


async def test_a_failed_task_is_returned_not_raised(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.queue_timeline(Timeline.failing("The upstream model crashed"))
    submitted = await submit(toapis_client, "job-1")
    task = await toapis_client.wait_for_task(submitted.id, interval=0.002, deadline=GENEROUS)
    assert task.status is TaskStatus.FAILED
    assert task.error is not None
    assert (task.error.code, task.error.message) == ("generation_failed", "The upstream model crashed")
    assert not task.is_content_policy_failure


async def test_a_content_policy_failure_can_be_told_apart(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.on_prompt("forbidden", Timeline.content_policy())
    submitted = await submit(toapis_client, "job-1", prompt="something forbidden")
    task = await toapis_client.wait_for_task(submitted.id, interval=0.002, deadline=GENEROUS)
    assert task.status is TaskStatus.FAILED
    assert task.is_content_policy_failure


async def test_the_deadline_raises_with_the_last_task_seen(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    toapis_fake.queue_timeline(Timeline.never_ends(progress=42))
    submitted = await submit(toapis_client, "job-1")
    started = time.monotonic()
    with pytest.raises(TaskWaitTimeoutError) as caught:
        await toapis_client.wait_for_task(submitted.id, interval=0.01, deadline=0.15)
    assert time.monotonic() - started >= 0.15
    assert caught.value.task is not None
    assert (caught.value.task.status, caught.value.task.progress) == (TaskStatus.IN_PROGRESS, 42)
    assert caught.value.task_id == submitted.id
    assert toapis_fake.tasks[submitted.id].status == "in_progress"  # no cancel endpoint: it keeps running


async def test_the_deadline_without_any_successful_lookup(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    submitted = await submit(toapis_client, "job-1")
    toapis_fake.fail(Endpoint.LOOKUP, Fault.server_error(), times=None)
    with pytest.raises(TaskWaitTimeoutError) as caught:
        await toapis_client.wait_for_task(submitted.id, interval=0.01, deadline=0.1)
    assert caught.value.task is None
    assert "(never seen)" in str(caught.value)
    assert len(lookups(toapis_fake)) >= 1


@pytest.mark.parametrize(
    "fault", [Fault.server_error(), Fault.bad_gateway(), Fault.disconnect(), Fault.answer(200, "not json")]
)
async def test_transient_lookup_failures_do_not_end_the_wait(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs, fault: Fault
) -> None:
    submitted = await submit(toapis_client, "job-1")
    toapis_fake.fail(Endpoint.LOOKUP, fault, times=4)
    task = await toapis_client.wait_for_task(submitted.id, interval=0.002, deadline=GENEROUS)
    assert task.status is TaskStatus.COMPLETED


async def test_an_unknown_task_ends_the_wait(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.queue_timeline(Timeline.never_ends())
    submitted = await submit(toapis_client, "job-1")
    toapis_fake.forget_task(submitted.id)
    with pytest.raises(TaskNotFoundError):
        await toapis_client.wait_for_task(submitted.id, interval=0.002, deadline=GENEROUS)
    assert len(lookups(toapis_fake)) == 1  # not retried: a 404 is final


async def test_a_refused_key_ends_the_wait(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    submitted = await submit(toapis_client, "job-1")
    toapis_fake.fail(Endpoint.LOOKUP, Fault.unauthorized())
    with pytest.raises(AuthenticationError):
        await toapis_client.wait_for_task(submitted.id, interval=0.002, deadline=GENEROUS)


async def test_a_429_raises_the_interval(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.queue_timeline(Timeline.never_ends())
    submitted = await submit(toapis_client, "job-1")
    toapis_fake.fail(Endpoint.LOOKUP, Fault.rate_limited(retry_after=None))

    async def end_after_four_lookups() -> None:
        await toapis_fake.wait_for(lookups_reach(toapis_fake, 4))
        toapis_fake.end_task(submitted.id)

    ender = asyncio.create_task(end_after_four_lookups())
    await toapis_client.wait_for_task(submitted.id, interval=0.02, deadline=GENEROUS, first_delay=0, jitter=0.0)
    await ender
    times = [request.time for request in lookups(toapis_fake)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert lookups(toapis_fake)[0].status == 429
    assert all(gap >= 0.04 - 0.005 for gap in gaps)  # doubled from 0.02, and it stays raised


async def test_retry_after_is_honoured_while_waiting(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    submitted = await submit(toapis_client, "job-1")
    toapis_fake.fail(Endpoint.LOOKUP, Fault.rate_limited(retry_after=0.1))
    await toapis_client.wait_for_task(submitted.id, interval=0.001, deadline=GENEROUS, first_delay=0)
    first, second = lookups(toapis_fake)[:2]
    assert second.time - first.time >= 0.1 - 0.005


async def test_the_first_look_waits_one_interval_unless_told(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    toapis_fake.queue_timeline(Timeline.instant(), Timeline.instant())
    submitted = await submit(toapis_client, "job-1")
    started = time.monotonic()
    await toapis_client.wait_for_task(submitted.id, interval=0.1, deadline=GENEROUS)
    assert lookups(toapis_fake)[0].time - started >= 0.1 - 0.005


async def test_a_failing_callback_stops_the_wait(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    submitted = await submit(toapis_client, "job-1")

    def on_update(task: Task) -> None:
        raise RuntimeError("the caller's bug")

    with pytest.raises(RuntimeError, match="the caller's bug"):
        await toapis_client.wait_for_task(submitted.id, interval=0.001, deadline=GENEROUS, on_update=on_update)


async def test_end_task_by_hand(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.queue_timeline(Timeline.never_ends())
    submitted = await submit(toapis_client, "job-1")
    toapis_fake.end_task(submitted.id, Outcome.CONTENT_POLICY)
    task = await toapis_client.wait_for_task(submitted.id, interval=0.001, deadline=GENEROUS, first_delay=0)
    assert task.is_content_policy_failure


async def test_many_waits_share_one_client(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.on_prompt("fails", Timeline.failing())
    prompts = [f"picture {number}" + (" fails" if number % 5 == 0 else "") for number in range(25)]
    tasks = await asyncio.gather(
        *(submit(toapis_client, f"job-{number}", prompt=prompt) for number, prompt in enumerate(prompts))
    )
    toapis_fake.fail(Endpoint.LOOKUP, Fault.server_error(), times=10)
    ended = await asyncio.gather(
        *(toapis_client.wait_for_task(task.id, interval=0.002, deadline=GENEROUS) for task in tasks)
    )
    assert [task.id for task in ended] == [task.id for task in tasks]
    assert [task.status is TaskStatus.FAILED for task in ended] == ["fails" in prompt for prompt in prompts]


async def test_a_schedule_decides_each_wait_after_a_lookup_that_saw_the_task_running(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    toapis_fake.queue_timeline(Timeline.never_ends(progress=30))
    submitted = await submit(toapis_client, "job-1")
    slept: list[float] = []
    seen: list[Task] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 4:
            toapis_fake.end_task(submitted.id)
        await asyncio.sleep(seconds)

    def schedule(task: Task) -> float:
        seen.append(task)
        return 0.001 * len(seen)

    task = await toapis_client.wait_for_task(
        submitted.id, interval=0.5, first_delay=0.002, deadline=GENEROUS, sleep=sleep, next_delay=schedule
    )
    assert task.status is TaskStatus.COMPLETED
    assert slept == [0.002, 0.001, 0.002, 0.003]
    assert [(t.status, t.progress) for t in seen] == [(TaskStatus.IN_PROGRESS, 30)] * 3


async def test_a_429_slows_a_schedule_down_until_lookups_go_through_again(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    toapis_fake.queue_timeline(Timeline.never_ends(progress=30))
    submitted = await submit(toapis_client, "job-1")
    toapis_fake.fail(Endpoint.LOOKUP, Fault.rate_limited(retry_after=0.05))
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 6:
            toapis_fake.end_task(submitted.id)
        await asyncio.sleep(seconds)

    await toapis_client.wait_for_task(
        submitted.id, interval=0.01, first_delay=0.001, deadline=GENEROUS, sleep=sleep, next_delay=lambda t: 0.001
    )
    _first, after_429, slowed, halved, *rest = slept
    assert after_429 >= 0.05  # Retry-After
    assert slowed >= 0.02 * 0.8  # the doubled interval (less its jitter), though the schedule says 0.001
    assert halved >= 0.01 * 0.8  # halved, not below the interval
    assert rest == [0.001, 0.001]  # worn off: the schedule decides again

"""Webhooks through the fake ToAPIs, with the real pipeline, receiver and relay: a verified webhook wakes the job's
look-up (the safety look-ups, every 30 s here, are far beyond the test's wait, so a delivery proves the webhook
did it); repeated, forged, stale, malformed, oversized, test and unknown events change nothing; a refused
`callback_url` falls back to polling with one alert; a lost webhook only delays; a webhook that reaches a process
not following the task is acted on by the process that is."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from generation.alerts import AlertKind, AlertThrottle
from generation.callbacks import NOT_CONFIGURED, WebhookCallbacks
from generation.checks import Mark, check_webhooks
from generation.metrics import Metrics
from generation.pipeline import Pipeline
from generation.wakeups import TaskWakeups
from generation.webhook_receiver import MAX_DELIVERIES_AT_ONCE, WebhookReceiver
from generation.webhook_relay import WakeupRelay
from storage.jobs import JobState
from storage.store import Storage
from tests.e2e.harness import wait_until
from tests.fakes.toapis import Endpoint, FakeToAPIs, Fault, Timeline
from tests.generation.conftest import Board, Clock, Harness, request
from tests.storage.conftest import fresh_schema
from toapis import ToAPIsClient, contract

SECRET = "whsec_test_0123456789abcdef01234567"
NEW_SECRET = "whsec_rotated_fedcba9876543210fedcba"
PUBLIC_URL = "https://imagine.example.test/toapis/webhook?from=toapis"
SAFETY = 30.0  # look-ups with webhooks on: far beyond what any test here waits


@dataclass
class Hooked:
    """One process with webhooks on: its pipeline, the endpoint ToAPIs calls, and its relay."""

    pipeline: Pipeline
    receiver: WebhookReceiver
    relay: WakeupRelay
    metrics: Metrics
    owner: str

    @property
    def url(self) -> str:
        assert self.receiver.address is not None
        host, port = self.receiver.address
        return f"http://{host}:{port}"


@contextlib.asynccontextmanager
async def hooked(
    harness: Harness,
    *,
    store: Storage | None = None,
    owner: str = "process-a",
    secrets: tuple[str, ...] = (SECRET,),
    safety: float = SAFETY,
    retry_after: float = 3600.0,
    relay_interval: float = 0.01,
    read_timeout: float = contract.WEBHOOK_DELIVERY_TIMEOUT_SECONDS,
    receiver_clock: Callable[[], float] = time.time,
    max_at_once: int = MAX_DELIVERIES_AT_ONCE,
    **overrides: Any,
) -> AsyncIterator[Hooked]:
    """A pipeline with webhooks on (polling every second until the safety interval takes over), its receiver
    on a free port and its relay running; the fake's proxy forwards to this receiver."""
    if harness.store is None:
        await harness.open_store()
    store = store or harness.store
    assert store is not None
    callbacks = WebhookCallbacks(
        PUBLIC_URL,
        events=store.webhook_events,
        alerts=AlertThrottle(harness.board.alert),
        retry_after=retry_after,
    )
    defaults: dict[str, Any] = {"poll_interval": 1.0, "webhook_safety_interval": safety, "owner": owner}
    overrides = defaults | overrides
    pipeline = await harness.start(store=store, callbacks=callbacks, **overrides)
    leased = overrides.get("lease_ttl") is not None
    metrics = Metrics()
    receiver = WebhookReceiver(
        host="127.0.0.1",
        port=0,
        secrets=secrets,
        events=store.webhook_events,
        wakeups=pipeline.wakeups,
        owner=owner,
        leased=leased,
        metrics=metrics,
        read_timeout=read_timeout,
        clock=receiver_clock,
        max_at_once=max_at_once,
    )
    await receiver.start()
    relay = WakeupRelay(store.webhook_events, pipeline.wakeups, owner=owner, leased=leased, interval=relay_interval)
    relaying = asyncio.get_running_loop().create_task(relay.run())
    process = Hooked(pipeline, receiver, relay, metrics, owner)
    harness.fake.webhooks.configure(url=PUBLIC_URL, secret=SECRET, forward_to=process.url)
    try:
        yield process
    finally:
        relaying.cancel()
        with contextlib.suppress(BaseException):
            await relaying
        await receiver.close()


async def raw_exchange(process: Hooked, request: bytes) -> int:
    """Send `request` byte for byte (what no HTTP client would send) and return the status answered. An answer that
    never comes fails the test."""
    assert process.receiver.address is not None
    reader, writer = await asyncio.open_connection(*process.receiver.address)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(10):
            status_line = await reader.readline()
        return int(status_line.split()[1])
    finally:
        writer.close()


def raw_delivery(*, event_id: bytes, body: bytes, length: int | None = None) -> bytes:
    """A delivery's bytes, timestamped now and signed with nothing valid."""
    timestamp = str(int(time.time())).encode()
    return (
        b"POST /toapis/webhook HTTP/1.1\r\nHost: imagine.example.test\r\n"
        b"X-ToAPIs-Webhook-Id: " + event_id + b"\r\n"
        b"X-ToAPIs-Webhook-Timestamp: " + timestamp + b"\r\n"
        b"X-ToAPIs-Webhook-Signature: v1=" + b"0" * 64 + b"\r\n"
        b"Content-Length: " + str(len(body) if length is None else length).encode() + b"\r\n\r\n" + body
    )


def lookups_of(fake: FakeToAPIs, task_id: str) -> int:
    return sum(1 for r in fake.requests_to(Endpoint.LOOKUP) if r.path.endswith(task_id))


def statuses(fake: FakeToAPIs, task_id: str) -> list[int | None]:
    return [delivery.status for delivery in fake.webhooks.of_task(task_id) if not delivery.lost]


async def recorded(harness: Harness) -> int:
    """How many events are stored: counted by forgetting them all (a prune with no retention, a second later), so
    only where a test no longer needs them."""
    assert harness.store is not None
    harness.clock.advance(seconds=1)
    return await harness.store.webhook_events.prune(timedelta(0))


def webhook_count(process: Hooked, outcome: str) -> float:
    value = process.metrics.registry.get_sample_value("imagine_webhooks_total", {"outcome": outcome})
    return value or 0.0


async def delivered_by_webhook(harness: Harness, job_id: str) -> str:
    """Wait for the job's delivery; its task id. It must have taken one look-up: the one the webhook woke."""
    await harness.settled([job_id])
    (task,) = harness.fake.tasks_for(job_id)
    assert lookups_of(harness.fake, task.id) == 1
    return task.id


async def test_a_webhook_wakes_the_look_up_and_the_job_is_delivered_as_polling_would(harness: Harness) -> None:
    async with hooked(harness) as process:
        job = await harness.submit(process.pipeline)
        task_id = await delivered_by_webhook(harness, job.id)
        (submit,) = harness.fake.requests_to(Endpoint.SUBMIT)
        assert submit.json["callback_url"] == PUBLIC_URL
        assert statuses(harness.fake, task_id) == [200]
        assert harness.board.shown[job.id].job.state is not JobState.FAILED
        assert harness.board.deliveries_after_recorded == 0
        assert await recorded(harness) == 1
        assert webhook_count(process, "woken") == 1


async def test_a_repeated_event_is_answered_and_ignored(harness: Harness) -> None:
    harness.fake.webhooks.copies = 3
    async with hooked(harness) as process:
        job = await harness.submit(process.pipeline)
        task_id = await delivered_by_webhook(harness, job.id)
        assert statuses(harness.fake, task_id) == [200, 200, 200]
        assert await recorded(harness) == 1
        assert (webhook_count(process, "woken"), webhook_count(process, "repeat")) == (1, 2)
        assert harness.board.delivery_calls[job.id] == 1


@pytest.mark.parametrize("misbehaviour", ["forge", "stale"])
async def test_a_forged_or_stale_delivery_is_refused_and_changes_nothing(harness: Harness, misbehaviour: str) -> None:
    setattr(harness.fake.webhooks, misbehaviour, 1)
    async with hooked(harness) as process:
        job = await harness.submit(process.pipeline)
        # Had the refused delivery stored the event id, the genuine retry would be a repeat, woken nothing, and the
        # job would wait for the safety look-up, beyond this test's patience.
        task_id = await delivered_by_webhook(harness, job.id)
        assert statuses(harness.fake, task_id) == [401, 200]
        assert webhook_count(process, "bad_signature") == 1


async def test_an_event_id_whose_bytes_are_not_utf8_is_refused_401_not_a_server_error(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    async with hooked(harness) as process:
        with caplog.at_level(logging.WARNING):
            assert await raw_exchange(process, raw_delivery(event_id=b"evt_\xff", body=b"{}")) == 401
        assert webhook_count(process, "bad_signature") == 1
        assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []
        assert await recorded(harness) == 0


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_a_body_trickling_in_is_answered_408_once_toapis_would_have_given_up(
    harness: Harness, framing: str
) -> None:
    async with hooked(harness, read_timeout=0.05) as process:
        if framing == "content-length":
            request = raw_delivery(event_id=b"evt_slow", body=b'{"id": ', length=1_000)
        else:  # one chunk, then neither the next nor the last
            request = raw_delivery(event_id=b"evt_slow", body=b"")
            request = request.replace(b"Content-Length: 0", b"Transfer-Encoding: chunked") + b'7\r\n{"id": \r\n'
        # Without a deadline the receiver waits for the rest for ever, holding the connection (and the answer
        # never comes: raw_exchange gives up and the test fails).
        assert await raw_exchange(process, request) == 408
        assert webhook_count(process, "malformed") == 1
        assert await recorded(harness) == 0


async def test_deliveries_past_the_most_read_at_once_are_answered_503_and_a_free_slot_takes_the_next(
    harness: Harness,
) -> None:
    async with hooked(harness, max_at_once=2) as process:
        assert process.receiver.address is not None
        trickling = []
        for n in range(2):  # two clients that send a body's first bytes and then nothing, holding their slots
            reader, writer = await asyncio.open_connection(*process.receiver.address)
            writer.write(raw_delivery(event_id=b"evt_hold%d" % n, body=b'{"id": ', length=1_000))
            await writer.drain()
            trickling.append((reader, writer))

        async def refused_busy() -> bool:
            return await raw_exchange(process, raw_delivery(event_id=b"evt_third", body=b"{}")) == 503

        await wait_until(refused_busy, 10)
        assert webhook_count(process, "busy") >= 1
        assert await recorded(harness) == 0

        for _, writer in trickling:
            writer.close()
        # Their slots come free once their handlers see the connections go: a delivery is read again.
        webhooks = harness.fake.webhooks

        async def answered_again() -> bool:
            return await webhooks.send(webhooks.test_event()) == 200

        await wait_until(answered_again, 10)


async def test_refused_signatures_are_logged_once_a_minute_with_their_count(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    later = 0.0  # seconds the receiver's clock is ahead: within the timestamp window, past the log's minute

    async with hooked(harness, receiver_clock=lambda: time.time() + later) as process:
        webhooks = harness.fake.webhooks
        with caplog.at_level(logging.WARNING, logger="generation.webhook_receiver"):
            for _ in range(5):
                assert await webhooks.send(webhooks.test_event(), secret="not-the-secret-0123456789") == 401
            later = 61.0
            assert await webhooks.send(webhooks.test_event(), secret="not-the-secret-0123456789") == 401
        logged = [record.getMessage() for record in caplog.records if record.name == "generation.webhook_receiver"]
        assert len(logged) == 2, logged
        assert logged[0].startswith("Refused 1 webhook(s)")
        assert logged[1].startswith("Refused 5 webhook(s)")
        assert webhook_count(process, "bad_signature") == 6  # each one counted all the same


async def test_during_a_rotation_the_old_secret_still_verifies_and_after_it_only_the_new_one(harness: Harness) -> None:
    async with hooked(harness) as process:
        harness.fake.webhooks.rotate(NEW_SECRET)  # deliveries carry v1=<new>,v1=<old>; Imagine knows the old one
        job = await harness.submit(process.pipeline)
        task_id = await delivered_by_webhook(harness, job.id)
        assert statuses(harness.fake, task_id) == [200]
        # The rotation is over: only the new signature comes, and the old secret no longer verifies anything.
        harness.fake.webhooks.previous_secret = None
        assert await harness.fake.webhooks.send(harness.fake.webhooks.test_event()) == 401
    async with hooked(harness, owner="process-b", secrets=(NEW_SECRET,)):
        harness.fake.webhooks.rotate(NEW_SECRET)
        harness.fake.webhooks.previous_secret = None
        assert await harness.fake.webhooks.send(harness.fake.webhooks.test_event()) == 200


async def test_malformed_and_oversized_bodies_are_refused_400_and_change_nothing(harness: Harness) -> None:
    async with hooked(harness) as process:
        webhooks = harness.fake.webhooks
        assert await webhooks.send(b"this is not an event", event_id="evt_text") == 400
        assert await webhooks.send({"id": "evt_other", "type": "generation.completed"}, event_id="evt_x") == 400
        no_task = {"id": "evt_no_task", "type": "generation.completed", "data": {"status": "SUCCESS"}}
        assert await webhooks.send(no_task) == 400
        oversized = {**webhooks.test_event(), "padding": "x" * contract.WEBHOOK_MAX_BODY_BYTES}
        assert await webhooks.send(oversized) == 400  # signed, and still refused unread
        # A body without a signature that is also too large is refused for its size, before anything else.
        assert await webhooks.send(b"x" * (contract.WEBHOOK_MAX_BODY_BYTES + 1), signature="v1=00") == 400
        assert await recorded(harness) == 0
        assert webhook_count(process, "malformed") == 5


async def test_the_console_test_an_unknown_task_and_an_unknown_type_are_answered_2xx(harness: Harness) -> None:
    async with hooked(harness) as process:
        webhooks = harness.fake.webhooks
        test = webhooks.test_event()
        assert await webhooks.send(test) == 200
        assert await webhooks.send(test) == 200  # the console's test sent twice
        unknown = webhooks.test_event() | {"id": "evt_unknown_task", "type": "generation.completed"}
        unknown["data"] = {**unknown["data"], "task_id": "task_img_nobody", "client_business_id": "job-nobody"}
        assert await webhooks.send(unknown) == 200
        future = webhooks.test_event() | {"id": "evt_future", "type": "generation.progress"}
        assert await webhooks.send(future) == 200
        assert await recorded(harness) == 3
        assert (webhook_count(process, "ignored"), webhook_count(process, "repeat")) == (3, 1)
        # The pipeline still works as before.
        job = await harness.submit(process.pipeline)
        await delivered_by_webhook(harness, job.id)


async def test_a_refused_callback_url_falls_back_to_polling_with_one_alert_until_webhooks_work(
    harness: Harness,
) -> None:
    # retry_after=0: every submit tries callback_url again, so the second refusal must not alert again.
    async with hooked(harness, retry_after=0.0, poll_interval=0.01) as process:
        harness.fake.webhooks.enabled = False  # Task Webhooks off in the console
        first = await harness.submit(process.pipeline)
        second = await harness.submit(process.pipeline, request(user_id=101))
        await harness.settled([first.id, second.id])
        submits = harness.fake.requests_to(Endpoint.SUBMIT)
        for job in (first, second):  # each: refused with callback_url, then accepted without it
            mine = [s for s in submits if s.json["client_business_id"] == job.id]
            assert [("callback_url" in s.json, s.status) for s in mine] == [(True, 400), (False, 200)]
        assert all(len(harness.fake.tasks_for(job.id)) == 1 for job in (first, second))  # a 400 made no task
        assert [alert.kind for alert in harness.board.alerts] == [AlertKind.WEBHOOK_NOT_CONFIGURED]
        assert "Task Webhooks" in harness.board.alerts[0].text
        assert harness.store is not None
        (problem,) = await harness.store.webhook_events.problems()
        assert problem.problem == NOT_CONFIGURED
        line = check_webhooks(public_url=PUBLIC_URL, listen=("127.0.0.1", 8081), refused=problem)
        assert line.mark is Mark.NOTE
        assert "ToAPIs refused callback_url" in line.text

        # The operator turns Task Webhooks on: the next submit's callback_url is accepted and the record cleared.
        harness.fake.webhooks.enabled = True
        third = await harness.submit(process.pipeline, request(user_id=102))
        await harness.settled([third.id])
        assert harness.fake.requests_to(Endpoint.SUBMIT)[-1].json["callback_url"] == PUBLIC_URL
        assert await harness.store.webhook_events.problems() == []
        line = check_webhooks(public_url=PUBLIC_URL, listen=("127.0.0.1", 8081), refused=None)
        assert line.mark is Mark.OK
        assert line.text.startswith("on: ToAPIs calls")


async def test_a_callback_url_on_another_host_than_the_consoles_falls_back_to_polling_the_same_way(
    harness: Harness,
) -> None:
    async with hooked(harness, poll_interval=0.01) as process:
        # WEBHOOK_PUBLIC_URL's host differs from the Token's URL: ToAPIs answers a plain 400 naming callback_url.
        harness.fake.webhooks.configure(
            url="https://elsewhere.example.test/toapis", secret=SECRET, forward_to=process.url
        )
        job = await harness.submit(process.pipeline)
        settled = await harness.settled([job.id])
        assert settled[job.id].state is JobState.COMPLETED
        submits = harness.fake.requests_to(Endpoint.SUBMIT)
        assert [("callback_url" in s.json, s.status) for s in submits] == [(True, 400), (False, 200)]
        assert len(harness.fake.tasks_for(job.id)) == 1
        assert [alert.kind for alert in harness.board.alerts] == [AlertKind.WEBHOOK_NOT_CONFIGURED]
        assert harness.store is not None
        (problem,) = await harness.store.webhook_events.problems()
        assert problem.problem == NOT_CONFIGURED
        assert "callback_url" in problem.detail


async def test_a_restarted_process_polls_as_usual_while_a_refusal_is_on_record(harness: Harness) -> None:
    # A task submitted without callback_url (refused) gets no webhook: once this process restarts, its follower
    # must not wait for one (the safety look-ups, 30 s here, are beyond this test's patience).
    harness.fake.queue_timeline(Timeline.never_ends())
    async with hooked(harness, poll_interval=0.01) as first:
        harness.fake.webhooks.enabled = False
        job = await harness.submit(first.pipeline)
        await harness.fake.wait_for(lambda: any(lookups_of(harness.fake, t.id) for t in harness.fake.tasks_for(job.id)))
        await first.pipeline.close()
    (task,) = harness.fake.tasks_for(job.id)
    async with hooked(harness, owner="process-a-again", poll_interval=0.01):
        harness.fake.webhooks.enabled = False
        await harness.fake.wait_for(lambda: lookups_of(harness.fake, task.id) >= 2)  # resumed: looked at once
        harness.fake.end_task(task.id)
        settled = await harness.settled([job.id])
        assert settled[job.id].state is JobState.COMPLETED
    assert len(harness.board.alerts) == 1  # the refusal, told once


async def test_after_a_refusal_this_process_stops_sending_callback_url_for_a_while(harness: Harness) -> None:
    async with hooked(harness, poll_interval=0.01) as process:
        harness.fake.webhooks.enabled = False
        first = await harness.submit(process.pipeline)
        await harness.settled([first.id])
        second = await harness.submit(process.pipeline, request(user_id=101))
        await harness.settled([second.id])
        sent = ["callback_url" in s.json for s in harness.fake.requests_to(Endpoint.SUBMIT)]
        assert sent == [True, False, False]
        assert len(harness.board.alerts) == 1


async def test_a_lost_webhook_only_delays_the_job_until_a_safety_look_up(harness: Harness) -> None:
    harness.fake.webhooks.lose = 1
    safety = 0.05
    # The least interval below the safety interval, so that the safety interval alone times the look-up.
    async with hooked(harness, safety=safety, min_lookup_interval=0.01) as process:
        job = await harness.submit(process.pipeline)
        await harness.settled([job.id])
        (task,) = harness.fake.tasks_for(job.id)
        assert [delivery.lost for delivery in harness.fake.webhooks.of_task(task.id)] == [True]
        assert webhook_count(process, "woken") == 0  # nothing woke the follower...
        (lookup,) = [r for r in harness.fake.requests_to(Endpoint.LOOKUP) if r.path.endswith(task.id)]
        # ...its one look-up came once the safety interval (less its jitter, a tenth) had passed.
        assert lookup.time - task.created >= 0.9 * safety


async def test_with_webhooks_the_safety_interval_holds_however_soon_the_history_expects_the_end(
    harness: Harness,
) -> None:
    # The history says tasks end within 0.05 s, so the timed schedule would look at once; with the end announced
    # by a webhook (here lost), only the safety interval may bring the look-up.
    harness.fake.webhooks.lose = 1
    safety = 0.4
    harness.fake.queue_timeline(Timeline.simple(running=0.02))
    async with hooked(harness, safety=safety, min_lookup_interval=0.005) as process:
        for index in range(5):
            process.pipeline.durations.record(f"earlier-{index}", "gpt-image-2", "1k", 0.05)
        job = await harness.submit(process.pipeline)
        await harness.settled([job.id])
        (task,) = harness.fake.tasks_for(job.id)
        (lookup,) = [r for r in harness.fake.requests_to(Endpoint.LOOKUP) if r.path.endswith(task.id)]
        assert lookup.time - task.created >= 0.9 * safety


async def test_a_task_submitted_without_callback_url_keeps_its_schedule_once_a_later_one_is_accepted(
    harness: Harness,
) -> None:
    # The first task is submitted while the console has webhooks off: no webhook will ever announce its end. A
    # later submit's callback_url is accepted; the first task must still be looked up on its own schedule, not
    # left to the safety look-ups (30 s here, beyond the test's patience).
    harness.fake.queue_timeline(Timeline.never_ends())
    async with hooked(harness, retry_after=0.0, poll_interval=0.01) as process:
        harness.fake.webhooks.enabled = False
        first = await harness.submit(process.pipeline)
        await harness.fake.wait_for(lambda: len(harness.fake.tasks_for(first.id)) == 1)
        (task,) = harness.fake.tasks_for(first.id)
        harness.fake.webhooks.enabled = True
        second = await harness.submit(process.pipeline, request(user_id=101))
        await harness.settled([second.id])
        assert harness.fake.requests_to(Endpoint.SUBMIT)[-1].json["callback_url"] == PUBLIC_URL  # accepted
        seen = lookups_of(harness.fake, task.id)
        await harness.fake.wait_for(lambda: lookups_of(harness.fake, task.id) >= seen + 3)
        harness.fake.end_task(task.id)
        settled = await harness.settled([first.id])
        assert settled[first.id].state is JobState.COMPLETED
        assert harness.fake.webhooks.of_task(task.id) == []  # no webhook was ever due


async def test_a_failed_tasks_webhook_wakes_the_job_which_is_refunded_once(harness: Harness) -> None:
    harness.fake.queue_timeline(Timeline.failing("the model crashed"))
    async with hooked(harness) as process:
        job = await harness.submit(process.pipeline, request(n=2))
        task_id = await delivered_by_webhook(harness, job.id)
        assert [d.event_type for d in harness.fake.webhooks.of_task(task_id)] == ["generation.failed"]
        failed = harness.board.failure(job.id)
        assert (failed.refunded, failed.job.state) == (2, JobState.FAILED)
        assert harness.store is not None
        assert await harness.store.quotas.reserved_for_job(job.id) == 0
        assert webhook_count(process, "woken") == 1


async def test_the_relay_keeps_webhook_events_for_the_whole_retry_schedule(harness: Harness) -> None:
    # ToAPIs retries a delivery for up to a day: an id forgotten sooner would be acted on twice.
    store = await harness.open_store()
    relay = WakeupRelay(store.webhook_events, TaskWakeups(), owner="process-a", leased=False)
    assert await store.webhook_events.record("evt_kept", task_id="task_a", job_id=None)
    harness.clock.advance(hours=25, seconds=-1)
    assert await relay.prune() == 0
    assert not await store.webhook_events.record("evt_kept", task_id="task_a", job_id=None)  # still a repeat
    harness.clock.advance(seconds=2)
    assert await relay.prune() == 1


@pytest.mark.parametrize("relay_interval", [0.01, 60.0], ids=["relay-reads-often", "relay-reads-rarely"])
async def test_a_webhook_before_the_submit_is_answered_wakes_the_follower_once_it_waits(
    harness: Harness, relay_interval: float
) -> None:
    # The task is created at once and ends at once; the submit's answer comes 0.3 s later. The webhook finds the
    # job by its business id, with no task id yet and nobody waiting: the follower starts woken once it comes (the
    # wake-up is also left in the database, for the relay).
    harness.fake.queue_timeline(Timeline.instant())
    harness.fake.fail(Endpoint.SUBMIT, Fault.slow(0.3), after_effect=True)
    async with hooked(harness, relay_interval=relay_interval) as process:
        job = await harness.submit(process.pipeline)
        task_id = await delivered_by_webhook(harness, job.id)
        assert statuses(harness.fake, task_id) == [200]
        assert webhook_count(process, "left_for_holder") == 1
        assert harness.store is not None
        # The follower started woken, without the relay; the wake-up left in the database is for a finished job,
        # which the relay's next read clears.
        await process.relay.relay_once()
        assert await harness.store.webhook_events.wakes_for("process-a") == []


async def test_a_late_event_for_a_job_past_its_task_leaves_no_wake_up(harness: Harness) -> None:
    # An event (ToAPIs sending one again under a new id, say) for a job already delivering: there is no follower
    # to wake, and a wake-up left for it would be read again every second until the job ends.
    delivering = asyncio.Event()
    go_on = asyncio.Event()

    async def hold(_: Any) -> None:
        delivering.set()
        await go_on.wait()

    harness.board.before_show = hold
    async with hooked(harness) as process:
        job = await harness.submit(process.pipeline)
        await asyncio.wait_for(delivering.wait(), 10)
        (task,) = harness.fake.tasks_for(job.id)
        assert await harness.fake.webhooks.send(harness.fake.webhooks.event_for(task)) == 200
        assert harness.store is not None
        assert await harness.store.webhook_events.wakes_for(process.owner) == []
        assert webhook_count(process, "ignored") == 1
        go_on.set()
        await delivered_by_webhook(harness, job.id)


class _FailingWakeWrite:
    """The events' database, but the first write that leaves a wake-up for `owner` fails (a dropped connection,
    say): whatever the receiver wrote before it in that delivery stays written."""

    def __init__(self, db: Any, owner: str) -> None:
        self._db = db
        self._owner = owner
        self.failed = 0

    async def execute(self, sql: str, params: dict[str, Any] | None = None) -> int:
        if not self.failed and "webhook_events" in sql and self._owner in (params or {}).values():
            self.failed += 1
            raise ConnectionError("the database went away")
        return int(await self._db.execute(sql, params))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


async def test_an_event_the_store_fails_to_keep_is_answered_500_and_its_retry_wakes_the_follower(
    harness: Harness,
) -> None:
    # As above, the webhook comes before the submit is answered, so its wake-up must be left in the database; the
    # store fails once. The answer is 500, and ToAPIs' retry must not be taken for a repeat: it leaves the wake-up.
    harness.fake.queue_timeline(Timeline.instant())
    harness.fake.fail(Endpoint.SUBMIT, Fault.slow(0.3), after_effect=True)
    async with hooked(harness) as process:
        assert harness.store is not None
        events = harness.store.webhook_events
        failing = _FailingWakeWrite(events._db, process.owner)
        events._db = failing  # type: ignore[assignment]
        job = await harness.submit(process.pipeline)
        task_id = await delivered_by_webhook(harness, job.id)
        assert failing.failed == 1
        assert statuses(harness.fake, task_id) == [500, 200]
        assert (webhook_count(process, "error"), webhook_count(process, "left_for_holder")) == (1, 1)
        await process.relay.relay_once()
        assert await events.wakes_for(process.owner) == []


# -- several processes ------------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
async def shared_harness(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    toapis_fake: FakeToAPIs,
    toapis_client: ToAPIsClient,
    clock: Clock,
    board: Board,
) -> AsyncIterator[Harness]:
    """A harness on a database two processes share: an SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        built = Harness(tmp_path, toapis_fake, toapis_client, clock, board)
        try:
            yield built
        finally:
            await built.aclose()
        return
    async with fresh_schema() as url:
        built = Harness(tmp_path, toapis_fake, toapis_client, clock, board, database_url=url)
        try:
            yield built
        finally:
            await built.aclose()


async def test_a_webhook_reaching_the_process_without_the_lease_is_acted_on_by_the_holder(
    shared_harness: Harness,
) -> None:
    harness = shared_harness
    holder_store = await harness.open_store()
    other_store = await Storage.open(harness.url, defaults=harness.defaults, clock=harness.clock)
    try:
        async with (
            hooked(harness, store=holder_store, owner="holder", lease_ttl=5.0) as holder,
            hooked(harness, store=other_store, owner="other", lease_ttl=5.0) as other,
        ):
            # The operator's proxy sends this one to the process that does not hold the job.
            assert harness.fake.webhooks.forward_to == other.url
            job = await harness.submit(holder.pipeline)
            task_id = await delivered_by_webhook(harness, job.id)
            assert statuses(harness.fake, task_id) == [200]
            assert webhook_count(other, "left_for_holder") == 1
            assert webhook_count(holder, "woken") == 0  # it never received the webhook itself...
            assert await wait_until(lambda: harness.board.finished(job.id))
            assert await other_store.webhook_events.wakes_for("holder") == []  # ...but acted on it, and cleared it
            stored = await other_store.jobs.get(job.id)
            assert stored is not None
            assert stored.state is JobState.COMPLETED
    finally:
        await other_store.close()


@pytest.fixture
async def postgres_harness(
    tmp_path: Path, toapis_fake: FakeToAPIs, toapis_client: ToAPIsClient, clock: Clock, board: Board
) -> AsyncIterator[Harness]:
    async with fresh_schema() as url:
        built = Harness(tmp_path, toapis_fake, toapis_client, clock, board, database_url=url)
        try:
            yield built
        finally:
            await built.aclose()


async def test_on_postgresql_the_holder_is_told_of_a_wake_up_at_once(postgres_harness: Harness) -> None:
    # The relays read the database only once a minute here: the holder acts at once because it is notified.
    harness = postgres_harness
    holder_store = await harness.open_store()
    other_store = await Storage.open(harness.url, defaults=harness.defaults, clock=harness.clock)
    try:
        async with (
            hooked(harness, store=holder_store, owner="holder", lease_ttl=5.0, relay_interval=60.0) as holder,
            hooked(harness, store=other_store, owner="other", lease_ttl=5.0, relay_interval=60.0) as other,
        ):
            assert harness.fake.webhooks.forward_to == other.url
            job = await harness.submit(holder.pipeline)
            task_id = await delivered_by_webhook(harness, job.id)
            assert statuses(harness.fake, task_id) == [200]
            assert webhook_count(other, "left_for_holder") == 1
            assert await other_store.webhook_events.wakes_for("holder") == []
    finally:
        await other_store.close()


async def test_wake_ups_for_jobs_finished_or_taken_over_are_dropped(harness: Harness) -> None:
    store = await harness.open_store()
    events = store.webhook_events
    await events.record("evt_gone", task_id="task_gone", job_id="no-such-job", wake_owner="me")
    relay = WakeupRelay(events, TaskWakeups(), owner="me", leased=True, retention=0.0)
    assert await relay.relay_once() == 0
    assert await events.wakes_for("me") == []
    harness.clock.advance(seconds=1)
    assert await relay.prune() == 1

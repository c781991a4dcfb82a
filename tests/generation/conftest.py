"""Fixtures for the pipeline tests: a real SQLite file, the ToAPIs fake over real HTTP, tiny intervals.

`Board` stands for what members see in Discord: it outlives any one pipeline (a crash test starts a second
pipeline on the same database and the same board). Delivery is idempotent, as the real reporter's is (a
repeated reply edit shows one result), and the board counts deliveries that arrive after one was recorded in
the database: a correct pipeline makes none.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from generation.alerts import Alert, AlertThrottle
from generation.callbacks import WebhookCallbacks
from generation.events import Completed, DeliveryReceipt, Failed, ProgressEvent, ReporterFactory
from generation.pipeline import Pipeline, PipelineConfig
from generation.requests import JobRequest, Reference
from storage.jobs import Job, JobRepository, JobState
from storage.quotas import OperatorDefaults
from storage.store import Storage
from tests.fakes.toapis import FakeToAPIs
from toapis import ToAPIsClient

# Generous: only reached when something is broken; a passing test never waits this long.
WAIT = 15.0


class Clock:
    """The storage clock: real time plus an offset a test can move forward (a long downtime, say)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@dataclass(frozen=True)
class Shown:
    """A result as the member sees it: the job and the bytes of its images, in order."""

    job: Job
    images: tuple[bytes, ...]
    mime_types: tuple[str, ...]
    refunded: int


class Board:
    """Everything every reporter was told, across pipelines; conditions to wait on."""

    def __init__(self) -> None:
        self.store: Storage | None = None  # read at delivery time, to spot a delivery after the recorded one
        self.progress: dict[str, list[ProgressEvent]] = {}
        self.shown: dict[str, Shown] = {}
        self.delivery_calls: dict[str, int] = {}
        self.deliveries_after_recorded = 0
        self.failures: dict[str, list[Failed]] = {}
        self.alerts: list[Alert] = []
        self._changed = asyncio.Event()
        # Hooks a test sets to make a delivery misbehave: called before the result is shown.
        self.before_show: Callable[[Completed], Awaitable[None]] | None = None
        self.receipt_for: Callable[[Completed], DeliveryReceipt | None] | None = None

    def reporter(self, job_id: str | None = None) -> RecordingReporter:
        return RecordingReporter(self, job_id)

    def factory(self, job: Job) -> RecordingReporter:
        """The ReporterFactory of a resumed job."""
        return RecordingReporter(self, job.id)

    def events(self, job_id: str) -> list[ProgressEvent]:
        return self.progress.get(job_id, [])

    def events_of(self, job_id: str, kind: type[Any]) -> list[Any]:
        return [event for event in self.events(job_id) if isinstance(event, kind)]

    def finished(self, job_id: str) -> bool:
        return job_id in self.shown or job_id in self.failures

    def changed(self) -> None:
        """Wake every waiter to check its condition again (synchronous: progress() may not block)."""
        self._changed.set()
        self._changed = asyncio.Event()

    def alert(self, alert: Alert) -> None:
        """The AlertSink."""
        self.alerts.append(alert)
        self.changed()

    async def wait_for(self, condition: Callable[[], bool], timeout: float = WAIT) -> None:
        """Wait until `condition()` holds, checking it at every change; TimeoutError after `timeout`."""
        async with asyncio.timeout(timeout):
            while not condition():
                await self._changed.wait()

    async def wait_finished(self, job_ids: Iterable[str], timeout: float = WAIT) -> None:
        wanted = list(job_ids)
        await self.wait_for(lambda: all(self.finished(job_id) for job_id in wanted), timeout)

    def failure(self, job_id: str) -> Failed:
        (failed,) = self.failures[job_id]
        return failed


class RecordingReporter:
    """A Reporter that records into a Board. Knows its job once an event names it (or from the factory)."""

    def __init__(self, board: Board, job_id: str | None) -> None:
        self.board = board
        self.job_id = job_id
        self.own: list[ProgressEvent] = []  # what this reporter (not a resumed one) was told
        self._unassigned: list[ProgressEvent] = []

    def bind(self, job_id: str) -> None:
        """The test learnt the job id (from `submit`): events told before it are filed under it."""
        self.job_id = job_id
        self.board.progress.setdefault(job_id, [])[:0] = self._unassigned
        self._unassigned.clear()

    def progress(self, event: ProgressEvent) -> None:
        self.own.append(event)
        if self.job_id is None:
            self._unassigned.append(event)
        else:
            self.board.progress.setdefault(self.job_id, []).append(event)
        self.board.changed()

    async def deliver(self, event: Completed) -> DeliveryReceipt:
        board = self.board
        job_id = event.job.id
        board.delivery_calls[job_id] = board.delivery_calls.get(job_id, 0) + 1
        if board.store is not None:
            stored = await board.store.jobs.get(job_id)
            if stored is not None and stored.delivered_at is not None:
                board.deliveries_after_recorded += 1
        if board.before_show is not None:
            await board.before_show(event)
        receipt = board.receipt_for(event) if board.receipt_for is not None else None
        if receipt is not None and not receipt.delivered:
            board.changed()
            return receipt
        images = tuple(image.read_bytes() for image in event.images)
        for image in event.images:
            assert image.size == len(image.path.read_bytes())
        # Idempotent: a repeat shows the same message again, not a second one.
        board.shown[job_id] = Shown(event.job, images, tuple(image.mime_type for image in event.images), event.refunded)
        board.changed()
        return receipt or DeliveryReceipt(delivered=True, message_id=4242)

    async def failed(self, event: Failed) -> None:
        self.board.failures.setdefault(event.job.id, []).append(event)
        self.board.changed()


@dataclass
class _Stops:
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    seen: asyncio.Event = field(default_factory=asyncio.Event)
    stopped: int = 0


class BlockingJobs(JobRepository):
    """A JobRepository that stops forever at a chosen point, so a test can "crash" the pipeline exactly there.

    `before`: stop when asked to store this state, before storing it. `after`: stop right after storing it.
    `before_delivery`: stop when asked to record a delivery, before recording it. `reached` is set on stopping;
    `stopped` counts the jobs stopped. With `gate`, a stop lasts until that event is set instead.
    """

    def __init__(
        self,
        store: Storage,
        *,
        before: JobState | None = None,
        after: JobState | None = None,
        before_delivery: bool = False,
        gate: asyncio.Event | None = None,
    ) -> None:
        super().__init__(store.db, store.clock)
        self.before = before
        self.after = after
        self.before_delivery = before_delivery
        self.gate = gate
        # Shared with the copies `held_by` makes (a lease holder's view of this repository).
        self._stops = _Stops()

    @property
    def reached(self) -> asyncio.Event:
        return self._stops.reached

    @property
    def stopped(self) -> int:
        return self._stops.stopped

    async def wait_stopped(self, count: int = 1, timeout: float = WAIT) -> None:
        """Wait until `count` jobs are stopped here."""
        async with asyncio.timeout(timeout):
            while self._stops.stopped < count:
                await self._stops.seen.wait()

    async def _stop(self) -> None:
        stops = self._stops
        stops.stopped += 1
        stops.reached.set()
        stops.seen.set()
        stops.seen = asyncio.Event()
        if self.gate is not None:
            await self.gate.wait()
        else:
            await asyncio.get_running_loop().create_future()  # until cancelled by Pipeline.close()

    async def set_state(self, job_id: str, state: JobState, **fields: Any) -> Job:
        if state is self.before:
            await self._stop()
        job = await super().set_state(job_id, state, **fields)
        if state is self.after:
            await self._stop()
        return job

    async def record_delivery(
        self, job_id: str, *, images_delivered: int, result_message_id: int | None, by_dm: bool = False
    ) -> Job:
        if self.before_delivery:
            await self._stop()
        return await super().record_delivery(
            job_id, images_delivered=images_delivered, result_message_id=result_message_id, by_dm=by_dm
        )


def png_bytes(width: int = 64, height: int = 48, colour: str = "teal") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def request(
    *,
    guild_id: int = 1,
    user_id: int = 100,
    prompt: str = "a lighthouse at dusk",
    n: int = 1,
    aspect: str = "1:1",
    resolution: str = "1k",
    model: str = "gpt-image-2",
    weight: int = 1,
    references: tuple[Reference, ...] = (),
    channel_id: int = 500,
    role_ids: frozenset[int] = frozenset(),
) -> JobRequest:
    return JobRequest(
        guild_id=guild_id,
        channel_id=channel_id,
        user_id=user_id,
        prompt=prompt,
        model=model,
        aspect=aspect,
        resolution=resolution,
        weight=weight,
        n=n,
        role_ids=role_ids,
        references=references,
    )


@dataclass
class Harness:
    """Builds pipelines on one database, fake and board; closes whatever it started."""

    tmp_path: Path
    fake: FakeToAPIs
    client: ToAPIsClient
    clock: Clock
    board: Board
    defaults: OperatorDefaults = field(default_factory=OperatorDefaults)
    store: Storage | None = None
    pipelines: list[Pipeline] = field(default_factory=list)
    alert_quiet_period: float = 600.0

    database_url: str | None = None
    """A PostgreSQL URL to run on instead of an SQLite file in tmp_path."""

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite:///{self.tmp_path / 'data' / 'imagine.db'}"

    @property
    def spool_dir(self) -> Path:
        return self.tmp_path / "spool"

    async def open_store(self) -> Storage:
        if self.store is not None:
            await self.store.close()
        self.store = await Storage.open(self.url, defaults=self.defaults, clock=self.clock)
        self.board.store = self.store
        return self.store

    def config(self, **overrides: Any) -> PipelineConfig:
        base = PipelineConfig(
            model="gpt-image-2",
            poll_interval=0.005,
            generation_timeout=30.0,
            max_concurrent_jobs=4,
            spool_dir=self.spool_dir,
            late_poll_interval=0.05,
            breaker_threshold=3,
            probe_interval=0.005,
            retry_delay=0.001,
            max_retry_delay=0.01,
        )
        return dataclasses.replace(base, **overrides)

    async def start(
        self,
        *,
        store: Storage | None = None,
        reporters: ReporterFactory | None = None,
        callbacks: WebhookCallbacks | None = None,
        **overrides: Any,
    ) -> Pipeline:
        if self.store is None:
            await self.open_store()
        assert self.store is not None
        pipeline = Pipeline(
            config=self.config(**overrides),
            client=self.client,
            store=store or self.store,
            reporters=reporters or self.board.factory,
            alerts=AlertThrottle(self.board.alert, quiet_period=self.alert_quiet_period),
            callbacks=callbacks,
        )
        self.pipelines.append(pipeline)
        await pipeline.start()
        return pipeline

    async def submit(self, pipeline: Pipeline, job_request: JobRequest | None = None) -> Job:
        reporter = self.board.reporter()
        job = await pipeline.submit(job_request or request(), reporter)
        reporter.bind(job.id)
        return job

    async def settled(self, job_ids: Iterable[str], timeout: float = WAIT) -> dict[str, Job]:
        """Wait until the board heard the end of every job, the database has it finished, and the pipeline has
        tidied up after it (its spool folder removed, its reporter let go); the jobs as stored.

        The pipeline records a delivery after the reporter returns, then cleans the spool in a thread and lets
        the reporter go, so the board alone is not enough.
        """
        wanted = list(job_ids)
        await self.board.wait_finished(wanted, timeout)
        assert self.store is not None
        async with asyncio.timeout(timeout):
            while True:
                jobs = {job_id: await self.store.jobs.get(job_id) for job_id in wanted}
                finished = all(job is not None and job.is_finished for job in jobs.values())
                latest = self.pipelines[-1] if self.pipelines else None  # the one working now
                tidy = not any(
                    (self.spool_dir / job_id).exists() or (latest is not None and latest.reporter_of(job_id))
                    for job_id in wanted
                )
                if finished and tidy:
                    return {job_id: job for job_id, job in jobs.items() if job is not None}
                await asyncio.sleep(0.002)

    async def restart(self, old: Pipeline, **overrides: Any) -> Pipeline:
        """A crash and a restart: stop the pipeline, reopen the database, start a new pipeline on it."""
        await old.close()
        await self.open_store()
        return await self.start(**overrides)

    async def aclose(self) -> None:
        for pipeline in self.pipelines:
            await pipeline.close()
        if self.store is not None:
            await self.store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def board() -> Board:
    return Board()


@pytest.fixture
async def harness(
    tmp_path: Path, toapis_fake: FakeToAPIs, toapis_client: ToAPIsClient, clock: Clock, board: Board
) -> AsyncIterator[Harness]:
    built = Harness(tmp_path, toapis_fake, toapis_client, clock, board)
    try:
        yield built
    finally:
        await built.aclose()

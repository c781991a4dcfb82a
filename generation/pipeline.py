"""The job pipeline: from an accepted request to delivered images, one stored step at a time.

    admit (reserve quota + store job and references, one transaction)
      -> wait in the fair queue for one of MAX_CONCURRENT_JOBS slots
      -> upload references -> submit (client_business_id = job id) -> follow the task   [holds the slot]
      -> download results to the spool -> deliver through the reporter -> record usage

`Pipeline` is the small face the cogs talk to: admit, cancel, a job's place in line, resume at start, shut
down. A job's steps are a `JobRun` (generation/job_run.py); which failure is counted or refunded is
generation/failures.py; leases and adoption are generation/leases.py; the upstream's health is
generation/upstream.py. Every step is stored before and after it runs, so a crash at any moment loses no job
(docs/guarantees.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid

from generation.alerts import AlertThrottle
from generation.breaker import CircuitBreaker
from generation.callbacks import WebhookCallbacks
from generation.config import PipelineConfig
from generation.context import RunContext
from generation.events import FailureKind, Paused, Queued, Reporter, ReporterBook, close_reporter
from generation.events import ReporterFactory as ReporterFactory
from generation.failures import JobFailure
from generation.fair_queue import FairQueue
from generation.job_run import JobRun
from generation.leases import LeaseKeeper
from generation.logs import bind_log_context
from generation.metrics import Metrics
from generation.refusals import AnsweredElsewhere, QuotaExceeded, ReferencesNotSaved, Restarting, Unavailable
from generation.requests import JobRequest
from generation.untold_failures import UntoldFailures
from generation.upstream import UpstreamHealth
from storage.jobs import Job, JobState
from storage.store import Storage
from toapis import ToAPIsClient

__all__ = ["Pipeline", "PipelineConfig"]

log = logging.getLogger(__name__)


class Pipeline:
    """Admits requests, runs them fairly within MAX_CONCURRENT_JOBS, and resumes what a restart interrupted."""

    def __init__(
        self,
        *,
        config: PipelineConfig,
        client: ToAPIsClient,
        store: Storage,
        reporters: ReporterFactory,
        alerts: AlertThrottle | None = None,
        metrics: Metrics | None = None,
        callbacks: WebhookCallbacks | None = None,
    ) -> None:
        self._config = config
        self.metrics = metrics if metrics is not None else Metrics()
        self._store = store
        self._reporters = ReporterBook(reporters)
        self.health = UpstreamHealth(
            client, threshold=config.breaker_threshold, probe_interval=config.probe_interval, alerts=alerts
        )
        self.health.listen(self._on_breaker_change)
        self._context = RunContext.build(config, client, store, self.health, self._reporters, self.metrics, callbacks)
        self.wakeups = self._context.wakeups
        """Tasks followed here, to be looked up at once when something says they ended (a webhook)."""
        self.durations = self._context.durations
        """Recent task durations per model and resolution: the time left, and when to look tasks up."""
        self._leases = LeaseKeeper(
            store,
            config,
            schedule=self._schedule,
            let_go_of_every_job=self._let_go_of_every_job,
            on_adopted=self._on_adopted,
        )
        self._untold = UntoldFailures(self._context, held=self._leases.held)
        self._waiting: FairQueue[str, Job] = FairQueue()
        self._places: dict[str, int] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._in_flight = 0
        self._changed = asyncio.Condition()
        self._dispatcher: asyncio.Task[None] | None = None
        self._lease_keeper: asyncio.Task[None] | None = None
        self._accepting = False

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume every unfinished job from its last stored step, then start taking new ones.

        With leases (several processes on one database), only the jobs of this process's servers that no other
        process holds are resumed; the others are adopted later if their lease runs out.
        """
        spool = self._context.spool
        await asyncio.to_thread(spool.make_private)  # refused if another user made its path first
        await self.durations.load()
        if self._context.callbacks is not None:
            await self._context.callbacks.load()
        unfinished = await self._store.jobs.list_unfinished()
        if not self._leases.leased:
            spool.remove_all_but({job.id for job in unfinished})
        resumed = await self._leases.adopt(unfinished)
        if resumed:
            log.info("Resumed %d unfinished job(s)", resumed)
        await self._untold.tell()
        self._accepting = True
        self._dispatcher = asyncio.create_task(self._dispatch(), name="pipeline-dispatcher")
        self._lease_keeper = asyncio.create_task(self._leases.keep(), name="pipeline-leases")
        self._announce_places()

    async def close(self) -> None:
        """Stop taking jobs and stop working: unfinished jobs stay stored, to be resumed by the next start.

        The reporters of unfinished jobs that are `ClosableReporter`s are closed: nothing more will reach them.
        """
        self._accepting = False
        if self._lease_keeper is not None:
            self._lease_keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lease_keeper
            self._lease_keeper = None
        await self._untold.close()
        held = [*self._tasks, *self._waiting.order()]
        left = len(self._tasks) + len(self._waiting)
        # Taken first: a cancelled job lets go of its reporter without telling it anything.
        reporters = self._reporters.take_all()
        tasks = [task for task in (self._dispatcher, *self._tasks.values()) if task is not None]
        await _cancel_all(tasks)
        self._dispatcher = None
        await self.health.aclose()
        await self.durations.aclose()
        await _close_reporters(reporters)
        await self._leases.release(held)
        log.info("Pipeline stopped; %d unfinished job(s) stay stored for the next start", left)

    # -- the public face -------------------------------------------------------------------------------------

    @property
    def accepting(self) -> bool:
        """True between `start` and `close`."""
        return self._accepting

    @property
    def breaker(self) -> CircuitBreaker:
        """The circuit breaker in front of the image service."""
        return self.health.breaker

    @property
    def queued(self) -> int:
        """Jobs waiting for a slot."""
        return len(self._waiting)

    @property
    def in_flight(self) -> int:
        """Jobs holding a slot (uploading, submitting or waiting for their task)."""
        return self._in_flight

    def place(self, job_id: str) -> int | None:
        """A waiting job's place in line (1 is next), or None once it no longer waits."""
        return self._places.get(job_id)

    def reporter_of(self, job_id: str) -> Reporter | None:
        """The reporter of a job being worked on (None once it is finished)."""
        return self._reporters.get(job_id)

    def check_available(self) -> None:
        """Refuse at once (no I/O) when no job can be taken: stopped or starting, or the upstream is down."""
        if not self._accepting:
            raise Restarting()
        if self.breaker.is_open:
            raise Unavailable()

    async def submit(self, request: JobRequest, reporter: Reporter | None = None) -> Job:
        """Admit a request: reserve its images and store it, or raise a `Refusal` having changed nothing.

        Without `reporter`, the job's reporter is built by the factory, as for a resumed job.
        """
        self.check_available()
        job_id = uuid.uuid4().hex
        # Ours from before it exists: the lease keeper must not take it up between the commit and the queue.
        self._leases.held.add(job_id)
        try:
            job = await self._admit(job_id, request)
        except BaseException:
            self._leases.held.discard(job_id)
            raise
        bind_log_context(job=job.id, guild=job.guild_id)
        self.metrics.job_accepted(job.n * job.weight)
        log.info("job %s accepted: guild %s, member %s, n=%s", job.id, job.guild_id, job.user_id, job.n)
        self._reporters.keep(job, reporter)
        async with self._changed:
            self._waiting.put(job.id, job, guild_id=job.guild_id, user_id=job.user_id)
            self._changed.notify_all()
        self._announce_places()
        return job

    async def cancel(self, job_id: str, user_id: int) -> bool:
        """Cancel a job that is still waiting, for its requester; its images are refunded. False if too late."""
        if job_id not in self._waiting:
            return False
        # Check the requester without taking the job out: putting it back would send it to the end of the line.
        stored = await self._store.jobs.get(job_id)
        if stored is None or stored.user_id != user_id:
            return False
        waiting = self._waiting.remove(job_id)  # None if it was dispatched meanwhile
        if waiting is None:
            return False
        self._places.pop(job_id, None)
        try:
            await JobRun(self._context, job_id).fail(waiting, JobFailure(FailureKind.CANCELLED, refund=True))
        except BaseException:
            # Not cancelled after all (the database failed): it keeps waiting rather than vanish.
            async with self._changed:
                self._waiting.put(job_id, waiting, guild_id=waiting.guild_id, user_id=waiting.user_id)
                self._changed.notify_all()
            self._announce_places()
            raise
        # No task will ever run for it, so nothing else lets go of its reporter.
        self._reporters.drop(job_id)
        self._leases.held.discard(job_id)
        self._announce_places()
        return True

    # -- admission -------------------------------------------------------------------------------------------

    async def _admit(self, job_id: str, request: JobRequest) -> Job:
        """Reserve the images and store the job and its lease in one transaction (or none), then its references.

        The references (up to 40 MB) are kept out of the reservation's transaction, which holds the quota lock
        that every admission of every process waits for. A crash between the two leaves a job without its
        references, which fails when it comes to upload them, refunded.
        """
        job = await self._reserve_and_create(job_id, request)
        if request.references:
            try:
                await self._store.references.save(job_id, [(ref.data, ref.mime_type) for ref in request.references])
            except Exception as exc:
                log.exception("job %s: could not keep its reference images", job_id)
                failure = JobFailure(FailureKind.INTERNAL, refund=True, detail=f"saving references: {exc}")
                await JobRun(self._context, job_id).fail(job, failure, tell=False)
                raise ReferencesNotSaved() from exc
        return job

    async def _reserve_and_create(self, job_id: str, request: JobRequest) -> Job:
        store = self._store
        async with store.db.transaction():
            reservation = await store.quotas.reserve(
                job_id, request.guild_id, request.user_id, request.role_ids, request.n, weight=request.weight
            )
            if not reservation.granted:
                raise QuotaExceeded(reservation.refused_by, request.n, request.weight)
            owed = request.owed_interaction_id
            if owed is not None and not await store.owed_answers.take(owed, self._config.owner):
                # Another process answered the request meanwhile (this one stalled past its claim): it must not
                # become a job as well.
                raise AnsweredElsewhere()
            job = await store.jobs.create(
                job_id=job_id,
                guild_id=request.guild_id,
                channel_id=request.channel_id,
                user_id=request.user_id,
                kind=request.kind,
                prompt=request.prompt,
                n=request.n,
                model=request.model,
                aspect=request.aspect,
                resolution=request.resolution,
                weight=request.weight,
                channel_postable=request.channel_postable,
                reference_count=len(request.references),
                parent_job_id=request.parent_job_id,
                application_id=request.application_id,
                interaction_token=request.interaction_token,
                token_expires_at=request.token_expires_at,
                locale=request.locale,
                member_locale=request.member_locale,
            )
            if request.reply_message_id is not None:
                job = await store.jobs.set_reply_message(job_id, request.reply_message_id)
            # With the job, or not at all: the message's claim then owes no other answer. A claim answered meanwhile
            # (this process stalled past the owed grace, and another's start-up answered it) is not a job as well.
            if request.source_message_id is not None and not await store.message_requests.attach_job(
                request.source_message_id, job_id
            ):
                raise AnsweredElsewhere()
            if self._config.lease_ttl is not None:
                await store.jobs.claim(job_id, self._config.owner, self._config.lease_ttl)
        return job

    # -- scheduling ------------------------------------------------------------------------------------------

    def _schedule(self, job: Job) -> None:
        """A job taken up (resumed or adopted): back in line, or straight to work when it has a task upstream."""
        self._reporters.keep(job)
        if job.state in (JobState.QUEUED, JobState.UPLOADING):
            self._waiting.put(job.id, job, guild_id=job.guild_id, user_id=job.user_id)
        else:
            # A task that exists upstream is in flight whatever the limit says; it takes a slot first.
            self._launch(job.id, holds_slot=job.state in (JobState.SUBMITTING, JobState.RUNNING))

    async def _dispatch(self) -> None:
        while True:
            await self.health.wait_closed()
            async with self._changed:
                await self._changed.wait_for(
                    lambda: (
                        self.breaker.is_open
                        or (len(self._waiting) > 0 and self._in_flight < self._config.max_concurrent_jobs)
                    )
                )
                if self.breaker.is_open:
                    # Opened while this waited for a slot: hold the line until the upstream answers again.
                    continue
                job = self._waiting.pop()
                self._places.pop(job.id, None)
                self._in_flight += 1
            self._launch(job.id, holds_slot=True, slot_taken=True)
            self._announce_places()

    def _launch(self, job_id: str, *, holds_slot: bool, slot_taken: bool = False) -> None:
        if holds_slot and not slot_taken:
            self._in_flight += 1
        task = asyncio.create_task(self._work(job_id, holds_slot=holds_slot), name=f"job-{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(functools.partial(self._forget_task, job_id))

    def _forget_task(self, job_id: str, task: asyncio.Task[None]) -> None:
        # Only if it is still this job's task: the job may have been taken up again since.
        if self._tasks.get(job_id) is task:
            del self._tasks[job_id]

    async def _work(self, job_id: str, *, holds_slot: bool) -> None:
        try:
            await JobRun(self._context, job_id).run(self._release_slot if holds_slot else None)
        finally:
            self._reporters.drop(job_id)
            # Finished, or left for later (a delivery given up): the lease keeper may take it up again.
            self._leases.held.discard(job_id)

    async def _release_slot(self) -> None:
        async with self._changed:
            self._in_flight -= 1
            self._changed.notify_all()

    def _announce_places(self) -> None:
        for job_id, place in self._waiting.positions().items():
            if self._places.get(job_id) != place:
                self._places[job_id] = place
                self._reporters.progress(job_id, Queued(place))

    async def _on_adopted(self) -> None:
        async with self._changed:
            self._changed.notify_all()
        self._announce_places()

    def _on_breaker_change(self, is_open: bool) -> None:
        # Waiting jobs are held while the breaker is open: tell their members, then their places once it closes.
        if is_open:
            for job_id in self._waiting.order():
                self._reporters.progress(job_id, Paused())
        else:
            self._places.clear()
            self._announce_places()

    async def _let_go_of_every_job(self) -> None:
        """Stop working on every job at once (our leases are about to run out): another process may take them."""
        await _cancel_all(list(self._tasks.values()))
        for job_id in self._waiting.order():
            self._waiting.remove(job_id)
        await _close_reporters(self._reporters.take_all())
        self._places.clear()


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def _close_reporters(reporters: list[tuple[str, Reporter]]) -> None:
    for job_id, reporter in reporters:
        await close_reporter(job_id, reporter)

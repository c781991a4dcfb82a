"""The job pipeline: from an accepted request to delivered images, one stored step at a time.

    admit (reserve quota + store job and references, one transaction)
      -> wait in the fair queue for one of MAX_CONCURRENT_JOBS slots
      -> upload references -> submit (client_business_id = job id) -> poll      [holds the slot]
      -> download results to the spool -> deliver through the reporter -> record usage

Every step is stored before and after it runs, so a crash at any moment loses no job: `start()` resumes every
unfinished job from its last stored step. A job whose submit may have been sent is looked up by its
`client_business_id` before anything is submitted again, so one job never makes two upstream tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from generation.alerts import AlertKind, AlertThrottle
from generation.breaker import CircuitBreaker
from generation.events import (
    ClosableReporter,
    Completed,
    DeliveryReceipt,
    Failed,
    FailureKind,
    GeneratedImage,
    Generating,
    Late,
    Paused,
    ProgressEvent,
    Queued,
    Reporter,
    ReporterFactory,
    Submitted,
    Uploading,
)
from generation.fair_queue import FairQueue
from generation.requests import RESTARTING_REASON, UNAVAILABLE_REASON, JobRefused, JobRequest, quota_reason
from generation.spool import Spool
from storage.jobs import Job, JobState
from storage.store import Storage
from toapis import (
    AuthenticationError,
    BadRequestError,
    ContentPolicyError,
    InsufficientBalanceError,
    SubmitUnconfirmedError,
    Task,
    TaskNotFoundError,
    TaskWaitTimeoutError,
    ToAPIsClient,
    ToAPIsError,
    UploadRejectedError,
)
from toapis.mime import EXTENSIONS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineConfig:
    """How the pipeline runs: the model, intervals and limits (all in seconds), where results are spooled."""

    model: str
    poll_interval: float
    generation_timeout: float
    max_concurrent_jobs: int
    spool_dir: Path
    allowed_guild_ids: frozenset[int] = frozenset()
    late_poll_interval: float | None = None
    """Seconds between look-ups of a late task; default six times `poll_interval`."""
    late_limit: float = 24 * 3600.0
    """Seconds after the submit when a task still running is given up (it may be billed: no refund)."""
    breaker_threshold: int = 5
    probe_interval: float = 30.0
    retry_delay: float = 5.0
    """First wait after a failure the client's own retries did not absorb; it doubles up to `max_retry_delay`."""
    max_retry_delay: float = 300.0
    delivery_attempts: int | None = None
    """Deliveries tried before the job is left for the next start; None: keep trying (backing off up to
    `max_retry_delay`) until it is delivered, refused for good, or a day old."""
    lease_ttl: float | None = None
    """Seconds a process's claim on a job lasts unless renewed; None when this process is the database's only
    user (SQLite), so that no job waits for a lease of a crashed process to run out."""
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
    """This process, as a lease holder."""
    owns_guild: Callable[[int], bool] = lambda guild_id: True
    """Whether this process serves a server (its shards): only those servers' jobs are resumed here."""
    result_max_bytes: int = 50_000_000

    @property
    def late_interval(self) -> float:
        """Seconds between look-ups of a task once it is late."""
        return self.late_poll_interval if self.late_poll_interval is not None else self.poll_interval * 6


class _JobFailure(Exception):
    def __init__(self, kind: FailureKind, reason: str, *, refund: bool, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.kind = kind
        self.reason = reason
        self.refund = refund
        self.detail = detail or reason


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
    ) -> None:
        self._config = config
        self._client = client
        self._store = store
        self._reporter_factory = reporters
        self._alerts = alerts
        self._spool = Spool(config.spool_dir, client, max_bytes=config.result_max_bytes)
        self.breaker = CircuitBreaker(
            threshold=config.breaker_threshold,
            probe=self._probe,
            probe_interval=config.probe_interval,
            listener=self._on_breaker_change,
        )
        self._waiting: FairQueue[str, Job] = FairQueue()
        self._places: dict[str, int] = {}
        self._reporters: dict[str, Reporter] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._in_flight = 0
        self._changed = asyncio.Condition()
        self._dispatcher: asyncio.Task[None] | None = None
        self._lease_keeper: asyncio.Task[None] | None = None
        self._balance_exhausted = False
        # Every job this process works on, from admission (or adoption) until its worker ends.
        self._held: set[str] = set()
        # Images a job still holds once its results are known, kept from then until its delivery.
        self._still_held: dict[str, int] = {}
        self._accepting = False

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume every unfinished job from its last stored step, then start taking new ones.

        With leases (several processes on one database), only the jobs of this process's servers that no other
        process holds are resumed; the others are adopted later if their lease runs out.
        """
        await asyncio.to_thread(self._config.spool_dir.mkdir, parents=True, exist_ok=True)
        unfinished = await self._store.jobs.list_unfinished()
        if self._config.lease_ttl is None:
            self._spool.remove_all_but({job.id for job in unfinished})
        resumed = await self._adopt(unfinished)
        if resumed:
            log.info("Resumed %d unfinished job(s)", resumed)
        await self._announce_untold_failures()
        self._accepting = True
        self._dispatcher = asyncio.create_task(self._dispatch(), name="pipeline-dispatcher")
        self._lease_keeper = asyncio.create_task(self._keep_leases(), name="pipeline-leases")
        self._announce_places()

    async def _adopt(self, jobs: list[Job]) -> int:
        """Take up unfinished jobs this process may work on and is not working on yet; returns how many."""
        adopted = 0
        for job in jobs:
            if job.id in self._held or not self._config.owns_guild(job.guild_id):
                continue
            self._held.add(job.id)
            try:
                taken = await self._take_up(job)
            except Exception:
                log.exception("job %s: could not be taken up; trying again later", job.id)
                taken = False
                if self._config.lease_ttl is not None:
                    with contextlib.suppress(Exception):
                        await self._store.jobs.release(job.id, self._config.owner)
            if taken:
                adopted += 1
            else:
                self._held.discard(job.id)
        return adopted

    async def _take_up(self, job: Job) -> bool:
        """Claim one job (with leases), then queue or launch it; False if it is not ours to work on."""
        if self._config.lease_ttl is not None:
            if not await self._store.jobs.claim(job.id, self._config.owner, self._config.lease_ttl):
                return False
            current = await self._store.jobs.get(job.id)  # another process may have moved it meanwhile
            if current is None or current.is_finished:
                return False
            job = current
        self._reporters[job.id] = self._reporter_factory(job)
        if job.state in (JobState.QUEUED, JobState.UPLOADING):
            self._waiting.put(job.id, job, guild_id=job.guild_id, user_id=job.user_id)
        else:
            # A task that exists upstream is in flight whatever the limit says; it takes a slot first.
            self._launch(job.id, holds_slot=job.state in (JobState.SUBMITTING, JobState.RUNNING))
        return True

    async def _keep_leases(self) -> None:
        """Renew this process's leases, and take up the unfinished jobs of our servers that nobody works on:
        those whose process is gone, and our own deliveries that gave up for a while (Discord was down)."""
        ttl = self._config.lease_ttl
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        while True:
            await asyncio.sleep((ttl if ttl is not None else self._config.max_retry_delay) / 3)
            try:
                if ttl is not None:
                    await self._store.jobs.renew_leases(self._config.owner, ttl)
                    renewed = loop.time()
                adopted = await self._adopt(await self._store.jobs.list_unfinished())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Renewing job leases failed; trying again")
                if ttl is not None and loop.time() - renewed > ttl * 0.8:
                    # Our leases are about to run out and another process may take our jobs: stop working on
                    # them first, so that no job is ever worked twice. They are taken up again (by us or by
                    # another process) once the database answers.
                    await self._let_go_of_every_job()
                continue
            if adopted:
                log.info("Took up %d unfinished job(s) nobody was working on", adopted)
                async with self._changed:
                    self._changed.notify_all()
                self._announce_places()

    async def _let_go_of_every_job(self) -> None:
        if not self._held:
            return
        log.error("Lost the database for longer than a lease: letting go of %d job(s)", len(self._held))
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for job_id in self._waiting.order():
            self._waiting.remove(job_id)
        for reporter in list(self._reporters.values()):
            if isinstance(reporter, ClosableReporter):
                with contextlib.suppress(Exception):
                    await reporter.aclose()
        self._reporters.clear()
        self._places.clear()
        self._held.clear()

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
        held = [*self._tasks, *self._waiting.order()]
        left = len(self._tasks) + len(self._waiting)
        # Taken first: a cancelled job lets go of its reporter without telling it anything.
        reporters = list(self._reporters.items())
        tasks = [task for task in (self._dispatcher, *self._tasks.values()) if task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._dispatcher = None
        await self.breaker.aclose()
        for job_id, reporter in reporters:
            if isinstance(reporter, ClosableReporter):
                try:
                    await reporter.aclose()
                except Exception:
                    log.exception("job %s: the reporter failed to close", job_id)
        self._reporters.clear()
        if self._config.lease_ttl is not None:
            # Let another process (the next one, in a deploy) take them at once rather than when the leases expire.
            for job_id in held:
                with contextlib.suppress(Exception):
                    await self._store.jobs.release(job_id, self._config.owner)
        log.info("Pipeline stopped; %d unfinished job(s) stay stored for the next start", left)

    # -- the public face -------------------------------------------------------------------------------------

    @property
    def accepting(self) -> bool:
        """True between `start` and `close`."""
        return self._accepting

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

    def check_available(self, guild_id: int) -> None:
        """Refuse at once (no I/O) what would be refused anyway: a server not allowed, a shut or tripped pipeline."""
        if self._config.allowed_guild_ids and guild_id not in self._config.allowed_guild_ids:
            raise JobRefused("Imagine is not enabled in this server.")
        if not self._accepting:
            raise JobRefused(RESTARTING_REASON)
        if self.breaker.is_open:
            raise JobRefused(UNAVAILABLE_REASON)

    async def submit(self, request: JobRequest, reporter: Reporter | None = None) -> Job:
        """Admit a request: reserve its images and store it, or raise `JobRefused` having changed nothing.

        Without `reporter`, the job's reporter is built by the factory, as for a resumed job.
        """
        self.check_available(request.guild_id)
        job_id = uuid.uuid4().hex
        # Ours from before it exists: the lease keeper must not take it up between the commit and the queue.
        self._held.add(job_id)
        try:
            job = await self._admit(job_id, request)
        except BaseException:
            self._held.discard(job_id)
            raise
        log.info("job %s accepted: guild %s, member %s, n=%s", job.id, job.guild_id, job.user_id, job.n)
        self._reporters[job.id] = reporter if reporter is not None else self._reporter_factory(job)
        async with self._changed:
            self._waiting.put(job.id, job, guild_id=job.guild_id, user_id=job.user_id)
            self._changed.notify_all()
        self._announce_places()
        return job

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
                await self._fail(
                    job,
                    _JobFailure(FailureKind.INTERNAL, "", refund=True, detail=f"saving references: {exc}"),
                    tell=False,
                )
                raise JobRefused("Imagine could not keep your reference images. Please try again.") from exc
        return job

    async def _reserve_and_create(self, job_id: str, request: JobRequest) -> Job:
        store = self._store
        async with store.db.transaction():
            reservation = await store.quotas.reserve(
                job_id, request.guild_id, request.user_id, request.role_ids, request.n
            )
            if not reservation.granted:
                raise JobRefused(quota_reason(reservation.refused_by, request.n), quota=reservation.refused_by)
            job = await store.jobs.create(
                job_id=job_id,
                guild_id=request.guild_id,
                channel_id=request.channel_id,
                user_id=request.user_id,
                kind=request.kind,
                prompt=request.prompt,
                size=request.size,
                n=request.n,
                model=self._config.model,
                reference_count=len(request.references),
                parent_job_id=request.parent_job_id,
                application_id=request.application_id,
                interaction_token=request.interaction_token,
                token_expires_at=request.token_expires_at,
            )
            if request.reply_message_id is not None:
                job = await store.jobs.set_reply_message(job_id, request.reply_message_id)
            if self._config.lease_ttl is not None:
                await store.jobs.claim(job_id, self._config.owner, self._config.lease_ttl)
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
            await self._fail(
                waiting,
                _JobFailure(FailureKind.CANCELLED, "Cancelled. Your images were not counted.", refund=True),
            )
        except BaseException:
            # Not cancelled after all (the database failed): it keeps waiting rather than vanish.
            async with self._changed:
                self._waiting.put(job_id, waiting, guild_id=waiting.guild_id, user_id=waiting.user_id)
                self._changed.notify_all()
            self._announce_places()
            raise
        # No task will ever run for it, so nothing else lets go of its reporter.
        self._reporters.pop(job_id, None)
        self._held.discard(job_id)
        self._announce_places()
        return True

    # -- scheduling ------------------------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        while True:
            await self.breaker.wait_closed()
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

    async def _release_slot(self) -> None:
        async with self._changed:
            self._in_flight -= 1
            self._changed.notify_all()

    def _announce_places(self) -> None:
        positions = self._waiting.positions()
        for job_id, place in positions.items():
            if self._places.get(job_id) != place:
                self._places[job_id] = place
                self._progress(job_id, Queued(place))

    def _progress(self, job_id: str, event: ProgressEvent) -> None:
        reporter = self._reporters.get(job_id)
        if reporter is None:
            return
        try:
            reporter.progress(event)
        except Exception:
            log.exception("job %s: the reporter failed to show %s", job_id, type(event).__name__)

    # -- one job ---------------------------------------------------------------------------------------------

    async def _work(self, job_id: str, *, holds_slot: bool) -> None:
        job = await self._store.jobs.get(job_id)
        if job is None or job.is_finished:
            if holds_slot:
                await self._release_slot()
            return
        try:
            try:
                if job.state in (JobState.QUEUED, JobState.UPLOADING, JobState.SUBMITTING, JobState.RUNNING):
                    job = await self._run_upstream(job)
            finally:
                if holds_slot:
                    await self._release_slot()
            images: tuple[GeneratedImage, ...] | None = None
            if job.state is JobState.DOWNLOADING:
                job, images = await self._download(job)
            if job.state is JobState.DELIVERING:
                await self._deliver(job, images)
        except _JobFailure as failure:
            await self._fail(job, failure)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._unexpected(job, exc)
        finally:
            self._reporters.pop(job_id, None)
            self._still_held.pop(job_id, None)
            # Finished, or left for later (a delivery given up): the lease keeper may take it up again.
            self._held.discard(job_id)

    async def _unexpected(self, job: Job, exc: Exception) -> None:
        """A failure nobody planned for (a database outage, a bug). A job that may have a task upstream is not
        given up: the task runs and may bill, so the job is left unfinished, and taken up again later (by the
        lease keeper) to look its task up. Only a job with nothing upstream, or a day old, ends here."""
        log.error("job %s: unexpected failure", job.id, exc_info=exc)
        try:
            current = await self._store.jobs.get(job.id) or job
        except Exception:
            log.exception("job %s: cannot read it back; left for later", job.id)
            return
        upstream = current.task_id is not None or current.submit_started_at is not None
        if upstream and self._elapsed(current) < self._config.late_limit:
            log.warning("job %s: may have a task upstream; left unfinished, to be taken up again", job.id)
            return
        refund = not upstream  # with a task upstream, the images stay counted: the API may bill it
        try:
            await self._fail(
                current,
                _JobFailure(
                    FailureKind.INTERNAL,
                    "Something went wrong on Imagine's side." + (" Your images were not counted." if refund else ""),
                    refund=refund,
                    detail=f"{type(exc).__name__}: {exc}",
                ),
            )
        except Exception:
            log.exception("job %s: could not record the failure; left for later", job.id)

    async def _run_upstream(self, job: Job) -> Job:
        """Upload, submit and poll; returns the job in DOWNLOADING. Holds a slot throughout."""
        jobs = self._store.jobs
        if job.task_id is None and job.submit_started_at is not None:
            existing = await self._find_existing(job)
            if existing is not None:
                job = await jobs.set_state(job.id, JobState.RUNNING, task_id=existing.id)
                self._progress(job.id, Submitted(existing.id))
        if job.task_id is None:
            urls = await self._upload_references(job)
            job = await jobs.set_state(job.id, JobState.SUBMITTING, submit_started_at=self._store.clock())
            task = await self._submit(job, urls)
            job = await jobs.set_state(job.id, JobState.RUNNING, task_id=task.id)
            self._progress(job.id, Submitted(task.id))
        task = await self._poll(job)
        return await self._accept_results(job, task)

    async def _upload_references(self, job: Job) -> list[str]:
        if job.reference_count == 0:
            return []
        if job.state is JobState.QUEUED:
            # A resumed job whose submit was never sent is in SUBMITTING already: it uploads again from there
            # (a job's state never moves back).
            job = await self._store.jobs.set_state(job.id, JobState.UPLOADING)
        stored = await self._store.references.load(job.id)
        if len(stored) != job.reference_count:
            raise _JobFailure(
                FailureKind.REFERENCES_GONE,
                "The reference images of this request are no longer kept. Your images were not counted.",
                refund=True,
            )
        self._progress(job.id, Uploading(len(stored)))
        urls = []
        for position, image in enumerate(stored, start=1):
            extension = EXTENSIONS.get(image.mime_type, "png")
            try:
                uploaded = await self._client.upload_image(
                    image.data, filename=f"reference-{position}.{extension}", content_type=image.mime_type
                )
            except UploadRejectedError as exc:
                raise _JobFailure(
                    FailureKind.BAD_REQUEST,
                    f"The image service refused reference image {position}: {exc.message}. "
                    "Your images were not counted.",
                    refund=True,
                    detail=str(exc),
                ) from exc
            except ToAPIsError as exc:
                raise self._before_task_failure(exc) from exc
            urls.append(uploaded.url)
        self.breaker.record_success()
        return urls

    async def _submit(self, job: Job, reference_urls: Sequence[str]) -> Task:
        attempt = 0
        while True:
            try:
                task = await self._client.submit_generation(
                    prompt=job.prompt, size=job.size, n=job.n, reference_urls=reference_urls, client_business_id=job.id
                )
            except SubmitUnconfirmedError as exc:
                # A task may exist: find out before anything else, however long the upstream takes to answer.
                self.breaker.record_failure(str(exc))
                await self._sleep_backoff(job, attempt)
                attempt += 1
                existing = await self._find_existing(job)
                if existing is not None:
                    return existing
                continue
            except ToAPIsError as exc:
                # The client guarantees that no task was created for any other error.
                raise self._before_task_failure(exc) from exc
            self.breaker.record_success()
            return task

    async def _find_existing(self, job: Job) -> Task | None:
        """The task a submit of this job created, if any; waits out upstream trouble, since it must know, for as
        long as a task would be followed (a day from the submit), then gives up with the images counted."""
        attempt = 0
        since = job.submit_started_at or job.created_at
        while True:
            try:
                task = await self._client.find_task(job.id)
            except (AuthenticationError, InsufficientBalanceError) as exc:
                self._service_problem(exc)
            except ToAPIsError as exc:
                self.breaker.record_failure(str(exc))
                if (self._store.clock() - since).total_seconds() > self._config.late_limit:
                    raise _JobFailure(
                        FailureKind.TIMED_OUT,
                        "Imagine could not find out whether the image service accepted this job. The images stay "
                        "counted, since it may have been billed.",
                        refund=False,
                        detail=f"no answer to the look-up by business id for a day: {exc}",
                    ) from exc
            else:
                self.breaker.record_success()
                return task
            await self._sleep_backoff(job, attempt)
            attempt += 1

    async def _poll(self, job: Job) -> Task:
        task_id = job.task_id
        assert task_id is not None
        started = job.submit_started_at or job.created_at
        since_submit = (self._store.clock() - started).total_seconds()

        def on_update(task: Task) -> None:
            self._progress(job.id, Generating(task.progress, self._elapsed(job)))

        if since_submit > self._config.poll_interval:
            # Resumed after a restart: look at once. The task may have ended while the bot was down, and a job past
            # its timeout (or its late limit) must not be called late (or given up) without a look.
            looked = await self._look_once(task_id, on_update)
            if looked is not None and looked.is_terminal:
                return looked
        if not job.late_notified:
            remaining = self._config.generation_timeout - since_submit
            if remaining > 0:
                try:
                    return await self._wait(job, task_id, self._config.poll_interval, remaining, on_update)
                except TaskWaitTimeoutError:
                    pass
            job = await self._store.jobs.mark_late_notified(job.id)
            self._progress(job.id, Late(self._elapsed(job)))
        since_submit = (self._store.clock() - started).total_seconds()
        try:
            return await self._wait(
                job, task_id, self._config.late_interval, self._config.late_limit - since_submit, on_update
            )
        except TaskWaitTimeoutError as exc:
            raise _JobFailure(
                FailureKind.TIMED_OUT,
                "The image service did not finish this job within a day. The images stay counted, since it may "
                "have been billed.",
                refund=False,
                detail=str(exc),
            ) from exc

    async def _wait(
        self, job: Job, task_id: str, interval: float, deadline: float, on_update: Callable[[Task], None]
    ) -> Task:
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline  # a pause below does not restart the clock
        while True:
            try:
                task = await self._client.wait_for_task(
                    task_id, interval=interval, deadline=max(end - loop.time(), 0.0), on_update=on_update
                )
            except TaskNotFoundError as exc:
                raise _task_lost(exc) from exc
            except (AuthenticationError, InsufficientBalanceError) as exc:
                # The task exists and will finish; keep following it once the key works again.
                self._service_problem(exc)
                self._progress(job.id, Paused(UNAVAILABLE_REASON))
                await self.breaker.wait_closed()
                # Look at once, deadline or not: the task may have ended during the pause.
                looked = await self._look_once(task_id, on_update)
                if looked is not None and looked.is_terminal:
                    self.breaker.record_success()
                    return looked
                continue
            except (TaskWaitTimeoutError, asyncio.CancelledError):
                raise
            except ToAPIsError as exc:
                # Any other refusal of a look-up (an undocumented 400, a garbled answer): the task exists and may
                # bill, so it is not abandoned; look again, more slowly, until the deadline.
                self.breaker.record_failure(str(exc))
                log.warning("task %s: look-up refused (%s); looking again", task_id, exc)
                await asyncio.sleep(min(max(interval, self._config.retry_delay) * 2, self._config.max_retry_delay))
                if loop.time() >= end:
                    raise TaskWaitTimeoutError(
                        f"task {task_id}: no answer before the deadline ({exc})", task_id=task_id, task=None, waited=0
                    ) from exc
                continue
            self.breaker.record_success()
            return task

    async def _look_once(self, task_id: str, on_update: Callable[[Task], None]) -> Task | None:
        """One look-up of a task; None when it cannot be looked up now (the wait that follows tries again)."""
        try:
            task = await self._client.get_task(task_id)
        except TaskNotFoundError as exc:
            raise _task_lost(exc) from exc
        except ToAPIsError as exc:
            log.warning("task %s: look-up on resume failed (%s)", task_id, exc)
            return None
        on_update(task)
        return task

    async def _accept_results(self, job: Job, task: Task) -> Job:
        store = self._store
        if task.error is not None or not task.images:
            if task.is_content_policy_failure:
                reason = (
                    "The image service declined this prompt or image under its content policy. "
                    "Try rewording it. Your images were not counted."
                )
                kind = FailureKind.CONTENT_POLICY
            else:
                reason = "The image service could not generate this image. Your images were not counted."
                kind = FailureKind.TASK_FAILED
            detail = f"{task.error.code}: {task.error.message}" if task.error else "completed without images"
            raise _JobFailure(kind, reason, refund=True, detail=detail)
        sources: list[str] = []
        for index, image in enumerate(task.images[: job.n]):
            if image.data is not None:
                sources.append(await self._spool.keep(job.id, index, image.data))
            elif image.url is not None:
                sources.append(image.url)
        async with store.db.transaction():
            held = await store.quotas.reserved_for_job(job.id)
            missing = held - len(sources)
            if missing > 0:
                await store.quotas.refund(job.id, missing)
            accepted = await store.jobs.set_state(job.id, JobState.DOWNLOADING, result_files=tuple(sources))
        self._still_held[job.id] = min(held, len(sources))
        return accepted

    async def _download(self, job: Job) -> tuple[Job, tuple[GeneratedImage, ...]]:
        images = await self._spooled_images(job)
        return await self._store.jobs.set_state(job.id, JobState.DELIVERING), images

    async def _spooled_images(self, job: Job) -> tuple[GeneratedImage, ...]:
        """The job's results as files; none at all fails the job (counted: the task completed, and billed)."""
        spooled = await self._spool.gather(job.id, job.result_files)
        if spooled.problems:
            log.warning("job %s: %s", job.id, "; ".join(spooled.problems))
        if not spooled.images:
            raise _JobFailure(
                FailureKind.DOWNLOAD,
                "The images were generated but could not be downloaded. They stay counted, since they were billed.",
                refund=False,
                detail="; ".join(spooled.problems),
            )
        return spooled.images

    async def _deliver(self, job: Job, images: tuple[GeneratedImage, ...] | None = None) -> None:
        store = self._store
        if images is None:  # resumed in DELIVERING: the spool (or the result URLs) still has them
            images = await self._spooled_images(job)
        reporter = self._reporter(job)
        held = self._still_held.pop(job.id, None)
        if held is None:  # resumed: ask the ledger
            held = await store.quotas.reserved_for_job(job.id)
        refunded = job.n - held
        event = Completed(job, images, self._elapsed(job), refunded=max(refunded, 0))
        receipt = DeliveryReceipt(delivered=False)
        attempts = self._config.delivery_attempts
        attempt = 0
        while attempts is None or attempt < attempts:
            try:
                receipt = await reporter.deliver(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("job %s: delivery raised", job.id)
                receipt = DeliveryReceipt(delivered=False, detail=f"{type(exc).__name__}: {exc}")
            if receipt.delivered or receipt.permanent:
                break
            log.warning("job %s: delivery failed (%s); attempt %d", job.id, receipt.detail, attempt + 1)
            if attempts is None and self._elapsed(job) > self._config.late_limit:
                receipt = DeliveryReceipt(False, permanent=True, detail=f"still failing after a day: {receipt.detail}")
                break
            await self._sleep_backoff(job, attempt)
            attempt += 1
        if not receipt.delivered:
            if receipt.permanent:
                raise _JobFailure(
                    FailureKind.DELIVERY,
                    "The images could not be posted here.",
                    refund=False,
                    detail=receipt.detail,
                )
            log.error("job %s: not delivered after %d attempts; left for the next start", job.id, attempt + 1)
            return
        async with store.db.transaction():
            await store.jobs.record_delivery(job.id, images_delivered=len(images), result_message_id=receipt.message_id)
            finished = await store.jobs.set_state(job.id, JobState.COMPLETED)
            await store.usage.record_job(finished)
        log.info("job %s delivered: %d image(s) in %.1f s", job.id, len(images), self._elapsed(finished))
        await self._spool.remove(job.id)

    async def _fail(self, job: Job, failure: _JobFailure, *, tell: bool = True) -> None:
        store = self._store
        refunded = 0
        async with store.db.transaction():
            if failure.refund:
                refunded = await store.quotas.refund(job.id)
            failed = await store.jobs.fail(job.id, failure.kind.value, failure.detail[:1000])
            await store.usage.record_job(failed)
        log.info("job %s failed (%s): %s; %d image(s) refunded", job.id, failure.kind.value, failure.detail, refunded)
        await self._spool.remove(job.id)
        if tell:
            await self._announce_failure(Failed(failed, failure.kind, failure.reason, refunded))
        else:
            await self._mark_announced(job.id)

    async def _announce_failure(self, event: Failed) -> None:
        """Tell the member, then note that they were told (a crash in between: told again at the next start)."""
        try:
            await self._reporter(event.job).failed(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %s: the reporter failed to show the failure", event.job.id)
            return
        await self._mark_announced(event.job.id)

    async def _mark_announced(self, job_id: str) -> None:
        try:
            await self._store.jobs.update(job_id, delivered_at=self._store.clock())
        except Exception:
            log.exception("job %s: could not note that its failure was told", job_id)

    async def _announce_untold_failures(self) -> None:
        """At start-up: tell the members of recent failures a crash kept from them (without the details, which
        were not stored; the usage log has them)."""
        since = self._store.clock() - timedelta(seconds=self._config.late_limit)
        for job in await self._store.jobs.list_unannounced_failures(since):
            if not self._config.owns_guild(job.guild_id) or job.id in self._held:
                continue
            refunded = max(job.n - await self._store.quotas.reserved_for_job(job.id), 0)
            reason = "This request could not be completed." + (" Your images were not counted." if refunded else "")
            kind = next((k for k in FailureKind if k.value == job.error_code), FailureKind.INTERNAL)
            await self._announce_failure(Failed(job, kind, reason, refunded))
            self._reporters.pop(job.id, None)

    # -- failures and upstream health ------------------------------------------------------------------------

    def _before_task_failure(self, exc: ToAPIsError) -> _JobFailure:
        """Turn an error raised before any task existed into the job's failure (always refunded)."""
        if isinstance(exc, (AuthenticationError, InsufficientBalanceError)):
            self._service_problem(exc)
            return _JobFailure(
                FailureKind.UNAVAILABLE,
                UNAVAILABLE_REASON + " Your images were not counted.",
                refund=True,
                detail=str(exc),
            )
        if isinstance(exc, ContentPolicyError):
            return _JobFailure(
                FailureKind.CONTENT_POLICY,
                "The image service declined this prompt or image under its content policy. Try rewording it. "
                "Your images were not counted.",
                refund=True,
                detail=str(exc),
            )
        if isinstance(exc, BadRequestError):
            return _JobFailure(
                FailureKind.BAD_REQUEST,
                f"The image service refused this request: {exc.user_message} Your images were not counted.",
                refund=True,
                detail=str(exc),
            )
        self.breaker.record_failure(str(exc))
        return _JobFailure(
            FailureKind.UPSTREAM,
            "The image service is having trouble. Your images were not counted; please try again in a few minutes.",
            refund=True,
            detail=str(exc),
        )

    def _service_problem(self, exc: ToAPIsError) -> None:
        kind = AlertKind.API_KEY_REJECTED if isinstance(exc, AuthenticationError) else AlertKind.BALANCE_EXHAUSTED
        if kind is AlertKind.BALANCE_EXHAUSTED:
            self._balance_exhausted = True
        if self._alerts is not None:
            self._alerts.raise_alert(kind, exc.message)
        self.breaker.trip(kind.value)

    async def _probe(self) -> bool:
        status = await self._client.check_health()
        if not status.ok:
            return False
        if self._balance_exhausted:
            # GET /models answers while the account is empty: only a top-up closes a breaker a 402 opened.
            balance = await self._client.get_balance()
            if balance.exhausted:
                return False
        return True

    def _on_breaker_change(self, is_open: bool, reason: str) -> None:
        if not is_open:
            self._balance_exhausted = False
        # Waiting jobs are held while the breaker is open: tell their members, then their places once it closes.
        if is_open:
            for job_id in self._waiting.order():
                self._progress(job_id, Paused(UNAVAILABLE_REASON))
        else:
            self._places.clear()
            self._announce_places()
        if self._alerts is None:
            return
        if is_open:
            if reason not in (AlertKind.API_KEY_REJECTED.value, AlertKind.BALANCE_EXHAUSTED.value):
                self._alerts.raise_alert(AlertKind.UPSTREAM_DOWN, reason)
        else:
            for kind in AlertKind:
                self._alerts.resolve(kind)
            self._alerts.raise_alert(AlertKind.UPSTREAM_BACK, "")

    # -- helpers ---------------------------------------------------------------------------------------------

    def _reporter(self, job: Job) -> Reporter:
        reporter = self._reporters.get(job.id)
        if reporter is None:
            reporter = self._reporters[job.id] = self._reporter_factory(job)
        return reporter

    def _elapsed(self, job: Job) -> float:
        return max(0.0, (self._store.clock() - job.created_at).total_seconds())

    async def _sleep_backoff(self, job: Job, attempt: int) -> None:
        delay = min(self._config.retry_delay * 2**attempt, self._config.max_retry_delay)
        log.debug("job %s: waiting %.2f s before trying again", job.id, delay)
        await asyncio.sleep(delay)


def _task_lost(exc: TaskNotFoundError) -> _JobFailure:
    return _JobFailure(
        FailureKind.TASK_LOST,
        "The image service lost track of this job. Your images were not counted.",
        refund=True,
        detail=str(exc),
    )

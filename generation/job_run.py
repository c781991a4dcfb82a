"""One job's run, from where it stands to its end: upload, submit, follow the task, deliver, or fail.

Every step is stored before and after it runs (docs/guarantees.md), so a run may start from any stored state:
a job whose submit may have been sent (submit_started_at without a task id) first looks its task up by its
`client_business_id`, so one job never makes two upstream tasks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from generation import failures
from generation.context import RunContext
from generation.delivery import Delivery
from generation.events import FailureKind, GeneratedImage, Submitted, Uploading, close_reporter
from generation.failures import JobFailure
from generation.logs import bind_log_context
from generation.polling import TaskFollower
from generation.rate_budget import RateBudget
from storage.errors import LeaseLostError
from storage.jobs import Job, JobState
from toapis import (
    RateLimitError,
    SubmitsPausedError,
    SubmitUnconfirmedError,
    Task,
    ToAPIsError,
    UploadRejectedError,
    WebhookNotConfiguredError,
)
from toapis.mime import extension_for

log = logging.getLogger(__name__)

ReleaseSlot = Callable[[], Awaitable[None]]


class JobRun:
    """Works one job to its end (or leaves it for later when it must not be given up)."""

    def __init__(self, context: RunContext, job_id: str) -> None:
        self._context = context
        self.job_id = job_id
        self._follower = TaskFollower(context)
        self._delivery = Delivery(context)

    async def run(self, release_slot: ReleaseSlot | None) -> None:
        """Run the job from its stored state; `release_slot` is called once the upstream part is over."""
        job = await self._context.jobs.get(self.job_id)
        if job is None or job.is_finished:
            if release_slot is not None:
                await release_slot()
            return
        bind_log_context(job=job.id, guild=job.guild_id)
        try:
            await self._run(job, release_slot)
        except LeaseLostError:
            # Another process took the job over (this one lost the database for longer than a lease, or a
            # deploy's overlap): it carries on from what is stored; nothing more is done or shown from here.
            log.warning("job %s: another process works it now; stopping here", job.id)
            reporter = self._context.reporters.get(job.id)
            if reporter is not None:
                await close_reporter(job.id, reporter)

    async def _run(self, job: Job, release_slot: ReleaseSlot | None) -> None:
        try:
            try:
                if job.state in (JobState.QUEUED, JobState.UPLOADING, JobState.SUBMITTING, JobState.RUNNING):
                    job, held = await self._run_upstream(job)
                else:
                    held = None
            finally:
                if release_slot is not None:
                    await release_slot()
            images: tuple[GeneratedImage, ...] | None = None
            if job.state is JobState.DOWNLOADING:
                job, images = await self._delivery.download(job)
            if job.state is JobState.DELIVERING:
                await self._delivery.deliver(job, images, held)
        except JobFailure as failure:
            await self.fail(job, failure)
        except (asyncio.CancelledError, LeaseLostError):
            raise
        except Exception as exc:
            await self._unexpected(job, exc)

    async def fail(self, job: Job, failure: JobFailure, *, tell: bool = True) -> None:
        """End the job failed: refund if the failure says so, record it, tidy the spool, tell the member."""
        context = self._context
        event = await failures.record(context.store, job, failure, jobs=context.jobs)
        context.metrics.job_failed(failure.kind.value, event.refunded)
        await context.spool.remove(job.id)
        if tell:
            await failures.tell(context.store, context.reporters.of(job), event)
        else:
            await failures.mark_told(context.store, job.id)

    async def _unexpected(self, job: Job, exc: Exception) -> None:
        """A failure nobody planned for (a database outage, a bug). A job that may have a task upstream is not
        given up: the task runs and may bill, so the job is left unfinished, and taken up again later (by the
        lease keeper) to look its task up. Only a job with nothing upstream, or a day old, ends here."""
        context = self._context
        log.error("job %s: unexpected failure", job.id, exc_info=exc)
        try:
            current = await context.jobs.get(job.id) or job
        except Exception:
            log.exception("job %s: cannot read it back; left for later", job.id)
            return
        upstream = current.task_id is not None or current.submit_started_at is not None
        if upstream and context.elapsed(current) < context.config.late_limit:
            log.warning("job %s: may have a task upstream; left unfinished, to be taken up again", job.id)
            return
        # With a task upstream, the images stay counted: the API may bill it.
        failure = JobFailure(FailureKind.INTERNAL, refund=not upstream, detail=f"{type(exc).__name__}: {exc}")
        try:
            await self.fail(current, failure)
        except LeaseLostError:
            raise
        except Exception:
            log.exception("job %s: could not record the failure; left for later", job.id)

    async def _run_upstream(self, job: Job) -> tuple[Job, int]:
        """Upload, submit and follow the task; the job in DOWNLOADING and the images it still holds."""
        context = self._context
        jobs = context.jobs
        if job.task_id is None and job.submit_started_at is not None:
            existing = await self._find_existing(job)
            if existing is not None:
                job = await jobs.set_state(job.id, JobState.RUNNING, task_id=existing.id)
                context.progress(job.id, Submitted(existing.id))
        submitted_here = job.task_id is None
        if submitted_here:
            urls = await self._upload_references(job)
            job = await jobs.set_state(job.id, JobState.SUBMITTING, submit_started_at=context.store.clock())
            task = await self._submit(job, urls)
            job = await jobs.set_state(job.id, JobState.RUNNING, task_id=task.id)
            context.progress(job.id, Submitted(task.id))
        task = await self._follower.follow(job, submitted_here=submitted_here)
        return await self._delivery.accept(job, task)

    async def _upload_references(self, job: Job) -> list[str]:
        if job.reference_count == 0:
            return []
        context = self._context
        if job.state is JobState.QUEUED:
            # A resumed job whose submit was never sent is in SUBMITTING already: it uploads again from there
            # (a job's state never moves back).
            job = await context.jobs.set_state(job.id, JobState.UPLOADING)
        stored = await context.store.references.load(job.id)
        if len(stored) != job.reference_count:
            raise JobFailure(FailureKind.REFERENCES_GONE, refund=True)
        context.progress(job.id, Uploading(len(stored)))
        urls = []
        busy = _Busy(context)
        for position, image in enumerate(stored, start=1):
            filename = f"reference-{position}.{extension_for(image.mime_type)}"
            while True:
                try:
                    uploaded = await context.client.upload_image(
                        image.data, filename=filename, content_type=image.mime_type
                    )
                except UploadRejectedError as exc:
                    raise failures.upload_refused(exc, position) from exc
                except RateLimitError as exc:
                    # Busy, not down: the same upload again once ToAPIs asks (a repeat only costs storage).
                    await busy.wait(exc)
                    continue
                except ToAPIsError as exc:
                    context.health.note_error(exc)
                    raise failures.before_task(exc) from exc
                break
            urls.append(uploaded.url)
        context.health.record_success()
        return urls

    async def _submit(self, job: Job, reference_urls: Sequence[str]) -> Task:
        context = self._context
        callbacks = context.callbacks
        callback_url = callbacks.url if callbacks is not None else None
        attempt = 0
        busy = _Busy(context)
        while True:
            await context.submits.take()
            try:
                task = await context.client.submit_generation(
                    prompt=job.prompt,
                    n=job.n,
                    model=job.model,
                    aspect=job.aspect,
                    resolution=job.resolution,
                    reference_urls=reference_urls,
                    client_business_id=job.id,
                    callback_url=callback_url,
                )
            except WebhookNotConfiguredError as exc:  # also CallbackURLRefusedError: another host than the console's
                if callbacks is None or callback_url is None:
                    raise failures.before_task(exc) from exc
                # A 400 created no task: the same submit without callback_url cannot bill twice.
                await callbacks.refused(exc)
                callback_url = None
                continue
            except (RateLimitError, SubmitsPausedError) as exc:
                # The account's limit, or submits paused: no task was created, and ToAPIs is not down (look-ups
                # go on). Every submit of the process waits, and this one goes again.
                await busy.wait(exc, budget=context.submits)
                continue
            except SubmitUnconfirmedError as exc:
                # A task may exist: find out before anything else, however long the upstream takes to answer.
                context.health.record_failure(str(exc))
                await context.sleep_backoff(job, attempt)
                attempt += 1
                existing = await self._find_existing(job)
                if existing is not None:
                    return existing
                continue
            except ToAPIsError as exc:
                # The client guarantees that no task was created for any other error.
                context.health.note_error(exc)
                raise failures.before_task(exc) from exc
            context.health.record_success()
            if callbacks is not None and callback_url is not None:
                context.announced.add(task.id)
                await callbacks.accepted()
            return task

    async def _find_existing(self, job: Job) -> Task | None:
        """The task a submit of this job created, if any; waits out upstream trouble, since it must know, for as
        long as a task would be followed (a day from the submit), then gives up with the images counted."""
        context = self._context
        attempt = 0
        since = job.submit_started_at or job.created_at
        while True:
            try:
                await context.lookups.take()  # the same account-wide look-up budget as the follower's
                task = await context.client.find_task(job.id)
            except ToAPIsError as exc:
                if isinstance(exc, RateLimitError):
                    context.lookups.rate_limited(exc.retry_after)
                if failures.is_service_problem(exc):
                    context.health.service_problem(exc)
                else:
                    if not isinstance(exc, RateLimitError):  # busy is not down
                        context.health.record_failure(str(exc))
                    if (context.store.clock() - since).total_seconds() > context.config.late_limit:
                        raise failures.timed_out(f"no answer to the look-up by business id for a day: {exc}") from exc
            else:
                context.health.record_success()
                return task
            await context.sleep_backoff(job, attempt)
            attempt += 1


class _Busy:
    """Waits out a step that ToAPIs refused for the account's rate (429) or while submits are paused (503
    `rate_limit_unavailable`): as long as ToAPIs asks, up to `GENERATION_TIMEOUT` after the first refusal, after
    which the job fails (refunded: no task exists). Never counted against the upstream's health: ToAPIs is busy,
    not down."""

    def __init__(self, context: RunContext) -> None:
        self._context = context
        self._since: float | None = None
        self._attempt = 0

    async def wait(self, exc: RateLimitError | SubmitsPausedError, *, budget: RateBudget | None = None) -> None:
        context = self._context
        loop = asyncio.get_running_loop()
        if self._since is None:
            self._since = loop.time()
        elif loop.time() - self._since > context.config.generation_timeout:
            raise failures.before_task(exc) from exc
        asked = exc.retry_after if isinstance(exc, RateLimitError) else None
        delay = asked if asked is not None and asked > 0 else context.config.backoff(self._attempt)
        self._attempt += 1
        log.info("%s; trying again in %.2f s", exc, delay)
        if budget is not None:
            budget.rate_limited(delay)  # the limit is the account's: every submit of the process holds
        else:
            await asyncio.sleep(delay)

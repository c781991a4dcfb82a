"""From a completed task to the member: results kept, fewer images than asked refunded, posted, recorded.

Every step is stored before the next: the result sources (DOWNLOADING), the spooled files (DELIVERING), then the
delivery and the usage log with COMPLETED in one transaction, so a crash anywhere resumes without posting twice
(a reporter shows a repeated delivery once).
"""

from __future__ import annotations

import asyncio
import logging

from generation import failures
from generation.context import RunContext
from generation.events import Completed, DeliveryReceipt, FailureKind, GeneratedImage
from generation.failures import JobFailure
from storage.jobs import Job, JobState
from storage.kept_results import KeptResult
from toapis import Task

log = logging.getLogger(__name__)


class Delivery:
    """Accepts a finished task's results, spools them and delivers them through the job's reporter."""

    def __init__(self, context: RunContext) -> None:
        self._context = context

    async def accept(self, job: Job, task: Task) -> tuple[Job, int]:
        """Keep the results' sources and refund what the API did not return; the job in DOWNLOADING and the
        weighted images it still holds. A failed task raises its `JobFailure`."""
        submitted = job.submit_started_at or job.created_at
        self._context.metrics.task_ended(job, (self._context.store.clock() - submitted).total_seconds())
        failure = failures.of_task(task)
        if failure is not None:
            raise failure
        context = self._context
        store = context.store
        sources: list[str] = []
        for index, image in enumerate(task.images[: job.n]):
            if image.data is not None:
                sources.append(await context.spool.keep(job.id, index, image.data))
            elif image.url is not None:
                sources.append(image.url)
        got = len(sources) * job.weight  # what the images it got count as
        async with store.db.transaction():
            held = await store.quotas.reserved_for_job(job.id)
            if held > got:
                await store.quotas.refund(job.id, held - got)
            accepted = await context.jobs.set_state(job.id, JobState.DOWNLOADING, result_files=tuple(sources))
        context.metrics.images_refunded(max(held - got, 0))
        return accepted, min(held, got)

    async def download(self, job: Job) -> tuple[Job, tuple[GeneratedImage, ...]]:
        """The results in the spool; the job in DELIVERING."""
        images = await self.spooled(job)
        return await self._context.jobs.set_state(job.id, JobState.DELIVERING), images

    async def _keep(self, job: Job, images: tuple[GeneratedImage, ...]) -> None:
        """Keep the results of a job nobody could receive (storage/kept_results.py)."""
        read = await asyncio.to_thread(lambda: [image.read_bytes() for image in images])
        kept = [KeptResult(data, image.mime_type) for data, image in zip(read, images, strict=True)]
        await self._context.store.kept_results.keep(job.id, kept)
        log.warning("job %s: nobody could receive the result; kept, and the images given back", job.id)

    async def spooled(self, job: Job) -> tuple[GeneratedImage, ...]:
        """The job's results as files; none at all fails the job (counted: the task completed, and billed)."""
        spooled = await self._context.spool.gather(job.id, job.result_files)
        if spooled.problems:
            log.warning("job %s: %s", job.id, "; ".join(spooled.problems))
        if not spooled.images:
            raise JobFailure(FailureKind.DOWNLOAD, refund=False, detail="; ".join(spooled.problems))
        return spooled.images

    async def deliver(self, job: Job, images: tuple[GeneratedImage, ...] | None, held: int | None) -> None:
        """Post the results, trying again (backing off) until they are delivered, refused for good, or a day old.

        `images` None: resumed in DELIVERING, the spool (or the result URLs) still has them. `held` None: ask the
        ledger how many (weighted) images the job still holds.
        """
        context = self._context
        store, config = context.store, context.config
        if images is None:
            images = await self.spooled(job)
        reporter = context.reporters.of(job)
        if held is None:
            held = await store.quotas.reserved_for_job(job.id)
        refunded = max(job.n * job.weight - held, 0) // job.weight
        event = Completed(job, images, context.elapsed(job), refunded=refunded)
        receipt = DeliveryReceipt(delivered=False)
        attempts = config.delivery_attempts
        attempt = 0
        while attempts is None or attempt < attempts:
            # Posting cannot be taken back: only while this process still holds the job.
            await context.jobs.confirm_held(job.id)
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
            if attempts is None and context.elapsed(job) > config.late_limit:
                receipt = DeliveryReceipt(False, permanent=True, detail=f"still failing after a day: {receipt.detail}")
                break
            await context.sleep_backoff(job, attempt)
            attempt += 1
        if not receipt.delivered:
            if receipt.unreachable:
                # Neither the channel nor the member's DMs take it: they received nothing, so nothing is counted,
                # and the result is kept for them to find later.
                await self._keep(job, images)
                raise JobFailure(FailureKind.UNDELIVERABLE, refund=True, detail=receipt.detail)
            if receipt.permanent:
                raise JobFailure(FailureKind.DELIVERY, refund=False, detail=receipt.detail)
            log.error("job %s: not delivered after %d attempts; left for the next start", job.id, attempt + 1)
            return
        async with store.db.transaction():
            jobs = context.jobs
            await jobs.record_delivery(
                job.id, images_delivered=len(images), result_message_id=receipt.message_id, by_dm=receipt.direct
            )
            finished = await jobs.set_state(job.id, JobState.COMPLETED)
            await store.usage.record_job(finished)
        context.metrics.job_completed()
        log.info("job %s delivered: %d image(s) in %.1f s", job.id, len(images), context.elapsed(finished))
        await context.spool.remove(job.id)

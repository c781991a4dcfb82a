"""Which failure a job ends with, whether its images are given back, and how that is recorded and told.

The rule for refunds (docs/guarantees.md): images go back when no task was created (refused, cancelled, failed
before the submit) or when the task failed; a task that was created and did not fail stays counted, since the
API may bill it. Each mapping below applies that rule to one kind of upstream answer.
"""

from __future__ import annotations

import asyncio
import logging

from generation.events import Failed, FailureKind, Reporter
from storage.errors import LeaseLostError, StorageError
from storage.jobs import Job, JobRepository
from storage.store import Storage
from toapis import (
    AuthenticationError,
    BadRequestError,
    ContentPolicyError,
    InsufficientBalanceError,
    RateLimitError,
    SubmitsPausedError,
    Task,
    TaskNotFoundError,
    ToAPIsError,
    UploadRejectedError,
)

log = logging.getLogger(__name__)


class JobFailure(Exception):
    """The job ends failed with `kind`; `refund` gives its images back; `detail` is for the log and the usage log."""

    def __init__(
        self,
        kind: FailureKind,
        *,
        refund: bool,
        detail: str = "",
        reference_position: int | None = None,
        policy_category: str | None = None,
    ) -> None:
        super().__init__(detail or kind.value)
        self.kind = kind
        self.refund = refund
        self.detail = detail or kind.value
        self.reference_position = reference_position
        self.policy_category = policy_category


def is_service_problem(exc: ToAPIsError) -> bool:
    """A failure of the operator's account (key rejected, balance empty): no job can succeed until it is fixed."""
    return isinstance(exc, AuthenticationError | InsufficientBalanceError)


def counts_against_upstream(exc: ToAPIsError) -> bool:
    """Whether an error raised before any task existed says the upstream is unwell (for the circuit breaker),
    rather than something about this request or the account. The account's rate limit (429) and paused submits
    (503 `rate_limit_unavailable`) say it is busy, not down."""
    return not (
        is_service_problem(exc)
        or isinstance(exc, ContentPolicyError | BadRequestError | RateLimitError | SubmitsPausedError)
    )


def before_task(exc: ToAPIsError) -> JobFailure:
    """An error raised before any task existed (an upload or a refused submit): always refunded."""
    if is_service_problem(exc):
        return JobFailure(FailureKind.UNAVAILABLE, refund=True, detail=str(exc))
    if isinstance(exc, ContentPolicyError):
        return JobFailure(FailureKind.CONTENT_POLICY, refund=True, detail=str(exc), policy_category=exc.policy_category)
    if isinstance(exc, BadRequestError):
        return JobFailure(FailureKind.BAD_REQUEST, refund=True, detail=str(exc))
    return JobFailure(FailureKind.UPSTREAM, refund=True, detail=str(exc))


def upload_refused(exc: UploadRejectedError, position: int) -> JobFailure:
    """The service refused reference image `position` (1-based): no task was created."""
    return JobFailure(FailureKind.BAD_REQUEST, refund=True, detail=str(exc), reference_position=position)


def of_task(task: Task) -> JobFailure | None:
    """The failure a finished task ended with (refunded: a failed task is not billed), or None if it has images."""
    if task.error is None and task.images:
        return None
    detail = f"{task.error.code}: {task.error.message}" if task.error else "completed without images"
    if task.is_content_policy_failure:
        assert task.error is not None
        return JobFailure(
            FailureKind.CONTENT_POLICY, refund=True, detail=detail, policy_category=task.error.policy_category
        )
    return JobFailure(FailureKind.TASK_FAILED, refund=True, detail=detail)


def task_lost(exc: TaskNotFoundError) -> JobFailure:
    """The service no longer knows the job's task: it will not bill it."""
    return JobFailure(FailureKind.TASK_LOST, refund=True, detail=str(exc))


def timed_out(detail: str) -> JobFailure:
    """A task (or a submit nobody could confirm) followed for a day without an end: it may be billed."""
    return JobFailure(FailureKind.TIMED_OUT, refund=False, detail=detail)


async def record(store: Storage, job: Job, failure: JobFailure, *, jobs: JobRepository | None = None) -> Failed:
    """Refund (if the failure says so), mark the job failed and log its usage, in one transaction; the event
    that tells the member. `jobs`: the repository to write the job through (a lease holder's)."""
    refunded = 0
    async with store.db.transaction():
        if failure.refund:
            refunded = await store.quotas.refund(job.id)
        failed = await (jobs or store.jobs).fail(job.id, failure.kind.value, failure.detail[:1000])
        await store.usage.record_job(failed)
    log.info("job %s failed (%s): %s; %d image(s) refunded", job.id, failure.kind.value, failure.detail, refunded)
    return Failed(
        failed,
        failure.kind,
        refunded,
        reference_position=failure.reference_position,
        policy_category=failure.policy_category,
    )


async def tell(store: Storage, reporter: Reporter, event: Failed, *, jobs: JobRepository | None = None) -> None:
    """Tell the member, then note that they were told (a crash in between: told again at the next start).

    Only the holder of the job's lease tells (with leases, several processes on one database): `jobs`, by default
    the process that stored the failure (the job's lease owner as stored). `LeaseLostError`, having told nothing,
    when another process has taken the job over since: during a deploy's overlap it tells the failure instead.
    """
    held = jobs or (store.jobs if event.job.lease_owner is None else store.jobs.held_by(event.job.lease_owner))
    try:
        await held.confirm_held(event.job.id)
    except LeaseLostError:
        raise
    except StorageError as exc:
        # Whether it is still ours is unknown: told later, by whoever holds it then (generation/untold_failures.py).
        log.warning("job %s: could not check its lease before telling its failure (%s); told later", event.job.id, exc)
        return
    try:
        await reporter.failed(event)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("job %s: the reporter failed to show the failure", event.job.id)
        return
    await mark_told(store, event.job.id, jobs=held)


async def mark_told(store: Storage, job_id: str, *, jobs: JobRepository | None = None) -> None:
    """Note that the member knows of the failure (or never needs to), so no restart tells it again; through
    `jobs` (a lease holder's, whose write checks the lease is still ours), else the store's."""
    try:
        await (jobs or store.jobs).update(job_id, delivered_at=store.clock())
    except LeaseLostError:
        log.warning("job %s: taken over by another process before its failure was noted as told", job_id)
    except Exception:
        log.exception("job %s: could not note that its failure was told", job_id)

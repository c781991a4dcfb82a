"""What the pipeline tells the outside about a job, and the reporter interface it tells it through.

The pipeline knows nothing of Discord. For each job it holds a `Reporter` (the cog builds one that edits the
member's reply) and calls it as the job moves. A resumed job gets a reporter rebuilt from what is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

from storage.jobs import Job

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Queued:
    """Waiting for a free slot; `place` 1 is next."""

    place: int


@dataclass(frozen=True)
class Uploading:
    """The reference images are being uploaded."""

    references: int


@dataclass(frozen=True)
class Submitted:
    """The task exists upstream: the job can no longer be cancelled."""

    task_id: str


@dataclass(frozen=True)
class Generating:
    """The task is running; `percent` as the API reports it (it may sit at 0, then jump). `remaining`: the seconds
    it likely has left, from recent tasks of its model and resolution; None when too few are known or the task
    is past their typical duration."""

    percent: int
    elapsed: float
    remaining: float | None = None


@dataclass(frozen=True)
class Late:
    """The task is still running after `GENERATION_TIMEOUT`; the member will be mentioned when it is ready."""

    elapsed: float


@dataclass(frozen=True)
class Paused:
    """The upstream is unavailable; the job waits until it answers again."""


ProgressEvent = Queued | Uploading | Submitted | Generating | Late | Paused


@dataclass(frozen=True)
class GeneratedImage:
    """A result, spooled to a file so that many finished jobs do not hold their images in memory."""

    path: Path
    mime_type: str
    size: int
    source: str = ""
    """Where it came from: the image service's URL (valid a day), or a spool path for a result sent as bytes."""

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()


@dataclass(frozen=True)
class Completed:
    """The images are ready (spooled); the job carries what the embed and buttons need."""

    job: Job
    images: tuple[GeneratedImage, ...]
    elapsed: float
    refunded: int
    """Images given back because the API returned fewer than asked."""


class FailureKind(StrEnum):
    """Why a job failed; stored as the job's error code and written to the usage log."""

    CONTENT_POLICY = "content_policy"
    BAD_REQUEST = "bad_request"
    UNAVAILABLE = "unavailable"
    UPSTREAM = "upstream"
    TASK_FAILED = "task_failed"
    TASK_LOST = "task_lost"
    TIMED_OUT = "timed_out"
    DOWNLOAD = "download"
    DELIVERY = "delivery"
    UNDELIVERABLE = "undeliverable"
    CANCELLED = "cancelled"
    REFERENCES_GONE = "references_gone"
    INTERNAL = "internal"


@dataclass(frozen=True)
class Failed:
    """The job failed; `refunded` images were given back. What the member reads is made from this by the
    reporter (the cogs' texts), never written here."""

    job: Job
    kind: FailureKind
    refunded: int
    reference_position: int | None = None
    """The reference image the service refused (1-based), for an upload refusal."""
    policy_category: str | None = None
    """For `CONTENT_POLICY`: the category the service named ("violence"), never its own words."""
    details_lost: bool = False
    """Told after a restart: the failure's details were not kept, only its kind and refund."""


@dataclass(frozen=True)
class DeliveryReceipt:
    """What a reporter says after trying to deliver the images.

    `permanent` marks a failure no retry can fix (the channel is gone, the bot was removed): the job then ends
    as failed instead of being tried again.
    """

    delivered: bool
    message_id: int | None = None
    permanent: bool = False
    detail: str = ""
    unreachable: bool = False
    """Nobody can receive it: the channel and the member's direct messages both refused it (permanent too)."""
    direct: bool = False
    """Delivered in the member's direct messages rather than where they asked."""


class Reporter(Protocol):
    """What the pipeline tells about one job (the cog's implementation edits the member's reply)."""

    def progress(self, event: ProgressEvent) -> None:
        """Show a change of the job. Called inline by the pipeline: it must not block (schedule I/O instead)."""

    async def deliver(self, event: Completed) -> DeliveryReceipt:
        """Post the images. Doing it twice must show them once (the pipeline retries after a crash)."""

    async def failed(self, event: Failed) -> None:
        """Tell the member the job failed."""


@runtime_checkable
class ClosableReporter(Protocol):
    """A reporter with work of its own in the background (a pending progress edit, say) may also have this."""

    async def aclose(self) -> None:
        """The pipeline is stopping with this job unfinished: stop that work; nothing more will be reported."""


ReporterFactory = Callable[[Job], Reporter]
"""Builds the reporter of a job resumed after a restart, from what is stored about it."""


class ReporterBook:
    """The reporter of every job being worked on, built by the factory for a job nobody handed one for."""

    def __init__(self, factory: ReporterFactory) -> None:
        self._factory = factory
        self._reporters: dict[str, Reporter] = {}

    def get(self, job_id: str) -> Reporter | None:
        """The job's reporter, if it is being worked on."""
        return self._reporters.get(job_id)

    def of(self, job: Job) -> Reporter:
        """The job's reporter, built from what is stored about it if it has none yet (a resumed job)."""
        reporter = self._reporters.get(job.id)
        if reporter is None:
            reporter = self._reporters[job.id] = self._factory(job)
        return reporter

    def keep(self, job: Job, reporter: Reporter | None = None) -> None:
        """Hold `reporter` (or a new one from the factory) for the job from now on."""
        self._reporters[job.id] = reporter if reporter is not None else self._factory(job)

    def drop(self, job_id: str) -> None:
        """The job is no longer worked on here: let its reporter go."""
        self._reporters.pop(job_id, None)

    def progress(self, job_id: str, event: ProgressEvent) -> None:
        """Tell the job's reporter (if any) of a change; a reporter that raises is logged, never the job's end."""
        reporter = self._reporters.get(job_id)
        if reporter is None:
            return
        try:
            reporter.progress(event)
        except Exception:
            log.exception("job %s: the reporter failed to show %s", job_id, type(event).__name__)

    def take_all(self) -> list[tuple[str, Reporter]]:
        """Every reporter held, let go of at once (the pipeline is stopping or letting go of its jobs)."""
        taken = list(self._reporters.items())
        self._reporters.clear()
        return taken


async def close_reporter(job_id: str, reporter: Reporter) -> None:
    """Stop a reporter's background work (if it has any); nothing more will reach it."""
    if isinstance(reporter, ClosableReporter):
        try:
            await reporter.aclose()
        except Exception:
            log.exception("job %s: the reporter failed to close", job_id)

"""What every step of every job works with: built once by the pipeline, shared by its job runs."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from generation.callbacks import WebhookCallbacks
from generation.config import PipelineConfig
from generation.events import ProgressEvent, ReporterBook
from generation.metrics import Metrics
from generation.spool import Spool
from generation.upstream import UpstreamHealth
from generation.wakeups import TaskWakeups
from storage.jobs import Job, JobRepository
from storage.store import Storage
from toapis import ToAPIsClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunContext:
    """The pipeline's configuration, its upstream client and health, the store, the spool, the reporters, the
    metrics, the wake-ups of tasks that have ended and, with webhooks on, the `callback_url` submits send.

    `jobs` is where job runs write their jobs: with leases, the store's job repository as this process's lease
    holder, whose every write checks that the lease is still ours (`JobRepository.held_by`).
    """

    config: PipelineConfig
    client: ToAPIsClient
    store: Storage
    spool: Spool
    health: UpstreamHealth
    reporters: ReporterBook
    jobs: JobRepository
    metrics: Metrics = field(default_factory=Metrics)
    wakeups: TaskWakeups = field(default_factory=TaskWakeups)
    callbacks: WebhookCallbacks | None = None

    @property
    def webhooks_announce_ends(self) -> bool:
        """Whether a webhook announces the end of a task submitted now (look-ups are then a slow safety net)."""
        return (
            self.config.webhook_safety_interval is not None
            and self.callbacks is not None
            and self.callbacks.announces_ends
        )

    def elapsed(self, job: Job) -> float:
        """Seconds since the job was accepted."""
        return max(0.0, (self.store.clock() - job.created_at).total_seconds())

    def progress(self, job_id: str, event: ProgressEvent) -> None:
        self.reporters.progress(job_id, event)

    async def sleep_backoff(self, job: Job, attempt: int) -> None:
        """Wait before trying a failed step of `job` again (the `attempt`-th time)."""
        delay = self.config.backoff(attempt)
        log.debug("job %s: waiting %.2f s before trying again", job.id, delay)
        await asyncio.sleep(delay)

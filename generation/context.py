"""What every step of every job works with: built once by the pipeline, shared by its job runs."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace

from generation.callbacks import WebhookCallbacks
from generation.config import PipelineConfig
from generation.durations import TaskDurations
from generation.events import ProgressEvent, ReporterBook
from generation.lookup_schedule import ScheduleConfig
from generation.metrics import Metrics
from generation.rate_budget import RateBudget
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
    metrics, the wake-ups of tasks that have ended, the durations of recent tasks, the look-up and submit budgets
    and, with webhooks on, the `callback_url` submits send.

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
    durations: TaskDurations = field(default_factory=TaskDurations)
    lookups: RateBudget = field(default_factory=lambda: RateBudget(None))
    callbacks: WebhookCallbacks | None = None
    announced: set[str] = field(default_factory=set)
    """Tasks this process submitted with a `callback_url` ToAPIs accepted: only their ends are announced by a
    webhook. A task submitted without one (before webhooks were on, during a refusal, or by another process or
    run) is looked up on its usual schedule."""
    submits: RateBudget = field(default_factory=lambda: RateBudget(None))
    """The account's submits a minute, this process's share: every submit takes from it."""

    @classmethod
    def build(
        cls,
        config: PipelineConfig,
        client: ToAPIsClient,
        store: Storage,
        health: UpstreamHealth,
        reporters: ReporterBook,
        metrics: Metrics,
        callbacks: WebhookCallbacks | None = None,
    ) -> RunContext:
        """The context of a pipeline: its spool, its job repository (as lease holder, with leases), new wake-ups,
        the durations recorded in the store, the look-up and submit budgets of the configuration, and the webhooks'
        `callback_url` if they are on."""
        spool = Spool(config.spool_dir, client, max_bytes=config.result_max_bytes)
        jobs = store.jobs if config.lease_ttl is None else store.jobs.held_by(config.owner)
        durations = TaskDurations(store.durations)
        budget = RateBudget(config.lookups_per_minute)
        submits = RateBudget(config.submits_per_minute)
        return cls(
            config,
            client,
            store,
            spool,
            health,
            reporters,
            jobs,
            metrics,
            TaskWakeups(),
            durations,
            budget,
            callbacks,
            submits=submits,
        )

    @property
    def webhooks_announce_ends(self) -> bool:
        """Whether a webhook would announce the end of a task submitted now (its submit sends `callback_url`)."""
        return (
            self.config.webhook_safety_interval is not None
            and self.callbacks is not None
            and self.callbacks.announces_ends
        )

    def end_announced(self, task_id: str) -> bool:
        """Whether a webhook will announce the end of this task: its submit's `callback_url` was accepted, and
        nothing has said since that webhooks stopped reaching us."""
        return task_id in self.announced and self.webhooks_announce_ends

    def schedule(self, task_id: str) -> ScheduleConfig:
        """How look-ups of a task are timed until it is late: for a task whose end a webhook announces, only at
        the safety interval (generation/lookup_schedule.py)."""
        schedule = self.config.schedule
        if self.end_announced(task_id):
            return replace(schedule, safety_interval=self.config.webhook_safety_interval)
        return schedule

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

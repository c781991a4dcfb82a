"""How the pipeline runs: the model, its intervals and limits, where results wait, and which jobs are its own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from generation.lookup_schedule import ScheduleConfig
from generation.process_identity import new_owner


@dataclass(frozen=True)
class PipelineConfig:
    """How the pipeline runs: the model, intervals and limits (all in seconds), where results are spooled."""

    model: str
    poll_interval: float
    generation_timeout: float
    max_concurrent_jobs: int
    spool_dir: Path
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
    owner: str = field(default_factory=new_owner)
    """This process, as a lease holder."""
    owns_guild: Callable[[int], bool] = lambda guild_id: True
    """Whether this process serves a server (its shards): only those servers' jobs are resumed here."""
    result_max_bytes: int = 50_000_000
    lookups_per_minute: int | None = None
    """Task look-ups a minute this process may make (its share of the account's); None: no limit."""
    submits_per_minute: int | None = None
    """Submits a minute this process may make (its share of the account's); None: no limit."""
    min_lookup_interval: float | None = None
    """The least seconds between two look-ups of one task; default 1 s, or `poll_interval` if that is shorter."""
    webhook_safety_interval: float | None = None
    """None: webhooks off; otherwise the seconds between safety look-ups of a task whose end a webhook will
    announce (instead of look-ups timed to its expected end, while ToAPIs accepts `callback_url`)."""

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before try number `attempt` + 1 after a failure: doubling, capped."""
        return float(min(self.retry_delay * 2.0**attempt, self.max_retry_delay))

    @property
    def late_interval(self) -> float:
        """Seconds between look-ups of a task once it is late."""
        return self.late_poll_interval if self.late_poll_interval is not None else self.poll_interval * 6

    @property
    def schedule(self) -> ScheduleConfig:
        """How look-ups are timed to a task until it is late, webhooks aside (`RunContext.schedule` adds them)."""
        least = self.min_lookup_interval if self.min_lookup_interval is not None else min(1.0, self.poll_interval)
        # The longest wait scales with the poll interval, as the other waits without a variable do (30 s).
        return ScheduleConfig(
            base_interval=self.poll_interval,
            min_interval=least,
            max_interval=self.poll_interval * 6,
        )

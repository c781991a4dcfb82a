"""Which process works which job, and the jobs nobody works on any more.

With several processes on one database (PostgreSQL), a job is worked only by the process holding its lease
(`JobRepository.claim`), which keeps renewing it; another process takes a job up once its lease has run out.
With SQLite there is no lease (one process is the database's only user) but the same keeper takes up jobs
nobody works on: deliveries that gave up for a while (Discord was down).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from generation.config import PipelineConfig
from storage.jobs import Job
from storage.store import Storage

log = logging.getLogger(__name__)

Schedule = Callable[[Job], None]
"""Queue or launch a job this process has just taken up."""


class LeaseKeeper:
    """The jobs this process holds (`held`), taking more up, renewing their leases, and letting them go."""

    def __init__(
        self,
        store: Storage,
        config: PipelineConfig,
        *,
        schedule: Schedule,
        let_go_of_every_job: Callable[[], Awaitable[None]],
        on_adopted: Callable[[], Awaitable[None]],
    ) -> None:
        self._store = store
        self._config = config
        self._schedule = schedule
        self._let_go_of_every_job = let_go_of_every_job
        self._on_adopted = on_adopted
        self.held: set[str] = set()
        """Every job this process works on, from admission (or adoption) until its run ends."""

    @property
    def leased(self) -> bool:
        """Whether jobs are leased (several processes may share the database)."""
        return self._config.lease_ttl is not None

    async def adopt(self, jobs: list[Job]) -> int:
        """Take up unfinished jobs this process may work on and is not working on yet; returns how many."""
        adopted = 0
        for job in jobs:
            if job.id in self.held or not self._config.owns_guild(job.guild_id):
                continue
            self.held.add(job.id)
            try:
                taken = await self._take_up(job)
            except Exception:
                log.exception("job %s: could not be taken up; trying again later", job.id)
                taken = False
                if self.leased:
                    with contextlib.suppress(Exception):
                        await self._store.jobs.release(job.id, self._config.owner)
            if taken:
                adopted += 1
            else:
                self.held.discard(job.id)
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
        self._schedule(job)
        return True

    async def keep(self) -> None:
        """Until cancelled: renew this process's leases, and take up the unfinished jobs of our servers that
        nobody works on: those whose process is gone, and our own deliveries that gave up for a while."""
        ttl = self._config.lease_ttl
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        while True:
            await asyncio.sleep((ttl if ttl is not None else self._config.max_retry_delay) / 3)
            try:
                if ttl is not None:
                    await self._store.jobs.renew_leases(self._config.owner, ttl)
                    renewed = loop.time()
                adopted = await self.adopt(await self._store.jobs.list_unfinished())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Renewing job leases failed; trying again")
                if ttl is not None and loop.time() - renewed > ttl * 0.8 and self.held:
                    # Our leases are about to run out and another process may take our jobs: stop working on
                    # them first, so that no job is ever worked twice. They are taken up again (by us or by
                    # another process) once the database answers.
                    log.error("Lost the database for longer than a lease: letting go of %d job(s)", len(self.held))
                    await self._let_go_of_every_job()
                    self.held.clear()
                continue
            if adopted:
                log.info("Took up %d unfinished job(s) nobody was working on", adopted)
                await self._on_adopted()

    async def release(self, job_ids: list[str]) -> None:
        """Let another process (the next one, in a deploy) take these jobs at once rather than when the leases
        expire."""
        if not self.leased:
            return
        for job_id in job_ids:
            with contextlib.suppress(Exception):
                await self._store.jobs.release(job_id, self._config.owner)

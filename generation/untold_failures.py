"""Failures whose member was never told (a crash came between storing the failure and telling it, or the database
failed when it was to be told): told at start-up and looked for again every while, without the details, which
were not stored (the usage log has them).

With leases (several processes on one database), a failure is told only by the process that holds its job's
lease, and noted as told through that lease (`failures.tell`): during a deploy's overlap, the old process,
which may be telling a failure it has just stored, and the new one, starting up, never both tell it. A failure
whose lease another process holds is left to it, and looked at again once that lease has run out, since its
process may have died before telling it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from generation import failures
from generation.context import RunContext
from generation.events import Failed, FailureKind
from storage.errors import LeaseLostError

log = logging.getLogger(__name__)

# A lease's length times this: long enough for the lease of a failure left to another process to have run out,
# whatever the small difference between the two processes' clocks.
_LOOK_AGAIN_AFTER: float = 1.5
# Without leases (one process): how often to look for a failure whose telling the database kept from happening.
_UNSHARED_LOOK_EVERY: float = 60.0


class UntoldFailures:
    """Tells the untold failures of this process's servers, at start-up and (with leases) once more later."""

    def __init__(self, context: RunContext, *, held: set[str]) -> None:
        self._context = context
        self._held = held
        """The jobs this process works on: their runs tell their own failures."""
        self._again: asyncio.Task[None] | None = None

    async def tell(self) -> None:
        """Tell the recent untold failures now, then keep looking for them (a lease's length and a half apart, or a
        minute without leases)."""
        await self._tell_once()
        if self._again is None:
            ttl = self._context.config.lease_ttl
            interval = _UNSHARED_LOOK_EVERY if ttl is None else ttl * _LOOK_AGAIN_AFTER
            self._again = asyncio.create_task(self._keep_telling(interval), name="untold-failures")

    async def close(self) -> None:
        """Stop looking."""
        if self._again is not None:
            self._again.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._again
            self._again = None

    async def _keep_telling(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self._tell_once()
            except Exception:
                log.exception("Could not look for failures whose member was not told")

    async def _tell_once(self) -> int:
        """Tell every recent untold failure this process may tell; how many were left to another process."""
        context = self._context
        store, config = context.store, context.config
        since = store.clock() - timedelta(seconds=config.late_limit)
        left = 0
        for job in await store.jobs.list_unannounced_failures(since):
            if not config.owns_guild(job.guild_id) or job.id in self._held:
                continue
            if config.lease_ttl is not None and not await store.jobs.claim(job.id, config.owner, config.lease_ttl):
                left += 1  # its process may be telling it right now
                continue
            # Whether the failure gave the images back: then the job holds none. A job that still holds some (a
            # failure that is not refunded, after fewer images than asked were given back) says nothing was.
            held = await store.quotas.reserved_for_job(job.id)
            refunded = 0 if held else job.n * job.weight  # weighted, as `failures.record` counts it
            kind = next((k for k in FailureKind if k.value == job.error_code), FailureKind.INTERNAL)
            event = Failed(job, kind, refunded, details_lost=True)
            try:
                await failures.tell(store, context.reporters.of(job), event, jobs=context.jobs)
            except LeaseLostError:
                log.info("job %s: another process tells its failure", job.id)
            finally:
                context.reporters.drop(job.id)
        return left

"""Wake-ups a webhook left in the database for this process, and the pruning of old webhook events.

A webhook reaches whichever process the operator's proxy picks. When that process does not follow the task
(another holds the job's lease), or the follower was not waiting yet, the event is stored naming the process
that must wake it (generation/webhook_receiver.py). On PostgreSQL that process is told at once (NOTIFY) and
reads its wake-ups then; each process also asks for its own every `interval` seconds, in case a notification
was missed (a connection lost): one indexed read that finds nothing almost always (docs/architecture.md,
"Webhooks"). A wake-up is cleared
once its follower is woken, or once the job is finished or no longer this process's; until then it is tried
again at each turn (a job whose submit has not been answered yet has no follower to wake).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta

from generation.wakeups import TaskWakeups
from storage.webhook_events import WebhookEvents
from toapis import contract

log = logging.getLogger(__name__)


class WakeupRelay:
    """Wakes this process's followers of tasks whose webhook reached the database, and prunes old events."""

    def __init__(
        self,
        events: WebhookEvents,
        wakeups: TaskWakeups,
        *,
        owner: str,
        leased: bool,
        interval: float = 1.0,
        prune_every: float = 3600.0,
        retention: float = contract.WEBHOOK_EVENT_RETENTION_SECONDS,
        relisten_after: float = 60.0,
    ) -> None:
        self._events = events
        self._wakeups = wakeups
        self._owner = owner
        self._leased = leased
        self._interval = interval
        self._prune_every = prune_every
        self._retention = retention
        self._relisten_after = relisten_after
        self._nudged = asyncio.Event()
        self._pruned = 0.0

    def nudge(self) -> None:
        """A wake-up was left for this process: read them now rather than at the next turn."""
        self._nudged.set()

    async def run(self) -> None:
        """Until cancelled: listen for the wake-ups left for this process, and read them when told and at every
        turn. Should listening fail (or its connection be lost), the turns go on alone and it listens again."""
        loop = asyncio.get_running_loop()
        self._pruned = loop.time()
        while True:
            try:
                async with self._events.listening_for_wakes(self._owner, self.nudge) as hearing:
                    await self._relay_guarded()  # whatever was left while nobody listened
                    await self._turns(while_=hearing)
                log.info("Stopped hearing of webhook wake-ups (connection lost); listening again")
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("Could not listen for webhook wake-ups (%s); reading them every %g s", exc, self._interval)
            await self._turns(while_=_until(loop.time() + self._relisten_after))

    async def _turns(self, *, while_: Callable[[], bool]) -> None:
        loop = asyncio.get_running_loop()
        while while_():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._nudged.wait(), self._interval)
            self._nudged.clear()
            await self._relay_guarded()
            if loop.time() - self._pruned >= self._prune_every:
                self._pruned = loop.time()
                try:
                    await self.prune()
                except Exception:
                    log.exception("Forgetting old webhook events failed; trying again later")

    async def _relay_guarded(self) -> None:
        try:
            await self.relay_once()
        except Exception:
            log.exception("Reading the wake-ups webhooks left for this process failed; trying again")

    async def relay_once(self) -> int:
        """Wake what is left for this process now; returns how many followers were woken."""
        pending = await self._events.wakes_for(self._owner)
        if not pending:
            return 0
        done: list[str] = []
        woken = 0
        for wake in pending:
            ours = not self._leased or wake.lease_owner == self._owner
            if wake.job_finished or not ours:
                # Finished, or taken over: whoever holds it now looks the task up when taking it up.
                done.append(wake.event_id)
            elif self._wakeups.wake(wake.task_id):
                done.append(wake.event_id)
                woken += 1
        await self._events.clear_wakes(done)
        if woken:
            log.debug("Woke %d task follower(s) for webhooks another process received", woken)
        return woken

    async def prune(self) -> int:
        """Forget events older than the retention (25 hours: ToAPIs's retries are over by then)."""
        pruned = await self._events.prune(timedelta(seconds=self._retention))
        if pruned:
            log.info("Forgot %d webhook event(s) older than %g hours", pruned, self._retention / 3600)
        return pruned


def _until(deadline: float) -> Callable[[], bool]:
    loop = asyncio.get_running_loop()
    return lambda: loop.time() < deadline

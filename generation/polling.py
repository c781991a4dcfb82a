"""Following a task upstream until it ends: on time, late (the member is told once), or given up after a day.

A task that exists may bill, so it is never abandoned while it might still end: a look-up the API refuses is
tried again more slowly, a rejected key or an empty balance pauses the job until the breaker closes, and only
an unknown task id (the service lost it) or a day without an end stops the following.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from generation import failures
from generation.context import RunContext
from generation.events import Generating, Late, Paused
from storage.jobs import Job
from toapis import (
    AuthenticationError,
    InsufficientBalanceError,
    Task,
    TaskNotFoundError,
    TaskWaitTimeoutError,
    ToAPIsError,
)

log = logging.getLogger(__name__)


class TaskFollower:
    """Looks a job's task up until it completes or fails; raises `JobFailure` when it cannot end well."""

    def __init__(self, context: RunContext) -> None:
        self._context = context

    async def follow(self, job: Job) -> Task:
        """The job's task once it is terminal (completed or failed)."""
        context, config = self._context, self._context.config
        task_id = job.task_id
        assert task_id is not None
        started = job.submit_started_at or job.created_at
        since_submit = (context.store.clock() - started).total_seconds()

        def on_update(task: Task) -> None:
            context.progress(job.id, Generating(task.progress, context.elapsed(job)))

        if since_submit > config.poll_interval:
            # Resumed after a restart: look at once. The task may have ended while the bot was down, and a job past
            # its timeout (or its late limit) must not be called late (or given up) without a look.
            looked = await self._look_once(task_id, on_update)
            if looked is not None and looked.is_terminal:
                return looked
        if not job.late_notified:
            remaining = config.generation_timeout - since_submit
            if remaining > 0:
                # With webhooks, one announces the end and wakes the wait: look-ups are only a safety net.
                interval = config.webhook_safety_interval if context.webhooks_announce_ends else None
                try:
                    return await self._wait(job, task_id, interval or config.poll_interval, remaining, on_update)
                except TaskWaitTimeoutError:
                    pass
            job = await context.jobs.mark_late_notified(job.id)
            context.progress(job.id, Late(context.elapsed(job)))
        since_submit = (context.store.clock() - started).total_seconds()
        try:
            return await self._wait(job, task_id, config.late_interval, config.late_limit - since_submit, on_update)
        except TaskWaitTimeoutError as exc:
            raise failures.timed_out(str(exc)) from exc

    async def _wait(
        self, job: Job, task_id: str, interval: float, deadline: float, on_update: Callable[[Task], None]
    ) -> Task:
        context = self._context
        health, config = context.health, context.config
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline  # a pause below does not restart the clock
        while True:
            try:
                with context.wakeups.watch(task_id):
                    task = await context.client.wait_for_task(
                        task_id,
                        interval=interval,
                        deadline=max(end - loop.time(), 0.0),
                        on_update=on_update,
                        sleep=lambda seconds: context.wakeups.sleep(task_id, seconds),
                    )
            except TaskNotFoundError as exc:
                raise failures.task_lost(exc) from exc
            except (AuthenticationError, InsufficientBalanceError) as exc:
                # The task exists and will finish; keep following it once the key works again.
                health.service_problem(exc)
                context.progress(job.id, Paused())
                await health.wait_closed()
                # Look at once, deadline or not: the task may have ended during the pause.
                looked = await self._look_once(task_id, on_update)
                if looked is not None and looked.is_terminal:
                    health.record_success()
                    return looked
                continue
            except (TaskWaitTimeoutError, asyncio.CancelledError):
                raise
            except ToAPIsError as exc:
                # Any other refusal of a look-up (an undocumented 400, a garbled answer): the task exists and may
                # bill, so it is not abandoned; look again, more slowly, until the deadline.
                health.record_failure(str(exc))
                log.warning("task %s: look-up refused (%s); looking again", task_id, exc)
                await asyncio.sleep(min(max(interval, config.retry_delay) * 2, config.max_retry_delay))
                if loop.time() >= end:
                    raise TaskWaitTimeoutError(
                        f"task {task_id}: no answer before the deadline ({exc})", task_id=task_id, task=None, waited=0
                    ) from exc
                continue
            health.record_success()
            return task

    async def _look_once(self, task_id: str, on_update: Callable[[Task], None]) -> Task | None:
        """One look-up of a task; None when it cannot be looked up now (the wait that follows tries again)."""
        try:
            task = await self._context.client.get_task(task_id)
        except TaskNotFoundError as exc:
            raise failures.task_lost(exc) from exc
        except ToAPIsError as exc:
            log.warning("task %s: look-up on resume failed (%s)", task_id, exc)
            return None
        on_update(task)
        return task

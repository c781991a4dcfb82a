"""Following a task upstream until it ends: on time, late (the member is told once), or given up after a day.

A task that exists may bill, so it is never abandoned while it might still end: a look-up the API refuses is
tried again more slowly, a rejected key or an empty balance pauses the job until the breaker closes, and only
an unknown task id (the service lost it) or a day without an end stops the following.

Until it is late, each look-up is timed to the task (generation/lookup_schedule.py): often near its expected
end, rarely far from it, within the account's look-up budget (generation/rate_budget.py). Every sleep between
look-ups goes through the wake-ups (generation/wakeups.py), so something that knows the task ended cuts it short.
A task followed from its submit to its end without a restart, a pause or being late adds its duration to the
durations service (generation/durations.py), which also gives the member the time left.
"""

from __future__ import annotations

import asyncio
import logging
import random

from generation import failures
from generation.context import RunContext
from generation.events import Generating, Late, Paused
from generation.lookup_schedule import Sample, next_delay
from storage.jobs import Job
from toapis import (
    AuthenticationError,
    InsufficientBalanceError,
    RateLimitError,
    Task,
    TaskNotFoundError,
    TaskStatus,
    TaskWaitTimeoutError,
    ToAPIsError,
)

log = logging.getLogger(__name__)


class TaskFollower:
    """Looks a job's task up until it completes or fails; raises `JobFailure` when it cannot end well."""

    def __init__(self, context: RunContext) -> None:
        self._context = context

    async def follow(self, job: Job, *, submitted_here: bool = False) -> Task:
        """The job's task once it is terminal (completed or failed). `submitted_here`: this run submitted it, so
        its duration may be recorded (a task taken up after a restart may have ended while nobody looked)."""
        context = self._context
        task_id = job.task_id
        assert task_id is not None
        with context.wakeups.watch(task_id), context.lookups.following():
            try:
                return await self._follow(job, task_id, submitted_here)
            finally:
                context.announced.discard(task_id)

    async def _follow(self, job: Job, task_id: str, submitted_here: bool) -> Task:
        context, config = self._context, self._context.config
        started = job.submit_started_at or job.created_at
        since_submit = (context.store.clock() - started).total_seconds()
        watch = _Watch(context, job, task_id, since_submit)

        resumed = since_submit > config.poll_interval
        if resumed:
            # Resumed after a restart (or a submit that took a while): look at once. The task may have ended while
            # the bot was down, and a job past its timeout (or late limit) must not be called late (or given up)
            # without a look.
            looked = await self._look_once(task_id, watch)
            if looked is not None and looked.is_terminal:
                return self._ended(job, looked, watch, submitted_here)
        if not job.late_notified:
            remaining = config.generation_timeout - since_submit
            if remaining > 0:
                # With a webhook announcing the end, the schedule is a slow safety net (RunContext.schedule).
                try:
                    task = await self._wait(job, task_id, config.poll_interval, remaining, watch)
                except TaskWaitTimeoutError:
                    pass
                else:
                    return self._ended(job, task, watch, submitted_here)
            job = await context.jobs.mark_late_notified(job.id)
            context.progress(job.id, Late(context.elapsed(job)))
        since_submit = (context.store.clock() - started).total_seconds()
        try:
            return await self._wait(
                job, task_id, config.late_interval, config.late_limit - since_submit, watch, late=True
            )
        except TaskWaitTimeoutError as exc:
            raise failures.timed_out(str(exc)) from exc

    def _ended(self, job: Job, task: Task, watch: _Watch, submitted_here: bool) -> Task:
        """A task seen ended on time: a completion this run submitted and saw without a pause is a duration."""
        if task.status is TaskStatus.COMPLETED and submitted_here and not watch.paused:
            self._context.durations.record(job.id, job.model, job.resolution, watch.elapsed())
        return task

    async def _wait(
        self, job: Job, task_id: str, interval: float, deadline: float, watch: _Watch, *, late: bool = False
    ) -> Task:
        context = self._context
        health, config = context.health, context.config
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline  # a pause below does not restart the clock

        async def pause(seconds: float) -> None:
            if await context.wakeups.sleep(task_id, seconds):
                watch.woken()
            await context.lookups.take()

        while True:
            try:
                task = await context.client.wait_for_task(
                    task_id,
                    interval=interval,
                    first_delay=None if late else watch.delay(),
                    deadline=max(end - loop.time(), 0.0),
                    on_update=watch.on_update,
                    sleep=pause,
                    next_delay=None if late else watch.next_delay,
                    on_rate_limited=context.lookups.rate_limited,
                )
            except TaskNotFoundError as exc:
                raise failures.task_lost(exc) from exc
            except (AuthenticationError, InsufficientBalanceError) as exc:
                # The task exists and will finish; keep following it once the key works again.
                watch.paused = True
                health.service_problem(exc)
                context.progress(job.id, Paused())
                await health.wait_closed()
                # Look at once, deadline or not: the task may have ended during the pause.
                looked = await self._look_once(task_id, watch)
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
                await context.wakeups.sleep(task_id, min(max(interval, config.retry_delay) * 2, config.max_retry_delay))
                if loop.time() >= end:
                    raise TaskWaitTimeoutError(
                        f"task {task_id}: no answer before the deadline ({exc})", task_id=task_id, task=None, waited=0
                    ) from exc
                continue
            health.record_success()
            return task

    async def _look_once(self, task_id: str, watch: _Watch) -> Task | None:
        """One look-up of a task; None when it cannot be looked up now (the wait that follows tries again)."""
        await self._context.lookups.take()
        try:
            # Not retried by the client: each retry would be a look-up the budget never saw. The wait that
            # follows looks again, through the budget.
            task = await self._context.client.get_task(task_id, retry=False)
        except TaskNotFoundError as exc:
            raise failures.task_lost(exc) from exc
        except ToAPIsError as exc:
            if isinstance(exc, RateLimitError):
                self._context.lookups.rate_limited(exc.retry_after)
            log.warning("task %s: look-up on resume failed (%s)", task_id, exc)
            return None
        watch.on_update(task)
        if not task.is_terminal:
            watch.remember(task)
        return task


class _Watch:
    """What one follower knows of its task: the look-ups so far, the history of its kind; from them the delay
    before the next look-up and the time left that the member is shown."""

    def __init__(self, context: RunContext, job: Job, task_id: str, since_submit: float) -> None:
        self._context = context
        self._job = job
        self._task_id = task_id
        self._loop = asyncio.get_running_loop()
        self._submitted = self._loop.time() - since_submit
        self._samples: list[Sample] = []
        self._reported: Task | None = None
        self._showing_remaining = False
        # After a wake-up: how many look-ups since have still seen the task running (None: no wake-up pending).
        self._since_wake: int | None = None
        self.paused = False
        """A pause (a rejected key, an empty balance) held the look-ups: the duration says nothing of the task."""

    def elapsed(self) -> float:
        """Seconds since the submit."""
        return self._loop.time() - self._submitted

    def delay(self) -> float:
        """Seconds until the next look-up, from what is known now."""
        context = self._context
        return next_delay(
            elapsed=self.elapsed(),
            samples=self._samples,
            history=context.durations.expected(self._job.model, self._job.resolution),
            config=context.schedule(self._task_id),
            floor=context.lookups.share(),
            rand=random.random(),
        )

    def woken(self) -> None:
        """Something that knows the task ended (a webhook) cut the sleep short: the look-up that follows should
        see the end."""
        self._since_wake = 0

    def on_update(self, task: Task) -> None:
        """A look-up saw a change: show it."""
        self._reported = task
        self._show(task, self._remaining(task))

    def remember(self, task: Task) -> None:
        """A look-up saw the task running."""
        self._samples.append(Sample(self.elapsed(), task.progress))

    def next_delay(self, task: Task) -> float:
        """A look-up saw the task running: remember it, keep the time left up to date, say when to look next."""
        self.remember(task)
        if task is not self._reported:
            # Unchanged, so not shown yet: shown again only for the time left, which moves on its own.
            remaining = self._remaining(task)
            if remaining is not None or self._showing_remaining:
                self._show(task, remaining)
        usual = self.delay()
        if self._since_wake is None:
            return usual
        # The task was said to have ended, yet looks running: the status API may lag behind the webhook. Look
        # again soon (the least interval, doubling while it still looks running) rather than at the usual delay
        # (the safety interval, with webhooks on).
        least = max(self._context.config.schedule.min_interval, self._context.lookups.share())
        soon = least * 2.0**self._since_wake
        if soon >= usual:
            self._since_wake = None
            return usual
        self._since_wake += 1
        return soon

    def _remaining(self, task: Task) -> float | None:
        job = self._job
        expected = self._context.durations.expected(job.model, job.resolution)
        return None if expected is None or task.is_terminal else expected.remaining(self.elapsed())

    def _show(self, task: Task, remaining: float | None) -> None:
        context, job = self._context, self._job
        self._showing_remaining = remaining is not None
        context.progress(job.id, Generating(task.progress, context.elapsed(job), remaining))

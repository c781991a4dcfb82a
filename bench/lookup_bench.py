"""How soon a finished task is seen, and at what cost: `python bench/lookup_bench.py`.

The real look-up schedule (generation/lookup_schedule.py) and the real durations service
(generation/durations.py, in memory) run against task timelines of the fake ToAPIs (tests/fakes/toapis.py,
`Timeline.state_at`) on a virtual clock, so thousands of tasks take a second and the figures do not depend on
the machine. Each task is looked up as the follower does (generation/polling.py): the schedule's delay after
every look-up that sees it running; the first look-up that sees it complete ends it, and its duration (from the
submit to that look-up) is recorded, as the follower records it.

Measured per scenario: the lag from the task's end to the look-up that sees it (median and 90th percentile) and
the look-ups per task (median and mean), for fixed polling (`TOAPIS_POLL_INTERVAL`, 5 s ±20 %), the schedule
with no history of the kind (cold: the first tasks after a deployment) and the schedule with a history built
by the tasks before (warm: 20 tasks of the kind run first, through the same schedule).

`--real` also runs 30-second tasks through the real pipeline and follower against the fake ToAPIs over HTTP,
with time scaled down (`--scale`, 10 by default: the floor of one look-up a second and the poll interval scale
with it), as a check that the process behaves as the simulation says; its fixed polling is the follower's own
safety interval (5 s ±10 %), and all the tasks of a row start together.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generation.config import PipelineConfig  # noqa: E402
from generation.durations import KEEP, TaskDurations  # noqa: E402
from generation.events import Completed, DeliveryReceipt, Failed, ProgressEvent  # noqa: E402
from generation.lookup_schedule import Sample, ScheduleConfig, next_delay  # noqa: E402
from generation.pipeline import Pipeline  # noqa: E402
from generation.requests import JobRequest  # noqa: E402
from storage.jobs import Job  # noqa: E402
from storage.store import Storage  # noqa: E402
from tests.fakes.toapis import Endpoint, FakeToAPIs, Step, Timeline  # noqa: E402
from toapis import RetryPolicy, ToAPIsClient  # noqa: E402

MODEL, RESOLUTION = "gpt-image-2", "1k"
POLL_INTERVAL = 5.0
FIXED_JITTER = 0.2  # the client's own, for fixed polling
TASKS = 400
WARM_UP = KEEP


def climbing(duration: float, rng: random.Random) -> Timeline:
    """Queued a moment, then progress in steps of 5 % to 95 %, evenly, then completed."""
    queued = rng.uniform(0.0, 0.1 * duration)
    return Timeline.simple(queued=queued, running=duration - queued, progress=tuple(range(5, 100, 5)))


def jumping(duration: float, rng: random.Random) -> Timeline:
    """0 % for most of the task, then one jump (to 40–90 %) late in it, then completed."""
    jump_at = rng.uniform(0.5, 0.9) * duration
    steps = (Step(0.0, "queued", 0), Step(0.05 * duration, "in_progress", 0), Step(jump_at, "in_progress", 0))
    return Timeline(steps=(*steps, Step(jump_at, "in_progress", rng.choice((40, 50, 60, 75, 90)))), ends_at=duration)


def thirty(rng: random.Random) -> float:
    return rng.uniform(29.0, 31.0)


def spread(rng: random.Random) -> float:
    return rng.uniform(10.0, 90.0)


@dataclass(frozen=True)
class Outcome:
    lag: float
    lookups: int


Policy = Callable[[float, Sequence[Sample], random.Random], float]


def follow(timeline: Timeline, policy: Policy, rng: random.Random) -> Outcome:
    """One task followed on a virtual clock: the lag and the look-ups."""
    now, lookups = 0.0, 0
    samples: list[Sample] = []
    while True:
        now += policy(now, samples, rng)
        lookups += 1
        status, progress = timeline.state_at(now)
        if status in ("completed", "failed"):
            return Outcome(now - timeline.ends_at, lookups)
        samples.append(Sample(now, progress))


def fixed_policy(now: float, samples: Sequence[Sample], rng: random.Random) -> float:
    return POLL_INTERVAL * (1.0 + FIXED_JITTER * (2.0 * rng.random() - 1.0))


def scheduled_policy(durations: TaskDurations, config: ScheduleConfig) -> Policy:
    def policy(now: float, samples: Sequence[Sample], rng: random.Random) -> float:
        history = durations.expected(MODEL, RESOLUTION)
        return next_delay(elapsed=now, samples=samples, history=history, config=config, rand=rng.random())

    return policy


@dataclass(frozen=True)
class Figures:
    lag_median: float
    lag_p90: float
    lookups_median: float
    lookups_mean: float

    def row(self, name: str) -> str:
        return (
            f"| {name} | {self.lag_median:.2f} s | {self.lag_p90:.2f} s | {self.lookups_median:g} "
            f"| {self.lookups_mean:.1f} |"
        )


def figures(outcomes: Sequence[Outcome]) -> Figures:
    lags = sorted(outcome.lag for outcome in outcomes)
    return Figures(
        statistics.median(lags),
        lags[min(len(lags) - 1, round(0.9 * (len(lags) - 1)))],
        statistics.median(outcome.lookups for outcome in outcomes),
        statistics.fmean(outcome.lookups for outcome in outcomes),
    )


def run_scenario(
    make_timeline: Callable[[float, random.Random], Timeline],
    duration: Callable[[random.Random], float],
    *,
    config: ScheduleConfig,
    seed: int,
) -> dict[str, Figures]:
    rows: dict[str, Figures] = {}
    rng = random.Random(seed)
    rows["fixed 5 s"] = figures([follow(make_timeline(duration(rng), rng), fixed_policy, rng) for _ in range(TASKS)])

    # Cold: every task is the first of its kind (nothing recorded yet).
    rng = random.Random(seed)
    cold = []
    for _ in range(TASKS):
        policy = scheduled_policy(TaskDurations(), config)
        cold.append(follow(make_timeline(duration(rng), rng), policy, rng))
    rows["scheduled, cold"] = figures(cold)

    # Warm: the history is what the schedule itself recorded for the tasks before.
    rng = random.Random(seed)
    durations = TaskDurations()
    policy = scheduled_policy(durations, config)
    warm = []
    for index in range(WARM_UP + TASKS):
        timeline = make_timeline(duration(rng), rng)
        outcome = follow(timeline, policy, rng)
        durations.record(f"job-{index}", MODEL, RESOLUTION, timeline.ends_at + outcome.lag)
        if index >= WARM_UP:
            warm.append(outcome)
    rows["scheduled, warm"] = figures(warm)
    return rows


SCENARIOS: dict[str, tuple[Callable[[float, random.Random], Timeline], Callable[[random.Random], float]]] = {
    "30 s tasks, progress climbs": (climbing, thirty),
    "30 s tasks, progress jumps": (jumping, thirty),
    "10-90 s tasks, progress climbs": (climbing, spread),
    "10-90 s tasks, progress jumps": (jumping, spread),
}


class _Quiet:
    """A reporter that takes every result (the bench measures look-ups, not Discord)."""

    def progress(self, event: ProgressEvent) -> None:
        pass

    async def deliver(self, event: Completed) -> DeliveryReceipt:
        return DeliveryReceipt(True, 1)

    async def failed(self, event: Failed) -> None:
        pass


class _SafetyIntervalOnly:
    """Stands in for the webhooks' `callback_url`: none is sent, yet the follower keeps to the safety interval."""

    url = None
    announces_ends = True


async def real_run(scale: float, tasks: int, seed: int) -> dict[str, Figures]:
    """30 s tasks (climbing progress) through the real pipeline and follower against the fake ToAPIs over HTTP,
    `scale` times faster than real time: fixed polling, cold, and warm (after `KEEP` tasks recorded)."""
    rng = random.Random(seed)
    rows: dict[str, Figures] = {}
    with tempfile.TemporaryDirectory() as folder:
        async with FakeToAPIs() as fake, aiohttp.ClientSession() as session:
            client = ToAPIsClient(session, api_key=fake.api_key, base_url=fake.base_url, retry=RetryPolicy())
            store = await Storage.open(f"sqlite:///{folder}/bench.db")
            base = PipelineConfig(
                model=MODEL,
                poll_interval=POLL_INTERVAL / scale,
                min_lookup_interval=1.0 / scale,
                generation_timeout=600.0 / scale,
                max_concurrent_jobs=tasks + KEEP,
                spool_dir=Path(folder) / "spool",
            )
            # Fixed polling through the same follower: the webhooks' safety interval is a plain interval (±10 %).
            fixed = PipelineConfig(**{**base.__dict__, "webhook_safety_interval": POLL_INTERVAL / scale})
            phases = [("fixed 5 s", fixed), ("scheduled, cold", base), ("scheduled, warm", base)]
            for name, config in phases:
                callbacks = _SafetyIntervalOnly() if name == "fixed 5 s" else None
                pipeline = Pipeline(
                    config=config,
                    client=client,
                    store=store,
                    reporters=lambda job: _Quiet(),
                    callbacks=callbacks,  # type: ignore[arg-type]  # a stand-in: the bench sends no callback_url
                )
                await pipeline.start()
                if name != "scheduled, warm":
                    # Every task followed with no history of its kind: nothing is recorded meanwhile.
                    pipeline.durations.record = lambda *args: None  # type: ignore[method-assign]
                else:
                    await _batch(pipeline, store, fake, KEEP, scale, rng)  # the history, recorded by the schedule
                rows[name] = figures(await _batch(pipeline, store, fake, tasks, scale, rng))
                await pipeline.close()
            await store.close()
    return rows


async def _batch(
    pipeline: Pipeline, store: Storage, fake: FakeToAPIs, count: int, scale: float, rng: random.Random
) -> list[Outcome]:
    timelines = [climbing(thirty(rng) / scale, rng) for _ in range(count)]
    fake.queue_timeline(*timelines)
    request = JobRequest(
        guild_id=1, channel_id=2, user_id=3, prompt="bench", model=MODEL, aspect="1:1", resolution=RESOLUTION, n=1
    )
    jobs: list[Job] = [await pipeline.submit(request) for _ in range(count)]
    while True:
        stored = [await store.jobs.get(job.id) for job in jobs]
        if all(job is not None and job.is_finished for job in stored):
            break
        await asyncio.sleep(0.05)
    outcomes = []
    for job in jobs:
        (task,) = fake.tasks_for(job.id)
        ended = task.created + task.timeline.ends_at
        looks = [r.time for r in fake.requests_to(Endpoint.LOOKUP) if r.path.endswith(task.id)]
        seen = min(moment for moment in looks if moment >= ended)
        outcomes.append(Outcome((seen - ended) * scale, len(looks)))
    return outcomes


def lookup_rows(seed: int = 7) -> list[tuple[str, str, str]]:
    """bench/run.py's rows: for each scenario, fixed polling against the schedule, cold and warm (exact figures:
    a virtual clock, so no medians of runs)."""
    config = ScheduleConfig(base_interval=POLL_INTERVAL)
    rows = []
    for name, (make_timeline, duration) in SCENARIOS.items():
        found = run_scenario(make_timeline, duration, config=config, seed=seed)
        figure = "; ".join(
            f"{policy} {row.lag_median:.2f} s / {row.lag_p90:.2f} s, {row.lookups_mean:.1f}"
            for policy, row in found.items()
        )
        target = "target median <= 1 s, <= 8 look-ups" if name.startswith("30 s") and "climbs" in name else ""
        rows.append((f"look-ups, {name}: lag median / p90, look-ups a task", figure, target))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--real", action="store_true", help="also run tasks through the real follower over HTTP")
    parser.add_argument("--scale", type=float, default=10.0, help="how much faster than real time (--real)")
    parser.add_argument("--tasks", type=int, default=30, help="tasks per row (--real)")
    args = parser.parse_args()
    config = ScheduleConfig(base_interval=POLL_INTERVAL)
    print(f"# Look-ups timed to the task: {TASKS} tasks per row, virtual clock, seed {args.seed}")
    print(f"# {platform.machine()}, Python {platform.python_version()}")
    for name, (make_timeline, duration) in SCENARIOS.items():
        print(f"\n{name}\n")
        print("| policy | lag, median | lag, p90 | look-ups, median | look-ups, mean |")
        print("|---|---|---|---|---|")
        for policy, row in run_scenario(make_timeline, duration, config=config, seed=args.seed).items():
            print(row.row(policy))

    if args.real:
        rows = asyncio.run(real_run(args.scale, args.tasks, args.seed))
        print(f"\n30 s tasks, progress climbs: real pipeline and fake ToAPIs over HTTP, {args.scale:g}x faster, ")
        print(f"{args.tasks} tasks at once per row (lags in task seconds)\n")
        print("| policy | lag, median | lag, p90 | look-ups, median | look-ups, mean |")
        print("|---|---|---|---|---|")
        for policy, row in rows.items():
            print(row.row(policy))


if __name__ == "__main__":
    main()

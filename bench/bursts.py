"""Bursts, for `bench/run.py`: acknowledgements of many /imagine at once, and many tasks completing at once.

- Acknowledgements: bursts of 10, 30 and 50 /imagine dispatched together, one after another once the bot is idle
  again (Imagine: every job of the burst delivered), for Imagine and for the minimal discord.py bot that only
  defers (the floor), running side by side and taking turns, each bot's first burst a warm-up left out. The
  latency of one is from the interaction's dispatch to its deferred callback received by the fake. Also: the
  first burst of 10 after the bots connect (fresh bots each run: no connection to Discord pooled yet), and
  bursts of 10 while Imagine follows 30 jobs whose tasks are still running (a busy server's bursts).
- Completions: 100 jobs in flight whose tasks complete within the same second; per job, from the look-up that
  sees its task completed to the reply edited with its files.

The fake Discord keeps Discord's rate limits here (`STRICT`): what Discord would refuse counts.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.run import (
    BOT,
    MINIMAL_BOT,
    STRICT,
    World,
    acknowledged,
    bot_process,
    delivered,
    imagine_env,
    invoke_all,
    median,
    ms,
    percentile,
    world,
)
from tests.fakes.discord import InteractionRecord
from tests.fakes.toapis import Endpoint, Outcome, Timeline

BURSTS = 20
BURST_SIZES = (10, 30, 50)
COMPLETIONS = 100
# Jobs of a burst are short: the bot is idle again soon after each burst.
BURST_TIMELINE = Timeline.simple(queued=0.05, running=0.1, progress=(50,))
# When the tasks of the completions figure end, from the moment every one of them is running: late enough for
# the admission and the first progress edits to be over, so that only the completions are measured.
COMPLETIONS_AFTER = 2.0
COMPLETIONS_POLL = "1"
FIRST_BURST_RUNS = 7
IN_FLIGHT = 30
BUSY_PROMPT = "a long one, running while the bursts come"
BUSY_ENV = {"TOAPIS_POLL_INTERVAL": "5", "PROGRESS_EDIT_INTERVAL": "2"}


async def burst_latencies(
    size: int, bursts: int = BURSTS, *, warm_up: int = 1, in_flight: int = 0, imagine_first: bool = False
) -> dict[Path, list[float]]:
    """Every acknowledgement latency of `bursts` bursts of `size` /imagine (after `warm_up` bursts left out), for
    Imagine and for the floor. Both bots run side by side, each with fakes of its own, and take turns (which goes
    first alternates): a shared, noisy machine then weighs on both alike. With `in_flight`, Imagine follows that
    many jobs whose tasks never end all along (the floor has nothing to follow)."""
    latencies: dict[Path, list[float]] = {BOT: [], MINIMAL_BOT: []}
    async with (
        world(size + in_flight, timeline=BURST_TIMELINE, limits=STRICT) as imagine,
        world(size, timeline=BURST_TIMELINE, limits=STRICT) as floor,
        # With jobs in flight, the real poll and edit intervals: their following is the load a busy server makes.
        bot_process(imagine, BOT, imagine_env(imagine, **(BUSY_ENV if in_flight else {}))),
        bot_process(floor, MINIMAL_BOT, floor.discord.bot_env() | {"MINIMAL_BOT_DEFER_ONLY": "1"}),
    ):
        if in_flight:
            imagine.api.on_prompt(BUSY_PROMPT, Timeline.never_ends(progress=30))
            # Members of their own: the bursts' members have nothing in flight.
            busy = await asyncio.gather(
                *(
                    imagine.discord.invoke_slash(
                        "imagine", {"prompt": f"{BUSY_PROMPT} {i}"}, user=member, channel=imagine.channel
                    )
                    for i, member in enumerate(imagine.members[size:])
                )
            )
            await acknowledged(imagine, busy)
            await imagine.api.wait_for(lambda: len(imagine.api.tasks) >= in_flight, timeout=120)
            await asyncio.sleep(1.0)  # their admissions over: only their following goes on
        turns = ((BOT, imagine), (MINIMAL_BOT, floor))
        for burst in range(bursts + warm_up):
            for script, w in turns if (burst + imagine_first) % 2 else reversed(turns):
                calls = await invoke_all(w, size, f"burst {burst}")
                acks = await acknowledged(w, calls)
                if burst >= warm_up:
                    latencies[script] += acks
                if script == BOT:
                    await w.discord.wait_for(functools.partial(all_delivered, calls), 120, what="every delivery")
                await asyncio.sleep(0.2)
    return latencies


def all_delivered(calls: Sequence[InteractionRecord]) -> bool:
    return all(delivered(c) for c in calls)


@dataclass
class Completions:
    delays: list[float]
    """Per job: seconds from the look-up that saw its task completed to the reply edited with its files."""
    spread: float
    """Seconds between the first and the last of those look-ups."""


async def completions_together(jobs: int = COMPLETIONS) -> Completions:
    """`jobs` jobs in flight (two images each) whose tasks all complete within one second."""
    async with world(jobs, timeline=Timeline.never_ends(progress=40), limits=STRICT) as w:
        env = imagine_env(w, TOAPIS_POLL_INTERVAL=COMPLETIONS_POLL, PROGRESS_EDIT_INTERVAL="2")
        async with bot_process(w, BOT, env):
            calls = await invoke_all(w, jobs, "a request among many", n=2)
            await acknowledged(w, calls)
            await w.api.wait_for(lambda: len(w.api.tasks) >= jobs, timeout=120)
            start = time.monotonic() + COMPLETIONS_AFTER
            for index, task in enumerate(w.api.tasks.values()):
                task.forced_end = (start + index / jobs, Outcome.COMPLETED)
            await w.discord.wait_for(lambda: all(delivered(c) for c in calls), 240, what="every delivery")
        return _completion_delays(w)


def _completion_delays(w: World) -> Completions:
    # Both fakes run in this process: bring the Discord fake's clock onto time.monotonic().
    offset = time.monotonic() - w.discord.state.now()
    by_task: dict[str, float] = {}
    for request in w.api.requests_to(Endpoint.LOOKUP):
        task_id = request.path.rsplit("/", 1)[-1]
        task = w.api.tasks.get(task_id)
        if task is not None and request.time >= task.created + task.ended_after():
            by_task.setdefault(task_id, request.time)
    delays = []
    for call in w.discord.state.interactions.values():
        if call.original is None or not delivered(call):
            continue
        delivered_at = next(v.time for v in call.original.versions if v.attachments) + offset
        prompt = call.payload["data"]["options"][0]["value"]
        task = next(t for t in w.api.tasks.values() if t.prompt == prompt)
        delays.append(delivered_at - by_task[task.id])
    seen = sorted(by_task.values())
    return Completions(delays, seen[-1] - seen[0] if seen else float("nan"))


def _ratio_row(what: str, runs: Sequence[dict[Path, list[float]]]) -> tuple[str, str, str]:
    """Imagine's and the floor's p50 and p90 (each the median of the runs, the two bots measured in the same run),
    and their ratios."""
    figures = {
        script: [(percentile(run[script], 0.5), percentile(run[script], 0.9)) for run in runs]
        for script in (BOT, MINIMAL_BOT)
    }
    ip50, ip90 = (median([f[i] for f in figures[BOT]]) for i in (0, 1))
    mp50, mp90 = (median([f[i] for f in figures[MINIMAL_BOT]]) for i in (0, 1))
    return (
        f"ack latency, {what}: p50 / p90",
        f"{ms(ip50)} / {ms(ip90)} (minimal bot {ms(mp50)} / {ms(mp90)})",
        f"ratios {ip50 / mp50:.2f} / {ip90 / mp90:.2f} (target <= 1.3)",
    )


async def burst_rows(runs: int, started: float) -> list[tuple[str, str, str]]:
    """The table's rows: per burst size, Imagine's and the floor's p50 and p90 (each the median of `runs` runs,
    the two bots measured in the same run) and their ratios; then the completions."""
    rows = []
    for size in BURST_SIZES:
        rows.append(_ratio_row(f"{BURSTS} bursts of {size}", [await burst_latencies(size) for _ in range(runs)]))
        print(f"# bursts of {size}: done after {time.perf_counter() - started:.0f} s", file=sys.stderr)
    rows.append(
        _ratio_row(
            f"the first burst of 10 after connecting, {FIRST_BURST_RUNS} fresh pairs",
            [await burst_latencies(10, 1, warm_up=0, imagine_first=run % 2 == 0) for run in range(FIRST_BURST_RUNS)],
        )
    )
    rows.append(
        _ratio_row(
            f"{BURSTS} bursts of 10 with {IN_FLIGHT} jobs in flight",
            [await burst_latencies(10, in_flight=IN_FLIGHT) for _ in range(runs)],
        )
    )
    print(f"# first and busy bursts: done after {time.perf_counter() - started:.0f} s", file=sys.stderr)
    completions = [await completions_together() for _ in range(runs)]
    rows.append(
        (
            f"{COMPLETIONS} tasks completing within a second: look-up to posted files, p50 / p90",
            f"{ms(median([median(c.delays) for c in completions]))} / "
            f"{ms(median([percentile(c.delays, 0.9) for c in completions]))}",
            "target <= 100 ms / 300 ms",
        )
    )
    print(f"# completions: done after {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return rows

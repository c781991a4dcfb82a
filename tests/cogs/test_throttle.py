"""CoalescingEditor: at most one edit per interval, the latest state always shown."""

from __future__ import annotations

import asyncio
import itertools

from cogs._throttle import CoalescingEditor


class Recorder:
    def __init__(self, *, fail_on: object = None) -> None:
        self.shown: list[tuple[float, object]] = []
        self.fail_on = fail_on

    async def __call__(self, state: object) -> None:
        if state == self.fail_on:
            raise RuntimeError("Discord said no")
        self.shown.append((asyncio.get_running_loop().time(), state))
        await asyncio.sleep(0)


async def test_bursts_are_coalesced_and_the_latest_state_is_shown() -> None:
    recorder = Recorder()
    editor: CoalescingEditor[int] = CoalescingEditor(recorder, interval=0.05)
    editor.update(0)
    await editor.flush()
    for state in range(1, 100):  # a burst without yielding: one edit shows the newest
        editor.update(state)
    await editor.flush()
    assert [state for _, state in recorder.shown] == [0, 99]
    assert recorder.shown[1][0] - recorder.shown[0][0] >= 0.05 - 1e-3


async def test_edits_are_spaced_by_at_least_the_interval() -> None:
    recorder = Recorder()
    editor: CoalescingEditor[int] = CoalescingEditor(recorder, interval=0.03)
    for state in range(6):
        editor.update(state)
        await asyncio.sleep(0.01)
    await editor.flush()
    times = [at for at, _ in recorder.shown]
    assert len(times) >= 2
    assert all(later - earlier >= 0.03 - 1e-3 for earlier, later in itertools.pairwise(times))
    assert recorder.shown[-1][1] == 5


async def test_a_failed_edit_does_not_stop_later_ones() -> None:
    recorder = Recorder(fail_on="bad")
    editor: CoalescingEditor[str] = CoalescingEditor(recorder, interval=0)
    editor.update("bad")
    await editor.flush()
    editor.update("good")
    await editor.flush()
    assert [state for _, state in recorder.shown] == ["good"]
    assert editor.edits == 1


async def test_close_drops_pending_states_and_ignores_later_ones() -> None:
    recorder = Recorder()
    editor: CoalescingEditor[int] = CoalescingEditor(recorder, interval=10)
    editor.update(1)
    await editor.flush()
    editor.update(2)  # would wait 10 s for its turn
    await editor.close()
    editor.update(3)
    await asyncio.sleep(0)
    assert [state for _, state in recorder.shown] == [1]


async def test_the_interval_counts_from_the_end_of_a_slow_edit() -> None:
    spans: list[tuple[float, float]] = []

    async def slow_edit(state: int) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        await asyncio.sleep(0.03)
        spans.append((began, loop.time()))

    editor: CoalescingEditor[int] = CoalescingEditor(slow_edit, interval=0.02)
    for state in range(3):
        editor.update(state)
        await editor.flush()
    assert len(spans) == 3
    for (_, previous_end), (next_start, _) in itertools.pairwise(spans):
        assert next_start - previous_end >= 0.02 - 1e-3

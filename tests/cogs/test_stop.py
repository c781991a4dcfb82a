"""A clean stop fits in Docker's 10 s between SIGTERM and SIGKILL (bot.py, `STOP_BUDGET`): what the intake's
drain leaves of the budget goes to the moderation log's last writes, and no more."""

from __future__ import annotations

import asyncio
import time

import pytest

import bot as bot_module
from tests.cogs.conftest import World


async def test_the_moderation_log_gets_only_what_is_left_of_the_stops_budget(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot_module, "STOP_BUDGET", 0.2)
    never = asyncio.Event()
    waited: list[float] = []

    async def never_idle() -> None:  # a write that never ends
        started = time.monotonic()
        try:
            await never.wait()
        finally:
            waited.append(time.monotonic() - started)

    monkeypatch.setattr(world.bot.services.mod_log, "wait_idle", never_idle)
    await world.restart()

    # Cut off by what was left of the budget, well before the moderation log's own 5 s would have run out.
    (wait,) = waited
    assert wait < bot_module.MOD_LOG_DRAIN

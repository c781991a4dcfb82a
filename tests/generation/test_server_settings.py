"""Server settings are read from memory; another process's changes arrive with the next refresh."""

from __future__ import annotations

import asyncio
from pathlib import Path

from generation.server_settings import ServerSettings
from storage.guild_settings import GuildSettingsRepository
from storage.store import Storage


class Watched(ServerSettings):
    """Tells when it has reloaded."""

    def __init__(self, repository: GuildSettingsRepository) -> None:
        super().__init__(repository)
        self.loads = 0
        self.reloaded = asyncio.Event()

    async def load(self) -> None:
        await super().load()
        self.loads += 1
        if self.loads > 1:
            self.reloaded.set()


async def test_changes_through_another_process_arrive_with_the_refresh(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    async with await Storage.open(url) as here, await Storage.open(url) as there:
        mine, theirs = Watched(here.guild_settings), ServerSettings(there.guild_settings)
        await mine.load()
        await theirs.set_max_n(1, 2)
        await theirs.add_allowed_channel(1, 77)
        assert mine.get(1).max_n == 4  # memory, not the database: the check before a first response needs no I/O

        refresher = asyncio.create_task(mine.refresh_every(0.001))
        try:
            await asyncio.wait_for(mine.reloaded.wait(), timeout=5)
        finally:
            refresher.cancel()
        assert mine.get(1).max_n == 2
        assert mine.get(1).allowed_channel_ids == frozenset({77})
        assert mine.log_channels() == {}


async def test_a_change_made_here_is_seen_at_once(tmp_path: Path) -> None:
    async with await Storage.open(f"sqlite:///{tmp_path / 'db.sqlite'}") as store:
        settings = ServerSettings(store.guild_settings)
        await settings.load()
        await settings.set_log_channel(5, 99)
        await settings.set_cooldown(5, 30)
        assert settings.get(5).cooldown_seconds == 30
        assert settings.log_channels() == {5: 99}
        assert settings.get(6).max_n == 4  # a server that never changed anything has the defaults

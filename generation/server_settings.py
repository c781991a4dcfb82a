"""Per-server settings readable without I/O.

`/imagine` checks the channel allow-list, the maximum n, the cooldown and the blocked words before its first
response, when no I/O is allowed; so the settings live in memory, loaded once at start-up and written through
on every change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Final

from generation.blocked_words import BlockedWords
from generation.refusals import TooManyBlockedWords
from storage.guild_settings import GuildSettings, GuildSettingsRepository

log = logging.getLogger(__name__)

MAX_BLOCKED_WORDS: Final = 500
"""Entries one server may block: a few hundred words or phrases."""


class ServerSettings:
    def __init__(self, repository: GuildSettingsRepository) -> None:
        self._repository = repository
        self._cache: dict[int, GuildSettings] = {}
        # Each server's matcher, with the entries it was built from (rebuilt when they change).
        self._matchers: dict[int, tuple[frozenset[str], BlockedWords]] = {}

    async def load(self) -> None:
        self._cache = await self._repository.all()

    async def refresh_every(self, interval: float) -> None:
        """Reload the settings every `interval` seconds, until cancelled: with several processes on one
        database, a change made through another process reaches this one within `interval`."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.load()
            except Exception:
                log.exception("Reloading the server settings failed; keeping the ones in memory")

    def get(self, guild_id: int) -> GuildSettings:
        """The server's settings, the defaults for a server that never changed any. No I/O."""
        return self._cache.get(guild_id) or GuildSettings(guild_id)

    def blocked_words(self, guild_id: int) -> BlockedWords:
        """The server's blocked words, ready to look for in a prompt. No I/O."""
        entries = self.get(guild_id).blocked_words
        known = self._matchers.get(guild_id)
        if known is not None and (known[0] is entries or known[0] == entries):
            return known[1]
        matcher = BlockedWords(entries)
        self._matchers[guild_id] = (entries, matcher)
        return matcher

    def log_channels(self) -> dict[int, int]:
        """Server id -> the channel where operator alerts go, for servers that chose one."""
        return {gid: s.log_channel_id for gid, s in self._cache.items() if s.log_channel_id is not None}

    async def add_allowed_channel(self, guild_id: int, channel_id: int) -> GuildSettings:
        return self._keep(await self._repository.add_allowed_channel(guild_id, channel_id))

    async def remove_allowed_channel(self, guild_id: int, channel_id: int) -> GuildSettings:
        return self._keep(await self._repository.remove_allowed_channel(guild_id, channel_id))

    async def clear_allowed_channels(self, guild_id: int) -> GuildSettings:
        return self._keep(await self._repository.clear_allowed_channels(guild_id))

    async def add_blocked_words(self, guild_id: int, entries: Iterable[str]) -> GuildSettings:
        """Block these entries (canonical: generation/blocked_words.py `parse_entries`); refused whole when the
        server would have more than MAX_BLOCKED_WORDS."""
        new = set(entries) - self.get(guild_id).blocked_words
        room = MAX_BLOCKED_WORDS - len(self.get(guild_id).blocked_words)
        if len(new) > room:
            raise TooManyBlockedWords(MAX_BLOCKED_WORDS, max(room, 0))
        return self._keep(await self._repository.add_blocked_words(guild_id, sorted(new)))

    async def remove_blocked_words(self, guild_id: int, entries: Iterable[str]) -> GuildSettings:
        return self._keep(await self._repository.remove_blocked_words(guild_id, entries))

    async def set_spoiler(self, guild_id: int, spoiler: bool, *, exempt_nsfw: bool = False) -> GuildSettings:
        return self._keep(await self._repository.set_spoiler(guild_id, spoiler, exempt_nsfw=exempt_nsfw))

    async def set_mod_log(self, guild_id: int, on: bool) -> GuildSettings:
        return self._keep(await self._repository.set_mod_log(guild_id, on))

    async def set_chat(self, guild_id: int, on: bool) -> GuildSettings:
        return self._keep(await self._repository.set_chat(guild_id, on))

    async def set_max_n(self, guild_id: int, max_n: int) -> GuildSettings:
        return self._keep(await self._repository.set_max_n(guild_id, max_n))

    async def set_cooldown(self, guild_id: int, seconds: int) -> GuildSettings:
        return self._keep(await self._repository.set_cooldown(guild_id, seconds))

    async def set_log_channel(self, guild_id: int, channel_id: int | None) -> GuildSettings:
        return self._keep(await self._repository.set_log_channel(guild_id, channel_id))

    async def set_models(self, guild_id: int, models: frozenset[str] | None) -> GuildSettings:
        return self._keep(await self._repository.set_models(guild_id, models))

    async def set_default_model(self, guild_id: int, model: str | None) -> GuildSettings:
        return self._keep(await self._repository.set_default_model(guild_id, model))

    async def set_language(self, guild_id: int, language: str | None) -> GuildSettings:
        return self._keep(await self._repository.set_language(guild_id, language))

    async def claim_welcome(self, guild_id: int) -> bool:
        """Whether the server is to be welcomed now: True once per server, ever (across restarts, processes, and
        the bot being removed and added again)."""
        return await self._repository.claim_welcome(guild_id)

    async def release_welcome(self, guild_id: int) -> None:
        """The welcome could not be posted: the next time the bot is added, it may be."""
        await self._repository.release_welcome(guild_id)

    def _keep(self, settings: GuildSettings) -> GuildSettings:
        self._cache[settings.guild_id] = settings
        return settings

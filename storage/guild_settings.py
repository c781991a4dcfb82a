"""Per-guild settings (`/imagine-settings`) and the record of the last command sync of each scope.

A guild that never changed a setting has no row and gets the defaults. The bot loads `all()` once at
start-up into a cache and updates the cache with what each setter returns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from storage.clock import Clock, to_epoch_ms, utc_now
from storage.database import Database, Row

log = logging.getLogger(__name__)

DEFAULT_MAX_N: Final = 4
MAX_N_RANGE: Final = range(1, 5)


@dataclass(frozen=True)
class GuildSettings:
    """A guild's settings. No allowed channel means `/imagine` works in every channel."""

    guild_id: int
    allowed_channel_ids: frozenset[int] = frozenset()
    max_n: int = DEFAULT_MAX_N
    cooldown_seconds: int = 0
    log_channel_id: int | None = None
    models: frozenset[str] | None = None
    """The model ids this guild offers; None: every model the operator offers."""
    default_model: str | None = None
    """The model a request uses when it names none; None: the operator's default."""
    language: str | None = None
    """The locale of messages the whole channel sees; None: the server's preferred locale (docs/i18n.md)."""
    blocked_words: frozenset[str] = frozenset()
    """Entries no prompt may contain, as compared (generation/blocked_words.py folds them)."""
    spoiler: bool = False
    """Results are posted as spoilers."""
    spoiler_exempt_nsfw: bool = False
    """With `spoiler`: results in age-restricted channels are posted plainly."""
    mod_log: bool = False
    """Refused prompts are posted to the log channel."""
    chat: bool = True
    """Members may start jobs by mentioning the bot in a message (docs/admins.md)."""

    def channel_allowed(self, channel_id: int) -> bool:
        """Whether `/imagine` may run in this channel."""
        return not self.allowed_channel_ids or channel_id in self.allowed_channel_ids


_COLUMNS: Final = (
    "guild_id, max_n, cooldown_seconds, log_channel_id, models, default_model, language, spoiler, "
    "spoiler_exempt_nsfw, mod_log, chat"
)
MAX_BLOCKED_WORD_LENGTH: Final = 200


def _settings_from_row(row: Row, allowed: frozenset[int], blocked: frozenset[str]) -> GuildSettings:
    models = row["models"]
    return GuildSettings(
        row["guild_id"],
        allowed,
        row["max_n"],
        row["cooldown_seconds"],
        row["log_channel_id"],
        frozenset(models.split(",")) if models else None,
        row["default_model"],
        row["language"],
        blocked_words=blocked,
        spoiler=bool(row["spoiler"]),
        spoiler_exempt_nsfw=bool(row["spoiler_exempt_nsfw"]),
        mod_log=bool(row["mod_log"]),
        chat=bool(row["chat"]),
    )


class GuildSettingsRepository:
    """Reads and changes guild settings; every setter returns the guild's settings as now stored."""

    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def get(self, guild_id: int) -> GuildSettings:
        """The guild's settings (the defaults if it never changed any)."""
        row = await self._db.fetch_one(
            f"SELECT {_COLUMNS} FROM guild_settings WHERE guild_id = :guild_id", {"guild_id": guild_id}
        )
        channels = await self._db.fetch_all(
            "SELECT channel_id FROM guild_allowed_channels WHERE guild_id = :guild_id", {"guild_id": guild_id}
        )
        allowed = frozenset(int(channel["channel_id"]) for channel in channels)
        words = await self._db.fetch_all(
            "SELECT word FROM guild_blocked_words WHERE guild_id = :guild_id", {"guild_id": guild_id}
        )
        blocked = frozenset(str(word["word"]) for word in words)
        if row is None:
            return GuildSettings(guild_id, allowed, blocked_words=blocked)
        return _settings_from_row(row, allowed, blocked)

    async def all(self) -> dict[int, GuildSettings]:
        """Every guild that changed a setting, by id (others have the defaults)."""
        rows = await self._db.fetch_all(f"SELECT {_COLUMNS} FROM guild_settings")
        channel_rows = await self._db.fetch_all("SELECT guild_id, channel_id FROM guild_allowed_channels")
        word_rows = await self._db.fetch_all("SELECT guild_id, word FROM guild_blocked_words")
        channels: dict[int, set[int]] = {}
        for channel in channel_rows:
            channels.setdefault(channel["guild_id"], set()).add(channel["channel_id"])
        words: dict[int, set[str]] = {}
        for word in word_rows:
            words.setdefault(word["guild_id"], set()).add(str(word["word"]))
        settings = {
            row["guild_id"]: _settings_from_row(
                row, frozenset(channels.get(row["guild_id"], ())), frozenset(words.get(row["guild_id"], ()))
            )
            for row in rows
        }
        for guild_id in channels.keys() | words.keys():
            settings.setdefault(
                guild_id,
                GuildSettings(
                    guild_id,
                    frozenset(channels.get(guild_id, ())),
                    blocked_words=frozenset(words.get(guild_id, ())),
                ),
            )
        return settings

    async def add_allowed_channel(self, guild_id: int, channel_id: int) -> GuildSettings:
        """Allow `/imagine` in this channel (once a guild allows one channel, only those listed are allowed)."""
        await self._db.execute(
            """
            INSERT INTO guild_allowed_channels (guild_id, channel_id) VALUES (:guild_id, :channel_id)
            ON CONFLICT (guild_id, channel_id) DO NOTHING
            """,
            {"guild_id": guild_id, "channel_id": channel_id},
        )
        return await self.get(guild_id)

    async def remove_allowed_channel(self, guild_id: int, channel_id: int) -> GuildSettings:
        """Take the channel off the list (an empty list allows every channel again)."""
        await self._db.execute(
            "DELETE FROM guild_allowed_channels WHERE guild_id = :guild_id AND channel_id = :channel_id",
            {"guild_id": guild_id, "channel_id": channel_id},
        )
        return await self.get(guild_id)

    async def clear_allowed_channels(self, guild_id: int) -> GuildSettings:
        """Allow every channel again."""
        await self._db.execute("DELETE FROM guild_allowed_channels WHERE guild_id = :guild_id", {"guild_id": guild_id})
        return await self.get(guild_id)

    async def add_blocked_words(self, guild_id: int, words: Iterable[str]) -> GuildSettings:
        """Add entries to the guild's blocked words (an entry already there is kept once)."""
        listed = list(words)
        if any(not word or len(word) > MAX_BLOCKED_WORD_LENGTH for word in listed):
            raise ValueError(f"a blocked word has 1 to {MAX_BLOCKED_WORD_LENGTH} characters")
        entries = [{"guild_id": guild_id, "word": word} for word in listed]
        if entries:
            await self._db.execute_many(
                """
                INSERT INTO guild_blocked_words (guild_id, word) VALUES (:guild_id, :word)
                ON CONFLICT (guild_id, word) DO NOTHING
                """,
                entries,
            )
            log.info("guild %s: %s blocked word(s) added", guild_id, len(entries))
        return await self.get(guild_id)

    async def remove_blocked_words(self, guild_id: int, words: Iterable[str]) -> GuildSettings:
        """Take entries off the guild's blocked words (an entry not there is ignored)."""
        entries = [{"guild_id": guild_id, "word": word} for word in words]
        if entries:
            await self._db.execute_many(
                "DELETE FROM guild_blocked_words WHERE guild_id = :guild_id AND word = :word", entries
            )
        return await self.get(guild_id)

    async def set_spoiler(self, guild_id: int, spoiler: bool, *, exempt_nsfw: bool = False) -> GuildSettings:
        """Whether results are posted as spoilers, and whether age-restricted channels are exempt."""
        await self._db.execute(
            """
            INSERT INTO guild_settings (guild_id, spoiler, spoiler_exempt_nsfw, updated_at)
            VALUES (:guild_id, :spoiler, :exempt, :now)
            ON CONFLICT (guild_id) DO UPDATE SET spoiler = excluded.spoiler,
                spoiler_exempt_nsfw = excluded.spoiler_exempt_nsfw, updated_at = excluded.updated_at
            """,
            {
                "guild_id": guild_id,
                "spoiler": int(spoiler),
                "exempt": int(spoiler and exempt_nsfw),
                "now": to_epoch_ms(self._clock()),
            },
        )
        log.info("guild %s: spoiler set to %s (age-restricted channels exempt: %s)", guild_id, spoiler, exempt_nsfw)
        return await self.get(guild_id)

    async def set_mod_log(self, guild_id: int, on: bool) -> GuildSettings:
        """Whether refused prompts are posted to the guild's log channel."""
        return await self._set(guild_id, "mod_log", int(on))

    async def set_chat(self, guild_id: int, on: bool) -> GuildSettings:
        """Whether members may start jobs by mentioning the bot in this guild."""
        return await self._set(guild_id, "chat", int(on))

    async def set_max_n(self, guild_id: int, max_n: int) -> GuildSettings:
        """The most images one request may ask for in this guild (1-4)."""
        if max_n not in MAX_N_RANGE:
            raise ValueError(f"max_n must be between 1 and 4, not {max_n}")
        return await self._set(guild_id, "max_n", max_n)

    async def set_cooldown(self, guild_id: int, seconds: int) -> GuildSettings:
        """Seconds a member waits between two requests in this guild (0: none)."""
        if seconds < 0:
            raise ValueError(f"the cooldown cannot be negative ({seconds} s)")
        return await self._set(guild_id, "cooldown_seconds", seconds)

    async def set_log_channel(self, guild_id: int, channel_id: int | None) -> GuildSettings:
        """Where operator alerts for this guild go (`None`: nowhere)."""
        return await self._set(guild_id, "log_channel_id", channel_id)

    async def set_models(self, guild_id: int, models: frozenset[str] | None) -> GuildSettings:
        """The model ids this guild offers (`None`: every model the operator offers)."""
        if models is not None and not models:
            raise ValueError("a guild offers at least one model (None for all of the operator's)")
        return await self._set(guild_id, "models", None if models is None else ",".join(sorted(models)))

    async def set_default_model(self, guild_id: int, model: str | None) -> GuildSettings:
        """The model a request uses when it names none (`None`: the operator's default)."""
        return await self._set(guild_id, "default_model", model)

    async def set_language(self, guild_id: int, language: str | None) -> GuildSettings:
        """The locale of messages the whole channel sees (`None`: the server's preferred locale)."""
        return await self._set(guild_id, "language", language)

    async def claim_welcome(self, guild_id: int) -> bool:
        """Record that the guild is being welcomed; False if it was before. One statement: of several claims at
        once, exactly one gets True. (Not a setting: `updated_at` and the cached settings are left alone.)"""
        now = to_epoch_ms(self._clock())
        claimed = await self._db.execute(
            """
            INSERT INTO guild_settings (guild_id, welcomed_at, updated_at) VALUES (:guild_id, :now, :now)
            ON CONFLICT (guild_id) DO UPDATE SET welcomed_at = excluded.welcomed_at
            WHERE guild_settings.welcomed_at IS NULL
            """,
            {"guild_id": guild_id, "now": now},
        )
        return claimed > 0

    async def release_welcome(self, guild_id: int) -> None:
        """The welcome could not be posted: a later join may welcome the guild after all."""
        await self._db.execute(
            "UPDATE guild_settings SET welcomed_at = NULL WHERE guild_id = :guild_id", {"guild_id": guild_id}
        )

    async def _set(self, guild_id: int, column: str, value: int | str | None) -> GuildSettings:
        # `column` is one of this module's literals, never caller input.
        await self._db.execute(
            f"""
            INSERT INTO guild_settings (guild_id, {column}, updated_at) VALUES (:guild_id, :value, :now)
            ON CONFLICT (guild_id) DO UPDATE SET {column} = excluded.{column}, updated_at = excluded.updated_at
            """,
            {"guild_id": guild_id, "value": value, "now": to_epoch_ms(self._clock())},
        )
        log.info("guild %s: %s set to %s", guild_id, column, value)
        return await self.get(guild_id)

    async def synced_tree_hash(self, application_id: int, guild_id: int | None = None) -> str | None:
        """The hash of the commands last synced for this application in a scope (the global commands, or one
        server's), or `None` if never synced there."""
        value = await self._db.fetch_value(
            "SELECT tree_hash FROM command_syncs WHERE application_id = :application_id AND guild_id = :guild_id",
            {"application_id": application_id, "guild_id": _scope(guild_id)},
        )
        return None if value is None else str(value)

    async def record_sync(self, application_id: int, tree_hash: str, guild_id: int | None = None) -> None:
        """Remember that the commands with this hash were synced for this application in this scope."""
        await self._db.execute(
            """
            INSERT INTO command_syncs (application_id, guild_id, tree_hash, synced_at)
            VALUES (:application_id, :guild_id, :tree_hash, :now)
            ON CONFLICT (application_id, guild_id)
            DO UPDATE SET tree_hash = excluded.tree_hash, synced_at = excluded.synced_at
            """,
            {
                "application_id": application_id,
                "guild_id": _scope(guild_id),
                "tree_hash": tree_hash,
                "now": to_epoch_ms(self._clock()),
            },
        )

    async def synced_guilds(self, application_id: int) -> list[int]:
        """The servers this application has commands of its own synced in (by the record), in id order."""
        rows = await self._db.fetch_all(
            "SELECT guild_id FROM command_syncs WHERE application_id = :application_id AND guild_id <> 0 "
            "ORDER BY guild_id",
            {"application_id": application_id},
        )
        return [int(row["guild_id"]) for row in rows]

    async def forget_sync(self, application_id: int, guild_id: int) -> None:
        """The server's commands were removed: no record of them is kept."""
        await self._db.execute(
            "DELETE FROM command_syncs WHERE application_id = :application_id AND guild_id = :guild_id",
            {"application_id": application_id, "guild_id": _scope(guild_id)},
        )


def _scope(guild_id: int | None) -> int:
    # The global commands are kept under 0, which no Discord id is.
    return 0 if guild_id is None else guild_id

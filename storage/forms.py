"""Forms members opened and have not sent yet, kept with what answering them needs (docs/discord.md).

A form is answered whenever it is sent, before or after a restart, from this record alone: the bot may not be
able to read the message it was opened on again. Each record lives until `expires_at` (for "Imagine from
images", when the message's attachment URLs stop working), then it is purged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.clock import Clock, from_epoch_ms, to_epoch_ms, utc_now
from storage.database import Database


@dataclass(frozen=True)
class FormRecord:
    """A form: which kind, where and by whom it was opened, and its own data (JSON-able)."""

    id: str
    kind: str
    guild_id: int
    channel_id: int
    user_id: int
    payload: dict[str, Any]
    created_at: datetime
    expires_at: datetime


class FormRepository:
    """Saves, reads and purges form records."""

    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def save(
        self,
        form_id: str,
        *,
        kind: str,
        guild_id: int,
        channel_id: int,
        user_id: int,
        payload: dict[str, Any],
        expires_at: datetime,
    ) -> FormRecord:
        """Keep a form (replacing one with the same id)."""
        now = self._clock()
        await self._db.execute(
            """
            INSERT INTO forms (id, kind, guild_id, channel_id, user_id, payload, created_at, expires_at)
            VALUES (:id, :kind, :guild_id, :channel_id, :user_id, :payload, :created_at, :expires_at)
            ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, guild_id = excluded.guild_id,
                channel_id = excluded.channel_id, user_id = excluded.user_id, payload = excluded.payload,
                created_at = excluded.created_at, expires_at = excluded.expires_at
            """,
            {
                "id": form_id,
                "kind": kind,
                "guild_id": guild_id,
                "channel_id": channel_id,
                "user_id": user_id,
                "payload": json.dumps(payload, separators=(",", ":")),
                "created_at": to_epoch_ms(now),
                "expires_at": to_epoch_ms(expires_at),
            },
        )
        return FormRecord(form_id, kind, guild_id, channel_id, user_id, payload, now, expires_at)

    async def get(self, form_id: str) -> FormRecord | None:
        """The form, or None if there is none with this id (never saved, or purged)."""
        row = await self._db.fetch_one("SELECT * FROM forms WHERE id = :id", {"id": form_id})
        if row is None:
            return None
        return FormRecord(
            id=row["id"],
            kind=row["kind"],
            guild_id=row["guild_id"],
            channel_id=row["channel_id"],
            user_id=row["user_id"],
            payload=json.loads(row["payload"]),
            created_at=from_epoch_ms(row["created_at"]),
            expires_at=from_epoch_ms(row["expires_at"]),
        )

    async def purge_expired(self) -> int:
        """Delete the forms whose time is over; how many."""
        return await self._db.execute("DELETE FROM forms WHERE expires_at <= :now", {"now": to_epoch_ms(self._clock())})

"""Requests made in the conversation: one claim per source message, so that a message starts at most one job.

Discord may deliver a message twice (MESSAGE_CREATE again after a RESUME; two processes during a deploy), and a
member may edit it. The first delivery claims the message here (`claim`: one statement, so of several claims at
once exactly one wins); every later one finds the claim and does nothing. The claim then names the bot's reply
(`set_reply`), and the job it became (`attach_job`, in the job's own transaction), or records that the member
was answered without a job (`answered`). A claim left with neither, by a crash, is what the next start answers
(`unanswered`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.clock import Clock, from_epoch_ms, optional_from_epoch_ms, to_epoch_ms, utc_now
from storage.database import Database, Row


@dataclass(frozen=True)
class MessageRequest:
    """A claimed source message and what became of it."""

    source_message_id: int
    guild_id: int
    channel_id: int
    user_id: int
    reply_message_id: int | None
    job_id: str | None
    answered_at: datetime | None
    locale: str
    """The locale the channel is answered in (the server's)."""
    created_at: datetime


def _request_from_row(row: Row) -> MessageRequest:
    return MessageRequest(
        source_message_id=row["source_message_id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        user_id=row["user_id"],
        reply_message_id=row["reply_message_id"],
        job_id=row["job_id"],
        answered_at=optional_from_epoch_ms(row["answered_at"]),
        locale=row["locale"],
        created_at=from_epoch_ms(row["created_at"]),
    )


class MessageRequestRepository:
    """Claims source messages and records what became of them."""

    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def claim(self, source_message_id: int, *, guild_id: int, channel_id: int, user_id: int, locale: str) -> bool:
        """Claim the message: True the first time, False ever after (whoever claimed it, whenever)."""
        changed = await self._db.execute(
            """
            INSERT INTO message_requests (source_message_id, guild_id, channel_id, user_id, locale, created_at)
            VALUES (:source, :guild_id, :channel_id, :user_id, :locale, :now)
            ON CONFLICT (source_message_id) DO NOTHING
            """,
            {
                "source": source_message_id,
                "guild_id": guild_id,
                "channel_id": channel_id,
                "user_id": user_id,
                "locale": locale,
                "now": to_epoch_ms(self._clock()),
            },
        )
        return changed > 0

    async def get(self, source_message_id: int) -> MessageRequest | None:
        """The claim of this message, or None."""
        row = await self._db.fetch_one(
            "SELECT * FROM message_requests WHERE source_message_id = :source", {"source": source_message_id}
        )
        return None if row is None else _request_from_row(row)

    async def set_reply(self, source_message_id: int, reply_message_id: int) -> None:
        """The bot's reply to the message was posted: what its job edits, or what a restart answers in."""
        await self._db.execute(
            "UPDATE message_requests SET reply_message_id = :reply WHERE source_message_id = :source",
            {"reply": reply_message_id, "source": source_message_id},
        )

    async def attach_job(self, source_message_id: int, job_id: str) -> bool:
        """The message became this job (called in the transaction that creates the job); False, changing nothing,
        when its claim was answered meanwhile (another process's start-up answered a claim it took for a crash's)
        or names a job already: the message must then not become a job."""
        changed = await self._db.execute(
            """
            UPDATE message_requests SET job_id = :job_id
            WHERE source_message_id = :source AND job_id IS NULL AND answered_at IS NULL
            """,
            {"job_id": job_id, "source": source_message_id},
        )
        return changed > 0

    async def answered(self, source_message_id: int) -> None:
        """The member was answered without a job (a refusal, an error): nothing more is owed."""
        await self._db.execute(
            "UPDATE message_requests SET answered_at = :now WHERE source_message_id = :source AND answered_at IS NULL",
            {"now": to_epoch_ms(self._clock()), "source": source_message_id},
        )

    async def unanswered(self, *, since: datetime, before: datetime) -> list[MessageRequest]:
        """Claims made in `[since, before)` that became no job and were never answered, oldest first."""
        rows = await self._db.fetch_all(
            """
            SELECT * FROM message_requests
            WHERE created_at >= :since AND created_at < :before AND job_id IS NULL AND answered_at IS NULL
            ORDER BY created_at, source_message_id
            """,
            {"since": to_epoch_ms(since), "before": to_epoch_ms(before)},
        )
        return [_request_from_row(row) for row in rows]

    async def purge_older_than(self, cutoff: datetime) -> int:
        """Forget claims made before `cutoff` (Discord redelivers a message within minutes, not days)."""
        return await self._db.execute(
            "DELETE FROM message_requests WHERE created_at < :cutoff", {"cutoff": to_epoch_ms(cutoff)}
        )

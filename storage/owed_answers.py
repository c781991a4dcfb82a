"""Requests the bot acknowledged and has not answered yet (docs/guarantees.md, "Every acknowledged request").

A row is written right after a request's deferred reply, before anything else is done for it, with what
answering it later needs: the interaction's token, where and by whom it was asked, the prompt and options as
given (never the images). Admission deletes it in the job's own transaction (`take`); an answer deletes it too
(`settle`). What is left belongs to a process that stopped before answering: the start-up answers those, and
with several processes the one serving the server takes them once their owner stops renewing its claim.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from storage.clock import Clock, from_epoch_ms, optional_from_epoch_ms, to_epoch_ms, utc_now
from storage.database import Database, Row

# The owner of a row a process gave up because answering it failed there (not because it stopped).
RELEASED: Final = ""
# The owner of a row a stopped process left, whose answer failed once already: no process renews either.
LEFT: Final = "left"


@dataclass(frozen=True)
class OwedAnswer:
    """One acknowledged request, as answering it needs it."""

    interaction_id: int
    guild_id: int
    channel_id: int
    user_id: int
    application_id: int
    interaction_token: str = field(repr=False)
    token_expires_at: datetime
    reply_message_id: int | None
    prompt: str | None
    """None when the request names it only later (a button that repeats a stored job)."""
    options: dict[str, Any]
    locale: str
    """The locale of the deferred reply (public: the server's)."""
    channel_postable: bool
    member_locale: str | None = None
    """The member's own Discord locale (`interaction.locale`); None for a row written before it was kept. Read it
    through `private_locale`."""
    owner: str = ""
    created_at: datetime | None = None
    claim_expires_at: datetime | None = None
    """Until when `owner`'s claim runs unless renewed (None: not read from the database)."""

    @property
    def private_locale(self) -> str:
        """The locale of an answer the member alone reads (a private follow-up): theirs, else the reply's."""
        return self.member_locale or self.locale


def _from_row(row: Row) -> OwedAnswer:
    return OwedAnswer(
        interaction_id=row["interaction_id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        user_id=row["user_id"],
        application_id=row["application_id"],
        interaction_token=row["interaction_token"],
        token_expires_at=from_epoch_ms(row["token_expires_at"]),
        reply_message_id=row["reply_message_id"],
        prompt=row["prompt"],
        options=json.loads(row["options"]),
        locale=row["locale"],
        channel_postable=bool(row["channel_postable"]),
        member_locale=row["member_locale"],
        owner=row["owner"],
        created_at=optional_from_epoch_ms(row["created_at"]),
        claim_expires_at=optional_from_epoch_ms(row["lease_expires_at"]),
    )


class OwedAnswerRepository:
    """Writes, takes, claims and lists owed answers. Every write is one statement."""

    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def record(self, owed: OwedAnswer, *, owner: str, ttl_seconds: float) -> None:
        """Write the row (one INSERT on the hot path of every request): `owner` holds it for `ttl_seconds`."""
        now = to_epoch_ms(self._clock())
        await self._db.execute(
            """
            INSERT INTO owed_answers (interaction_id, guild_id, channel_id, user_id, application_id,
                                      interaction_token, token_expires_at, reply_message_id, prompt, options,
                                      locale, member_locale, channel_postable, owner, lease_expires_at, created_at)
            VALUES (:interaction_id, :guild_id, :channel_id, :user_id, :application_id, :token, :expires,
                    :reply_message_id, :prompt, :options, :locale, :member_locale, :postable, :owner, :lease, :now)
            """,
            {
                "interaction_id": owed.interaction_id,
                "guild_id": owed.guild_id,
                "channel_id": owed.channel_id,
                "user_id": owed.user_id,
                "application_id": owed.application_id,
                "token": owed.interaction_token,
                "expires": to_epoch_ms(owed.token_expires_at),
                "reply_message_id": owed.reply_message_id,
                "prompt": owed.prompt,
                "options": json.dumps(owed.options, separators=(",", ":")),
                "locale": owed.locale,
                "member_locale": owed.member_locale,
                "postable": int(owed.channel_postable),
                "owner": owner,
                "lease": now + _ms(ttl_seconds),
                "now": now,
            },
        )

    async def take(self, interaction_id: int, owner: str) -> bool:
        """Delete the row for admission (call it in the job's transaction): False when `owner` no longer holds
        it, because another process took it to answer (the request must then not become a job as well)."""
        taken = await self._db.execute(
            "DELETE FROM owed_answers WHERE interaction_id = :id AND owner = :owner",
            {"id": interaction_id, "owner": owner},
        )
        return taken > 0

    async def settle(self, interaction_id: int) -> None:
        """The request was answered: forget it."""
        await self._db.execute("DELETE FROM owed_answers WHERE interaction_id = :id", {"id": interaction_id})

    async def renew(self, owner: str, ttl_seconds: float) -> int:
        """Extend `owner`'s claims to `ttl_seconds` from now (one statement); how many."""
        return await self._db.execute(
            "UPDATE owed_answers SET lease_expires_at = :lease WHERE owner = :owner",
            {"owner": owner, "lease": to_epoch_ms(self._clock()) + _ms(ttl_seconds)},
        )

    async def orphans(self, owner: str, *, expired_only: bool) -> list[OwedAnswer]:
        """The rows another process left: every one not `owner`'s, or (`expired_only`, when processes share the
        database) only those whose claim ran out. Oldest first."""
        if expired_only:
            rows = await self._db.fetch_all(
                """
                SELECT * FROM owed_answers WHERE owner <> :owner AND lease_expires_at <= :now
                ORDER BY created_at, interaction_id
                """,
                {"owner": owner, "now": to_epoch_ms(self._clock())},
            )
        else:
            rows = await self._db.fetch_all(
                "SELECT * FROM owed_answers WHERE owner <> :owner ORDER BY created_at, interaction_id",
                {"owner": owner},
            )
        return [_from_row(row) for row in rows]

    async def claim(self, owed: OwedAnswer, owner: str, ttl_seconds: float) -> bool:
        """Take a row another process left, if it still holds it as `owed` was read: of processes claiming at
        once, exactly one gets it."""
        claimed = await self._db.execute(
            """
            UPDATE owed_answers SET owner = :owner, lease_expires_at = :lease
            WHERE interaction_id = :id AND owner = :previous
            """,
            {
                "id": owed.interaction_id,
                "owner": owner,
                "previous": owed.owner,
                "lease": to_epoch_ms(self._clock()) + _ms(ttl_seconds),
            },
        )
        return claimed > 0

    async def release(self, interaction_id: int, owner: str, *, to: str = RELEASED) -> bool:
        """Give a claimed row up (answering it failed): any process's next sweep takes it. `to` says why: the
        process that acknowledged the request could not answer it (`RELEASED`), or a stopped process left it
        (`LEFT`)."""
        released = await self._db.execute(
            """
            UPDATE owed_answers SET owner = :released, lease_expires_at = 0
            WHERE interaction_id = :id AND owner = :owner
            """,
            {"id": interaction_id, "owner": owner, "released": to},
        )
        return released > 0

    async def count(self) -> int:
        """How many rows there are (for tests and the operator's status)."""
        row = await self._db.fetch_one("SELECT COUNT(*) AS n FROM owed_answers")
        return int(row["n"]) if row is not None else 0


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))

"""The claims of messages that ask for images, for the cogs (which never reach storage themselves).

Each source message is claimed once (storage/message_requests.py): a message delivered twice, edited, or seen by
two processes starts one job at most. What the start-up owes: claims a crash left with neither a job nor an
answer (docs/guarantees.md, "Every request in the conversation is answered").
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from storage.message_requests import MessageRequest
from storage.store import Storage

OWED_FOR: Final = timedelta(days=1)
"""How far back the start-up answers claims left unanswered: a member's question older than this is stale."""


class MessageRequestBook:
    """Claims source messages and answers for them."""

    def __init__(self, store: Storage) -> None:
        self._store = store

    async def claim(self, source_message_id: int, *, guild_id: int, channel_id: int, user_id: int, locale: str) -> bool:
        """True the first time this message is claimed (go on), False ever after (it was handled, or is being)."""
        return await self._store.message_requests.claim(
            source_message_id, guild_id=guild_id, channel_id=channel_id, user_id=user_id, locale=locale
        )

    async def set_reply(self, source_message_id: int, reply_message_id: int) -> None:
        """The bot's reply was posted: the job will edit it, and a restart would answer in it."""
        await self._store.message_requests.set_reply(source_message_id, reply_message_id)

    async def answered(self, source_message_id: int) -> None:
        """The member was answered without a job: nothing more is owed."""
        await self._store.message_requests.answered(source_message_id)

    async def owed(self, *, before: datetime) -> list[MessageRequest]:
        """Claims made before `before` (and within `OWED_FOR`) that became no job and were never answered."""
        return await self._store.message_requests.unanswered(since=before - OWED_FOR, before=before)

    def now(self) -> datetime:
        """The store's clock."""
        return self._store.clock()

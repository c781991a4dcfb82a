"""Forms members opened and may send at any time, before or after a restart: one record each, one lifetime.

discord.py forgets a form at a restart, and the bot cannot read another member's message again (the Message
Content rule), so a form is answered from its record alone, whichever process receives it, until the record's
`expires_at`; then the member is told to open it again. The cogs reach the records through this service.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any, Final

from storage.forms import FormRecord
from storage.store import Storage

# A member may send a form within milliseconds of its opening: its record, written right after the form is
# shown, is looked for a little while before the form counts as unknown.
_FIND_TRIES: Final = 10
_FIND_PAUSE: Final = 0.1


class FormBook:
    """Opens, finds and tidies up form records."""

    def __init__(self, store: Storage) -> None:
        self._store = store

    @staticmethod
    def new_id() -> str:
        """A form's id: random, so a custom id never names a message, a member or a job."""
        return uuid.uuid4().hex

    async def open(
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
        """Keep a form that was just shown."""
        return await self._store.forms.save(
            form_id,
            kind=kind,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            payload=payload,
            expires_at=expires_at,
        )

    async def find(self, form_id: str) -> FormRecord | None:
        """The form, waiting briefly for a record written at the same moment; None if it is unknown or over."""
        for attempt in range(_FIND_TRIES):
            record = await self._store.forms.get(form_id)
            if record is not None:
                return record if record.expires_at > self._store.clock() else None
            if attempt + 1 < _FIND_TRIES:
                await asyncio.sleep(_FIND_PAUSE)
        return None

    async def purge_expired(self) -> int:
        """Delete the records whose time is over."""
        return await self._store.forms.purge_expired()

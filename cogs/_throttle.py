"""Show the latest state of something, editing at most once per interval.

Progress arrives faster than Discord lets one message be edited. States that arrive between two edits are
coalesced: only the newest is shown, and it is always shown eventually.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

S = TypeVar("S")


class CoalescingEditor(Generic[S]):
    def __init__(self, edit: Callable[[S], Awaitable[None]], *, interval: float) -> None:
        self._edit = edit
        self._interval = interval
        self._latest: S | None = None
        self._has_new = False
        self._last_edit_at: float | None = None
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self.edits = 0

    def update(self, state: S) -> None:
        """Record `state` as the one to show; never waits."""
        if self._closed:
            return
        self._latest = state
        self._has_new = True
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="coalescing-editor")

    async def flush(self) -> None:
        """Wait until the latest state has been shown (or its edit failed)."""
        while self._worker is not None and not self._worker.done():
            await asyncio.shield(self._worker)

    async def close(self) -> None:
        """Stop editing: a pending state is dropped (the caller is about to replace the message)."""
        self._closed = True
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._has_new and not self._closed:
            if self._last_edit_at is not None:
                wait = self._last_edit_at + self._interval - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            state = self._latest
            self._has_new = False
            assert state is not None
            try:
                await self._edit(state)
                self.edits += 1
            except Exception:
                # A failed progress edit is cosmetic: the next state (or the result) replaces it.
                log.warning("Progress edit failed", exc_info=True)
            finally:
                # Counted from the end of an edit, so that two edits never reach Discord closer than the
                # interval, however long each one takes on the way.
                self._last_edit_at = loop.time()

"""Requests still waiting for their first answer go before the work that follows other requests' answers.

When many requests arrive together (a burst of /imagine), each one's first answer (the defer, or a refusal) is a
little CPU and one request to Discord; what follows it, admitting the job (the quota, the job's transaction,
the submit upstream, its first progress edit), is more. On one event loop, the admissions of the requests
answered first would run between the answers of the others and hold them back: the member who is last in the
burst would wait for everyone's admission before hearing from the bot. So an admission first waits until no
request is waiting for its first answer (docs/architecture.md, "Answering an interaction"), for `WAIT` at most,
so that a steady stream of requests never holds admissions up for long.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Final

# Longest an admission waits for other requests' first answers: a burst of 200 is answered within this.
WAIT: Final = 0.25


class FirstAnswers:
    """Counts the requests between their arrival and their first answer; `settled` waits until there are none."""

    def __init__(self, wait: float = WAIT) -> None:
        self._wait = wait
        self._pending = 0
        self._none_pending = asyncio.Event()
        self._none_pending.set()

    @property
    def pending(self) -> int:
        return self._pending

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """While the current request has not had its first answer (however that ends)."""
        self._pending += 1
        self._none_pending.clear()
        try:
            yield
        finally:
            self._pending -= 1
            if not self._pending:
                self._none_pending.set()

    async def settled(self) -> None:
        """Return once no request waits for its first answer, or after the wait's limit."""
        if not self._pending:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._wait):
                await self._none_pending.wait()

"""Every acknowledged request gets an answer, even when the bot stops before taking it (docs/guarantees.md).

The intake records a request right after its deferred reply (`record`) and forgets it once it has answered
(`settle`); admission takes the record in the job's own transaction (`Pipeline.submit`). So a request is, at
every moment, exactly one of: owed an answer (a record), a job, or answered. What a stopped process left is
answered here, through an `Answerer` (Discord's side, cogs/_owed.py): at start-up, before new work is taken
(every record of this process's shards, whatever its claim), and, with several processes on one database, by
the process serving the server once the record's owner has stopped renewing its claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Callable
from typing import Final, Protocol

from generation.config import PipelineConfig
from generation.process_identity import stopped_here
from storage.owed_answers import LEFT, RELEASED, OwedAnswer
from storage.store import Storage

log = logging.getLogger(__name__)

UNSHARED_TTL: Final = 3600.0
"""The claim written with a record when one process is the database's only user: never looked at (every
record a start-up finds is a previous run's), but the column wants a value."""
ANSWERING_AT_ONCE: Final = 4
"""Records answered concurrently (each is one or two Discord requests)."""
RETRY_INTERVAL: Final = 60.0
"""With one process: how often records Discord could not take at start-up are tried again."""


class Outcome(enum.Enum):
    """What answering one record came to."""

    ANSWERED = "answered"
    GONE = "gone"
    """Nowhere left to answer: the token is dead and no channel takes the bot's message. The record is dropped
    (logged)."""
    RETRY = "retry"
    """Discord could not be reached: the record stays, for the next sweep or start."""


class Answerer(Protocol):
    async def __call__(self, owed: OwedAnswer) -> Outcome:
        """Tell the member that the bot stopped before it could take their request (nothing was counted)."""
        ...


class OwedAnswers:
    """Records of acknowledged requests, and answering those a stopped process left."""

    def __init__(self, store: Storage, config: PipelineConfig) -> None:
        self._repository = store.owed_answers
        self._owner = config.owner
        self._ttl = config.lease_ttl
        self._owns_guild: Callable[[int], bool] = config.owns_guild
        self._clock = store.clock

    @property
    def owner(self) -> str:
        """This process, as the holder of the records it writes."""
        return self._owner

    async def record(self, owed: OwedAnswer) -> bool:
        """Write the record; False (logged) when the database refused: the request goes on unprotected rather
        than be refused for it."""
        try:
            await self._repository.record(owed, owner=self._owner, ttl_seconds=self._ttl or UNSHARED_TTL)
        except Exception:
            log.exception("Could not record the request of interaction %s", owed.interaction_id)
            return False
        return True

    async def settle(self, interaction_id: int) -> None:
        """The member has been answered: forget the request (a failure is logged; the next start answers it
        again, which edits the same reply)."""
        try:
            await self._repository.settle(interaction_id)
        except Exception:
            log.exception("Could not forget the answered request of interaction %s", interaction_id)

    async def release(self, interaction_id: int) -> None:
        """Answering the request failed here: let go of its record, so that the next sweep (of any process, this
        one included) answers it (a failure is logged; the next start answers it then)."""
        try:
            await self._repository.release(interaction_id, self._owner)
        except Exception:
            log.exception("Could not let go of the request of interaction %s", interaction_id)

    async def answer_left_over(self, answer: Answerer, *, at_start: bool = False) -> int:
        """Answer what stopped processes left, for this process's servers; how many were answered.

        `at_start`: also the records of a process of this host that has stopped (a restart, a crash), however
        long its claim still runs: waiting for it to run out (up to a lease and a sweep) would only keep its
        members waiting. A claim of a process elsewhere (one still running during a deploy's overlap, say) is
        taken only once it has run out, by this sweep or a later one (a live process keeps renewing its own).
        """
        shared = self._ttl is not None
        left = await self._repository.orphans(self._owner, expired_only=shared and not at_start)
        if shared and at_start:
            now = self._clock()
            left = [
                owed
                for owed in left
                if stopped_here(owed.owner) or owed.claim_expires_at is None or owed.claim_expires_at <= now
            ]
        mine = [owed for owed in left if self._owns_guild(owed.guild_id)]
        if not mine:
            return 0
        slots = asyncio.Semaphore(ANSWERING_AT_ONCE)

        async def one(owed: OwedAnswer) -> bool:
            async with slots:
                return await self._answer_one(owed, answer)

        answered = sum(await asyncio.gather(*(one(owed) for owed in mine)))
        log.info("Answered %d request(s) a stopped process had acknowledged but not taken", answered)
        return answered

    async def _answer_one(self, owed: OwedAnswer, answer: Answerer) -> bool:
        if not await self._repository.claim(owed, self._owner, self._ttl or UNSHARED_TTL):
            return False  # another process took it
        try:
            outcome = await answer(owed)
        except Exception:
            log.exception("Could not answer the request of interaction %s; trying again later", owed.interaction_id)
            outcome = Outcome.RETRY
        if outcome is Outcome.RETRY:
            # Left for the next sweep, by whichever process: not held by this one.
            with contextlib.suppress(Exception):
                # Still what it was: a request its own process could not answer, or one a stopped process left.
                to = RELEASED if owed.owner == RELEASED else LEFT
                await self._repository.release(owed.interaction_id, self._owner, to=to)
            return False
        if outcome is Outcome.GONE:
            log.warning(
                "Dropped the unanswered request of interaction %s (member %s, channel %s): nowhere to answer it",
                owed.interaction_id,
                owed.user_id,
                owed.channel_id,
            )
        await self.settle(owed.interaction_id)
        return outcome is Outcome.ANSWERED

    async def keep(self, answer: Answerer) -> None:
        """Until cancelled: renew this process's claims (processes sharing the database) and answer what others
        left, or what Discord could not take before."""
        while True:
            await asyncio.sleep(self._ttl / 3 if self._ttl is not None else RETRY_INTERVAL)
            try:
                if self._ttl is not None:
                    await self._repository.renew(self._owner, self._ttl)
                await self.answer_left_over(answer)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Answering requests other processes left failed; trying again")

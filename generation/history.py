"""Jobs as members find them again: by a short reference, a member's latest ones, and the job behind a result's
buttons with what it needs to be repeated.

A reference is the start of a job's id: its first 8 characters, or more when an older job of the same server
starts with the same ones (as many as tell it apart from every such job). Only older jobs decide it, so a job's
reference never changes once it is shown, and the oldest job of a server whose id starts with a reference is
the one it was given to (docs/members.md, "Finding a job again").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from generation.refusals import JobReferenceInvalid, ParentUnknown, ReferencesExpired
from generation.requests import Reference
from storage.jobs import Job
from storage.kept_results import KeptResult
from storage.store import Storage

REFERENCE_LENGTH: Final = 8
"""The characters of a job id a reference has at least."""
_ID_LENGTH: Final = 32
_HEX: Final = frozenset("0123456789abcdef")


def parse_reference(text: str) -> str:
    """What a member typed as a reference, as the start of a job id (lowercase hex, 8 to 32 characters), or
    `JobReferenceInvalid`. No I/O."""
    cleaned = text.strip().lower()
    if not REFERENCE_LENGTH <= len(cleaned) <= _ID_LENGTH or not set(cleaned) <= _HEX:
        raise JobReferenceInvalid(text.strip())
    return cleaned


def _shared(one: str, other: str) -> int:
    """How many leading characters two ids share."""
    pairs = enumerate(zip(one, other, strict=False))
    return next((index for index, (a, b) in pairs if a != b), min(len(one), len(other)))


@dataclass(frozen=True)
class FoundJob:
    """A job and its reference."""

    job: Job
    reference: str


class JobHistory:
    """Reads stored jobs for the cogs (which never reach storage themselves)."""

    def __init__(self, store: Storage, *, retention_days: int) -> None:
        self._store = store
        self._retention_days = retention_days

    async def get(self, job_id: str) -> Job | None:
        """The job, or None if there is none with this id."""
        return await self._store.jobs.get(job_id)

    async def parent(self, job_id: str, action: str, *, guild_id: int | None) -> Job:
        """The job a result's button repeats, in the server where the button was clicked; `ParentUnknown`
        (naming the `action`) when it is not known there. A job of another server is never repeated: its prompt
        and references are that server's."""
        parent = await self._store.jobs.get(job_id)
        if parent is None or parent.guild_id != guild_id:
            raise ParentUnknown(action)
        return parent

    async def references(self, job: Job, *, action: str = "re-rolled") -> tuple[Reference, ...]:
        """The job's reference images as stored for a re-roll or a remix; `ReferencesExpired` (naming the
        `action`) once they were deleted."""
        stored = await self._store.references.load(job.id)
        if len(stored) != job.reference_count:
            raise ReferencesExpired(self._retention_days, action)
        return tuple(Reference(image.data, image.mime_type) for image in stored)

    async def results_deleted(self, message_ids: Iterable[int]) -> int:
        """Messages deleted in a server: the jobs whose result one of them was no longer link to it (/history) nor
        fetch it (/show); how many such jobs."""
        return await self._store.jobs.note_results_deleted(message_ids)

    async def kept_results(self, job: Job) -> list[KeptResult]:
        """The results of a job nobody could receive, kept for its member (empty once purged, or if none)."""
        return await self._store.kept_results.load(job.id)

    # -- finding a job again ---------------------------------------------------------------------------------

    async def reference(self, job: Job) -> str:
        """The job's short reference within its server (see the module's docstring)."""
        older = await self._store.jobs.older_ids_with_prefix(job, job.id[:REFERENCE_LENGTH])
        length = max([REFERENCE_LENGTH, *(_shared(job.id, other) + 1 for other in older)])
        return job.id[:length]

    async def find(self, guild_id: int, reference: str) -> Job | None:
        """The job of this server that a parsed reference (or any longer start of its id) names, or None. Never a
        job of another server."""
        return await self._store.jobs.oldest_with_prefix(guild_id, reference)

    async def recent(self, guild_id: int, user_id: int, *, limit: int) -> list[Job]:
        """The member's latest `limit` jobs in this server, newest first."""
        return await self._store.jobs.recent_of_member(guild_id, user_id, limit=limit)

    async def with_references(self, jobs: list[Job]) -> list[FoundJob]:
        """Each job with its reference, in the same order."""
        return [FoundJob(job, await self.reference(job)) for job in jobs]

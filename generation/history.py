"""Jobs as members find them again: a result's job behind its buttons, and what it needs to be repeated."""

from __future__ import annotations

from generation.refusals import ParentUnknown, ReferencesExpired
from generation.requests import Reference
from storage.jobs import Job
from storage.store import Storage


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

    async def references(self, job: Job) -> tuple[Reference, ...]:
        """The job's reference images as stored for a re-roll; `ReferencesExpired` once they were deleted."""
        stored = await self._store.references.load(job.id)
        if len(stored) != job.reference_count:
            raise ReferencesExpired(self._retention_days)
        return tuple(Reference(image.data, image.mime_type) for image in stored)

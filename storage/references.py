"""Reference images kept for Re-roll: the bytes live in the database, content-addressed by SHA-256.

A job links to its references in order; a re-roll copies the links, not the bytes. After `RETENTION_DAYS`
the links are purged, and bytes no job links to any more go with them: a purged job's references are gone.
Every change takes the `references` lock (`Database.lock`), so a purge never deletes bytes that a save in
another process is linking at the same moment.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from storage.clock import Clock, to_epoch_ms, utc_now
from storage.database import Database

log = logging.getLogger(__name__)

_LOCK: Final = "references"


@dataclass(frozen=True)
class StoredImage:
    """A reference image: its bytes (not shown in a repr), MIME type and SHA-256 (hex)."""

    data: bytes = field(repr=False)
    mime_type: str
    sha256: str


class ReferenceStore:
    """Saves, loads, copies and purges the reference images of jobs."""

    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def save(self, job_id: str, images: Sequence[tuple[bytes, str]]) -> list[StoredImage]:
        """Keep `images` (bytes, MIME type), in order, as the job's references, replacing any it had."""
        for data, mime_type in images:
            if not data:
                raise ValueError("a reference image cannot be empty")
            if not mime_type:
                raise ValueError("a reference image needs a MIME type")
        # Hashing up to 40 MB takes tens of milliseconds: not on the event loop.
        digests = await asyncio.to_thread(lambda: [hashlib.sha256(data).hexdigest() for data, _ in images])
        stored = [
            StoredImage(data, mime_type, digest) for (data, mime_type), digest in zip(images, digests, strict=True)
        ]
        now = to_epoch_ms(self._clock())
        async with self._db.transaction():
            await self._db.lock(_LOCK)
            replaced = await self._unlink(job_id)
            for position, image in enumerate(stored):
                await self._db.execute(
                    """
                    INSERT INTO reference_blobs (sha256, data, byte_size, created_at)
                    VALUES (:sha256, :data, :byte_size, :now)
                    ON CONFLICT (sha256) DO NOTHING
                    """,
                    {"sha256": image.sha256, "data": image.data, "byte_size": len(image.data), "now": now},
                )
                await self._db.execute(
                    """
                    INSERT INTO job_references (job_id, position, sha256, mime_type, created_at)
                    VALUES (:job_id, :position, :sha256, :mime_type, :now)
                    """,
                    {
                        "job_id": job_id,
                        "position": position,
                        "sha256": image.sha256,
                        "mime_type": image.mime_type,
                        "now": now,
                    },
                )
            await self._delete_orphans(replaced)
        return stored

    async def load(self, job_id: str) -> list[StoredImage]:
        """The job's references in the order they were saved (empty if none, or purged)."""
        rows = await self._db.fetch_all(
            """
            SELECT blob.data, ref.mime_type, ref.sha256
            FROM job_references AS ref JOIN reference_blobs AS blob ON blob.sha256 = ref.sha256
            WHERE ref.job_id = :job_id
            ORDER BY ref.position
            """,
            {"job_id": job_id},
        )
        return [StoredImage(bytes(row["data"]), row["mime_type"], row["sha256"]) for row in rows]

    async def copy(self, from_job_id: str, to_job_id: str) -> int:
        """Give `to_job_id` the references of `from_job_id` (replacing its own), sharing the bytes.

        The copies are dated now, so a re-roll keeps its references for a full retention period. Returns how
        many were copied.
        """
        async with self._db.transaction():
            await self._db.lock(_LOCK)
            replaced = await self._unlink(to_job_id)
            copied = await self._db.execute(
                """
                INSERT INTO job_references (job_id, position, sha256, mime_type, created_at)
                SELECT :to_job_id, position, sha256, mime_type, CAST(:now AS BIGINT)
                FROM job_references WHERE job_id = :from_job_id
                """,
                {"from_job_id": from_job_id, "to_job_id": to_job_id, "now": to_epoch_ms(self._clock())},
            )
            await self._delete_orphans(replaced)
        return copied

    async def purge_older_than(self, cutoff: datetime) -> int:
        """Delete references saved before `cutoff`, and bytes no job uses any more; returns the jobs affected."""
        async with self._db.transaction(bulk=True):
            await self._db.lock(_LOCK)
            links = await self._db.fetch_all(
                "DELETE FROM job_references WHERE created_at < :cutoff RETURNING job_id, sha256",
                {"cutoff": to_epoch_ms(cutoff)},
            )
            blobs = await self._delete_orphans({row["sha256"] for row in links})
        purged = len({row["job_id"] for row in links})
        if purged:
            log.info("purged the reference images of %s jobs (%s distinct images)", purged, blobs)
        return purged

    async def _unlink(self, job_id: str) -> set[str]:
        """Remove the job's links; returns the hashes they pointed to (candidates for `_delete_orphans`)."""
        rows = await self._db.fetch_all(
            "DELETE FROM job_references WHERE job_id = :job_id RETURNING sha256", {"job_id": job_id}
        )
        return {row["sha256"] for row in rows}

    async def _delete_orphans(self, candidates: set[str] | None = None) -> int:
        """Delete bytes no job links to: among `candidates`, or all of them (a scan) when `None`."""
        orphan = "NOT EXISTS (SELECT 1 FROM job_references AS ref WHERE ref.sha256 = reference_blobs.sha256)"
        if candidates is None:
            return await self._db.execute(f"DELETE FROM reference_blobs WHERE {orphan}")
        deleted = 0
        for sha256 in sorted(candidates):
            deleted += await self._db.execute(
                f"DELETE FROM reference_blobs WHERE sha256 = :sha256 AND {orphan}", {"sha256": sha256}
            )
        return deleted

"""The job history the cogs read: a result's job behind its buttons, and its stored references."""

from __future__ import annotations

from pathlib import Path

import pytest

from generation.history import JobHistory
from generation.refusals import ParentUnknown, ReferencesExpired
from storage.jobs import JobKind
from storage.store import Storage
from tests.generation.conftest import png_bytes


async def test_a_parent_job_is_found_only_in_its_own_server(tmp_path: Path) -> None:
    async with await Storage.open(f"sqlite:///{tmp_path / 'imagine.db'}") as store:
        job = await store.jobs.create(
            guild_id=1,
            channel_id=10,
            user_id=100,
            kind=JobKind.IMAGINE,
            prompt="a cat",
            size="1024x1024",
            n=1,
            model="gpt-image-2",
            reference_count=1,
        )
        await store.references.save(job.id, [(png_bytes(), "image/png")])
        history = JobHistory(store, retention_days=30)

        assert (await history.parent(job.id, "re-rolled", guild_id=1)).id == job.id
        # A job of another server is never repeated there: its prompt and references are that server's.
        with pytest.raises(ParentUnknown) as elsewhere:
            await history.parent(job.id, "re-rolled", guild_id=2)
        assert elsewhere.value.action == "re-rolled"
        with pytest.raises(ParentUnknown):
            await history.parent("0" * 32, "varied", guild_id=1)

        (reference,) = await history.references(job)
        assert reference.mime_type == "image/png"
        await store.references.purge_older_than(store.clock())
        with pytest.raises(ReferencesExpired) as expired:
            await history.references(job)
        assert expired.value.retention_days == 30

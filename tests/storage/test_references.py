"""Reference images: saved in order, content-addressed, copied for a re-roll, purged after the retention."""

from __future__ import annotations

from datetime import timedelta

import pytest

from storage.database import Database
from storage.errors import ConstraintViolationError
from storage.jobs import JobRepository
from storage.references import ReferenceStore
from tests.storage.conftest import FakeClock

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
JPEG = b"\xff\xd8\xff\xe0" + b"jpeg bytes" * 500
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00\x01" * 300


@pytest.fixture
def store(db: Database, clock: FakeClock) -> ReferenceStore:
    return ReferenceStore(db, clock)


async def new_job(db: Database, clock: FakeClock) -> str:
    job = await JobRepository(db, clock).create(
        guild_id=1, channel_id=2, user_id=3, kind="imagine", prompt="p", n=1, model="m"
    )
    return job.id


async def blob_count(db: Database) -> int:
    return int(await db.fetch_value("SELECT COUNT(*) FROM reference_blobs"))


async def test_references_round_trip_in_order(db: Database, store: ReferenceStore, clock: FakeClock) -> None:
    job = await new_job(db, clock)
    saved = await store.save(job, [(JPEG, "image/jpeg"), (PNG, "image/png"), (WEBP, "image/webp")])
    loaded = await store.load(job)
    assert loaded == saved
    assert [(image.data, image.mime_type) for image in loaded] == [
        (JPEG, "image/jpeg"),
        (PNG, "image/png"),
        (WEBP, "image/webp"),
    ]
    assert len(loaded[0].sha256) == 64
    assert "jpeg bytes" not in repr(loaded[0])
    assert await store.load("unknown job") == []


async def test_the_same_bytes_are_stored_once(db: Database, store: ReferenceStore, clock: FakeClock) -> None:
    first, second = await new_job(db, clock), await new_job(db, clock)
    await store.save(first, [(PNG, "image/png"), (PNG, "image/png")])
    await store.save(second, [(PNG, "image/png"), (JPEG, "image/jpeg")])
    assert await blob_count(db) == 2
    assert [image.data for image in await store.load(first)] == [PNG, PNG]


async def test_saving_again_replaces_and_drops_unused_bytes(
    db: Database, store: ReferenceStore, clock: FakeClock
) -> None:
    job = await new_job(db, clock)
    await store.save(job, [(PNG, "image/png"), (JPEG, "image/jpeg")])
    await store.save(job, [(WEBP, "image/webp")])
    assert [image.data for image in await store.load(job)] == [WEBP]
    assert await blob_count(db) == 1


async def test_copy_shares_the_bytes_with_a_reroll(db: Database, store: ReferenceStore, clock: FakeClock) -> None:
    original, reroll = await new_job(db, clock), await new_job(db, clock)
    await store.save(original, [(PNG, "image/png"), (JPEG, "image/jpeg")])
    assert await store.copy(original, reroll) == 2
    assert await store.load(reroll) == await store.load(original)
    assert await blob_count(db) == 2
    assert await store.copy("job without references", reroll) == 0
    assert await store.load(reroll) == []
    assert await blob_count(db) == 2  # still used by the original


async def test_purge_deletes_old_references_and_their_bytes(
    db: Database, store: ReferenceStore, clock: FakeClock
) -> None:
    old, recent = await new_job(db, clock), await new_job(db, clock)
    await store.save(old, [(PNG, "image/png"), (JPEG, "image/jpeg")])
    clock.advance(days=20)
    await store.save(recent, [(JPEG, "image/jpeg")])
    clock.advance(days=15)  # old: 35 days, recent: 15 days
    assert await store.purge_older_than(clock.now - timedelta(days=30)) == 1
    assert await store.load(old) == []
    assert [image.data for image in await store.load(recent)] == [JPEG]
    assert await blob_count(db) == 1  # the PNG went, the JPEG stays for the recent job
    assert await store.purge_older_than(clock.now - timedelta(days=30)) == 0


async def test_a_reroll_keeps_its_copy_after_the_original_is_purged(
    db: Database, store: ReferenceStore, clock: FakeClock
) -> None:
    original = await new_job(db, clock)
    await store.save(original, [(PNG, "image/png")])
    clock.advance(days=25)
    reroll = await new_job(db, clock)
    await store.copy(original, reroll)
    clock.advance(days=10)
    assert await store.purge_older_than(clock.now - timedelta(days=30)) == 1
    assert await store.load(original) == []
    assert [image.data for image in await store.load(reroll)] == [PNG]


async def test_bad_references_are_refused(db: Database, store: ReferenceStore, clock: FakeClock) -> None:
    job = await new_job(db, clock)
    with pytest.raises(ValueError, match="empty"):
        await store.save(job, [(PNG, "image/png"), (b"", "image/png")])
    with pytest.raises(ValueError, match="MIME"):
        await store.save(job, [(PNG, "")])
    with pytest.raises(ConstraintViolationError):
        await store.save("no such job", [(PNG, "image/png")])
    assert await store.load(job) == []
    assert await blob_count(db) == 0

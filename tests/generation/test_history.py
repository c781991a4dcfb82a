"""The job history the cogs read: a result's job behind its buttons, its stored references, and the short
references members find jobs by."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from generation.history import JobHistory, parse_reference
from generation.refusals import JobReferenceInvalid, ParentUnknown, ReferencesExpired
from storage.jobs import Job, JobKind
from storage.store import Storage
from tests.generation.conftest import png_bytes


class StepClock:
    """A clock one second further on at every reading: each job is older than the next one."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


async def test_a_parent_job_is_found_only_in_its_own_server(tmp_path: Path) -> None:
    async with await Storage.open(f"sqlite:///{tmp_path / 'imagine.db'}") as store:
        job = await store.jobs.create(
            guild_id=1,
            channel_id=10,
            user_id=100,
            kind=JobKind.IMAGINE,
            prompt="a cat",
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
        # Saved before the cutoff even when saved within the same millisecond (times are stored in ms).
        await store.references.purge_older_than(store.clock() + timedelta(milliseconds=1))
        with pytest.raises(ReferencesExpired) as expired:
            await history.references(job)
        assert expired.value.retention_days == 30


async def job_with_id(store: Storage, job_id: str, *, guild_id: int = 1, user_id: int = 100) -> Job:
    return await store.jobs.create(
        guild_id=guild_id,
        channel_id=10,
        user_id=user_id,
        kind=JobKind.IMAGINE,
        prompt=f"job {job_id}",
        n=1,
        model="gpt-image-2",
        job_id=job_id,
    )


async def found_id(history: JobHistory, guild_id: int, reference: str) -> str | None:
    found = await history.find(guild_id, reference)
    return None if found is None else found.id


async def test_a_reference_is_8_characters_longer_only_against_older_jobs_of_the_server(tmp_path: Path) -> None:
    clock = StepClock()
    async with await Storage.open(f"sqlite:///{tmp_path / 'imagine.db'}", clock=clock) as store:
        history = JobHistory(store, retention_days=30)
        first = await job_with_id(store, "3f2a9c1b" + "0" * 24)
        other_server = await job_with_id(store, "3f2a9c1b" + "0" * 23 + "1", guild_id=2)
        second = await job_with_id(store, "3f2a9c1b7" + "0" * 23)
        third = await job_with_id(store, "3f2a9c1b7d" + "0" * 22)
        lone = await job_with_id(store, "99999999" + "0" * 24)

        references = [await history.reference(job) for job in (first, other_server, second, third, lone)]

        # The first keeps its 8 characters for good (a later job never changes it); later ones grow as needed.
        assert references == ["3f2a9c1b", "3f2a9c1b", "3f2a9c1b7", "3f2a9c1b7d", "99999999"]
        # Each reference names the job it was given to: the oldest of the server's jobs that start with it.
        for job, reference in zip((first, second, third, lone), (references[0], *references[2:]), strict=True):
            assert await found_id(history, 1, reference) == job.id
            assert await found_id(history, 1, job.id) == job.id  # the whole id names it too
        assert await found_id(history, 2, "3f2a9c1b") == other_server.id
        assert await history.find(2, "3f2a9c1b7") is None  # never a job of another server
        assert [found.reference for found in await history.with_references([third, lone])] == [
            "3f2a9c1b7d",
            "99999999",
        ]


@pytest.mark.parametrize(
    ("typed", "parsed"),
    [("3F2A9C1B", "3f2a9c1b"), (" 3f2a9c1b7 ", "3f2a9c1b7"), ("a" * 32, "a" * 32)],
)
def test_a_typed_reference_is_read_as_the_start_of_an_id(typed: str, parsed: str) -> None:
    assert parse_reference(typed) == parsed


@pytest.mark.parametrize("typed", ["3f2a9c1", "a" * 33, "3f2a9c1g", "3f2a 9c1b", "", "<@123> hello"])
def test_anything_else_is_not_a_reference(typed: str) -> None:
    with pytest.raises(JobReferenceInvalid):
        parse_reference(typed)

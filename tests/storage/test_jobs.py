"""Jobs: creation, the state machine with its history, updates, and the unfinished list used to resume."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from storage.database import Database
from storage.errors import InvalidTransitionError, JobNotFoundError
from storage.jobs import JobKind, JobRepository, JobState, can_transition
from tests.storage.conftest import FakeClock

SNOWFLAKE = 1_234_567_890_123_456_789  # needs 64 bits


@pytest.fixture
def jobs(db: Database, clock: FakeClock) -> JobRepository:
    return JobRepository(db, clock)


async def new_job(jobs: JobRepository, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "guild_id": SNOWFLAKE,
        "channel_id": SNOWFLAKE + 1,
        "user_id": SNOWFLAKE + 2,
        "kind": JobKind.IMAGINE,
        "prompt": "a lighthouse in a storm, 🌊",
        "aspect": "16:9",
        "resolution": "2k",
        "weight": 2,
        "n": 2,
        "model": "gpt-image-2",
    }
    values.update(overrides)
    return await jobs.create(**values)


async def test_create_stores_every_field_and_get_reads_it_back(jobs: JobRepository, clock: FakeClock) -> None:
    expires = clock.now + timedelta(minutes=15)
    job = await new_job(
        jobs,
        kind="reroll",
        parent_job_id="f" * 32,
        reference_count=3,
        application_id=SNOWFLAKE + 3,
        interaction_token="secret-interaction-token",
        token_expires_at=expires,
        locale="es-419",
        member_locale="ja",
    )
    assert len(job.id) == 32
    int(job.id, 16)  # uuid4 hex
    assert job.kind is JobKind.REROLL
    assert job.state is JobState.QUEUED
    assert (job.guild_id, job.channel_id, job.user_id) == (SNOWFLAKE, SNOWFLAKE + 1, SNOWFLAKE + 2)
    assert (job.prompt, job.n, job.model) == ("a lighthouse in a storm, 🌊", 2, "gpt-image-2")
    assert (job.aspect, job.resolution, job.weight) == ("16:9", "2k", 2)
    assert (job.parent_job_id, job.reference_count, job.application_id) == ("f" * 32, 3, SNOWFLAKE + 3)
    assert job.interaction_token == "secret-interaction-token"
    assert job.token_expires_at == expires
    assert (job.locale, job.member_locale, job.private_locale) == ("es-419", "ja", "ja")
    assert job.created_at == job.updated_at == clock.now
    assert job.created_at.tzinfo is not None
    assert (job.task_id, job.progress, job.submit_started_at, job.result_files) == (None, 0, None, ())
    assert (job.finished_at, job.delivered_at, job.late_notified, job.is_finished) == (None, None, False, False)
    assert await jobs.get(job.id) == job
    assert await jobs.get("no-such-job") is None


async def test_the_interaction_token_never_shows_in_a_repr(jobs: JobRepository) -> None:
    job = await new_job(jobs, interaction_token="secret-interaction-token")
    assert "secret-interaction-token" not in repr(job)


@pytest.mark.parametrize(
    ("overrides", "error"),
    [({"n": 0}, ValueError), ({"reference_count": -1}, ValueError), ({"kind": "teleport"}, ValueError)],
)
async def test_create_refuses_bad_input(jobs: JobRepository, overrides: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        await new_job(jobs, **overrides)
    assert await jobs.list_unfinished() == []


async def test_a_job_moves_through_the_pipeline_and_its_history_is_recorded(
    jobs: JobRepository, clock: FakeClock
) -> None:
    job = await new_job(jobs)
    created = clock.now
    path = [
        JobState.UPLOADING,
        JobState.SUBMITTING,
        JobState.RUNNING,
        JobState.DOWNLOADING,
        JobState.DELIVERING,
        JobState.COMPLETED,
    ]
    for state in path:
        clock.advance(seconds=10)
        job = await jobs.set_state(job.id, state)
        assert job.state is state
        assert job.updated_at == clock.now
    assert job.is_finished
    assert job.finished_at == clock.now
    events = await jobs.events(job.id)
    assert [e.state for e in events] == [JobState.QUEUED, *path]
    assert [e.from_state for e in events] == [None, JobState.QUEUED, *path[:-1]]
    assert [e.at for e in events] == [created + timedelta(seconds=10 * i) for i in range(len(path) + 1)]


async def test_set_state_updates_fields_with_the_state(jobs: JobRepository, clock: FakeClock) -> None:
    job = await new_job(jobs)
    job = await jobs.set_state(job.id, JobState.SUBMITTING, submit_started_at=clock.now)
    assert job.submit_started_at == clock.now
    job = await jobs.set_state(job.id, JobState.RUNNING, task_id="task-123", progress=5)
    assert (job.task_id, job.progress) == ("task-123", 5)
    job = await jobs.fail(job.id, "upstream_failed", "the API said no")
    assert job.state is JobState.FAILED
    assert (job.error_code, job.error_message, job.finished_at) == ("upstream_failed", "the API said no", clock.now)
    assert await jobs.get(job.id) == job


async def test_no_transition_out_of_a_finished_state(jobs: JobRepository) -> None:
    job = await new_job(jobs)
    await jobs.set_state(job.id, JobState.FAILED, error_code="cancelled")
    for state in JobState:
        with pytest.raises(InvalidTransitionError, match="cannot move from 'failed'"):
            await jobs.set_state(job.id, state)
    stored = await jobs.get(job.id)
    assert stored is not None
    assert stored.state is JobState.FAILED
    assert len(await jobs.events(job.id)) == 2


async def test_a_refused_transition_changes_nothing(jobs: JobRepository) -> None:
    job = await new_job(jobs)
    job = await jobs.set_state(job.id, JobState.RUNNING, task_id="t1")
    with pytest.raises(InvalidTransitionError):
        await jobs.set_state(job.id, JobState.UPLOADING, task_id="other")
    with pytest.raises(InvalidTransitionError):
        await jobs.set_state(job.id, JobState.COMPLETED)  # only from DELIVERING
    assert await jobs.get(job.id) == job
    assert [e.state for e in await jobs.events(job.id)] == [JobState.QUEUED, JobState.RUNNING]


def test_transition_rules() -> None:
    assert can_transition(JobState.QUEUED, JobState.SUBMITTING)  # no references: no upload
    assert can_transition(JobState.RUNNING, JobState.RUNNING)  # a resumed job re-enters its state
    assert can_transition(JobState.DELIVERING, JobState.COMPLETED)
    assert not can_transition(JobState.RUNNING, JobState.COMPLETED)
    assert not can_transition(JobState.DOWNLOADING, JobState.RUNNING)
    for state in JobState:
        assert can_transition(state, JobState.FAILED) is not state.is_finished
        assert not can_transition(JobState.COMPLETED, state)
    assert {state for state in JobState if state.is_finished} == {JobState.COMPLETED, JobState.FAILED}


async def test_updaters(jobs: JobRepository, clock: FakeClock) -> None:
    job = await new_job(jobs)
    assert (await jobs.set_reply_message(job.id, SNOWFLAKE + 9)).reply_message_id == SNOWFLAKE + 9
    assert (await jobs.mark_submit_started(job.id)).submit_started_at == clock.now
    assert (await jobs.set_task_id(job.id, "task-9")).task_id == "task-9"
    assert (await jobs.set_progress(job.id, 140)).progress == 100
    assert (await jobs.set_progress(job.id, -3)).progress == 0
    files = ("/data/results/a.png", "https://files.example/b.png")
    assert (await jobs.set_results(job.id, list(files))).result_files == files
    assert (await jobs.mark_late_notified(job.id)).late_notified is True
    clock.advance(minutes=1)
    job = await jobs.record_delivery(job.id, images_delivered=2, result_message_id=SNOWFLAKE + 10)
    assert (job.images_delivered, job.result_message_id, job.delivered_at) == (2, SNOWFLAKE + 10, clock.now)
    assert job.updated_at == clock.now
    assert job.state is JobState.QUEUED  # updaters never move the state
    assert await jobs.get(job.id) == job
    assert job.channel_postable is True
    # A result the channel refused went by DM: the channel is known not to take the bot's posts.
    job = await jobs.record_delivery(job.id, images_delivered=2, result_message_id=SNOWFLAKE + 11, by_dm=True)
    assert (job.result_message_id, job.channel_postable) == (SNOWFLAKE + 11, False)
    assert await jobs.get(job.id) == job


async def test_a_deleted_result_message_is_noted_on_its_job_once(jobs: JobRepository, clock: FakeClock) -> None:
    shown = await jobs.record_delivery((await new_job(jobs)).id, images_delivered=2, result_message_id=SNOWFLAKE + 20)
    other = await jobs.record_delivery((await new_job(jobs)).id, images_delivered=2, result_message_id=SNOWFLAKE + 21)
    never = await new_job(jobs)  # no result message: a deletion of any message matches nothing
    clock.advance(minutes=3)

    assert await jobs.note_results_deleted([SNOWFLAKE + 20, SNOWFLAKE + 99]) == 1
    assert await jobs.note_results_deleted([SNOWFLAKE + 20]) == 0  # seen once (the button, then the gateway)

    assert (await jobs.get(shown.id)).result_deleted_at == clock.now  # type: ignore[union-attr]
    assert (await jobs.get(other.id)).result_deleted_at is None  # type: ignore[union-attr]
    assert (await jobs.get(never.id)).result_deleted_at is None  # type: ignore[union-attr]


async def test_bad_updates_are_refused(jobs: JobRepository) -> None:
    job = await new_job(jobs)
    with pytest.raises(ValueError, match="cannot be updated"):
        await jobs.update(job.id, state="completed")
    with pytest.raises(ValueError, match="cannot be updated"):
        await jobs.set_state(job.id, JobState.RUNNING, created_at=datetime.now(UTC))
    with pytest.raises(TypeError):
        await jobs.update(job.id, result_files="one/string.png")
    with pytest.raises(ValueError, match="at least one field"):
        await jobs.update(job.id)
    with pytest.raises(ValueError, match="naive datetime"):
        await jobs.update(job.id, delivered_at=datetime(2026, 1, 1))  # naive on purpose
    assert await jobs.get(job.id) == job


async def test_unknown_jobs_are_reported(jobs: JobRepository) -> None:
    with pytest.raises(JobNotFoundError):
        await jobs.set_state("missing", JobState.RUNNING)
    with pytest.raises(JobNotFoundError):
        await jobs.set_task_id("missing", "t")
    assert await jobs.events("missing") == []


async def test_list_unfinished_is_what_to_resume_oldest_first(jobs: JobRepository, clock: FakeClock) -> None:
    running = await new_job(jobs)
    clock.advance(seconds=1)
    done = await new_job(jobs)
    clock.advance(seconds=1)
    failed = await new_job(jobs)
    clock.advance(seconds=1)
    queued = await new_job(jobs)
    await jobs.set_state(running.id, JobState.RUNNING, task_id="t")
    for state in (JobState.DELIVERING, JobState.COMPLETED):
        await jobs.set_state(done.id, state)
    await jobs.fail(failed.id, "boom")
    unfinished = await jobs.list_unfinished()
    assert [job.id for job in unfinished] == [running.id, queued.id]
    assert unfinished[0].task_id == "t"


# -- finding jobs again (/history, /show) -----------------------------------------------------------------------


async def test_a_members_recent_jobs_are_theirs_in_that_server_newest_first(
    jobs: JobRepository, clock: FakeClock
) -> None:
    mine = []
    for number in range(5):
        mine.append(await new_job(jobs, prompt=f"mine {number}"))
        await new_job(jobs, prompt=f"someone else's {number}", user_id=SNOWFLAKE + 3)
        await new_job(jobs, prompt=f"mine elsewhere {number}", guild_id=SNOWFLAKE + 4)
        clock.advance(seconds=1)
    # Two in the same millisecond: the order still holds, by id.
    twins = [await new_job(jobs, prompt="twin"), await new_job(jobs, prompt="twin")]

    recent = await jobs.recent_of_member(SNOWFLAKE, SNOWFLAKE + 2, limit=4)

    newest_twins = sorted(twins, key=lambda job: job.id, reverse=True)
    assert [job.id for job in recent] == [*(job.id for job in newest_twins), mine[4].id, mine[3].id]
    assert await jobs.recent_of_member(SNOWFLAKE, SNOWFLAKE + 5, limit=10) == []


async def test_jobs_are_found_by_the_start_of_their_id_within_their_server(
    jobs: JobRepository, clock: FakeClock
) -> None:
    first = await new_job(jobs, job_id="abcdef12" + "0" * 24)
    clock.advance(seconds=1)
    second = await new_job(jobs, job_id="abcdef12" + "f" * 24)
    elsewhere = await new_job(jobs, job_id="abcdef12" + "1" * 24, guild_id=SNOWFLAKE + 4)
    await new_job(jobs, job_id="abcdef13" + "0" * 24)
    await new_job(jobs, job_id="abcdef11" + "f" * 24)

    # The oldest of those that start with it, and never a job of another server.
    assert (found := await jobs.oldest_with_prefix(SNOWFLAKE, "abcdef12")) is not None
    assert found.id == first.id
    assert (found := await jobs.oldest_with_prefix(SNOWFLAKE, "abcdef12f")) is not None
    assert found.id == second.id
    assert (found := await jobs.oldest_with_prefix(SNOWFLAKE, second.id)) is not None
    assert found.id == second.id
    assert await jobs.oldest_with_prefix(SNOWFLAKE, "abcdef121") is None
    assert (found := await jobs.oldest_with_prefix(SNOWFLAKE + 4, "abcdef12")) is not None
    assert found.id == elsewhere.id
    # Only older jobs of the same server count against a job's prefix.
    assert await jobs.older_ids_with_prefix(second, "abcdef12") == [first.id]
    assert await jobs.older_ids_with_prefix(first, "abcdef12") == []
    assert await jobs.older_ids_with_prefix(elsewhere, "abcdef12") == []


@pytest.mark.parametrize("prefix", ["", "ABCDEF12", "abcdefgh", "abc%", "ab'; --"])
async def test_a_prefix_is_lowercase_hex(jobs: JobRepository, prefix: str) -> None:
    with pytest.raises(ValueError, match="lowercase hex"):
        await jobs.oldest_with_prefix(SNOWFLAKE, prefix)

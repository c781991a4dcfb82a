"""The pipeline's key scenarios again on PostgreSQL, where reads do not wait for another task's transaction.

Each runs the SQLite test of the same name with a harness whose database is a fresh PostgreSQL schema; with
several processes on one database, these are the paths that matter. Skipped, with one line, without
TEST_POSTGRES_URL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.fakes.toapis import FakeToAPIs
from tests.generation import (
    test_owed_answers,
    test_pipeline,
    test_pipeline_crash,
    test_pipeline_failures,
    test_pipeline_fairness,
    test_pipeline_leases,
)
from tests.generation.conftest import Board, Clock, Harness
from tests.storage.conftest import fresh_schema
from toapis import ToAPIsClient

Scenario = Callable[[Harness], Awaitable[None]]

SCENARIOS: list[Scenario] = [
    test_pipeline.test_a_full_job_is_delivered_recorded_and_cleaned_up,
    test_pipeline.test_references_are_uploaded_sent_with_the_submit_and_kept,
    test_pipeline.test_a_quota_refusal_names_the_rule_and_stores_and_uploads_nothing,
    test_pipeline_crash.test_a_crash_while_running_resumes_polling_and_delivers,
    test_pipeline_crash.test_a_crash_while_the_reporter_is_delivering_delivers_once_after_restart,
    test_pipeline_crash.test_an_ambiguous_submit_is_resolved_by_lookup_even_across_a_crash,
    test_pipeline_fairness.test_places_are_announced_and_follow_the_line,
    test_pipeline_fairness.test_fifty_jobs_at_once_all_complete_within_the_limits,
    test_pipeline_failures.test_fewer_images_than_asked_refunds_the_missing_ones,
    test_pipeline_failures.test_cancel_while_queued_refunds_and_only_the_requester_may,
    test_pipeline_leases.test_a_process_resumes_only_the_jobs_of_its_own_servers,
    test_pipeline_leases.test_a_job_held_by_a_live_process_is_left_alone_and_adopted_once_its_lease_runs_out,
    test_pipeline_leases.test_a_new_job_is_leased_to_the_process_that_admitted_it,
    test_owed_answers.test_with_leases_the_start_answers_the_records_of_a_stopped_process_of_this_host_at_once,
    test_pipeline_leases.test_a_process_frozen_past_its_lease_stops_at_its_next_write_and_posts_nothing,
    test_pipeline_leases.test_a_write_through_a_lost_lease_changes_nothing,
    test_pipeline_leases.test_a_process_starting_while_another_tells_a_failure_leaves_it_to_that_one,
    test_pipeline_leases.test_a_process_frozen_past_its_lease_before_telling_a_failure_tells_nothing,
    test_pipeline_leases.test_a_failure_left_to_a_process_that_dies_before_telling_it_is_told_once_its_lease_runs_out,
]


@pytest.fixture
async def postgres_harness(
    tmp_path: object, toapis_fake: FakeToAPIs, toapis_client: ToAPIsClient, clock: Clock, board: Board
) -> AsyncIterator[Harness]:
    async with fresh_schema() as url:
        built = Harness(tmp_path, toapis_fake, toapis_client, clock, board, database_url=url)  # type: ignore[arg-type]
        try:
            yield built
        finally:
            await built.aclose()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.__name__.removeprefix("test_"))
async def test_on_postgres(scenario: Scenario, postgres_harness: Harness) -> None:
    await scenario(postgres_harness)

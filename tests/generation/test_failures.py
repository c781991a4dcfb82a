"""Which failure a job ends with, whether it is refunded, and that members never read the service's own words."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import i18n
from cogs._texts import failure_text, policy_category_text
from generation import failures
from generation.events import Failed, FailureKind
from storage.jobs import Job, JobState
from tests.jobs import a_job
from toapis import BadRequestError, ContentPolicyError, Task, TaskError, TaskStatus, UploadRejectedError

INTERNAL = "upstream-7.internal.example:8443"


def job() -> Job:
    now = datetime.now(UTC)
    return a_job(
        id="a" * 32,
        prompt="a cat",
        n=2,
        state=JobState.FAILED,
        task_id="task_1",
        submit_started_at=now,
        created_at=now,
        updated_at=now,
        finished_at=now,
    )


def told(failure: failures.JobFailure) -> str:
    event = Failed(
        job(),
        failure.kind,
        2 if failure.refund else 0,
        reference_position=failure.reference_position,
        policy_category=failure.policy_category,
    )
    return failure_text(event, i18n.SOURCE)


def failed_task(code: str, message: str) -> Task:
    return Task(
        id="task_1",
        status=TaskStatus.FAILED,
        progress=0,
        model="gpt-image-2",
        created_at=None,
        error=TaskError(code, message),
    )


@pytest.mark.parametrize(
    ("message", "category"),
    [
        (f"Blocked by the safety system: violence detected (node {INTERNAL})", "violence"),
        ("content_policy_violation: sexual content is not allowed", "sexual"),
        ("内容安全审核未通过：涉及暴力", "violence"),
        (f"Your prompt was flagged by moderation ({INTERNAL})", None),
    ],
)
def test_a_content_policy_failure_keeps_only_its_category(message: str, category: str | None) -> None:
    failure = failures.of_task(failed_task("generation_failed", message))
    assert failure is not None
    assert (failure.kind, failure.refund, failure.policy_category) == (FailureKind.CONTENT_POLICY, True, category)
    text = told(failure)
    assert "content policy" in text
    assert INTERNAL not in text
    assert "node" not in text
    # The category in the catalog's words (here English), never the service's message.
    shown = policy_category_text(category, i18n.SOURCE)
    assert (f"({shown})" in text) is (category is not None)
    assert text.endswith("Your images were not counted.")


def test_a_refused_submit_is_told_in_fixed_words() -> None:
    exc = BadRequestError(f"size 7:3 is not supported on {INTERNAL}", status=400, operation="submit")
    failure = failures.before_task(exc)
    assert (failure.kind, failure.refund) == (FailureKind.BAD_REQUEST, True)
    assert INTERNAL in failure.detail  # the log keeps what the service said
    assert told(failure) == "The image service refused this request. Your images were not counted."

    policy = failures.before_task(ContentPolicyError(f"violent content ({INTERNAL})", status=422, operation="submit"))
    assert told(policy) == (
        "The image service declined this prompt or image under its content policy (violence). Try rewording it. "
        "Your images were not counted."
    )


def test_a_refused_reference_names_its_position_only() -> None:
    exc = UploadRejectedError(f"Unsupported image type from {INTERNAL}", status=400, operation="upload")
    failure = failures.upload_refused(exc, 2)
    assert told(failure) == "The image service refused reference image 2. Your images were not counted."

"""Task statuses, content-policy detection and the other typed results."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from toapis import contract
from toapis.models import DownloadedImage, Task, TaskError, TaskStatus


@pytest.mark.parametrize("value", [*contract.RUNNING_STATUSES, *contract.TERMINAL_STATUSES])
def test_every_documented_status_has_its_own_member(value: str) -> None:
    status = TaskStatus.parse(value)
    assert status is not TaskStatus.UNKNOWN
    assert status.value == value


def test_enum_covers_exactly_the_documented_statuses_plus_unknown() -> None:
    documented = {*contract.RUNNING_STATUSES, *contract.TERMINAL_STATUSES}
    assert {status.value for status in TaskStatus} == documented | {"unknown"}


@pytest.mark.parametrize("value", ["succeeded", "cancelled", "", None, 3, ["completed"]])
def test_anything_undocumented_is_unknown_and_still_running(value: object) -> None:
    status = TaskStatus.parse(value)
    assert status is TaskStatus.UNKNOWN
    assert status.is_running
    assert not status.is_terminal


def test_parse_ignores_case_and_spaces() -> None:
    assert TaskStatus.parse(" Completed ") is TaskStatus.COMPLETED
    assert TaskStatus.parse("IN_PROGRESS") is TaskStatus.IN_PROGRESS


@pytest.mark.parametrize("status", list(TaskStatus))
def test_only_completed_and_failed_are_terminal(status: TaskStatus) -> None:
    expected = status in (TaskStatus.COMPLETED, TaskStatus.FAILED)
    assert status.is_terminal is expected
    assert status.is_running is not expected


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("content_policy_violation", "refused"),
        ("generation_failed", "Your request was rejected by the Content Policy."),
        ("generation_failed", "Rejected as a result of our safety system"),
        ("generation_failed", "图片内容违规，请修改提示词"),
        ("moderation_blocked", "blocked"),
    ],
)
def test_content_policy_failures_are_recognised(code: str, message: str) -> None:
    assert TaskError(code=code, message=message).is_content_policy


@pytest.mark.parametrize(
    ("code", "message"),
    [("generation_failed", "Image generation failed"), ("500", "upstream timeout"), ("generation_failed", "")],
)
def test_other_failures_are_not_content_policy(code: str, message: str) -> None:
    assert not TaskError(code=code, message=message).is_content_policy


def _task(status: TaskStatus, error: TaskError | None) -> Task:
    return Task(id="t", status=status, progress=0, model=None, created_at=datetime.now(UTC), error=error)


def test_task_says_content_policy_failure_only_when_failed() -> None:
    refusal = TaskError(code="content_policy_violation", message="no")
    assert _task(TaskStatus.FAILED, refusal).is_content_policy_failure
    assert not _task(TaskStatus.FAILED, TaskError(code="generation_failed", message="boom")).is_content_policy_failure
    assert not _task(TaskStatus.COMPLETED, refusal).is_content_policy_failure
    assert _task(TaskStatus.PENDING, None).is_running


def test_task_is_frozen() -> None:
    task = _task(TaskStatus.QUEUED, None)
    with pytest.raises(AttributeError):
        task.status = TaskStatus.COMPLETED  # type: ignore[misc]


def test_downloaded_image_reads_its_bytes_from_memory_or_file(tmp_path: Path) -> None:
    in_memory = DownloadedImage(url="u", content_type="image/png", size=3, data=b"abc")
    path = tmp_path / "x.png"
    path.write_bytes(b"xyz")
    on_disk = DownloadedImage(url="u", content_type="image/png", size=3, path=path)
    assert in_memory.read_bytes() == b"abc"
    assert on_disk.read_bytes() == b"xyz"
    assert "abc" not in repr(in_memory)  # image bytes stay out of reprs and logs

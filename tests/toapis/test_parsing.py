"""Reading the API's bodies: tasks in every documented shape, uploads, error bodies, Retry-After."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from toapis._error_mapping import ErrorBody, error_from_response, parse_error_body, parse_retry_after
from toapis._parse import decode_json, parse_task, parse_upload
from toapis.errors import (
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContentPolicyError,
    InsufficientBalanceError,
    RateLimitError,
    ServerError,
    SubmitsPausedError,
    TaskNotFoundError,
    ToAPIsError,
    UnexpectedResponseError,
    UploadRejectedError,
)
from toapis.models import TaskStatus

COMPLETED = {
    "id": "task_img_abc123def456",
    "object": "generation.task",
    "model": "gpt-image-2",
    "status": "completed",
    "progress": 100,
    "created_at": 1703884800,
    "completed_at": 1703884830,
    "expires_at": 1703971230,
    "result": {"type": "image", "data": [{"url": "https://files.toapis.com/a/1.png"}, {"url": "https://f/2.png"}]},
}


def test_a_completed_task_reads_every_result_url_and_its_times() -> None:
    task = parse_task(COMPLETED, status=200)
    assert task.id == "task_img_abc123def456"
    assert task.status is TaskStatus.COMPLETED
    assert [image.url for image in task.images] == ["https://files.toapis.com/a/1.png", "https://f/2.png"]
    assert task.created_at == datetime(2023, 12, 29, 21, 20, tzinfo=UTC)
    assert task.completed_at == task.created_at + timedelta(seconds=30)
    assert task.expires_at == task.completed_at + timedelta(days=1)
    assert task.error is None


def test_a_top_level_url_is_the_fallback() -> None:
    payload = {**COMPLETED, "url": "https://f/top.png"}
    del payload["result"]
    assert [image.url for image in parse_task(payload, status=200).images] == ["https://f/top.png"]


def test_result_data_wins_over_the_top_level_url() -> None:
    payload = {**COMPLETED, "url": "https://files.toapis.com/a/1.png"}
    assert len(parse_task(payload, status=200).images) == 2


def test_b64_json_images_are_decoded() -> None:
    payload = {**COMPLETED, "result": {"data": [{"b64_json": base64.b64encode(b"\x89PNG-bytes").decode()}]}}
    (image,) = parse_task(payload, status=200).images
    assert image.url is None
    assert image.data == b"\x89PNG-bytes"


def test_undecodable_b64_and_junk_items_are_skipped() -> None:
    payload = {**COMPLETED, "result": {"data": [{"b64_json": "%%%"}, "junk", {"url": ""}, {"url": "https://f/ok.png"}]}}
    assert [image.url for image in parse_task(payload, status=200).images] == ["https://f/ok.png"]


def test_expires_at_defaults_to_a_day_after_completion() -> None:
    payload = {k: v for k, v in COMPLETED.items() if k != "expires_at"}
    task = parse_task(payload, status=200)
    assert task.completed_at is not None
    assert task.expires_at == task.completed_at + timedelta(seconds=86_400)


def test_a_failed_task_carries_its_error_with_integer_codes_as_strings() -> None:
    task = parse_task(
        {"id": "t", "status": "failed", "progress": 20, "error": {"code": 500, "message": "boom"}}, status=200
    )
    assert task.status is TaskStatus.FAILED
    assert task.error is not None
    assert (task.error.code, task.error.message) == ("500", "boom")
    assert task.progress == 20


@pytest.mark.parametrize("error", [None, "", "plain text reason", {"message": "no code"}, {"code": "x"}])
def test_a_failed_task_always_has_an_error(error: object) -> None:
    task = parse_task({"id": "t", "status": "failed", "error": error}, status=200)
    assert task.error is not None
    assert task.error.code
    assert task.error.message


def test_running_tasks_have_no_error_even_if_one_is_sent() -> None:
    task = parse_task({"id": "t", "status": "in_progress", "error": {"code": "x", "message": "y"}}, status=200)
    assert task.error is None


@pytest.mark.parametrize(("raw", "expected"), [(55, 55), ("40", 40), (12.7, 12), (-5, 0), (180, 100), (None, 0)])
def test_progress_is_clamped_to_0_100(raw: object, expected: int) -> None:
    assert parse_task({"id": "t", "status": "in_progress", "progress": raw}, status=200).progress == expected


def test_completed_means_100_percent_even_if_progress_lags() -> None:
    assert parse_task({"id": "t", "status": "completed", "progress": 0}, status=200).progress == 100


def test_missing_or_odd_fields_do_not_break_a_task() -> None:
    task = parse_task({"id": "t", "status": "mystery", "created_at": "2024-01-02T03:04:05", "model": 5}, status=200)
    assert task.status is TaskStatus.UNKNOWN
    assert task.created_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert task.model is None
    assert parse_task({"id": "t", "created_at": True}, status=200).created_at is None


def test_the_business_id_is_echoed_or_filled_in() -> None:
    assert parse_task({"id": "t", "client_business_id": "job-1"}, status=200).client_business_id == "job-1"
    assert parse_task({"id": "t"}, status=200, client_business_id="job-2").client_business_id == "job-2"


@pytest.mark.parametrize("payload", [{}, {"id": ""}, {"id": 42}])
def test_a_task_without_an_id_is_an_unexpected_response(payload: dict[str, object]) -> None:
    with pytest.raises(UnexpectedResponseError, match="no task id"):
        parse_task(payload, status=200)


@pytest.mark.parametrize("body", [b"<html>oops</html>", b"", b"[1, 2]", b"null"])
def test_non_object_bodies_are_unexpected(body: bytes) -> None:
    with pytest.raises(UnexpectedResponseError) as caught:
        decode_json(body, operation="task lookup", status=200)
    assert caught.value.status == 200
    assert caught.value.is_transient


def test_uploads_are_read_from_data() -> None:
    upload = parse_upload(
        {"success": True, "data": {"id": "upload_1", "url": "https://f/u.jpg", "mime_type": "image/jpeg", "size": 9}},
        status=200,
    )
    assert (upload.id, upload.url, upload.mime_type, upload.size) == ("upload_1", "https://f/u.jpg", "image/jpeg", 9)
    with pytest.raises(UnexpectedResponseError, match="no image URL"):
        parse_upload({"success": True, "data": {"id": "x"}}, status=200)


# --- error bodies -----------------------------------------------------------------------------------------------


def test_error_bodies_in_every_shape() -> None:
    documented = parse_error_body(b'{"error":{"code":404,"message":"Task not found","type":"not_found_error"}}')
    assert (documented.code, documented.message, documented.is_html) == ("404", "Task not found", False)
    assert parse_error_body(b'{"message":"task_not_exist"}').message == "task_not_exist"
    assert parse_error_body(b'{"success":false,"message":"Image too large"}').message == "Image too large"
    assert parse_error_body(b'{"error":"plain"}').message == "plain"
    html = parse_error_body(b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>")
    assert (html.message, html.is_html) == ("502 Bad Gateway", True)
    assert parse_error_body(b"<html><body>no title</body></html>") == ErrorBody(code=None, message=None, is_html=True)
    assert parse_error_body(b"upstream connect error\nmore").message == "upstream connect error"
    assert parse_error_body(b"").message is None


@pytest.mark.parametrize(
    ("status", "body", "options", "expected"),
    [
        (404, b'{"error":{"code":404,"message":"Task not found"}}', {"task_id": "t"}, TaskNotFoundError),
        (400, b'{"message":"task_not_exist"}', {"task_id": "t"}, TaskNotFoundError),
        (404, b"Not Found", {}, BadRequestError),  # outside a lookup, a 404 means a wrong base URL
        (401, b'{"error":{"code":"authentication_error","message":"bad key"}}', {}, AuthenticationError),
        (403, b"{}", {}, AuthenticationError),
        (402, b'{"error":{"code":"insufficient_quota","message":"low"}}', {}, InsufficientBalanceError),
        (422, b'{"error":{"code":"content_policy_violation","message":"no"}}', {}, ContentPolicyError),
        (400, b'{"error":{"code":"content_policy_violation","message":"no"}}', {}, ContentPolicyError),
        (400, b'{"error":{"code":"invalid_request","message":"bad size"}}', {}, BadRequestError),
        (400, b'{"success":false,"message":"Unsupported image type"}', {"upload": True}, UploadRejectedError),
        (413, b"Request Entity Too Large", {}, UploadRejectedError),
        (429, b'{"error":{"code":"rate_limit_exceeded"}}', {}, RateLimitError),
        (408, b"", {}, APITimeoutError),
        (500, b'{"error":{"code":"internal_error","message":"x"}}', {}, ServerError),
        (502, b"<html><title>502 Bad Gateway</title></html>", {}, ServerError),
        (503, b'{"error":{"code":"rate_limit_unavailable","message":"paused"}}', {}, SubmitsPausedError),
        (503, b'{"error":{"code":"overloaded","message":"busy"}}', {}, ServerError),
        (302, b"", {}, UnexpectedResponseError),
    ],
)
def test_statuses_map_to_the_error_tree(
    status: int, body: bytes, options: dict[str, object], expected: type[ToAPIsError]
) -> None:
    error = error_from_response(status, {}, body, operation="call", secret="sk-secret", **options)  # type: ignore[arg-type]
    assert type(error) is expected
    assert error.status == status


def test_html_gateway_errors_say_so() -> None:
    error = error_from_response(
        504, {}, b"<html><head><title>504 Gateway Time-out</title></head></html>", operation="submit", secret="k"
    )
    assert str(error) == "ToAPIs submit: HTTP 504 with an HTML page from a gateway (504 Gateway Time-out) (HTTP 504)"
    assert error.user_message == "The image service is having trouble right now. Please try again later."


def test_rate_limit_errors_carry_retry_after_and_category() -> None:
    error = error_from_response(
        429, {"Retry-After": "12", "X-RateLimit-Category": "async_submit"}, b"{}", operation="submit", secret="k"
    )
    assert isinstance(error, RateLimitError)
    assert (error.retry_after, error.category) == (12.0, "async_submit")


def test_the_key_is_redacted_from_upstream_text() -> None:
    body = b'{"error":{"code":"sk-secret","message":"Invalid API key sk-secret"}}'
    error = error_from_response(401, {}, body, operation="submit", secret="sk-secret")
    assert "sk-secret" not in str(error)
    assert "sk-secret" not in repr(error)
    assert error.message == "Invalid API key [redacted]"
    assert str(error) == "ToAPIs submit: Invalid API key [redacted] (HTTP 401, code [redacted])"


def test_long_upstream_messages_are_cut() -> None:
    error = error_from_response(400, {}, b'{"message":"' + b"x" * 5000 + b'"}', operation="submit", secret="k")
    assert len(error.message) < 600
    assert len(error.user_message) < 300


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"Retry-After": "0.25"}, 0.25),
        ({"Retry-After": "-4"}, 0.0),
        ({"retry-after-ms": "1500", "Retry-After": "9"}, 1.5),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_in_seconds(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after({"Retry-After": header}, now=now.timestamp()) == pytest.approx(30.0)

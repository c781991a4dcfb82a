"""Turn successful ToAPIs JSON bodies into the frozen dataclasses of `toapis.models`.

Lenient about what the documentation leaves open (codes as integers or strings, missing optional fields,
`b64_json` instead of URLs), strict about what a caller cannot do without (a task's id, an upload's URL).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from toapis import contract
from toapis.errors import UnexpectedResponseError
from toapis.models import ResultImage, Task, TaskError, TaskStatus, UploadedImage

log = logging.getLogger(__name__)


def decode_json(body: bytes, *, operation: str, status: int) -> dict[str, Any]:
    """Decode a JSON object body, or raise UnexpectedResponseError."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise UnexpectedResponseError(
            f"the answer is not JSON ({len(body)} bytes)", status=status, operation=operation
        ) from None
    if not isinstance(payload, dict):
        raise UnexpectedResponseError("the answer is not a JSON object", status=status, operation=operation)
    return payload


def parse_task(payload: dict[str, Any], *, status: int, client_business_id: str | None = None) -> Task:
    """Build a Task from a submit or lookup answer. `client_business_id` fills in one the API did not echo."""
    task_id = payload.get("id")
    if not isinstance(task_id, str) or not task_id:
        raise UnexpectedResponseError("the answer has no task id", status=status, operation="task")
    task_status = TaskStatus.parse(payload.get("status"))
    if task_status is TaskStatus.UNKNOWN:
        log.debug("task %s has an undocumented status %r: treated as running", task_id, payload.get("status"))
    progress = _progress(payload.get("progress"))
    if task_status is TaskStatus.COMPLETED:
        progress = 100
    completed_at = _timestamp(payload.get("completed_at"))
    expires_at = _timestamp(payload.get("expires_at"))
    if expires_at is None and completed_at is not None:
        expires_at = completed_at + timedelta(seconds=contract.RESULT_URL_LIFETIME_SECONDS)
    echoed = payload.get("client_business_id")
    return Task(
        id=task_id,
        status=task_status,
        progress=progress,
        model=payload.get("model") if isinstance(payload.get("model"), str) else None,
        created_at=_timestamp(payload.get("created_at")),
        completed_at=completed_at,
        expires_at=expires_at,
        images=_images(payload, task_id),
        error=_task_error(payload.get("error")) if task_status is TaskStatus.FAILED else None,
        client_business_id=echoed if isinstance(echoed, str) and echoed else client_business_id,
    )


def parse_upload(payload: dict[str, Any], *, status: int) -> UploadedImage:
    """Build an UploadedImage from `{"success":true,"data":{id,url,mime_type,size}}`."""
    data = payload.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("url"), str) or not data["url"]:
        raise UnexpectedResponseError("the answer has no image URL", status=status, operation="upload")
    size = data.get("size")
    return UploadedImage(
        id=str(data.get("id") or ""),
        url=data["url"],
        mime_type=str(data.get("mime_type") or ""),
        size=size if isinstance(size, int) and not isinstance(size, bool) else 0,
    )


def _progress(value: object) -> int:
    try:
        number = int(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0
    return min(max(number, 0), 100)


def _timestamp(value: object) -> datetime | None:
    """Unix seconds (as documented), or an ISO 8601 string should a version of the API send one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _images(payload: dict[str, Any], task_id: str) -> tuple[ResultImage, ...]:
    """Read `result.data[*]` (url, or b64_json decoded), falling back to a top-level `url`."""
    images: list[ResultImage] = []
    result = payload.get("result")
    items = result.get("data") if isinstance(result, dict) else None
    if isinstance(items, list):
        for item in items:
            if not isinstance(item, dict):
                continue
            url = item.get("url") if isinstance(item.get("url"), str) and item.get("url") else None
            data = _b64(item.get("b64_json"), task_id)
            if url is not None or data is not None:
                images.append(ResultImage(url=url, data=data))
    if not images and isinstance(payload.get("url"), str) and payload["url"]:
        images.append(ResultImage(url=payload["url"]))
    return tuple(images)


def _b64(value: object, task_id: str) -> bytes | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        log.warning("task %s has an undecodable b64_json image: ignored", task_id)
        return None


def _task_error(value: object) -> TaskError:
    if isinstance(value, dict):
        code = value.get("code")
        message = value.get("message")
        return TaskError(
            code=str(code) if code not in (None, "") else "generation_failed",
            message=str(message) if message not in (None, "") else "the task failed",
        )
    if isinstance(value, str) and value:
        return TaskError(code="generation_failed", message=value)
    return TaskError(code="generation_failed", message="the task failed")

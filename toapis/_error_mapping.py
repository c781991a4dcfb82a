"""Turn an unsuccessful HTTP answer from ToAPIs (JSON, HTML or anything else) into a `toapis.errors` error."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from toapis import contract
from toapis.errors import (
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    CallbackURLRefusedError,
    ContentPolicyError,
    InsufficientBalanceError,
    RateLimitError,
    ServerError,
    SubmitsPausedError,
    TaskNotFoundError,
    ToAPIsError,
    UnexpectedResponseError,
    UploadRejectedError,
    WebhookNotConfiguredError,
)

_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_MAX_MESSAGE_CHARS = 500


@dataclass(frozen=True)
class ErrorBody:
    """What an error body says, whatever its shape."""

    code: str | None
    message: str | None
    is_html: bool = False
    # The body field the error blames (`error.param`), when it names one.
    param: str | None = None


def parse_error_body(body: bytes) -> ErrorBody:
    """Read `{"error":{"code","message"}}`, `{"message"}` (uploads, task_not_exist), HTML or plain text."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            return ErrorBody(
                code=_text(error.get("code")), message=_text(error.get("message")), param=_text(error.get("param"))
            )
        if isinstance(error, str):
            return ErrorBody(code=_text(payload.get("code")), message=error)
        return ErrorBody(code=_text(payload.get("code")), message=_text(payload.get("message")))
    stripped = body.strip()
    if stripped[:1] == b"<":
        match = _TITLE.search(stripped)
        title = match.group(1).decode("utf-8", "replace").strip() if match else None
        return ErrorBody(code=None, message=title or None, is_html=True)
    text = stripped.decode("utf-8", "replace").strip()
    return ErrorBody(code=None, message=text.splitlines()[0] if text else None)


def _text(value: object) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Return the wait the server asked for, in seconds: `retry-after-ms`, or `Retry-After` (seconds or date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(float(raw_ms) / 1000.0, 0.0)
        except ValueError:
            pass
    raw = headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    operation: str,
    secret: str,
    upload: bool = False,
    task_id: str | None = None,
) -> ToAPIsError:
    """Map an unsuccessful answer to an error, with `secret` (the API key) removed from any upstream text.

    `operation` names the call in messages ("submit", "task lookup"...). A 404 is an unknown task only for
    lookups (`task_id` given); elsewhere it means a wrong base URL and is a BadRequestError.
    """
    parsed = parse_error_body(body)
    code = _redact(parsed.code, secret)
    upstream = _redact(parsed.message, secret)
    if upstream is not None and len(upstream) > _MAX_MESSAGE_CHARS:
        upstream = upstream[:_MAX_MESSAGE_CHARS] + "…"

    def message(default: str) -> str:
        return upstream or default

    not_exist = contract.TASK_NOT_EXIST in (code, upstream)
    if task_id is not None and (status == 404 or not_exist):
        return TaskNotFoundError(
            message("task not found"), status=status, code=code, operation=operation, task_id=task_id
        )
    if status in (401, 403):
        return AuthenticationError(message("the API key was refused"), status=status, code=code, operation=operation)
    if status == 402 or code == contract.INSUFFICIENT_QUOTA_CODE:
        return InsufficientBalanceError(message("insufficient balance"), status=status, code=code, operation=operation)
    if status == 422 or code in contract.CONTENT_POLICY_CODES:
        return ContentPolicyError(
            message("refused by the content policy"), status=status, code=code, operation=operation
        )
    if status == 429:
        return RateLimitError(
            message("rate limited"),
            status=status,
            code=code,
            operation=operation,
            retry_after=parse_retry_after(headers),
            category=headers.get(contract.RATE_LIMIT_CATEGORY_HEADER),
        )
    if status == 408:
        return APITimeoutError(
            message("the server timed out reading the request"), maybe_sent=True, status=status, operation=operation
        )
    if status >= 500:
        if parsed.is_html:
            title = f" ({upstream})" if upstream else ""
            return ServerError(
                f"HTTP {status} with an HTML page from a gateway{title}", status=status, operation=operation
            )
        if status == 503 and code == contract.SUBMITS_PAUSED_CODE:
            return SubmitsPausedError(message("submits are paused"), status=status, code=code, operation=operation)
        return ServerError(message("server error"), status=status, code=code, operation=operation)
    if 400 <= status < 500:
        if contract.WEBHOOK_NOT_CONFIGURED_CODE in (code, upstream):
            return WebhookNotConfiguredError(
                message("webhooks are not configured for this key"), status=status, code=code, operation=operation
            )
        if not upload and _blames(parsed.param, contract.CALLBACK_URL_FIELD):
            return CallbackURLRefusedError(
                message("callback_url was refused"), status=status, code=code, operation=operation, param=parsed.param
            )
        if upload or status == 413:
            return UploadRejectedError(message("the image was refused"), status=status, code=code, operation=operation)
        return BadRequestError(
            message(f"HTTP {status}"), status=status, code=code, operation=operation, param=parsed.param
        )
    return UnexpectedResponseError(message(f"unexpected HTTP {status}"), status=status, code=code, operation=operation)


def _blames(param: str | None, field: str) -> bool:
    """Whether the error's `param` names `field` (alone or as the last part of a dotted path)."""
    return param is not None and param.strip().lower().rsplit(".", 1)[-1] == field


def _redact(text: str | None, secret: str) -> str | None:
    if text is None or not secret:
        return text
    return text.replace(secret, "[redacted]")

"""ToAPIs task webhooks: checking a delivery's signature and reading its event. Pure: no I/O, no clock of its own.

What is signed, the headers, the timestamp window and the event's shape are in toapis/contract.py (DOCUMENTED
and ASSUMED points). A receiver checks the signature over the raw body first (`verify`), then reads the event
(`parse_event`); neither trusts anything in the body before the signature matched.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from toapis import contract

_HEX = frozenset(string.hexdigits)


class SignatureProblem(StrEnum):
    """Why a delivery is not taken as genuine (the receiver answers 401 to each)."""

    MISSING_HEADER = "missing_header"
    BAD_EVENT_ID = "bad_event_id"
    BAD_TIMESTAMP = "bad_timestamp"
    STALE = "stale"
    MISMATCH = "mismatch"


class WebhookSignatureError(Exception):
    """The delivery is not provably from ToAPIs: a header is missing, its timestamp is unreadable or outside the
    window, or no `v1=` signature matches."""

    def __init__(self, problem: SignatureProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem


class MalformedEventError(Exception):
    """A genuine delivery whose body is not an event Imagine can read."""


def sign(secret: str, event_id: str, timestamp: str, body: bytes) -> str:
    """The hex HMAC-SHA256 that ToAPIs sends as `v1=<hex>` for this event id, timestamp and raw body."""
    separator = contract.WEBHOOK_SIGNATURE_SEPARATOR.encode()
    message = event_id.encode() + separator + timestamp.encode() + separator + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signatures_in(header: str) -> list[str]:
    """The hex digests of every `v1=` item of a signature header (two during a secret rotation); other schemes
    and unreadable items are skipped."""
    found = []
    for item in header.split(","):
        scheme, equals, value = item.strip().partition("=")
        value = value.strip()
        if equals and scheme.strip() == contract.WEBHOOK_SIGNATURE_SCHEME and value and set(value) <= _HEX:
            found.append(value.lower())
    return found


def verify(
    secrets: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance: float = contract.WEBHOOK_TOLERANCE_SECONDS,
) -> str:
    """Check a delivery and return its event id, or raise `WebhookSignatureError`.

    `secrets`: the signing secrets Imagine knows (one, usually). `now`: Unix seconds. Genuine when the timestamp
    is within `tolerance` seconds of `now` and any `v1=` signature of the header matches any secret; every
    comparison takes constant time.
    """
    event_id = headers.get(contract.WEBHOOK_ID_HEADER, "").strip()
    timestamp = headers.get(contract.WEBHOOK_TIMESTAMP_HEADER, "").strip()
    header = headers.get(contract.WEBHOOK_SIGNATURE_HEADER, "")
    if not event_id or not timestamp or not header.strip():
        raise WebhookSignatureError(SignatureProblem.MISSING_HEADER, "a webhook header is missing")
    # A header's bytes that are not UTF-8 reach here as lone surrogates, which no secret could have signed (and
    # which `sign` could not encode): refused like any other unreadable header, never an error of the receiver.
    try:
        event_id.encode()
    except UnicodeEncodeError:
        raise WebhookSignatureError(SignatureProblem.BAD_EVENT_ID, "the webhook event id is not UTF-8") from None
    # ASCII only: str.isdigit also takes "²" (which int() refuses) and other scripts' digits.
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise WebhookSignatureError(SignatureProblem.BAD_TIMESTAMP, "the webhook timestamp is not Unix seconds")
    if abs(now - int(timestamp)) > tolerance:
        raise WebhookSignatureError(
            SignatureProblem.STALE, f"the webhook timestamp is {now - int(timestamp):+.0f} s off, over {tolerance:g} s"
        )
    given = signatures_in(header)
    expected = [sign(secret, event_id, timestamp, body) for secret in secrets if secret]
    # Every pair is compared, so the time taken says nothing about which one (if any) matched.
    matched = False
    for candidate in given:
        for digest in expected:
            matched |= hmac.compare_digest(candidate.encode(), digest.encode())
    if not matched:
        raise WebhookSignatureError(SignatureProblem.MISMATCH, "no webhook signature matches the secret")
    return event_id


class EventKind(StrEnum):
    """What an event says. UNKNOWN stands for any type the documentation does not list (answered, then ignored)."""

    COMPLETED = contract.EVENT_COMPLETED
    FAILED = contract.EVENT_FAILED
    TEST = contract.EVENT_TEST
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class WebhookEvent:
    """One event as ToAPIs sent it; only what a receiver acts on is read (the task is looked up anyway)."""

    id: str
    kind: EventKind
    type: str
    """The `type` as sent (an undocumented one is kept here while `kind` is UNKNOWN)."""
    task_id: str | None
    client_business_id: str | None

    @property
    def ends_a_task(self) -> bool:
        """Whether the event announces that a real task ended (not the console's test, nor an unknown type)."""
        return self.kind in (EventKind.COMPLETED, EventKind.FAILED) and self.task_id is not None


def parse_event(body: bytes, *, event_id: str) -> WebhookEvent:
    """Read a verified delivery's body; `event_id` is the header's, which the body's `id` must repeat.

    Raises `MalformedEventError` for a body that is not a JSON object with an id, a type and, for a task's end,
    a `data` object naming the task.
    """
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedEventError("the event is not JSON") from None
    if not isinstance(payload, dict):
        raise MalformedEventError("the event is not a JSON object")
    if payload.get("id") != event_id:
        raise MalformedEventError("the event's id differs from the signed header's")
    event_type = payload.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise MalformedEventError("the event has no type")
    try:
        kind = EventKind(event_type)
    except ValueError:
        kind = EventKind.UNKNOWN
    data = payload.get("data")
    if data is None and kind is not EventKind.UNKNOWN:
        raise MalformedEventError("the event has no data")
    if data is not None and not isinstance(data, dict):
        raise MalformedEventError("the event's data is not an object")
    data = data or {}
    task_id = _text(data.get("task_id"))
    if kind in (EventKind.COMPLETED, EventKind.FAILED) and task_id is None:
        raise MalformedEventError("the event names no task")
    return WebhookEvent(
        id=event_id,
        kind=kind,
        type=event_type,
        task_id=task_id,
        client_business_id=_text(data.get("client_business_id")),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None

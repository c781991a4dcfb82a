"""Webhook signatures and events as documented: HMAC-SHA256 over `<id>.<timestamp>.<raw body>`, hex, `v1=`, the
300-second window, two signatures during a rotation; the event's shape. Signatures are made here by hand, not
with the code under test."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from toapis import contract
from toapis.webhooks import (
    EventKind,
    MalformedEventError,
    SignatureProblem,
    WebhookSignatureError,
    parse_event,
    sign,
    signatures_in,
    verify,
)

SECRET = "whsec_3f9a1c0e7d2b4a6f8e1d3c5b7a9f0e2d"
OLD_SECRET = "whsec_old_0a1b2c3d4e5f60718293a4b5c6d7e8f9"
NOW = 1_767_225_600
EVENT_ID = "evt_0123456789"
BODY = json.dumps(
    {
        "id": EVENT_ID,
        "type": "generation.completed",
        "api_version": "v1",
        "created_at": NOW,
        "data": {
            "task_id": "task_img_abc",
            "client_business_id": "job-1",
            "task_type": "image",
            "model": "gpt-image-2",
            "status": "SUCCESS",
            "progress": "100%",
            "result": {"type": "image", "data": [{"url": "https://files.example/1.png"}]},
            "error": None,
            "submitted_at": NOW - 20,
            "finished_at": NOW,
        },
    }
).encode()


def by_hand(secret: str, event_id: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), event_id.encode() + b"." + timestamp.encode() + b"." + body, "sha256").hexdigest()


def headers(signature: str, *, timestamp: int = NOW, event_id: str = EVENT_ID) -> dict[str, str]:
    return {
        contract.WEBHOOK_ID_HEADER: event_id,
        contract.WEBHOOK_TIMESTAMP_HEADER: str(timestamp),
        contract.WEBHOOK_SIGNATURE_HEADER: signature,
    }


def signed(secret: str = SECRET, *, timestamp: int = NOW, body: bytes = BODY) -> dict[str, str]:
    return headers(f"v1={by_hand(secret, EVENT_ID, str(timestamp), body)}", timestamp=timestamp)


def problem_of(secrets: list[str], given: dict[str, str], body: bytes = BODY, now: float = NOW) -> SignatureProblem:
    with pytest.raises(WebhookSignatureError) as caught:
        verify(secrets, given, body, now=now)
    return caught.value.problem


def test_sign_is_the_documented_hmac() -> None:
    expected = hashlib.sha256  # the documented digest
    assert sign(SECRET, EVENT_ID, str(NOW), BODY) == by_hand(SECRET, EVENT_ID, str(NOW), BODY)
    assert len(sign(SECRET, EVENT_ID, str(NOW), BODY)) == expected().digest_size * 2


def test_a_genuine_delivery_gives_its_event_id() -> None:
    assert verify([SECRET], signed(), BODY, now=NOW) == EVENT_ID
    # Header names are case-insensitive in HTTP; aiohttp's mapping is, and a plain dict with the documented
    # spelling is what the contract names.
    assert verify([SECRET], signed(), BODY, now=NOW + 299) == EVENT_ID


def test_anything_changed_is_a_mismatch() -> None:
    assert problem_of([SECRET], signed(), BODY + b" ") is SignatureProblem.MISMATCH
    assert problem_of([SECRET], signed("whsec_someone_else_entirely_0000")) is SignatureProblem.MISMATCH
    other_id = signed() | {contract.WEBHOOK_ID_HEADER: "evt_other"}
    assert problem_of([SECRET], other_id) is SignatureProblem.MISMATCH
    # A later timestamp with the old signature: a replay made to look fresh.
    moved = signed() | {contract.WEBHOOK_TIMESTAMP_HEADER: str(NOW + 5)}
    assert problem_of([SECRET], moved, now=NOW + 5) is SignatureProblem.MISMATCH
    assert problem_of([SECRET], headers("v1=" + "0" * 64)) is SignatureProblem.MISMATCH
    assert problem_of([SECRET], headers("v2=" + by_hand(SECRET, EVENT_ID, str(NOW), BODY))) is SignatureProblem.MISMATCH
    assert problem_of([SECRET], headers("v1=not-hex")) is SignatureProblem.MISMATCH


def test_a_timestamp_outside_five_minutes_either_way_is_stale() -> None:
    assert problem_of([SECRET], signed(timestamp=NOW - 301)) is SignatureProblem.STALE
    assert problem_of([SECRET], signed(timestamp=NOW + 301)) is SignatureProblem.STALE
    assert verify([SECRET], signed(timestamp=NOW - 300), BODY, now=NOW) == EVENT_ID


def test_missing_or_unreadable_headers_are_refused() -> None:
    for name in (contract.WEBHOOK_ID_HEADER, contract.WEBHOOK_TIMESTAMP_HEADER, contract.WEBHOOK_SIGNATURE_HEADER):
        given = {key: value for key, value in signed().items() if key != name}
        assert problem_of([SECRET], given) is SignatureProblem.MISSING_HEADER
    for timestamp in ("soon", "-5", "1.5e9", "9" * 20):
        given = signed() | {contract.WEBHOOK_TIMESTAMP_HEADER: timestamp}
        assert problem_of([SECRET], given) is SignatureProblem.BAD_TIMESTAMP
    # Digits only ASCII: "²" is a digit to str.isdigit (and int() refuses it); Arabic-Indic digits are read by
    # int(). Each is refused as unreadable, even signed correctly.
    arabic_indic_now = str(NOW).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    for timestamp in ("²", "1²", arabic_indic_now):
        given = signed() | {
            contract.WEBHOOK_TIMESTAMP_HEADER: timestamp,
            contract.WEBHOOK_SIGNATURE_HEADER: f"v1={by_hand(SECRET, EVENT_ID, timestamp, BODY)}",
        }
        assert problem_of([SECRET], given) is SignatureProblem.BAD_TIMESTAMP


def test_an_event_id_whose_bytes_are_not_utf8_is_refused_not_an_error() -> None:
    # aiohttp hands a header's non-UTF-8 bytes over as lone surrogates ("surrogateescape").
    given = signed() | {contract.WEBHOOK_ID_HEADER: "evt_\udcff"}
    assert problem_of([SECRET], given) is SignatureProblem.BAD_EVENT_ID


def test_during_a_rotation_either_signature_may_match() -> None:
    both = headers(f"v1={by_hand(SECRET, EVENT_ID, str(NOW), BODY)},v1={by_hand(OLD_SECRET, EVENT_ID, str(NOW), BODY)}")
    assert verify([SECRET], both, BODY, now=NOW) == EVENT_ID  # the operator already has the new secret
    assert verify([OLD_SECRET], both, BODY, now=NOW) == EVENT_ID  # ...or not yet
    assert problem_of(["whsec_neither_of_them_000000000"], both) is SignatureProblem.MISMATCH
    spaced = headers(
        f"v1={by_hand(OLD_SECRET, EVENT_ID, str(NOW), BODY)} , v1={by_hand(SECRET, EVENT_ID, str(NOW), BODY).upper()}"
    )
    assert verify([SECRET], spaced, BODY, now=NOW) == EVENT_ID
    assert signatures_in("v1=ab, v0=cd ,v1=,junk,v1=EF") == ["ab", "ef"]


def test_a_completed_event_is_read() -> None:
    event = parse_event(BODY, event_id=EVENT_ID)
    assert event.kind is EventKind.COMPLETED
    assert (event.task_id, event.client_business_id) == ("task_img_abc", "job-1")
    assert event.ends_a_task


def test_the_console_test_and_unknown_types_end_no_task() -> None:
    test = {"id": "evt_t", "type": "endpoint.test", "data": {"task_id": "endpoint_test", "submitted_at": 0}}
    event = parse_event(json.dumps(test).encode(), event_id="evt_t")
    assert event.kind is EventKind.TEST
    assert not event.ends_a_task
    future = {"id": "evt_f", "type": "generation.progress", "data": {"task_id": "task_img_abc"}}
    event = parse_event(json.dumps(future).encode(), event_id="evt_f")
    assert event.kind is EventKind.UNKNOWN
    assert event.type == "generation.progress"
    assert not event.ends_a_task


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        json.dumps({"type": "generation.completed", "data": {"task_id": "t"}}).encode(),  # no id
        json.dumps({"id": "evt_other", "type": "generation.completed", "data": {"task_id": "t"}}).encode(),
        json.dumps({"id": EVENT_ID, "data": {"task_id": "t"}}).encode(),  # no type
        json.dumps({"id": EVENT_ID, "type": "generation.failed"}).encode(),  # no data
        json.dumps({"id": EVENT_ID, "type": "generation.failed", "data": ["t"]}).encode(),
        json.dumps({"id": EVENT_ID, "type": "generation.completed", "data": {"status": "SUCCESS"}}).encode(),
    ],
    ids=["text", "bytes", "array", "no-id", "other-id", "no-type", "no-data", "data-not-object", "no-task"],
)
def test_a_body_that_is_not_an_event_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedEventError):
        parse_event(body, event_id=EVENT_ID)

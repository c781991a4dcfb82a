"""The webhook side of the fake ToAPIs: the console's settings of its Token, and the deliveries when tasks end.

As documented (toapis/contract.py; the docs' webhook page): webhooks are on for the Token when `configure` set a
default https URL and a secret; a submit's `callback_url` must then share that URL's scheme, host and port (a 400
naming `callback_url` otherwise), and sending one while webhooks are off is `400 webhook_not_configured`. When a
task ends, its event goes to the submit's `callback_url`, or to the Token's URL: POSTed with the documented
headers, signed `v1=<hex HMAC-SHA256 of "<id>.<timestamp>.<body>">` (and `,v1=<old>` while a rotation lasts), no
redirects followed, retried with a fresh timestamp until a 2xx answers, after `retry_delays`.

ToAPIs calls an https URL; the operator's proxy passes it on to Imagine. The fake stands for both: a delivery goes
to `forward_to` (the receiver's `http://127.0.0.1:port`) with the URL's path and query.

A failure's event comes only once ToAPIs' own retries and the refund have settled (documented), so later than a
completion's: `delays` holds, per outcome ("completed", "failed"), how long after the end the first attempt is
sent (`FAILURE_SETTLES`, scaled down as the retries are; set both to make events late).

On demand: `copies` (every attempt sent that many times: repeats), `lose` (the next events are never sent),
`forge` and `stale` (the next deliveries are signed with a wrong secret, or a timestamp ten minutes old), and
`send` for any hand-made delivery.

Written apart from Imagine's code (its own HMAC), so that a wrong reading of the contract shows up in a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import aiohttp

if TYPE_CHECKING:
    from tests.fakes.toapis import FakeTask, FakeToAPIs

ID_HEADER: Final = "X-ToAPIs-Webhook-Id"
TIMESTAMP_HEADER: Final = "X-ToAPIs-Webhook-Timestamp"
SIGNATURE_HEADER: Final = "X-ToAPIs-Webhook-Signature"
USER_AGENT: Final = "ToAPIs-Webhook/1.0"
# The documented schedule (≈10 s, 30 s, 2 min, 10 min, 1 h, 6 h, 24 h), a thousand times faster: tests take ms.
FAST_RETRY_DELAYS: Final = (0.01, 0.03, 0.12, 0.6, 3.6, 21.6, 86.4)
STALE_BY: Final = 600
# How long after a task fails its event is sent (ToAPIs settles its retries and the refund first; the documentation
# says how long nowhere): a completion's comes at once.
FAILURE_SETTLES: Final = 0.05


def hex_signature(secret: str, event_id: str, timestamp: str, body: bytes) -> str:
    """The fake's own signing: hex HMAC-SHA256 over `<id>.<timestamp>.<raw body>` with the secret's UTF-8 bytes."""
    return hmac.new(secret.encode(), f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


@dataclass
class WebhookDelivery:
    """One POST the fake made (or meant to make: `status` None when no answer came, `lost` when never sent)."""

    event_id: str
    event_type: str
    task_id: str
    attempt: int  # 0 for the first, 1 for the first retry...
    time: float  # time.monotonic() when sent
    status: int | None = None
    forged: bool = False
    stale: bool = False
    lost: bool = False


class FakeWebhooks:
    """The Token's webhook settings and the sender of its events."""

    def __init__(self, api: FakeToAPIs) -> None:
        self._api = api
        self.enabled = False
        self.url: str | None = None
        self.secret: str | None = None
        self.previous_secret: str | None = None
        self.forward_to: str | None = None
        self.retry_delays: tuple[float, ...] = FAST_RETRY_DELAYS
        self.timeout = 10.0
        self.copies = 1
        self.delays: dict[str, float] = {"completed": 0.0, "failed": FAILURE_SETTLES}
        self.lose = 0
        self.forge = 0
        self.stale = 0
        self.deliveries: list[WebhookDelivery] = []
        self._ids = itertools.count(1)
        self._ended: dict[str, asyncio.Event] = {}
        self._senders: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._changed = asyncio.Condition()

    # --- the console ------------------------------------------------------------------------------------------

    def configure(self, *, url: str, secret: str, forward_to: str, enabled: bool = True) -> None:
        """Set the Token's default URL (https) and signing secret, turn Task Webhooks on (or off), and say where
        the operator's proxy passes deliveries on to."""
        if urlsplit(url).scheme != "https":
            raise ValueError("the console takes https URLs only")
        self.url, self.secret, self.forward_to, self.enabled = url, secret, forward_to.rstrip("/"), enabled

    def rotate(self, new_secret: str) -> None:
        """Generate a new secret: for a while deliveries carry both signatures, the new one first."""
        self.previous_secret, self.secret = self.secret, new_secret

    @property
    def configured(self) -> bool:
        return self.enabled and self.url is not None and self.secret is not None

    def refusal(self, callback_url: Any) -> tuple[str, str] | None:
        """Why a submit's `callback_url` is refused, as (error code, message); None when it is accepted."""
        if not self.configured:
            return "webhook_not_configured", "Webhooks are not configured for this token"
        if not isinstance(callback_url, str) or _origin(callback_url) != _origin(self.url or ""):
            return "invalid_request", "callback_url must have the scheme, host and port of the token's webhook URL"
        parts = urlsplit(callback_url)
        if parts.username or parts.password or parts.fragment:
            return "invalid_request", "callback_url must have no userinfo or fragment"
        return None

    # --- tasks ------------------------------------------------------------------------------------------------

    def task_created(self, task: FakeTask, callback_url: str | None) -> None:
        """Send the task's event when it ends, to `callback_url` or the Token's URL (if webhooks are on)."""
        url = callback_url or (self.url if self.configured else None)
        if url is None:
            return
        self._ended[task.id] = asyncio.Event()
        sender = asyncio.get_running_loop().create_task(self._follow(task, url), name=f"webhook-{task.id}")
        self._senders.add(sender)
        sender.add_done_callback(self._senders.discard)

    def task_ended(self, task_id: str) -> None:
        """`end_task` was called: the sender need not wait for the timeline."""
        event = self._ended.get(task_id)
        if event is not None:
            event.set()

    async def _follow(self, task: FakeTask, url: str) -> None:
        ended = self._ended[task.id]
        while task.status not in ("completed", "failed"):
            wait: float | None = None
            if task.forced_end is None and task.pinned is None and task.timeline.outcome.value != "never":
                wait = max(task.created + task.timeline.ends_at - time.monotonic(), 0.0) + 0.001
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), timeout=wait)
            ended.clear()
        delay = self.delays.get(task.status, 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        event = self.event_for(task)
        if self.lose > 0:
            self.lose -= 1
            await self._record(WebhookDelivery(event["id"], event["type"], task.id, 0, time.monotonic(), lost=True))
            return
        body = json.dumps(event).encode()
        for attempt, pause in enumerate((0.0, *self.retry_delays)):
            if pause:
                await asyncio.sleep(pause)
            statuses = [await self._deliver(url, event, body, attempt) for _ in range(max(self.copies, 1))]
            if any(status is not None and 200 <= status < 300 for status in statuses):
                return

    def event_for(self, task: FakeTask, *, event_type: str | None = None) -> dict[str, Any]:
        """The documented event body for a task that ended."""
        payload = self._api._task_payload(task)
        completed = payload["status"] == "completed"
        return {
            "id": f"evt_{next(self._ids):06d}{time.time_ns() % 10**6:06d}",
            "type": event_type or ("generation.completed" if completed else "generation.failed"),
            "api_version": "v1",
            "created_at": int(time.time()),
            "data": {
                "task_id": task.id,
                "client_business_id": task.client_business_id,
                "task_type": "image",
                "model": task.model,
                "status": "SUCCESS" if completed else "FAILURE",
                "progress": "100%" if completed else f"{payload['progress']}%",
                "result": payload.get("result"),
                "error": payload.get("error"),
                "submitted_at": task.created_at,
                "finished_at": payload.get("completed_at", int(time.time())),
            },
        }

    def test_event(self) -> dict[str, Any]:
        """What the console's "send a test" sends."""
        return {
            "id": f"evt_test_{next(self._ids):06d}",
            "type": "endpoint.test",
            "api_version": "v1",
            "created_at": int(time.time()),
            "data": {
                "task_id": "endpoint_test",
                "client_business_id": None,
                "task_type": "image",
                "model": None,
                "status": "SUCCESS",
                "progress": "100%",
                "result": None,
                "error": None,
                "submitted_at": 0,
                "finished_at": 0,
            },
        }

    async def _deliver(self, url: str, event: Mapping[str, Any], body: bytes, attempt: int) -> int | None:
        forged, stale = self.forge > 0, self.stale > 0
        self.forge -= forged
        self.stale -= stale
        record = WebhookDelivery(
            event["id"], event["type"], event["data"]["task_id"], attempt, time.monotonic(), forged=forged, stale=stale
        )
        record.status = await self.send(
            body,
            event_id=event["id"],
            url=url,
            secret="not-the-secret-0123456789" if forged else None,
            timestamp=str(int(time.time()) - STALE_BY) if stale else None,
        )
        await self._record(record)
        return record.status

    # --- sending ----------------------------------------------------------------------------------------------

    async def send(
        self,
        body: bytes | Mapping[str, Any],
        *,
        event_id: str | None = None,
        url: str | None = None,
        secret: str | None = None,
        timestamp: str | None = None,
        signature: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> int | None:
        """POST one delivery as ToAPIs would (signed with the Token's secret, and the previous one during a
        rotation, unless `secret` or `signature` says otherwise); the status answered, None without an answer."""
        raw = json.dumps(body).encode() if isinstance(body, Mapping) else body
        if event_id is None:
            event_id = str(body["id"]) if isinstance(body, Mapping) else f"evt_raw_{next(self._ids):06d}"
        timestamp = timestamp or str(int(time.time()))
        if signature is None:
            keys = [secret] if secret is not None else [self.secret, self.previous_secret]
            signature = ",".join(f"v1={hex_signature(key, event_id, timestamp, raw)}" for key in keys if key)
        sent = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            ID_HEADER: event_id,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature,
            **(headers or {}),
        }
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(
                self._target(url or self.url or ""),
                data=raw,
                headers=sent,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as answer:
                await answer.read()
                return answer.status
        except (aiohttp.ClientError, TimeoutError):
            return None

    def _target(self, url: str) -> str:
        parts = urlsplit(url)
        if self.forward_to is None:
            raise RuntimeError("configure(forward_to=...) says where the operator's proxy passes deliveries on")
        return f"{self.forward_to}{parts.path or '/'}{'?' + parts.query if parts.query else ''}"

    async def _record(self, delivery: WebhookDelivery) -> None:
        self.deliveries.append(delivery)
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until `condition()` holds, checked at every delivery; TimeoutError after `timeout`."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(condition)

    def of_task(self, task_id: str) -> list[WebhookDelivery]:
        return [delivery for delivery in self.deliveries if delivery.task_id == task_id]

    async def close(self) -> None:
        for sender in list(self._senders):
            sender.cancel()
        for sender in list(self._senders):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
        if self._session is not None:
            await self._session.close()
            self._session = None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    return parts.scheme, (parts.hostname or "").lower(), port or (443 if parts.scheme == "https" else 80)

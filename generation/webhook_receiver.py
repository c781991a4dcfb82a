"""The HTTP endpoint ToAPIs calls when a task ends (with TOAPIS_WEBHOOK_SECRET and WEBHOOK_PUBLIC_URL set).

It listens on WEBHOOK_HOST:WEBHOOK_PORT, plain HTTP, behind the operator's HTTPS proxy (docs/operators.md), and
takes a POST on any path: the signature, not the path, is what proves a delivery. What it answers:

- 400 to a body over `contract.WEBHOOK_MAX_BODY_BYTES` (refused unread) or, once verified, one that is not an
  event; 408 to a body not received whole within ToAPIs's own timeout (a client trickling it in would otherwise
  hold its connection for ever); 401 to a delivery whose signature is missing, wrong or outside the timestamp
  window. None changes anything. Refusals of the signature are logged at most once a minute, with their count: the
  endpoint faces the internet, and anyone may send them.
- 2xx to every verified event, once its id is stored (docs/guarantees.md): a repeat, the console's
  `endpoint.test`, an unknown type, a task no unfinished job follows are answered and otherwise ignored.
- 500 when the database cannot store the event: ToAPIs delivers it again later.

A verified event that ends a task is only a wake-up: the job's follower looks the task up at once and finishes it
the way polling does (generation/polling.py). When this process does not follow the task right now (another
process holds the job's lease, or the follower is not waiting yet), the event names the process that must wake it,
and that process's `WakeupRelay` (generation/webhook_relay.py) does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from aiohttp import web

from generation.local_server import LocalServer
from generation.metrics import Metrics
from generation.wakeups import TaskWakeups
from storage.webhook_events import WebhookEvents
from toapis import contract
from toapis.webhooks import MalformedEventError, WebhookEvent, WebhookSignatureError, parse_event, verify

log = logging.getLogger(__name__)

_READ_CHUNK = 64 * 1024
# Anyone who reaches the endpoint can send refused deliveries: one warning a minute says they come, not each.
_REFUSALS_LOGGED_EVERY = 60.0
# Deliveries read at once, at most: each may hold a body of up to WEBHOOK_MAX_BODY_BYTES for up to the read
# deadline, so clients that trickle bytes could otherwise hold memory and file descriptors the bot needs for
# Discord, ToAPIs and its database. ToAPIs' own deliveries take milliseconds each, and one answered 503 is sent
# again by its retries.
MAX_DELIVERIES_AT_ONCE = 64


class WebhookReceiver(LocalServer):
    """The webhook endpoint: start it once, close it on the way out."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        secrets: Sequence[str],
        events: WebhookEvents,
        wakeups: TaskWakeups,
        owner: str,
        leased: bool,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        max_body: int = contract.WEBHOOK_MAX_BODY_BYTES,
        read_timeout: float = contract.WEBHOOK_DELIVERY_TIMEOUT_SECONDS,
        max_at_once: int = MAX_DELIVERIES_AT_ONCE,
    ) -> None:
        if not any(secrets):
            raise ValueError("a webhook receiver needs the signing secret")
        super().__init__(host=host, port=port)
        self._secrets = tuple(secret for secret in secrets if secret)
        self._events = events
        self._wakeups = wakeups
        self._owner = owner
        self._leased = leased
        self._metrics = metrics or Metrics()
        self._clock = clock
        self._max_body = max_body
        self._read_timeout = read_timeout
        self._max_at_once = max_at_once
        self._at_once = 0
        self._unlogged_refusals = 0
        self._next_refusal_log = float("-inf")

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post("/{path:.*}", self._receive)

    async def _receive(self, request: web.Request) -> web.Response:
        if self._at_once >= self._max_at_once:
            return self._answer(503, "busy: send it again", "busy")
        self._at_once += 1
        try:
            return await self._deliver(request)
        finally:
            self._at_once -= 1

    async def _deliver(self, request: web.Request) -> web.Response:
        try:
            # ToAPIs gives up on an answer after this long: a body still coming by then is no delivery of its.
            async with asyncio.timeout(self._read_timeout):
                body = await self._read_body(request)
        except TimeoutError:
            return self._answer(408, "the body came too slowly", "malformed")
        if body is None:
            return self._answer(400, "the body is too large", "malformed")
        try:
            event_id = verify(self._secrets, request.headers, body, now=self._clock())
        except WebhookSignatureError as exc:
            self._log_refusal(exc)
            return self._answer(401, "the signature does not match", "bad_signature")
        try:
            event = parse_event(body, event_id=event_id)
        except MalformedEventError as exc:
            log.warning("Refused webhook %s: %s", event_id, exc)
            return self._answer(400, "not an event", "malformed")
        try:
            outcome = await self._take(event)
        except Exception:
            # Not stored, so not answered 2xx: ToAPIs delivers it again.
            log.exception("Webhook %s could not be stored", event_id)
            return self._answer(500, "try again later", "error")
        return self._answer(200, "ok", outcome)

    def _log_refusal(self, exc: WebhookSignatureError) -> None:
        """The first refusal at once, then at most one line a minute counting those since (the metrics count
        each)."""
        self._unlogged_refusals += 1
        now = self._clock()
        if now < self._next_refusal_log:
            return
        log.warning("Refused %d webhook(s) whose signature did not verify; the last: %s", self._unlogged_refusals, exc)
        self._unlogged_refusals = 0
        self._next_refusal_log = now + _REFUSALS_LOGGED_EVERY

    async def _read_body(self, request: web.Request) -> bytes | None:
        """The raw body, or None when it is larger than allowed (refused without reading it all)."""
        if request.content_length is not None and request.content_length > self._max_body:
            return None
        chunks: list[bytes] = []
        size = 0
        while chunk := await request.content.read(_READ_CHUNK):
            size += len(chunk)
            if size > self._max_body:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def _take(self, event: WebhookEvent) -> str:
        """Store the event (first), then wake its task's follower or leave the wake-up for the one who follows it;
        what became of it, as a metrics outcome."""
        events = self._events
        if not event.ends_a_task or event.task_id is None:
            recorded = await events.record(event.id, task_id=event.task_id, job_id=None)
            log.info("Webhook %s (%s) answered; nothing to wake", event.id, event.type)
            return "ignored" if recorded else "repeat"
        task_id = event.task_id
        target = await events.target(task_id=task_id, job_id=event.client_business_id)
        # Without leases, every unfinished job is this process's; with them, a job nobody holds has no follower
        # (whoever takes it up looks its task up at once anyway). A job past its task (downloading, delivering)
        # has none either.
        if target is None or not target.awaits_its_task:
            holder = None
        else:
            holder = target.lease_owner if self._leased else self._owner
        # Who must wake the follower, decided before the one write that records the event: were the wake-up
        # written apart, a failure between the two would leave the event recorded, its retry a repeat, and the
        # wake-up lost.
        wake_owner: str | None = None
        if holder == self._owner:
            # Its follower is not waiting yet (the submit's answer has not come back, say): the relay wakes it.
            wake_owner = None if self._wakeups.watching(task_id) else self._owner
        elif holder is not None:
            wake_owner = holder
        recorded = await events.record(
            event.id, task_id=task_id, job_id=None if target is None else target.job_id, wake_owner=wake_owner
        )
        if not recorded:
            log.info("Webhook %s repeated; ignored", event.id)
            return "repeat"
        if holder == self._owner and self._wakeups.wake(task_id):
            # (Had the follower begun to wait since, the relay wakes it once more: one look-up more, nothing else.)
            log.debug("Webhook %s woke task %s", event.id, task_id)
            return "woken"
        if wake_owner == self._owner:
            # Its follower starts once the submit is answered: woken from the start, without waiting for the relay.
            self._wakeups.wake(task_id, when_followed=True)
        if wake_owner is not None:
            log.debug("Webhook %s: task %s is to be woken by %s; left for it", event.id, task_id, wake_owner)
            return "left_for_holder"
        log.info("Webhook %s: no job waits for task %s; ignored", event.id, task_id)
        return "ignored"

    def _answer(self, status: int, text: str, outcome: str) -> web.Response:
        self._metrics.webhook_received(outcome)
        return web.Response(status=status, text=text)

"""A loopback fake of the ToAPIs image API (its docs: GitHub toapis/docs, docs/en/api-reference/), for tests.

It serves real HTTP on 127.0.0.1 (an ephemeral port by default):

- `POST /v1/images/generations`, `GET /v1/images/generations/{id}`, `POST /v1/uploads/images`, `GET /v1/models`
  (text models only, as documented; `?type=image` the image models, `?type=all` both) and `GET /v1/balance`
  (`unlimited_quota`, `used_*`), each checking `Authorization: Bearer <api_key>` (401 with the documented body);
- each catalogued model's rules for a submit (toapis/catalog.py; the checks are in `_toapis_rules`): a model,
  aspect, resolution, n, reference count or prompt length the model does not take, a resolution in the wrong
  place or case for it, or a reference of a shape it does not take (Seedream's 1:3 to 3:1, sides over 14 px;
  only for the fake's own uploads, whose pixels it holds: another host's image is taken as it is), is a 400
  naming the field;
- `size` in the current pages' ratio form only ("3:2" plus the model's resolution, the default), or in the older
  page's pixel form only ("1536x1024"): `size_mode`; the other form is a 400 naming `size`;
- a files host under `/files/` that serves real, distinct PNG images (one colour per task and index) at the
  documented pixels of the task's aspect and resolution (where no page gives them, a size of that ratio), and
  the uploaded images;
- a timeline per task (queued -> in_progress with progress -> completed or failed, or never ending), computed
  from the time since the task was created: no background tasks, so nothing to clean up;
- fault injection per endpoint (`fail`), optional rate limiting (`set_rate_limit`, windows that hold together;
  `set_documented_rate_limits`: ToAPIs's a second, in ten seconds and a minute), and a log of every request
  (`requests`, with the key redacted);
- signed webhooks when tasks end, once `webhooks.configure` set the Token's URL and secret (`callback_url` on a
  submit, `400 webhook_not_configured` without them; repeats, late, lost, forged, stale and rotated deliveries on
  demand): `tests/fakes/_toapis_webhooks.py`.

Choices where the documentation is silent (the client makes the same assumptions, in toapis/contract.py):

- Lookup by `client_business_id` uses the same path as lookup by task id: `GET /v1/images/generations/{id}`
  finds a task by its id first, then by its business id (the newest task, should several share one).
- A task is visible to that lookup as soon as the submit created it.
- Two submits with the same `client_business_id` create two tasks: the worst case, so that a test can count.
- Reference URLs on localhost are refused, as documented, except this fake's own files host.
- Retry-After may be fractional (the real API sends whole seconds) so that tests run in milliseconds.

Use it as the `toapis_fake` fixture (function scope), as `async with FakeToAPIs() as fake:`, or standalone:
`python -m tests.fakes.toapis --port 8080`. The `toapis_client` fixture is a ToAPIsClient pointed at the fake,
with instant retries, on a fresh aiohttp session.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import ipaddress
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from tests.fakes._png import colour_for
from tests.fakes._toapis_rules import (
    GenerationRequest,
    Refusal,
    read_submit,
    reference_shape_refusal,
    solid_palette_png,
)
from tests.fakes._toapis_rules import SizeMode as SizeMode  # part of this fake's interface
from tests.fakes._toapis_webhooks import FakeWebhooks
from toapis import RetryPolicy, ToAPIsClient, catalog

log = logging.getLogger(__name__)

DEFAULT_API_KEY: Final = "sk-fake-toapis-0123456789abcdef"
UPLOAD_MAX_BYTES: Final = 10_000_000
RESULT_URL_LIFETIME: Final = 86_400
# How a task that failed on the content policy explains itself (the documentation: "message names the policy").
CONTENT_POLICY_MESSAGE: Final = (
    "Your request was rejected by the safety system: the prompt violates the content policy."
)

# Retries with no delay, for tests.
INSTANT_RETRY: Final = RetryPolicy(max_retries=2, initial_delay=0.0, max_delay=0.0, jitter=0.0)

_HTML_502: Final = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
    b"</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_HTML_504: Final = (
    b"<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out"
    b"</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


# Text models GET /v1/models lists without `?type=image` (the documentation: "text models only").
TEXT_MODELS: Final = ("gpt-4o-mini", "claude-sonnet-4-5", "deepseek-chat")


class Endpoint(StrEnum):
    """What a request was for; faults are injected per endpoint."""

    SUBMIT = "submit"
    LOOKUP = "lookup"
    UPLOAD = "upload"
    DOWNLOAD = "download"  # the files host: results and uploaded images
    MODELS = "models"
    BALANCE = "balance"


# The documented rate-limit bucket of each endpoint.
CATEGORIES: Final = {Endpoint.SUBMIT: "async_submit", Endpoint.LOOKUP: "async_query"}


class Outcome(StrEnum):
    """How a task ends."""

    COMPLETED = "completed"
    FAILED = "failed"
    CONTENT_POLICY = "content_policy"  # failed, with an error whose message names the content policy
    NEVER = "never"  # stays running forever (until `end_task`)


class ResultFormat(StrEnum):
    """How a completed task carries its images."""

    RESULT_DATA = "result_data"  # result.data[*].url, plus a top-level url of the first image
    TOP_LEVEL_URL = "top_level_url"  # only a top-level url (one image), as some doc pages show
    B64_JSON = "b64_json"  # result.data[*].b64_json


@dataclass(frozen=True)
class Step:
    """From `at` seconds after its creation, a task has this status and progress."""

    at: float
    status: str = "in_progress"
    progress: int = 0


@dataclass(frozen=True)
class Timeline:
    """What a task goes through: `steps` in order, then `outcome` at `ends_at` seconds after creation."""

    steps: tuple[Step, ...] = (Step(0.0, "queued", 0), Step(0.005, "in_progress", 40), Step(0.01, "in_progress", 80))
    ends_at: float = 0.015
    outcome: Outcome = Outcome.COMPLETED
    images: int | None = None  # images in the result; None: as many as asked
    error_code: str = "generation_failed"
    error_message: str = "Image generation failed"

    @classmethod
    def simple(
        cls,
        *,
        queued: float = 0.0,
        running: float = 0.01,
        progress: Sequence[int] = (50,),
        outcome: Outcome = Outcome.COMPLETED,
        images: int | None = None,
    ) -> Timeline:
        """Queued for `queued` s, then in_progress through `progress` evenly over `running` s, then `outcome`."""
        steps = [Step(0.0, "queued", 0)]
        for index, value in enumerate(progress or (0,)):
            steps.append(Step(queued + running * index / max(len(progress), 1), "in_progress", value))
        return cls(steps=tuple(steps), ends_at=queued + running, outcome=outcome, images=images)

    @classmethod
    def instant(cls) -> Timeline:
        """Completed at the first lookup."""
        return cls(steps=(Step(0.0, "queued", 0),), ends_at=0.0)

    @classmethod
    def never_ends(cls, *, progress: int = 10) -> Timeline:
        """Runs forever (until `FakeToAPIs.end_task`)."""
        return cls(steps=(Step(0.0, "queued", 0), Step(0.0, "in_progress", progress)), outcome=Outcome.NEVER)

    @classmethod
    def failing(
        cls, message: str = "Image generation failed", *, code: str = "generation_failed", after: float = 0.01
    ) -> Timeline:
        """Fails `after` seconds with this error."""
        return cls(
            steps=(Step(0.0, "queued", 0), Step(after / 2, "in_progress", 30)),
            ends_at=after,
            outcome=Outcome.FAILED,
            error_code=code,
            error_message=message,
        )

    @classmethod
    def content_policy(cls, *, after: float = 0.01, message: str = CONTENT_POLICY_MESSAGE) -> Timeline:
        """Fails `after` seconds, the way content-policy refusals of a running task arrive, saying `message`."""
        return cls(
            steps=(Step(0.0, "queued", 0),),
            ends_at=after,
            outcome=Outcome.CONTENT_POLICY,
            error_message=message,
        )

    @classmethod
    def fewer_images(cls, images: int, *, after: float = 0.01) -> Timeline:
        """Completes after `after` seconds with only `images` images, whatever was asked."""
        return cls.simple(running=after, images=images)

    def state_at(self, elapsed: float) -> tuple[str, int]:
        """The (status, progress) a task on this timeline shows `elapsed` seconds after creation."""
        if self.outcome is not Outcome.NEVER and elapsed >= self.ends_at:
            if self.outcome is Outcome.COMPLETED:
                return "completed", 100
            return "failed", self._progress_at(elapsed)
        status, progress = "queued", 0
        for step in self.steps:
            if elapsed >= step.at:
                status, progress = step.status, step.progress
        return status, progress

    def _progress_at(self, elapsed: float) -> int:
        progress = 0
        for step in self.steps:
            if elapsed >= step.at:
                progress = step.progress
        return progress


class FaultKind(StrEnum):
    """How a fault misbehaves."""

    ANSWER = "answer"  # answer with the fault's status and body instead
    SLOW = "slow"  # wait `delay`, then answer normally
    DISCONNECT = "disconnect"  # wait `delay`, then close the connection without answering
    TRUNCATE = "truncate"  # send the headers and half the body, then close the connection
    STALL_BODY = "stall_body"  # send the headers and half the body, wait `delay`, then the rest


@dataclass(frozen=True)
class Fault:
    """A misbehaviour injected with `FakeToAPIs.fail`. Build one with the class methods."""

    kind: FaultKind
    status: int = 500
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    # For 429s: the X-RateLimit-Category; None: the endpoint's own bucket.
    category: str | None = None

    @classmethod
    def answer(
        cls,
        status: int,
        body: bytes | str | Mapping[str, Any],
        *,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Fault:
        """Answer with exactly this status and body (a mapping is sent as JSON)."""
        if isinstance(body, Mapping):
            raw, kind = json.dumps(body).encode(), "application/json"
        elif isinstance(body, str):
            raw, kind = body.encode(), "text/plain"
        else:
            raw, kind = body, "application/octet-stream"
        return cls(
            FaultKind.ANSWER,
            status=status,
            body=raw,
            content_type=content_type or kind,
            headers=tuple((headers or {}).items()),
        )

    @classmethod
    def rate_limited(
        cls, retry_after: float | None = 0.0, *, category: str | None = None, limit: int = 300, reset: int = 60
    ) -> Fault:
        """429 rate_limit_exceeded with Retry-After and the X-RateLimit-* headers."""
        headers = [("X-RateLimit-Limit", str(limit)), ("X-RateLimit-Remaining", "0"), ("X-RateLimit-Reset", str(reset))]
        if retry_after is not None:
            headers.append(("Retry-After", _seconds(retry_after)))
        body = _error_body("rate_limit_exceeded", "Rate limit exceeded, please retry later", "rate_limit_error")
        return cls(FaultKind.ANSWER, status=429, body=body, headers=tuple(headers), category=category)

    @classmethod
    def server_error(cls) -> Fault:
        """500 with a JSON error body."""
        return cls(
            FaultKind.ANSWER, status=500, body=_error_body("internal_error", "Internal server error", "server_error")
        )

    @classmethod
    def unavailable(cls) -> Fault:
        """503 rate_limit_unavailable: submits paused."""
        body = _error_body("rate_limit_unavailable", "Task submission is temporarily unavailable", "server_error")
        return cls(FaultKind.ANSWER, status=503, body=body)

    @classmethod
    def bad_gateway(cls) -> Fault:
        """502 with an nginx HTML page."""
        return cls(FaultKind.ANSWER, status=502, body=_HTML_502, content_type="text/html")

    @classmethod
    def gateway_timeout(cls) -> Fault:
        """504 with an nginx HTML page."""
        return cls(FaultKind.ANSWER, status=504, body=_HTML_504, content_type="text/html")

    @classmethod
    def not_found(cls) -> Fault:
        """The documented 404 for an unknown task."""
        return cls(FaultKind.ANSWER, status=404, body=_NOT_FOUND_BODY)

    @classmethod
    def task_not_exist(cls) -> Fault:
        """The reported `400 {"message":"task_not_exist"}` variant of an unknown task."""
        return cls(FaultKind.ANSWER, status=400, body=_TASK_NOT_EXIST_BODY)

    @classmethod
    def unauthorized(cls) -> Fault:
        """401 authentication_error, as for a wrong key."""
        return cls(FaultKind.ANSWER, status=401, body=_UNAUTHORIZED_BODY)

    @classmethod
    def insufficient_balance(cls) -> Fault:
        """402 insufficient_quota."""
        body = _error_body("insufficient_quota", "Insufficient account balance", "insufficient_quota")
        return cls(FaultKind.ANSWER, status=402, body=body)

    @classmethod
    def content_policy(cls) -> Fault:
        """422 content_policy_violation."""
        body = _error_body(
            "content_policy_violation", "The prompt was rejected by the content policy", "invalid_request_error"
        )
        return cls(FaultKind.ANSWER, status=422, body=body)

    @classmethod
    def bad_request(cls, message: str = "Invalid request parameters", *, param: str | None = None) -> Fault:
        """400 invalid_request."""
        return cls(
            FaultKind.ANSWER, status=400, body=_error_body("invalid_request", message, "invalid_request_error", param)
        )

    @classmethod
    def slow(cls, delay: float) -> Fault:
        """Wait `delay` seconds, then answer normally (to trigger the client's timeout)."""
        return cls(FaultKind.SLOW, delay=delay)

    @classmethod
    def disconnect(cls, *, delay: float = 0.0) -> Fault:
        """Close the connection without answering (after `delay` seconds)."""
        return cls(FaultKind.DISCONNECT, delay=delay)

    @classmethod
    def truncated(cls) -> Fault:
        """Send the headers and half the body, then close the connection."""
        return cls(FaultKind.TRUNCATE)

    @classmethod
    def stalled_body(cls, delay: float) -> Fault:
        """Send the headers and half the body, wait `delay` seconds, then send the rest."""
        return cls(FaultKind.STALL_BODY, delay=delay)


@dataclass
class _ArmedFault:
    fault: Fault
    remaining: int | None  # None: forever
    after_effect: bool


@dataclass
class FakeTask:
    """A task as the fake holds it. Its status is computed from its timeline and the time since creation."""

    id: str
    client_business_id: str | None
    model: str
    prompt: str
    size: str  # the result's pixels, "WxH"
    n: int
    reference_images: tuple[str, ...]
    response_format: str | None
    timeline: Timeline
    created: float  # time.monotonic()
    created_at: int  # unix seconds
    forced_end: tuple[float, Outcome] | None = None
    pinned: tuple[str, int] | None = None  # a (status, progress) set by hand, until the task ends
    aspect: str = catalog.DEFAULT_ASPECT
    resolution: str = "1k"

    @property
    def width(self) -> int:
        """Width in pixels, from `size`."""
        return int(self.size.split("x")[0])

    @property
    def height(self) -> int:
        """Height in pixels, from `size`."""
        return int(self.size.split("x")[1])

    @property
    def image_count(self) -> int:
        """How many images the task returns when it completes."""
        return self.n if self.timeline.images is None else min(self.timeline.images, self.n)

    def state(self, now: float | None = None) -> tuple[str, int]:
        """(status, progress) now."""
        now = time.monotonic() if now is None else now
        if self.forced_end is not None:
            ended, outcome = self.forced_end
            if now >= ended:
                return ("completed", 100) if outcome is Outcome.COMPLETED else ("failed", 0)
        if self.pinned is not None:
            return self.pinned
        return self.timeline.state_at(now - self.created)

    @property
    def outcome(self) -> Outcome:
        """How the task ends (or ended)."""
        return self.forced_end[1] if self.forced_end is not None else self.timeline.outcome

    @property
    def status(self) -> str:
        """The status now."""
        return self.state()[0]

    def ended_after(self) -> float:
        """Seconds from creation to the end (for completed_at)."""
        if self.forced_end is not None:
            return self.forced_end[0] - self.created
        return self.timeline.ends_at


@dataclass
class FakeUpload:
    """An uploaded image."""

    id: str
    filename: str
    declared_type: str
    mime_type: str
    data: bytes = field(repr=False)
    purpose: str
    created: float


@dataclass
class RecordedRequest:
    """One request the fake received. The Authorization header is redacted; `key_ok` says if it was right."""

    method: str
    path: str
    endpoint: Endpoint | None
    headers: dict[str, str]
    key_ok: bool | None  # None: no Authorization header
    time: float  # time.monotonic()
    json: Any = None
    form: dict[str, str] | None = None
    status: int | None = None  # what the fake answered; None: the connection was dropped
    fault: Fault | None = None
    query: dict[str, str] = field(default_factory=dict)


# Per-request storage: the log entry of the request, and whether its connection was dropped.
_RECORD: Final = web.RequestKey("record", RecordedRequest)
_DROPPED: Final = web.RequestKey("dropped", bool)


class FakeToAPIs:
    """The fake API server. Start it with `start()` (or `async with`), stop it with `close()`."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        host: str = "127.0.0.1",
        port: int = 0,
        timeline: Timeline | None = None,
        models: Sequence[str] | None = None,
        size_mode: SizeMode = SizeMode.RATIO,
    ) -> None:
        self.api_key = api_key
        self.host = host
        self.default_timeline = timeline or Timeline()
        # The models the key may use (GET /v1/models lists them): catalogued ids, by default all of them.
        self.models = tuple(catalog.MODELS) if models is None else tuple(models)
        unknown = [model for model in self.models if model not in catalog.MODELS]
        if unknown:
            raise ValueError(f"the fake knows the rules of catalogued models only, not {unknown}")
        # Which form of `size` submits must use; may be changed at any time.
        self.size_mode = size_mode
        self.tasks: dict[str, FakeTask] = {}
        self.uploads: dict[str, FakeUpload] = {}
        self.requests: list[RecordedRequest] = []
        # Files host behaviour.
        self.result_format = ResultFormat.RESULT_DATA
        self.result_min_bytes = 0  # pad every served result PNG to at least this many bytes ("large files")
        self.files_content_type: str | None = None  # serve files with this content type instead (e.g. text/html)
        self.files_chunked = False  # serve files chunked, without a Content-Length
        self.upload_ttl: float | None = None  # uploads expire after this many seconds (None: never)
        # The account: with neither balance nor credits left, submits answer 402 insufficient_quota.
        self.remain_balance = 100.0
        self.remain_credits = 1000.0
        # The balance fields are in the account's own unit (USD, CNY or tokens); credits per dollar are fixed.
        self.credits_per_usd = 200
        self.used_balance = 0.0
        self.used_credits = 0.0
        self.unlimited_quota = False  # never exhausted; GET /balance then shows remain_balance -1
        # Unknown task ids answer the documented 404, or the reported 400 "task_not_exist" variant.
        self.task_not_exist_variant = False
        # The Token's webhook settings in the console, and the deliveries of task events (off until configured).
        self.webhooks = FakeWebhooks(self)
        self._port = port
        self._faults: dict[Endpoint, deque[_ArmedFault]] = {endpoint: deque() for endpoint in Endpoint}
        self._prompt_timelines: list[tuple[str, Timeline]] = []
        self._next_timelines: deque[Timeline] = deque()
        self._rate_limits: dict[str, list[tuple[int, float]]] = {}
        self._hits: dict[str, deque[float]] = {}
        self._ids = itertools.count(1)
        self._closing = asyncio.Event()
        self._request_seen = asyncio.Condition()
        self._runner: web.AppRunner | None = None

    # --- lifecycle --------------------------------------------------------------------------------------------

    async def start(self) -> FakeToAPIs:
        """Listen on `host` and the port (ephemeral unless given)."""
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._record_middleware])
        app.router.add_post("/v1/images/generations", self._submit, name=Endpoint.SUBMIT.value)
        app.router.add_get("/v1/images/generations/{id}", self._lookup, name=Endpoint.LOOKUP.value)
        app.router.add_post("/v1/uploads/images", self._upload, name=Endpoint.UPLOAD.value)
        app.router.add_get("/v1/models", self._models, name=Endpoint.MODELS.value)
        app.router.add_get("/v1/balance", self._balance, name=Endpoint.BALANCE.value)
        app.router.add_get("/files/results/{task_id}/{index}.png", self._result_file, name="download_result")
        app.router.add_get("/files/uploads/{name}", self._upload_file, name="download_upload")
        # handler_cancellation: a client that gives up cancels the handler (a "slow" fault stops waiting).
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        """Stop serving; pending slow answers end at once, and so do pending webhook deliveries."""
        self._closing.set()
        await self.webhooks.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeToAPIs:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def port(self) -> int:
        """The port it listens on."""
        return self._port

    @property
    def base_url(self) -> str:
        """The API base URL, ending in /v1."""
        return f"http://{self.host}:{self._port}/v1"

    @property
    def files_url(self) -> str:
        """The files host's base URL."""
        return f"http://{self.host}:{self._port}/files"

    # --- controls ---------------------------------------------------------------------------------------------

    def fail(self, endpoint: Endpoint, fault: Fault, *, times: int | None = 1, after_effect: bool = False) -> None:
        """Make the next `times` requests to `endpoint` misbehave (`times=None`: every one, until cleared).

        `after_effect=True` lets the request take effect first (the task is created, the upload stored) and only
        then misbehaves: the ambiguous case of a submit whose answer never arrives. Faults queue in order.
        """
        self._faults[endpoint].append(_ArmedFault(fault, times, after_effect))

    def clear_faults(self, endpoint: Endpoint | None = None) -> None:
        """Remove the faults of one endpoint, or of all."""
        for key in [endpoint] if endpoint is not None else list(Endpoint):
            self._faults[key].clear()

    def on_prompt(self, text: str, timeline: Timeline) -> None:
        """Tasks whose prompt contains `text` follow `timeline` (the first matching rule wins)."""
        self._prompt_timelines.append((text, timeline))

    def queue_timeline(self, *timelines: Timeline) -> None:
        """The next tasks created follow these timelines, in order (before any prompt rule)."""
        self._next_timelines.extend(timelines)

    def set_rate_limit(self, endpoint: Endpoint, limit: int, window: float) -> None:
        """Allow `limit` requests per `window` seconds in the bucket of `endpoint` (submit or lookup). Called again
        with another window, both hold, as ToAPIs's a second, in ten seconds and a minute do together."""
        windows = [kept for kept in self._rate_limits.get(CATEGORIES[endpoint], []) if kept[1] != window]
        self._rate_limits[CATEGORIES[endpoint]] = [*windows, (limit, window)]

    def set_documented_rate_limits(self, *, second: float = 1.0) -> None:
        """ToAPIs's documented limits of the default group, with `second` standing for a second (tests shorten it):
        submits 5 a second, 50 in ten and 300 a minute; look-ups 50 a second, 500 in ten and 3,000 a minute."""
        for endpoint, per_second in ((Endpoint.SUBMIT, 5), (Endpoint.LOOKUP, 50)):
            for seconds, factor in ((1, 1), (10, 10), (60, 60)):
                self.set_rate_limit(endpoint, per_second * factor, seconds * second)

    def end_task(self, task_id: str, outcome: Outcome = Outcome.COMPLETED) -> None:
        """End a task now (e.g. one that never ends)."""
        self.tasks[task_id].forced_end = (time.monotonic(), outcome)
        self.webhooks.task_ended(task_id)

    def set_task_state(self, task_id: str, status: str, progress: int = 0) -> None:
        """Hold a task at this (status, progress), whatever its timeline says, until `end_task`."""
        self.tasks[task_id].pinned = (status, progress)

    def forget_task(self, task_id: str) -> None:
        """Drop a task: lookups answer "unknown task" from now on."""
        del self.tasks[task_id]

    def tasks_for(self, client_business_id: str) -> list[FakeTask]:
        """Every task created with this business id, oldest first."""
        return [task for task in self.tasks.values() if task.client_business_id == client_business_id]

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until `condition()` holds, re-checking it at every request received; TimeoutError after `timeout`.

        E.g. `await fake.wait_for(lambda: len(fake.requests_to(Endpoint.LOOKUP)) >= 3)`.
        """
        async with asyncio.timeout(timeout), self._request_seen:
            await self._request_seen.wait_for(condition)

    def requests_to(self, endpoint: Endpoint) -> list[RecordedRequest]:
        """The recorded requests to one endpoint."""
        return [request for request in self.requests if request.endpoint is endpoint]

    def result_url(self, task_id: str, index: int) -> str:
        """The files-host URL of a task's image (1-based index)."""
        return f"{self.files_url}/results/{task_id}/{index}.png"

    def result_png(self, task_id: str, index: int) -> bytes:
        """The exact bytes the files host serves for a task's image."""
        task = self.tasks[task_id]
        colour = colour_for(f"{task_id}:{index}")
        return solid_palette_png(task.width, task.height, colour, min_bytes=self.result_min_bytes)

    # --- request plumbing -------------------------------------------------------------------------------------

    @web.middleware
    async def _record_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        route = request.match_info.route.name or ""
        endpoint = Endpoint.DOWNLOAD if route.startswith("download") else _endpoint(route)
        auth = request.headers.get("Authorization")
        headers = {
            key: ("[redacted]" if key.lower() == "authorization" else value) for key, value in request.headers.items()
        }
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            endpoint=endpoint,
            headers=headers,
            key_ok=None if auth is None else auth == f"Bearer {self.api_key}",
            time=time.monotonic(),
            query=dict(request.query),
        )
        self.requests.append(record)
        request[_RECORD] = record
        async with self._request_seen:
            self._request_seen.notify_all()
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            record.status = exc.status
            raise
        if record.status is None and not request.get(_DROPPED, False):
            record.status = response.status
        return response

    async def _serve(
        self, request: web.Request, endpoint: Endpoint, effect: Callable[[], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Answer normally, unless a fault is armed for `endpoint`."""
        armed = self._take_fault(endpoint)
        if armed is None:
            return await effect()
        request[_RECORD].fault = armed.fault
        if armed.after_effect:
            done = await effect()

            async def already_done() -> web.StreamResponse:
                return done

            return await self._misbehave(request, endpoint, armed.fault, already_done)
        return await self._misbehave(request, endpoint, armed.fault, effect)

    def _take_fault(self, endpoint: Endpoint) -> _ArmedFault | None:
        queue = self._faults[endpoint]
        if not queue:
            return None
        armed = queue[0]
        if armed.remaining is not None:
            armed.remaining -= 1
            if armed.remaining <= 0:
                queue.popleft()
        return armed

    async def _misbehave(
        self,
        request: web.Request,
        endpoint: Endpoint,
        fault: Fault,
        normal: Callable[[], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if fault.kind in (FaultKind.SLOW, FaultKind.DISCONNECT) and fault.delay > 0:
            await self._pause(fault.delay)
        if fault.kind is FaultKind.SLOW:
            return await normal()
        if fault.kind is FaultKind.DISCONNECT:
            self._drop(request)
            return web.Response(status=499)  # never sent: the connection is gone
        if fault.kind in (FaultKind.TRUNCATE, FaultKind.STALL_BODY):
            return await self._send_partially(request, await normal(), fault)
        headers = dict(fault.headers)
        if fault.status == 429:
            headers.setdefault("X-RateLimit-Category", fault.category or CATEGORIES.get(endpoint, "async_query"))
        return web.Response(status=fault.status, body=fault.body, content_type=fault.content_type, headers=headers)

    async def _send_partially(
        self, request: web.Request, response: web.StreamResponse, fault: Fault
    ) -> web.StreamResponse:
        if response.prepared:  # already streamed (files_chunked): nothing left to cut short
            return response
        body = response.body if isinstance(response, web.Response) and isinstance(response.body, bytes) else b""
        stream = web.StreamResponse(status=response.status)
        for key, value in response.headers.items():
            if key.lower() != "content-length":
                stream.headers[key] = value
        stream.content_length = len(body)
        await stream.prepare(request)
        half = max(len(body) // 2, 1)
        await stream.write(body[:half])
        if fault.kind is FaultKind.TRUNCATE:
            self._drop(request)
            return stream
        await self._pause(fault.delay)
        await stream.write(body[half:])
        await stream.write_eof()
        return stream

    def _drop(self, request: web.Request) -> None:
        request[_DROPPED] = True
        request[_RECORD].status = None
        if request.transport is not None:
            request.transport.close()

    async def _pause(self, delay: float) -> None:
        """Sleep, but wake at once when the fake closes (so shutdown never waits for a slow fault)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), timeout=delay)

    def _key_refusal(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") == f"Bearer {self.api_key}":
            return None
        return _json_response(401, _UNAUTHORIZED_BODY)

    def _rate_limit_refusal(self, endpoint: Endpoint) -> web.Response | None:
        category = CATEGORIES.get(endpoint)
        if category is None or category not in self._rate_limits:
            return None
        now = time.monotonic()
        hits = self._hits.setdefault(category, deque())
        longest = max(window for _, window in self._rate_limits[category])
        while hits and hits[0] <= now - longest:
            hits.popleft()
        for limit, window in sorted(self._rate_limits[category], key=lambda kept: kept[1]):
            inside = [hit for hit in hits if hit > now - window]
            if len(inside) < limit:
                continue
            wait = inside[-limit] + window - now
            headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Category": category}
            headers |= {
                "Retry-After": _seconds(wait),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": _seconds(wait),
            }
            body = _error_body("rate_limit_exceeded", "Rate limit exceeded, please retry later", "rate_limit_error")
            return web.Response(status=429, body=body, content_type="application/json", headers=headers)
        hits.append(now)
        return None

    # --- the API ----------------------------------------------------------------------------------------------

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        try:
            body: Any = await request.json()
        except ValueError:
            body = None
        request[_RECORD].json = body
        return await self._serve(request, Endpoint.SUBMIT, lambda: self._create_task(request, body))

    async def _create_task(self, request: web.Request, body: Any) -> web.StreamResponse:
        refusal = self._key_refusal(request) or self._rate_limit_refusal(Endpoint.SUBMIT)
        if refusal is not None:
            return refusal
        if self.remain_balance <= 0 and self.remain_credits <= 0 and not self.unlimited_quota:
            return _json_response(
                402, _error_body("insufficient_quota", "Insufficient account balance", "insufficient_quota")
            )
        accepted = read_submit(body, models=self.models, size_mode=self.size_mode)
        if isinstance(accepted, Refusal):
            return _invalid(accepted.message, accepted.param)
        for url in accepted.references:
            problem = self._reference_problem(url)
            if problem is not None:
                return _invalid(problem, accepted.reference_field)
        problem = self._reference_shape_problem(accepted)
        if problem is not None:
            return _invalid(problem, accepted.reference_field)
        callback_url = body.get("callback_url")
        if callback_url is not None:
            refused = self.webhooks.refusal(callback_url)
            if refused is not None:
                code, message = refused
                return _json_response(400, _error_body(code, message, "invalid_request_error", "callback_url"))
        task = self._new_task(accepted)
        self.tasks[task.id] = task
        self.webhooks.task_created(task, callback_url)
        status, progress = task.state()
        payload: dict[str, Any] = {
            "id": task.id,
            "object": "generation.task",
            "model": task.model,
            "status": status,
            "progress": progress,
            "created_at": task.created_at,
            "metadata": {},
        }
        if task.client_business_id is not None:
            payload["client_business_id"] = task.client_business_id
        return _json_response(200, payload)

    def _new_task(self, request: GenerationRequest) -> FakeTask:
        return FakeTask(
            id=f"task_img_{next(self._ids):04d}{time.time_ns() % 10**8:08x}",
            client_business_id=request.client_business_id,
            model=request.model,
            prompt=request.prompt,
            size=request.size,
            n=request.n,
            reference_images=request.references,
            response_format=request.response_format,
            timeline=self._timeline_for(request.prompt),
            created=time.monotonic(),
            created_at=int(time.time()),
            aspect=request.aspect,
            resolution=request.resolution,
        )

    def _reference_problem(self, url: str) -> str | None:
        if url.startswith("data:") or urlsplit(url).scheme not in ("http", "https"):
            return "reference images must be public http(s) URLs (base64 and data: URLs are not accepted)"
        if url.startswith(self.files_url + "/"):
            if not self._serves(url):
                return f"reference image could not be fetched: {url}"
            return None
        host = urlsplit(url).hostname or ""
        if host == "localhost" or _is_private(host):
            return "reference images on localhost or a private network are not accepted"
        return None

    def _reference_shape_problem(self, request: GenerationRequest) -> str | None:
        """The model's rule on a reference's shape, for the images the fake holds: its own uploads."""
        spec = catalog.get_model(request.model)
        for position, url in enumerate(request.references, start=1):
            upload = self._upload_at(url)
            size = _image_size(upload.data) if upload is not None else None
            problem = reference_shape_refusal(spec, position, *size) if size is not None else None
            if problem is not None:
                return problem
        return None

    def _upload_at(self, url: str) -> FakeUpload | None:
        """The upload `url` names on the fake's files host, expired or not; None for any other URL."""
        prefix = f"{self.files_url}/uploads/"
        return self.uploads.get(url.removeprefix(prefix).rsplit(".", 1)[0]) if url.startswith(prefix) else None

    def _serves(self, url: str) -> bool:
        """Whether the files host would serve `url` now (an upload that has not expired, or a finished result)."""
        path = url.removeprefix(self.files_url)
        if path.startswith("/uploads/"):
            upload = self._upload_at(url)
            return upload is not None and not self._expired(upload)
        parts = path.split("/")  # "", "results", task id, "N.png"
        if len(parts) != 4 or parts[1] != "results" or not parts[3].endswith(".png"):
            return False
        task = self.tasks.get(parts[2])
        index = parts[3].removesuffix(".png")
        return (
            task is not None and task.status == "completed" and index.isdigit() and 1 <= int(index) <= task.image_count
        )

    def _timeline_for(self, prompt: str) -> Timeline:
        if self._next_timelines:
            return self._next_timelines.popleft()
        for text, timeline in self._prompt_timelines:
            if text in prompt:
                return timeline
        return self.default_timeline

    async def _lookup(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, Endpoint.LOOKUP, lambda: self._describe_task(request))

    async def _describe_task(self, request: web.Request) -> web.StreamResponse:
        refusal = self._key_refusal(request) or self._rate_limit_refusal(Endpoint.LOOKUP)
        if refusal is not None:
            return refusal
        wanted = request.match_info["id"]
        task = self.tasks.get(wanted)
        if task is None:
            matches = self.tasks_for(wanted)
            task = matches[-1] if matches else None
        if task is None:
            if self.task_not_exist_variant:
                return _json_response(400, _TASK_NOT_EXIST_BODY)
            return _json_response(404, _NOT_FOUND_BODY)
        return _json_response(200, self._task_payload(task))

    def _task_payload(self, task: FakeTask) -> dict[str, Any]:
        status, progress = task.state()
        payload: dict[str, Any] = {
            "id": task.id,
            "object": "generation.task",
            "model": task.model,
            "status": status,
            "progress": progress,
            "created_at": task.created_at,
            "metadata": {},
        }
        if task.client_business_id is not None:
            payload["client_business_id"] = task.client_business_id
        if status == "failed":
            if task.outcome is Outcome.CONTENT_POLICY and task.timeline.outcome is not Outcome.CONTENT_POLICY:
                payload["error"] = {"code": "generation_failed", "message": CONTENT_POLICY_MESSAGE}
            else:
                payload["error"] = {"code": task.timeline.error_code, "message": task.timeline.error_message}
        if status == "completed":
            completed_at = task.created_at + int(task.ended_after())
            payload["completed_at"] = completed_at
            payload["expires_at"] = completed_at + RESULT_URL_LIFETIME
            urls = [self.result_url(task.id, index) for index in range(1, task.image_count + 1)]
            if self.result_format is ResultFormat.B64_JSON:
                items = [
                    {"b64_json": base64.b64encode(self.result_png(task.id, index)).decode()}
                    for index in range(1, task.image_count + 1)
                ]
                payload["result"] = {"type": "image", "data": items}
            elif self.result_format is ResultFormat.TOP_LEVEL_URL:
                payload["url"] = urls[0] if urls else None
            else:
                payload["result"] = {"type": "image", "data": [{"url": url} for url in urls]}
                if urls:
                    payload["url"] = urls[0]
        return payload

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        form: dict[str, str] = {}
        file_field: web.FileField | None = None
        try:
            post = await request.post()
        except ValueError:
            post = None
        if post is not None:
            for name, value in post.items():
                if isinstance(value, web.FileField):
                    data = value.file.read()
                    value.file.seek(0)
                    form[name] = f"<file {value.filename!r} {value.content_type} {len(data)} bytes>"
                    if name == "file":
                        file_field = value
                else:
                    form[name] = str(value)
        request[_RECORD].form = form
        return await self._serve(request, Endpoint.UPLOAD, lambda: self._store_upload(request, file_field, form))

    async def _store_upload(
        self, request: web.Request, file_field: web.FileField | None, form: dict[str, str]
    ) -> web.StreamResponse:
        refusal = self._key_refusal(request)
        if refusal is not None:
            return refusal
        if file_field is None:
            return _json_response(400, {"success": False, "message": "No file uploaded"})
        data = file_field.file.read()
        if len(data) > UPLOAD_MAX_BYTES:
            return _json_response(400, {"success": False, "message": "Image too large. Maximum size is 10MB"})
        mime_type = _sniff(data)
        if mime_type is None:
            return _json_response(
                400, {"success": False, "message": "Unsupported image type. Allowed: JPEG, PNG, WebP, GIF"}
            )
        upload = FakeUpload(
            id=f"upload_{next(self._ids):08x}",
            filename=file_field.filename,
            declared_type=file_field.content_type,
            mime_type=mime_type,
            data=data,
            purpose=form.get("purpose", "generation"),
            created=time.monotonic(),
        )
        self.uploads[upload.id] = upload
        extension = mime_type.split("/")[1].replace("jpeg", "jpg")
        url = f"{self.files_url}/uploads/{upload.id}.{extension}"
        return _json_response(
            200,
            {
                "success": True,
                "message": "",
                "data": {"id": upload.id, "url": url, "mime_type": mime_type, "size": len(data)},
            },
        )

    async def _models(self, request: web.Request) -> web.StreamResponse:
        async def answer() -> web.StreamResponse:
            refusal = self._key_refusal(request)
            if refusal is not None:
                return refusal
            # The documented split: the plain list holds text models only; `?type=image` the image models.
            kind = request.query.get("type", "text")
            image = [
                {"id": model, "object": "model", "owned_by": "toapis", "supported_endpoint_types": ["image-generation"]}
                for model in self.models
            ]
            text = [
                {"id": model, "object": "model", "owned_by": "toapis", "supported_endpoint_types": ["openai"]}
                for model in TEXT_MODELS
            ]
            data = {"image": image, "all": text + image}.get(kind, text)
            return _json_response(200, {"object": "list", "data": data})

        return await self._serve(request, Endpoint.MODELS, answer)

    async def _balance(self, request: web.Request) -> web.StreamResponse:
        async def answer() -> web.StreamResponse:
            refusal = self._key_refusal(request)
            if refusal is not None:
                return refusal
            return _json_response(
                200,
                {
                    "success": True,
                    # -1 when the quota is unlimited, as documented.
                    "remain_balance": -1 if self.unlimited_quota else self.remain_balance,
                    "used_balance": self.used_balance,
                    "remain_credits": self.remain_credits,
                    "used_credits": self.used_credits,
                    "credits_per_usd": self.credits_per_usd,
                    "unlimited_quota": self.unlimited_quota,
                },
            )

        return await self._serve(request, Endpoint.BALANCE, answer)

    # --- the files host ---------------------------------------------------------------------------------------

    async def _result_file(self, request: web.Request) -> web.StreamResponse:
        async def answer() -> web.StreamResponse:
            task = self.tasks.get(request.match_info["task_id"])
            try:
                index = int(request.match_info["index"])
            except ValueError:
                index = 0
            if task is None or task.status != "completed" or not 1 <= index <= task.image_count:
                return web.Response(status=404, text="Not Found")
            # zlib releases the GIL: rendering a large image in a thread keeps the server responsive.
            png = await asyncio.to_thread(self.result_png, task.id, index)
            return await self._file_response(request, png, self.files_content_type or "image/png")

        return await self._serve(request, Endpoint.DOWNLOAD, answer)

    async def _upload_file(self, request: web.Request) -> web.StreamResponse:
        async def answer() -> web.StreamResponse:
            upload = self.uploads.get(request.match_info["name"].rsplit(".", 1)[0])
            if upload is None or self._expired(upload):
                return web.Response(status=404, text="Not Found")
            return await self._file_response(request, upload.data, self.files_content_type or upload.mime_type)

        return await self._serve(request, Endpoint.DOWNLOAD, answer)

    async def _file_response(self, request: web.Request, body: bytes, content_type: str) -> web.StreamResponse:
        if not self.files_chunked:
            return web.Response(body=body, content_type=content_type)
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(body), 64 * 1024):
            await response.write(body[start : start + 64 * 1024])
        await response.write_eof()
        return response

    def _expired(self, upload: FakeUpload) -> bool:
        return self.upload_ttl is not None and time.monotonic() - upload.created > self.upload_ttl


# --- bodies and helpers ---------------------------------------------------------------------------------------


def _error_body(code: str | int, message: str, kind: str, param: str | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "type": kind}
    if param is not None:
        error["param"] = param
    return json.dumps({"error": error}).encode()


_NOT_FOUND_BODY: Final = _error_body(404, "Task not found", "not_found_error")
_TASK_NOT_EXIST_BODY: Final = json.dumps({"message": "task_not_exist"}).encode()
_UNAUTHORIZED_BODY: Final = _error_body("authentication_error", "Invalid API key provided", "authentication_error")


def _json_response(status: int, payload: bytes | Mapping[str, Any]) -> web.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return web.Response(status=status, body=body, content_type="application/json")


def _invalid(message: str, param: str | None = None) -> web.Response:
    return _json_response(400, _error_body("invalid_request", message, "invalid_request_error", param))


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}".rstrip("0").rstrip(".") or "0"


def _endpoint(route: str) -> Endpoint | None:
    try:
        return Endpoint(route)
    except ValueError:
        return None


def _is_private(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_private or address.is_loopback or address.is_link_local


def _image_size(data: bytes) -> tuple[int, int] | None:
    """An uploaded image's (width, height) from its header; None when it cannot be read (a test's odd upload)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (OSError, ValueError):
        return None


def _sniff(data: bytes) -> str | None:
    # The fake's own magic-byte check, independent of the client's toapis.mime.
    signatures: Iterable[tuple[bytes, str]] = (
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
    )
    for magic, mime_type in signatures:
        if data.startswith(magic):
            return mime_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


# --- pytest fixtures (this module is loaded as a plugin by tests/conftest.py) ---------------------------------


@pytest.fixture
async def toapis_fake() -> AsyncIterator[FakeToAPIs]:
    """A started FakeToAPIs on an ephemeral port, closed after the test."""
    async with FakeToAPIs() as fake:
        yield fake


@pytest.fixture
async def toapis_session() -> AsyncIterator[aiohttp.ClientSession]:
    """A fresh aiohttp session, closed after the test."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def toapis_client(toapis_fake: FakeToAPIs, toapis_session: aiohttp.ClientSession) -> ToAPIsClient:
    """A ToAPIsClient pointed at the fake, with instant retries and a 5 s timeout."""
    return ToAPIsClient(
        toapis_session, api_key=toapis_fake.api_key, base_url=toapis_fake.base_url, timeout=5.0, retry=INSTANT_RETRY
    )


# --- standalone -----------------------------------------------------------------------------------------------


async def _serve_forever(args: argparse.Namespace) -> None:
    timeline = Timeline.simple(queued=args.queued, running=args.running, progress=(10, 30, 50, 70, 90))
    async with FakeToAPIs(
        api_key=args.api_key, host=args.host, port=args.port, timeline=timeline, size_mode=SizeMode(args.size_mode)
    ) as fake:
        print(f"fake ToAPIs at {fake.base_url} (files at {fake.files_url})", flush=True)
        print(f"TOAPIS_BASE_URL={fake.base_url} TOAPIS_API_KEY={fake.api_key}", flush=True)
        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m tests.fakes.toapis --port N`: serve the fake until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.toapis", description="Serve the fake ToAPIs API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--queued", type=float, default=1.0, help="seconds each task stays queued")
    parser.add_argument("--running", type=float, default=5.0, help="seconds each task runs")
    parser.add_argument(
        "--size-mode",
        choices=[mode.value for mode in SizeMode],
        default=SizeMode.RATIO.value,
        help="the form of size the server takes (default ratio)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args))


if __name__ == "__main__":
    main()

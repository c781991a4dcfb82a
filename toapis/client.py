"""The async ToAPIs client: one injected aiohttp session, one timeout per request, typed results and errors.

Safe to share: many jobs may use one client (and its one session) at once; the client holds no per-call state,
only, per model, the form of `size` the server last accepted (see toapis/size_forms.py).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import random
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final
from urllib.parse import quote, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from toapis import catalog, contract, size_forms
from toapis._download_guard import MAX_REDIRECTS, Hop, Origin, plan_download
from toapis._error_mapping import error_from_response, parse_retry_after
from toapis._parse import decode_json, parse_task, parse_upload
from toapis.catalog import ModelSpec
from toapis.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    DownloadError,
    DownloadTooLargeError,
    InsufficientBalanceError,
    RateLimitError,
    ServerError,
    SubmitsPausedError,
    SubmitUnconfirmedError,
    TaskNotFoundError,
    TaskWaitTimeoutError,
    ToAPIsError,
    UnexpectedResponseError,
    UploadRejectedError,
)
from toapis.health import HealthStatus
from toapis.mime import SNIFF_BYTES, sniff_image_type
from toapis.models import AccountBalance, DownloadedImage, Task, UploadedImage
from toapis.retry import RetryPolicy

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT: Final = 30.0
# Downloads to a file are written in blocks of this size (see _Sink).
_FLUSH_BYTES: Final = 256 * 1024
DEFAULT_RETRY: Final = RetryPolicy()
_NO_RETRY: Final = RetryPolicy(max_retries=0)

# Ours, not upstream's: a business id travels in a URL path, so it is kept to characters that need no quoting.
BUSINESS_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

_DOWNLOAD_CHUNK: Final = 256 * 1024
# Content types a files host may use for an image it does not label; accepted only if the bytes are an image.
_GENERIC_CONTENT_TYPES: Final = ("", "application/octet-stream", "binary/octet-stream")
_REDIRECT_STATUSES: Final = (301, 302, 303, 307, 308)

UpdateCallback = Callable[[Task], Awaitable[None] | None]


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


class ToAPIsClient:
    """Talks to the ToAPIs image API on an injected `aiohttp.ClientSession`; never creates a session itself.

    Every request, together with the read of its answer, runs under one timeout (`timeout` seconds). Transient
    failures (connection errors, timeouts, 408, 429, 5xx) are retried as `retry` says, honouring Retry-After;
    generation submits are never retried blindly (see `submit_generation`). All failures are `ToAPIsError`s.

    Result downloads go over https to public addresses only (see toapis/_download_guard.py), except from
    `trusted_origin`: a scheme://host[:port] the operator vouches for, by default the base URL's own.
    `resolver` resolves download hosts before their addresses are checked (default: the system's, in a thread).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_key: str,
        base_url: str = contract.DEFAULT_BASE_URL,
        model: str = catalog.DEFAULT_MODEL_ID,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        trusted_origin: str | None = None,
        resolver: AbstractResolver | None = None,
    ) -> None:
        if not api_key.strip():
            raise ValueError("the ToAPIs API key is empty")
        if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).netloc:
            raise ValueError(f"the ToAPIs base URL must be an http(s) URL, not {base_url!r}")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        try:
            self._trusted_origin = Origin.of(URL(trusted_origin or base_url))
        except ValueError:
            raise ValueError(f"the trusted origin must be an http(s) URL, not {trusted_origin!r}") from None
        self._resolver = resolver
        self._session = session
        self._api_key = api_key.strip()
        self._base_url = base_url.rstrip("/")
        self._model = model
        self._timeout = timeout
        self._retry = retry
        # model id -> the size form the server last accepted for it (see size_forms).
        self._size_forms: dict[str, size_forms.SizeForm] = {}

    def __repr__(self) -> str:
        # The key stays out of every repr, log line and error.
        return f"ToAPIsClient(base_url={self._base_url!r}, model={self._model!r})"

    @property
    def base_url(self) -> str:
        """The API base, without a trailing slash (it ends in /v1)."""
        return self._base_url

    @property
    def model(self) -> str:
        """The model a submit uses unless it names another."""
        return self._model

    @property
    def timeout(self) -> float:
        """Seconds allowed for one request and the read of its answer."""
        return self._timeout

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy for transient failures."""
        return self._retry

    # --- public API -------------------------------------------------------------------------------------------

    async def upload_image(self, data: bytes, *, filename: str, content_type: str) -> UploadedImage:
        """Upload a reference image (JPEG, PNG, WebP or GIF, at most 10,000,000 bytes) and return its URL.

        The URL is assumed short-lived (`contract.UPLOAD_URLS_ARE_SHORT_LIVED`): upload again for every job.
        Retried on transient failures (a duplicate upload only costs storage). Raises UploadRejectedError for
        an empty or too large image (without sending it) and when the API refuses it.
        """
        if not data:
            raise UploadRejectedError("the image is empty", operation="upload")
        if len(data) > contract.UPLOAD_MAX_BYTES:
            raise UploadRejectedError(
                f"{contract.UPLOAD_TOO_LARGE_MESSAGE} ({len(data):,} bytes given)", operation="upload"
            )

        def form() -> aiohttp.FormData:
            built = aiohttp.FormData()
            built.add_field(contract.UPLOAD_FIELD, data, filename=filename or "image", content_type=content_type)
            built.add_field("purpose", contract.UPLOAD_PURPOSE)
            return built

        answer = await self._call("POST", contract.UPLOAD_PATH, operation="upload", form=form, upload=True)
        payload = decode_json(answer.body, operation="upload", status=answer.status)
        if payload.get("success") is False:
            message = self._redact(str(payload.get("message") or "the image was refused"))
            raise UploadRejectedError(message, status=answer.status, operation="upload")
        uploaded = parse_upload(payload, status=answer.status)
        log.debug("uploaded %s (%d bytes) as %s", filename, len(data), uploaded.id)
        return uploaded

    async def submit_generation(
        self,
        *,
        prompt: str,
        n: int,
        client_business_id: str,
        reference_urls: Sequence[str] = (),
        model: str | None = None,
        aspect: str | None = None,
        resolution: str | None = None,
        callback_url: str | None = None,
    ) -> Task:
        """Submit a generation task and return it (usually queued). Never creates two tasks for one business id.

        The body is what `toapis.catalog` says for `model` (default: the client's): the `aspect` ratio (default
        1:1) and the `resolution` tier (default: the model's) in the model's fields, the references in its field.
        Anything the model does not offer is refused with BadRequestError before
        any request (`catalog.check_request`).

        The size goes in the current pages' ratio form first. A 400 that names the size or the resolution is
        answered by submitting once more in the other documented form (the pixels of the pair, where the catalog
        has them), with the same business id: a 400 creates no task. The form that worked is remembered per
        model, and tried first from then on (`toapis.size_forms`).

        A submit is retried only when it provably never reached the server, or was answered 429 or 503. After
        an ambiguous failure (a timeout once sent, a dropped connection, a 5xx from a gateway, an unreadable
        success) the task is first looked up by `client_business_id`: found, it is returned; a 404 proves no
        task exists, and the submit is sent again while retries remain.

        `callback_url`: where ToAPIs calls when the task ends (`contract.CALLBACK_URL_FIELD`); it must share the
        scheme, host and port of the URL set for the key's Token in the ToAPIs console. When webhooks are not set up
        there, the submit is refused with WebhookNotConfiguredError, and no task exists: submit again without it.

        Any ToAPIsError raised means no task exists for `client_business_id`, except SubmitUnconfirmedError:
        then a task may exist (and run, and bill), and the caller must look it up later with `find_task`.
        """
        spec, aspect, resolution = self._plan_submit(
            prompt=prompt,
            n=n,
            references=reference_urls,
            business_id=client_business_id,
            model=model,
            aspect=aspect,
            resolution=resolution,
        )
        base: dict[str, Any] = {
            "model": spec.id,
            "prompt": prompt,
            "n": n,
            "response_format": contract.RESPONSE_FORMAT,
            "client_business_id": client_business_id,
        }
        if reference_urls and spec.references.field is not None:
            base[spec.references.field] = list(reference_urls)
        if callback_url is not None:
            base[contract.CALLBACK_URL_FIELD] = callback_url
        forms = size_forms.forms_to_try(spec, aspect, resolution, self._size_forms.get(spec.id))

        form_index = 0
        attempt = 0
        while True:
            form, fields = forms[form_index]
            body = base | fields
            ambiguous: bool
            answer: _Answer | None = None
            try:
                answer = await self._send("POST", self._url(contract.SUBMIT_PATH), operation="submit", json_body=body)
            except APIConnectionError as exc:
                error: ToAPIsError = exc
                ambiguous = exc.maybe_sent
            else:
                if 200 <= answer.status < 300:  # 200 in every documented example; 201/202 would mean the same
                    try:
                        payload = decode_json(answer.body, operation="submit", status=answer.status)
                        task = parse_task(payload, status=answer.status, client_business_id=client_business_id)
                    except UnexpectedResponseError as exc:
                        error, ambiguous = exc, True
                    else:
                        self._size_forms[spec.id] = form
                        log.info("submitted task %s for %s", task.id, client_business_id)
                        return task
                else:
                    error = self._error(answer, operation="submit")
                    if isinstance(error, RateLimitError | SubmitsPausedError):
                        ambiguous = False  # documented refusals: no task was created
                    elif isinstance(error, APITimeoutError | ServerError) or answer.status == 409:
                        # 408/5xx (a 503 other than submits paused included): a gateway may have passed the submit
                        # on before failing; 409 (undocumented) most likely says this business id has a task
                        # already.
                        ambiguous = True
                    elif (
                        isinstance(error, BadRequestError)
                        and form_index + 1 < len(forms)
                        and size_forms.names_the_size(error)
                    ):
                        # A 400 created no task: the other form of the size cannot bill twice.
                        form_index += 1
                        log.warning(
                            "%s; submitting %s again with the size in the %s form",
                            error,
                            client_business_id,
                            forms[form_index][0].value,
                        )
                        continue
                    else:
                        raise error  # 4xx: the API refused the submit, so no task exists
            if ambiguous:
                existing = await self._resolve_ambiguous_submit(client_business_id, error)
                if existing is not None:
                    self._size_forms[spec.id] = form
                    return existing
            retry_after = parse_retry_after(answer.headers) if answer is not None else None
            delay = self._retry.delay_before_retry(attempt, retry_after)
            if delay is None:
                raise error
            log.warning(
                "%s; no task was created for %s, submitting again in %.2f s (retry %d of %d)",
                error,
                client_business_id,
                delay,
                attempt + 1,
                self._retry.max_retries,
            )
            await asyncio.sleep(delay)
            attempt += 1

    async def get_task(self, task_id: str, *, retry: bool = True) -> Task:
        """Look a task up by its id. A failed task is returned (status FAILED, with `error`), not raised.

        Raises TaskNotFoundError for an unknown id (404, or 400 "task_not_exist"). `retry` False: one request,
        never retried here (a caller that counts its look-ups retries through its own count).
        """
        return await self._lookup(task_id, retry=self._retry if retry else _NO_RETRY)

    async def find_task(self, client_business_id: str) -> Task | None:
        """Look a task up by the caller's `client_business_id`; None when no task has that id (404)."""
        try:
            return await self._lookup(client_business_id, retry=self._retry, business_id=True)
        except TaskNotFoundError:
            return None

    async def wait_for_task(
        self,
        task_id: str,
        *,
        interval: float,
        deadline: float | None,
        on_update: UpdateCallback | None = None,
        first_delay: float | None = None,
        max_interval: float = 60.0,
        jitter: float = 0.2,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        next_delay: Callable[[Task], float] | None = None,
        on_rate_limited: Callable[[float | None], object] | None = None,
    ) -> Task:
        """Poll a task until it completes or fails, and return it (a failed task is returned, not raised).

        `interval`: seconds between lookups, each varied by up to ±`jitter` of it at random; after a 429 it is
        doubled (up to `max_interval`) and Retry-After is honoured. `first_delay`: seconds before the first
        lookup (default `interval`; 0 looks at once, e.g. when resuming). `deadline`: the most seconds to wait
        in all (None: no limit); when it passes, TaskWaitTimeoutError is raised carrying the last Task seen.
        The deadline is checked between lookups, so one lookup in flight may overrun it by up to `timeout`.
        `on_update` (sync or async) is called with the first Task seen and with every change of status or
        progress. Transient lookup failures are logged and polling goes on; TaskNotFoundError,
        AuthenticationError and other permanent errors are raised. `sleep` waits between lookups (the caller's
        may return early, e.g. when told that the task has ended).

        `next_delay`, when given, is asked after every lookup that saw the task running for the seconds until
        the next one (the caller's schedule) instead of `interval`. After a 429 the wait is at least the slowed
        interval (and Retry-After); the slowed interval then halves with each lookup that goes through, until
        the schedule alone decides again. `on_rate_limited` is told of every 429, with its Retry-After (None when
        it sent none): look-ups of other tasks count against the same limit.
        """
        if interval < 0 or (first_delay is not None and first_delay < 0):
            raise ValueError("interval and first_delay must be >= 0")
        loop = asyncio.get_running_loop()
        started = loop.time()
        end = None if deadline is None else started + deadline
        current_interval = interval
        slowed = 0.0  # with `next_delay`: the least wait a 429 left, 0 once it has worn off
        delay = interval if first_delay is None else first_delay
        last: Task | None = None
        reported: tuple[str, int] | None = None
        while True:
            if end is not None:
                remaining = end - loop.time()
                if remaining <= 0:
                    state = f"last seen {last.status.value} at {last.progress}%" if last else "never seen"
                    raise TaskWaitTimeoutError(
                        f"ToAPIs task {task_id} did not end within {deadline:g} s ({state})",
                        task_id=task_id,
                        task=last,
                        waited=loop.time() - started,
                    )
                delay = min(delay, remaining)
            if delay > 0:
                await sleep(delay)
            try:
                task = await self._lookup(task_id, retry=_NO_RETRY)
            except RateLimitError as exc:
                if on_rate_limited is not None:
                    on_rate_limited(exc.retry_after)
                current_interval = min(max(current_interval * 2, interval), max(max_interval, interval))
                slowed = current_interval
                delay = max(exc.retry_after or 0.0, _jittered(current_interval, jitter))
                log.info("task %s: lookups rate limited; next look in %.2f s", task_id, delay)
                continue
            except (APIConnectionError, ServerError, UnexpectedResponseError) as exc:
                delay = _jittered(current_interval, jitter)
                log.warning("task %s: lookup failed (%s); next look in %.2f s", task_id, exc, delay)
                continue
            last = task
            if reported != (task.status.value, task.progress):
                reported = (task.status.value, task.progress)
                if on_update is not None:
                    result = on_update(task)
                    if inspect.isawaitable(result):
                        await result
            if task.is_terminal:
                return task
            if next_delay is None:
                delay = _jittered(current_interval, jitter)
            else:
                delay = max(next_delay(task), _jittered(slowed, jitter) if slowed else 0.0)
                slowed = slowed / 2 if slowed / 2 >= interval else 0.0
                current_interval = max(slowed, interval)

    async def download_image(
        self, url: str, *, max_bytes: int, dest: Path | None = None, timeout: float | None = None
    ) -> DownloadedImage:
        """Download a result image, stopping as soon as it exceeds `max_bytes`.

        With `dest`, the image is streamed to that file in chunks (written to `dest.part`, then renamed), so
        large results never sit in memory; otherwise its bytes are returned. The key is not sent: result URLs
        are public and live on another host. Only https URLs whose host resolves to public addresses are fetched
        (or the trusted origin's), and a redirect is followed (3 at most) only to such a URL. The bytes must be a
        JPEG, PNG, WebP or GIF image, checked before anything is written; the declared type only refuses early
        (an answer that says it is not an image). `timeout` overrides the client's for this download.

        Raises DownloadTooLargeError, DownloadError (a URL or redirect refused; not an image; the files host
        answered 4xx, e.g. an expired URL), or, once retries are used up, RateLimitError, ServerError,
        APIConnectionError, APITimeoutError.
        """
        if urlsplit(url).scheme not in ("http", "https"):
            raise DownloadError(f"not an http(s) URL: {url[:100]!r}", operation="download")
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        limit = self._timeout if timeout is None else timeout
        attempt = 0
        while True:
            try:
                return await self._download_once(url, max_bytes=max_bytes, dest=dest, limit=limit)
            except (APIConnectionError, RateLimitError, ServerError) as exc:
                retry_after = exc.retry_after if isinstance(exc, RateLimitError) else None
                delay = self._retry.delay_before_retry(attempt, retry_after)
                if delay is None:
                    raise
                log.warning("%s; retry %d in %.2f s", exc, attempt + 1, delay)
            await asyncio.sleep(delay)
            attempt += 1

    async def check_health(self) -> HealthStatus:
        """Probe `GET /models` (not billed) once, without retries: does the API answer and accept the key?"""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            answer = await self._send("GET", self._url(contract.HEALTH_PROBE_PATH), operation="health probe")
        except APIConnectionError as exc:
            return HealthStatus(
                ok=False,
                reason=f"unreachable: {exc}",
                reachable=False,
                key_accepted=None,
                latency=loop.time() - started,
                error=exc,
            )
        latency = loop.time() - started
        if 200 <= answer.status < 300:
            return HealthStatus(
                ok=True,
                reason="the API answered and accepted the key",
                reachable=True,
                key_accepted=True,
                latency=latency,
            )
        error = self._error(answer, operation="health probe")
        reachable = not isinstance(error, ServerError | APIConnectionError)
        key_accepted: bool | None = None
        if isinstance(error, AuthenticationError):
            key_accepted = False
        elif isinstance(error, InsufficientBalanceError):
            key_accepted = True
        return HealthStatus(
            ok=False, reason=str(error), reachable=reachable, key_accepted=key_accepted, latency=latency, error=error
        )

    async def get_balance(self) -> AccountBalance:
        """The key's account balance (`GET /balance`, not billed), retried like a look-up."""
        answer = await self._call("GET", contract.BALANCE_PATH, operation="balance")
        payload = decode_json(answer.body, operation="balance", status=answer.status)
        if payload.get("success") is False:
            return AccountBalance(found=False)
        return AccountBalance(
            found=True,
            remain_balance=_number(payload.get("remain_balance")),
            remain_credits=_number(payload.get("remain_credits")),
            used_balance=_number(payload.get("used_balance")),
            used_credits=_number(payload.get("used_credits")),
            unlimited=payload.get("unlimited_quota") is True,
            credits_per_usd=_number(payload.get("credits_per_usd")) or contract.CREDITS_PER_USD,
        )

    async def list_image_models(self) -> list[str]:
        """The ids of the image models the key may use (`GET /models?type=image`, not billed; the plain list
        holds text models only), retried like a look-up."""
        path = f"{contract.MODELS_PATH}?{contract.MODELS_TYPE_PARAMETER}={contract.IMAGE_MODELS_TYPE}"
        answer = await self._call("GET", path, operation="model list")
        payload = decode_json(answer.body, operation="model list", status=answer.status)
        items = payload.get("data")
        if not isinstance(items, list):
            raise UnexpectedResponseError(
                "the model list has no `data` list", status=answer.status, operation="model list"
            )
        return [str(item["id"]) for item in items if isinstance(item, dict) and item.get("id") is not None]

    # --- requests -------------------------------------------------------------------------------------------

    def _url(self, path: str, *, item_id: str | None = None) -> URL:
        if item_id is not None:
            path = path.format(id=quote(item_id, safe=""))
        return URL(self._base_url + path, encoded=True)

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "[redacted]")

    def _error(
        self, answer: _Answer, *, operation: str, upload: bool = False, task_id: str | None = None
    ) -> ToAPIsError:
        return error_from_response(
            answer.status,
            answer.headers,
            answer.body,
            operation=operation,
            secret=self._api_key,
            upload=upload,
            task_id=task_id,
        )

    async def _send(
        self,
        method: str,
        url: URL,
        *,
        operation: str,
        json_body: dict[str, Any] | None = None,
        form: Callable[[], aiohttp.FormData] | None = None,
    ) -> _Answer:
        """One attempt: send the request and read the whole answer under one timeout."""
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}
        failure: APIConnectionError
        try:
            async with asyncio.timeout(self._timeout):
                async with self._session.request(
                    method,
                    url,
                    json=json_body,
                    data=form() if form is not None else None,
                    headers=headers,
                    allow_redirects=False,  # a redirect means a wrong base URL; never carry the key elsewhere
                ) as response:
                    return _Answer(response.status, response.headers, await response.read())
        except aiohttp.ConnectionTimeoutError as exc:
            failure = APITimeoutError(f"could not connect in time ({exc})", maybe_sent=False, operation=operation)
        except TimeoutError:
            failure = APITimeoutError(f"no answer within {self._timeout:g} s", maybe_sent=True, operation=operation)
        except aiohttp.ClientConnectorError as exc:
            failure = APIConnectionError(f"could not connect ({exc})", maybe_sent=False, operation=operation)
        except aiohttp.ClientError as exc:
            failure = APIConnectionError(
                f"the connection failed ({type(exc).__name__}: {exc})", maybe_sent=True, operation=operation
            )
        # Raised outside the except blocks so that no aiohttp exception (whose request info holds the
        # Authorization header) is chained to the error as its context.
        raise failure

    async def _call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        item_id: str | None = None,
        form: Callable[[], aiohttp.FormData] | None = None,
        upload: bool = False,
        task_id: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> _Answer:
        """Send a request that is safe to repeat, retrying transient failures; return a 2xx answer or raise."""
        policy = self._retry if retry is None else retry
        url = self._url(path, item_id=item_id)
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                answer = await self._send(method, url, operation=operation, form=form)
            except APIConnectionError as exc:
                error: ToAPIsError = exc
            else:
                if 200 <= answer.status < 300:
                    return answer
                error = self._error(answer, operation=operation, upload=upload, task_id=task_id)
                retry_after = parse_retry_after(answer.headers)
            if not isinstance(error, APIConnectionError | RateLimitError | ServerError):
                raise error
            delay = policy.delay_before_retry(attempt, retry_after)
            if delay is None:
                raise error
            log.warning(
                "%s; retry %d of %d in %.2f s",
                error,
                attempt + 1,
                policy.max_retries,
                delay,
            )
            await asyncio.sleep(delay)
            attempt += 1

    async def _lookup(self, lookup_id: str, *, retry: RetryPolicy, business_id: bool = False) -> Task:
        if not lookup_id:
            raise BadRequestError("the id is empty", operation="task lookup")
        path = contract.LOOKUP_BY_BUSINESS_ID_PATH if business_id else contract.TASK_PATH
        answer = await self._call(
            "GET", path, operation="task lookup", item_id=lookup_id, task_id=lookup_id, retry=retry
        )
        payload = decode_json(answer.body, operation="task lookup", status=answer.status)
        return parse_task(payload, status=answer.status, client_business_id=lookup_id if business_id else None)

    async def _resolve_ambiguous_submit(self, client_business_id: str, error: ToAPIsError) -> Task | None:
        """After a submit whose fate is unknown: the task it created, or None when the lookup proves there is none."""
        log.warning("%s; the submit for %s may have reached the server: looking it up", error, client_business_id)
        try:
            existing = await self.find_task(client_business_id)
        except ToAPIsError as lookup_error:
            raise SubmitUnconfirmedError(
                f"may have created a task for {client_business_id}: the request failed ({error}), and so did the "
                f"lookup that would tell ({lookup_error})",
                client_business_id=client_business_id,
            ) from lookup_error
        if existing is not None:
            log.info("the submit for %s did create task %s", client_business_id, existing.id)
        return existing

    def _plan_submit(
        self,
        *,
        prompt: str,
        n: int,
        references: Sequence[str],
        business_id: str,
        model: str | None,
        aspect: str | None,
        resolution: str | None,
    ) -> tuple[ModelSpec, str, str]:
        """The model, aspect and resolution to submit; refuse, without sending anything, what the API would refuse."""
        try:
            spec = catalog.get_model(self._model if model is None else model)
        except catalog.UnknownModelError as exc:
            raise BadRequestError(exc.message, operation="submit", param="model") from None
        aspect = catalog.DEFAULT_ASPECT if aspect is None else aspect
        resolution = spec.default_resolution if resolution is None else catalog.normalise_resolution(resolution)

        problems: list[tuple[str, str]] = []
        problem = catalog.check_request(
            spec, aspect, resolution, n, len(references), len(prompt) if prompt.strip() else 0
        )
        if problem is not None:
            problems.append((problem.message, problem.option.param(spec)))
        for reference in references:
            if urlsplit(reference).scheme not in contract.REFERENCE_URL_SCHEMES:
                message = f"reference images must be http(s) URLs, not {reference[:40]!r}"
                problems.append((message, catalog.RequestOption.REFERENCES.param(spec)))
                break
        if not BUSINESS_ID_PATTERN.fullmatch(business_id):
            problems.append(
                ("client_business_id must be 1-128 letters, digits, '.', '_', ':' or '-'", "client_business_id")
            )
        if problems:
            raise BadRequestError(
                "; ".join(message for message, _ in problems), operation="submit", param=problems[0][1]
            )
        return spec, aspect, resolution

    # --- downloads ------------------------------------------------------------------------------------------

    async def _download_once(self, url: str, *, max_bytes: int, dest: Path | None, limit: float) -> DownloadedImage:
        failure: ToAPIsError
        sink = _Sink(dest)
        try:
            async with asyncio.timeout(limit):
                current = url
                for _ in range(MAX_REDIRECTS + 1):
                    response = await self._get_checked(current)
                    try:
                        if response.status in _REDIRECT_STATUSES:
                            current = _redirect_target(response, current)
                            continue
                        declared = await self._check_download(response, max_bytes=max_bytes)
                        size, content_type = await _stream(response, sink, max_bytes=max_bytes, declared=declared)
                        return await sink.finish(url=url, content_type=content_type, size=size)
                    finally:
                        response.release()
                raise DownloadError(f"more than {MAX_REDIRECTS} redirects from {url[:100]!r}", operation="download")
        except ToAPIsError as exc:
            failure = exc
        except aiohttp.ConnectionTimeoutError as exc:
            failure = APITimeoutError(f"could not connect in time ({exc})", maybe_sent=False, operation="download")
        except TimeoutError:
            failure = APITimeoutError(f"not finished within {limit:g} s", maybe_sent=True, operation="download")
        except aiohttp.ClientConnectorError as exc:
            failure = APIConnectionError(f"could not connect ({exc})", maybe_sent=False, operation="download")
        except aiohttp.ClientError as exc:
            failure = APIConnectionError(
                f"the connection failed ({type(exc).__name__}: {exc})", maybe_sent=True, operation="download"
            )
        finally:
            await sink.discard()
        raise failure

    async def _get_checked(self, url: str) -> aiohttp.ClientResponse:
        """GET `url` once its host's addresses are checked, trying each in turn until one connects."""
        *others, last = await plan_download(
            url, trusted=self._trusted_origin, resolver=self._resolver or aiohttp.ThreadedResolver()
        )
        for hop in others:
            try:
                return await self._get(hop)
            except aiohttp.ClientConnectorError as exc:
                log.debug("download from %s: %s; trying the next address", hop.url.host, exc)
        return await self._get(last)

    async def _get(self, hop: Hop) -> aiohttp.ClientResponse:
        return await self._session.get(
            hop.url, headers=hop.headers, server_hostname=hop.server_hostname, allow_redirects=False
        )

    async def _check_download(self, response: aiohttp.ClientResponse, *, max_bytes: int) -> str:
        """Refuse a download from its status and headers; return the declared content type ("" if none)."""
        if response.status != 200:
            body = await response.content.read(64 * 1024)
            error = error_from_response(
                response.status, response.headers, body, operation="download", secret=self._api_key
            )
            if isinstance(error, APIConnectionError | RateLimitError | ServerError):
                raise error
            raise DownloadError(
                f"the files host answered HTTP {response.status}", status=response.status, operation="download"
            )
        length = response.content_length
        if length is not None and length > max_bytes:
            raise DownloadTooLargeError(
                f"the image is {length:,} bytes, more than the {max_bytes:,} allowed",
                max_bytes=max_bytes,
                status=response.status,
            )
        declared = response.headers.get(aiohttp.hdrs.CONTENT_TYPE, "").split(";")[0].strip().lower()
        if declared.startswith("image/") or declared in _GENERIC_CONTENT_TYPES:
            return declared
        raise DownloadError(
            f"the files host sent {declared!r}, not an image", status=response.status, operation="download"
        )


def _redirect_target(response: aiohttp.ClientResponse, current: str) -> str:
    location = response.headers.get(aiohttp.hdrs.LOCATION)
    if not location:
        raise DownloadError(
            f"the files host answered HTTP {response.status} without a Location",
            status=response.status,
            operation="download",
        )
    return str(URL(current, encoded=True).join(URL(location)))


async def _stream(response: aiohttp.ClientResponse, sink: _Sink, *, max_bytes: int, declared: str) -> tuple[int, str]:
    """Copy the body into `sink`, stopping past `max_bytes`; return its size and image type.

    Nothing reaches the sink before the first bytes are known to be an image: a body that is not one is
    refused before it is written anywhere.
    """
    size = 0
    head = b""
    content_type: str | None = None
    await sink.open()
    async for chunk in response.content.iter_chunked(_DOWNLOAD_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise DownloadTooLargeError(
                f"the image is larger than the {max_bytes:,} bytes allowed",
                max_bytes=max_bytes,
                status=response.status,
            )
        if content_type is None:
            head += chunk
            if len(head) < SNIFF_BYTES:
                continue
            content_type = _image_type(head, declared=declared, status=response.status)
            chunk, head = head, b""
        await sink.write(chunk)
    if content_type is None:  # a body shorter than SNIFF_BYTES
        content_type = _image_type(head, declared=declared, status=response.status)
        await sink.write(head)
    return size, content_type


def _image_type(head: bytes, *, declared: str, status: int) -> str:
    """The type of the bytes, whatever the files host said; refused when they are not an image."""
    sniffed = sniff_image_type(head)
    if sniffed is None:
        raise DownloadError(
            f"the files host sent {declared or 'no content type'!r} and the bytes are not an image",
            status=status,
            operation="download",
        )
    return sniffed


class _Sink:
    """Where a download goes: a bytearray, or `dest.part` renamed to `dest` once complete.

    Writes to a file are gathered into blocks of `_FLUSH_BYTES`, each written in one trip to a thread (and the
    last one with the close and the rename), so a typical result costs one or two thread hops, not one per
    network chunk, while a large one never sits in memory whole.
    """

    def __init__(self, dest: Path | None) -> None:
        self._dest = dest
        self._part = dest.with_name(dest.name + ".part") if dest is not None else None
        self._file: IO[bytes] | None = None
        self._buffer = bytearray()
        self._done = False

    async def open(self) -> None:
        """Nothing to do until there is a block to write (kept for symmetry with `finish`)."""

    async def write(self, chunk: bytes) -> None:
        self._buffer += chunk
        if self._part is not None and len(self._buffer) >= _FLUSH_BYTES:
            block, self._buffer = bytes(self._buffer), bytearray()
            await asyncio.to_thread(self._write_block, block)

    def _write_block(self, block: bytes) -> None:
        assert self._part is not None
        if self._file is None:
            self._file = self._part.open("wb")
        self._file.write(block)

    def _complete(self, block: bytes) -> None:
        assert self._part is not None
        assert self._dest is not None
        self._write_block(block)
        assert self._file is not None
        self._file.close()
        os.replace(self._part, self._dest)

    async def finish(self, *, url: str, content_type: str, size: int) -> DownloadedImage:
        if self._part is None or self._dest is None:
            self._done = True
            return DownloadedImage(url=url, content_type=content_type, size=size, data=bytes(self._buffer))
        block, self._buffer = bytes(self._buffer), bytearray()
        await asyncio.to_thread(self._complete, block)
        self._done = True
        return DownloadedImage(url=url, content_type=content_type, size=size, path=self._dest)

    async def discard(self) -> None:
        """Remove a partial file (a no-op after `finish`)."""
        if self._done:
            return
        self._buffer.clear()
        if self._file is not None:
            await asyncio.to_thread(self._file.close)
        if self._part is not None:
            await asyncio.to_thread(self._part.unlink, missing_ok=True)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _jittered(interval: float, jitter: float) -> float:
    return max(interval * (1.0 + jitter * (2.0 * random.random() - 1.0)), 0.0)

"""Prometheus metrics of one process, in a registry of its own (not the library's global one), so that two
pipelines in one test process never mix their figures. `status_server.py` serves them at `/metrics`.

Label values are bounded by construction: outcomes are the failure kinds, endpoints the API's few paths, models
and resolutions the catalog's (anything else is "other"), services "discord" and "toapis". No prompt, user id,
server id or task id ever becomes a label.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from types import SimpleNamespace
from typing import Final

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from generation.events import FailureKind
from storage.jobs import Job
from toapis import catalog

log = logging.getLogger(__name__)

COMPLETED: Final = "completed"
OUTCOMES: Final = (COMPLETED, *(kind.value for kind in FailureKind))
SERVICES: Final = ("discord", "toapis")
ENDPOINTS: Final = ("submit", "lookup", "upload", "download", "models", "balance")
# What became of each ToAPIs webhook received (generation/webhook_receiver.py).
WEBHOOK_OUTCOMES: Final = (
    "woken",
    "left_for_holder",
    "repeat",
    "ignored",
    "bad_signature",
    "malformed",
    "busy",
    "error",
)
OTHER: Final = "other"
# Look-up counts are kept per task until it ends; a task this process never sees end is forgotten after this many.
_MAX_FOLLOWED: Final = 10_000

_LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_ACK_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
_TASK_BUCKETS: Final = (1.0, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 1800.0, 3600.0)
_LOOKUP_BUCKETS: Final = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0, 100.0)


class Metrics:
    """What Imagine counts about its jobs and the services it uses; every method is cheap and never raises."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self._jobs = Counter("imagine_jobs", "Jobs finished, by outcome", ["outcome"], registry=registry)
        self._reserved = Counter(
            "imagine_images_reserved", "Images reserved by accepted jobs, as the quotas count them", registry=registry
        )
        self._refunded = Counter(
            "imagine_images_refunded", "Images given back, as the quotas count them", registry=registry
        )
        self._queued = Gauge("imagine_queue_depth", "Jobs waiting for a slot", registry=registry)
        self._in_flight = Gauge("imagine_jobs_in_flight", "Jobs holding a slot", registry=registry)
        self._ack = Histogram(
            "imagine_ack_latency_seconds",
            "From handling a request to Discord's acceptance of its first response",
            registry=registry,
            buckets=_ACK_BUCKETS,
        )
        self._upstream = Histogram(
            "imagine_upstream_latency_seconds",
            "ToAPIs requests, until the answer's headers, by endpoint",
            ["endpoint"],
            registry=registry,
            buckets=_LATENCY_BUCKETS,
        )
        self._task = Histogram(
            "imagine_task_duration_seconds",
            "From a job's submit until its task ended, by model and resolution",
            ["model", "resolution"],
            registry=registry,
            buckets=_TASK_BUCKETS,
        )
        self._lookups = Histogram(
            "imagine_lookups_per_job",
            "Task look-ups this process made for a job whose task ended",
            registry=registry,
            buckets=_LOOKUP_BUCKETS,
        )
        self._rate_limits = Counter(
            "imagine_rate_limits", "429 answers met, by service", ["service"], registry=registry
        )
        self._breaker = Gauge(
            "imagine_breaker_open", "1 while the circuit breaker in front of ToAPIs is open", registry=registry
        )
        self._balance = Gauge(
            "imagine_toapis_balance_credits", "remain_credits as last read (NaN until read)", registry=registry
        )
        self._balance.set(math.nan)
        self._webhooks = Counter(
            "imagine_webhooks", "ToAPIs webhooks received, by what became of them", ["outcome"], registry=registry
        )
        for outcome in WEBHOOK_OUTCOMES:
            self._webhooks.labels(outcome)
        # Every series exists from the start, at 0: a rate over a series that appears later misses its first step.
        for outcome in OUTCOMES:
            self._jobs.labels(outcome)
        for service in SERVICES:
            self._rate_limits.labels(service)
        for endpoint in ENDPOINTS:
            self._upstream.labels(endpoint)
        self._followed: OrderedDict[str, int] = OrderedDict()

    # -- what the pipeline and the cogs record ---------------------------------------------------------------

    def job_accepted(self, images: int) -> None:
        """A job was admitted: its images are reserved."""
        self._reserved.inc(images)

    def images_refunded(self, images: int) -> None:
        """Images given back to the quotas (a failed job, or fewer images than asked)."""
        if images > 0:
            self._refunded.inc(images)

    def webhook_received(self, outcome: str) -> None:
        """A ToAPIs webhook was answered; `outcome` is one of WEBHOOK_OUTCOMES."""
        self._webhooks.labels(outcome if outcome in WEBHOOK_OUTCOMES else "error").inc()

    def job_completed(self) -> None:
        """A job's images were delivered."""
        self._jobs.labels(COMPLETED).inc()

    def job_failed(self, kind: str, refunded: int) -> None:
        """A job ended failed with `kind` (a FailureKind value); `refunded` images were given back."""
        self._jobs.labels(kind if kind in OUTCOMES else FailureKind.INTERNAL.value).inc()
        self.images_refunded(refunded)

    def task_ended(self, job: Job, seconds: float) -> None:
        """A job's task is terminal, `seconds` after its submit: its duration, and how often it was looked up."""
        model, resolution = task_labels(job.model, job.resolution)
        self._task.labels(model, resolution).observe(max(seconds, 0.0))
        lookups = sum(self._followed.pop(key, 0) for key in {job.task_id, job.id} if key is not None)
        if lookups:
            self._lookups.observe(lookups)

    def acknowledged(self, seconds: float) -> None:
        """A request got its first response `seconds` after the bot began handling it."""
        self._ack.observe(max(seconds, 0.0))

    def balance(self, credits: float | None) -> None:
        """The ToAPIs account's credits, as last read."""
        self._balance.set(math.nan if credits is None else credits)

    def watch(
        self, *, queued: Callable[[], int], in_flight: Callable[[], int], breaker_open: Callable[[], bool]
    ) -> None:
        """Read these at every scrape (the pipeline's line, its slots, the breaker)."""
        self._queued.set_function(queued)
        self._in_flight.set_function(in_flight)
        self._breaker.set_function(lambda: 1.0 if breaker_open() else 0.0)

    def rate_limited(self, service: str) -> None:
        """A 429 from `service` ("discord" or "toapis")."""
        self._rate_limits.labels(service if service in SERVICES else OTHER).inc()

    def render(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)

    # -- the HTTP sessions' view -------------------------------------------------------------------------------

    def toapis_trace(self) -> aiohttp.TraceConfig:
        """For the ToAPIs session: each request's latency by endpoint, look-ups per task, 429s."""
        trace = aiohttp.TraceConfig()

        async def started(
            session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestStartParams
        ) -> None:
            context.started = time.monotonic()

        async def ended(
            session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
        ) -> None:
            endpoint, item = upstream_endpoint(params.method, params.url.path)
            self._upstream.labels(endpoint).observe(time.monotonic() - getattr(context, "started", time.monotonic()))
            if endpoint == "lookup" and item:
                self._count_lookup(item)
            if params.response.status == 429:
                self.rate_limited("toapis")

        trace.on_request_start.append(started)
        trace.on_request_end.append(ended)
        return trace

    def discord_trace(self) -> aiohttp.TraceConfig:
        """For discord.py's session: the 429s Discord answers."""
        trace = aiohttp.TraceConfig()

        async def ended(
            session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
        ) -> None:
            if params.response.status == 429:
                self.rate_limited("discord")

        trace.on_request_end.append(ended)
        return trace

    def _count_lookup(self, item: str) -> None:
        self._followed[item] = self._followed.get(item, 0) + 1
        self._followed.move_to_end(item)
        while len(self._followed) > _MAX_FOLLOWED:
            self._followed.popitem(last=False)


def upstream_endpoint(method: str, path: str) -> tuple[str, str | None]:
    """Which ToAPIs endpoint a request went to, and the id it named (a look-up's task or business id).

    Everything off the API's paths is a result or reference download from the files host.
    """
    parts = [part for part in path.split("/") if part]
    if parts[-2:] == ["images", "generations"] and method == "POST":
        return "submit", None
    if len(parts) >= 3 and parts[-3:-1] == ["images", "generations"] and method == "GET":
        return "lookup", parts[-1]
    if parts[-2:] == ["uploads", "images"]:
        return "upload", None
    if parts[-1:] == ["models"]:
        return "models", None
    if parts[-1:] == ["balance"]:
        return "balance", None
    return "download", None


def task_labels(model: str, resolution: str) -> tuple[str, str]:
    """The model and resolution labels of a job: catalogued values only, "other" for anything else (labels must
    stay a small, bounded set)."""
    if model not in catalog.MODELS:
        return OTHER, OTHER
    return model, resolution if resolution in catalog.MODELS[model].resolutions else OTHER

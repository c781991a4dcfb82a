"""The health probe, and the API key staying out of every error, repr and log line."""

from __future__ import annotations

import logging
import socket
from typing import Any

import aiohttp
import pytest

from tests.fakes.toapis import Endpoint, FakeToAPIs, Fault, Timeline
from tests.toapis._helpers import MakeClient, submit
from toapis import (
    APIConnectionError,
    AuthenticationError,
    RetryPolicy,
    ServerError,
    ToAPIsClient,
    ToAPIsError,
)

# --- health -------------------------------------------------------------------------------------------------------


async def test_healthy(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    health = await toapis_client.check_health()
    assert (health.ok, health.reachable, health.key_accepted, health.error) == (True, True, True, None)
    assert health.reason == "the API answered and accepted the key"
    assert health.latency >= 0
    (request,) = toapis_fake.requests_to(Endpoint.MODELS)
    assert request.key_ok is True
    assert toapis_fake.tasks == {}  # nothing billed


async def test_a_refused_key(make_client: MakeClient) -> None:
    health = await make_client(api_key="sk-wrong").check_health()
    assert (health.ok, health.reachable, health.key_accepted) == (False, True, False)
    assert isinstance(health.error, AuthenticationError)
    assert health.reason == "ToAPIs health probe: Invalid API key provided (HTTP 401, code authentication_error)"


async def test_a_gateway_error_means_unreachable(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.fail(Endpoint.MODELS, Fault.bad_gateway())
    health = await toapis_client.check_health()
    assert (health.ok, health.reachable, health.key_accepted) == (False, False, None)
    assert isinstance(health.error, ServerError)
    assert len(toapis_fake.requests_to(Endpoint.MODELS)) == 1  # a probe is never retried


async def test_out_of_balance_still_accepts_the_key(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.fail(Endpoint.MODELS, Fault.insufficient_balance())
    health = await toapis_client.check_health()
    assert (health.ok, health.reachable, health.key_accepted) == (False, True, True)


async def test_rate_limited_is_reachable_but_not_ok(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.fail(Endpoint.MODELS, Fault.rate_limited(retry_after=5))
    health = await toapis_client.check_health()
    assert (health.ok, health.reachable, health.key_accepted) == (False, True, None)


async def test_nothing_listening(toapis_session: aiohttp.ClientSession) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = ToAPIsClient(toapis_session, api_key="k", base_url=f"http://127.0.0.1:{port}/v1")
    health = await client.check_health()
    assert (health.ok, health.reachable, health.key_accepted) == (False, False, None)
    assert isinstance(health.error, APIConnectionError)
    assert health.reason.startswith("unreachable: ToAPIs health probe: could not connect")


async def test_a_slow_api(make_client: MakeClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.fail(Endpoint.MODELS, Fault.slow(30))
    health = await make_client(timeout=0.1).check_health()
    assert (health.ok, health.reachable) == (False, False)
    assert health.reason == "unreachable: ToAPIs health probe: no answer within 0.1 s"


async def test_a_wrong_base_url(make_client: MakeClient, toapis_fake: FakeToAPIs) -> None:
    health = await make_client(base_url=toapis_fake.base_url + "/nope").check_health()
    assert (health.ok, health.reachable, health.key_accepted) == (False, True, None)
    assert "HTTP 404" in health.reason


def test_the_client_refuses_nonsense_settings(toapis_fake: FakeToAPIs) -> None:
    session: Any = object()  # never used: the constructor fails first
    with pytest.raises(ValueError, match="key is empty"):
        ToAPIsClient(session, api_key="  ")
    with pytest.raises(ValueError, match="http"):
        ToAPIsClient(session, api_key="k", base_url="toapis.com/v1")
    with pytest.raises(ValueError, match="timeout"):
        ToAPIsClient(session, api_key="k", timeout=0)


# --- the key never leaks ------------------------------------------------------------------------------------------


def _everything_reachable_from(error: BaseException) -> str:
    """str, repr and attributes of the error and of every exception chained to it."""
    texts: list[str] = []
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), repr(vars(current)), repr(current.args)]
        pending += [current.__cause__, current.__context__]
    return "\n".join(texts)


async def test_the_key_appears_in_no_error(make_client: MakeClient, toapis_fake: FakeToAPIs) -> None:
    key = toapis_fake.api_key
    client = make_client(timeout=0.3, retry=RetryPolicy(max_retries=0))
    echo = Fault.answer(401, {"error": {"code": key, "message": f"Invalid API key: {key}"}})
    html_echo = Fault.answer(502, f"<html><title>bad key {key}</title></html>", content_type="text/html")
    scenarios = [
        (Endpoint.SUBMIT, echo),
        (Endpoint.SUBMIT, html_echo),
        (Endpoint.UPLOAD, Fault.answer(400, {"success": False, "message": f"bad {key}"})),
        (Endpoint.LOOKUP, Fault.answer(400, {"message": key})),
        (Endpoint.LOOKUP, Fault.disconnect()),
        (Endpoint.LOOKUP, Fault.slow(30)),
        (Endpoint.LOOKUP, Fault.rate_limited(retry_after=0)),
        (Endpoint.LOOKUP, Fault.unauthorized()),
    ]
    errors: list[ToAPIsError] = []
    for endpoint, fault in scenarios:
        toapis_fake.clear_faults()
        toapis_fake.fail(endpoint, fault, times=None)
        try:
            if endpoint is Endpoint.UPLOAD:
                await client.upload_image(b"GIF89a", filename="x.gif", content_type="image/gif")
            elif endpoint is Endpoint.SUBMIT:
                await submit(client, "job-secret")
            else:
                await client.get_task("task_img_x")
        except ToAPIsError as caught:
            errors.append(caught)
    assert len(errors) == len(scenarios)
    for error in errors:
        assert key not in _everything_reachable_from(error), repr(error)
        assert key not in error.user_message
    assert "[redacted]" in str(errors[0])


async def test_the_key_appears_in_no_log_line(
    make_client: MakeClient, toapis_fake: FakeToAPIs, caplog: pytest.LogCaptureFixture
) -> None:
    key = toapis_fake.api_key
    caplog.set_level(logging.DEBUG)
    client = make_client(retry=RetryPolicy(max_retries=2, initial_delay=0, max_delay=0))
    toapis_fake.fail(Endpoint.SUBMIT, Fault.answer(500, {"error": {"message": f"oops {key}"}}), after_effect=True)
    toapis_fake.queue_timeline(Timeline.instant())
    task = await submit(client, "job-log")
    toapis_fake.fail(Endpoint.LOOKUP, Fault.answer(503, f"down {key}"))
    await client.wait_for_task(task.id, interval=0.001, deadline=10)
    assert caplog.records  # retries and lookups were logged
    assert all(key not in record.getMessage() for record in caplog.records)
    assert key not in repr(client)
    assert all(key not in str(request.headers) for request in toapis_fake.requests)  # the fake redacts it too

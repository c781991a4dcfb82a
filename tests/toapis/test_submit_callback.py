"""`callback_url` on a submit: sent as given; refused `webhook_not_configured` (no task made) when the Token has
no webhooks; refused naming the field when its scheme, host or port differ from the console's URL, which is
handled the same way (`CallbackURLRefusedError`, a `WebhookNotConfiguredError`)."""

from __future__ import annotations

import pytest

from tests.fakes.toapis import Endpoint, FakeToAPIs, Timeline
from toapis import BadRequestError, CallbackURLRefusedError, ToAPIsClient, WebhookNotConfiguredError

URL = "https://imagine.example.test/toapis/webhook"


async def test_the_callback_url_is_sent_with_the_submit(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.webhooks.configure(url=URL, secret="whsec_0123456789abcdef", forward_to="http://127.0.0.1:9")
    await toapis_client.submit_generation(prompt="a fox", n=1, client_business_id="job-1", callback_url=URL + "?j=1")
    await toapis_client.submit_generation(prompt="a fox", n=1, client_business_id="job-2")
    with_url, without = (request.json for request in toapis_fake.requests_to(Endpoint.SUBMIT))
    assert with_url["callback_url"] == URL + "?j=1"
    assert "callback_url" not in without


async def test_webhooks_not_set_up_is_its_own_refusal_and_makes_no_task(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    with pytest.raises(WebhookNotConfiguredError) as caught:
        await toapis_client.submit_generation(prompt="a fox", n=1, client_business_id="job-1", callback_url=URL)
    assert (caught.value.status, caught.value.code) == (400, "webhook_not_configured")
    assert isinstance(caught.value, BadRequestError)  # a 400: nothing was created, nothing to look up
    assert toapis_fake.tasks_for("job-1") == []
    assert len(toapis_fake.requests_to(Endpoint.SUBMIT)) == 1  # not retried by the client


async def test_a_callback_url_on_another_host_is_refused_naming_it(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    toapis_fake.webhooks.configure(url=URL, secret="whsec_0123456789abcdef", forward_to="http://127.0.0.1:9")
    for other in ("https://elsewhere.example.test/toapis/webhook", "https://imagine.example.test:8443/toapis/webhook"):
        with pytest.raises(CallbackURLRefusedError) as caught:
            await toapis_client.submit_generation(prompt="a fox", n=1, client_business_id="job-1", callback_url=other)
        assert isinstance(caught.value, WebhookNotConfiguredError)  # the same fallback: submit again without it
        assert (caught.value.status, caught.value.param) == (400, "callback_url")
    assert toapis_fake.tasks_for("job-1") == []


async def test_a_failures_event_comes_only_once_it_settled_a_completions_at_once(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    webhooks = toapis_fake.webhooks
    webhooks.configure(url=URL, secret="whsec_0123456789abcdef", forward_to="http://127.0.0.1:9")
    webhooks.retry_delays = ()  # one attempt each (nobody listens on port 9)
    toapis_fake.queue_timeline(Timeline.simple(running=0.01), Timeline.failing(after=0.01))
    completes = await toapis_client.submit_generation(prompt="a", n=1, client_business_id="job-1", callback_url=URL)
    fails = await toapis_client.submit_generation(prompt="b", n=1, client_business_id="job-2", callback_url=URL)
    await webhooks.wait_for(lambda: len(webhooks.deliveries) == 2)
    for task, outcome in ((completes, "completed"), (fails, "failed")):
        (delivery,) = webhooks.of_task(task.id)
        ended = toapis_fake.tasks[task.id].created + 0.01
        assert delivery.time - ended >= webhooks.delays[outcome]
    assert webhooks.delays["failed"] > webhooks.delays["completed"] == 0

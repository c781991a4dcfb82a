"""Submitting generations: what is sent, and that one business id never gets two tasks."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.fakes._png import png_for
from tests.fakes.toapis import Endpoint, FakeToAPIs, Fault
from tests.toapis._helpers import MakeClient, submit
from toapis import (
    APIConnectionError,
    BadRequestError,
    ContentPolicyError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    TaskStatus,
    ToAPIsClient,
    ToAPIsError,
)


async def test_a_submit_sends_the_documented_body_and_returns_the_queued_task(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    upload_url = (await toapis_client.upload_image(_tiny_png(), filename="r.png", content_type="image/png")).url
    task = await toapis_client.submit_generation(
        prompt="a fox", aspect="16:9", resolution="2k", n=3, reference_urls=[upload_url], client_business_id="job-1"
    )
    (request,) = toapis_fake.requests_to(Endpoint.SUBMIT)
    assert request.json == {
        "model": "gpt-image-2",
        "prompt": "a fox",
        "size": "16:9",
        "resolution": "2k",
        "n": 3,
        "response_format": "url",
        "client_business_id": "job-1",
        "reference_images": [upload_url],
    }
    assert request.key_ok is True
    assert task.status is TaskStatus.QUEUED
    assert task.client_business_id == "job-1"
    assert task.id in toapis_fake.tasks
    assert (toapis_fake.tasks[task.id].n, toapis_fake.tasks[task.id].size) == (3, "2048x1152")


async def test_a_legacy_pixel_size_is_sent_as_its_ratio_and_resolution(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    task = await submit(toapis_client, "job-1", aspect="3:2")
    (request,) = toapis_fake.requests_to(Endpoint.SUBMIT)
    assert (request.json["size"], request.json["resolution"]) == ("3:2", "1k")
    assert toapis_fake.tasks[task.id].size == "1536x1024"


async def test_the_defaults_are_square_at_the_models_default_resolution(
    make_client: MakeClient, toapis_fake: FakeToAPIs
) -> None:
    client = make_client(model="doubao-seedream-4-5")
    await client.submit_generation(prompt="a fox", n=1, client_business_id="job-1")
    await client.submit_generation(prompt="a fox", n=1, client_business_id="job-2", model="gpt-image-2")
    first, second = (request.json for request in toapis_fake.requests_to(Endpoint.SUBMIT))
    assert (first["model"], first["size"], first["metadata"]) == ("doubao-seedream-4-5", "1:1", {"resolution": "2K"})
    assert (second["model"], second["size"], second["resolution"]) == ("gpt-image-2", "1:1", "1k")


async def test_no_reference_images_key_without_references(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    await submit(toapis_client, "job-1")
    assert "reference_images" not in toapis_fake.requests_to(Endpoint.SUBMIT)[0].json


async def test_the_model_is_the_clients(make_client: MakeClient, toapis_fake: FakeToAPIs) -> None:
    await submit(make_client(model="gpt-image-2-vip"), "job-1")
    assert toapis_fake.requests_to(Endpoint.SUBMIT)[0].json["model"] == "gpt-image-2-vip"


async def test_an_alias_is_sent_as_the_models_id(make_client: MakeClient, toapis_fake: FakeToAPIs) -> None:
    await make_client(model="nano-banana").submit_generation(prompt="a fox", n=1, client_business_id="job-1")
    assert toapis_fake.requests_to(Endpoint.SUBMIT)[0].json["model"] == "gemini-2.5-flash-image-preview"


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"prompt": "   "}, "the prompt is empty"),
        ({"prompt": "x" * 4001}, "the prompt is 4,001 characters long; GPT Image 2 takes at most 4,000"),
        ({"aspect": "1024x1024"}, "GPT Image 2 offers the aspect ratios 1:1, 3:2"),
        ({"aspect": "7:5"}, "GPT Image 2 offers the aspect ratios"),
        ({"n": 5}, "GPT Image 2 makes 1 to 4 images per request, not 5"),
        ({"n": 0}, "GPT Image 2 makes 1 to 4 images per request, not 0"),
        ({"n": True}, "GPT Image 2 makes 1 to 4 images per request, not True"),
        ({"references": ["https://example.com/a.png"] * 5}, "GPT Image 2 takes at most 4 reference images, not 5"),
        ({"references": ["data:image/png;base64,AAAA"]}, "reference images must be http(s) URLs"),
        ({"business_id": ""}, "client_business_id must be"),
        ({"business_id": "job 1"}, "client_business_id must be"),
        ({"business_id": "x" * 129}, "client_business_id must be"),
    ],
)
async def test_what_the_api_would_refuse_is_refused_without_sending(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs, options: dict[str, object], problem: str
) -> None:
    arguments: dict[str, object] = {"prompt": "a fox", "aspect": "1:1", "n": 1, "references": ()}
    business_id = str(options.pop("business_id", "job-1"))
    arguments.update(options)
    with pytest.raises(BadRequestError) as caught:
        await submit(toapis_client, business_id, **arguments)  # type: ignore[arg-type]
    assert problem in caught.value.message
    assert toapis_fake.requests == []


@pytest.mark.parametrize(
    ("options", "problem", "param"),
    [
        (
            {"model": "flux-2-pro", "resolution": "4k"},
            "FLUX.2 Pro offers the resolutions 1K, 2K, not '4k'",
            "resolution",
        ),
        ({"model": "gpt-4o-image", "aspect": "16:9"}, "GPT-4o Image offers the aspect ratios 1:1, 3:2, 2:3", "size"),
        ({"model": "gpt-4o-image", "n": 3}, "GPT-4o Image makes 1, 2 or 4 images per request, not 3", "n"),
        ({"model": "grok-4-1-image", "prompt": "x" * 1001}, "Grok 4.1 Image takes at most 1,000", "prompt"),
        (
            {"model": "grok-imagine-1.0", "references": 1},
            "Grok Imagine 1.0 takes no reference images",
            "reference_images",
        ),
        ({"model": "flux-kontext-pro", "references": 2}, "takes at most 1 reference image, not 2", "image_urls"),
        ({"model": "gpt-image-2", "references": 5}, "takes at most 4 reference images, not 5", "reference_images"),
        ({"aspect": "1:4"}, "GPT Image 2 offers the aspect ratios 1:1, 3:2", "size"),
    ],
)
async def test_what_the_model_does_not_offer_is_refused_without_sending(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs, options: dict[str, object], problem: str, param: str
) -> None:
    references = ["https://example.com/a.png"] * int(str(options.pop("references", 0)))
    arguments: dict[str, object] = {"prompt": "a fox", "n": 1, "client_business_id": "job-1"} | options
    with pytest.raises(BadRequestError) as caught:
        await toapis_client.submit_generation(reference_urls=references, **arguments)  # type: ignore[arg-type]
    assert problem in caught.value.message
    assert caught.value.param == param
    assert toapis_fake.requests == []


@pytest.mark.parametrize(
    ("model", "field"),
    [("gpt-4o-image", "image_urls"), ("flux-2-pro", "image_urls"), ("gpt-image-2", "reference_images")],
)
@pytest.mark.parametrize(
    "references", [["https://example.com/a.png"] * 5, ["data:image/png;base64,AAAA"]], ids=["too many", "not http"]
)
async def test_a_reference_refused_locally_blames_the_models_own_field(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs, model: str, field: str, references: list[str]
) -> None:
    # Most models take references as `image_urls`; only gpt-image-2 and -vip as `reference_images`.
    with pytest.raises(BadRequestError) as caught:
        await toapis_client.submit_generation(
            prompt="a fox", n=1, model=model, reference_urls=references, client_business_id="job-1"
        )
    assert caught.value.param == field
    assert toapis_fake.requests == []


async def test_a_4000_character_prompt_is_accepted(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    await submit(toapis_client, "job-1", prompt="x" * 4000)
    assert len(toapis_fake.tasks) == 1


@pytest.mark.parametrize(
    "fault", [Fault.rate_limited(retry_after=0), Fault.unavailable()], ids=["429", "503 rate_limit_unavailable"]
)
async def test_429_and_503_are_retried_without_a_lookup(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs, fault: Fault
) -> None:
    toapis_fake.fail(Endpoint.SUBMIT, fault, times=2)
    task = await submit(toapis_client, "job-1")
    assert len(toapis_fake.requests_to(Endpoint.SUBMIT)) == 3
    assert toapis_fake.requests_to(Endpoint.LOOKUP) == []  # a documented refusal proves there is no task
    assert [t.id for t in toapis_fake.tasks_for("job-1")] == [task.id]


async def test_a_503_other_than_submits_paused_is_looked_up_before_submitting_again(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    # A gateway's 503 says nothing of whether the submit reached ToAPIs: here it did, and made the task.
    toapis_fake.fail(Endpoint.SUBMIT, Fault.answer(503, "<html>503 Service Unavailable</html>"), after_effect=True)
    task = await submit(toapis_client, "job-503")
    assert len(toapis_fake.requests_to(Endpoint.SUBMIT)) == 1
    assert [r.status for r in toapis_fake.requests_to(Endpoint.LOOKUP)] == [200]
    assert [t.id for t in toapis_fake.tasks_for("job-503")] == [task.id]


async def test_retry_after_is_honoured(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.fail(Endpoint.SUBMIT, Fault.rate_limited(retry_after=0.1))
    started = time.monotonic()
    await submit(toapis_client, "job-1")
    first, second = toapis_fake.requests_to(Endpoint.SUBMIT)
    assert second.time - first.time >= 0.1 - 0.005
    assert time.monotonic() - started >= 0.1 - 0.005


async def test_a_retry_after_beyond_the_limit_is_not_waited_for(
    make_client: MakeClient, toapis_fake: FakeToAPIs
) -> None:
    client = make_client(retry=RetryPolicy(max_retries=2, max_retry_after=10.0))
    toapis_fake.fail(Endpoint.SUBMIT, Fault.rate_limited(retry_after=3600, category="async_submit"))
    with pytest.raises(RateLimitError) as caught:
        await submit(client, "job-1")
    assert caught.value.retry_after == 3600
    assert caught.value.category == "async_submit"
    assert len(toapis_fake.requests_to(Endpoint.SUBMIT)) == 1


async def test_rate_limits_that_persist_are_raised_after_the_retries(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    toapis_fake.fail(Endpoint.SUBMIT, Fault.rate_limited(retry_after=0), times=None)
    with pytest.raises(RateLimitError):
        await submit(toapis_client, "job-1")
    assert len(toapis_fake.requests_to(Endpoint.SUBMIT)) == 3
    assert toapis_fake.tasks == {}


@pytest.mark.parametrize(
    "fault", [Fault.unauthorized(), Fault.insufficient_balance(), Fault.content_policy(), Fault.bad_request()]
)
async def test_refusals_are_neither_retried_nor_looked_up(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs, fault: Fault
) -> None:
    toapis_fake.fail(Endpoint.SUBMIT, fault)
    with pytest.raises(ToAPIsError) as caught:
        await submit(toapis_client, "job-1")
    assert caught.value.status == fault.status
    assert len(toapis_fake.requests_to(Endpoint.SUBMIT)) == 1
    assert toapis_fake.requests_to(Endpoint.LOOKUP) == []


async def test_a_submit_that_timed_out_after_creating_its_task_is_not_sent_again(
    make_client: MakeClient, toapis_fake: FakeToAPIs
) -> None:
    # The task is created, then the answer hangs past the client's timeout: the ambiguous case.
    client = make_client(timeout=0.5)
    toapis_fake.fail(Endpoint.SUBMIT, Fault.slow(30), after_effect=True)
    task = await submit(client, "job-timeout")
    assert [t.id for t in toapis_fake.tasks_for("job-timeout")] == [task.id]
    assert len(toapis_fake.tasks) == 1
    assert len(toapis_fake.requests_to(Endpoint.SUBMIT)) == 1
    (lookup,) = toapis_fake.requests_to(Endpoint.LOOKUP)
    assert lookup.path == "/v1/images/generations/job-timeout"
    assert task.client_business_id == "job-timeout"


async def test_a_submit_that_timed_out_before_creating_its_task_is_sent_again(
    make_client: MakeClient, toapis_fake: FakeToAPIs
) -> None:
    client = make_client(timeout=0.5)
    toapis_fake.fail(Endpoint.SUBMIT, Fault.slow(30))  # the client gives up before the fake creates anything
    task = await submit(client, "job-timeout")
    assert [t.id for t in toapis_fake.tasks_for("job-timeout")] == [task.id]
    assert len(toapis_fake.requests_to(Endpoint.SUBMIT)) == 2
    assert [r.status for r in toapis_fake.requests_to(Endpoint.LOOKUP)] == [404]


async def test_a_dropped_submit_that_a_404_proves_unsent_is_submitted_again(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    toapis_fake.fail(Endpoint.SUBMIT, Fault.disconnect())  # before the task is created
    task = await submit(toapis_client, "job-drop")
    submits = toapis_fake.requests_to(Endpoint.SUBMIT)
    lookups = toapis_fake.requests_to(Endpoint.LOOKUP)
    assert [r.status for r in submits] == [None, 200]
    assert [(r.path, r.status) for r in lookups] == [("/v1/images/generations/job-drop", 404)]
    assert lookups[0].time < submits[1].time  # looked up before submitting again
    assert [t.id for t in toapis_fake.tasks_for("job-drop")] == [task.id]


async def test_the_task_not_exist_variant_also_proves_a_submit_unsent(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    toapis_fake.task_not_exist_variant = True
    toapis_fake.fail(Endpoint.SUBMIT, Fault.disconnect())
    await submit(toapis_client, "job-drop")
    assert [r.status for r in toapis_fake.requests_to(Endpoint.LOOKUP)] == [400]
    assert len(toapis_fake.tasks_for("job-drop")) == 1


@pytest.mark.parametrize(
    "fault",
    [Fault.disconnect(), Fault.bad_gateway(), Fault.gateway_timeout(), Fault.server_error(), Fault.truncated()],
    ids=["dropped", "502", "504", "500", "truncated"],
)
async def test_an_ambiguous_failure_after_creation_returns_the_existing_task(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs, fault: Fault
) -> None:
    toapis_fake.fail(Endpoint.SUBMIT, fault, after_effect=True)
    task = await submit(toapis_client, "job-ambiguous")
    assert [t.id for t in toapis_fake.tasks_for("job-ambiguous")] == [task.id]
    assert len(toapis_fake.requests_to(Endpoint.SUBMIT)) == 1
    assert len(toapis_fake.requests_to(Endpoint.LOOKUP)) == 1


async def test_an_unreadable_success_is_ambiguous_too(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.fail(Endpoint.SUBMIT, Fault.answer(200, "<html>ok</html>", content_type="text/html"), after_effect=True)
    task = await submit(toapis_client, "job-garbled")
    assert [t.id for t in toapis_fake.tasks_for("job-garbled")] == [task.id]
    assert len(toapis_fake.requests_to(Endpoint.SUBMIT)) == 1


async def test_a_5xx_before_creation_is_looked_up_then_submitted_again(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    toapis_fake.fail(Endpoint.SUBMIT, Fault.bad_gateway())
    await submit(toapis_client, "job-502")
    assert len(toapis_fake.requests_to(Endpoint.SUBMIT)) == 2
    assert len(toapis_fake.requests_to(Endpoint.LOOKUP)) == 1
    assert len(toapis_fake.tasks_for("job-502")) == 1


async def test_ambiguous_failures_every_time_end_with_the_last_error_and_no_task(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    toapis_fake.fail(Endpoint.SUBMIT, Fault.server_error(), times=None)
    with pytest.raises(ServerError):
        await submit(toapis_client, "job-down")
    # Each try was looked up (404) before the next: three submits, three lookups, no task.
    kinds = [r.endpoint for r in toapis_fake.requests]
    assert kinds == [Endpoint.SUBMIT, Endpoint.LOOKUP] * 3
    assert toapis_fake.tasks == {}


async def test_a_lookup_that_survives_a_transient_error_still_settles_the_question(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    toapis_fake.fail(Endpoint.SUBMIT, Fault.disconnect(), after_effect=True)
    toapis_fake.fail(Endpoint.LOOKUP, Fault.server_error())  # the lookup itself is retried
    task = await submit(toapis_client, "job-1")
    assert [t.id for t in toapis_fake.tasks_for("job-1")] == [task.id]
    assert len(toapis_fake.requests_to(Endpoint.SUBMIT)) == 1


async def test_an_unreachable_api_is_retried_then_raised(make_client: MakeClient, toapis_fake: FakeToAPIs) -> None:
    client = make_client()
    await toapis_fake.close()  # nothing listens any more: the connection is refused, so nothing was sent
    with pytest.raises(APIConnectionError) as caught:
        await submit(client, "job-1")
    assert caught.value.maybe_sent is False
    assert "could not connect" in str(caught.value)


async def test_content_policy_refusal_creates_no_task(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.fail(Endpoint.SUBMIT, Fault.content_policy())
    with pytest.raises(ContentPolicyError):
        await submit(toapis_client, "job-1")
    assert toapis_fake.tasks == {}


async def test_many_concurrent_submits_on_one_client_each_get_exactly_one_task(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    # Faults land on whichever submits come first; every job must still end with exactly one task.
    toapis_fake.fail(Endpoint.SUBMIT, Fault.disconnect(), times=3, after_effect=True)
    toapis_fake.fail(Endpoint.SUBMIT, Fault.rate_limited(retry_after=0), times=3)
    toapis_fake.fail(Endpoint.SUBMIT, Fault.disconnect(), times=3)
    ids = [f"job-{number}" for number in range(30)]
    tasks = await asyncio.gather(*(submit(toapis_client, business_id) for business_id in ids))
    assert len({task.id for task in tasks}) == 30
    for business_id, task in zip(ids, tasks, strict=True):
        assert [t.id for t in toapis_fake.tasks_for(business_id)] == [task.id]
    assert len(toapis_fake.tasks) == 30


def _tiny_png() -> bytes:
    return png_for("reference", 8, 8)

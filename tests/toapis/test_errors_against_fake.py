"""Every error class, produced over real HTTP against the fake, with the messages a caller would show.

`str(error)` is what goes to the log and to an admin; `user_message` is what a server member may see.
"""

from __future__ import annotations

import socket

import aiohttp
import pytest

from tests.fakes.toapis import Endpoint, FakeToAPIs, Fault, Timeline
from tests.toapis._helpers import MakeClient, submit
from toapis import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContentPolicyError,
    DownloadError,
    DownloadTooLargeError,
    InsufficientBalanceError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    SubmitUnconfirmedError,
    TaskNotFoundError,
    TaskWaitTimeoutError,
    ToAPIsClient,
    UnexpectedResponseError,
    UploadRejectedError,
)

NO_RETRY = RetryPolicy(max_retries=0)


async def test_authentication_error_for_a_wrong_key(make_client: MakeClient, toapis_fake: FakeToAPIs) -> None:
    client = make_client(api_key="sk-wrong-key")
    with pytest.raises(AuthenticationError) as caught:
        await submit(client, "job-auth")
    error = caught.value
    assert str(error) == "ToAPIs submit: Invalid API key provided (HTTP 401, code authentication_error)"
    assert error.user_message == "The image service refused the bot's credentials. Please tell a server admin."
    assert (error.status, error.code, error.is_transient) == (401, "authentication_error", False)
    assert len(toapis_fake.requests_to(Endpoint.SUBMIT)) == 1  # never retried
    assert toapis_fake.tasks == {}


async def test_insufficient_balance(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.fail(Endpoint.SUBMIT, Fault.insufficient_balance())
    with pytest.raises(InsufficientBalanceError) as caught:
        await submit(toapis_client, "job-402")
    assert str(caught.value) == "ToAPIs submit: Insufficient account balance (HTTP 402, code insufficient_quota)"
    assert caught.value.user_message == ("The image service account has run out of credit. Please tell a server admin.")
    assert len(toapis_fake.requests_to(Endpoint.SUBMIT)) == 1


async def test_content_policy_refusal_of_a_submit(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.fail(Endpoint.SUBMIT, Fault.content_policy())
    with pytest.raises(ContentPolicyError) as caught:
        await submit(toapis_client, "job-422")
    assert str(caught.value) == (
        "ToAPIs submit: The prompt was rejected by the content policy (HTTP 422, code content_policy_violation)"
    )
    assert caught.value.user_message == (
        "The image service's content policy refused this prompt or image. Please try a different prompt."
    )


async def test_bad_request_from_the_server(make_client: MakeClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.models = ("gpt-image-2",)  # a key that may not use the other catalogued models
    client = make_client(model="flux-2-pro")
    with pytest.raises(BadRequestError) as caught:
        await submit(client, "job-400")
    assert str(caught.value) == "ToAPIs submit: model flux-2-pro is not available (HTTP 400, code invalid_request)"
    assert (
        caught.value.user_message == "The image service did not accept the request: model flux-2-pro is not available"
    )
    assert caught.value.param == "model"
    assert len(toapis_fake.requests_to(Endpoint.SUBMIT)) == 1


async def test_bad_request_caught_before_sending(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    with pytest.raises(BadRequestError) as caught:
        await toapis_client.submit_generation(prompt="x" * 4001, aspect="1:1", n=1, client_business_id="job/1")
    assert str(caught.value) == (
        "ToAPIs submit: the prompt is 4,001 characters long; GPT Image 2 takes at most 4,000; client_business_id "
        "must be 1-128 letters, digits, '.', '_', ':' or '-'"
    )
    assert caught.value.status is None
    assert caught.value.param == "prompt"
    assert toapis_fake.requests == []


async def test_an_unknown_model_is_caught_before_sending(make_client: MakeClient, toapis_fake: FakeToAPIs) -> None:
    with pytest.raises(BadRequestError) as caught:
        await submit(make_client(model="dall-e-9"), "job-1")
    assert caught.value.message.startswith("unknown image model 'dall-e-9'; Imagine knows: gpt-image-2, ")
    assert caught.value.param == "model"
    assert toapis_fake.requests == []


async def test_upload_rejected_for_its_type(toapis_client: ToAPIsClient) -> None:
    with pytest.raises(UploadRejectedError) as caught:
        await toapis_client.upload_image(b"%PDF-1.7 not an image", filename="doc.pdf", content_type="image/png")
    assert str(caught.value) == "ToAPIs upload: Unsupported image type. Allowed: JPEG, PNG, WebP, GIF (HTTP 400)"
    assert caught.value.user_message == (
        "A reference image was not accepted: Unsupported image type. Allowed: JPEG, PNG, WebP, GIF"
    )
    assert isinstance(caught.value, BadRequestError)


async def test_task_not_found_404(toapis_client: ToAPIsClient) -> None:
    with pytest.raises(TaskNotFoundError) as caught:
        await toapis_client.get_task("task_img_missing")
    assert str(caught.value) == "ToAPIs task lookup: Task not found (HTTP 404, code 404)"
    assert caught.value.user_message == "The image service lost track of this job. Please try again."
    assert caught.value.task_id == "task_img_missing"


async def test_task_not_found_task_not_exist_variant(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.task_not_exist_variant = True
    with pytest.raises(TaskNotFoundError) as caught:
        await toapis_client.get_task("task_img_missing")
    assert str(caught.value) == "ToAPIs task lookup: task_not_exist (HTTP 400)"
    assert len(toapis_fake.requests_to(Endpoint.LOOKUP)) == 1  # not retried


async def test_rate_limited_after_the_retries(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.fail(Endpoint.LOOKUP, Fault.rate_limited(retry_after=0.0), times=None)
    with pytest.raises(RateLimitError) as caught:
        await toapis_client.get_task("task_img_any")
    error = caught.value
    assert (
        str(error) == "ToAPIs task lookup: Rate limit exceeded, please retry later (HTTP 429, code rate_limit_exceeded)"
    )
    assert error.user_message == "The image service is busy right now. Please try again in a minute."
    assert (error.retry_after, error.category, error.is_transient) == (0.0, "async_query", True)
    assert len(toapis_fake.requests_to(Endpoint.LOOKUP)) == 3  # the first try and two retries


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.server_error(), "ToAPIs task lookup: Internal server error (HTTP 500, code internal_error)"),
        (
            Fault.bad_gateway(),
            "ToAPIs task lookup: HTTP 502 with an HTML page from a gateway (502 Bad Gateway) (HTTP 502)",
        ),
        (
            Fault.unavailable(),
            "ToAPIs task lookup: Task submission is temporarily unavailable (HTTP 503, code rate_limit_unavailable)",
        ),
        (
            Fault.gateway_timeout(),
            "ToAPIs task lookup: HTTP 504 with an HTML page from a gateway (504 Gateway Time-out) (HTTP 504)",
        ),
    ],
)
async def test_server_errors(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs, fault: Fault, expected: str) -> None:
    toapis_fake.fail(Endpoint.LOOKUP, fault, times=None)
    with pytest.raises(ServerError) as caught:
        await toapis_client.get_task("task_img_any")
    assert str(caught.value) == expected
    assert caught.value.user_message == "The image service is having trouble right now. Please try again later."
    assert len(toapis_fake.requests_to(Endpoint.LOOKUP)) == 3


async def test_unexpected_response(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.fail(Endpoint.LOOKUP, Fault.answer(200, "<html>maintenance</html>", content_type="text/html"))
    with pytest.raises(UnexpectedResponseError) as caught:
        await toapis_client.get_task("task_img_any")
    assert str(caught.value) == "ToAPIs task lookup: the answer is not JSON (24 bytes) (HTTP 200)"
    assert caught.value.user_message == (
        "The image service sent an answer the bot did not understand. Please try again later."
    )


async def test_connection_dropped(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.fail(Endpoint.LOOKUP, Fault.disconnect(), times=None)
    with pytest.raises(APIConnectionError) as caught:
        await toapis_client.get_task("task_img_any")
    assert str(caught.value) == (
        "ToAPIs task lookup: the connection failed (ServerDisconnectedError: Server disconnected)"
    )
    assert caught.value.user_message == "The bot could not reach the image service. Please try again later."
    assert caught.value.maybe_sent is True


async def test_connection_refused(toapis_session: aiohttp.ClientSession) -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = ToAPIsClient(toapis_session, api_key="k", base_url=f"http://127.0.0.1:{port}/v1", retry=NO_RETRY)
    with pytest.raises(APIConnectionError) as caught:
        await client.get_task("task_img_any")
    assert str(caught.value).startswith(
        f"ToAPIs task lookup: could not connect (Cannot connect to host 127.0.0.1:{port}"
    )
    assert caught.value.maybe_sent is False
    assert not isinstance(caught.value, APITimeoutError)


async def test_timeout(make_client: MakeClient, toapis_fake: FakeToAPIs) -> None:
    client = make_client(timeout=0.1, retry=NO_RETRY)
    toapis_fake.fail(Endpoint.LOOKUP, Fault.slow(30))
    with pytest.raises(APITimeoutError) as caught:
        await client.get_task("task_img_any")
    assert str(caught.value) == "ToAPIs task lookup: no answer within 0.1 s"
    assert caught.value.user_message == "The image service took too long to answer. Please try again later."
    assert isinstance(caught.value, APIConnectionError)


async def test_timeout_covers_reading_the_body(
    make_client: MakeClient, toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    client = make_client(timeout=0.1, retry=NO_RETRY)
    task = await submit(toapis_client, "job-stall")
    toapis_fake.fail(Endpoint.LOOKUP, Fault.stalled_body(30))  # headers at once, the body never completes
    with pytest.raises(APITimeoutError, match=r"no answer within 0\.1 s"):
        await client.get_task(task.id)


async def test_submit_unconfirmed(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.fail(Endpoint.SUBMIT, Fault.disconnect(), after_effect=True)
    toapis_fake.fail(Endpoint.LOOKUP, Fault.server_error(), times=None)
    with pytest.raises(SubmitUnconfirmedError) as caught:
        await submit(toapis_client, "job-unsure")
    assert str(caught.value) == (
        "ToAPIs submit: may have created a task for job-unsure: the request failed (ToAPIs submit: the connection "
        "failed (ServerDisconnectedError: Server disconnected)), and so did the lookup that would tell (ToAPIs task "
        "lookup: Internal server error (HTTP 500, code internal_error))"
    )
    assert caught.value.user_message == "The bot could not confirm that the image service accepted this job."
    assert caught.value.client_business_id == "job-unsure"
    assert len(toapis_fake.tasks_for("job-unsure")) == 1  # the task exists: only a later lookup can tell
    assert len(toapis_fake.requests_to(Endpoint.SUBMIT)) == 1  # and it was not submitted again


async def test_wait_timeout(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.queue_timeline(Timeline.never_ends(progress=10))
    task = await submit(toapis_client, "job-slow")
    with pytest.raises(TaskWaitTimeoutError) as caught:
        await toapis_client.wait_for_task(task.id, interval=0.01, deadline=0.1)
    error = caught.value
    assert str(error) == f"ToAPIs task {task.id} did not end within 0.1 s (last seen in_progress at 10%)"
    assert error.user_message == "The image is taking longer than expected."
    assert error.task is not None
    assert error.task.progress == 10
    assert error.waited >= 0.1


async def test_download_error_for_a_page_that_is_not_an_image(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    toapis_fake.queue_timeline(Timeline.instant())
    toapis_fake.files_content_type = "text/html"
    task = await submit(toapis_client, "job-html")
    with pytest.raises(DownloadError) as caught:
        await toapis_client.download_image(toapis_fake.result_url(task.id, 1), max_bytes=10_000_000)
    assert str(caught.value) == "ToAPIs download: the files host sent 'text/html', not an image (HTTP 200)"
    assert caught.value.user_message == "The bot could not download the generated image. Please try again."


async def test_download_error_for_an_expired_url(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    with pytest.raises(DownloadError) as caught:
        await toapis_client.download_image(toapis_fake.result_url("task_img_gone", 1), max_bytes=10_000_000)
    assert str(caught.value) == "ToAPIs download: the files host answered HTTP 404 (HTTP 404)"
    assert len(toapis_fake.requests_to(Endpoint.DOWNLOAD)) == 1  # a 404 is not retried


async def test_download_too_large(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.queue_timeline(Timeline.instant())
    toapis_fake.result_min_bytes = 300_000
    task = await submit(toapis_client, "job-big")
    with pytest.raises(DownloadTooLargeError) as caught:
        await toapis_client.download_image(toapis_fake.result_url(task.id, 1), max_bytes=100_000)
    assert str(caught.value) == "ToAPIs download: the image is 300,000 bytes, more than the 100,000 allowed (HTTP 200)"
    assert caught.value.max_bytes == 100_000
    assert isinstance(caught.value, DownloadError)

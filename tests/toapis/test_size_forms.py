"""The size-form fallback: a 400 about the size is answered once with the other documented form, and remembered."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.toapis import Endpoint, FakeToAPIs, Fault, SizeMode
from tests.toapis._helpers import MakeClient
from toapis import BadRequestError, ToAPIsClient, catalog
from toapis.size_forms import SizeForm, forms_to_try, names_the_size, size_fields


async def generate(client: ToAPIsClient, business_id: str, **options: Any) -> str:
    """Submit a one-image job; return its task id."""
    task = await client.submit_generation(prompt="a fox", n=1, client_business_id=business_id, **options)
    return task.id


def sizes_sent(fake: FakeToAPIs) -> list[tuple[str, str | None, int | None]]:
    """(size, top-level resolution, status) of every submit, in order."""
    return [
        (request.json["size"], request.json.get("resolution"), request.status)
        for request in fake.requests_to(Endpoint.SUBMIT)
    ]


async def test_a_pixel_only_server_gets_the_pixels_after_one_refusal_then_first(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    toapis_fake.size_mode = SizeMode.PIXELS
    task_id = await generate(toapis_client, "job-1", aspect="3:2", resolution="2k")
    assert sizes_sent(toapis_fake) == [("3:2", "2k", 400), ("2048x1360", None, 200)]
    first, second = toapis_fake.requests_to(Endpoint.SUBMIT)
    assert first.json["client_business_id"] == second.json["client_business_id"] == "job-1"
    assert [task.id for task in toapis_fake.tasks_for("job-1")] == [task_id]
    assert len(toapis_fake.tasks) == 1
    assert toapis_fake.tasks[task_id].size == "2048x1360"

    # Remembered: the next submit of this model sends the pixel form first, and once.
    await generate(toapis_client, "job-2", aspect="16:9", resolution="4k")
    assert sizes_sent(toapis_fake)[2:] == [("3840x2160", None, 200)]
    assert len(toapis_fake.tasks) == 2


async def test_a_ratio_only_server_after_the_pixel_form_was_remembered(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    toapis_fake.size_mode = SizeMode.PIXELS
    await generate(toapis_client, "job-1")
    toapis_fake.size_mode = SizeMode.RATIO  # the server moves to the current pages
    task_id = await generate(toapis_client, "job-2", aspect="9:16")
    assert sizes_sent(toapis_fake)[2:] == [("864x1536", None, 400), ("9:16", "1k", 200)]
    assert [task.id for task in toapis_fake.tasks_for("job-2")] == [task_id]
    assert len(toapis_fake.tasks) == 2
    await generate(toapis_client, "job-3", aspect="9:16")
    assert sizes_sent(toapis_fake)[4:] == [("9:16", "1k", 200)]


async def test_a_ratio_server_takes_the_first_form_alone(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    await generate(toapis_client, "job-1", aspect="3:2")
    await generate(toapis_client, "job-2", aspect="1:1")
    assert sizes_sent(toapis_fake) == [("3:2", "1k", 200), ("1:1", "1k", 200)]


async def test_the_form_is_remembered_per_model(make_client: MakeClient, toapis_fake: FakeToAPIs) -> None:
    client = make_client()
    toapis_fake.size_mode = SizeMode.PIXELS
    await generate(client, "job-1")
    toapis_fake.size_mode = SizeMode.RATIO
    await generate(client, "job-2", model="flux-2-pro", resolution="2k")  # no memory of flux-2-pro: ratio first
    flux = toapis_fake.requests_to(Endpoint.SUBMIT)[2:]
    assert [(r.json["size"], r.json["metadata"], r.status) for r in flux] == [("1:1", {"resolution": "2K"}, 200)]


async def test_a_metadata_model_falls_back_to_its_documented_pixels(
    make_client: MakeClient, toapis_fake: FakeToAPIs
) -> None:
    toapis_fake.size_mode = SizeMode.PIXELS
    await generate(make_client(model="flux-2-flex"), "job-1", aspect="4:3", resolution="2k")
    first, second = (request.json for request in toapis_fake.requests_to(Endpoint.SUBMIT))
    assert (first["size"], first["metadata"]) == ("4:3", {"resolution": "2K"})
    assert (second["size"], "metadata" in second) == ("2730x2048", False)
    assert len(toapis_fake.tasks) == 1


async def test_no_fallback_without_documented_pixels(make_client: MakeClient, toapis_fake: FakeToAPIs) -> None:
    toapis_fake.size_mode = SizeMode.PIXELS
    with pytest.raises(BadRequestError) as caught:
        await generate(make_client(model="doubao-seedream-4-5"), "job-1")
    assert caught.value.param == "size"
    assert len(toapis_fake.requests_to(Endpoint.SUBMIT)) == 1
    assert toapis_fake.tasks == {}


async def test_a_400_about_something_else_is_not_answered_with_the_other_form(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    toapis_fake.fail(Endpoint.SUBMIT, Fault.bad_request("the prompt size is too big", param="prompt"))
    with pytest.raises(BadRequestError):
        await generate(toapis_client, "job-1")
    assert len(toapis_fake.requests_to(Endpoint.SUBMIT)) == 1


async def test_a_400_that_only_says_size_in_its_message_is(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    toapis_fake.size_mode = SizeMode.PIXELS
    toapis_fake.fail(Endpoint.SUBMIT, Fault.bad_request("Invalid size: expected WIDTHxHEIGHT"))  # no param
    await generate(toapis_client, "job-1", aspect="2:3")
    assert sizes_sent(toapis_fake) == [("2:3", "1k", 400), ("1024x1536", None, 200)]
    assert len(toapis_fake.tasks_for("job-1")) == 1


async def test_when_both_forms_are_refused_the_error_is_raised_and_no_task_exists(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    toapis_fake.fail(Endpoint.SUBMIT, Fault.bad_request("unsupported resolution", param="resolution"), times=None)
    with pytest.raises(BadRequestError) as caught:
        await generate(toapis_client, "job-1")
    assert caught.value.status == 400
    assert len(toapis_fake.requests_to(Endpoint.SUBMIT)) == 2  # each form once, never more
    assert toapis_fake.tasks == {}


async def test_a_fallback_submit_whose_answer_is_lost_is_found_and_its_form_remembered(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    toapis_fake.size_mode = SizeMode.PIXELS
    toapis_fake.fail(Endpoint.SUBMIT, Fault.bad_request("size must be in pixels", param="size"))
    toapis_fake.fail(Endpoint.SUBMIT, Fault.disconnect(), after_effect=True)  # the pixel form creates the task
    task_id = await generate(toapis_client, "job-1")
    assert [task.id for task in toapis_fake.tasks_for("job-1")] == [task_id]
    assert len(toapis_fake.requests_to(Endpoint.SUBMIT)) == 2
    assert [request.status for request in toapis_fake.requests_to(Endpoint.LOOKUP)] == [200]
    await generate(toapis_client, "job-2")
    assert toapis_fake.requests_to(Endpoint.SUBMIT)[-1].json["size"] == "1024x1024"


# --- the module on its own ------------------------------------------------------------------------------------


def test_size_fields_per_placement() -> None:
    get = catalog.get_model
    assert size_fields(get("gpt-image-2"), "3:2", "2k", SizeForm.RATIO) == {"size": "3:2", "resolution": "2k"}
    assert size_fields(get("gpt-image-2"), "3:2", "2k", SizeForm.PIXELS) == {"size": "2048x1360"}
    assert size_fields(get("vidu-image"), "16:9", "4k", SizeForm.RATIO) == {
        "size": "16:9",
        "metadata": {"resolution": "4K"},
    }
    assert size_fields(get("vidu-image"), "16:9", "4k", SizeForm.PIXELS) is None
    assert size_fields(get("grok-4-1-image"), "16:9", "1k", SizeForm.RATIO) == {"size": "16:9"}


def test_forms_to_try_put_the_remembered_one_first() -> None:
    gpt = catalog.get_model("gpt-image-2")
    assert [form for form, _ in forms_to_try(gpt, "1:1", "1k", None)] == [SizeForm.RATIO, SizeForm.PIXELS]
    assert [form for form, _ in forms_to_try(gpt, "1:1", "1k", SizeForm.PIXELS)] == [SizeForm.PIXELS, SizeForm.RATIO]
    vip = catalog.get_model("gpt-image-2-vip")  # no pixel table: the ratio form only
    assert [form for form, _ in forms_to_try(vip, "1:1", "1k", SizeForm.PIXELS)] == [SizeForm.RATIO]


@pytest.mark.parametrize(
    ("message", "param", "expected"),
    [
        ("size must be one of 1:1, 3:2", "size", True),
        ("bad value", "resolution", True),
        ("bad value", "metadata.resolution", True),
        ("Invalid size 3:2", None, True),
        ("不支持的尺寸", None, True),
        ("resolution 2k is not supported", None, True),
        ("image size too large", "image_urls", False),  # the param is the better witness
        ("prompt is required", None, False),
    ],
)
def test_names_the_size(message: str, param: str | None, expected: bool) -> None:
    assert names_the_size(BadRequestError(message, status=400, param=param)) is expected


def test_only_a_400_names_the_size() -> None:
    assert not names_the_size(BadRequestError("size", status=404, param="size"))

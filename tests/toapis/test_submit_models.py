"""Submits built from the catalog: each model family's body, and the documented pixels of every gpt-image-2 size."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from tests.fakes.toapis import Endpoint, FakeToAPIs, Timeline
from toapis import BadRequestError, ToAPIsClient, catalog

REFERENCE = "https://example.com/ref.png"


@pytest.mark.parametrize(
    ("options", "body"),
    [
        (
            {"model": "gpt-image-2", "aspect": "21:9", "resolution": "4K"},
            {"size": "21:9", "resolution": "4k", "reference_images": [REFERENCE]},
        ),
        (
            {"model": "gpt-image-2-vip", "aspect": "4:5", "resolution": "2k"},
            {"size": "4:5", "resolution": "2k", "reference_images": [REFERENCE]},
        ),
        (
            {"model": "gemini-3-pro-image-preview", "aspect": "4:3", "resolution": "2k"},
            {"size": "4:3", "metadata": {"resolution": "2K"}, "image_urls": [REFERENCE]},
        ),
        (
            {"model": "gemini-3.1-flash-image-preview", "aspect": "9:16", "resolution": "0.5k"},
            {"size": "9:16", "metadata": {"resolution": "0.5K"}, "image_urls": [REFERENCE]},
        ),
        (
            {"model": "doubao-seedream-5-0", "aspect": "9:21"},
            {"size": "9:21", "metadata": {"resolution": "2K"}, "image_urls": [REFERENCE]},
        ),
        (
            {"model": "gpt-4o-image", "aspect": "2:3"},
            {"size": "2:3", "image_urls": [REFERENCE]},
        ),
        (
            {"model": "flux-kontext-max", "aspect": "21:9"},
            {"size": "21:9", "image_urls": [REFERENCE]},
        ),
    ],
    ids=lambda value: str(value.get("model", "body")),
)
async def test_each_family_puts_resolution_and_references_where_its_page_says(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs, options: dict[str, Any], body: dict[str, Any]
) -> None:
    task = await toapis_client.submit_generation(
        prompt="a fox", n=1, reference_urls=[REFERENCE], client_business_id="job-1", **options
    )
    (request,) = toapis_fake.requests_to(Endpoint.SUBMIT)
    assert request.status == 200  # the fake checks each model's placement and case
    assert request.json == {
        "model": options["model"],
        "prompt": "a fox",
        "n": 1,
        "response_format": "url",
        "client_business_id": "job-1",
        **body,
    }
    fake_task = toapis_fake.tasks[task.id]
    assert (fake_task.aspect, fake_task.reference_images) == (options["aspect"], (REFERENCE,))


async def test_a_text_only_model_gets_no_reference_field(toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs) -> None:
    await toapis_client.submit_generation(prompt="a fox", n=2, model="grok-imagine-1.0", client_business_id="job-1")
    (request,) = toapis_fake.requests_to(Endpoint.SUBMIT)
    assert set(request.json) == {"model", "prompt", "size", "n", "response_format", "client_business_id"}


async def test_a_model_without_4k_refuses_it_before_any_request(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    with pytest.raises(BadRequestError) as caught:
        await toapis_client.submit_generation(
            prompt="a fox", n=1, model="doubao-seedream-5-0", resolution="4k", client_business_id="job-1"
        )
    assert caught.value.param == "resolution"
    assert "Seedream 5.0 offers the resolutions 2K, 3K, not '4k'" in caught.value.message
    assert toapis_fake.requests == []
    assert toapis_fake.tasks == {}


async def test_every_gpt_image_2_aspect_and_resolution_gives_the_documented_pixels(
    toapis_client: ToAPIsClient, toapis_fake: FakeToAPIs
) -> None:
    toapis_fake.default_timeline = Timeline.instant()
    spec = catalog.get_model("gpt-image-2")
    seen = {}
    for aspect in catalog.ASPECTS:
        for tier in spec.resolutions:
            task = await toapis_client.submit_generation(
                prompt="a fox", n=1, aspect=aspect, resolution=tier, client_business_id=f"job-{aspect}-{tier}"
            )
            done = await toapis_client.wait_for_task(task.id, interval=0.0, deadline=5.0)
            assert done.images[0].url is not None
            image = await toapis_client.download_image(done.images[0].url, max_bytes=10_000_000)
            with Image.open(io.BytesIO(image.read_bytes())) as opened:
                seen[(aspect, tier)] = opened.size
    assert seen == dict(spec.pixel_table)
    assert len(seen) == 39
    assert seen[("16:9", "4k")] == (3840, 2160)

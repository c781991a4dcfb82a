"""The fake ToAPIs holds each catalogued model to its rules: raw HTTP against it, without the client's help."""

from __future__ import annotations

import io
from typing import Any

import aiohttp
import pytest
from PIL import Image

from tests.fakes._toapis_rules import _blank_pixels, result_pixels, solid_palette_png
from tests.fakes.toapis import FakeToAPIs, SizeMode, Timeline
from toapis import catalog


async def post(fake: FakeToAPIs, session: aiohttp.ClientSession, **fields: Any) -> tuple[int, Any]:
    body = {"model": "gpt-image-2", "prompt": "a fox", "n": 1, **fields}
    body = {key: value for key, value in body.items() if value is not None}
    async with session.post(
        fake.base_url + "/images/generations", json=body, headers={"Authorization": f"Bearer {fake.api_key}"}
    ) as response:
        return response.status, await response.json()


REF = "https://example.com/a.png"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        # Resolution: the model's place and case only.
        ({"size": "1:1", "resolution": "2K"}, "resolution"),
        ({"size": "1:1", "resolution": "8k"}, "resolution"),
        ({"size": "1:1", "metadata": {"resolution": "2K"}}, "resolution"),
        ({"model": "flux-2-pro", "size": "1:1", "resolution": "2k"}, "resolution"),
        ({"model": "flux-2-pro", "size": "1:1", "metadata": {"resolution": "2k"}}, "resolution"),
        ({"model": "flux-2-pro", "size": "1:1", "metadata": {"resolution": "4K"}}, "resolution"),
        ({"model": "doubao-seedream-4-5", "size": "1:1", "metadata": {"resolution": "1K"}}, "resolution"),
        ({"model": "gpt-4o-image", "size": "1:1", "metadata": {"resolution": "1K"}}, "resolution"),
        ({"model": "gpt-4o-image", "size": "1:1", "metadata": "1K"}, "metadata"),
        # Aspect ratios.
        ({"model": "gpt-4o-image", "size": "16:9"}, "size"),
        ({"model": "gemini-3-pro-image-preview", "size": "9:21"}, "size"),
        ({"model": "doubao-seedream-4-0", "size": "auto"}, "size"),
        # n.
        ({"model": "gpt-4o-image", "n": 3}, "n"),
        ({"model": "vidu-image", "n": 2}, "n"),
        ({"model": "doubao-seedream-4-0", "n": 16}, "n"),
        # References: the model's field, count, and the seedream total.
        ({"model": "gemini-3-pro-image-preview", "reference_images": [REF]}, "reference_images"),
        ({"model": "grok-imagine-1.0", "image_urls": [REF]}, "image_urls"),
        ({"model": "flux-kontext-pro", "image_urls": [REF, REF]}, "image_urls"),
        ({"model": "gemini-2.5-flash-image-official", "image_urls": [REF] * 4}, "image_urls"),
        ({"model": "gemini-3-pro-image-preview", "image_urls": [{"url": REF}]}, "image_urls"),
        ({"model": "doubao-seedream-4-0", "image_urls": [REF] * 10, "n": 6}, "image_urls"),
        # Prompts: the page's limit, or Imagine's where the page states none.
        ({"model": "grok-4-1-image", "prompt": "x" * 1_001}, "prompt"),
        ({"model": "flux-2-pro", "prompt": "x" * 4_001}, "prompt"),
        # Models: catalogued ones only, by id or documented alias.
        ({"model": "gpt-image-2-official"}, "model"),
    ],
)
async def test_what_a_model_does_not_take_is_a_400_naming_the_field(
    toapis_fake: FakeToAPIs, toapis_session: aiohttp.ClientSession, fields: dict[str, Any], param: str
) -> None:
    status, payload = await post(toapis_fake, toapis_session, **fields)
    assert status == 400
    assert payload["error"]["code"] == "invalid_request"
    assert payload["error"]["type"] == "invalid_request_error"
    assert payload["error"]["param"] == param
    assert toapis_fake.tasks == {}


@pytest.mark.parametrize(
    ("fields", "aspect", "resolution"),
    [
        ({}, "1:1", "1k"),  # the documented defaults
        ({"size": "5:4", "resolution": "4k"}, "5:4", "4k"),
        ({"model": "nano-banana", "size": "3:4", "metadata": {"resolution": "1K"}}, "3:4", "1k"),
        ({"model": "doubao-seedream-4-5", "size": "21:9"}, "21:9", "2k"),  # its default is 2K
        ({"model": "doubao-seedream-4-0", "image_urls": [REF] * 10, "n": 5}, "1:1", "2k"),
        ({"model": "gpt-image-2", "size": "2:1", "image_urls": [REF]}, "2:1", "1k"),  # the documented alias
        ({"model": "grok-4-2-image", "size": "9:16", "n": 4}, "9:16", "1k"),
        ({"model": "gemini-3.1-flash-image-preview", "metadata": {"resolution": "0.5K"}}, "1:1", "0.5k"),
    ],
)
async def test_what_a_model_takes_makes_a_task(
    toapis_fake: FakeToAPIs, toapis_session: aiohttp.ClientSession, fields: dict[str, Any], aspect: str, resolution: str
) -> None:
    status, payload = await post(toapis_fake, toapis_session, **fields)
    assert status == 200, payload
    task = toapis_fake.tasks[payload["id"]]
    assert (task.aspect, task.resolution) == (aspect, resolution)


async def test_the_pixel_mode_takes_documented_pixels_only(
    toapis_fake: FakeToAPIs, toapis_session: aiohttp.ClientSession
) -> None:
    toapis_fake.size_mode = SizeMode.PIXELS
    status, payload = await post(toapis_fake, toapis_session, size="1536x1024")
    assert status == 200
    assert (toapis_fake.tasks[payload["id"]].aspect, toapis_fake.tasks[payload["id"]].resolution) == ("3:2", "1k")
    status, payload = await post(toapis_fake, toapis_session, model="flux-2-pro", size="2730x2048")
    assert (status, toapis_fake.tasks[payload["id"]].resolution) == (200, "2k")
    refusals = [
        (await post(toapis_fake, toapis_session, size="3:2", resolution="1k"))[1]["error"]["param"],
        (await post(toapis_fake, toapis_session, size="1000x1000"))[1]["error"]["param"],
        (await post(toapis_fake, toapis_session, size="1536x1024", resolution="1k"))[1]["error"]["param"],
        (await post(toapis_fake, toapis_session, model="doubao-seedream-4-5", size="2048x2048"))[1]["error"]["param"],
    ]
    assert refusals == ["size", "size", "resolution", "size"]
    assert len(toapis_fake.tasks) == 2


async def test_results_have_the_documented_pixels_or_a_size_of_the_ratio(
    toapis_fake: FakeToAPIs, toapis_session: aiohttp.ClientSession
) -> None:
    toapis_fake.default_timeline = Timeline.instant()
    cases: list[tuple[dict[str, Any], tuple[int, int] | None]] = [
        ({"model": "doubao-seedream-4-0", "size": "16:9", "metadata": {"resolution": "4K"}}, (5404, 3040)),
        ({"model": "gpt-image-2", "size": "21:9", "resolution": "4k"}, (3840, 1648)),
        ({"model": "vidu-image", "size": "16:9", "metadata": {"resolution": "4K"}}, None),
        ({"model": "gpt-4o-image", "size": "2:3"}, None),
    ]
    for fields, documented in cases:
        _, created = await post(toapis_fake, toapis_session, **fields)
        async with toapis_session.get(toapis_fake.result_url(created["id"], 1)) as response:
            data = await response.read()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            width, height = image.size
        task = toapis_fake.tasks[created["id"]]
        if documented is not None:
            assert (width, height) == documented
        else:
            assert abs(width / height - catalog.ASPECTS[task.aspect].ratio) < 0.02
        assert f"{width}x{height}" == task.size


def test_made_up_sizes_keep_the_tiers_area() -> None:
    spec = catalog.get_model("vidu-image")
    for tier, side in (("1k", 1024), ("2k", 2048), ("4k", 4096)):
        width, height = result_pixels(spec, "16:9", tier)
        assert width % 16 == 0
        assert height % 16 == 0
        assert abs(width * height / side**2 - 1) < 0.02


def test_result_pngs_of_one_size_share_their_pixels_and_differ_in_colour() -> None:
    _blank_pixels.cache_clear()
    pngs = [solid_palette_png(5404, 3040, (index, 0, 0)) for index in range(5)]
    assert _blank_pixels.cache_info().misses == 1  # a 4K size's pixels are compressed once, not per image
    assert len(set(pngs)) == 5
    with Image.open(io.BytesIO(pngs[3])) as image:
        assert image.size == (5404, 3040)
        assert image.convert("RGB").getpixel((5000, 3000)) == (3, 0, 0)
    assert len(pngs[0]) < 100_000
    padded = solid_palette_png(64, 64, (1, 2, 3), min_bytes=50_000)
    assert len(padded) >= 50_000
    with Image.open(io.BytesIO(padded)) as image:
        image.load()
        assert image.size == (64, 64)


async def upload(fake: FakeToAPIs, session: aiohttp.ClientSession, size: tuple[int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, "navy").save(buffer, format="PNG")
    form = aiohttp.FormData()
    form.add_field("file", buffer.getvalue(), filename="ref.png", content_type="image/png")
    async with session.post(
        fake.base_url + "/uploads/images", data=form, headers={"Authorization": f"Bearer {fake.api_key}"}
    ) as response:
        assert response.status == 200
        url: str = (await response.json())["data"]["url"]
        return url


@pytest.mark.parametrize(
    ("model", "size", "refused"),
    [
        ("doubao-seedream-4-5", (400, 100), True),
        ("doubao-seedream-5-0-pro", (100, 301), True),
        ("doubao-seedream-4-0", (14, 30), True),
        ("doubao-seedream-4-5", (300, 100), False),
        ("doubao-seedream-4-5", (15, 45), False),
        ("gpt-image-2", (400, 100), False),
        ("gemini-3-pro-image-preview", (10, 40), False),
    ],
)
async def test_a_reference_of_a_shape_the_model_does_not_take_is_a_400_when_the_fake_holds_it(
    toapis_fake: FakeToAPIs, toapis_session: aiohttp.ClientSession, model: str, size: tuple[int, int], refused: bool
) -> None:
    field = catalog.get_model(model).references.field
    reference = await upload(toapis_fake, toapis_session, size)
    status, payload = await post(toapis_fake, toapis_session, model=model, **{field or "image_urls": [reference]})
    if refused:
        assert (status, payload["error"]["param"]) == (400, field)
        assert "reference image 1 is" in payload["error"]["message"]
        assert toapis_fake.tasks == {}
    else:
        assert status == 200, payload

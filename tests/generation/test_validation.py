"""Request validation: refusals (as the cogs word them) and references checked by their bytes."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from cogs._texts import refusal_text
from generation.refusals import PromptEmpty, ReferenceUnusable, Refusal
from generation.validation import (
    MAX_REFERENCES,
    PROMPT_MAX_LENGTH,
    check_options,
    prepare_references,
    prepare_references_sync,
)
from toapis.mime import JPEG, PNG


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def picture(fmt: str = "PNG", size: tuple[int, int] = (32, 24)) -> bytes:
    return encode(Image.new("RGB", size, "purple"), fmt)


# -- check_options ------------------------------------------------------------------------------------------


def test_a_good_request_returns_the_trimmed_prompt() -> None:
    assert check_options("  a cat in a hat \n", 2, max_n=4, reference_count=4) == "a cat in a hat"


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t "])
def test_an_empty_prompt_is_refused(prompt: str) -> None:
    with pytest.raises(Refusal) as refused:
        check_options(prompt, 1, max_n=4)
    assert refusal_text(refused.value, "en-US") == "Your prompt is empty: describe the image you want."


def test_the_prompt_length_counts_after_trimming() -> None:
    exact = "x" * PROMPT_MAX_LENGTH
    assert check_options(f"   {exact}   ", 1, max_n=4) == exact
    with pytest.raises(Refusal) as refused:
        check_options(f" {exact}y ", 1, max_n=4)
    assert refusal_text(refused.value, "en-US") == (
        "Your prompt is 4,001 characters long; the limit is 4,000. Shorten it and try again."
    )


@pytest.mark.parametrize(
    ("n", "max_n", "reason"),
    [
        (3, 2, "This server allows 1 to 2 images per request: choose n within that."),
        (0, 4, "This server allows 1 to 4 images per request: choose n within that."),
        (-1, 4, "This server allows 1 to 4 images per request: choose n within that."),
        (2, 1, "This server allows one image per request: set n to 1."),
        # A server maximum above the product's own (4) does not lift it.
        (5, 10, "This server allows 1 to 4 images per request: choose n within that."),
    ],
)
def test_n_above_the_server_maximum_is_refused(n: int, max_n: int, reason: str) -> None:
    with pytest.raises(Refusal) as refused:
        check_options("a cat", n, max_n=max_n)
    assert refusal_text(refused.value, "en-US") == reason


def test_n_at_the_server_maximum_is_accepted() -> None:
    assert check_options("a cat", 3, max_n=3) == "a cat"
    assert check_options("a cat", 1, max_n=1) == "a cat"


def test_too_many_references_are_refused() -> None:
    with pytest.raises(Refusal) as refused:
        check_options("a cat", 1, max_n=4, reference_count=MAX_REFERENCES + 1)
    assert refusal_text(refused.value, "en-US") == "Too many reference images: you gave 5, and the most is 4."


def test_the_first_problem_is_the_one_reported() -> None:
    with pytest.raises(PromptEmpty):
        check_options(" ", 9, max_n=4, reference_count=9)


# -- prepare_references -------------------------------------------------------------------------------------


# Each accepted type is read from its bytes; WebP and GIF leave as what every model takes (JPEG, and lossless PNG).
@pytest.mark.parametrize(("fmt", "mime"), [("JPEG", JPEG), ("PNG", PNG), ("WEBP", JPEG), ("GIF", PNG)])
def test_each_accepted_type_is_recognised_by_its_bytes(fmt: str, mime: str) -> None:
    (prepared,) = prepare_references_sync([picture(fmt)])
    assert prepared.mime_type == mime
    assert (prepared.width, prepared.height) == (32, 24)


def test_references_keep_their_order() -> None:
    prepared = prepare_references_sync([picture("PNG", (10, 10)), picture("JPEG", (20, 10)), picture("GIF", (5, 9))])
    assert [(image.mime_type, image.width, image.height) for image in prepared] == [
        (PNG, 10, 10),
        (JPEG, 20, 10),
        (PNG, 5, 9),
    ]


def test_no_references_is_fine() -> None:
    assert prepare_references_sync([]) == []


TRUNCATED = "Image 3 could not be read as an image; it may be damaged or truncated."
BOMB = "Your image is 7100×7100 pixels, more than the 50 megapixels Imagine accepts."


@pytest.mark.parametrize(
    ("blobs", "reason"),
    [
        ([b"just some text"], "Your image is not a JPEG, PNG, WebP or GIF image."),
        ([picture(), b"BM\x00\x00 a bitmap"], "Image 2 is not a JPEG, PNG, WebP or GIF image."),
        ([picture(), picture(), picture("PNG")[:40]], TRUNCATED),
        ([encode(Image.new("1", (7100, 7100)), "PNG")], BOMB),
        ([picture()] * 5, "Too many reference images: you gave 5, and the most is 4."),
    ],
    ids=["not-an-image", "second-is-a-bitmap", "third-truncated", "decompression-bomb", "five"],
)
def test_bad_references_are_refused_with_a_reason_naming_the_image(blobs: list[bytes], reason: str) -> None:
    with pytest.raises(Refusal) as refused:
        prepare_references_sync(blobs)
    assert refusal_text(refused.value, "en-US") == reason


def test_every_image_is_checked_before_any_is_decoded() -> None:
    # Image 1 is damaged in a way only decoding finds; image 2 is not an image at all. The cheap checks run on
    # every image first, so the request is refused for image 2 without decoding image 1.
    damaged = encode(Image.effect_noise((400, 300), 60).convert("RGB"), "PNG")
    with pytest.raises(Refusal) as refused:
        prepare_references_sync([damaged[: len(damaged) // 2], b"%PDF-1.7"])
    assert refusal_text(refused.value, "en-US") == "Image 2 is not a JPEG, PNG, WebP or GIF image."


async def test_references_are_scaled_to_max_side_in_a_thread() -> None:
    data = encode(Image.new("RGB", (1200, 600), "teal"), "PNG")
    (default,) = await prepare_references([data])
    assert (default.width, default.height, default.data) == (1200, 600, data)
    (scaled,) = await prepare_references([data], max_side=300)
    assert (scaled.mime_type, scaled.width, scaled.height) == (JPEG, 300, 150)


async def test_an_oversized_reference_is_reencoded_to_fit_in_a_thread() -> None:
    noise = Image.effect_noise((600, 400), 80).convert("RGB")
    data = encode(noise, "PNG")
    (prepared,) = await prepare_references([data], max_bytes=len(data) // 3)
    assert len(prepared.data) <= len(data) // 3
    assert prepared.width / prepared.height == pytest.approx(1.5, rel=0.02)


async def test_prepare_references_refuses_like_the_sync_version() -> None:
    with pytest.raises(ReferenceUnusable) as refused:
        await prepare_references([picture(), b"nope"])
    assert refusal_text(refused.value, "en-US").startswith("Image 2 is not")


def test_an_animated_gif_becomes_its_first_frame() -> None:
    frames = [Image.new("RGB", (16, 8), colour) for colour in ("red", "green")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    (prepared,) = prepare_references_sync([data])
    assert not getattr(Image.open(io.BytesIO(prepared.data)), "is_animated", False)
    assert (prepared.width, prepared.height) == (16, 8)

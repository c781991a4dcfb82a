"""Reference and result images: sniffing by bytes, refusals, re-encoding to fit, first frames."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image, ImageChops, ImageStat

from generation.images import (
    GIF,
    JPEG,
    MAX_PIXELS,
    PNG,
    WEBP,
    ImageRejected,
    fit_bytes_within,
    prepare_reference,
    sniff_mime_type,
)

LIMIT = 10_000_000


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def noisy_gradient(width: int, height: int, seed: int = 1) -> Image.Image:
    """A picture with structure (a gradient) that does not compress (noise), so PNGs of it are large."""
    gradient = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    noise = Image.frombytes("RGB", (width, height), random.Random(seed).randbytes(width * height * 3))
    return Image.blend(gradient, noise, 0.35)


def looks_alike(a: Image.Image, b: Image.Image) -> bool:
    small = (32, 32)
    diff = ImageChops.difference(a.convert("RGB").resize(small), b.convert("RGB").resize(small))
    return max(ImageStat.Stat(diff).mean) < 8


@pytest.mark.parametrize(
    ("fmt", "mime"), [("JPEG", JPEG), ("PNG", PNG), ("WEBP", WEBP), ("GIF", GIF)], ids=["jpeg", "png", "webp", "gif"]
)
def test_types_are_sniffed_from_bytes(fmt: str, mime: str) -> None:
    data = encode(Image.new("RGB", (8, 8), "red"), fmt)
    assert sniff_mime_type(data) == mime


@pytest.mark.parametrize("data", [b"", b"hello", b"%PDF-1.7", b"RIFF\x00\x00\x00\x00WAVE", b"\x00" * 64])
def test_non_images_are_not_sniffed(data: bytes) -> None:
    assert sniff_mime_type(data) is None


def test_a_small_image_passes_through_untouched() -> None:
    data = encode(Image.new("RGB", (64, 32), "blue"), "JPEG")
    prepared = prepare_reference(data, max_bytes=LIMIT)
    assert prepared.data == data
    assert (prepared.mime_type, prepared.width, prepared.height) == (JPEG, 64, 32)


def test_a_12_mb_png_is_reencoded_below_the_limit_and_looks_like_the_original() -> None:
    original = noisy_gradient(2700, 1800)
    data = encode(original, "PNG")
    assert 12_000_000 < len(data) < 14_000_000
    prepared = prepare_reference(data, max_bytes=LIMIT)
    assert len(prepared.data) <= LIMIT
    assert sniff_mime_type(prepared.data) == prepared.mime_type
    result = Image.open(io.BytesIO(prepared.data))
    assert result.width / result.height == pytest.approx(original.width / original.height, rel=0.01)
    assert looks_alike(original, result)


def test_a_tight_budget_downscales_keeping_the_aspect_ratio() -> None:
    original = noisy_gradient(1200, 400)
    prepared = prepare_reference(encode(original, "PNG"), max_bytes=60_000)
    assert len(prepared.data) <= 60_000
    assert prepared.width < 1200
    assert prepared.width / prepared.height == pytest.approx(3, rel=0.02)
    assert looks_alike(original, Image.open(io.BytesIO(prepared.data)))


def test_transparency_survives_reencoding() -> None:
    original = noisy_gradient(800, 800).convert("RGBA")
    original.putalpha(Image.linear_gradient("L").resize((800, 800)))
    prepared = prepare_reference(encode(original, "PNG"), max_bytes=200_000)
    assert prepared.mime_type in (PNG, WEBP)
    assert Image.open(io.BytesIO(prepared.data)).mode in ("RGBA", "LA", "PA")


def test_an_animated_gif_becomes_its_first_frame() -> None:
    frames = [Image.new("RGB", (40, 20), colour) for colour in ("red", "lime", "blue")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    prepared = prepare_reference(data, max_bytes=LIMIT)
    assert prepared.mime_type == PNG
    result = Image.open(io.BytesIO(prepared.data))
    assert not getattr(result, "is_animated", False)
    assert result.convert("RGB").getpixel((10, 10)) == (255, 0, 0)


def test_a_file_that_is_not_an_image_is_refused() -> None:
    with pytest.raises(ImageRejected, match="is not a JPEG, PNG, WebP or GIF image"):
        prepare_reference(b"GIF? no, a text file that says hello", max_bytes=LIMIT)


def test_a_truncated_image_is_refused() -> None:
    data = encode(noisy_gradient(200, 200), "PNG")
    with pytest.raises(ImageRejected, match="could not be read as an image"):
        prepare_reference(data[: len(data) // 2], max_bytes=LIMIT)


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    side = 7100  # 50.41 megapixels, as a tiny 1-bit PNG
    assert side * side > MAX_PIXELS
    data = encode(Image.new("1", (side, side)), "PNG")
    assert len(data) < 100_000
    with pytest.raises(ImageRejected, match="7100×7100 pixels, more than the 50 megapixels"):
        prepare_reference(data, max_bytes=LIMIT)


def test_exactly_50_megapixels_is_accepted() -> None:
    data = encode(Image.new("1", (10_000, 5_000)), "PNG")
    assert prepare_reference(data, max_bytes=LIMIT).width == 10_000


def test_a_result_over_the_discord_limit_is_made_to_fit() -> None:
    data = encode(noisy_gradient(1024, 1024), "PNG")
    assert len(data) > 1_000_000
    fitted = fit_bytes_within(data, max_bytes=1_000_000)
    assert len(fitted.data) <= 1_000_000
    assert fitted.mime_type == JPEG
    same = fit_bytes_within(data, max_bytes=len(data))
    assert same.data == data

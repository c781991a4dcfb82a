"""Reference and result images: refusals, fitting to what the model uses, re-encoding, first frames, orientation,
and checking files before they are trusted. (Sniffing and extensions: tests/toapis/test_mime.py.)"""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from PIL import ExifTags, Image, ImageChops, ImageStat

from generation.images import (
    MAX_PIXELS,
    ImageRejected,
    check_image_file,
    check_reference,
    fit_bytes_within,
    prepare_reference,
    scaled_size,
)
from toapis.contract import REFERENCE_MAX_SIDE
from toapis.mime import JPEG, PNG, sniff_image_type

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


def blocks(width: int, height: int, seed: int = 3) -> Image.Image:
    """Flat blocks of four colours: a PNG of it is tiny, a JPEG or WebP of it is not."""
    rng = random.Random(seed)
    small = Image.frombytes(
        "P", (width // 10, height // 10), bytes(rng.randrange(4) for _ in range(width * height // 100))
    )
    small.putpalette([255, 0, 0, 0, 128, 255, 255, 255, 0, 20, 20, 20])
    return small.resize((width, height), Image.Resampling.NEAREST).convert("RGB")


def halves(width: int, height: int) -> Image.Image:
    """Red on the left, blue on the right: which way up it is shows after any rotation."""
    image = Image.new("RGB", (width, height), "blue")
    image.paste("red", (0, 0, width // 2, height))
    return image


def looks_alike(a: Image.Image, b: Image.Image) -> bool:
    small = (32, 32)
    diff = ImageChops.difference(a.convert("RGB").resize(small), b.convert("RGB").resize(small))
    return max(ImageStat.Stat(diff).mean) < 8


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose header claims another size: opening it is cheap, decoding it would fail."""
    data = bytearray(encode(Image.new("RGB", (16, 16), "red"), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def opened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def pixel(image: Image.Image, where: tuple[int, int]) -> tuple[int, ...]:
    value = image.getpixel(where)
    assert isinstance(value, tuple)
    return value


# -- passing through ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_small_image_passes_through_untouched(fmt: str) -> None:
    data = encode(Image.new("RGB", (64, 32), "blue"), fmt)
    prepared = prepare_reference(data, max_bytes=LIMIT)
    assert prepared.data == data
    assert (prepared.mime_type, prepared.width, prepared.height) == (sniff_image_type(data), 64, 32)


# GIF no model's page takes, and the Seedream pages take JPEG and PNG only: even a small one is re-encoded.
@pytest.mark.parametrize(("fmt", "becomes"), [("WEBP", JPEG), ("GIF", PNG)])
def test_a_small_webp_or_gif_becomes_what_every_model_takes(fmt: str, becomes: str) -> None:
    data = encode(Image.new("RGB", (64, 32), "blue"), fmt)
    prepared = prepare_reference(data, max_bytes=LIMIT)
    assert (prepared.mime_type, sniff_image_type(prepared.data)) == (becomes, becomes)
    assert (prepared.width, prepared.height) == (64, 32)
    red, green, blue = pixel(opened(prepared.data).convert("RGB"), (32, 16))
    assert blue > 200
    assert max(red, green) < 60


def test_a_small_transparent_webp_becomes_a_png_that_keeps_its_transparency() -> None:
    original = Image.new("RGBA", (64, 32), (0, 0, 255, 255))
    original.paste((0, 0, 0, 0), (0, 0, 32, 32))
    prepared = prepare_reference(encode(original, "WEBP", lossless=True), max_bytes=LIMIT)
    assert prepared.mime_type == PNG
    result = opened(prepared.data)
    assert pixel(result, (10, 10))[3] == 0
    assert pixel(result, (50, 10)) == (0, 0, 255, 255)


def test_an_image_exactly_at_both_limits_passes_through() -> None:
    data = encode(noisy_gradient(300, 200), "PNG")
    prepared = prepare_reference(data, max_bytes=len(data), max_side=300)
    assert prepared.data == data


def test_a_small_photo_keeps_its_exif_orientation_untouched() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    data = encode(halves(60, 20), "JPEG", exif=exif)
    assert prepare_reference(data, max_bytes=LIMIT).data == data


# -- scaling down to what the model uses --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "max_side", "expected"),
    [
        ((7000, 7000), 2048, (2048, 2048)),
        ((4032, 3024), 2048, (2048, 1536)),
        ((1000, 3000), 2048, (683, 2048)),
        ((2048, 100), 2048, (2048, 100)),
        ((100, 50), 2048, (100, 50)),
        ((10_000, 1), 2048, (2048, 1)),
    ],
)
def test_scaled_size_keeps_the_aspect_ratio_and_never_scales_up(
    size: tuple[int, int], max_side: int, expected: tuple[int, int]
) -> None:
    assert scaled_size(size, max_side) == expected


def test_the_default_long_side_is_the_assumed_one() -> None:
    assert REFERENCE_MAX_SIDE == 2048
    data = encode(Image.new("RGB", (3000, 1000), "green"), "PNG")
    prepared = prepare_reference(data, max_bytes=LIMIT)
    assert (prepared.width, prepared.height) == (2048, 683)


def test_a_large_jpeg_is_scaled_down_and_stays_a_jpeg() -> None:
    original = noisy_gradient(1600, 1200)
    data = encode(original, "JPEG", quality=95)
    prepared = prepare_reference(data, max_bytes=LIMIT, max_side=500)
    assert (prepared.mime_type, prepared.width, prepared.height) == (JPEG, 500, 375)
    assert sniff_image_type(prepared.data) == JPEG
    assert looks_alike(original, opened(prepared.data))


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_jpeg_and_webp_sources_are_never_made_lossless_png(fmt: str) -> None:
    # Flat blocks of colour: their PNG is a tenth of the source, so it would fit, and must still not be used.
    original = blocks(600, 400)
    data = encode(original, fmt, quality=100)
    assert len(encode(original, "PNG", optimize=True)) < len(data) // 10
    prepared = prepare_reference(data, max_bytes=len(data) - 1)
    assert prepared.mime_type == JPEG
    assert len(prepared.data) < len(data)
    assert looks_alike(original, opened(prepared.data))


def test_a_12_mb_png_is_reencoded_below_the_limit_and_looks_like_the_original() -> None:
    original = noisy_gradient(2700, 1800)
    data = encode(original, "PNG")
    assert 12_000_000 < len(data) < 14_000_000
    prepared = prepare_reference(data, max_bytes=LIMIT)
    assert len(prepared.data) <= LIMIT
    assert prepared.mime_type == JPEG
    assert (prepared.width, prepared.height) == (2048, 1365)
    assert looks_alike(original, opened(prepared.data))


def test_a_tight_budget_downscales_keeping_the_aspect_ratio() -> None:
    original = noisy_gradient(1200, 400)
    prepared = prepare_reference(encode(original, "PNG"), max_bytes=60_000)
    assert len(prepared.data) <= 60_000
    assert prepared.width < 1200
    assert prepared.width / prepared.height == pytest.approx(3, rel=0.02)
    assert looks_alike(original, opened(prepared.data))


def test_greyscale_stays_greyscale() -> None:
    data = encode(Image.linear_gradient("L").resize((900, 300)), "PNG")
    prepared = prepare_reference(data, max_bytes=LIMIT, max_side=300)
    assert (prepared.mime_type, prepared.width, prepared.height) == (JPEG, 300, 100)
    assert opened(prepared.data).mode == "L"


@pytest.mark.parametrize("max_side", [REFERENCE_MAX_SIDE, 400])
def test_transparency_survives_reencoding(max_side: int) -> None:
    original = noisy_gradient(800, 800).convert("RGBA")
    original.putalpha(Image.linear_gradient("L").resize((800, 800)))
    prepared = prepare_reference(encode(original, "PNG"), max_bytes=200_000, max_side=max_side)
    assert prepared.mime_type == PNG  # not WebP, which the Seedream models do not take
    assert len(prepared.data) <= 200_000
    result = opened(prepared.data)
    assert result.mode in ("RGBA", "LA", "PA")
    assert max(result.size) <= max_side
    assert pixel(result, (result.width // 2, 0))[3] < 16  # the top stays see-through
    assert pixel(result, (result.width // 2, result.height - 1))[3] > 240


# -- orientation and frames ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("orientation", "size", "red_at"),
    [
        (1, (300, 100), "left"),
        (3, (300, 100), "right"),  # upside down
        (6, (100, 300), "top"),  # the camera was turned a quarter: shown rotated 90° clockwise
        (8, (100, 300), "bottom"),
    ],
)
def test_a_reencoded_photo_is_turned_upright_as_its_exif_says(
    orientation: int, size: tuple[int, int], red_at: str
) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    data = encode(halves(900, 300), "JPEG", exif=exif, quality=95)
    prepared = prepare_reference(data, max_bytes=LIMIT, max_side=300)
    result = opened(prepared.data).convert("RGB")
    assert result.size == size
    assert not result.getexif().get(ExifTags.Base.Orientation)  # not turned a second time by a viewer
    width, height = size
    where = {
        "left": (width // 8, height // 2),
        "right": (width * 7 // 8, height // 2),
        "top": (width // 2, height // 8),
        "bottom": (width // 2, height * 7 // 8),
    }[red_at]
    red, _, blue = pixel(result, where)
    assert red > 200 > blue


def test_an_animated_gif_becomes_its_first_frame() -> None:
    frames = [Image.new("RGB", (40, 20), colour) for colour in ("red", "lime", "blue")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    prepared = prepare_reference(data, max_bytes=LIMIT)
    assert prepared.mime_type == PNG  # lossless: a GIF's flat colours make a small PNG
    result = opened(prepared.data)
    assert not getattr(result, "is_animated", False)
    assert result.convert("RGB").getpixel((10, 10)) == (255, 0, 0)


def test_an_animated_webp_becomes_its_first_frame() -> None:
    frames = [Image.new("RGB", (40, 20), colour) for colour in ("red", "lime", "blue")]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100, loop=0, lossless=True)
    assert getattr(opened(data), "is_animated", False)
    prepared = prepare_reference(data, max_bytes=LIMIT)
    assert prepared.mime_type == JPEG
    result = opened(prepared.data)
    assert not getattr(result, "is_animated", False)
    red, green, blue = pixel(result.convert("RGB"), (10, 10))
    assert red > 200
    assert max(green, blue) < 60


# -- refusals -----------------------------------------------------------------------------------------------


def test_a_file_that_is_not_an_image_is_refused() -> None:
    with pytest.raises(ImageRejected, match="is not a JPEG, PNG, WebP or GIF image"):
        prepare_reference(b"GIF? no, a text file that says hello", max_bytes=LIMIT)


def test_a_truncated_image_is_refused() -> None:
    data = encode(noisy_gradient(200, 200), "PNG")
    with pytest.raises(ImageRejected, match="could not be read as an image"):
        prepare_reference(data[: len(data) // 2], max_bytes=LIMIT)


def test_a_truncated_large_jpeg_is_refused() -> None:
    data = encode(noisy_gradient(1200, 800), "JPEG")
    with pytest.raises(ImageRejected, match="could not be read as an image"):
        prepare_reference(data[: len(data) // 2], max_bytes=LIMIT, max_side=300)


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    side = 7100  # 50.41 megapixels, as a tiny 1-bit PNG
    assert side * side > MAX_PIXELS
    data = encode(Image.new("1", (side, side)), "PNG")
    assert len(data) < 100_000
    with pytest.raises(ImageRejected, match="7100×7100 pixels, more than the 50 megapixels"):
        prepare_reference(data, max_bytes=LIMIT)


def test_a_jpeg_over_the_pixel_limit_is_refused_although_it_would_decode_smaller() -> None:
    # Decoding at 1/8 of its size would make it 888×888: the limit is on what the header says, checked first.
    # (The data after the header is a 16×16 image: refused for its size, not for failing to decode.)
    data = jpeg_claiming(7100, 7100)
    assert opened(data).size == (7100, 7100)
    for check in (check_reference, lambda data: prepare_reference(data, max_bytes=LIMIT)):
        with pytest.raises(ImageRejected, match="7100×7100 pixels, more than the 50 megapixels"):
            check(data)


def test_a_49_megapixel_jpeg_is_accepted_and_decoded_at_the_scale_nearest_below_the_models_size() -> None:
    data = encode(Image.linear_gradient("L").resize((7000, 7000)), "JPEG", quality=80)
    assert check_reference(data) == JPEG
    prepared = prepare_reference(data, max_bytes=LIMIT)
    # A quarter (1750 px) is within DCT_SLACK of 2048: no resize from a half (3500 px), which costs more.
    assert (prepared.mime_type, prepared.width, prepared.height) == (JPEG, 1750, 1750)


def test_a_jpeg_whose_nearest_scale_is_far_below_the_models_size_is_resized_from_a_larger_one() -> None:
    data = encode(Image.linear_gradient("L").resize((5000, 2500)), "JPEG", quality=80)
    prepared = prepare_reference(data, max_bytes=LIMIT)
    # A quarter would be 1250 px, far under 2048: it decodes at a half (2500 px) and is resized.
    assert (prepared.width, prepared.height) == (2048, 1024)


def test_exactly_50_megapixels_is_accepted() -> None:
    data = encode(Image.new("1", (10_000, 5_000)), "PNG")
    prepared = prepare_reference(data, max_bytes=LIMIT)
    assert (prepared.width, prepared.height) == (2048, 1024)


def test_max_side_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_side"):
        prepare_reference(encode(Image.new("RGB", (4, 4)), "PNG"), max_bytes=LIMIT, max_side=0)


# -- results ------------------------------------------------------------------------------------------------


def test_a_result_over_the_discord_limit_is_made_to_fit() -> None:
    data = encode(noisy_gradient(1024, 1024), "PNG")
    assert len(data) > 1_000_000
    fitted = fit_bytes_within(data, max_bytes=1_000_000)
    assert len(fitted.data) <= 1_000_000
    assert fitted.mime_type == JPEG
    same = fit_bytes_within(data, max_bytes=len(data))
    assert same.data == data


# -- files found in the spool -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_a_whole_image_file_checks_out(tmp_path: Path, fmt: str) -> None:
    data = encode(noisy_gradient(120, 80), fmt)
    path = tmp_path / "0.img"
    path.write_bytes(data)
    assert check_image_file(path, max_bytes=len(data)) == (sniff_image_type(data), len(data))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_a_truncated_image_file_does_not(tmp_path: Path, fmt: str) -> None:
    data = encode(noisy_gradient(300, 200), fmt)
    path = tmp_path / "0.img"
    path.write_bytes(data[: len(data) * 2 // 3])
    assert check_image_file(path, max_bytes=LIMIT) is None


def test_a_png_with_a_damaged_chunk_does_not(tmp_path: Path) -> None:
    data = bytearray(encode(noisy_gradient(300, 200), "PNG"))
    data[len(data) // 2] ^= 0xFF  # same length, a checksum no longer matches
    path = tmp_path / "0.img"
    path.write_bytes(bytes(data))
    assert check_image_file(path, max_bytes=LIMIT) is None


@pytest.mark.parametrize("content", [b"", b"<html>not an image</html>", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_what_is_not_an_image_does_not(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "0.img"
    path.write_bytes(content)
    assert check_image_file(path, max_bytes=LIMIT) is None


def test_an_image_file_over_the_limit_or_missing_does_not(tmp_path: Path) -> None:
    data = encode(noisy_gradient(120, 80), "PNG")
    path = tmp_path / "0.img"
    path.write_bytes(data)
    assert check_image_file(path, max_bytes=len(data) - 1) is None
    assert check_image_file(tmp_path / "missing.img", max_bytes=LIMIT) is None


def test_an_encoder_that_fails_is_a_refusal_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pillow's encoders raise OSError ("encoder error -2") on what they cannot write: the member is told their
    # image is unusable, as for one that cannot be decoded, rather than meeting an unexpected error.
    large = encode(noisy_gradient(1600, 1200), "JPEG", quality=95)

    def failing(*args: object, **kwargs: object) -> None:
        raise OSError("encoder error -2 when writing image file")

    monkeypatch.setattr(Image.Image, "save", failing)
    with pytest.raises(ImageRejected, match="could not be read as an image"):
        prepare_reference(large, max_bytes=LIMIT, max_side=500)
    with pytest.raises(ImageRejected, match="could not be read as an image"):
        fit_bytes_within(large, max_bytes=len(large) // 2)

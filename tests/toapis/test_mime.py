"""Image types by their bytes, and their file extensions: the one table Imagine keeps (toapis/mime.py)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from toapis.mime import EXTENSIONS, GIF, JPEG, PNG, SNIFF_BYTES, WEBP, extension_for, sniff_image_type


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("fmt", "mime"), [("JPEG", JPEG), ("PNG", PNG), ("WEBP", WEBP), ("GIF", GIF)], ids=["jpeg", "png", "webp", "gif"]
)
def test_types_are_sniffed_from_bytes(fmt: str, mime: str) -> None:
    data = encode(Image.new("RGB", (8, 8), "red"), fmt)
    assert sniff_image_type(data) == mime
    assert sniff_image_type(data[:SNIFF_BYTES]) == mime  # the first SNIFF_BYTES are enough


@pytest.mark.parametrize(
    "data", [b"", b"hello", b"%PDF-1.7", b"RIFF\x00\x00\x00\x00WAVE", b"RIFF\x00\x00\x00\x00WEB", b"\x00" * 64]
)
def test_non_images_are_not_sniffed(data: bytes) -> None:
    assert sniff_image_type(data) is None


@pytest.mark.parametrize(
    ("mime", "extension"),
    [
        ("image/jpeg", "jpg"),
        ("image/png", "png"),
        ("image/webp", "webp"),
        ("image/gif", "gif"),
        ("IMAGE/JPEG; charset=binary", "jpg"),
        ("image/bmp", "bin"),
        ("", "bin"),
    ],
)
def test_extensions_come_from_the_one_table(mime: str, extension: str) -> None:
    assert extension_for(mime) == extension


def test_the_table_covers_exactly_the_sniffed_types() -> None:
    assert set(EXTENSIONS) == {JPEG, PNG, WEBP, GIF}

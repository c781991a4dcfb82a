"""Recognise the image formats ToAPIs accepts and returns by their first bytes, not by names or headers."""

from __future__ import annotations

from typing import Final

_EXTENSIONS: Final = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}

# How many leading bytes `sniff_image_type` needs to recognise every format it knows.
SNIFF_BYTES: Final = 12


def sniff_image_type(data: bytes) -> str | None:
    """Return the MIME type of PNG, JPEG, WebP or GIF data from its magic bytes, or None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= SNIFF_BYTES and data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def extension_for(mime_type: str) -> str:
    """Return a file extension (without the dot) for an image MIME type; "bin" when it is not one we know."""
    return _EXTENSIONS.get(mime_type.split(";")[0].strip().lower(), "bin")

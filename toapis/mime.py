"""The image formats ToAPIs accepts and returns: recognised by their first bytes, never by names or headers.

The one home of this knowledge in Imagine: generation/ and the cogs import their MIME types, the extension
table and the sniffing from here.
"""

from __future__ import annotations

from typing import Final

JPEG: Final = "image/jpeg"
PNG: Final = "image/png"
WEBP: Final = "image/webp"
GIF: Final = "image/gif"

# The file extension (without the dot) for each image type Imagine handles.
EXTENSIONS: Final = {JPEG: "jpg", PNG: "png", WEBP: "webp", GIF: "gif"}

# How many leading bytes `sniff_image_type` needs to recognise every format it knows.
SNIFF_BYTES: Final = 12


def sniff_image_type(data: bytes) -> str | None:
    """Return the MIME type of PNG, JPEG, WebP or GIF data from its magic bytes, or None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if len(data) >= SNIFF_BYTES and data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return WEBP
    return None


def extension_for(mime_type: str) -> str:
    """Return a file extension (without the dot) for an image MIME type; "bin" when it is not one we know."""
    return EXTENSIONS.get(mime_type.split(";")[0].strip().lower(), "bin")

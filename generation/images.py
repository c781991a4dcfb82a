"""Image bytes in, image bytes out: type sniffing, decoding limits, and re-encoding to fit a byte budget.

Everything here is synchronous Pillow work that can take hundreds of milliseconds on a large image: callers
run it in a thread (`asyncio.to_thread`) so the event loop never blocks.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from PIL import Image, ImageSequence, UnidentifiedImageError

# A reference that decodes to more than this many pixels is refused: a small file that expands to gigabytes
# of pixels (a decompression bomb) must not take the process down.
MAX_PIXELS: Final = 50_000_000

JPEG: Final = "image/jpeg"
PNG: Final = "image/png"
WEBP: Final = "image/webp"
GIF: Final = "image/gif"

EXTENSIONS: Final = {JPEG: "jpg", PNG: "png", WEBP: "webp", GIF: "gif"}

# Quality steps tried before resorting to smaller dimensions; each downscale keeps the aspect ratio.
_QUALITIES: Final = (90, 80, 70)
_DOWNSCALE: Final = 0.75


class ImageRejected(ValueError):
    """The bytes are not an image Imagine can use; `reason` is written for the member."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    mime_type: str
    width: int
    height: int

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.mime_type]


def sniff_mime_type(data: bytes) -> str | None:
    """The image type by its magic numbers, ignoring any file name or declared type; None if not one of ours."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    return None


def _open(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageRejected(
                    f"is {width}×{height} pixels, more than the {MAX_PIXELS // 1_000_000} megapixels Imagine accepts"
                )
            image.load()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(f"is more than the {MAX_PIXELS // 1_000_000} megapixels Imagine accepts") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected("could not be read as an image; it may be damaged or truncated") from exc
    return image


def prepare_reference(data: bytes, *, max_bytes: int) -> EncodedImage:
    """Check a reference image and make it fit `max_bytes`.

    The type comes from the bytes. An image that fits and is not animated is passed through untouched; an
    animated one becomes its first frame; one that is too large is re-encoded, then downscaled, until it fits.
    """
    mime_type = sniff_mime_type(data)
    if mime_type is None:
        raise ImageRejected("is not a JPEG, PNG, WebP or GIF image")
    image = _open(data)
    animated = bool(getattr(image, "is_animated", False))
    if animated:
        image = next(iter(ImageSequence.Iterator(image))).copy()
    if not animated and len(data) <= max_bytes:
        return EncodedImage(data, mime_type, image.width, image.height)
    return fit_within(image, max_bytes=max_bytes, lossless_first=mime_type != PNG)


def fit_bytes_within(data: bytes, *, max_bytes: int) -> EncodedImage:
    """Re-encode image bytes (a generated result) so that they fit `max_bytes`; untouched if they already do."""
    image = _open(data)
    mime_type = sniff_mime_type(data)
    if len(data) <= max_bytes and mime_type is not None:
        return EncodedImage(data, mime_type, image.width, image.height)
    return fit_within(image, max_bytes=max_bytes, lossless_first=mime_type != PNG)


def fit_within(image: Image.Image, *, max_bytes: int, lossless_first: bool = True) -> EncodedImage:
    """Encode `image` in at most `max_bytes`: lossless PNG first, then lossy steps, then smaller dimensions.

    `lossless_first=False` skips the PNG attempt when the source already was a PNG of the same pixels: it would
    come out about as large, and optimising a big PNG costs seconds.
    """
    for candidate in _encodings(image, lossless_first=lossless_first):
        if len(candidate.data) <= max_bytes:
            return candidate
    raise ImageRejected(f"could not be made smaller than {max_bytes:,} bytes")


def _encodings(image: Image.Image, *, lossless_first: bool) -> Iterator[EncodedImage]:
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    # Keep transparency when the image has it (WebP); otherwise JPEG, which every client shows.
    lossy_mime, lossy_format = (WEBP, "WEBP") if has_alpha else (JPEG, "JPEG")
    base = image.convert("RGBA" if has_alpha else "RGB")
    if lossless_first:
        yield _encode(base, PNG, "PNG", optimize=True)
    current = base
    while True:
        for quality in _QUALITIES:
            yield _encode(current, lossy_mime, lossy_format, quality=quality)
        width = max(1, math.floor(current.width * _DOWNSCALE))
        height = max(1, math.floor(current.height * _DOWNSCALE))
        if (width, height) == current.size:
            return
        current = base.resize((width, height), Image.Resampling.LANCZOS)


def _encode(image: Image.Image, mime_type: str, pil_format: str, **options: int | bool) -> EncodedImage:
    buffer = io.BytesIO()
    image.save(buffer, format=pil_format, **options)
    return EncodedImage(buffer.getvalue(), mime_type, image.width, image.height)

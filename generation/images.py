"""Image bytes in, image bytes out: decoding limits, references fitted to what the model uses, re-encoding to
fit a byte budget, and checking image files before they are trusted.

Everything here is synchronous Pillow work that can take hundreds of milliseconds on a large image: callers
run it in a thread (`asyncio.to_thread`) so the event loop never blocks. Image types, their extensions and
their sniffing live in toapis/mime.py.
"""

from __future__ import annotations

import enum
import io
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from PIL import ExifTags, Image, UnidentifiedImageError

from toapis.contract import REFERENCE_MAX_SIDE
from toapis.mime import EXTENSIONS, GIF, JPEG, PNG, SNIFF_BYTES, WEBP, sniff_image_type

# A reference that decodes to more than this many pixels is refused, from its header and before any decoding: a
# small file that expands to gigabytes of pixels (a decompression bomb) must not take the process down.
MAX_PIXELS: Final = 50_000_000

# Pillow's decoders for the types Imagine accepts; no other plugin gets to parse member uploads.
_FORMATS: Final = ("JPEG", "PNG", "WEBP", "GIF")

# Quality steps tried before resorting to smaller dimensions; each downscale keeps the aspect ratio.
_QUALITIES: Final = (90, 80, 70)
# The reference formats every model's page accepts (the Seedream pages: JPEG and PNG only).
_EVERY_MODEL_TAKES: Final = frozenset({JPEG, PNG})
_DOWNSCALE: Final = 0.75

# EXIF orientation -> the transpose that shows the picture upright (the table of ImageOps.exif_transpose).
_UPRIGHT: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class ImageProblem(enum.Enum):
    """Why bytes are not an image Imagine can use: what a member is told (cogs/_texts.py) in their language."""

    NOT_AN_IMAGE = "not_an_image"
    UNREADABLE = "unreadable"
    TOO_MANY_PIXELS = "too_many_pixels"
    """`details`: width, height, megapixels (the limit)."""
    TOO_MANY_PIXELS_UNSIZED = "too_many_pixels_unsized"
    """Pillow found the bomb while decoding, without a size to tell; `details`: megapixels."""
    NOT_SMALL_ENOUGH = "not_small_enough"
    """`details`: max_bytes."""


class ImageRejected(ValueError):
    """The bytes are not an image Imagine can use: the `problem`, its `details`, and `reason` in English (for the
    log and the command line)."""

    def __init__(self, problem: ImageProblem, reason: str, **details: int) -> None:
        super().__init__(reason)
        self.problem = problem
        self.reason = reason
        self.details = details


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    mime_type: str
    width: int
    height: int

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.mime_type]


def check_reference(data: bytes) -> str:
    """The cheap checks of `prepare_reference`, from the type and the header alone (nothing is decoded); returns
    the MIME type. Run on every image of a request before any is prepared, a refusal costs little."""
    mime_type = sniff_image_type(data)
    if mime_type is None:
        raise ImageRejected(ImageProblem.NOT_AN_IMAGE, "is not a JPEG, PNG, WebP or GIF image")
    with _reading():
        _open(io.BytesIO(data)).close()
    return mime_type


def prepare_reference(data: bytes, *, max_bytes: int, max_side: int = REFERENCE_MAX_SIDE) -> EncodedImage:
    """Check a reference image and make it what every model can use: a JPEG or PNG (ToAPIs' upload takes WebP
    and GIF too, but no model page takes GIF and the Seedream pages take JPEG and PNG only: docs/members.md,
    "/imagine"), at most `max_side` pixels on its long side and `max_bytes` bytes.

    The type comes from the bytes. A JPEG or PNG that already fits and is not animated passes through untouched,
    byte for byte. Any other is decoded no larger than it needs (a large JPEG at a fraction of its size), its
    first frame if animated, turned upright as its EXIF orientation says (the re-encode drops the EXIF), scaled
    down to `max_side`, and re-encoded: JPEG, or PNG when it has transparency. Lossless PNG is tried first for
    a GIF only, whose flat colours it keeps small; for a JPEG, WebP or PNG source (a photo, as a rule) it would
    cost seconds and seldom fit.
    """
    if max_side < 1:
        raise ValueError("max_side must be positive")
    mime_type = check_reference(data)
    with _reading():
        image = _open(io.BytesIO(data))
        animated = bool(getattr(image, "is_animated", False))
        if mime_type in _EVERY_MODEL_TAKES and not animated and len(data) <= max_bytes and max(image.size) <= max_side:
            image.load()  # a damaged image is refused here, not by the image service
            return EncodedImage(data, mime_type, image.width, image.height)
        pixels = _decode_within(image, max_side)
        # Inside too: Pillow decodes some images lazily, and an encoder that fails is a refusal, not a crash.
        return _fit_within(pixels, max_bytes=max_bytes, lossless_first=mime_type == GIF, transparent=PNG)


def fit_bytes_within(data: bytes, *, max_bytes: int) -> EncodedImage:
    """Re-encode image bytes (a generated result) so that they fit `max_bytes`; untouched if they already do."""
    mime_type = sniff_image_type(data)
    with _reading():
        image = _open(io.BytesIO(data))
        image.load()
        if len(data) <= max_bytes and mime_type is not None:
            return EncodedImage(data, mime_type, image.width, image.height)
        return _fit_within(image, max_bytes=max_bytes, lossless_first=mime_type == GIF)


def check_image_file(path: Path, *, max_bytes: int) -> tuple[str, int] | None:
    """The MIME type and size of an image file that is whole and at most `max_bytes`; None for anything else
    (missing, empty, too large, not an image, truncated or damaged)."""
    try:
        size = path.stat().st_size
        if not 0 < size <= max_bytes:
            return None
        with path.open("rb") as file:
            mime_type = sniff_image_type(file.read(SNIFF_BYTES))
        if mime_type is None:
            return None
        with _reading(), _open(path) as image:
            if mime_type == PNG:
                image.verify()  # every chunk's checksum, up to IEND, without decoding
            else:
                image.load()  # verify checks nothing in these formats: decoding is the check
    except (ImageRejected, OSError):
        return None
    return mime_type, size


def scaled_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """`size` scaled down (aspect ratio kept) so that its long side is at most `max_side`; never scaled up."""
    width, height = size
    long_side = max(width, height)
    if long_side <= max_side:
        return size
    scale = max_side / long_side
    return max(1, round(width * scale)), max(1, round(height * scale))


@contextmanager
def _reading() -> Iterator[None]:
    """Decoding problems become refusals a member understands; Pillow's bomb warning becomes an error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(
            ImageProblem.TOO_MANY_PIXELS_UNSIZED,
            f"is more than the {MAX_PIXELS // 1_000_000} megapixels Imagine accepts",
            megapixels=MAX_PIXELS // 1_000_000,
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected(
            ImageProblem.UNREADABLE, "could not be read as an image; it may be damaged or truncated"
        ) from exc


def _open(source: io.BytesIO | Path) -> Image.Image:
    """Open an image (its header only) and refuse it if it has too many pixels, before anything is decoded."""
    image = Image.open(source, formats=_FORMATS)
    width, height = image.size
    if width * height > MAX_PIXELS:
        image.close()
        raise ImageRejected(
            ImageProblem.TOO_MANY_PIXELS,
            f"is {width}×{height} pixels, more than the {MAX_PIXELS // 1_000_000} megapixels Imagine accepts",
            width=width,
            height=height,
            megapixels=MAX_PIXELS // 1_000_000,
        )
    return image


# How much smaller than the model's size a JPEG may decode (by DCT scaling alone) rather than be resized.
DCT_SLACK: Final = 0.85


def _decode_within(image: Image.Image, max_side: int) -> Image.Image:
    """Decode an opened image (its first frame) upright, in RGB or RGBA, at most `max_side` on its long side."""
    orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    image.seek(0)
    target = scaled_size(image.size, max_side)
    box = None
    if target != image.size:
        # DCT scaling: a JPEG decodes at 1/2, 1/4 or 1/8 of its size, the smallest still at least what is asked
        # (other formats ignore it). Asking for a little less than `target` lets a scale that lands just under it
        # stand as it is: a 7000 px photo decodes at 1/4 (1750 px) for a 2048 px target, and saves the resize
        # from 1/2 (3500 px), which costs more than the decode itself. The pixel limit was checked on the full
        # size when the image was opened.
        asked = (max(1, math.ceil(target[0] * DCT_SLACK)), max(1, math.ceil(target[1] * DCT_SLACK)))
        drafted = image.draft(None, asked)
        if drafted is not None:
            box = drafted[1]
    image.load()
    mode = _encodable_mode(image)
    pixels = image if image.mode == mode else image.convert(mode)
    target = scaled_size(pixels.size, max_side)
    if pixels.size != target:
        # Bicubic with a box pre-reduction: Pillow's thumbnail choice, near Lanczos for a downscale at less cost.
        pixels = pixels.resize(target, Image.Resampling.BICUBIC, box=box, reducing_gap=2.0)
    upright = _UPRIGHT.get(orientation)
    return pixels.transpose(upright) if upright is not None else pixels


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info


def _encodable_mode(image: Image.Image) -> str:
    """RGBA with transparency, L for greyscale (a third of the work and bytes of RGB), RGB otherwise."""
    if _has_alpha(image):
        return "RGBA"
    return "L" if image.mode in ("1", "L") else "RGB"


def _fit_within(image: Image.Image, *, max_bytes: int, lossless_first: bool, transparent: str = WEBP) -> EncodedImage:
    """Encode `image` in at most `max_bytes`: (lossless PNG first if asked,) lossy steps, then smaller sizes. An
    image with transparency keeps it, as `transparent` (WebP, lossy; or PNG, lossless at each size)."""
    for candidate in _encodings(image, lossless_first=lossless_first, transparent=transparent):
        if len(candidate.data) <= max_bytes:
            return candidate
    raise ImageRejected(
        ImageProblem.NOT_SMALL_ENOUGH, f"could not be made smaller than {max_bytes:,} bytes", max_bytes=max_bytes
    )


def _encodings(image: Image.Image, *, lossless_first: bool, transparent: str) -> Iterator[EncodedImage]:
    mode = _encodable_mode(image)
    lossless_only = mode == "RGBA" and transparent == PNG
    # Keep transparency when the image has it; otherwise JPEG, which every client and model takes.
    lossy_mime, lossy_format = (WEBP, "WEBP") if mode == "RGBA" else (JPEG, "JPEG")
    base = image if image.mode == mode else image.convert(mode)
    if lossless_first and not lossless_only:
        yield _encode(base, PNG, "PNG", optimize=True)
    current = base
    while True:
        if lossless_only:
            # PNG has no quality to lower: only a smaller size makes it smaller.
            yield _encode(current, PNG, "PNG", optimize=lossless_first)
        for quality in () if lossless_only else _QUALITIES:
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

"""What the fake ToAPIs accepts in a generation submit, model by model, and the images it makes.

The rules are the catalog's (toapis/catalog.py, itself from the docs), read strictly: an aspect, resolution, n,
reference count or prompt length a model does not take, a resolution in the wrong place or case for the model,
references in the wrong field, a reference of a shape the model does not take (`reference_shape_refusal`, for
the images whose pixels the fake holds): each is a 400 naming the field. Where a page states no prompt limit, the
fake holds Imagine's own (4,000 characters), so a client that overruns it is caught.

The server's form of `size` is a setting (`SizeMode`): the current pages' ratio form ("3:2" plus the model's
resolution field), or the older page's pixel form ("1536x1024", no resolution, only sizes the catalog's pixel
tables list). A submit in the other form is refused with a 400 naming `size`.
"""

from __future__ import annotations

import functools
import math
import random
import struct
import zlib
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from toapis import catalog
from toapis.catalog import ModelSpec, ResolutionPlacement


class SizeMode(StrEnum):
    """Which form of `size` the fake server accepts."""

    RATIO = "ratio"  # "3:2" with the model's resolution field (the current pages; the default)
    PIXELS = "pixels"  # "1536x1024" without a resolution (the older gpt-image-2 page)


@dataclass(frozen=True)
class Refusal:
    """A 400 invalid_request: what is wrong, and the field it is about."""

    message: str
    param: str


@dataclass(frozen=True)
class GenerationRequest:
    """A submit the fake accepted."""

    model: str
    prompt: str
    aspect: str
    resolution: str
    width: int
    height: int
    n: int
    references: tuple[str, ...]
    reference_field: str
    response_format: str | None
    client_business_id: str | None

    @property
    def size(self) -> str:
        """The result's pixel size, "WxH"."""
        return f"{self.width}x{self.height}"


# The long side of a square at each tier, for pairs whose pixels no page gives.
_TIER_SIDE: Final = {"0.5k": 512, "1k": 1024, "2k": 2048, "3k": 3072, "4k": 4096}


def result_pixels(spec: ModelSpec, aspect: str, resolution: str) -> tuple[int, int]:
    """The documented pixels of the pair, or a size that looks documented: the tier's square area at the ratio."""
    documented = catalog.pixels(spec, aspect, resolution)
    if documented is not None:
        return documented
    side = _TIER_SIDE[resolution]
    root = math.sqrt(catalog.ASPECTS[aspect].ratio)
    return max(round(side * root / 16) * 16, 16), max(round(side / root / 16) * 16, 16)


def read_submit(body: Any, *, models: Collection[str], size_mode: SizeMode) -> GenerationRequest | Refusal:
    """Check a submit body against the model's rules; the accepted request, or why it is refused."""
    if not isinstance(body, dict):
        return Refusal("the request body must be a JSON object", "body")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return Refusal("model is required", "model")
    try:
        spec = catalog.get_model(model)
    except catalog.UnknownModelError:
        spec = None
    if spec is None or spec.id not in models:
        return Refusal(f"model {model} is not available", "model")

    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return Refusal("prompt is required", "prompt")
    prompt_max = spec.upstream_prompt_max or spec.prompt_max
    if len(prompt) > prompt_max:
        return Refusal(f"prompt must be at most {prompt_max} characters", "prompt")

    sized = _read_size(body, spec, size_mode)
    if isinstance(sized, Refusal):
        return sized
    aspect, resolution = sized

    n = body.get("n", 1)
    if isinstance(n, bool) or not isinstance(n, int) or n not in spec.n_values:
        allowed = sorted(spec.n_values)
        if allowed == list(range(allowed[0], allowed[-1] + 1)):
            return Refusal(f"n must be a number from {allowed[0]} to {allowed[-1]} for {spec.id}", "n")
        return Refusal(f"n must be one of {', '.join(map(str, allowed))} for {spec.id}", "n")
    response_format = body.get("response_format")
    if response_format not in (None, "url", "b64_json"):
        return Refusal("response_format must be url or b64_json", "response_format")
    business_id = body.get("client_business_id")
    if business_id is not None and (not isinstance(business_id, str) or not business_id):
        return Refusal("client_business_id must be a non-empty string", "client_business_id")

    references = _read_references(body, spec, n)
    if isinstance(references, Refusal):
        return references
    width, height = result_pixels(spec, aspect, resolution)
    return GenerationRequest(
        model=spec.id,
        prompt=prompt,
        aspect=aspect,
        resolution=resolution,
        width=width,
        height=height,
        n=n,
        references=references,
        reference_field=spec.references.field or "reference_images",
        response_format=response_format,
        client_business_id=business_id,
    )


def _read_size(body: dict[str, Any], spec: ModelSpec, size_mode: SizeMode) -> tuple[str, str] | Refusal:
    top = body.get("resolution")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        return Refusal("metadata must be an object", "metadata")
    in_metadata = metadata.get("resolution") if metadata else None
    size = body.get("size")

    if size_mode is SizeMode.PIXELS:
        by_pixels = {f"{w}x{h}": pair for pair, (w, h) in spec.pixel_table.items()}
        if size is None:
            size = next((text for text, pair in by_pixels.items() if pair[0] == catalog.DEFAULT_ASPECT), None)
        if not isinstance(size, str) or size not in by_pixels:
            listed = ", ".join(by_pixels) or "none"
            return Refusal(f"size must be one of the pixel sizes {listed}", "size")
        if top is not None or in_metadata is not None:
            return Refusal("resolution is not a parameter: the size is in pixels", "resolution")
        return by_pixels[size]

    aspect = catalog.DEFAULT_ASPECT if size is None else size
    if aspect not in spec.aspects:
        return Refusal(f"size must be one of {', '.join(spec.aspects)}", "size")
    if spec.placement is ResolutionPlacement.TOP_LEVEL:
        if in_metadata is not None:
            return Refusal(f"{spec.id} takes resolution at the top level, not in metadata", "resolution")
        tier = spec.default_resolution if top is None else top
        if tier not in spec.resolutions:  # lower case only
            return Refusal(f"resolution must be one of {', '.join(spec.resolutions)}", "resolution")
        return aspect, tier
    if spec.placement is ResolutionPlacement.METADATA:
        if top is not None:
            return Refusal(f"{spec.id} takes metadata.resolution, not resolution", "resolution")
        value = spec.default_resolution.upper() if in_metadata is None else in_metadata
        upper = [tier.upper() for tier in spec.resolutions]
        if value not in upper:  # upper case only
            return Refusal(f"metadata.resolution must be one of {', '.join(upper)}", "resolution")
        return aspect, value.lower()
    if top is not None or in_metadata is not None:
        return Refusal(f"{spec.id} takes no resolution", "resolution")
    return aspect, spec.default_resolution


def _read_references(body: dict[str, Any], spec: ModelSpec, n: int) -> tuple[str, ...] | Refusal:
    rules = spec.references
    accepted = (rules.field, *rules.aliases) if rules.field is not None else ()
    field_name = rules.field or "reference_images"
    given = [name for name in ("reference_images", "image_urls") if body.get(name) not in (None, [])]
    for name in given:
        if name not in accepted:
            where = f"takes reference images in {rules.field}" if rules.field else "takes no reference images"
            return Refusal(f"{spec.id} {where}", name)
    if not given:
        return ()
    references = body[given[0]]
    if not isinstance(references, list) or not all(isinstance(url, str) for url in references):
        return Refusal(f"{field_name} must be a list of URL strings", field_name)
    if len(references) > rules.max_count:
        return Refusal(f"{spec.id} takes at most {rules.max_count} reference images", field_name)
    total = spec.max_references_and_images
    if total is not None and len(references) + n > total:
        return Refusal(f"reference and generated images together must be at most {total}", field_name)
    return tuple(references)


def reference_shape_refusal(spec: ModelSpec, position: int, width: int, height: int) -> str | None:
    """Why the model refuses the reference image at `position` (from 1) for its shape, or None. Worked out here
    from the catalog's facts rather than by its `shape_problem`, so that a mistake there is caught."""
    rules = spec.references
    image = f"reference image {position} is {width}x{height}"
    if rules.min_side is not None and min(width, height) < rules.min_side:
        return f"{image}: each side must be over {rules.min_side - 1} px"
    if rules.aspect_range is not None:
        low, high = rules.aspect_range
        if not low * height <= width <= high * height:
            return f"{image}: its width/height must be from {low} to {high}"
    return None


# --- result images --------------------------------------------------------------------------------------------

# A private, ancillary, safe-to-copy chunk type: decoders skip it, so padding keeps the image valid.
_PADDING_CHUNK: Final = b"paDd"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@functools.lru_cache(maxsize=64)
def _blank_pixels(width: int, height: int) -> bytes:
    """The compressed pixels of a one-colour, 1-bit palette image: made once per size (4K ones take a while)."""
    row = b"\x00" * (1 + (width + 7) // 8)
    return _chunk(b"IDAT", zlib.compress(row * height, 9))


def solid_palette_png(width: int, height: int, rgb: tuple[int, int, int], *, min_bytes: int = 0) -> bytes:
    """A one-colour PNG: the size's cached pixels with a palette of `rgb`, padded to at least `min_bytes`."""
    header = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 3, 0, 0, 0))  # 1-bit palette
    body = header + _chunk(b"PLTE", bytes(rgb)) + _blank_pixels(width, height)
    png = b"\x89PNG\r\n\x1a\n" + body + _chunk(b"IEND", b"")
    shortfall = min_bytes - len(png)
    if shortfall > 0:
        # Random bytes, so that no transfer encoding could shrink a "large" image.
        padding = random.Random(min_bytes).randbytes(max(shortfall - 12, 0))
        png = b"\x89PNG\r\n\x1a\n" + body + _chunk(_PADDING_CHUNK, padding) + _chunk(b"IEND", b"")
    return png

"""What a request may contain, checked with reasons a member understands.

`check_options` needs no I/O, so the cog runs it before its first response; `prepare_references` decodes the
images (in a thread) once their bytes have been read, and holds them to their model's rule on shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Final

from generation.images import EncodedImage, ImageRejected, check_reference, prepare_reference
from generation.refusals import (
    PromptEmpty,
    PromptTooLong,
    ReferenceSideTooShort,
    ReferenceTooElongated,
    ReferenceUnusable,
    TooManyImages,
    TooManyReferences,
)
from toapis import catalog
from toapis.catalog import ModelSpec, ShapeProblem
from toapis.contract import REFERENCE_MAX_SIDE
from toapis.contract import UPLOAD_MAX_BYTES as MAX_UPLOAD_BYTES

# Imagine's own bounds, whatever the model (docs/members.md): a prompt fits a Discord form, four images per
# message, four references. A model may take less (generation/models.py).
PROMPT_MAX_LENGTH: Final = catalog.IMAGINE_MAX_PROMPT_CHARS
MAX_REFERENCES: Final = catalog.IMAGINE_MAX_REFERENCES
MAX_N: Final = catalog.IMAGINE_MAX_IMAGES


def check_options(prompt: str, n: int, *, max_n: int, reference_count: int = 0) -> str:
    """Validate what every request must meet whatever its model, and return the prompt, trimmed; raise a
    `Refusal`. No I/O."""
    cleaned = prompt.strip()
    if not cleaned:
        raise PromptEmpty()
    if len(cleaned) > PROMPT_MAX_LENGTH:
        raise PromptTooLong(len(cleaned), PROMPT_MAX_LENGTH)
    # A server's maximum never lifts the product's own.
    limit = min(max_n, MAX_N)
    if not 1 <= n <= limit:
        raise TooManyImages(limit)
    if reference_count > MAX_REFERENCES:
        raise TooManyReferences(reference_count, MAX_REFERENCES)
    return cleaned


def check_reference_shape(model: ModelSpec, width: int, height: int, *, position: int, count: int) -> None:
    """Refuse a reference whose shape breaks the model's rule (Seedream's: 1:3 to 3:1, sides of 15 px or more).

    Its format and size need no such check: preparation makes every reference one that every model takes."""
    rules = model.references
    problem = rules.shape_problem(width, height)
    if problem is ShapeProblem.SIDE_TOO_SHORT and rules.min_side is not None:
        raise ReferenceSideTooShort(position, count, model.name, width, height, rules.min_side)
    if problem is ShapeProblem.TOO_ELONGATED and rules.max_elongation is not None:
        raise ReferenceTooElongated(position, count, model.name, int(rules.max_elongation))


def prepare_references_sync(
    blobs: Sequence[bytes],
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_side: int = REFERENCE_MAX_SIDE,
    model: ModelSpec | None = None,
) -> list[EncodedImage]:
    """Check each reference by its bytes and fit it to the upload limit and to what the model uses (`max_side`
    pixels on the long side); the reason names the bad image. One at a time, so that a request's memory holds
    one decoded image at most. With `model`, each is held to its rule on shape as prepared, which is what the
    model receives: a refusal then comes before anything is reserved or uploaded."""
    if len(blobs) > MAX_REFERENCES:
        raise TooManyReferences(len(blobs), MAX_REFERENCES)
    # Every image's type and header first (no decoding): a request refused for its last image costs little.
    for position, data in enumerate(blobs, start=1):
        with _naming(position, len(blobs)):
            check_reference(data)
    prepared = []
    for position, data in enumerate(blobs, start=1):
        with _naming(position, len(blobs)):
            image = prepare_reference(data, max_bytes=max_bytes, max_side=max_side)
        if model is not None:
            check_reference_shape(model, image.width, image.height, position=position, count=len(blobs))
        prepared.append(image)
    return prepared


@contextmanager
def _naming(position: int, count: int) -> Iterator[None]:
    """An image's refusal becomes the request's, naming the image."""
    try:
        yield
    except ImageRejected as exc:
        raise ReferenceUnusable(position, count, exc.problem, exc.details) from exc


async def prepare_references(
    blobs: Sequence[bytes],
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_side: int = REFERENCE_MAX_SIDE,
    model: ModelSpec | None = None,
) -> list[EncodedImage]:
    """`prepare_references_sync` in a thread: decoding and re-encoding must not block the event loop.

    Nothing to prepare (most requests) makes no trip to a thread: requests admitted together then reach the
    queue in the order they came, rather than in the order the threads happen to finish."""
    if not blobs:
        return []
    return await asyncio.to_thread(prepare_references_sync, blobs, max_bytes=max_bytes, max_side=max_side, model=model)

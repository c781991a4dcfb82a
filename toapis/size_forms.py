"""The two ways a submit can say how large an image should be, and when to try the other one.

DOCUMENTED, current pages (gpt-image-2/generation and the other model pages, toapis/docs@7ed09d1e): `size` is an
aspect ratio ("3:2") and the resolution a separate tier: top-level `"resolution": "2k"` for gpt-image-2 and
gpt-image-2-vip, `"metadata": {"resolution": "2K"}` for most others, nothing for models without one. This is the
RATIO form, sent first.

DOCUMENTED, the older gpt-image-2 page Imagine was first written against: `size` is a pixel size ("1536x1024")
and there is no resolution. This is the PIXELS form, the fallback. That page lists three sizes only, 1024x1024,
1536x1024 and 1024x1536, for gpt-image-2 only.

ASSUMED: the live server may take only one of the two (the pages changed, and the server may lag or lead them).
So a submit refused with a 400 that names the size or the resolution is sent once more in the other form, with the
same client_business_id: a 400 creates no task, so this cannot bill twice. The client remembers, per model, the
form that worked and tries it first from then on.

ASSUMED, beyond the older page: the PIXELS form is offered for every pair whose pixels the catalog has from any
page (catalog.pixels): gpt-image-2 at 2k and 4k and its other ratios, and the other models with a pixel table. No
page says a server takes them; trying costs at most one more 400, which creates no task, so it cannot bill twice.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Final

from toapis import catalog
from toapis.catalog import ModelSpec, ResolutionPlacement
from toapis.errors import BadRequestError


class SizeForm(StrEnum):
    """How a submit carries the image's size."""

    RATIO = "ratio"  # size "3:2" plus the model's resolution field
    PIXELS = "pixels"  # size "1536x1024", no resolution


# The order tried when the client has no memory of a model: the current pages' form first.
DEFAULT_ORDER: Final = (SizeForm.RATIO, SizeForm.PIXELS)

# ASSUMED: how a 400 about the size reads. The documented error body has `param`; its message may be in Chinese.
_SIZE_PARAMS: Final = frozenset({"size", "resolution"})
_SIZE_WORDS: Final = re.compile(r"\bsize\b|resolution|aspect|尺寸|分辨率|比例", re.IGNORECASE)


def size_fields(spec: ModelSpec, aspect: str, resolution: str, form: SizeForm) -> dict[str, Any] | None:
    """The body fields that carry the size in `form`; None when the model has no such form for this pair."""
    if form is SizeForm.PIXELS:
        # Any documented pixels, not only the older page's three sizes: ASSUMED, see the module's docstring.
        dimensions = catalog.pixels(spec, aspect, resolution)
        if dimensions is None:
            return None
        return {"size": f"{dimensions[0]}x{dimensions[1]}"}
    fields: dict[str, Any] = {"size": aspect}
    if spec.placement is ResolutionPlacement.TOP_LEVEL:
        fields["resolution"] = resolution.lower()
    elif spec.placement is ResolutionPlacement.METADATA:
        fields["metadata"] = {"resolution": resolution.upper()}
    return fields


def forms_to_try(
    spec: ModelSpec, aspect: str, resolution: str, remembered: SizeForm | None
) -> tuple[tuple[SizeForm, dict[str, Any]], ...]:
    """The forms to send, in order (the remembered one first), each with its body fields; never empty."""
    order = DEFAULT_ORDER if remembered is None else (remembered, *(f for f in DEFAULT_ORDER if f is not remembered))
    forms = []
    for form in order:
        fields = size_fields(spec, aspect, resolution, form)
        if fields is not None:
            forms.append((form, fields))
    return tuple(forms)


def names_the_size(error: BadRequestError) -> bool:
    """Whether a refused submit was refused for its size or resolution (by `param`, or by its message)."""
    if error.status != 400:
        return False
    if error.param is not None:  # the field the API blames is the better witness than its wording
        return error.param.lower().rsplit(".", 1)[-1] in _SIZE_PARAMS
    return bool(_SIZE_WORDS.search(error.message))

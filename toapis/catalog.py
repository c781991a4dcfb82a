"""Every fact Imagine uses about each ToAPIs image model it can offer, in one table.

Sources: ToAPIs' documentation repository (GitHub `toapis/docs`) at commit 7ed09d1e264cfbb7fff90d42cbe34f4d56d5f3c3
(2026-08-20), pages under docs/en/api-reference/images/. Each model's `source` names its page; every value below
is DOCUMENTED on that page unless a comment marks it ASSUMED (the page is silent or contradicts another).

Imagine offers only the models that make images from a prompt on `POST /v1/images/generations`, with optional
reference images. Left out: the edit modes (gpt-image-2/edits requires `image_urls`; grok-imagine-1.0/edits is
another endpoint, `POST /v1/images/edits`), and gpt-image-2-official (gpt-image-2/official), whose references are
optional but which would add little and is unsure of itself: at 1k and 2k it makes gpt-image-2's pixels, its 4k
covers only 6 of the 13 ratios, and its page says at most 4 images in its introduction but n 1-10 in its
parameters. Two judgement calls, both included:

- flux-kontext: a reference turns it into an edit of that image, but references are optional and the model
  draws from a prompt alone; with at most one reference and one image per call (ASSUMED, see below) it fits.
- seedream-5.0-pro: an ordinary generation model whose extra, `layer_decomposition` (off by default), Imagine
  never sets, so its results are ordinary images. (Its page is missing in ja/ko/ru only.)

Imagine's own caps apply on top of each model's: a prompt of at most 4,000 characters (the most a Discord text
input holds) or less where the model documents less, at most 4 images and 4 reference images per request.

Nothing here does I/O: the bot may call any of it before an interaction's first response.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from fractions import Fraction
from types import MappingProxyType
from typing import Final

from toapis.mime import JPEG, PNG, WEBP

DOCS_COMMIT: Final = "7ed09d1e264cfbb7fff90d42cbe34f4d56d5f3c3"
DOCS_ROOT: Final = "docs/en/api-reference/images/"

# Imagine's caps, whatever a model allows. A Discord text input holds at most 4,000 characters.
IMAGINE_MAX_PROMPT_CHARS: Final = 4_000
IMAGINE_MAX_IMAGES: Final = 4
IMAGINE_MAX_REFERENCES: Final = 4

DEFAULT_MODEL_ID: Final = "gpt-image-2"
DEFAULT_ASPECT: Final = "1:1"


def _source(page: str) -> str:
    return f"{DOCS_ROOT}{page} (toapis/docs@{DOCS_COMMIT[:8]})"


# --- aspect ratios and resolutions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Aspect:
    """An aspect ratio Imagine offers: its `size` value ("3:2") and a readable name for menus."""

    id: str
    name: str
    width: int
    height: int

    @property
    def ratio(self) -> float:
        """Width over height."""
        return self.width / self.height


def _aspect(id_: str, name: str) -> Aspect:
    width, height = (int(part) for part in id_.split(":"))
    return Aspect(id_, name, width, height)


# DOCUMENTED: the 13 ratios of gpt-image-2's `size` (gpt-image-2/generation), in the page's order. Ratios some
# models add outside these (1:4, 4:1, 1:8, 8:1, `auto`, `match_input_image`) are not offered by Imagine.
ASPECTS: Final[Mapping[str, Aspect]] = MappingProxyType(
    {
        aspect.id: aspect
        for aspect in (
            _aspect("1:1", "Square 1:1"),
            _aspect("3:2", "Landscape 3:2"),
            _aspect("2:3", "Portrait 2:3"),
            _aspect("4:3", "Classic 4:3"),
            _aspect("3:4", "Classic portrait 3:4"),
            _aspect("5:4", "Print 5:4"),
            _aspect("4:5", "Print portrait 4:5"),
            _aspect("16:9", "Widescreen 16:9"),
            _aspect("9:16", "Tall 9:16"),
            _aspect("2:1", "Panorama 2:1"),
            _aspect("1:2", "Tall panorama 1:2"),
            _aspect("21:9", "Ultrawide 21:9"),
            _aspect("9:21", "Ultratall 9:21"),
        )
    }
)


@dataclass(frozen=True)
class Resolution:
    """A resolution tier: Imagine's lower-case id ("2k"), a readable name, and its default quota weight."""

    id: str
    name: str
    weight: int

    @property
    def upper(self) -> str:
        """The upper-case spelling models that take `metadata.resolution` expect ("2K")."""
        return self.id.upper()


# The tiers models document, lower-cased ("0.5K" on gemini-3.1-flash, "3K" on seedream-5.0). ASSUMED weights: the
# docs publish no prices (their only hints: flux-2 2K costs more than 1K, gemini-3.1-flash 4K more than 1K), so a
# job counts as one image per 1K tier: 0.5k and 1k count 1, 2k 2, 3k 3, 4k 4.
RESOLUTIONS: Final[Mapping[str, Resolution]] = MappingProxyType(
    {
        tier.id: tier
        for tier in (
            Resolution("0.5k", "0.5K (draft)", 1),
            Resolution("1k", "1K (standard)", 1),
            Resolution("2k", "2K", 2),
            Resolution("3k", "3K", 3),
            Resolution("4k", "4K", 4),
        )
    }
)


class ResolutionPlacement(StrEnum):
    """Where a model takes its resolution."""

    TOP_LEVEL = "top_level"  # `"resolution": "2k"`, lower case (gpt-image-2, gpt-image-2-vip)
    METADATA = "metadata"  # `"metadata": {"resolution": "2K"}`, upper case (most other models)
    NONE = "none"  # no resolution parameter: nothing is sent


class ShapeProblem(StrEnum):
    """Which of its model's rules a reference image's shape breaks."""

    SIDE_TOO_SHORT = "side_too_short"  # a side under `References.min_side`
    TOO_ELONGATED = "too_elongated"  # width over height outside `References.aspect_range`


@dataclass(frozen=True)
class References:
    """How a model takes reference images (always as a list of plain http(s) URL strings), and what each image
    must be. Every rule on the images is the page's; None where the page states none."""

    # The body field; None when the model takes no reference images.
    field: str | None
    # The most the model documents (0: none).
    max_count: int
    # Other field names the page accepts for the same list (the client always sends `field`).
    aliases: tuple[str, ...] = ()
    # True if the model needs at least one (never so for the models here: those are edit modes, left out).
    required: bool = False
    # The image types the page names, as MIME types. Preparation makes every reference JPEG or PNG, which each of
    # these lists holds, so only the shape rules below are checked before a submit.
    formats: tuple[str, ...] | None = None
    # The most bytes one image may have ("10 MB", read as the upload limit is: 10,000,000).
    max_bytes: int | None = None
    # The most pixels on either side.
    max_side: int | None = None
    # Width over height, both ends allowed. The pages that state one give 1/k to k.
    aspect_range: tuple[Fraction, Fraction] | None = None
    # The fewest pixels on either side.
    min_side: int | None = None

    @property
    def max_elongation(self) -> Fraction | None:
        """How many times its short side an image's long side may be (3 for 1/3 to 3); None: no such rule."""
        if self.aspect_range is None:
            return None
        low, high = self.aspect_range
        return max(high, 1 / low)

    def shape_problem(self, width: int, height: int) -> ShapeProblem | None:
        """The rule an image of this size breaks, a short side before its proportions; None when it fits."""
        if self.min_side is not None and min(width, height) < self.min_side:
            return ShapeProblem.SIDE_TOO_SHORT
        if self.aspect_range is not None and width > 0 and height > 0:
            low, high = self.aspect_range
            if not low <= Fraction(width, height) <= high:
                return ShapeProblem.TOO_ELONGATED
        return None


_NO_REFERENCES: Final = References(field=None, max_count=0)
_UNSTATED: Final = References(field="image_urls", max_count=0)
# Key L of the pages that give it (gpt-4o, the Gemini pages, grok-image): "each ≤10 MB, jpeg/jpg/png/webp".
_L: Final = replace(_UNSTATED, formats=(JPEG, PNG, WEBP), max_bytes=10_000_000)


def _image_urls(max_count: int, rules: References = _UNSTATED) -> References:
    return replace(rules, max_count=max_count)


@dataclass(frozen=True)
class ModelSpec:
    """What one model takes, and how Imagine asks for it. Build through the table below; read via `get_model`."""

    id: str
    name: str
    # The documentation page this entry comes from.
    source: str
    # Imagine's prompt cap for this model: min(4,000, what the page documents).
    prompt_max: int
    # What the page documents (None: the page states no limit); the fake ToAPIs enforces this one.
    upstream_prompt_max: int | None
    # Among the 13 of ASPECTS, in ASPECTS' order.
    aspects: tuple[str, ...]
    # Lower-case tiers, in RESOLUTIONS' order. A model without a resolution parameter has ("1k",): ASSUMED its
    # images are of the 1K class, and nothing is sent.
    resolutions: tuple[str, ...]
    default_resolution: str
    placement: ResolutionPlacement
    # Every n the page allows (Imagine asks at most IMAGINE_MAX_IMAGES: see `n_choices`).
    n_values: frozenset[int]
    references: References
    # (aspect, resolution) -> (width, height), where the page gives pixels; may cover only some pairs.
    pixel_table: Mapping[tuple[str, str], tuple[int, int]] = field(default_factory=lambda: MappingProxyType({}))
    # Other ids the page gives for the same model (the client always sends `id`).
    aliases: tuple[str, ...] = ()
    # Reference images and generated images together may not exceed this (None: no such rule).
    max_references_and_images: int | None = None
    # resolution -> how many images a job counts as for quotas (default: RESOLUTIONS' weights).
    weights: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not self.weights:
            object.__setattr__(
                self, "weights", MappingProxyType({tier: RESOLUTIONS[tier].weight for tier in self.resolutions})
            )

    @property
    def n_choices(self) -> tuple[int, ...]:
        """The numbers of images Imagine may ask of this model, ascending."""
        return tuple(sorted(value for value in self.n_values if value <= IMAGINE_MAX_IMAGES))

    @property
    def reference_limit(self) -> int:
        """The most reference images Imagine sends this model."""
        return min(self.references.max_count, IMAGINE_MAX_REFERENCES)

    @property
    def takes_references(self) -> bool:
        """Whether the model takes any reference image."""
        return self.reference_limit > 0


def _in_order(ids: str, known: Iterable[str]) -> tuple[str, ...]:
    wanted = ids.split()
    unknown = set(wanted) - set(known)
    if unknown:  # pragma: no cover - a typo in the table below; caught when the module is imported
        raise ValueError(f"not a known id: {sorted(unknown)}")
    return tuple(item for item in known if item in wanted)


def _aspects(ids: str) -> tuple[str, ...]:
    return _in_order(ids, ASPECTS)


def _tiers(ids: str) -> tuple[str, ...]:
    return _in_order(ids, RESOLUTIONS)


def _table(rows: Mapping[str, Mapping[str, str]]) -> Mapping[tuple[str, str], tuple[int, int]]:
    """{aspect: {resolution: "WxH"}} -> {(aspect, resolution): (w, h)}."""
    table: dict[tuple[str, str], tuple[int, int]] = {}
    for aspect, by_tier in rows.items():
        for tier, size in by_tier.items():
            width, height = (int(part) for part in size.split("x"))
            table[(aspect, tier)] = (width, height)
    return MappingProxyType(table)


# The aspect sets several pages share (toapis-models key: R13, R7, R9 = R7 + 21:9 9:21, G10).
_R13: Final = "1:1 3:2 2:3 4:3 3:4 5:4 4:5 16:9 9:16 2:1 1:2 21:9 9:21"
_R7: Final = "1:1 4:3 3:4 16:9 9:16 3:2 2:3"
_R9: Final = _R7 + " 21:9 9:21"
_G10: Final = "1:1 3:2 2:3 3:4 4:3 4:5 5:4 9:16 16:9 21:9"

# gpt-image-2/generation: size x resolution -> pixels, for all 13 ratios. (The edit pages, left out here, allow
# 4k on 6 ratios only; this page gives 4k pixels for all 13, and it is the one followed.)
_GPT_IMAGE_2_PIXELS: Final = _table(
    {
        "1:1": {"1k": "1024x1024", "2k": "2048x2048", "4k": "2880x2880"},
        "3:2": {"1k": "1536x1024", "2k": "2048x1360", "4k": "3520x2336"},
        "2:3": {"1k": "1024x1536", "2k": "1360x2048", "4k": "2336x3520"},
        "4:3": {"1k": "1024x768", "2k": "2048x1536", "4k": "3312x2480"},
        "3:4": {"1k": "768x1024", "2k": "1536x2048", "4k": "2480x3312"},
        "5:4": {"1k": "1280x1024", "2k": "2560x2048", "4k": "3216x2576"},
        "4:5": {"1k": "1024x1280", "2k": "2048x2560", "4k": "2576x3216"},
        "16:9": {"1k": "1536x864", "2k": "2048x1152", "4k": "3840x2160"},
        "9:16": {"1k": "864x1536", "2k": "1152x2048", "4k": "2160x3840"},
        "2:1": {"1k": "2048x1024", "2k": "2688x1344", "4k": "3840x1920"},
        "1:2": {"1k": "1024x2048", "2k": "1344x2688", "4k": "1920x3840"},
        "21:9": {"1k": "2016x864", "2k": "2688x1152", "4k": "3840x1648"},
        "9:21": {"1k": "864x2016", "2k": "1152x2688", "4k": "1648x3840"},
    }
)

# gemini-2.5-flash: its one resolution's pixels. 16:9 and 9:16 are 1792x1024 and 1024x1792 on the page, which is
# 7:4 (DALL-E 3's wide size), 1.6 % off the ratio: the page's numbers are kept.
_GEMINI_25_FLASH_PIXELS: Final = _table(
    {
        "1:1": {"1k": "1024x1024"},
        "16:9": {"1k": "1792x1024"},
        "9:16": {"1k": "1024x1792"},
        "4:3": {"1k": "1365x1024"},
        "3:4": {"1k": "1024x1365"},
        "3:2": {"1k": "1536x1024"},
        "2:3": {"1k": "1024x1536"},
    }
)

# flux-2: 1K and 2K pixels for its 7 ratios.
_FLUX_2_PIXELS: Final = _table(
    {
        "1:1": {"1k": "1024x1024", "2k": "2048x2048"},
        "4:3": {"1k": "1365x1024", "2k": "2730x2048"},
        "3:4": {"1k": "1024x1365", "2k": "2048x2730"},
        "16:9": {"1k": "1820x1024", "2k": "3640x2048"},
        "9:16": {"1k": "1024x1820", "2k": "2048x3640"},
        "3:2": {"1k": "1536x1024", "2k": "3072x2048"},
        "2:3": {"1k": "1024x1536", "2k": "2048x3072"},
    }
)

# seedream-4.0 and seedream-5.0 give pixels for 1:1 and 16:9 only. (seedream-4.5's page gives none: its 2K and 4K
# may well match 4.0's, but that is not written, so it has no table.)
_SEEDREAM_40_PIXELS: Final = _table(
    {
        "1:1": {"1k": "1024x1024", "2k": "2048x2048", "4k": "4096x4096"},
        "16:9": {"1k": "1280x720", "2k": "2560x1440", "4k": "5404x3040"},
    }
)
_SEEDREAM_50_PIXELS: Final = _table(
    {
        "1:1": {"2k": "2048x2048", "3k": "3072x3072"},
        "16:9": {"2k": "2848x1600", "3k": "4096x2304"},
    }
)

# ASSUMED for gpt-image-2 and gpt-image-2-vip: their pages give n a default of 1 but no range. 1-10 is what
# OpenAI's API allows and what the gpt-image-2/edits page (the same model id) documents; Imagine asks at most 4.
_N_OPENAI: Final = frozenset(range(1, 11))
_N_ONE: Final = frozenset({1})
_N_124: Final = frozenset({1, 2, 4})

# Reference images of gpt-image-2 and gpt-image-2-vip. ASSUMED maximum: their pages give none; the
# gpt-image-2/edits and gpt-image-2/official pages take at most 16.
_GPT_IMAGE_2_REFERENCES: Final = References(field="reference_images", max_count=16, aliases=("image_urls",))

# Seedream 4.0-5.0 (and, ASSUMED, 5.0 pro: "as 4.0") take at most 15 reference and generated images together.
_SEEDREAM_TOTAL: Final = 15

# Seedream 4.0-5.0, and 5.0 pro "as 4.0": at most 10 references, "jpeg/png only, w/h 1/3-3, sides >14 px, ≤10 MB,
# ≤6000x6000 px". More than 14 pixels is at least 15.
_SEEDREAM_REFERENCES: Final = replace(
    _UNSTATED,
    max_count=10,
    formats=(JPEG, PNG),
    max_bytes=10_000_000,
    max_side=6_000,
    aspect_range=(Fraction(1, 3), Fraction(3)),
    min_side=15,
)

_METADATA = ResolutionPlacement.METADATA
_NONE = ResolutionPlacement.NONE


def _capped(upstream: int | None) -> int:
    return IMAGINE_MAX_PROMPT_CHARS if upstream is None else min(upstream, IMAGINE_MAX_PROMPT_CHARS)


def _model(
    id_: str,
    name: str,
    page: str,
    *,
    prompt: int | None,
    aspects: str,
    resolutions: str = "1k",
    default: str = "1k",
    placement: ResolutionPlacement,
    n: frozenset[int],
    references: References,
    pixels: Mapping[tuple[str, str], tuple[int, int]] | None = None,
    aliases: tuple[str, ...] = (),
    total: int | None = None,
) -> ModelSpec:
    return ModelSpec(
        id=id_,
        name=name,
        source=_source(page),
        prompt_max=_capped(prompt),
        upstream_prompt_max=prompt,
        aspects=_aspects(aspects),
        resolutions=_tiers(resolutions),
        default_resolution=default,
        placement=placement,
        n_values=n,
        references=references,
        pixel_table=pixels if pixels is not None else MappingProxyType({}),
        aliases=aliases,
        max_references_and_images=total,
    )


def _build() -> tuple[ModelSpec, ...]:
    return (
        # `auto` size is not mentioned on this page: not offered. Prompt: 32,000 here (the older page: 4,000).
        _model(
            "gpt-image-2",
            "GPT Image 2",
            "gpt-image-2/generation",
            prompt=32_000,
            aspects=_R13,
            resolutions="1k 2k 4k",
            placement=ResolutionPlacement.TOP_LEVEL,
            n=_N_OPENAI,
            references=_GPT_IMAGE_2_REFERENCES,
            pixels=_GPT_IMAGE_2_PIXELS,
        ),
        # Also has `quality` (default medium) and `callback_url`; Imagine sends neither. No pixel table on its
        # page: ASSUMED nothing (the pixel form is not offered for it).
        _model(
            "gpt-image-2-vip",
            "GPT Image 2 (VIP)",
            "gpt-image-2-vip/generation",
            prompt=32_000,
            aspects=_R13,
            resolutions="1k 2k 4k",
            placement=ResolutionPlacement.TOP_LEVEL,
            n=_N_OPENAI,
            references=_GPT_IMAGE_2_REFERENCES,
        ),
        # No resolution parameter. Its `mask_url` is not used.
        _model(
            "gpt-4o-image",
            "GPT-4o Image",
            "gpt-4o/generation",
            prompt=1_000,
            aspects="1:1 2:3 3:2",
            placement=_NONE,
            n=_N_124,
            references=_image_urls(5, _L),
        ),
        # `metadata.resolution` takes "1K" only. `image_urls` is typed as {url} objects, but the examples send
        # strings, and the upload page calls strings the fix for a 400: strings are sent.
        _model(
            "gemini-2.5-flash-image-preview",
            "Nano Banana (Gemini 2.5 Flash Image)",
            "gemini-2.5-flash",
            prompt=1_000,
            aspects=_R7,
            placement=_METADATA,
            n=_N_ONE,
            references=_image_urls(14, _L),
            pixels=_GEMINI_25_FLASH_PIXELS,
            aliases=("nano-banana",),
        ),
        # No resolution parameter; prompt limit not stated.
        _model(
            "gemini-2.5-flash-image-official",
            "Nano Banana, official (Gemini 2.5 Flash Image)",
            "gemini-2.5-flash-official",
            prompt=None,
            aspects=_G10,
            placement=_NONE,
            n=_N_ONE,
            references=_image_urls(3, _L),
            aliases=("nano-banana-official",),
        ),
        # No ToAPIs prompt cap (upstream 65,536 tokens). The page calls it "Nano banana2"; its alias is
        # nano-banana-pro. `image_urls` typed as {url} objects: strings are sent (as for gemini-2.5-flash).
        _model(
            "gemini-3-pro-image-preview",
            "Nano Banana Pro (Gemini 3 Pro Image)",
            "gemini-3-pro-image",
            prompt=None,
            aspects=_G10,
            resolutions="1k 2k 4k",
            placement=_METADATA,
            n=_N_ONE,
            references=_image_urls(14, _L),
            aliases=("nano-banana-pro",),
        ),
        _model(
            "gemini-3-pro-image-preview-official",
            "Nano Banana Pro, official (Gemini 3 Pro Image)",
            "gemini-3-pro-image-official",
            prompt=None,
            aspects=_G10,
            resolutions="1k 2k 4k",
            placement=_METADATA,
            n=_N_ONE,
            references=_image_urls(14, _L),
            aliases=("nano-banana-pro-official",),
        ),
        # Also 1:4 4:1 1:8 8:1 (not offered). n: default 1, no range; ASSUMED 1 only, like every other Gemini
        # page. `image_urls` typed as {url} objects: strings are sent (as for gemini-2.5-flash).
        _model(
            "gemini-3.1-flash-image-preview",
            "Gemini 3.1 Flash Image",
            "gemini-3.1-flash",
            prompt=None,
            aspects=_G10,
            resolutions="0.5k 1k 2k 4k",
            placement=_METADATA,
            n=_N_ONE,
            references=_image_urls(14, _L),
        ),
        # Also 4:1 8:1 (not offered); no 0.5K, unlike its preview twin.
        _model(
            "gemini-3.1-flash-image-preview-official",
            "Nano Banana 2, official (Gemini 3.1 Flash Image)",
            "gemini-3.1-flash-official",
            prompt=None,
            aspects=_G10,
            resolutions="1k 2k 4k",
            placement=_METADATA,
            n=_N_ONE,
            references=_image_urls(14, _L),
            aliases=("nano-banana-2-official", "nano-banana-2-lite-official"),
        ),
        # n not stated: ASSUMED 1 (FLUX makes one image per call).
        *(
            _model(
                model_id,
                name,
                "flux-2",
                prompt=None,
                aspects=_R7,
                resolutions="1k 2k",
                placement=_METADATA,
                n=_N_ONE,
                references=_image_urls(8),
                pixels=_FLUX_2_PIXELS,
            )
            for model_id, name in (("flux-2-flex", "FLUX.2 Flex"), ("flux-2-pro", "FLUX.2 Pro"))
        ),
        # Without `size` it defaults to 16:9 (match_input_image with a reference): Imagine always sends one.
        # No resolution; n not stated: ASSUMED 1 (priced per call). A reference makes it edit that image.
        *(
            _model(
                model_id,
                name,
                "flux-kontext",
                prompt=None,
                aspects=_R9,
                placement=_NONE,
                n=_N_ONE,
                references=_image_urls(1),
            )
            for model_id, name in (
                ("flux-kontext-pro", "FLUX.1 Kontext Pro"),
                ("flux-kontext-max", "FLUX.1 Kontext Max"),
            )
        ),
        *(
            _model(
                model_id,
                name,
                "grok-image",
                prompt=1_000,
                aspects="1:1 2:3 3:2 16:9 9:16",
                placement=_NONE,
                n=_N_124,
                references=_image_urls(5, _L),
            )
            for model_id, name in (("grok-4-1-image", "Grok 4.1 Image"), ("grok-4-2-image", "Grok 4.2 Image"))
        ),
        # Text only: no reference field (its edit twin, grok-imagine-1.0/edits, is another endpoint).
        _model(
            "grok-imagine-1.0",
            "Grok Imagine 1.0",
            "grok-imagine-1.0/generation",
            prompt=None,
            aspects="1:1 16:9 9:16 3:2 2:3",
            placement=_NONE,
            n=frozenset(range(1, 11)),
            references=_NO_REFERENCES,
        ),
        # Also `auto` (follows the reference; not offered). Default resolution 2K. Examples send
        # `optimize_prompt_options` as a string where the spec wants {mode}: Imagine sends neither.
        _model(
            "doubao-seedream-4-0",
            "Seedream 4.0",
            "seedream-4.0",
            prompt=1_000,
            aspects=_R9,
            resolutions="1k 2k 4k",
            default="2k",
            placement=_METADATA,
            n=frozenset(range(1, 16)),
            references=_SEEDREAM_REFERENCES,
            pixels=_SEEDREAM_40_PIXELS,
            total=_SEEDREAM_TOTAL,
        ),
        # No 1K.
        _model(
            "doubao-seedream-4-5",
            "Seedream 4.5",
            "seedream-4.5",
            prompt=None,
            aspects=_R9,
            resolutions="2k 4k",
            default="2k",
            placement=_METADATA,
            n=frozenset(range(1, 16)),
            references=_SEEDREAM_REFERENCES,
            total=_SEEDREAM_TOTAL,
        ),
        # 2K and 3K only.
        _model(
            "doubao-seedream-5-0",
            "Seedream 5.0",
            "seedream-5.0",
            prompt=None,
            aspects=_R9,
            resolutions="2k 3k",
            default="2k",
            placement=_METADATA,
            n=frozenset(range(1, 16)),
            references=_SEEDREAM_REFERENCES,
            pixels=_SEEDREAM_50_PIXELS,
            total=_SEEDREAM_TOTAL,
        ),
        # `layer_decomposition` (default false) is never sent. References "as 4.0", so ASSUMED the same
        # 15-image total.
        _model(
            "doubao-seedream-5-0-pro",
            "Seedream 5.0 Pro",
            "seedream-5.0-pro",
            prompt=None,
            aspects=_R9,
            resolutions="1k 2k",
            default="2k",
            placement=_METADATA,
            n=frozenset(range(1, 11)),
            references=_SEEDREAM_REFERENCES,
            total=_SEEDREAM_TOTAL,
        ),
        # One page, four models; viduq2-fast has 1K only.
        *(
            _model(
                model_id,
                name,
                "vidu-image",
                prompt=None,
                aspects=_R7,
                resolutions=tiers,
                placement=_METADATA,
                n=_N_ONE,
                references=_image_urls(7),
            )
            for model_id, name, tiers in (
                ("vidu-image", "Vidu Image", "1k 2k 4k"),
                ("viduq3-fast", "Vidu Q3 Fast", "1k 2k 4k"),
                ("viduq2-pro", "Vidu Q2 Pro", "1k 2k 4k"),
                ("viduq2-fast", "Vidu Q2 Fast", "1k"),
            )
        ),
    )


MODELS: Final[Mapping[str, ModelSpec]] = MappingProxyType({spec.id: spec for spec in _build()})
_BY_ALIAS: Final[Mapping[str, ModelSpec]] = MappingProxyType(
    {alias: spec for spec in MODELS.values() for alias in spec.aliases}
)


class UnknownModelError(KeyError):
    """A model id the catalog does not know; the message lists the ones it does."""

    def __init__(self, model_id: str) -> None:
        self.model_id = model_id
        self.message = f"unknown image model {model_id!r}; Imagine knows: {', '.join(MODELS)}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


def get_model(model: str | ModelSpec) -> ModelSpec:
    """The catalog entry of a model id (or one of its documented aliases); UnknownModelError otherwise."""
    if isinstance(model, ModelSpec):
        return model
    spec = MODELS.get(model) or _BY_ALIAS.get(model)
    if spec is None:
        raise UnknownModelError(model)
    return spec


def _spec_or_none(model: str | ModelSpec | None) -> ModelSpec | None:
    return None if model is None else get_model(model)


# --- lookups --------------------------------------------------------------------------------------------------


def normalise_resolution(value: str) -> str:
    """Imagine's spelling of a resolution tier: "2K" and " 2k " become "2k"."""
    return value.strip().lower()


def pixels(model: str | ModelSpec, aspect: str, resolution: str) -> tuple[int, int] | None:
    """The documented (width, height) of `aspect` at `resolution` for the model; None where the docs give none."""
    return get_model(model).pixel_table.get((aspect, normalise_resolution(resolution)))


def nearest_aspect(width: int, height: int, model: str | ModelSpec | None = None) -> str:
    """The ratio closest to width:height on a log scale (2:1 and 1:2 are as far from 1:1), among the model's.

    Without a model, among all 13; for a degenerate size, 1:1. Ties go to the ratio listed first in ASPECTS.
    """
    spec = _spec_or_none(model)
    candidates = spec.aspects if spec is not None else tuple(ASPECTS)
    if width <= 0 or height <= 0:
        return DEFAULT_ASPECT if DEFAULT_ASPECT in candidates else candidates[0]
    target = math.log(width / height)
    return min(candidates, key=lambda aspect: abs(target - math.log(ASPECTS[aspect].ratio)))


_PIXEL_SIZE: Final = re.compile(r"\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*")


def parse_pixel_size(size: str) -> tuple[int, int] | None:
    """ "1536x1024" -> (1536, 1024); None for anything that is not a WIDTHxHEIGHT pixel size."""
    match = _PIXEL_SIZE.fullmatch(size)
    if match is None:
        return None
    width, height = int(match.group(1)), int(match.group(2))
    return (width, height) if width > 0 and height > 0 else None


def aspect_for_pixel_size(size: str, model: str | ModelSpec | None = None) -> tuple[str, str] | None:
    """The (aspect, resolution) a pixel size stands for: "1536x1024" -> ("3:2", "1k").

    For jobs stored in the old pixel form. Looked up in the model's pixel table, then in gpt-image-2's (the table
    the old pixel sizes come from); None when neither has it.
    """
    parsed = parse_pixel_size(size)
    if parsed is None:
        return None
    tables = [get_model(DEFAULT_MODEL_ID).pixel_table]
    spec = _spec_or_none(model)
    if spec is not None:
        tables.insert(0, spec.pixel_table)
    for table in tables:
        for pair, dimensions in table.items():
            if dimensions == parsed:
                return pair
    return None


def default_weight(model: str | ModelSpec, resolution: str | None = None) -> int:
    """How many images one image of this model at this resolution counts as for quotas (default resolution if None).

    Raises ValueError for a resolution the model does not offer.
    """
    spec = get_model(model)
    tier = spec.default_resolution if resolution is None else normalise_resolution(resolution)
    if tier not in spec.weights:
        raise ValueError(f"{spec.id} does not offer the resolution {resolution!r}")
    return spec.weights[tier]


# --- checking a request ---------------------------------------------------------------------------------------


class RequestOption(StrEnum):
    """The option of a request a problem is about."""

    MODEL = "model"
    PROMPT = "prompt"
    ASPECT = "aspect"
    RESOLUTION = "resolution"
    N = "n"
    REFERENCES = "references"

    def param(self, spec: ModelSpec | None) -> str:
        """The request body field it becomes for the model: "aspect" travels as `size`, references in the model's
        own field (`image_urls` for most). A model that takes none, or no model known, gets the API's general
        name for them, `reference_images`."""
        if self is RequestOption.ASPECT:
            return "size"
        if self is RequestOption.REFERENCES:
            own = spec.references.field if spec is not None else None
            return own or "reference_images"
        return self.value


@dataclass(frozen=True)
class RequestProblem:
    """Why a model cannot take a request: which option, what the model offers for it, and a sentence saying so."""

    option: RequestOption
    message: str
    # What the model offers for that option, as strings ("1:1", "2k", "1", "4", model ids...).
    offered: tuple[str, ...]


def describe_n(spec: ModelSpec) -> str:
    """The numbers of images Imagine may ask of the model, for messages: "1", "1 to 4" or "1, 2 or 4"."""
    choices = spec.n_choices
    if len(choices) == 1:
        return str(choices[0])
    if choices == tuple(range(choices[0], choices[-1] + 1)):
        return f"{choices[0]} to {choices[-1]}"
    return ", ".join(str(value) for value in choices[:-1]) + f" or {choices[-1]}"


def describe_reference_shape(spec: ModelSpec) -> str | None:
    """The model's rules on a reference image's shape, for listings: "1:3 to 3:1, sides of at least 15 px"; None
    when its page states none."""
    refs = spec.references
    rules = []
    if refs.max_elongation is not None:
        rules.append(f"1:{refs.max_elongation} to {refs.max_elongation}:1")
    if refs.min_side is not None:
        rules.append(f"sides of at least {refs.min_side} px")
    return ", ".join(rules) or None


def _listing(values: Iterable[str]) -> str:
    return ", ".join(values)


def check_request(
    model: str | ModelSpec,
    aspect: str,
    resolution: str | None,
    n: int,
    reference_count: int,
    prompt_length: int,
) -> RequestProblem | None:
    """The first reason the model cannot take this request, or None. `resolution` None means the default.

    Applies Imagine's caps on top of the model's (prompt, n, references). No I/O.
    """
    try:
        spec = get_model(model)
    except UnknownModelError as exc:
        return RequestProblem(RequestOption.MODEL, exc.message, tuple(MODELS))
    if prompt_length <= 0:
        return RequestProblem(RequestOption.PROMPT, "the prompt is empty", (str(spec.prompt_max),))
    if prompt_length > spec.prompt_max:
        return RequestProblem(
            RequestOption.PROMPT,
            f"the prompt is {prompt_length:,} characters long; {spec.name} takes at most {spec.prompt_max:,}",
            (str(spec.prompt_max),),
        )
    if aspect not in spec.aspects:
        return RequestProblem(
            RequestOption.ASPECT,
            f"{spec.name} offers the aspect ratios {_listing(spec.aspects)}, not {aspect!r}",
            spec.aspects,
        )
    tier = spec.default_resolution if resolution is None else normalise_resolution(resolution)
    if tier not in spec.resolutions:
        return RequestProblem(
            RequestOption.RESOLUTION,
            f"{spec.name} offers the resolutions {_listing(t.upper() for t in spec.resolutions)}, not {resolution!r}",
            spec.resolutions,
        )
    if isinstance(n, bool) or n not in spec.n_choices:
        return RequestProblem(
            RequestOption.N,
            f"{spec.name} makes {describe_n(spec)} image{'s' if spec.n_choices[-1] > 1 else ''} per request, not {n!r}",
            tuple(str(value) for value in spec.n_choices),
        )
    if reference_count > spec.reference_limit or reference_count < 0:
        text = (
            f"{spec.name} takes no reference images"
            if not spec.takes_references
            else f"{spec.name} takes at most {spec.reference_limit} reference image"
            f"{'s' if spec.reference_limit > 1 else ''}, not {reference_count}"
        )
        return RequestProblem(RequestOption.REFERENCES, text, (str(spec.reference_limit),))
    return None

"""The model catalog: consistent with itself, and its lookups answer as documented."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from toapis import catalog
from toapis.catalog import (
    ASPECTS,
    MODELS,
    RESOLUTIONS,
    ModelSpec,
    RequestOption,
    ResolutionPlacement,
    ShapeProblem,
    UnknownModelError,
)
from toapis.contract import REFERENCE_MAX_SIDE, UPLOAD_MAX_BYTES
from toapis.mime import JPEG, PNG, WEBP

THIRTEEN = ("1:1", "3:2", "2:3", "4:3", "3:4", "5:4", "4:5", "16:9", "9:16", "2:1", "1:2", "21:9", "9:21")
SPECS = list(MODELS.values())


def by_id(spec: ModelSpec) -> str:
    return spec.id


# --- the table itself -----------------------------------------------------------------------------------------


def test_the_thirteen_aspects_in_order_with_short_distinct_names() -> None:
    assert tuple(ASPECTS) == THIRTEEN
    names = [aspect.name for aspect in ASPECTS.values()]
    assert len(set(names)) == 13
    assert all(0 < len(name) <= 100 and aspect.id in name for name, aspect in zip(names, ASPECTS.values(), strict=True))
    assert ASPECTS["1:1"].name == "Square 1:1"
    assert ASPECTS["16:9"].name == "Widescreen 16:9"


def test_resolutions_and_their_weights() -> None:
    assert {tier.id: tier.weight for tier in RESOLUTIONS.values()} == {"0.5k": 1, "1k": 1, "2k": 2, "3k": 3, "4k": 4}
    assert RESOLUTIONS["1k"].name == "1K (standard)"
    assert all(len(tier.name) <= 100 for tier in RESOLUTIONS.values())


def test_the_models_offered() -> None:
    # Every text-to-image model on POST /v1/images/generations; the edit modes (gpt-image-2/edits,
    # grok-imagine-1.0-edit) and gpt-image-2-official (see the catalog's docstring) are not among them.
    assert set(MODELS) == {
        "gpt-image-2",
        "gpt-image-2-vip",
        "gpt-4o-image",
        "gemini-2.5-flash-image-preview",
        "gemini-2.5-flash-image-official",
        "gemini-3-pro-image-preview",
        "gemini-3-pro-image-preview-official",
        "gemini-3.1-flash-image-preview",
        "gemini-3.1-flash-image-preview-official",
        "flux-2-flex",
        "flux-2-pro",
        "flux-kontext-pro",
        "flux-kontext-max",
        "grok-4-1-image",
        "grok-4-2-image",
        "grok-imagine-1.0",
        "doubao-seedream-4-0",
        "doubao-seedream-4-5",
        "doubao-seedream-5-0",
        "doubao-seedream-5-0-pro",
        "vidu-image",
        "viduq3-fast",
        "viduq2-pro",
        "viduq2-fast",
    }
    assert len(MODELS) <= 25  # a Discord option holds at most 25 choices
    assert catalog.DEFAULT_MODEL_ID in MODELS


def test_ids_and_aliases_are_unique_and_names_readable() -> None:
    every_id = [name for spec in SPECS for name in (spec.id, *spec.aliases)]
    assert len(every_id) == len(set(every_id))
    assert len({spec.name for spec in SPECS}) == len(SPECS)
    assert all(0 < len(spec.name) <= 100 for spec in SPECS)


@pytest.mark.parametrize("spec", SPECS, ids=by_id)
def test_each_model_is_consistent(spec: ModelSpec) -> None:
    assert spec.aspects, "no aspect"
    assert set(spec.aspects) <= set(THIRTEEN)
    assert list(spec.aspects) == [aspect for aspect in THIRTEEN if aspect in spec.aspects]  # ASPECTS' order
    assert spec.resolutions
    assert set(spec.resolutions) <= set(RESOLUTIONS)
    assert spec.default_resolution in spec.resolutions
    if spec.placement is ResolutionPlacement.NONE:
        assert spec.resolutions == ("1k",)  # no choice to offer
    # Prompt: Imagine's cap, or less where the page says less.
    assert spec.prompt_max <= 4_000
    assert spec.prompt_max == min(4_000, spec.upstream_prompt_max or 4_000)
    # n: 1 always works, and Imagine never asks more than 4.
    assert 1 in spec.n_values
    assert spec.n_choices[0] == 1
    assert spec.n_choices[-1] <= 4
    # References: a field when any are taken; never required (those models are edit modes).
    refs = spec.references
    assert (refs.field is None) == (refs.max_count == 0)
    assert not refs.required
    assert refs.field in (None, "reference_images", "image_urls")
    assert 0 <= spec.reference_limit <= 4
    # Weights: one per resolution, by tier.
    assert dict(spec.weights) == {tier: RESOLUTIONS[tier].weight for tier in spec.resolutions}
    assert spec.source.startswith("docs/en/api-reference/images/")
    assert "7ed09d1e" in spec.source


# gemini-2.5-flash's page gives 1792x1024 for 16:9 (and 1024x1792 for 9:16): 7:4, DALL-E 3's wide size, 1.6 % off
# the ratio. The catalog keeps the page's numbers; these are the only entries allowed to be more than rounding off.
ODD_ENTRIES = {("gemini-2.5-flash-image-preview", "16:9", "1k"), ("gemini-2.5-flash-image-preview", "9:16", "1k")}


@pytest.mark.parametrize("spec", [spec for spec in SPECS if spec.pixel_table], ids=by_id)
def test_every_pixel_table_entry_matches_its_aspect(spec: ModelSpec) -> None:
    for (aspect, tier), (width, height) in spec.pixel_table.items():
        assert aspect in spec.aspects, (aspect, tier)
        assert tier in spec.resolutions, (aspect, tier)
        tolerance = 0.02 if (spec.id, aspect, tier) in ODD_ENTRIES else 0.01
        assert math.isclose(width / height, ASPECTS[aspect].ratio, rel_tol=tolerance), (aspect, tier, width, height)
    # A higher tier never has fewer pixels at the same ratio.
    for aspect in spec.aspects:
        areas = [w * h for tier in spec.resolutions if (w_h := spec.pixel_table.get((aspect, tier))) for w, h in [w_h]]
        assert areas == sorted(areas)


def test_the_documented_facts_of_a_few_models() -> None:
    gpt = catalog.get_model("gpt-image-2")
    assert (gpt.aspects, gpt.resolutions, gpt.default_resolution) == (THIRTEEN, ("1k", "2k", "4k"), "1k")
    assert (gpt.placement, gpt.upstream_prompt_max, gpt.prompt_max) == (ResolutionPlacement.TOP_LEVEL, 32_000, 4_000)
    assert len(gpt.pixel_table) == 39
    assert gpt.references.field == "reference_images"
    seedream = catalog.get_model("doubao-seedream-4-5")
    assert (seedream.resolutions, seedream.default_resolution) == (("2k", "4k"), "2k")
    assert seedream.placement is ResolutionPlacement.METADATA
    gpt4o = catalog.get_model("gpt-4o-image")
    assert (gpt4o.prompt_max, gpt4o.n_choices, gpt4o.placement) == (1_000, (1, 2, 4), ResolutionPlacement.NONE)
    assert catalog.get_model("doubao-seedream-4-0").n_choices == (1, 2, 3, 4)  # 1-15 documented, 4 asked at most
    assert catalog.get_model("grok-imagine-1.0").takes_references is False
    assert catalog.get_model("gemini-2.5-flash-image-official").reference_limit == 3
    assert catalog.get_model("gemini-3.1-flash-image-preview").resolutions == ("0.5k", "1k", "2k", "4k")
    assert catalog.get_model("viduq2-fast").resolutions == ("1k",)


SEEDREAM = ("doubao-seedream-4-0", "doubao-seedream-4-5", "doubao-seedream-5-0", "doubao-seedream-5-0-pro")
# Key L: "each ≤10 MB, jpeg/jpg/png/webp".
KEY_L = (
    "gpt-4o-image",
    "gemini-2.5-flash-image-preview",
    "gemini-2.5-flash-image-official",
    "gemini-3-pro-image-preview",
    "gemini-3-pro-image-preview-official",
    "gemini-3.1-flash-image-preview",
    "gemini-3.1-flash-image-preview-official",
    "grok-4-1-image",
    "grok-4-2-image",
)


@pytest.mark.parametrize("spec", SPECS, ids=by_id)
def test_each_models_rules_on_its_reference_images_are_its_pages(spec: ModelSpec) -> None:
    refs = spec.references
    rules = (refs.formats, refs.max_bytes, refs.max_side, refs.aspect_range, refs.min_side)
    if spec.id in SEEDREAM:
        jpeg_png = (JPEG, PNG)
        assert rules == (jpeg_png, 10_000_000, 6_000, (Fraction(1, 3), Fraction(3)), 15)
    elif spec.id in KEY_L:
        assert rules == ((JPEG, PNG, WEBP), 10_000_000, None, None, None)
    else:  # the page states nothing about the images
        assert rules == (None, None, None, None, None)


@pytest.mark.parametrize("spec", [spec for spec in SPECS if spec.takes_references], ids=by_id)
def test_prepared_references_meet_every_models_stated_format_and_size(spec: ModelSpec) -> None:
    # Preparation sends JPEG or PNG within the upload limit and REFERENCE_MAX_SIDE; only the shape is left to check.
    refs = spec.references
    assert refs.formats is None or {JPEG, PNG} <= set(refs.formats)
    assert refs.max_bytes is None or refs.max_bytes >= UPLOAD_MAX_BYTES
    assert refs.max_side is None or refs.max_side >= REFERENCE_MAX_SIDE
    # The refusal says "up to k:1": a range of 1/k to k, k whole.
    if refs.aspect_range is not None:
        assert refs.max_elongation is not None
        assert refs.max_elongation.denominator == 1
        assert refs.aspect_range == (1 / refs.max_elongation, refs.max_elongation)


@pytest.mark.parametrize(
    ("size", "problem"),
    [
        ((300, 100), None),
        ((100, 300), None),
        ((15, 15), None),
        ((15, 45), None),
        ((301, 100), ShapeProblem.TOO_ELONGATED),
        ((400, 100), ShapeProblem.TOO_ELONGATED),
        ((100, 400), ShapeProblem.TOO_ELONGATED),
        ((10, 20), ShapeProblem.SIDE_TOO_SHORT),
        ((2048, 14), ShapeProblem.SIDE_TOO_SHORT),
    ],
)
def test_a_reference_shape_is_checked_against_seedreams_rules(
    size: tuple[int, int], problem: ShapeProblem | None
) -> None:
    for model in SEEDREAM:
        assert catalog.get_model(model).references.shape_problem(*size) is problem
    # A model whose page states no rule takes any shape.
    assert catalog.get_model("gpt-image-2").references.shape_problem(*size) is None


# --- lookups --------------------------------------------------------------------------------------------------


def test_get_model_by_id_or_alias_and_a_clear_error_otherwise() -> None:
    assert catalog.get_model("nano-banana-pro").id == "gemini-3-pro-image-preview"
    spec = catalog.get_model("flux-2-pro")
    assert catalog.get_model(spec) is spec
    with pytest.raises(UnknownModelError) as caught:
        catalog.get_model("gpt-image-1")
    assert str(caught.value) == f"unknown image model 'gpt-image-1'; Imagine knows: {', '.join(MODELS)}"
    assert caught.value.model_id == "gpt-image-1"


@pytest.mark.parametrize(
    ("model", "aspect", "tier", "expected"),
    [
        ("gpt-image-2", "1:1", "1k", (1024, 1024)),
        ("gpt-image-2", "3:2", "2K", (2048, 1360)),
        ("gpt-image-2", "9:21", "4k", (1648, 3840)),
        ("flux-2-pro", "16:9", "2k", (3640, 2048)),
        ("gemini-2.5-flash-image-preview", "9:16", "1k", (1024, 1792)),
        ("doubao-seedream-4-0", "16:9", "4k", (5404, 3040)),
        ("doubao-seedream-5-0", "16:9", "3k", (4096, 2304)),
        ("doubao-seedream-5-0", "3:2", "2k", None),  # only 1:1 and 16:9 are documented
        ("doubao-seedream-4-5", "1:1", "2k", None),  # no table on its page
        ("gpt-4o-image", "1:1", "1k", None),
    ],
)
def test_pixels(model: str, aspect: str, tier: str, expected: tuple[int, int] | None) -> None:
    assert catalog.pixels(model, aspect, tier) == expected


@pytest.mark.parametrize(
    ("width", "height", "model", "expected"),
    [
        (1000, 1000, None, "1:1"),
        (1920, 1080, None, "16:9"),
        (1080, 1920, None, "9:16"),
        (3000, 1000, None, "21:9"),
        (1000, 4000, None, "9:21"),
        (1200, 1000, None, "5:4"),
        (1920, 1080, "gpt-4o-image", "3:2"),
        (1000, 3000, "gpt-4o-image", "2:3"),
        (2000, 1000, "flux-2-pro", "16:9"),
        (0, 100, None, "1:1"),
    ],
)
def test_nearest_aspect_on_a_log_scale(width: int, height: int, model: str | None, expected: str) -> None:
    assert catalog.nearest_aspect(width, height, model) == expected


def test_nearest_aspect_is_symmetric() -> None:
    # On a log scale w:h and h:w are as far from square, so a size and its transpose land on mirrored ratios.
    for width, height in [(1500, 1000), (1700, 1000), (2400, 1000), (1100, 1000)]:
        wide = catalog.nearest_aspect(width, height)
        tall = catalog.nearest_aspect(height, width)
        assert tall == ":".join(reversed(wide.split(":")))


@pytest.mark.parametrize(
    ("size", "model", "expected"),
    [
        ("1024x1024", None, ("1:1", "1k")),
        ("1536x1024", None, ("3:2", "1k")),
        ("1024x1536", None, ("2:3", "1k")),
        ("3840x2160", None, ("16:9", "4k")),
        ("2730x2048", "flux-2-pro", ("4:3", "2k")),  # the model's own table first
        ("1536x1024", "doubao-seedream-4-5", ("3:2", "1k")),  # then gpt-image-2's, the old pixel sizes' table
        ("1000x1000", None, None),
        ("1:1", None, None),
        ("big", None, None),
    ],
)
def test_aspect_for_pixel_size(size: str, model: str | None, expected: tuple[str, str] | None) -> None:
    assert catalog.aspect_for_pixel_size(size, model) == expected


def test_every_gpt_image_2_pixel_size_maps_back_to_its_pair() -> None:
    for pair, (width, height) in catalog.get_model("gpt-image-2").pixel_table.items():
        assert catalog.aspect_for_pixel_size(f"{width}x{height}") == pair


def test_default_weight() -> None:
    assert catalog.default_weight("gpt-image-2", "1k") == 1
    assert catalog.default_weight("gpt-image-2", "4K") == 4
    assert catalog.default_weight("gpt-image-2") == 1
    assert catalog.default_weight("doubao-seedream-4-5") == 2  # its default is 2k
    assert catalog.default_weight("doubao-seedream-5-0", "3k") == 3
    assert catalog.default_weight("gemini-3.1-flash-image-preview", "0.5k") == 1
    with pytest.raises(ValueError, match="does not offer"):
        catalog.default_weight("flux-2-pro", "4k")


# --- check_request --------------------------------------------------------------------------------------------


def test_a_request_the_model_takes_has_no_problem() -> None:
    assert catalog.check_request("gpt-image-2", "21:9", "4k", 4, 4, 4_000) is None
    assert catalog.check_request("doubao-seedream-4-5", "9:21", None, 2, 0, 10) is None
    assert catalog.check_request("gpt-4o-image", "2:3", "1k", 4, 4, 1_000) is None


@pytest.mark.parametrize(
    ("arguments", "option", "offered", "message"),
    [
        (("gpt-image-9", "1:1", None, 1, 0, 5), RequestOption.MODEL, tuple(MODELS), "unknown image model"),
        (("gpt-image-2", "1:1", None, 1, 0, 0), RequestOption.PROMPT, ("4000",), "the prompt is empty"),
        (
            ("grok-4-2-image", "1:1", None, 1, 0, 1_001),
            RequestOption.PROMPT,
            ("1000",),
            "the prompt is 1,001 characters long; Grok 4.2 Image takes at most 1,000",
        ),
        (
            ("gpt-4o-image", "16:9", None, 1, 0, 5),
            RequestOption.ASPECT,
            ("1:1", "3:2", "2:3"),
            "GPT-4o Image offers the aspect ratios 1:1, 3:2, 2:3, not '16:9'",
        ),
        (
            ("doubao-seedream-4-5", "1:1", "1k", 1, 0, 5),
            RequestOption.RESOLUTION,
            ("2k", "4k"),
            "Seedream 4.5 offers the resolutions 2K, 4K, not '1k'",
        ),
        (
            ("flux-2-flex", "1:1", "4K", 1, 0, 5),
            RequestOption.RESOLUTION,
            ("1k", "2k"),
            "FLUX.2 Flex offers the resolutions 1K, 2K, not '4K'",
        ),
        (
            ("gpt-image-2", "1:1", None, 5, 0, 5),
            RequestOption.N,
            ("1", "2", "3", "4"),
            "GPT Image 2 makes 1 to 4 images per request, not 5",
        ),
        (
            ("vidu-image", "1:1", None, 2, 0, 5),
            RequestOption.N,
            ("1",),
            "Vidu Image makes 1 image per request, not 2",
        ),
        (
            ("gemini-2.5-flash-image-official", "1:1", None, 1, 4, 5),
            RequestOption.REFERENCES,
            ("3",),
            "takes at most 3 reference images, not 4",
        ),
        (
            ("gpt-image-2", "1:1", None, 1, 5, 5),
            RequestOption.REFERENCES,
            ("4",),
            "GPT Image 2 takes at most 4 reference images, not 5",
        ),
        (
            ("grok-imagine-1.0", "1:1", None, 1, 1, 5),
            RequestOption.REFERENCES,
            ("0",),
            "Grok Imagine 1.0 takes no reference images",
        ),
    ],
)
def test_check_request_names_the_option_and_what_the_model_offers(
    arguments: tuple[str, str, str | None, int, int, int], option: RequestOption, offered: tuple[str, ...], message: str
) -> None:
    problem = catalog.check_request(*arguments)
    assert problem is not None
    assert (problem.option, problem.offered) == (option, offered)
    assert message in problem.message


def test_request_options_name_their_body_fields() -> None:
    gpt = catalog.get_model("gpt-image-2")
    assert {option: option.param(gpt) for option in RequestOption} == {
        RequestOption.MODEL: "model",
        RequestOption.PROMPT: "prompt",
        RequestOption.ASPECT: "size",
        RequestOption.RESOLUTION: "resolution",
        RequestOption.N: "n",
        RequestOption.REFERENCES: "reference_images",
    }


@pytest.mark.parametrize(
    ("model", "field"),
    [
        ("gpt-image-2", "reference_images"),
        ("gpt-image-2-vip", "reference_images"),
        ("gpt-4o-image", "image_urls"),
        ("doubao-seedream-4-5", "image_urls"),
        ("grok-imagine-1.0", "reference_images"),  # takes none: the API's general name
        (None, "reference_images"),
    ],
)
def test_references_are_named_by_the_models_own_field(model: str | None, field: str) -> None:
    spec = None if model is None else catalog.get_model(model)
    assert RequestOption.REFERENCES.param(spec) == field


def test_describe_n() -> None:
    assert catalog.describe_n(catalog.get_model("gpt-image-2")) == "1 to 4"
    assert catalog.describe_n(catalog.get_model("grok-4-1-image")) == "1, 2 or 4"
    assert catalog.describe_n(catalog.get_model("flux-2-pro")) == "1"

"""A model's rule on a reference image's shape (Seedream's: 1:3 to 3:1, sides of 15 px or more), checked on each
image as prepared, naming it, before anything is reserved or uploaded."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from cogs._texts import refusal_text
from generation.refusals import ReferenceSideTooShort, ReferenceTooElongated, Refusal
from generation.validation import prepare_references, prepare_references_sync
from toapis import catalog

SEEDREAM = catalog.get_model("doubao-seedream-4-5")
GPT = catalog.get_model("gpt-image-2")


def picture(size: tuple[int, int], fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "olive").save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "size",
    [(300, 100), (100, 300), (15, 15), (15, 45), (6000, 2000), (2000, 6000)],
    ids=["3:1", "1:3", "15-px-square", "15-px-side-at-1:3", "3:1-scaled-down", "1:3-scaled-down"],
)
def test_a_shape_within_seedreams_rule_is_prepared(size: tuple[int, int]) -> None:
    (prepared,) = prepare_references_sync([picture(size, "JPEG")], model=SEEDREAM)
    assert 1 / 3 <= prepared.width / prepared.height <= 3


@pytest.mark.parametrize(
    ("blobs", "refusal", "text"),
    [
        (
            [picture((400, 100))],
            ReferenceTooElongated(1, 1, "Seedream 4.5", 3),
            "Your image is too long and narrow for Seedream 4.5, which takes reference images up to 3:1 wide or 1:3 "
            "tall.",
        ),
        (
            [picture((64, 48)), picture((100, 301))],
            ReferenceTooElongated(2, 2, "Seedream 4.5", 3),
            "Image 2 is too long and narrow for Seedream 4.5, which takes reference images up to 3:1 wide or 1:3 tall.",
        ),
        (
            [picture((10, 20))],
            ReferenceSideTooShort(1, 1, "Seedream 4.5", 10, 20, 15),
            "Your image is 10×20 pixels, too small for Seedream 4.5, which takes reference images of at least 15 "
            "pixels on each side.",
        ),
        (
            [picture((64, 48)), picture((64, 48)), picture((40, 14))],
            ReferenceSideTooShort(3, 3, "Seedream 4.5", 40, 14, 15),
            "Image 3 is 40×14 pixels, too small for Seedream 4.5, which takes reference images of at least 15 pixels "
            "on each side.",
        ),
    ],
    ids=["4:1", "second-1:3.01", "10-px-wide", "third-14-px-high"],
)
def test_a_shape_seedream_does_not_take_is_refused_naming_the_image(
    blobs: list[bytes], refusal: Refusal, text: str
) -> None:
    with pytest.raises(Refusal) as refused:
        prepare_references_sync(blobs, model=SEEDREAM)
    assert type(refused.value) is type(refusal)
    assert vars(refused.value) == vars(refusal)
    assert refusal_text(refused.value, "en-US") == text


@pytest.mark.parametrize("size", [(400, 100), (10, 20), (2048, 14)])
def test_a_model_whose_page_states_no_shape_takes_any(size: tuple[int, int]) -> None:
    (prepared,) = prepare_references_sync([picture(size)], model=GPT)
    assert (prepared.width, prepared.height) == size


def test_without_a_model_no_shape_is_checked() -> None:
    (prepared,) = prepare_references_sync([picture((400, 100))])
    assert (prepared.width, prepared.height) == (400, 100)


async def test_the_thread_version_checks_the_shape_too() -> None:
    with pytest.raises(ReferenceTooElongated):
        await prepare_references([picture((400, 100))], model=SEEDREAM)

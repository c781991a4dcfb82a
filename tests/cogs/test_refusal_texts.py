"""One text per refusal, in one place (cogs/_texts.py `refusal_text`), for the slash command and the
conversation alike: every refusal the pipeline can raise has its case there."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest

import generation.refusals
import i18n
from cogs._texts import refusal_text
from generation.refusals import (
    ChannelNotPostable,
    ChatOff,
    InlineOptionInvalid,
    ReferenceSideTooShort,
    ReferenceTooElongated,
    Refusal,
    ReplyTargetHidden,
)

# Refusals that are never put into words: the member was already answered by someone else.
SILENT = {generation.refusals.AnsweredElsewhere}


def every_refusal(base: type[Refusal] = Refusal) -> Iterator[type[Refusal]]:
    for subclass in base.__subclasses__():
        yield subclass
        yield from every_refusal(subclass)


def test_every_refusal_has_its_case_in_the_one_text_function() -> None:
    source = inspect.getsource(refusal_text)
    missing = [r.__name__ for r in every_refusal() if r not in SILENT and f"case {r.__name__}(" not in source]
    assert missing == []


@pytest.mark.parametrize("locale", sorted(i18n.SUPPORTED))
@pytest.mark.parametrize(
    "refusal",
    [
        ChatOff(),
        InlineOptionInvalid(option="--ar", given=None),
        InlineOptionInvalid(option="--ar", given="7:3"),
        ReplyTargetHidden(),
        ChannelNotPostable(),
    ],
    ids=lambda r: type(r).__name__,
)
def test_the_conversations_refusals_read_through_the_same_function_in_every_locale(
    refusal: Refusal, locale: str
) -> None:
    text = refusal_text(refusal, locale)
    assert text.strip()
    if isinstance(refusal, InlineOptionInvalid):
        assert "--ar" in text
        assert refusal.given is None or refusal.given in text


@pytest.mark.parametrize("locale", sorted(i18n.SUPPORTED))
@pytest.mark.parametrize(
    "refusal",
    [
        ReferenceTooElongated(position=1, count=1, model="Seedream 4.5", max_ratio=3),
        ReferenceTooElongated(position=2, count=3, model="Seedream 4.5", max_ratio=3),
        ReferenceSideTooShort(position=1, count=1, model="Seedream 4.5", width=10, height=20, min_side=15),
        ReferenceSideTooShort(position=2, count=2, model="Seedream 4.5", width=30, height=13, min_side=15),
    ],
    ids=["elongated-one", "elongated-second", "short-one", "short-second"],
)
def test_a_reference_shape_refusal_names_the_image_the_model_and_its_rule_in_every_locale(
    refusal: ReferenceTooElongated | ReferenceSideTooShort, locale: str
) -> None:
    text = refusal_text(refusal, locale)
    assert "Seedream 4.5" in text
    if refusal.count > 1:
        assert str(refusal.position) in text
    if isinstance(refusal, ReferenceTooElongated):
        assert "3:1" in text
        assert "1:3" in text
    else:
        assert f"{refusal.width}×{refusal.height}" in text
        assert "15" in text

"""Options written into a message's text: taken out of the prompt, their values left for the usual checks."""

from __future__ import annotations

import pytest

from generation.inline_options import InlineOptions, parse_inline_options
from generation.refusals import InlineOptionInvalid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a cat", InlineOptions("a cat")),
        ("a cat --ar 16:9 --n 2", InlineOptions("a cat", n=2, aspect="16:9")),
        ("--ar=3:2 a dog --res 2K", InlineOptions("a dog", aspect="3:2", resolution="2K")),
        ("a fox --model gpt-image-2 at dawn", InlineOptions("a fox at dawn", model="gpt-image-2")),
        ("a cat --aspect 1:1 --resolution 4k", InlineOptions("a cat", aspect="1:1", resolution="4k")),
        # A phone's keyboard turns -- into an em dash; a dash inside the prompt stays.
        ("a — cat —ar 16:9", InlineOptions("a — cat", aspect="16:9")),
        # The last of an option written twice wins; case does not matter.
        ("--N 2 --n 3 owls", InlineOptions("owls", n=3)),
        # Not Imagine's, or not a word of its own: part of the prompt.
        ("a cat --stylize 50 --v 6", InlineOptions("a cat --stylize 50 --v 6")),
        ("a cat--ar 16:9", InlineOptions("a cat--ar 16:9")),
        # Lines are kept.
        ("line one\nline two --n 2", InlineOptions("line one\nline two", n=2)),
        # Values are not checked here: the slash command's checks refuse them with what the model offers.
        ("a cat --ar 7:5 --n 0", InlineOptions("a cat", n=0, aspect="7:5")),
        ("--n 2", InlineOptions("", n=2)),
    ],
)
def test_options_come_out_of_the_prompt(text: str, expected: InlineOptions) -> None:
    assert parse_inline_options(text) == expected


@pytest.mark.parametrize(
    ("text", "option", "given"),
    [
        ("a cat --n two", "n", "two"),
        ("a cat --ar", "ar", None),
        ("a cat --ar --n 2", "ar", None),
        ("a cat --model=", "model", None),
    ],
)
def test_an_option_without_a_readable_value_is_refused(text: str, option: str, given: str | None) -> None:
    with pytest.raises(InlineOptionInvalid) as refused:
        parse_inline_options(text)
    assert (refused.value.option, refused.value.given) == (option, given)

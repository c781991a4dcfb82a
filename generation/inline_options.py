"""Options written into a message's text, as members know them from other image bots: `--ar 16:9`, `--n 2`,
`--res 2k`, `--model gpt-image-2` (docs/members.md, "In the conversation").

Parsing only takes them out of the prompt: their values are checked afterwards exactly like the slash
command's options (generation/admission.py), so `--ar 16:10` is refused with what the model offers. An option
written twice takes its last value; `—ar` (a phone's keyboard turns `--` into an em dash) counts too; anything
else, `--stylize 50` say, stays in the prompt. No I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from generation.refusals import InlineOptionInvalid

# Option names as written (lower case) -> the request's option.
_NAMES: Final = {
    "ar": "aspect",
    "aspect": "aspect",
    "n": "n",
    "res": "resolution",
    "resolution": "resolution",
    "model": "model",
}
# An option starts a word: `--name value`, `--name=value`, or `--name` alone (then it has no value). A value never
# starts with a dash run of its own: `--ar --n 2` is an aspect without a value.
_OPTION: Final = re.compile(
    r"(?<!\S)(?:--|—)(?P<name>[A-Za-z]+)(?:=(?P<joined>\S*)|[ \t]+(?P<value>(?!--|—)\S+))?(?!\S)"
)
_SPACES: Final = re.compile(r"[ \t]{2,}")


@dataclass(frozen=True)
class InlineOptions:
    """A message's text without its options, and the options (None: not written)."""

    prompt: str
    n: int | None = None
    aspect: str | None = None
    resolution: str | None = None
    model: str | None = None


def parse_inline_options(text: str) -> InlineOptions:
    """Take Imagine's options out of `text`; `InlineOptionInvalid` for one without a readable value."""
    found: dict[str, str] = {}

    def take(match: re.Match[str]) -> str:
        name = match["name"].lower()
        option = _NAMES.get(name)
        if option is None:
            return match[0]  # not Imagine's: part of the prompt
        value = match["joined"] if match["joined"] is not None else match["value"]
        if not value:
            raise InlineOptionInvalid(name, None)
        found[option] = value
        return " "

    prompt = _SPACES.sub(" ", _OPTION.sub(take, text)).strip()
    n = None
    if "n" in found:
        try:
            n = int(found["n"])
        except ValueError:
            raise InlineOptionInvalid("n", found["n"]) from None
    return InlineOptions(
        prompt=prompt,
        n=n,
        aspect=found.get("aspect"),
        resolution=found.get("resolution"),
        model=found.get("model"),
    )

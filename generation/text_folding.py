"""Text as the blocked words compare it (generation/blocked_words.py): compatibility forms, case, accents,
invisible characters and look-alike letters undone. Described in docs/admins.md (Blocked words):

- Unicode compatibility forms become the plain letters (NFKC: full-width "ｂａｄ", "ﬁ", "𝐛𝐚𝐝"), case is folded;
- accents are dropped from Latin, Greek and Cyrillic letters ("bád" is "bad"), and a few letters that carry
  their stroke inside ("ø", "ł", "đ") become the plain one;
- invisible characters are removed: format characters (zero-width spaces and joiners, soft hyphens, bidi
  controls, tags), variation selectors, fillers that render as nothing, control characters;
- in a word that mixes Latin with Cyrillic or Greek letters, the look-alikes are read as Latin ("bаd" with a
  Cyrillic "а", "НELL" with a Cyrillic "Н"); a word written in Cyrillic or Greek alone is left as it is. Capitals
  that look like a Latin capital while their small letter does not look like the same small letter ("Н" and "н",
  Greek "Ν" and "ν") keep their case through `fold`, until `latin_if_mixed` knows whether their word mixes scripts.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

# Scripts that write words without spaces between them: their entries match anywhere.
_UNSPACED_RANGES: Final = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x2E80, 0x2FDF),  # CJK radicals
    (0x3005, 0x3007),  # 々 〆 〇
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),  # Katakana extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x3FFFF),  # CJK extensions B and later
)

# Letters whose accents are dropped: Latin, Greek and Cyrillic (elsewhere marks are part of the letter).
_ACCENTED_RANGES: Final = (
    (0x0041, 0x024F),  # Latin, Latin-1, Extended-A and B
    (0x0370, 0x052F),  # Greek, Cyrillic
    (0x1E00, 0x1FFF),  # Latin Extended Additional, Greek Extended
)

# Letters that do not decompose but carry their mark inside.
_STROKED: Final = str.maketrans({"ø": "o", "ł": "l", "đ": "d", "ħ": "h", "ı": "i", "ŧ": "t", "ƀ": "b", "ɨ": "i"})

# Invisible characters that are not format characters (category Cf, removed as a whole).
_INVISIBLE: Final = frozenset(
    {
        0x034F,  # combining grapheme joiner
        0x115F,
        0x1160,
        0x3164,
        0xFFA0,  # Hangul fillers
        0x17B4,
        0x17B5,  # Khmer inherent vowels
        0x180B,
        0x180C,
        0x180D,
        0x180F,  # Mongolian variation selectors
        0x2800,  # braille blank
        *range(0xFE00, 0xFE10),  # variation selectors
        *range(0xE0100, 0xE01F0),  # variation selectors supplement
    }
)

# Cyrillic and Greek letters that look like Latin ones (small letters, text being folded first, but for the capitals
# `fold` keeps).
_LOOKALIKES: Final = str.maketrans(
    {
        "а": "a",
        "е": "e",
        "к": "k",
        "о": "o",
        "р": "p",
        "с": "c",
        "у": "y",
        "х": "x",
        "ѕ": "s",
        "і": "i",
        "ј": "j",
        "һ": "h",
        "ԁ": "d",
        "ԛ": "q",
        "ԝ": "w",
        "α": "a",
        "ε": "e",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "ο": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        # Capitals kept by `fold` (`_CAPITAL_LOOKALIKES`): what they look like as capitals.
        "В": "b",
        "М": "m",
        "Н": "h",
        "Т": "t",
        "Ү": "y",
        "Β": "b",
        "Ζ": "z",
        "Η": "h",
        "Μ": "m",
        "Ν": "n",
        "Υ": "y",
    }
)

# Capitals that look like a Latin capital while their small letter looks like another letter or none ("Н" is "H",
# "н" is not "h"; "Ν" is "N", "ν" reads "v"): case folding would lose what they look like, so `fold` leaves them.
_CAPITAL_LOOKALIKES: Final = frozenset("ВМНТҮΒΖΗΜΝΥ")


_ASCII_CONTROLS: Final = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def _in(ranges: tuple[tuple[int, int], ...], char: str) -> bool:
    point = ord(char)
    return any(low <= point <= high for low, high in ranges)


def unspaced(char: str) -> bool:
    """Whether the character belongs to a script that writes words without spaces."""
    return ord(char) >= 0x0E00 and _in(_UNSPACED_RANGES, char)


def _invisible(char: str) -> bool:
    category = unicodedata.category(char)
    if category == "Cc":
        return char not in "\t\n\r\x0b\x0c"  # whitespace separates; other controls vanish
    return category == "Cf" or ord(char) in _INVISIBLE


def fold(text: str) -> str:
    """The text as it is compared: compatibility forms, case, accents and invisible characters undone (but for the
    case of `_CAPITAL_LOOKALIKES`, folded by `latin_if_mixed` once their word is known)."""
    if text.isascii():
        # Most prompts: nothing to normalize but case and control characters (the quick path, same result).
        return _ASCII_CONTROLS.sub("", text.lower())
    text = unicodedata.normalize("NFKC", text)
    if _CAPITAL_LOOKALIKES.isdisjoint(text):
        text = text.casefold()
    else:
        text = "".join(char if char in _CAPITAL_LOOKALIKES else char.casefold() for char in text)
    text = unicodedata.normalize("NFKC", text)
    text = "".join(char for char in text if not _invisible(char))
    kept: list[str] = []
    base_accented = False
    for char in unicodedata.normalize("NFKD", text):
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me"):
            if base_accented:
                continue
        else:
            base_accented = _in(_ACCENTED_RANGES, char)
        kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept)).translate(_STROKED)


def latin_if_mixed(word: str) -> str:
    """A word mixing Latin with Cyrillic or Greek letters, with the look-alikes read as Latin."""
    latin = other = False
    for char in word:
        if "a" <= char <= "z":
            latin = True
        elif 0x0370 <= ord(char) <= 0x052F:
            other = True
    if latin and other:
        return word.translate(_LOOKALIKES)
    # Cyrillic or Greek alone: the capitals `fold` kept are folded now, so that it reads as written.
    return word.casefold() if other and not _CAPITAL_LOOKALIKES.isdisjoint(word) else word

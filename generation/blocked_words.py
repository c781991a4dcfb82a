"""A server's blocked words: does a prompt contain one? Pure and quick: it runs before the first response.

What is caught is described in docs/admins.md (Blocked words). The prompt and every entry are read the same
way (`fold`, then `_tokens`):

- Unicode compatibility forms become the plain letters (NFKC: full-width "ｂａｄ", "ﬁ", "𝐛𝐚𝐝"), case is folded;
- accents are dropped from Latin, Greek and Cyrillic letters ("bád" is "bad"), and a few letters that carry
  their stroke inside ("ø", "ł", "đ") become the plain one;
- invisible characters are removed: format characters (zero-width spaces and joiners, soft hyphens, bidi
  controls, tags), variation selectors, fillers that render as nothing, control characters;
- everything that is neither a letter nor a digit (spaces, punctuation, "_", symbols) separates words, and a
  word also ends where a script without spaces (Chinese, Japanese, Thai...) meets another, so "这是bad的"
  holds the word "bad";
- in a word that mixes Latin with Cyrillic or Greek letters, the look-alikes are read as Latin ("bаd" with a
  Cyrillic "а"); a word written in Cyrillic or Greek alone is left as it is.

An entry written in a script that separates words with spaces matches whole words, in order, whatever
separates them: "ass" matches "ass", "ASS!" and "a.s.s" but not "class" nor "assassin", and "real person"
matches "real-person". One-letter words in a row are also read as one word, so that spelling a word out does
not get it through: "b a d", "b.a.d", "b-a-d", "b_a_d" read as "bad", and "b a d w o r d" as "bad word". A row
is cut where what glues its letters changes ("a b.a.d" is "a" and "bad"), and when only blanks part them, a
one-letter word of the prose may stand at either end ("a b a d idea"). Ordinary prose, whose one-letter words
stand alone ("a cat"), reads the same; a spelled-out word counts whole, so "c l a s s" is not "ass" (though
"b a s s", one letter off, is). An entry in a script without spaces matches anywhere, separators between its
characters ignored ("裸 体" holds "裸体").

Leetspeak ("b4d", "a$$") is not undone: digits and symbols inside words are ordinary in prompts ("4k", "h2o",
"r2d2", "$5 bill"), and reading them as letters would refuse such prompts.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

MAX_ENTRY_LENGTH: Final = 100
"""Characters an entry may have as typed: words or short phrases."""
MIN_SPACED_LENGTH: Final = 2
"""A one-letter entry in a spaced script ("c++" reads as "c") would refuse nearly every prompt."""

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

# Cyrillic and Greek letters that look like Latin ones (lower case: text is folded first).
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
    }
)


_ASCII_CONTROLS: Final = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_ASCII_WORDS: Final = re.compile(r"[a-z0-9]+")


def _in(ranges: tuple[tuple[int, int], ...], char: str) -> bool:
    point = ord(char)
    return any(low <= point <= high for low, high in ranges)


def _unspaced(char: str) -> bool:
    """Whether the character belongs to a script that writes words without spaces."""
    return ord(char) >= 0x0E00 and _in(_UNSPACED_RANGES, char)


def _invisible(char: str) -> bool:
    category = unicodedata.category(char)
    if category == "Cc":
        return char not in "\t\n\r\x0b\x0c"  # whitespace separates; other controls vanish
    return category == "Cf" or ord(char) in _INVISIBLE


def fold(text: str) -> str:
    """The text as it is compared: compatibility forms, case, accents and invisible characters undone."""
    if text.isascii():
        # Most prompts: nothing to normalize but case and control characters (the quick path, same result).
        return _ASCII_CONTROLS.sub("", text.lower())
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
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


@dataclass(frozen=True)
class _Word:
    text: str
    unspaced: bool
    glue: str = " "
    """What separates it from the word before: " " for blanks alone, else the other characters between them."""

    @property
    def letter(self) -> bool:
        """A one-letter word of a spaced script: perhaps a word spelled out."""
        return not self.unspaced and len(self.text) == 1 and self.text.isalpha()


def _glue(gap: str) -> str:
    return "".join(char for char in gap if not char.isspace()) or " "


def _is_word_char(char: str) -> bool:
    return char.isalnum() or unicodedata.category(char)[0] == "M"


def _tokens(folded: str) -> list[_Word]:
    """The words of folded text: runs of letters, digits and marks, split where a script without spaces meets
    another."""
    if folded.isascii():
        words_found: list[_Word] = []
        end = 0
        for found in _ASCII_WORDS.finditer(folded):
            words_found.append(_Word(found.group(), False, _glue(folded[end : found.start()])))
            end = found.end()
        return words_found
    words: list[_Word] = []
    current: list[str] = []
    gap: list[str] = []
    current_unspaced = False

    def close() -> None:
        if current:
            text = "".join(current)
            if not current_unspaced:
                text = _latin_if_mixed(text)
            words.append(_Word(text, current_unspaced, _glue("".join(gap))))
            current.clear()
            gap.clear()

    for char in folded:
        if not _is_word_char(char):
            close()
            gap.append(char)
            continue
        unspaced = _unspaced(char)
        if current and unspaced != current_unspaced and unicodedata.category(char)[0] != "M":
            close()
        if not current:
            current_unspaced = unspaced
        current.append(char)
    close()
    return words


def _latin_if_mixed(word: str) -> str:
    """A word mixing Latin with Cyrillic or Greek letters, with the look-alikes read as Latin."""
    latin = other = False
    for char in word:
        if "a" <= char <= "z":
            latin = True
        elif 0x0370 <= ord(char) <= 0x052F:
            other = True
    return word.translate(_LOOKALIKES) if latin and other else word


@dataclass(frozen=True)
class _Run:
    """One-letter words read as one word; `loose` when only blanks part them (a one-letter word of the prose,
    "a" or "I", may then stand at either end: "a b a d idea")."""

    text: str
    loose: bool


def _spelled_out(words: list[_Word]) -> tuple[list[str], list[_Run]]:
    """The words with every run of one-letter words read as one word ("b.a.d" -> "bad"), and those runs."""
    joined: list[str] = []
    runs: list[_Run] = []
    index = 0
    while index < len(words):
        if not words[index].letter:
            joined.append(words[index].text)
            index += 1
            continue
        end = index
        while end + 1 < len(words) and words[end + 1].letter:
            end += 1
        for run in _runs(words[index : end + 1]):
            joined.append(run.text)
            if len(run.text) > 1:
                runs.append(run)
        index = end + 1
    return joined, runs


def _runs(letters: list[_Word]) -> list[_Run]:
    """One-letter words in a row, cut into runs where what glues them changes: "a b.a.d" is "a" and "bad".

    A letter between two kinds of glue goes to the run glued by punctuation (blanks are how words are parted),
    or else to the run before it.
    """
    groups: list[list[Any]] = []  # [first letter, last letter, glue]
    for position in range(1, len(letters)):
        glue = letters[position].glue
        if groups and groups[-1][2] == glue:
            groups[-1][1] = position
        else:
            groups.append([position - 1, position, glue])
    if not groups:
        return [_Run(letters[0].text, False)]
    for before, after in itertools.pairwise(groups):
        if before[2] == " " and after[2] != " ":
            before[1] -= 1
        else:
            after[0] += 1
    return [
        _Run("".join(letter.text for letter in letters[first : last + 1]), glue == " ")
        for first, last, glue in groups
        if first <= last
    ]


def canonical(entry: str) -> str | None:
    """An entry as it is stored and compared: its words, folded, one space apart (joined without spaces in a
    script that has none). None for an entry that could never match sensibly: nothing but punctuation, or a
    single letter of a spaced script."""
    words = _tokens(fold(entry))
    if not words:
        return None
    if any(word.unspaced for word in words):
        return "".join(word.text for word in words)
    text = " ".join(word.text for word in words)
    return text if len(text) >= MIN_SPACED_LENGTH else None


def anywhere(entry: str) -> bool:
    """Whether a canonical entry matches anywhere (it is written in a script without spaces), not whole words."""
    return any(_unspaced(char) for char in entry)


@dataclass(frozen=True)
class ParsedEntries:
    """What an admin typed, read as entries: those that can be used (canonical, in order, without twins), and
    those that cannot (as typed)."""

    usable: tuple[str, ...]
    unusable: tuple[str, ...]


_SEPARATORS: Final = re.compile(r"[,\n，、،]")


def parse_entries(typed: str) -> ParsedEntries:
    """Entries from an admin's text: separated by commas (also the full-width ，, the ideographic 、 and the Arabic
    ، that Chinese, Japanese and Arabic keyboards type) or new lines, each a word or a short phrase."""
    usable: list[str] = []
    unusable: list[str] = []
    for piece in _SEPARATORS.split(typed):
        piece = piece.strip()
        if not piece:
            continue
        entry = canonical(piece) if len(piece) <= MAX_ENTRY_LENGTH else None
        if entry is None:
            unusable.append(piece)
        elif entry not in usable:
            usable.append(entry)
    return ParsedEntries(tuple(usable), tuple(unusable))


class BlockedWords:
    """A server's entries, ready to be looked for in prompts."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        whole: list[str] = []
        inside: list[str] = []
        for entry in entries:
            text = canonical(entry)
            if text is None:
                continue
            (inside if anywhere(text) else whole).append(text)
        self._whole = tuple(sorted(set(whole)))
        self._inside = tuple(sorted(set(inside)))

    def __len__(self) -> int:
        return len(self._whole) + len(self._inside)

    def find(self, text: str) -> str | None:
        """The first entry the text contains (canonical), or None. Never shown to members."""
        if not self._whole and not self._inside:
            return None
        words = _tokens(fold(text))
        if self._whole:
            plain = " " + " ".join(word.text for word in words) + " "
            spelled, runs = _spelled_out(words)
            joined = " " + " ".join(spelled) + " "
            # What each run may spell: itself, or, when blanks part its letters, itself without a letter of the
            # prose at either end. A phrase spelled out whole is one run: "b a d w o r d" holds "bad word".
            spellings = {run.text for run in runs}
            spellings.update(
                cut for run in runs if run.loose and len(run.text) > 2 for cut in (run.text[1:], run.text[:-1])
            )
            spellings.update(run.text[1:-1] for run in runs if run.loose and len(run.text) > 3)
            for entry in self._whole:
                padded = f" {entry} "
                if padded in plain or padded in joined or entry.replace(" ", "") in spellings:
                    return entry
        if self._inside:
            compact = "".join(word.text for word in words)
            for entry in self._inside:
                if entry in compact:
                    return entry
        return None

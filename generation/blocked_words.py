"""A server's blocked words: does a prompt contain one? Pure and quick: it runs before the first response.

What is caught is described in docs/admins.md (Blocked words). The prompt and every entry are read the same
way: folded (generation/text_folding.py: compatibility forms, case, accents, invisible characters and
look-alike letters undone), then cut into words (`_tokens`): everything that is neither a letter nor a digit
(spaces, punctuation, "_", symbols) separates words, and a word also ends where a script without spaces
(Chinese, Japanese, Thai...) meets another, so "这是bad的" holds the word "bad".

An entry written in a script that separates words with spaces matches whole words, in order, whatever
separates them: "ass" matches "ass", "ASS!" and "a.s.s" but not "class" nor "assassin", and "real person"
matches "real-person". Pieces that may be one word cut up are also read together (`_readings`):

- pieces parted by punctuation alone, no blank: "dra-gon", "dr.ag.on", "n_aked", "nak*ed" read as "dragon" and
  "naked" (and "x-dra-gon" holds "dragon"). An apostrophe alone does not glue: "he'll" is not "hell";
- one-letter words in a row, whatever parts them, so that spelling a word out does not get it through:
  "b a d", "b.a.d", "b a.d", "d r a g-o-n" read as "bad" and "dragon", and "b a d w o r d" as "bad word". A
  spelled-out word counts whole, so "c l a s s" is not "ass" (though "b a s s", one letter off, is); it is cut
  only where blanks meet punctuation ("x b.a.d") or to leave out a one-letter word of the prose at an end
  ("a b a d idea").

A reading always takes whole pieces, so an ordinary word that merely contains an entry never matches. Pieces
parted by blanks are not joined unless they are single letters: prose is made of short words ("an Al Capone"
is not "anal"), and "I saw a d. ragon" is read as written. An entry in a script without spaces matches
anywhere, separators between its characters ignored ("裸 体" holds "裸体").

Leetspeak ("b4d", "a$$") is not undone: digits and symbols inside words are ordinary in prompts ("4k", "h2o",
"r2d2", "$5 bill"), and reading them as letters would refuse such prompts.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from generation.text_folding import fold, latin_if_mixed, unspaced

MAX_ENTRY_LENGTH: Final = 100
"""Characters an entry may have as typed: words or short phrases."""
MIN_SPACED_LENGTH: Final = 2
"""A one-letter entry in a spaced script ("c++" reads as "c") would refuse nearly every prompt."""

_ASCII_WORDS: Final = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class _Word:
    text: str
    unspaced: bool
    tight: bool = False
    """Parted from the word before by punctuation alone, no blank ("dra-gon", "n_aked"): perhaps one word cut up.
    An apostrophe alone does not count: "he'll" is two words, not "hell"."""
    blank: bool = True
    """Parted from the word before by blanks alone (or by nothing, where two scripts meet)."""

    @property
    def letter(self) -> bool:
        """A one-letter word of a spaced script: perhaps a word spelled out."""
        return not self.unspaced and len(self.text) == 1 and self.text.isalpha()


_APOSTROPHES: Final = frozenset("'’‘ʼ")


def _gap(gap: str) -> tuple[bool, bool]:
    """What parts a word from the one before, as (`_Word.tight`, `_Word.blank`)."""
    if not gap or gap.isspace():
        return False, True
    if any(char.isspace() for char in gap):
        return False, False
    return not all(char in _APOSTROPHES for char in gap), False


def _is_word_char(char: str) -> bool:
    return char.isalnum() or unicodedata.category(char)[0] == "M"


def _tokens(folded: str) -> list[_Word]:
    """The words of folded text: runs of letters, digits and marks, split where a script without spaces meets
    another."""
    if folded.isascii():
        words_found: list[_Word] = []
        end = 0
        for found in _ASCII_WORDS.finditer(folded):
            words_found.append(_Word(found.group(), False, *_gap(folded[end : found.start()])))
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
                text = latin_if_mixed(text)
            words.append(_Word(text, current_unspaced, *_gap("".join(gap))))
            current.clear()
            gap.clear()

    for char in folded:
        if not _is_word_char(char):
            close()
            gap.append(char)
            continue
        char_unspaced = unspaced(char)
        if current and char_unspaced != current_unspaced and unicodedata.category(char)[0] != "M":
            close()
        if not current:
            current_unspaced = char_unspaced
        current.append(char)
    close()
    return words


Span = tuple[int, int]
"""Words `first` to `last` (both included) of a text, read as one word."""


@dataclass
class _Readings:
    """Every way to read a text's words as whole words: `spans` of each reading, and those `spelled` out
    (one-letter words alone, two at least)."""

    spans: dict[str, list[Span]]
    spelled: set[str]

    def holds(self, entry: str) -> bool:
        """Whether a canonical entry of a spaced script is read here: its words in order, one after the other, or
        a phrase spelled out whole ("b a d w o r d" holds "bad word")."""
        parts = entry.split(" ")
        ends = {last for _, last in self.spans.get(parts[0], ())}
        for part in parts[1:]:
            ends = {last for first, last in self.spans.get(part, ()) if first - 1 in ends}
        return bool(ends) or (len(parts) > 1 and "".join(parts) in self.spelled)


def _joinable(before: _Word, word: _Word) -> bool:
    """Whether two words in a row may be pieces of one: parted by punctuation alone, or two letters spelled out."""
    if before.unspaced or word.unspaced:
        return False
    return word.tight or (before.letter and word.letter)


def _readings(words: list[_Word], wanted: frozenset[str], longest: int) -> _Readings:
    """Each word, and the pieces in a row that may be one word read together, kept only when they read as one of
    the `wanted` words (none is longer than `longest`: the work stays bounded on long prompts)."""
    readings = _Readings({}, set())
    for index, word in enumerate(words):
        readings.spans.setdefault(word.text, []).append((index, index))
    first = 0
    while first < len(words):
        last = first
        while last + 1 < len(words) and _joinable(words[last], words[last + 1]):
            last += 1
        if last > first:
            _read_chain(words, (first, last), wanted, longest, readings)
        first = last + 1
    return readings


def _read_chain(words: list[_Word], chain: Span, wanted: frozenset[str], longest: int, readings: _Readings) -> None:
    """The readings of pieces that may be one word ("dr.ag.on", "d r a g-o-n", "a b.a.d").

    A reading takes whole pieces, never part of one, so "class" never reads "ass". Pieces glued by punctuation
    may be read from any of them on ("x-dra-gon" holds "dragon"). Letters spelled out are read whole, whatever
    parts them ("c l a s s" is "class", not "ass"; "b a.d" is "bad"), cut only where `_may_cut` says.
    """
    first, last = chain
    for start in range(first, last + 1):
        if not _may_cut(words, chain, start - 1, start):
            continue
        text = ""
        spelled = True
        for end in range(start, last + 1):
            text += words[end].text
            spelled = spelled and words[end].letter
            if len(text) > longest:
                break
            if end == start or text not in wanted or not _may_cut(words, chain, end, end + 1):
                continue
            readings.spans.setdefault(text, []).append((start, end))
            if spelled:
                readings.spelled.add(text)


def _may_cut(words: list[_Word], chain: Span, before: int, after: int) -> bool:
    """Whether a reading may end at `before` or begin at `after`, two words in a row of the chain (or its ends)."""
    first, last = chain
    if before < first or after > last:
        return True
    if not (words[before].letter and words[after].letter):
        return True
    if not words[after].blank:
        return False
    # Letters parted by blanks: cut to leave out a one-letter word of the prose at an end ("a b a d idea"), or where
    # the glue changes, blanks on one side and punctuation on the other ("x b.a.d").
    at_an_end = before == first or after == last
    glue_changes = (before > first and not words[before].blank) or (after < last and not words[after + 1].blank)
    return at_an_end or glue_changes


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
    return any(unspaced(char) for char in entry)


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
        # What pieces read together may usefully spell: a word of an entry, or a phrase spelled out whole.
        self._wanted = frozenset(
            itertools.chain.from_iterable((*entry.split(" "), entry.replace(" ", "")) for entry in self._whole)
        )
        self._longest = max(map(len, self._wanted), default=0)

    def __len__(self) -> int:
        return len(self._whole) + len(self._inside)

    def find(self, text: str) -> str | None:
        """The first entry the text contains (canonical), or None. Never shown to members."""
        if not self._whole and not self._inside:
            return None
        words = _tokens(fold(text))
        if self._whole:
            readings = _readings(words, self._wanted, self._longest)
            for entry in self._whole:
                if readings.holds(entry):
                    return entry
        if self._inside:
            compact = "".join(word.text for word in words)
            for entry in self._inside:
                if entry in compact:
                    return entry
        return None

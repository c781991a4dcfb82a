"""The blocked-words matcher: every usual evasion caught, ordinary words that merely contain an entry left alone."""

from __future__ import annotations

import random
import string

import pytest

from generation import blocked_words
from generation.blocked_words import BlockedWords, canonical, parse_entries
from generation.text_folding import fold

# -- evasions ------------------------------------------------------------------------------------------------------

# Ways to write "bad" that a member might try, each of which must still read as "bad".
EVASIONS_OF_BAD = {
    "plain": "bad",
    "capitals": "BAD",
    "title case": "Bad",
    "full-width": "ｂａｄ",
    "mathematical bold": "𝐛𝐚𝐝",
    "circled letters": "ⓑⓐⓓ",
    "acute accent": "bád",
    "grave and umlaut": "bàd̈",
    "combining marks": "b\u0301a\u0308d\u0323",
    "dot above": "ḃad",
    "zero-width space": "b\u200bad",
    "zero-width non-joiner": "ba\u200cd",
    "zero-width joiner": "b\u200da\u200dd",
    "word joiner": "b\u2060ad",
    "soft hyphen": "ba\u00add",
    "byte order mark": "\ufeffbad",
    "bidi override": "b\u202ead\u202c",
    "left-to-right mark": "b\u200ea\u200ed",
    "variation selector": "b\ufe0fad",
    "tag character": "ba\U000e0062d",
    "grapheme joiner": "b\u034fad",
    "hangul filler": "ba\u3164d",
    "control character": "b\x00a\x07d",
    "dots": "b.a.d",
    "spaces": "b a d",
    "dashes": "b-a-d",
    "underscores": "b_a_d",
    "stars": "b*a*d",
    "slashes": "b/a/d",
    "wide spaces": "b  a\u3000 d",
    "tabs and new lines": "b\ta\nd",
    "ellipses": "b…a…d",
    "cyrillic a in a latin word": "bаd",
    "greek omicron in a latin word": "bοd".replace("ο", "a").replace("a", "\u03b1"),
    "inside chinese": "这是bad的",
    "inside japanese": "とてもbadです",
    "blanks then a dot": "b a.d",
    "a dot then a blank": "b.a d",
    "a dash then a dot": "b-a.d",
}


@pytest.mark.parametrize("written", EVASIONS_OF_BAD.values(), ids=EVASIONS_OF_BAD.keys())
def test_every_usual_evasion_of_a_word_is_caught(written: str) -> None:
    matcher = BlockedWords(["bad"])
    assert matcher.find(f"a {written} idea") == "bad"
    assert matcher.find(written) == "bad"
    assert matcher.find(f"({written})!") == "bad"


# A word cut into pieces by punctuation, or spelled out with separators of several kinds.
CUT_UP = [
    ("dragon", "dra-gon"),
    ("dragon", "d.ragon"),
    ("dragon", "dr.ag.on"),
    ("dragon", "d r a g-o-n"),
    ("dragon", "the d.ragon's lair"),
    ("dragon", "I saw a d.ragon"),
    ("dragon", "a x-dra-gon"),
    ("naked", "na.ked"),
    ("naked", "nak*ed"),
    ("naked", "n_aked"),
    ("naked", "a NA/KED man"),
    ("bad", "x y b.a.d"),
    ("bad", "a b a d a"),
    ("hell", "hel-l"),
]


@pytest.mark.parametrize(("entry", "written"), CUT_UP, ids=[written for _, written in CUT_UP])
def test_a_word_cut_up_by_punctuation_or_spelled_out_is_read_whole(entry: str, written: str) -> None:
    assert BlockedWords([entry]).find(written) == entry


PHRASE_EVASIONS = [
    "a real person here",
    "a REAL-PERSON here",
    "real_person",
    "real\u200b person",
    "réal  pérson",
    "ｒｅａｌ　ｐｅｒｓｏｎ",
    "r.e.a.l p.e.r.s.o.n",
    "r e a l p e r s o n",
    "re.al per-son",
    "r e a l p-e-r-s-o-n",
]


@pytest.mark.parametrize("written", PHRASE_EVASIONS)
def test_a_phrase_matches_its_words_in_order_whatever_separates_them(written: str) -> None:
    assert BlockedWords(["Real Person"]).find(written) == "real person"


@pytest.mark.parametrize(
    "written",
    ["a real, not a person", "person real", "realperson", "re.alperson", "a really personal touch", "unreal person"],
)
def test_a_phrase_does_not_match_its_words_apart_or_inside_others(written: str) -> None:
    assert BlockedWords(["real person"]).find(written) is None


# -- false positives -----------------------------------------------------------------------------------------------

# An entry, and ordinary text that merely contains it inside longer words.
INNOCENT = [
    ("ass", "a classy class in a glass house with bass, passion and an assassin; assess the mass"),
    ("ass", "c.l.a.s.s"),
    ("hell", "hello from the shell"),
    ("cock", "a cocktail and a peacock"),
    ("rapist", "my therapist"),
    ("sex", "Sussex, a sextant, Essex"),
    ("anal", "an analysis of the canal"),
    ("cum", "a cucumber on a document"),
    ("tit", "the title of a titan's petition"),
    ("gore", "Gorey, Gregory and a gored gorgeous gorge"),
    ("bad", "Baden-Baden, a badge, badminton"),
    ("war", "a warm award, toward Warsaw"),
    ("ass", "first-class, a glass-house, c.l.a.s.s, a.s.s.e.t"),
    ("hell", "he'll come, she'll stay"),  # an apostrophe does not glue pieces
    ("dragon", "I saw a d. ragon, then Dr. Agon, a dragonfly and a snap-dragonfly"),
    ("dragon", "dra gon"),  # pieces parted by blanks are words of the prose...
    ("anal", "a portrait of an Al Capone"),  # ...as here
    ("bad", "ba dragonfly, abad"),
    ("naked", "snaked, na'ked"),
]


@pytest.mark.parametrize(("entry", "text"), INNOCENT, ids=[f"{entry}: {text[:20]}" for entry, text in INNOCENT])
def test_ordinary_words_that_merely_contain_an_entry_are_not_caught(entry: str, text: str) -> None:
    assert BlockedWords([entry]).find(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "a cat, a dog and I",
        "I am a painter",
        "4k, h2o, r2d2, mp3 and a $5 bill",
        "Plan B",
        "x y",  # two one-letter words read as "xy": no entry is "xy"
        "ассистент и робот",  # Russian alone: no Latin look-alike is read into it
    ],
)
def test_prose_with_one_letter_words_leetspeak_looks_and_cyrillic_is_left_alone(text: str) -> None:
    assert BlockedWords(["bad", "ass", "cat dog", "ac", "pa", "a cat dog", "accnctent"]).find(text) is None


def test_leetspeak_is_not_undone() -> None:
    # Digits and symbols inside words are ordinary in prompts; reading them as letters would refuse such prompts.
    assert BlockedWords(["bad", "ass"]).find("b4d a$$ 455") is None


def test_look_alikes_count_only_in_words_that_mix_scripts() -> None:
    # "рор" is Cyrillic alone (it reads "pop" to the eye, and is left as it is); "pоp" mixes Latin and Cyrillic.
    matcher = BlockedWords(["pop"])
    assert matcher.find("рор") is None
    assert matcher.find("pоp") == "pop"


# Capitals of Cyrillic and Greek that look like Latin capitals, though their small letters do not look like the
# same Latin letter ("Н" is "H", "н" is not "h"; Greek "Ν" is "N", "ν" reads "v"): read before case is folded away.
CAPITAL_LOOK_ALIKES = {
    "cyrillic en": ("hell", "\u041dELL"),
    "greek eta": ("hell", "\u0397ELL"),
    "greek nu": ("nazi", "\u039dAZI"),
    "cyrillic ve": ("bad", "\u0412AD"),
    "greek beta": ("bad", "\u0392AD"),
    "cyrillic em": ("milf", "\u041cILF"),
    "greek mu": ("milf", "\u039cILF"),
    "cyrillic te": ("tit", "\u0422IT"),
    "greek upsilon": ("yes", "\u03a5ES"),
    "cyrillic straight u": ("yes", "\u04aeES"),
    "greek zeta": ("zoo", "\u0396OO"),
    "two cyrillic capitals": ("hell", "\u041d\u0415LL"),
    "in a sentence": ("nazi", "a \u039dAZI flag"),
}


@pytest.mark.parametrize(("entry", "written"), CAPITAL_LOOK_ALIKES.values(), ids=CAPITAL_LOOK_ALIKES.keys())
def test_capital_look_alikes_in_a_latin_word_are_read_as_latin(entry: str, written: str) -> None:
    assert BlockedWords([entry]).find(written) == entry


def test_words_in_cyrillic_or_greek_capitals_alone_are_left_as_they_are() -> None:
    # Pure Cyrillic or Greek, in capitals or not, is compared as written: its entries match, no Latin is read in.
    assert BlockedWords(["нет"]).find("НЕТ и ΝΑΙ") == "нет"
    assert BlockedWords(["ναι"]).find("НЕТ и ΝΑΙ") == "ναι"
    assert BlockedWords(["hem", "nai", "bet"]).find("НЕМ ΝΑΙ ВЕТ") is None
    assert canonical("НЕТ") == "нет"


# -- scripts without spaces ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "text"),
    [
        ("裸体", "一个裸体的人"),
        ("裸体", "裸 体"),
        ("裸体", "裸.体"),
        ("裸体", "裸\u200b体"),
        ("ヌード", "ﾇｰﾄﾞの絵"),  # half-width katakana
        ("ヌード", "きれいなヌード写真"),
        ("ยาเสพติด", "ขายยาเสพติดที่นี่"),
        ("ยาเสพติด", "ยา เสพ ติด"),
        ("AV女优", "一个av 女优"),
    ],
)
def test_chinese_japanese_and_thai_entries_match_anywhere(entry: str, text: str) -> None:
    assert BlockedWords([entry]).find(text) == canonical(entry)


def test_text_without_spaces_is_not_matched_against_a_different_script() -> None:
    matcher = BlockedWords(["ass", "裸体"])
    assert matcher.find("这是class的") is None
    assert matcher.find("这是ass的") == "ass"
    assert matcher.find("裸") is None


# -- entries -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("  Bad   WORD ", "bad word"),
        ("Ｒｅａｌ-Person", "real person"),
        ("Café!", "cafe"),
        ("Straße", "strasse"),
        ("ł ø đ", "l o d"),
        ("裸 体", "裸体"),
        ("Ab", "ab"),
        ("c++", None),
        ("!!!", None),
        ("x", None),
        ("\u200b", None),
        ("裸", "裸"),
    ],
)
def test_an_entry_is_stored_as_it_is_compared(typed: str, stored: str | None) -> None:
    assert canonical(typed) == stored


def test_canonical_entries_are_stable_and_always_match_themselves() -> None:
    entries = [typed for typed, _ in INNOCENT] + list(EVASIONS_OF_BAD.values()) + PHRASE_EVASIONS + ["裸 体", "ヌード"]
    for typed in entries:
        entry = canonical(typed)
        assert entry is not None, typed
        assert canonical(entry) == entry
        assert BlockedWords([typed]).find(typed) == entry


def test_entries_typed_by_an_admin_are_split_folded_and_deduplicated() -> None:
    parsed = parse_entries("Bad, bad word\nBAD,, c++ ,  " + "x" * 101 + ", 裸体")
    assert parsed.usable == ("bad", "bad word", "裸体")
    assert parsed.unusable == ("c++", "x" * 101)


def test_entries_may_be_separated_as_chinese_and_japanese_keyboards_type_commas() -> None:
    assert parse_entries("裸体，血腥、暴力, gore").usable == ("裸体", "血腥", "暴力", "gore")


def test_an_empty_list_matches_nothing() -> None:
    matcher = BlockedWords([])
    assert len(matcher) == 0
    assert matcher.find("anything at all") is None
    assert len(BlockedWords(["bad", "BAD", "c++"])) == 1


# -- the quick path for plain ASCII --------------------------------------------------------------------------------


def test_plain_ascii_reads_exactly_as_the_general_path_would() -> None:
    # The general path runs for any text with one non-ASCII character: appending one after a separator must not
    # change how the rest reads.
    generator = random.Random(7)
    alphabet = string.printable + "\x00\x07\x1b\x7f"
    for _ in range(2000):
        text = "".join(generator.choice(alphabet) for _ in range(generator.randint(0, 40)))
        quick = [(word.text, word.tight, word.blank) for word in blocked_words._tokens(fold(text))]
        general = [(word.text, word.tight, word.blank) for word in blocked_words._tokens(fold(text + " é"))]
        assert general[:-1] == quick, repr(text)
        assert general[-1][0] == "e"


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("a b a d idea", "bad"),  # the article stands at the start of the spelled-out word
        ("b a d a cat", "bad"),
        ("a b.a.d idea", "bad"),  # cut where the glue changes
        ("b.a.d w.o.r.d", "bad word"),
        ("a b a d w o r d", "bad word"),
        ("b a d_word", "bad word"),
        ("c l a s s", None),  # spelled out whole, "class" is not "ass"
        ("a b c d e f g", None),
        ("a bad day", "bad"),
        ("U.S.A.", None),
    ],
)
def test_spelled_out_words_are_read_whole(text: str, found: str | None) -> None:
    entries = ["bad word", "ass"] if found == "bad word" else ["bad", "ass"]
    assert BlockedWords(entries).find(text) == found

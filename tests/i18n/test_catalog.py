"""The message catalog: complete in every supported locale, the same placeholders everywhere, Discord's limits
kept, every key the code names present; and the locale rules, plurals, numbers and the pseudo-locale."""

from __future__ import annotations

import ast
import gettext
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.plurals import get_plural

import i18n
from i18n.catalog import LOCALES_DIR, load_catalogs, po_path, problems, read_catalog
from i18n.locales import babel_name, resolve
from tests.e2e.harness import ROOT

# Where the code names message keys, and the functions that take a key first.
KEY_FUNCTIONS = {"translate": None, "plural": None, "command_text": None, "t": None, "template": None}
CODE = sorted([ROOT / "bot.py", *(ROOT / "cogs").glob("*.py")])
# Command texts: Discord takes at most 100 characters of a description or a choice name, 32 of a menu name.
DESCRIBED = ("command.", "option.", "choice.", "aspect.", "resolution.")

SOURCE_PO = po_path(i18n.SOURCE)
KEY_SHAPE = re.compile(r"[a-z_]+(\.[a-z0-9_:\-]+)+")


# -- complete and consistent ---------------------------------------------------------------------------------


def test_the_supported_locales_are_the_translated_ones_in_planned_order() -> None:
    # Every catalog on disk is spoken (and complete: the next test), in the order of PLANNED, English first.
    translated = {path.name.replace("_", "-") for path in LOCALES_DIR.iterdir() if path.is_dir()}
    assert tuple(locale for locale in i18n.PLANNED if locale in translated) == i18n.SUPPORTED
    assert i18n.SUPPORTED[0] == i18n.SOURCE
    assert i18n.PSEUDO not in i18n.SUPPORTED


@pytest.mark.parametrize("locale", i18n.SUPPORTED)
def test_every_supported_locale_has_every_text_with_the_same_placeholders(locale: str) -> None:
    loaded = load_catalogs([locale])
    assert problems(loaded[i18n.SOURCE], loaded[locale]) == []
    assert len(loaded[i18n.SOURCE].texts) > 100


def test_a_catalog_on_disk_is_complete_or_not_there() -> None:
    # A locale's file may be added before it is listed as supported; once there it must be complete too.
    folders = sorted(path.name for path in LOCALES_DIR.iterdir() if path.is_dir())
    source = read_catalog(i18n.SOURCE, SOURCE_PO)
    for folder in folders:
        locale = folder.replace("_", "-")
        assert locale in i18n.PLANNED, folder
        assert problems(source, read_catalog(locale, po_path(locale))) == []


def write_po(path: Path, entries: str, plural_forms: str = "nplurals=2; plural=(n != 1);") -> Path:
    path.write_text(
        f'msgid ""\nmsgstr ""\n"Language: ja\\n"\n"Plural-Forms: {plural_forms}\\n"\n\n{entries}', encoding="utf-8"
    )
    return path


def test_the_check_names_a_missing_text_a_changed_placeholder_and_a_wrong_plural(tmp_path: Path) -> None:
    source = read_catalog(
        "en-US",
        write_po(
            tmp_path / "en.po",
            'msgid "a"\nmsgstr "Hello {name}"\n\n'
            'msgid "b"\nmsgstr "Bye"\n\n'
            'msgid "c"\nmsgid_plural "c"\nmsgstr[0] "{count} image"\nmsgstr[1] "{count} images"\n\n'
            'msgid "d"\nmsgstr "{bot} is here"\n',
        ),
    )
    other = read_catalog(
        "ja",
        write_po(
            tmp_path / "ja.po",
            'msgid "a"\nmsgstr "こんにちは {nom}"\n\n'
            'msgid "c"\nmsgid_plural "c"\nmsgstr[0] "画像 {count} 枚"\n\n'
            'msgid "d"\nmsgstr "{bot}"\n\n'
            'msgid "e"\nmsgstr "extra"\n',
            plural_forms="nplurals=1; plural=0;",
        ),
    )
    found = problems(source, other)
    assert found == [
        "ja: b has no text",
        "ja: e is not a key of en-US",
        "ja: a has the placeholders ['nom'], not ['name']",
        "ja: a form of a lacks ['name']",
    ]


def test_a_fuzzy_or_empty_translation_counts_as_missing(tmp_path: Path) -> None:
    source = read_catalog("en-US", write_po(tmp_path / "en.po", 'msgid "a"\nmsgstr "A"\n\nmsgid "b"\nmsgstr "B"\n'))
    other = read_catalog(
        "ja", write_po(tmp_path / "ja.po", '#, fuzzy\nmsgid "a"\nmsgstr "エー"\n\nmsgid "b"\nmsgstr ""\n')
    )
    assert problems(source, other) == ["ja: a has no text", "ja: b has no text"]


def test_every_key_the_code_names_is_in_the_catalog() -> None:
    keys = i18n.message_keys()
    named: dict[str, str] = {}
    for path in CODE:
        for line, key, _comments, _context in extract_from_file("python", str(path), keywords=KEY_FUNCTIONS):
            if isinstance(key, str):
                named[key] = f"{path.relative_to(ROOT)}:{line}"
    assert len(named) > 50
    assert {key: where for key, where in named.items() if key not in keys} == {}


def test_every_key_the_code_keeps_in_a_table_is_in_the_catalog() -> None:
    # Keys held in tables (a failure's kind -> its text) rather than named in a call: any literal shaped like a
    # key whose first part is one of the catalog's.
    keys = i18n.message_keys()
    prefixes = {key.split(".")[0] for key in keys}
    held: dict[str, str] = {}
    for path in CODE:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            text = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None
            if text and KEY_SHAPE.fullmatch(text) and text.split(".")[0] in prefixes:
                held[text] = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
    assert len(held) > 100
    assert {key: where for key, where in held.items() if key not in keys} == {}


@pytest.mark.parametrize("locale", i18n.SUPPORTED)
def test_command_texts_fit_discords_limits_in_every_locale(locale: str) -> None:
    # A real translation must fit as it is (the translator would cut it); the pseudo-locale, which lengthens
    # every text, is cut to fit by the translator (tests/cogs/test_locales.py).
    for key in i18n.message_keys():
        text = i18n.translate(key, locale, model="x" * 40) if key == "choice.model.default" else None
        text = text or i18n.template(key, locale)
        if key.startswith("menu."):
            assert 1 <= len(text) <= 32, (locale, key, text)
        elif key.startswith(DESCRIBED):
            assert 1 <= len(text) <= 100, (locale, key, text)


# Forms and buttons are not cut by the translator: Discord refuses a form whose title or label exceeds 45
# characters, a label's description or a placeholder over 100, a button's label over 80.
FORM_TEXT_LIMITS = {"form.remix.prompt_cut": 100, "form.remix.resolution_note": 100, "form.prompt.placeholder": 100}


@pytest.mark.parametrize("locale", [*i18n.SUPPORTED, i18n.PSEUDO])
def test_form_and_button_texts_fit_discords_limits_in_every_locale(locale: str) -> None:
    checked = 0
    for key in i18n.message_keys():
        # A button's label is `button.<name>`; `button.<name>.<case>` are the answers to its clicks.
        if key.startswith("form.") or (key.startswith("button.") and key.count(".") == 1):
            text = i18n.translate(key, locale, number=4)  # a Vary button's number
            limit = 80 if key.startswith("button.") else FORM_TEXT_LIMITS.get(key, 45)
            assert 1 <= len(text) <= limit, (locale, key, text)
            checked += 1
    assert checked >= 8


# -- Discord markdown ----------------------------------------------------------------------------------------

# What Discord renders and a translation must keep as the English has it: a lost `**` bolds the rest of a message,
# a lost backtick or `||` swallows what follows, a changed `<@…>` or `<t:…>` shows as raw text.
MARKDOWN = {
    "bold": re.compile(r"\*\*"),
    "code block": re.compile(r"```"),
    "code span": re.compile(r"(?<!`)`(?!`)"),
    "spoiler": re.compile(r"\|\|"),
    "masked link": re.compile(r"\]\("),
    # mentions (<@…>, <@&…>, <#…>), timestamps (<t:…>), command mentions (</…>) and custom emoji (<:…>)
    "markup": re.compile(r"<(?:@[!&]?|#|t:|/|a?:)[^<>]*>"),
}
# Translations whose markdown may differ from the English, each with its reason. Keyed by (locale, message key).
MARKDOWN_DIFFERENCES: dict[tuple[str, str], str] = {}


def markdown(text: str) -> dict[str, int]:
    return {name: len(pattern.findall(text)) for name, pattern in MARKDOWN.items()}


@pytest.mark.parametrize("locale", [locale for locale in i18n.SUPPORTED if locale != i18n.SOURCE])
def test_every_translation_keeps_the_englishs_discord_markdown(locale: str) -> None:
    loaded = load_catalogs([locale])
    source, other = loaded[i18n.SOURCE], loaded[locale]
    differ = {}
    for key, forms in other.texts.items():
        # A plural form matches one of the English forms ("one image" may read differently from "{count} images").
        expected = [markdown(form) for form in source.texts[key]]
        for form in forms:
            if markdown(form) not in expected:
                differ[(locale, key)] = (expected[-1], markdown(form))
    allowed = {where: reason for where, reason in MARKDOWN_DIFFERENCES.items() if where[0] == locale}
    assert {where: counts for where, counts in differ.items() if where not in allowed} == {}
    assert set(allowed) <= set(differ), "an allowed difference that no longer exists: remove it"


def test_markdown_counts_what_discord_renders() -> None:
    counts = markdown("**Job** `3f2a` ```\nx\n``` ||secret|| [docs](https://x) <@1> <@&2> <#3> <t:4:R> </imagine:5>")
    assert counts == {"bold": 2, "code block": 2, "code span": 2, "spoiler": 2, "masked link": 1, "markup": 5}
    assert markdown("a <b> and 1 < 2 > 0") == dict.fromkeys(MARKDOWN, 0)


# An option's value quoted as a member types it (`scope: role`) names the choice as that member's Discord shows it
# in the picker and the input: the choice's name in their locale (choices are localized, cogs/_translator.py).
OPTION_VALUE = re.compile(r"`([a-z][a-z-]*): ([^`<>{}]+)`")


@pytest.mark.parametrize("locale", i18n.SUPPORTED)
def test_a_quoted_option_value_reads_as_the_choice_name_the_member_sees(locale: str) -> None:
    source, other = i18n.catalogs()[i18n.SOURCE], i18n.catalogs()[locale]
    checked = 0
    for key, forms in source.texts.items():
        for option, value in {match for form in forms for match in OPTION_VALUE.findall(form)}:
            (choice,) = [
                name
                for name, names in source.texts.items()
                if name.startswith(f"choice.{option}.") and names[0] == value
            ]
            shown = f"`{option}: {i18n.template(choice, locale)}`"
            assert all(shown in form for form in other.texts[key]), (key, shown, other.texts[key])
            checked += 1
    assert checked >= 2


# -- locales -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("discord_locale", "spoken"),
    [
        ("en-US", "en-US"),
        ("en-GB", "en-US"),
        ("es-419", "es-ES"),  # Latin American Spanish reads Spain's catalog
        ("zh-CN", "zh-CN"),
        ("zh-TW", "zh-TW"),
        ("pt-BR", "pt-BR"),
        ("ja", "ja"),
        ("fi", "en-US"),
        ("xx-YY", "en-US"),
        (None, "en-US"),
        ("pseudo", "pseudo"),
    ],
)
def test_a_locale_is_spoken_by_itself_a_close_one_or_english(discord_locale: str | None, spoken: str) -> None:
    assert i18n.resolve(discord_locale) == spoken


def test_the_fallbacks_apply_once_their_target_is_supported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("i18n.locales.SUPPORTED", ("en-US", "es-ES", "ja"))
    assert resolve("es-419") == "es-ES"
    assert resolve("es-ES") == "es-ES"
    assert resolve("ja") == "ja"
    assert resolve("en-GB") == "en-US"
    assert resolve("ko") == "en-US"
    assert resolve("fi", pseudo_alias="fi") == "pseudo"


def test_a_discord_locale_object_is_taken_as_it_is() -> None:
    class Locale:  # what discord.Locale offers: its code in `value`
        value = "en-GB"

    assert i18n.resolve(Locale()) == "en-US"
    assert i18n.translate("refusal.prompt_empty", Locale()) == "Your prompt is empty: describe the image you want."


def test_a_missing_text_falls_back_to_english(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    japanese = read_catalog("ja", write_po(tmp_path / "ja.po", 'msgid "refusal.prompt_empty"\nmsgstr "空です"\n'))
    monkeypatch.setattr("i18n.locales.SUPPORTED", ("en-US", "ja"))
    monkeypatch.setitem(i18n.catalogs(), "ja", japanese)
    assert i18n.translate("refusal.prompt_empty", "ja") == "空です"
    assert i18n.translate("refusal.days_reversed", "ja") == "`start` must not be after `end`."


def test_an_unknown_key_or_a_missing_placeholder_is_an_error() -> None:
    with pytest.raises(KeyError, match="no message"):
        i18n.translate("refusal.no_such_thing", "en-US")
    with pytest.raises(KeyError, match=r"refusal\.prompt_too_long"):
        i18n.translate("refusal.prompt_too_long", "en-US", length=5)


# -- plurals, numbers, lists, the bot's name -----------------------------------------------------------------


def test_plurals_follow_the_locales_rule_and_numbers_its_format() -> None:
    assert i18n.plural("quota.images", 1, "en-US") == "1 image"
    assert i18n.plural("quota.images", 0, "en-US") == "0 images"
    assert i18n.plural("quota.images", 1250, "en-US") == "1,250 images"
    assert i18n.number(1250, "en-US") == "1,250"
    assert i18n.number(1250, "de") == "1.250"
    assert i18n.number(1250, "fr") == "1\u202f250"
    assert i18n.number(1250, "it") == "1,250"  # Italian is not spoken: English numbers
    assert i18n.plural("quota.images", 21, "ru").startswith("21 ")
    assert i18n.plural("quota.images", 21, "ru") != i18n.plural("quota.images", 25, "ru")
    assert i18n.number(100, "en-US", decimals=2) == "100.00"
    assert i18n.number(1234.56, "en-US", decimals=1) == "1,234.6"
    assert i18n.number(0.95, "en-US") == "0.95"


@pytest.mark.parametrize("locale", i18n.SUPPORTED)
def test_each_catalogs_plural_rule_is_cldrs(locale: str) -> None:
    # Babel's gettext table, from CLDR: Russian has three forms, Chinese, Japanese and Korean one, the others two
    # (French and Brazilian Portuguese count 0 as singular). A header copied from another language would pick the
    # wrong form for some counts without any other test noticing.
    catalog = i18n.catalogs()[locale]
    cldr = get_plural(babel_name(locale))
    assert catalog.num_plurals == cldr.num_plurals
    expected = gettext.c2py(cldr.plural_expr)
    assert [catalog.plural_index(n) for n in range(1001)] == [expected(n) for n in range(1001)]


# A number followed by what it counts, in a text that is not a plural entry: right only when the number can never
# be 1 (nor, in Russian, end in 1 to 4). Each text allowed here says why; any other must be a plural entry
# (i18n.plural) or be reshaped so that no word agrees with the number ("Credits: {credits}").
COUNTED = re.compile(
    r"\{(\w+)\} (?:(?:more|reference|blocked) )?"
    r"(?:images|credits|characters|words|pixels|megapixels|bytes|days|members|jobs|requests|entries|rows|times|seconds|"
    r"minutes|hours)\b"
)
COUNTED_ALLOWED = {
    ("refusal.prompt_too_long", "length"): "always over the prompt limit: thousands",
    ("refusal.too_many_images", "limit"): "a limit of 1 has its own text, refusal.too_many_images_one",
    ("refusal.image.too_many_pixels.one", "height"): "an image over the pixel limit is thousands of pixels high",
    ("refusal.image.too_many_pixels.many", "height"): "likewise",
    ("refusal.image.too_many_pixels.one", "megapixels"): "a decimal amount, never 1 (the limit is far above)",
    ("refusal.image.too_many_pixels.many", "megapixels"): "likewise",
    ("refusal.image.too_many_pixels_unsized.one", "megapixels"): "likewise",
    ("refusal.image.too_many_pixels_unsized.many", "megapixels"): "likewise",
    ("refusal.image.not_small_enough.one", "max_bytes"): "a fixed size in the millions of bytes",
    ("refusal.image.not_small_enough.many", "max_bytes"): "likewise",
    ("refusal.blocked_words_full", "limit"): "MAX_BLOCKED_WORDS, 500",
    ("refusal.blocked_words_too_many", "limit"): "MAX_BLOCKED_WORDS, 500",
    ("notice.first_images", "given"): "more images than were used: at least two",
    ("blocked.left_out", "limit"): "the longest blocked word, a fixed length",
}


def test_a_count_in_a_text_that_is_not_a_plural_entry_can_never_be_one() -> None:
    source = i18n.catalogs()[i18n.SOURCE]
    counted = {
        (key, found.group(1))
        for key, forms in source.texts.items()
        if key not in source.plural_keys
        for form in forms
        for found in COUNTED.finditer(form)
    }
    assert counted - COUNTED_ALLOWED.keys() == set()
    assert COUNTED_ALLOWED.keys() <= counted, "an allowed count that is no longer in its text: remove it"


# A number of four digits or more typed into a text, grouped or not; not part of a date (2026-11-01), a reference
# (3f2a9c1b), a ratio (16:9) or a name (gpt-4o).
# Not \w at the edges: a CJK text runs straight into its numbers (最大4,000文字).
TYPED_NUMBER = re.compile(
    r"(?<![0-9A-Za-z_.,:/-])(?:[0-9]{1,3}(?:[,.\u00a0\u202f ][0-9]{3})+|[0-9]{4,})(?![0-9A-Za-z_-])"
)


@pytest.mark.parametrize("locale", i18n.SUPPORTED)
def test_a_number_typed_into_a_text_is_written_as_the_locale_writes_numbers(locale: str) -> None:
    # The bot formats the numbers it fills in with i18n.number (CLDR): "4,000", "4.000", "4 000" (no-break). A
    # number written by hand beside them (a limit in an option's description) must read the same way.
    typed = {
        (key, found.group()): i18n.number(int(re.sub(r"\D", "", found.group())), locale)
        for key, forms in i18n.catalogs()[locale].texts.items()
        for form in forms
        for found in TYPED_NUMBER.finditer(form)
    }
    assert {where: written for where, written in typed.items() if where[1] != written} == {}
    assert any(key == "option.imagine.prompt" for key, _ in typed)


def test_a_plural_rule_comes_from_the_catalogs_header(tmp_path: Path) -> None:
    russian = read_catalog(
        "ru",
        write_po(
            tmp_path / "ru.po",
            'msgid "quota.images"\nmsgid_plural "quota.images"\n'
            'msgstr[0] "{count} изображение"\nmsgstr[1] "{count} изображения"\nmsgstr[2] "{count} изображений"\n',
            plural_forms="nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && "
            "(n%100<10 || n%100>=20) ? 1 : 2);",
        ),
    )
    forms = {n: russian.template("quota.images", n) for n in (1, 2, 5, 11, 21, 22)}
    assert forms == {
        1: "{count} изображение",
        2: "{count} изображения",
        5: "{count} изображений",
        11: "{count} изображений",
        21: "{count} изображение",
        22: "{count} изображения",
    }


def test_lists_join_with_the_locales_words() -> None:
    assert i18n.join(["A", "B", "C"], "en-US") == "A, B, C"
    assert i18n.join_or(["1"], "en-US") == "1"
    assert i18n.join_or(["1", "2"], "en-US") == "1 or 2"
    assert i18n.join_or(["1", "2", "4"], "en-US") == "1, 2 or 4"


def test_the_bot_is_named_by_its_own_name() -> None:
    before = i18n.bot_name()
    try:
        i18n.configure(bot_name="Pixel")
        assert i18n.translate("refusal.server_not_allowed", "en-US") == "Pixel is not enabled in this server."
    finally:
        i18n.configure(bot_name=before)


def test_no_text_names_imagine_rather_than_the_bot() -> None:
    # The operator's bot may have any name: texts say {bot}. "/imagine" (the command) and the context menu's
    # "Imagine from images" (the verb) are not the bot's name.
    for key, forms in i18n.catalogs()[i18n.SOURCE].texts.items():
        for form in forms:
            assert "Imagine" not in form.replace("Imagine from images", ""), key


# -- the pseudo-locale ---------------------------------------------------------------------------------------


def test_the_pseudo_locale_accents_every_letter_and_keeps_what_must_stay() -> None:
    text = i18n.pseudo("Hi {name}: see <#12>, <@34>, <@&56> and <t:1700000000:R>; use `clear` in /quota here.")
    assert text == ("⟦Ĥî {name}: šéé <#12>, <@34>, <@&56> àñđ <t:1700000000:R>; ûšé `clear` îñ /quota ĥéŕé.⟧")
    assert i18n.translate("refusal.cooling_down", "pseudo", when="<t:1:R>") == "⟦Ýöû çàñ ûšé /imagine àĝàîñ <t:1:R>.⟧"
    assert i18n.plural("quota.images", 2, "pseudo") == "⟦2 îɱàĝéš⟧"


def test_a_pseudo_text_cut_to_a_limit_keeps_its_brackets() -> None:
    long = i18n.pseudo("x" * 120)
    cut = i18n.fit(long, 100)
    assert len(cut) == 100
    assert i18n.is_pseudo(cut)
    assert cut.endswith("…⟧")
    assert i18n.fit("short", 100) == "short"


def test_the_pseudo_locale_stands_in_only_for_a_discord_locale_not_spoken() -> None:
    with pytest.raises(ValueError, match="pseudo-locale"):
        i18n.configure(pseudo_alias="en-US")
    with pytest.raises(ValueError, match="pseudo-locale"):
        i18n.configure(pseudo_alias="klingon")
    try:
        i18n.configure(pseudo_alias="fi")
        assert i18n.resolve("fi") == "pseudo"
        assert i18n.translate("refusal.prompt_empty", "fi").startswith("⟦")
    finally:
        i18n.configure(pseudo_alias=None)
    assert i18n.resolve("fi") == "en-US"

"""`python -m i18n`: a new language's catalog starts from the English one, and the check names what is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from i18n.__main__ import add, check, main
from i18n.catalog import LOCALES_DIR, po_path, problems, read_catalog


@pytest.fixture
def locales(tmp_path: Path) -> Path:
    copy = tmp_path / "locales"
    shutil.copytree(LOCALES_DIR, copy)
    return copy


def test_the_shipped_catalogs_pass_the_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 0
    assert "0 problem(s)" in capsys.readouterr().out


def test_a_new_language_starts_with_every_key_to_translate(locales: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.rmtree(locales / "ru")  # the shipped Russian catalog, taken away to start it again
    assert add("ru", locales) == 0
    path = po_path("ru", locales)
    text = path.read_text(encoding="utf-8")
    assert "#. en-US: Your prompt is empty: describe the image you want." in text
    assert "nplurals=3" in text
    source = read_catalog("en-US", po_path("en-US", locales))
    russian = read_catalog("ru", path)
    assert russian.texts == {}  # nothing translated yet
    assert len(problems(source, russian)) == len(source.texts)

    # Translating one text: it counts, and the check still names the others.
    text = text.replace('msgid "refusal.prompt_empty"\nmsgstr ""', 'msgid "refusal.prompt_empty"\nmsgstr "Пусто."')
    path.write_text(text, encoding="utf-8")
    assert read_catalog("ru", path).texts == {"refusal.prompt_empty": ("Пусто.",)}
    capsys.readouterr()
    assert check(locales) == 1
    assert "ru: refusal.days_reversed has no text" in capsys.readouterr().out


def test_only_a_planned_locale_not_there_yet_is_added(locales: Path) -> None:
    assert add("fi", locales) == 2
    assert add("en-US", locales) == 2
    assert add("ja", locales) == 2  # shipped already
    shutil.rmtree(locales / "ja")  # as before its translation arrived
    assert add("ja", locales) == 0
    assert add("ja", locales) == 2

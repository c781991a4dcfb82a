"""The message catalogs: gettext `.po` files under locales/, read with Babel at start-up.

Each locale has `locales/<locale>/LC_MESSAGES/imagine.po`, whose message ids are stable keys
(`refusal.prompt_empty`) and whose texts are `str.format` templates with named placeholders (`{count}`). The files
are read as they are (no compiled `.mo`): Babel parses them, and the plural rule comes from each file's
`Plural-Forms` header, evaluated as gettext does. docs/i18n.md says why.
"""

from __future__ import annotations

import gettext
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from babel.messages.pofile import read_po

from i18n.locales import SOURCE, SUPPORTED, folder_name

DOMAIN: Final = "imagine"
LOCALES_DIR: Final = Path(__file__).resolve().parent.parent / "locales"


class CatalogError(Exception):
    """A catalog is missing or cannot be read; the message names the file."""


@dataclass(frozen=True)
class LocaleCatalog:
    """One locale's texts: a key gives one template, or one per plural form for a plural entry."""

    locale: str
    texts: Mapping[str, tuple[str, ...]]
    plural_keys: frozenset[str]
    num_plurals: int
    plural_index: Callable[[int], int] = field(repr=False)

    def template(self, key: str, count: int | None = None) -> str | None:
        """The template of `key` (the plural form for `count` when it is a plural entry), None if absent."""
        forms = self.texts.get(key)
        if forms is None:
            return None
        if key not in self.plural_keys:
            return forms[0]
        index = self.plural_index(1 if count is None else count)
        return forms[min(index, len(forms) - 1)]


def po_path(locale: str, directory: Path = LOCALES_DIR) -> Path:
    """Where a locale's catalog lives."""
    return directory / folder_name(locale) / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalog(locale: str, path: Path) -> LocaleCatalog:
    """Read one `.po` file. Fuzzy and untranslated entries are left out, as gettext leaves them out."""
    try:
        with path.open("rb") as file:
            catalog = read_po(file, locale=locale.replace("-", "_") if locale != "pseudo" else None, abort_invalid=True)
    except FileNotFoundError as exc:
        raise CatalogError(f"no catalog for {locale}: {path} is missing") from exc
    except Exception as exc:
        raise CatalogError(f"the catalog {path} cannot be read: {exc}") from exc
    texts: dict[str, tuple[str, ...]] = {}
    plurals: set[str] = set()
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        if isinstance(message.id, tuple | list):
            key = str(message.id[0])
            forms = tuple(str(form) for form in message.string or ())
            plurals.add(key)
        else:
            key = str(message.id)
            forms = (str(message.string),)
        if all(forms):
            texts[key] = forms
    return LocaleCatalog(
        locale=locale,
        texts=texts,
        plural_keys=frozenset(plurals),
        num_plurals=catalog.num_plurals,
        plural_index=gettext.c2py(catalog.plural_expr),
    )


def load_catalogs(locales: Iterable[str] = SUPPORTED, directory: Path = LOCALES_DIR) -> dict[str, LocaleCatalog]:
    """The catalogs of `locales` (the source's always among them), by locale."""
    wanted = dict.fromkeys([SOURCE, *locales])
    return {locale: read_catalog(locale, po_path(locale, directory)) for locale in wanted}


def placeholders(template: str) -> frozenset[str]:
    """The named placeholders of a template: "{count} of {limit}" -> {"count", "limit"}."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name)


def problems(source: LocaleCatalog, other: LocaleCatalog) -> list[str]:
    """What keeps `other` from being a complete translation of `source`: missing or extra keys, a plural entry
    that is not one (or has the wrong number of forms), placeholders that differ from the source's."""
    found: list[str] = []
    where = other.locale
    for key in sorted(source.texts.keys() - other.texts.keys()):
        found.append(f"{where}: {key} has no text")
    for key in sorted(other.texts.keys() - source.texts.keys()):
        found.append(f"{where}: {key} is not a key of {source.locale}")
    for key in sorted(source.texts.keys() & other.texts.keys()):
        expected = frozenset().union(*(placeholders(form) for form in source.texts[key]))
        forms = other.texts[key]
        if (key in source.plural_keys) != (key in other.plural_keys):
            found.append(f"{where}: {key} is {'not ' if key in source.plural_keys else ''}a plural entry")
            continue
        if key in other.plural_keys and len(forms) != other.num_plurals:
            found.append(f"{where}: {key} has {len(forms)} forms, not {other.num_plurals}")
        given = frozenset().union(*(placeholders(form) for form in forms))
        if given != expected:
            found.append(f"{where}: {key} has the placeholders {sorted(given)}, not {sorted(expected)}")
        for form in forms:
            # A plural form may leave out {count} ("one image"), nothing else.
            if expected - placeholders(form) - {"count"}:
                found.append(f"{where}: a form of {key} lacks {sorted(expected - placeholders(form) - {'count'})}")
    return found

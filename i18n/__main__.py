"""`python -m i18n`: check the catalogs, or start a new language's from the English one (docs/i18n.md).

python -m i18n check        # every catalog under locales/ complete, with the source's placeholders
python -m i18n add ja       # locales/ja/LC_MESSAGES/imagine.po: every key, English as a comment, to translate
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.plurals import get_plural
from babel.messages.pofile import write_po

from i18n.catalog import LOCALES_DIR, po_path, problems, read_catalog
from i18n.locales import PLANNED, SOURCE, babel_name


def check(directory: Path = LOCALES_DIR) -> int:
    """Print what keeps each catalog on disk from being complete; 1 if anything does."""
    source = read_catalog(SOURCE, po_path(SOURCE, directory))
    found: list[str] = []
    for folder in sorted(path for path in directory.iterdir() if path.is_dir()):
        locale = folder.name.replace("_", "-")
        if locale != SOURCE:
            found += problems(source, read_catalog(locale, po_path(locale, directory)))
    for line in found:
        print(line)
    print(f"{len(source.texts)} messages; {len(found)} problem(s)")
    return 1 if found else 0


def add(locale: str, directory: Path = LOCALES_DIR) -> int:
    """Write a new locale's catalog: every key of the source, its English as a translator's comment."""
    if locale not in PLANNED or locale == SOURCE:
        print(f"{locale} is not one of the planned locales: {', '.join(PLANNED)}", file=sys.stderr)
        return 2
    path = po_path(locale, directory)
    if path.exists():
        print(f"{path} exists already", file=sys.stderr)
        return 2
    source = read_catalog(SOURCE, po_path(SOURCE, directory))
    plural = get_plural(babel_name(locale))
    catalog = Catalog(locale=Locale.parse(babel_name(locale)), project="Imagine", fuzzy=False)
    for key, forms in source.texts.items():
        english = [f"en-US: {form}" for form in forms]
        if key in source.plural_keys:
            catalog.add((key, key), ("",) * plural.num_plurals, auto_comments=english)
        else:
            catalog.add(key, "", auto_comments=english)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        write_po(file, catalog, width=0, omit_header=False)
    print(f"wrote {path}: {len(source.texts)} messages to translate (Plural-Forms: {plural.plural_forms})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m i18n", description="Imagine's message catalogs.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="check every catalog under locales/ against the English one")
    adding = commands.add_parser("add", help="start a new locale's catalog from the English one")
    adding.add_argument("locale", help=f"one of {', '.join(PLANNED)}")
    args = parser.parse_args(argv)
    return check() if args.command == "check" else add(args.locale)


if __name__ == "__main__":
    sys.exit(main())

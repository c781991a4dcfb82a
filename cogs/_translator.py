"""Command texts through the message catalog: descriptions, choice names and context-menu names.

A command text is made with `command_text(key)`: the English text is what Discord shows by default, the key
tells the translator where to find every other locale's (docs/i18n.md). Command and option names are never
translated: members' habits and scripts rely on them, so a name carries no key and the translator leaves it.
"""

from __future__ import annotations

from typing import Any, Final

import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation, TranslationContextTypes

import i18n

DESCRIPTION_LIMIT: Final = 100
"""Descriptions of commands and options, and names of choices (Discord's limits)."""
MENU_NAME_LIMIT: Final = 32
"""Names of context menus."""


def command_text(key: str, **params: Any) -> app_commands.locale_str:
    """A description, choice name or context-menu name from the catalog: English by default, and the key (and
    its placeholders' values) for the translator."""
    return app_commands.locale_str(i18n.translate(key, i18n.SOURCE, **params), key=key, params=params)


def limit_of(location: TranslationContextLocation) -> int:
    """The longest text Discord takes at `location`: a name is a context menu's (the only names translated)."""
    if location in (TranslationContextLocation.command_name, TranslationContextLocation.group_name):
        return MENU_NAME_LIMIT
    return DESCRIPTION_LIMIT


class CatalogTranslator(app_commands.Translator):
    """discord.py's translator over the catalog: what `CommandTree.sync` sends, and autocomplete choices."""

    async def translate(
        self, string: app_commands.locale_str, locale: discord.Locale, context: TranslationContextTypes
    ) -> str | None:
        return translated(string, locale, context.location)


def translated(
    string: app_commands.locale_str, locale: discord.Locale, location: TranslationContextLocation
) -> str | None:
    """The text of `string` in `locale`; None (Discord shows the default, English) when it has no key, or when the
    locale is spoken in English anyway, or the text is not translated into it."""
    key = string.extras.get("key")
    if not isinstance(key, str):
        return None
    if i18n.resolve(locale) == i18n.SOURCE:
        return None
    params: dict[str, Any] = string.extras.get("params") or {}
    text = i18n.translate(key, locale, **params)
    if text == i18n.translate(key, i18n.SOURCE, **params):
        return None  # not translated yet: English, which Discord shows by default
    return i18n.fit(text, limit_of(location))

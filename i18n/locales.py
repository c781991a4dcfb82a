"""Which catalog locale speaks to whom: Discord's locale codes, the fallbacks, and the supported locales.

Discord names a member's and a server's language with codes such as `en-US`, `es-419`, `zh-CN` or `ja`
(docs/i18n.md lists them). A catalog locale is one of `PLANNED` (the ten of docs/i18n.md) or the pseudo-locale;
only those in `SUPPORTED` are complete and spoken: anything else falls back to English.
"""

from __future__ import annotations

from typing import Final

SOURCE: Final = "en-US"
"""The locale the texts are written in; every other locale falls back to it."""

PSEUDO: Final = "pseudo"
"""The test locale: every English text accented and bracketed. Never listed as supported, never synced unless a
Discord locale is bound to it for tests (IMAGINE_PSEUDO_LOCALE, docs/operators.md)."""

PLANNED: Final = ("en-US", "zh-CN", "zh-TW", "ja", "ko", "ru", "es-ES", "pt-BR", "fr", "de")
"""The locales Imagine is written for (ToAPIs' customers'); a locale is spoken once its catalog is complete and it
is listed in `SUPPORTED`."""

SUPPORTED: Final = ("en-US", "zh-CN", "zh-TW", "ja", "ko", "ru", "es-ES", "pt-BR", "fr", "de")
"""The locales whose catalogs are complete: the ones a server may choose and the ones synced to Discord."""

DISCORD_LOCALES: Final = frozenset(
    {
        "id", "da", "de", "en-GB", "en-US", "es-ES", "es-419", "fr", "hr", "it", "lt", "hu", "nl", "no", "pl",
        "pt-BR", "ro", "fi", "sv-SE", "vi", "tr", "cs", "el", "bg", "ru", "uk", "hi", "th", "zh-CN", "ja", "zh-TW",
        "ko",
    }
)  # fmt: skip
"""Every locale code Discord sends and accepts in localizations."""

FALLBACKS: Final = {"es-419": "es-ES", "en-GB": "en-US"}
"""A Discord locale with no catalog of its own that one of ours serves well."""

BABEL_NAMES: Final = {"pseudo": "en_US"}
"""How Babel names a catalog locale whose Babel name is not the code with `_` for `-`."""


def resolve(code: str | None, *, pseudo_alias: str | None = None) -> str:
    """The supported catalog locale that speaks to `code` (a Discord locale code, a catalog locale, or None).

    A supported locale is itself; `es-419` is served by `es-ES` and `en-GB` by `en-US` when they are supported;
    `pseudo` (or the Discord locale bound to it, `pseudo_alias`) is the pseudo-locale; anything else is English.
    """
    if code is None:
        return SOURCE
    if code == PSEUDO or (pseudo_alias is not None and code == pseudo_alias):
        return PSEUDO
    if code in SUPPORTED:
        return code
    fallback = FALLBACKS.get(code)
    if fallback is not None and fallback in SUPPORTED:
        return fallback
    return SOURCE


def babel_name(locale: str) -> str:
    """The name Babel knows a catalog locale by ("en-US" -> "en_US"), for number formats and plural rules."""
    return BABEL_NAMES.get(locale, locale.replace("-", "_"))


def folder_name(locale: str) -> str:
    """The folder of a catalog locale under locales/ ("en-US" -> "en_US", "ja" -> "ja")."""
    return locale.replace("-", "_")

"""Every text members and admins read, in their locale: message catalogs, locales, plurals, numbers.

Imports nothing of Discord or of Imagine's other packages, so any layer may use it. The cogs pass Discord's
locales (`interaction.locale`, a job's stored locale) as they are: anything with a `value` (a `discord.Locale`)
or a string. docs/i18n.md describes the catalog and how a locale is chosen.

    translate("refusal.prompt_empty", interaction.locale)
    plural("quota.images", 25, locale)                 # "25 images"; the count formatted for the locale
    number(1250, locale)                                # "1,250"
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Protocol

from babel import Locale, UnknownLocaleError
from babel.numbers import format_decimal

from i18n.catalog import CatalogError, LocaleCatalog, load_catalogs, placeholders, problems
from i18n.locales import DISCORD_LOCALES, PLANNED, PSEUDO, SOURCE, SUPPORTED, babel_name
from i18n.locales import resolve as _resolve
from i18n.pseudo import fit, is_pseudo, pseudo

__all__ = [
    "DISCORD_LOCALES",
    "PLANNED",
    "PSEUDO",
    "SOURCE",
    "SUPPORTED",
    "CatalogError",
    "LocaleCatalog",
    "LocaleLike",
    "bot_name",
    "catalogs",
    "configure",
    "fit",
    "is_pseudo",
    "join",
    "join_or",
    "language_name",
    "message_keys",
    "number",
    "placeholders",
    "plural",
    "problems",
    "pseudo",
    "pseudo_alias",
    "resolve",
    "spoken",
    "template",
    "translate",
]

DEFAULT_BOT_NAME: Final = "Imagine"
"""What {bot} reads until the bot has told its own name (`configure(bot_name=...)`, at log-in)."""


class HasValue(Protocol):
    """A `discord.Locale`, or anything else that holds a locale code in `value`."""

    @property
    def value(self) -> str: ...


LocaleLike = str | HasValue | None
"""A locale as the callers have it: a code ("en-US", "es-419", "pseudo"), a `discord.Locale`, or None (English)."""


class _State:
    catalogs: dict[str, LocaleCatalog] | None = None
    pseudo_alias: str | None = None
    bot_name: str = DEFAULT_BOT_NAME


_state = _State()


def configure(*, bot_name: str | None = None, pseudo_alias: str | None = None) -> None:
    """Set what every text shares: the bot's own name ({bot}), and the Discord locale that speaks the
    pseudo-locale (tests only: IMAGINE_PSEUDO_LOCALE). Called once at start-up; None for the alias turns it off."""
    if bot_name is not None:
        _state.bot_name = bot_name
    if pseudo_alias is not None and (pseudo_alias not in DISCORD_LOCALES or pseudo_alias in SUPPORTED):
        raise ValueError(f"the pseudo-locale stands in for a Discord locale not supported, not {pseudo_alias!r}")
    _state.pseudo_alias = pseudo_alias


def bot_name() -> str:
    """The name {bot} reads."""
    return _state.bot_name


def pseudo_alias() -> str | None:
    """The Discord locale that speaks the pseudo-locale, if tests bound one."""
    return _state.pseudo_alias


def catalogs() -> dict[str, LocaleCatalog]:
    """The supported locales' catalogs, read on first use."""
    if _state.catalogs is None:
        _state.catalogs = load_catalogs(SUPPORTED)
    return _state.catalogs


def message_keys() -> frozenset[str]:
    """Every message key (the source catalog's)."""
    return frozenset(catalogs()[SOURCE].texts)


def _code(locale: LocaleLike) -> str | None:
    if locale is None or isinstance(locale, str):
        return locale
    return locale.value


def resolve(locale: LocaleLike) -> str:
    """The catalog locale that speaks to `locale`: itself if supported, a close one (`es-419` -> `es-ES`,
    `en-GB` -> `en-US`), `pseudo` for the pseudo-locale, English otherwise."""
    return _resolve(_code(locale), pseudo_alias=_state.pseudo_alias)


def spoken(locale: LocaleLike) -> bool:
    """Whether a catalog speaks `locale`'s language (its own, a close variant's, or the pseudo-locale's); False
    when English only stands in for it (`it`, `pl`...), so that a text does not claim the bot speaks it."""
    code = _code(locale)
    if code is None:
        return True
    resolved = resolve(code)
    return resolved == PSEUDO or resolved.split("-")[0] == code.split("-")[0]


def template(key: str, locale: LocaleLike, count: int | None = None) -> str:
    """The unfilled template of `key` in `locale` (English when the locale lacks it). KeyError for an unknown key."""
    code = resolve(locale)
    loaded = catalogs()
    source = loaded[SOURCE]
    if code == PSEUDO:
        found = source.template(key, count)
        if found is None:
            raise KeyError(f"no message {key!r} in the catalog")
        return pseudo(found)
    found = loaded[code].template(key, count) if code in loaded else None
    if found is None:
        found = source.template(key, count)
    if found is None:
        raise KeyError(f"no message {key!r} in the catalog")
    return found


def translate(key: str, locale: LocaleLike, **params: Any) -> str:
    """The text of `key` in `locale`, its placeholders filled from `params` ({bot}: the bot's name)."""
    return _fill(template(key, locale), key, params)


def plural(key: str, count: int, locale: LocaleLike, **params: Any) -> str:
    """The plural form of `key` for `count` in `locale`; `{count}` reads the count formatted for the locale."""
    return _fill(template(key, locale, count), key, {"count": number(count, locale), **params})


def number(value: int | float, locale: LocaleLike, *, decimals: int | None = None) -> str:
    """A number as the locale writes it: 1,250 in English, 1.250 in German; with exactly `decimals` digits after
    the decimal mark when given (100.00), else as many as it has (at most three)."""
    pattern = None if decimals is None else "#,##0" + ("." + "0" * decimals if decimals > 0 else "")
    return str(format_decimal(value, format=pattern, locale=babel_name(resolve(locale))))


def join(items: Sequence[str], locale: LocaleLike) -> str:
    """Items one after the other: "A, B, C"."""
    return translate("list.separator", locale).join(items)


def join_or(items: Sequence[str], locale: LocaleLike) -> str:
    """Alternatives: "A", "A or B", "A, B or C"."""
    if len(items) <= 1:
        return "".join(items)
    return translate("list.or", locale, items=join(items[:-1], locale), last=items[-1])


def _fill(text: str, key: str, params: dict[str, Any]) -> str:
    try:
        return text.format_map({"bot": _state.bot_name, **params})
    except (KeyError, IndexError, ValueError) as exc:
        raise KeyError(f"message {key!r} needs {exc} (given: {sorted(params)})") from exc


def language_name(locale: LocaleLike) -> str:
    """A locale's language in its own words, as Babel's CLDR data has it: "English (United States)", "日本語"."""
    code = _code(locale) or SOURCE
    try:
        parsed = Locale.parse(babel_name(PSEUDO if code == PSEUDO else code))
    except (ValueError, UnknownLocaleError):
        return code
    return str(parsed.get_display_name(parsed) or code)

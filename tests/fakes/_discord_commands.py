"""Application commands: what a sync may contain, and what an invocation must satisfy before Discord sends it.

A sync (``PUT /applications/{app}/commands``) is checked the way Discord checks it and answered with stored
commands (ids kept for unchanged name and type). An invocation by a test is checked against the synced
definition - options, choices, ranges, lengths, types, permissions, contexts - because Discord's client never
delivers one that violates them: such an invocation raises :class:`InvocationRefused` in the test.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tests.fakes._discord_messages import FormErrors, Path

MAX_SLASH_COMMANDS = 100
MAX_CONTEXT_COMMANDS = 5
MAX_OPTIONS = 25
MAX_CHOICES = 25
MAX_COMBINED_CHARACTERS = 4000
MAX_STRING_OPTION = 6000
MAX_SAFE_INTEGER = 2**53

_NAME = re.compile(r"^[-_'\w]{1,32}$")

# The locales Discord accepts as keys of `name_localizations` and `description_localizations`.
LOCALES = frozenset(
    [
        "id",
        "da",
        "de",
        "en-GB",
        "en-US",
        "es-ES",
        "es-419",
        "fr",
        "hr",
        "it",
        "lt",
        "hu",
        "nl",
        "no",
        "pl",
        "pt-BR",
        "ro",
        "fi",
        "sv-SE",
        "vi",
        "tr",
        "cs",
        "el",
        "bg",
        "ru",
        "uk",
        "hi",
        "th",
        "zh-CN",
        "ja",
        "zh-TW",
        "ko",
    ]
)


class CommandType(enum.IntEnum):
    """Application command types."""

    CHAT_INPUT = 1
    USER = 2
    MESSAGE = 3


class OptionType(enum.IntEnum):
    """Application command option types."""

    SUB_COMMAND = 1
    SUB_COMMAND_GROUP = 2
    STRING = 3
    INTEGER = 4
    BOOLEAN = 5
    USER = 6
    CHANNEL = 7
    ROLE = 8
    MENTIONABLE = 9
    NUMBER = 10
    ATTACHMENT = 11


class InteractionContext(enum.IntEnum):
    """Where a command may be used (``contexts``)."""

    GUILD = 0
    BOT_DM = 1
    PRIVATE_CHANNEL = 2


class InvocationRefused(Exception):
    """Discord's client would not let a member send this interaction (the test asked for something invalid)."""


@dataclass(frozen=True)
class CommandSync:
    """One bulk overwrite of commands, as the bot sent it."""

    time: float
    guild_id: int | None
    payload: list[dict[str, Any]]
    status: int


def _check_name(errors: FormErrors, path: Path, name: Any, *, chat_input: bool) -> int:
    if not isinstance(name, str):
        errors.required((*path, "name"))
        return 0
    if chat_input:
        if not _NAME.match(name) or name != name.lower():
            errors.add((*path, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
    elif not 1 <= len(name) <= 32:
        errors.add((*path, "name"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
    return len(name)


def _check_description(errors: FormErrors, path: Path, description: Any) -> int:
    if not isinstance(description, str) or not 1 <= len(description) <= 100:
        errors.add((*path, "description"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        return 0
    return len(description)


def _name_problem(name: Any, *, chat_input: bool) -> tuple[str, str] | None:
    if not isinstance(name, str):
        return "BASE_TYPE_REQUIRED", "This field is required"
    if chat_input and (not _NAME.match(name) or name != name.lower()):
        return "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
    if not chat_input and not 1 <= len(name) <= 32:
        return "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length."
    return None


def _description_problem(description: Any) -> tuple[str, str] | None:
    if not isinstance(description, str) or not 1 <= len(description) <= 100:
        return "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
    return None


def _check_localizations(
    errors: FormErrors,
    path: Path,
    item: Mapping[str, Any],
    field: str,
    problem: Callable[[Any], tuple[str, str] | None],
) -> int:
    """Check `<field>_localizations` (a locale -> text map, or null) as Discord checks the field itself: each key
    one of Discord's locales, each text what the field accepts. Returns the longest text's length, which Discord
    counts against the command's size."""
    localizations = item.get(f"{field}_localizations")
    if localizations is None:
        return 0
    at: Path = (*path, f"{field}_localizations")
    if not isinstance(localizations, dict):
        errors.add(at, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        return 0
    longest = 0
    for locale, text in localizations.items():
        if locale not in LOCALES:
            errors.add((*at, str(locale)), "LOCALE_INVALID", f"Invalid locale {locale!r}")
            continue
        found = problem(text)
        if found is not None:
            errors.add((*at, locale), *found)
        else:
            longest = max(longest, len(text))
    return longest


def _localized_name(errors: FormErrors, path: Path, item: Mapping[str, Any], *, chat_input: bool) -> int:
    """The name and its localizations; what counts against the command's size is the longest of them."""
    own = _check_name(errors, path, item.get("name"), chat_input=chat_input)
    return max(own, _check_localizations(errors, path, item, "name", lambda v: _name_problem(v, chat_input=chat_input)))


def _localized_description(errors: FormErrors, path: Path, item: Mapping[str, Any]) -> int:
    own = _check_description(errors, path, item.get("description"))
    return max(own, _check_localizations(errors, path, item, "description", _description_problem))


def _check_options(errors: FormErrors, path: Path, options: Any, *, depth: int) -> int:
    """Check an options array; ``depth`` 0 is the command itself. Returns the characters it contributes."""
    if options is None:
        return 0
    if not isinstance(options, list):
        errors.add((*path, "options"), "BASE_TYPE_ARRAY", "Must be an array.")
        return 0
    if len(options) > MAX_OPTIONS:
        errors.add((*path, "options"), "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_OPTIONS} or fewer in length.")
    characters = 0
    seen: set[str] = set()
    optional_seen = False
    kinds = {o.get("type") for o in options if isinstance(o, dict)}
    subcommands = kinds & {OptionType.SUB_COMMAND, OptionType.SUB_COMMAND_GROUP}
    if subcommands and kinds - subcommands:
        errors.add(
            (*path, "options"),
            "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
            "Sub-command and sub-command group option types are mutually exclusive to all other types",
        )
    for index, option in enumerate(options):
        at: Path = (*path, "options", index)
        if not isinstance(option, dict):
            errors.add(at, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            continue
        kind = option.get("type")
        if kind not in set(OptionType):
            errors.add(
                (*at, "type"), "BASE_TYPE_CHOICES", f"Value must be one of {sorted(int(t) for t in OptionType)}."
            )
            continue
        name = option.get("name")
        characters += _localized_name(errors, at, option, chat_input=True)
        characters += _localized_description(errors, at, option)
        if name in seen:
            errors.add((*at, "name"), "APPLICATION_COMMAND_OPTION_NAME_ALREADY_EXISTS", "Option names must be unique")
        seen.add(str(name))
        if kind == OptionType.SUB_COMMAND_GROUP:
            if depth > 0:
                errors.add((*at, "type"), "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID", "Groups cannot be nested")
            inner = option.get("options") or []
            if any(isinstance(o, dict) and o.get("type") != OptionType.SUB_COMMAND for o in inner):
                errors.add(
                    (*at, "options"), "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID", "Groups hold sub-commands only"
                )
            characters += _check_options(errors, at, inner, depth=depth + 1)
            continue
        if kind == OptionType.SUB_COMMAND:
            if depth > 1:
                errors.add((*at, "type"), "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID", "Sub-commands nest too deep")
            characters += _check_options(errors, at, option.get("options"), depth=2)
            continue
        required = bool(option.get("required", False))
        if required and optional_seen:
            errors.add(
                (*at, "required"),
                "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                "Required options must be placed before non-required options",
            )
        optional_seen = optional_seen or not required
        characters += _check_option_constraints(errors, at, option, OptionType(kind))
    return characters


def _check_option_constraints(errors: FormErrors, at: Path, option: dict[str, Any], kind: OptionType) -> int:
    characters = 0
    choices = option.get("choices")
    if choices is not None:
        if kind not in (OptionType.STRING, OptionType.INTEGER, OptionType.NUMBER):
            errors.add((*at, "choices"), "APPLICATION_COMMAND_OPTION_CHOICES_NOT_ALLOWED", "Choices not allowed")
        if len(choices) > MAX_CHOICES:
            errors.add((*at, "choices"), "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CHOICES} or fewer in length.")
        if option.get("autocomplete"):
            errors.add((*at, "autocomplete"), "APPLICATION_COMMAND_AUTOCOMPLETE_CHOICES", "Cannot have both")
        for number, choice in enumerate(choices):
            where: Path = (*at, "choices", number)
            name = choice.get("name") if isinstance(choice, dict) else None
            if not isinstance(name, str) or not 1 <= len(name) <= 100:
                errors.add((*where, "name"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
            else:
                # A choice's name is localized like a description (1 to 100 characters), not like a command name.
                localized = _check_localizations(errors, where, choice, "name", _description_problem)
                characters += max(len(name), localized)
            value = choice.get("value") if isinstance(choice, dict) else None
            if kind == OptionType.STRING and (not isinstance(value, str) or len(value) > 100):
                errors.add((*where, "value"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
            elif kind != OptionType.STRING and (isinstance(value, bool) or not isinstance(value, int | float)):
                errors.add((*where, "value"), "NUMBER_TYPE_COERCE", "Value is not a valid number.")
            if isinstance(value, str):
                characters += len(value)
    for key in ("min_value", "max_value"):
        if key in option and option[key] is not None and kind not in (OptionType.INTEGER, OptionType.NUMBER):
            errors.add((*at, key), "APPLICATION_COMMAND_OPTION_INVALID", f"{key} is only for numbers")
    for key in ("min_length", "max_length"):
        value = option.get(key)
        if value is None:
            continue
        if kind != OptionType.STRING:
            errors.add((*at, key), "APPLICATION_COMMAND_OPTION_INVALID", f"{key} is only for strings")
        elif not isinstance(value, int) or not (0 if key == "min_length" else 1) <= value <= MAX_STRING_OPTION:
            errors.add((*at, key), "NUMBER_TYPE_MAX", f"{key} must be within 0-{MAX_STRING_OPTION}.")
    low, high = option.get("min_value"), option.get("max_value")
    if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
        errors.add((*at, "min_value"), "APPLICATION_COMMAND_OPTION_INVALID", "min_value must not exceed max_value")
    return characters


def check_command(errors: FormErrors, index: int, command: Any) -> None:
    """Check one command of a bulk overwrite."""
    at: Path = (index,)
    if not isinstance(command, dict):
        errors.add(at, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        return
    kind = command.get("type", CommandType.CHAT_INPUT)
    if kind not in set(CommandType):
        errors.add((*at, "type"), "BASE_TYPE_CHOICES", "Value must be one of (1, 2, 3).")
        return
    chat_input = kind == CommandType.CHAT_INPUT
    characters = _localized_name(errors, at, command, chat_input=chat_input)
    if chat_input:
        characters += _localized_description(errors, at, command)
        characters += _check_options(errors, at, command.get("options"), depth=0)
        if characters > MAX_COMBINED_CHARACTERS:
            errors.add(at, "APPLICATION_COMMAND_TOO_LARGE", "Command exceeds maximum size (4000)")
    else:
        if command.get("description"):
            errors.add(
                (*at, "description"), "APPLICATION_COMMAND_INVALID_DESCRIPTION", "Context menu commands have none"
            )
        if command.get("options"):
            errors.add((*at, "options"), "APPLICATION_COMMAND_OPTIONS_NOT_ALLOWED", "Context menu commands have none")
    permissions = command.get("default_member_permissions")
    if permissions is not None and not str(permissions).isdigit():
        errors.add((*at, "default_member_permissions"), "NUMBER_TYPE_COERCE", "Value is not a valid integer.")
    for key, allowed in (("contexts", {0, 1, 2}), ("integration_types", {0, 1})):
        values = command.get(key)
        if values is not None and (not isinstance(values, list) or not set(values) <= allowed):
            errors.add((*at, key), "BASE_TYPE_CHOICES", f"Values must be among {sorted(allowed)}.")


def build_stored_commands(
    payload: Any,
    *,
    application_id: int,
    guild_id: int | None,
    existing: list[dict[str, Any]],
    new_id: Callable[[], int],
) -> list[dict[str, Any]]:
    """Check a bulk overwrite and return the commands Discord would store and answer with."""
    errors = FormErrors()
    if not isinstance(payload, list):
        errors.add((), "BASE_TYPE_ARRAY", "Must be an array.")
        errors.raise_if_any()
        raise AssertionError("unreachable")
    names: set[tuple[int, str]] = set()
    counts = dict.fromkeys(CommandType, 0)
    for index, command in enumerate(payload):
        check_command(errors, index, command)
        if isinstance(command, dict):
            kind = command.get("type", 1)
            key = (kind, str(command.get("name")))
            if key in names:
                errors.add(
                    (index, "name"), "APPLICATION_COMMANDS_DUPLICATE_NAME", "Application command names must be unique"
                )
            names.add(key)
            if kind in counts:
                counts[CommandType(kind)] += 1
    if counts[CommandType.CHAT_INPUT] > MAX_SLASH_COMMANDS:
        errors.add((), "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_SLASH_COMMANDS} or fewer in length.")
    if max(counts[CommandType.USER], counts[CommandType.MESSAGE]) > MAX_CONTEXT_COMMANDS:
        errors.add((), "APPLICATION_COMMANDS_LIMIT", f"At most {MAX_CONTEXT_COMMANDS} commands of each context type")
    errors.raise_if_any()
    by_key = {(c["type"], c["name"]): c for c in existing}
    stored = []
    for command in payload:
        kind = int(command.get("type", 1))
        previous = by_key.get((kind, command["name"]))
        stored.append(
            stored_command(
                command,
                command_id=int(previous["id"]) if previous else new_id(),
                version=new_id(),
                application_id=application_id,
                guild_id=guild_id,
            )
        )
    return stored


def stored_command(
    command: Mapping[str, Any], *, command_id: int, version: int, application_id: int, guild_id: int | None
) -> dict[str, Any]:
    """A command as Discord stores and returns it."""
    kind = int(command.get("type", 1))
    permissions = command.get("default_member_permissions")
    stored: dict[str, Any] = {
        "id": str(command_id),
        "application_id": str(application_id),
        "version": str(version),
        "type": kind,
        "name": command["name"],
        "name_localizations": command.get("name_localizations"),
        "description": command.get("description", "") if kind == CommandType.CHAT_INPUT else "",
        "description_localizations": command.get("description_localizations"),
        "default_member_permissions": None if permissions is None else str(permissions),
        "nsfw": bool(command.get("nsfw", False)),
    }
    if guild_id is None:
        stored["dm_permission"] = command.get("dm_permission", True) is not False
        stored["contexts"] = command.get("contexts")
        stored["integration_types"] = command.get("integration_types") or [0]
    else:
        stored["guild_id"] = str(guild_id)
    if kind == CommandType.CHAT_INPUT:
        stored["options"] = command.get("options") or []
    return stored


def allowed_in_guild(command: Mapping[str, Any]) -> bool:
    """Whether a command may be used in a server."""
    contexts = command.get("contexts")
    return contexts is None or InteractionContext.GUILD in contexts


def allowed_in_bot_dm(command: Mapping[str, Any]) -> bool:
    """Whether a command may be used in the bot's DMs (guild commands never are)."""
    if "guild_id" in command:
        return False
    contexts = command.get("contexts")
    if contexts is not None:
        return InteractionContext.BOT_DM in contexts
    return command.get("dm_permission", True) is not False


def find_subcommand(command: Mapping[str, Any], path: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Walk ``["group", "sub"]`` into a command; returns the option wrappers and the leaf's definition."""
    options: list[dict[str, Any]] = list(command.get("options") or [])
    chain: list[dict[str, Any]] = []
    leaf: dict[str, Any] = dict(command)
    for part in path:
        match = next(
            (o for o in options if o.get("name") == part and o.get("type") in (1, 2)),
            None,
        )
        if match is None:
            raise InvocationRefused(f"/{command['name']} has no subcommand or group {part!r}")
        chain.append(match)
        leaf = match
        options = list(match.get("options") or [])
    if any(o.get("type") in (1, 2) for o in options):
        raise InvocationRefused(f"/{' '.join([command['name'], *path])} needs a subcommand")
    return chain, leaf

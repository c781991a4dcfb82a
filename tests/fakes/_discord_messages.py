"""Discord's checks on a message body (content, embeds, components, mentions, nonce) and its error answers.

Numbers and error shapes follow the API: ``400 50035 Invalid Form Body`` with an ``errors`` object whose
keys are the path to the bad field, ``413 40005`` for a file over the limit, ``400 50006`` for an empty message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.fakes._discord_model import FakeGuild
from tests.fakes._discord_records import COMPONENTS_V2, EPHEMERAL, SUPPRESS_NOTIFICATIONS, Mentions, iter_components

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
MAX_EMBED_TITLE = 256
MAX_EMBED_DESCRIPTION = 4096
MAX_EMBED_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FOOTER = 2048
MAX_AUTHOR = 256
MAX_FILES = 10
MAX_NONCE = 25
MAX_ACTION_ROWS = 5
MAX_ROW_ITEMS = 5
MAX_CUSTOM_ID = 100
MAX_BUTTON_LABEL = 80
SUPPRESS_EMBEDS = 1 << 2
SETTABLE_FLAGS = SUPPRESS_EMBEDS | EPHEMERAL | SUPPRESS_NOTIFICATIONS | COMPONENTS_V2

Path = tuple[str | int, ...]


@dataclass
class DiscordError(Exception):
    """An error answer of the API: HTTP status, Discord's JSON error code and message, and field errors."""

    status: int
    code: int
    message: str
    errors: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"{self.status} {self.code} {self.message}")

    def body(self) -> dict[str, Any]:
        """The JSON body Discord answers with."""
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


def unknown(kind: str, code: int) -> DiscordError:
    """``404 Unknown <kind>`` (10003 channel, 10008 message, 10015 webhook, 10062 interaction...)."""
    return DiscordError(404, code, f"Unknown {kind}")


def missing_permissions() -> DiscordError:
    """``403 50013 Missing Permissions``."""
    return DiscordError(403, 50013, "Missing Permissions")


def missing_access() -> DiscordError:
    """``403 50001 Missing Access``."""
    return DiscordError(403, 50001, "Missing Access")


def invalid_webhook_token() -> DiscordError:
    """``401 50027 Invalid Webhook Token``: what every webhook route answers once a token has expired."""
    return DiscordError(401, 50027, "Invalid Webhook Token")


def entity_too_large() -> DiscordError:
    """``413 40005 Request entity too large``."""
    return DiscordError(413, 40005, "Request entity too large")


def empty_message() -> DiscordError:
    """``400 50006 Cannot send an empty message``."""
    return DiscordError(400, 50006, "Cannot send an empty message")


class FormErrors:
    """Collects field errors into Discord's nested ``errors`` object."""

    def __init__(self, prefix: Path = ()) -> None:
        self.prefix = prefix
        self.tree: dict[str, Any] = {}

    def add(self, path: Path, code: str, message: str) -> None:
        """Record an error at a field path (``("embeds", 0, "title")``)."""
        node = self.tree
        for part in (*self.prefix, *path):
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def too_long(self, path: Path, limit: int) -> None:
        """``BASE_TYPE_MAX_LENGTH``."""
        self.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")

    def required(self, path: Path) -> None:
        """``BASE_TYPE_REQUIRED``."""
        self.add(path, "BASE_TYPE_REQUIRED", "This field is required")

    def raise_if_any(self) -> None:
        """Raise ``400 50035 Invalid Form Body`` if anything was recorded."""
        if self.tree:
            raise DiscordError(400, 50035, "Invalid Form Body", errors=self.tree)


def _check_string(errors: FormErrors, path: Path, value: Any, limit: int, *, required: bool = False) -> int:
    """Check one string field and return the length it contributes."""
    if value is None:
        if required:
            errors.required(path)
        return 0
    if not isinstance(value, str):
        errors.add(path, "BASE_TYPE_STRING", "Could not interpret value as string.")
        return 0
    if required and not value.strip():
        errors.required(path)
    if len(value) > limit:
        errors.too_long(path, limit)
    return len(value)


_URL_SCHEMES = ("http://", "https://", "attachment://")


def _check_url(errors: FormErrors, path: Path, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value.startswith(_URL_SCHEMES):
        errors.add(path, "URL_TYPE_INVALID_SCHEME", "Scheme must be one of ('http', 'https', 'attachment').")


def check_embeds(errors: FormErrors, embeds: Any) -> None:
    """Discord's embed limits, per field and across all embeds of the message."""
    if embeds is None:
        return
    if not isinstance(embeds, list):
        errors.add(("embeds",), "BASE_TYPE_ARRAY", "Must be an array.")
        return
    if len(embeds) > MAX_EMBEDS:
        errors.too_long(("embeds",), MAX_EMBEDS)
    total = 0
    for index, embed in enumerate(embeds):
        at: Path = ("embeds", index)
        if not isinstance(embed, dict):
            errors.add(at, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            continue
        total += _check_string(errors, (*at, "title"), embed.get("title"), MAX_EMBED_TITLE)
        total += _check_string(errors, (*at, "description"), embed.get("description"), MAX_EMBED_DESCRIPTION)
        _check_url(errors, (*at, "url"), embed.get("url"))
        for key in ("image", "thumbnail"):
            part = embed.get(key)
            if isinstance(part, dict):
                _check_url(errors, (*at, key, "url"), part.get("url"))
        footer = embed.get("footer")
        if isinstance(footer, dict):
            total += _check_string(errors, (*at, "footer", "text"), footer.get("text"), MAX_FOOTER, required=True)
        author = embed.get("author")
        if isinstance(author, dict):
            total += _check_string(errors, (*at, "author", "name"), author.get("name"), MAX_AUTHOR, required=True)
        fields = embed.get("fields") or []
        if len(fields) > MAX_EMBED_FIELDS:
            errors.too_long((*at, "fields"), MAX_EMBED_FIELDS)
        for number, item in enumerate(fields):
            where: Path = (*at, "fields", number)
            item = item if isinstance(item, dict) else {}
            total += _check_string(errors, (*where, "name"), item.get("name"), MAX_FIELD_NAME, required=True)
            total += _check_string(errors, (*where, "value"), item.get("value"), MAX_FIELD_VALUE, required=True)
    if total > MAX_EMBED_TOTAL:
        errors.add(("embeds",), "MAX_EMBED_SIZE_EXCEEDED", f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}")


_SELECT_TYPES = {3, 5, 6, 7, 8}


def check_components(errors: FormErrors, components: Any, flags: int) -> None:
    """Action rows of buttons or one select each; ids unique and within their lengths."""
    if components is None:
        return
    if not isinstance(components, list):
        errors.add(("components",), "BASE_TYPE_ARRAY", "Must be an array.")
        return
    if flags & COMPONENTS_V2:
        # Layout components have their own, looser rules; only ids are checked.
        _check_custom_ids(errors, components)
        return
    if len(components) > MAX_ACTION_ROWS:
        errors.too_long(("components",), MAX_ACTION_ROWS)
    for index, row in enumerate(components):
        at: Path = ("components", index)
        if not isinstance(row, dict) or row.get("type") != 1:
            errors.add((*at, "type"), "UNION_TYPE_CHOICES", 'Value of field "type" must be one of (1,).')
            continue
        items = row.get("components") or []
        if not items:
            errors.add((*at, "components"), "BASE_TYPE_MIN_LENGTH", "Must be 1 or more in length.")
        if len(items) > MAX_ROW_ITEMS:
            errors.too_long((*at, "components"), MAX_ROW_ITEMS)
        if any(isinstance(i, dict) and i.get("type") in _SELECT_TYPES for i in items) and len(items) > 1:
            errors.add(
                (*at, "components"),
                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                "The specified component exceeds the maximum width",
            )
        for number, item in enumerate(items):
            where: Path = (*at, "components", number)
            if not isinstance(item, dict):
                continue
            if item.get("type") == 2:
                _check_button(errors, where, item)
            _check_string(errors, (*where, "custom_id"), item.get("custom_id"), MAX_CUSTOM_ID)
    _check_custom_ids(errors, components)


def _check_button(errors: FormErrors, where: Path, button: dict[str, Any]) -> None:
    style = button.get("style")
    _check_string(errors, (*where, "label"), button.get("label"), MAX_BUTTON_LABEL)
    if style == 5:
        if not button.get("url"):
            errors.required((*where, "url"))
        if "custom_id" in button:
            errors.add((*where, "custom_id"), "BUTTON_COMPONENT_CUSTOM_ID_NOT_ALLOWED", "A custom id is not allowed")
    elif style in (1, 2, 3, 4):
        if not button.get("custom_id"):
            errors.required((*where, "custom_id"))
    elif style != 6:
        errors.add((*where, "style"), "BASE_TYPE_CHOICES", f"Value must be one of {{1, 2, 3, 4, 5, 6}}, got {style}.")


def _check_custom_ids(errors: FormErrors, components: list[Any]) -> None:
    seen: set[str] = set()
    for item in iter_components(components):
        custom_id = item.get("custom_id")
        if custom_id is None:
            continue
        if custom_id in seen:
            errors.add(("components",), "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated")
        seen.add(custom_id)


def check_allowed_mentions(errors: FormErrors, allowed: Any) -> None:
    """``parse`` values, and the rule that ``parse: ["users"]`` and ``users: [...]`` exclude each other."""
    if allowed is None:
        return
    if not isinstance(allowed, dict):
        errors.add(("allowed_mentions",), "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        return
    parse = allowed.get("parse") or []
    for index, value in enumerate(parse):
        if value not in ("users", "roles", "everyone"):
            errors.add(
                ("allowed_mentions", "parse", index),
                "BASE_TYPE_CHOICES",
                "Value must be one of users, roles, everyone.",
            )
    for kind in ("users", "roles"):
        ids = allowed.get(kind)
        if ids and kind in parse:
            errors.add(
                ("allowed_mentions",),
                "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.',
            )
        if ids and len(ids) > 100:
            errors.too_long(("allowed_mentions", kind), 100)


def check_nonce(errors: FormErrors, nonce: Any) -> None:
    """A nonce is an integer or a string of at most 25 characters."""
    if nonce is None:
        return
    if isinstance(nonce, bool) or not isinstance(nonce, int | str):
        errors.add(("nonce",), "BASE_TYPE_STRING", "Could not interpret value as string.")
    elif isinstance(nonce, str) and len(nonce) > MAX_NONCE:
        errors.too_long(("nonce",), MAX_NONCE)


def check_message_body(body: Mapping[str, Any], *, prefix: Path = (), nonce_allowed: bool = False) -> None:
    """Every field check of a message body; raises ``400 50035`` listing all problems at once."""
    errors = FormErrors(prefix)
    content = body.get("content")
    if content is not None:
        _check_string(errors, ("content",), content, MAX_CONTENT)
    check_embeds(errors, body.get("embeds"))
    flags = body.get("flags") or 0
    check_components(errors, body.get("components"), flags if isinstance(flags, int) else 0)
    check_allowed_mentions(errors, body.get("allowed_mentions"))
    if nonce_allowed:
        check_nonce(errors, body.get("nonce"))
    attachments = body.get("attachments")
    if isinstance(attachments, list) and len(attachments) > MAX_FILES:
        errors.too_long(("attachments",), MAX_FILES)
    errors.raise_if_any()


_USER_MENTION = re.compile(r"<@!?(\d{15,21})>")
_ROLE_MENTION = re.compile(r"<@&(\d{15,21})>")
_EVERYONE = re.compile(r"@(everyone|here)\b")


def written_mentions(content: str, guild: FakeGuild | None) -> Mentions:
    """Every mention written in the content that resolves to a member, a role or @everyone/@here."""
    users = {int(m) for m in _USER_MENTION.findall(content)}
    roles = {int(m) for m in _ROLE_MENTION.findall(content)}
    if guild is not None:
        users = {u for u in users if guild.member(u) is not None}
        roles = {r for r in roles if guild.role(r) is not None and r != guild.id}
    else:
        roles = set()
    return Mentions(users=frozenset(users), roles=frozenset(roles), everyone=bool(_EVERYONE.search(content)))


def allowed_mentions_filter(
    written: Mentions,
    allowed: Mapping[str, Any] | None,
    *,
    guild: FakeGuild | None,
    can_mention_everyone: bool,
    replied_user: int | None = None,
) -> Mentions:
    """The part of the written mentions that notifies, as ``allowed_mentions`` and permissions allow.

    Without ``allowed_mentions`` Discord parses everything in the content, and a reply pings its author.
    """
    if allowed is None:
        parse: set[str] = {"users", "roles", "everyone"}
        user_ids: set[int] = set()
        role_ids: set[int] = set()
        ping_reply = True
    else:
        parse = set(allowed.get("parse") or [])
        user_ids = {int(u) for u in allowed.get("users") or []}
        role_ids = {int(r) for r in allowed.get("roles") or []}
        ping_reply = bool(allowed.get("replied_user", False))
    users = set(written.users) if "users" in parse else set(written.users & user_ids)
    roles = set(written.roles) if "roles" in parse else set(written.roles & role_ids)
    if guild is not None and not can_mention_everyone:
        # Only mentionable roles ping without Mention Everyone.
        roles = {r for r in roles if (role := guild.role(r)) is not None and role.mentionable}
    everyone = written.everyone and "everyone" in parse and can_mention_everyone
    if replied_user is not None and ping_reply:
        users.add(replied_user)
    return Mentions(users=frozenset(users), roles=frozenset(roles), everyone=everyone)


def is_empty(content: str, embeds: Sequence[Any], attachments: Sequence[Any], components: Sequence[Any]) -> bool:
    """Whether a message would show nothing at all."""
    return not (content or embeds or attachments or components)


def settable_flags(flags: Any, *, allow: int = SETTABLE_FLAGS) -> int:
    """The flags a request may set; Discord ignores the others."""
    return (flags if isinstance(flags, int) else 0) & allow


def summarize_files(files: Iterable[tuple[str, str, bytes]]) -> tuple[tuple[str, str, int], ...]:
    """(field, filename, size) of uploaded files, for the request log."""
    return tuple((name, filename, len(data)) for name, filename, data in files)

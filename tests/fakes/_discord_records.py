"""What the Discord fake records: requests, messages with every version, interactions and their responses.

Records of things that evolve (a message that is edited, an interaction that gets answered) are mutable and
keep their history; the snapshots inside them (a version, a callback, a request) are frozen.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any

from tests.fakes._discord_channels import FakeChannel
from tests.fakes._discord_model import FakeGuild, FakeMember, FakeUser

EPHEMERAL = 1 << 6
LOADING = 1 << 7
SUPPRESS_NOTIFICATIONS = 1 << 12
HAS_SNAPSHOT = 1 << 14
COMPONENTS_V2 = 1 << 15

REFERENCE_REPLY = 0
REFERENCE_FORWARD = 1

DID_NOT_RESPOND = "The application did not respond"

_TOKEN_IN_PATH = re.compile(r"(/(?:interactions|webhooks)/\d+/)[^/?]+")


class InteractionType(enum.IntEnum):
    """Interaction types (``type`` of an INTERACTION_CREATE)."""

    PING = 1
    APPLICATION_COMMAND = 2
    MESSAGE_COMPONENT = 3
    AUTOCOMPLETE = 4
    MODAL_SUBMIT = 5


class CallbackType(enum.IntEnum):
    """Interaction callback types (``type`` of the body of ``POST /interactions/{id}/{token}/callback``)."""

    PONG = 1
    CHANNEL_MESSAGE_WITH_SOURCE = 4
    DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE = 5
    DEFERRED_UPDATE_MESSAGE = 6
    UPDATE_MESSAGE = 7
    APPLICATION_COMMAND_AUTOCOMPLETE_RESULT = 8
    MODAL = 9
    LAUNCH_ACTIVITY = 12


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the fake answered (REST, webhook or CDN)."""

    method: str
    path: str
    query: dict[str, str]
    time: float
    status: int
    route: str | None
    body: Any
    files: tuple[tuple[str, str, int], ...] = ()
    error_code: int | None = None

    def __str__(self) -> str:
        code = f" ({self.error_code})" if self.error_code else ""
        return f"{self.time:8.3f}s {self.method} {self.redacted_path} -> {self.status}{code}"

    @property
    def redacted_path(self) -> str:
        """The path with interaction tokens replaced, fit for logs and failure messages."""
        return _TOKEN_IN_PATH.sub(r"\1<token>", self.path)


@dataclass(frozen=True)
class StoredAttachment:
    """A file Discord stored: served by the fake's CDN at ``url`` until the URL expires."""

    id: int
    filename: str
    content_type: str | None
    declared_content_type: str | None
    data: bytes = field(repr=False)
    url: str
    proxy_url: str
    description: str | None = None
    width: int | None = None
    height: int | None = None
    ephemeral: bool = False

    @property
    def size(self) -> int:
        """Size in bytes."""
        return len(self.data)

    def to_payload(self) -> dict[str, Any]:
        """The attachment object as the API returns it."""
        payload: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.proxy_url,
        }
        if self.content_type is not None:
            payload["content_type"] = self.content_type
        if self.description is not None:
            payload["description"] = self.description
        if self.width is not None and self.height is not None:
            payload["width"] = self.width
            payload["height"] = self.height
        if self.ephemeral:
            payload["ephemeral"] = True
        return payload


@dataclass(frozen=True)
class Mentions:
    """Who a message notifies: users, roles, @everyone/@here, as ``allowed_mentions`` and permissions allow."""

    users: frozenset[int] = frozenset()
    roles: frozenset[int] = frozenset()
    everyone: bool = False

    @property
    def nobody(self) -> bool:
        """Whether it notifies no one at all."""
        return not (self.users or self.roles or self.everyone)


@dataclass(frozen=True)
class MessageVersion:
    """A message as it was after its creation or after one edit."""

    time: float
    content: str
    embeds: tuple[dict[str, Any], ...]
    attachments: tuple[StoredAttachment, ...]
    components: tuple[dict[str, Any], ...]
    flags: int
    mentions: Mentions
    mentioned: Mentions
    allowed_mentions: dict[str, Any] | None
    via: str
    timestamp: str = ""


@dataclass(frozen=True)
class MessageSnapshot:
    """What a forward carries of the message it forwards: Discord's ``message_snapshots[].message``."""

    message_type: int
    content: str
    embeds: tuple[dict[str, Any], ...]
    attachments: tuple[StoredAttachment, ...]
    components: tuple[dict[str, Any], ...]
    flags: int
    timestamp: str
    edited_timestamp: str | None
    mentions: tuple[dict[str, Any], ...]
    mention_roles: tuple[str, ...]

    def to_payload(self) -> dict[str, Any]:
        """One entry of ``message_snapshots``: ``{"message": {...}}`` with the fields Discord documents."""
        return {
            "message": {
                "type": self.message_type,
                "content": self.content,
                "embeds": [{"type": "rich", **e} for e in self.embeds],
                "attachments": [a.to_payload() for a in self.attachments],
                "components": list(self.components),
                "timestamp": self.timestamp,
                "edited_timestamp": self.edited_timestamp,
                "flags": self.flags,
                "mentions": list(self.mentions),
                "mention_roles": list(self.mention_roles),
                "sticker_items": [],
            }
        }


@dataclass(eq=False)
class MessageRecord:
    """A message and its history: creation, each edit (``versions[1:]``), deletion."""

    id: int
    channel: FakeChannel
    author: FakeUser
    versions: list[MessageVersion]
    created_at: float
    nonce: str | int | None = None
    interaction: InteractionRecord | None = field(default=None, repr=False)
    webhook_id: int | None = None
    message_type: int = 0
    reference: MessageRecord | None = field(default=None, repr=False)
    """The message replied to (``reference_type`` 0) or forwarded (1)."""
    reference_type: int = REFERENCE_REPLY
    snapshots: tuple[MessageSnapshot, ...] = ()
    """A forward's copy of the forwarded message."""
    deleted_at: float | None = None
    pings: Mentions = field(default_factory=Mentions)
    created_event: dict[str, Any] | None = field(default=None, repr=False)
    """The MESSAGE_CREATE payload as first dispatched, in full (each session sees it through the content rule)."""

    @property
    def reference_id(self) -> int | None:
        """The id of the message replied to or forwarded."""
        return None if self.reference is None else self.reference.id

    @property
    def is_forward(self) -> bool:
        """Whether this message forwards another."""
        return self.reference is not None and self.reference_type == REFERENCE_FORWARD

    @property
    def current(self) -> MessageVersion:
        """The latest version."""
        return self.versions[-1]

    @property
    def content(self) -> str:
        """Current content."""
        return self.current.content

    @property
    def embeds(self) -> tuple[dict[str, Any], ...]:
        """Current embeds."""
        return self.current.embeds

    @property
    def attachments(self) -> tuple[StoredAttachment, ...]:
        """Current attachments (with their bytes)."""
        return self.current.attachments

    @property
    def components(self) -> tuple[dict[str, Any], ...]:
        """Current components."""
        return self.current.components

    @property
    def flags(self) -> int:
        """Current message flags."""
        return self.current.flags

    @property
    def ephemeral(self) -> bool:
        """Whether only the invoking user sees it."""
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """Whether it is still a deferred "is thinking..." placeholder."""
        return bool(self.flags & LOADING)

    @property
    def deleted(self) -> bool:
        """Whether it was deleted."""
        return self.deleted_at is not None

    @property
    def edits(self) -> list[MessageVersion]:
        """Every edit, oldest first."""
        return self.versions[1:]

    @property
    def mentions_nobody(self) -> bool:
        """True when neither its creation nor any version ever notified anyone."""
        return self.pings.nobody and all(v.mentions.nobody for v in self.versions)

    def custom_ids(self) -> list[str]:
        """Every ``custom_id`` among its current components."""
        return [c["custom_id"] for c in iter_components(self.components) if "custom_id" in c]


@dataclass(frozen=True)
class Callback:
    """The interaction callback the bot sent (accepted or refused)."""

    type: int
    data: dict[str, Any] | None
    files: tuple[StoredAttachment, ...]
    time: float
    after_dispatch: float | None
    status: int
    error_code: int | None = None

    @property
    def ephemeral(self) -> bool:
        """Whether the callback asked for an ephemeral response."""
        return bool(((self.data or {}).get("flags") or 0) & EPHEMERAL)


@dataclass(eq=False)
class InteractionRecord:
    """One interaction: what was dispatched, how and when the bot answered, and every message it produced."""

    id: int
    token: str = field(repr=False)
    type: InteractionType
    name: str
    user: FakeUser
    member: FakeMember | None
    guild: FakeGuild | None
    channel: FakeChannel
    payload: dict[str, Any] = field(repr=False)
    created_at: float
    deadline: float
    token_expires_at: float
    source_message: MessageRecord | None = field(default=None, repr=False)
    parent: InteractionRecord | None = field(default=None, repr=False)
    dispatched_at: float | None = None
    delivered_by: str | None = None
    callback: Callback | None = None
    refused_callbacks: list[Callback] = field(default_factory=list)
    original: MessageRecord | None = field(default=None, repr=False)
    followups: list[MessageRecord] = field(default_factory=list, repr=False)
    modal: dict[str, Any] | None = None
    failed_at: float | None = None
    failure: str | None = None
    refused_requests: list[RecordedRequest] = field(default_factory=list, repr=False)
    token_revoked: bool = False

    @property
    def acknowledged(self) -> bool:
        """Whether an interaction callback was accepted."""
        return self.callback is not None

    @property
    def failed(self) -> bool:
        """Whether the member saw "The application did not respond"."""
        return self.failure is not None

    @property
    def callback_type(self) -> CallbackType | None:
        """The accepted callback's type."""
        return None if self.callback is None else CallbackType(self.callback.type)

    @property
    def response_time(self) -> float | None:
        """Seconds from dispatch to the accepted callback."""
        return None if self.callback is None else self.callback.after_dispatch

    def token_valid_at(self, now: float) -> bool:
        """Whether webhook routes still accept this interaction's token."""
        return not self.token_revoked and now < self.token_expires_at


def iter_components(components: Any) -> list[dict[str, Any]]:
    """Every component in a (nested) component list, depth first."""
    found: list[dict[str, Any]] = []
    stack = list(reversed(components or []))
    while stack:
        item = stack.pop()
        if not isinstance(item, dict):
            continue
        found.append(item)
        children: list[Any] = []
        children.extend(item.get("components") or [])
        for key in ("component", "accessory"):
            if isinstance(item.get(key), dict):
                children.append(item[key])
        stack.extend(reversed(children))
    return found

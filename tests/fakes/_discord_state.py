"""The Discord fake's state and the rules that change it: messages, interactions, responses, attachments.

HTTP and gateway code call into :class:`DiscordState`; it raises :class:`DiscordError` for anything Discord
would refuse, records everything, and wakes up tests waiting on a condition.

Time: the fake's clock (``now``) is monotonic plus an offset that ``advance`` moves forward, so a test can let
minutes pass at once: the nonce window, token lifetimes, acknowledgement deadlines, rate-limit windows and the
CDN's URL expiry all read it.

The bot's own channel posts (``POST /channels/{id}/messages`` and its kin) follow the rules of
``_discord_bot_posts``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tests.fakes._discord_application import Application, ChannelWebhooks
from tests.fakes._discord_channels import ChannelType, FakeChannel
from tests.fakes._discord_commands import CommandSync
from tests.fakes._discord_content_rule import INTENT_MESSAGE_CONTENT, for_reader
from tests.fakes._discord_files import UploadedFile, UrlSigner, detect_content_type, image_size
from tests.fakes._discord_messages import (
    MAX_FILES,
    SETTABLE_FLAGS,
    SUPPRESS_EMBEDS,
    DiscordError,
    FormErrors,
    allowed_mentions_filter,
    check_message_body,
    empty_message,
    entity_too_large,
    invalid_webhook_token,
    is_empty,
    missing_access,
    missing_permissions,
    settable_flags,
    unknown,
    written_mentions,
)
from tests.fakes._discord_modals import check_modal
from tests.fakes._discord_model import (
    DISCORD_EPOCH_MS,
    FakeGuild,
    FakeUser,
    Permission,
    SnowflakeFactory,
    iso_timestamp,
)
from tests.fakes._discord_records import (
    DID_NOT_RESPOND,
    EPHEMERAL,
    HAS_SNAPSHOT,
    LOADING,
    REFERENCE_FORWARD,
    REFERENCE_REPLY,
    SUPPRESS_NOTIFICATIONS,
    Callback,
    CallbackType,
    InteractionRecord,
    InteractionType,
    Mentions,
    MessageRecord,
    MessageSnapshot,
    MessageVersion,
    RecordedRequest,
    StoredAttachment,
)

log = logging.getLogger(__name__)

INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

MESSAGE_TYPE_DEFAULT = 0
MESSAGE_TYPE_REPLY = 19
MESSAGE_TYPE_CHAT_INPUT = 20
MESSAGE_TYPE_CONTEXT_MENU = 23


@dataclass(frozen=True)
class FakeConfig:
    """How the fake behaves; every duration is a parameter so tests run in milliseconds."""

    token: str = "fake-bot-token"
    bot_name: str = "Imagine"
    ack_deadline: float = 3.0
    token_lifetime: float = 15 * 60.0
    heartbeat_interval: float = 41.25
    max_file_size: int = 10 * 1024 * 1024
    attachment_url_lifetime: float = 24 * 3600.0
    nonce_window: float = 5 * 60.0
    rate_limit: tuple[int, float] = (50, 1.0)
    route_limits: Mapping[str, tuple[int, float]] = field(default_factory=dict)
    privileged_intents: int = 0
    recommended_shards: int = 1


class Dispatcher(Protocol):
    """Where gateway dispatches go (the gateway hub)."""

    def dispatch(
        self,
        event: str,
        data: dict[str, Any],
        *,
        guild_id: int | None,
        intent: int | None = None,
        on_sent: Callable[[bool], None] | None = None,
    ) -> str | None:
        """Queue a dispatch for the session handling ``guild_id``; returns "live", "buffered" or None."""
        ...


class _NoGateway:
    def dispatch(
        self,
        event: str,
        data: dict[str, Any],
        *,
        guild_id: int | None,
        intent: int | None = None,
        on_sent: Callable[[bool], None] | None = None,
    ) -> str | None:
        return None


@dataclass
class MessageBody:
    """A parsed message request: JSON body (or ``payload_json``) and uploaded files."""

    json: dict[str, Any]
    files: list[UploadedFile] = field(default_factory=list)


class DiscordState:
    """Everything the fake knows, and Discord's rules for changing it."""

    def __init__(self, config: FakeConfig) -> None:
        self.config = config
        self.new_id = SnowflakeFactory()
        self._t0 = time.monotonic()
        self.bot_user = FakeUser(id=self.new_id(), username=config.bot_name, bot=True)
        self.application_id = self.bot_user.id
        # Whether a callback's answer names the message it made (`response_message_id`, `resource.message`).
        self.callbacks_name_their_message = True
        self.app_owner = FakeUser(id=self.new_id(), username="app-owner")
        self.application = Application(owner=self.app_owner)
        self.channel_webhooks = ChannelWebhooks(self.new_id)
        self.guilds: list[FakeGuild] = []
        self.left_guilds: list[FakeGuild] = []
        """Guilds the bot left (``DELETE /users/@me/guilds/{id}``), in order."""
        self.dm_channels: dict[int, FakeChannel] = {}
        self.messages: dict[int, MessageRecord] = {}
        self.interactions: dict[int, InteractionRecord] = {}
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
        self.command_syncs: list[CommandSync] = []
        self.attachments: dict[int, StoredAttachment] = {}
        self.requests: list[RecordedRequest] = []
        self.unknown_routes: list[RecordedRequest] = []
        self.cdn_clock_offset = 0.0
        self.cdn_gate: asyncio.Event | None = None
        """While set to a cleared event, attachment downloads wait for it (a CDN slow to answer)."""
        self.cdn_requests = 0
        """Attachment downloads asked for, answered or not."""
        self.clock_offset = 0.0
        self.signer = UrlSigner(secrets.token_bytes(16), config.attachment_url_lifetime)
        self.base_url = "http://127.0.0.1:0"
        self.gateway: Dispatcher = _NoGateway()
        self._changed = asyncio.Event()
        self._timers: list[asyncio.TimerHandle] = []

    # --- time and change notification -------------------------------------------------------------------------

    def now(self) -> float:
        """The fake's clock: seconds since it was created (monotonic), plus what :meth:`advance` added."""
        return time.monotonic() - self._t0 + self.clock_offset

    def wall_now(self) -> float:
        """Wall-clock seconds as the CDN sees them (tests may move it forward to expire URLs)."""
        return time.time() + self.cdn_clock_offset + self.clock_offset

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass at once for everything that reads the fake's clock (deadlines pass now)."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self.clock_offset += seconds
        now = self.now()
        for record in self.interactions.values():
            if record.deadline < now:
                self._deadline_passed(record)
        self.changed()

    def changed(self) -> None:
        """Wake up everything waiting for a condition on the recorded state."""
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def wait_changed(self, timeout: float) -> None:
        """Wait until the next change, or ``timeout`` seconds."""
        event = self._changed
        # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation that arrives as the event is set.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await event.wait()

    def cancel_timers(self) -> None:
        """Stop every pending deadline timer."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    # --- lookups ------------------------------------------------------------------------------------------------

    def guild(self, guild_id: int) -> FakeGuild:
        """A guild the bot is in, or ``404 10004 Unknown Guild``."""
        for guild in self.guilds:
            if guild.id == guild_id:
                return guild
        raise unknown("Guild", 10004)

    def leave_guild(self, guild: FakeGuild) -> None:
        """The bot leaves `guild`: it is no longer among the bot's guilds, and the bot hears GUILD_DELETE."""
        self.guilds.remove(guild)
        self.left_guilds.append(guild)
        self.gateway.dispatch("GUILD_DELETE", {"id": str(guild.id)}, guild_id=guild.id)
        self.changed()

    def channel(self, channel_id: int) -> FakeChannel:
        """A channel the bot can know about, or ``404 10003 Unknown Channel``."""
        for guild in self.guilds:
            found = guild.channel(channel_id)
            if found is not None:
                return found
        for channel in self.dm_channels.values():
            if channel.id == channel_id:
                return channel
        raise unknown("Channel", 10003)

    def user(self, user_id: int) -> FakeUser:
        """A user the bot shares a guild with (or itself), or ``404 10013 Unknown User``."""
        if user_id == self.bot_user.id:
            return self.bot_user
        for guild in self.guilds:
            member = guild.member(user_id)
            if member is not None:
                return member.user
        if user_id == self.app_owner.id:
            return self.app_owner
        raise unknown("User", 10013)

    def dm_channel(self, user: FakeUser) -> FakeChannel:
        """The DM channel between the bot and a user (created on first use, as Discord does)."""
        channel = self.dm_channels.get(user.id)
        if channel is None:
            channel = FakeChannel(id=self.new_id(), name="", type=ChannelType.DM, recipient=user)
            self.dm_channels[user.id] = channel
        return channel

    def bot_permissions(self, channel: FakeChannel) -> int:
        """The bot's permissions in a channel."""
        if channel.guild is None:
            return int(
                Permission.VIEW_CHANNEL
                | Permission.SEND_MESSAGES
                | Permission.EMBED_LINKS
                | Permission.ATTACH_FILES
                | Permission.READ_MESSAGE_HISTORY
                | Permission.MENTION_EVERYONE
            )
        return channel.guild.permissions_in(channel.guild.bot_member, channel)

    def require_permissions(self, channel: FakeChannel, needed: int) -> int:
        """Raise ``50001 Missing Access`` if the bot cannot see the channel, ``50013`` without the rest."""
        granted = self.bot_permissions(channel)
        if channel.guild is not None and not channel.guild.can_see(channel.guild.bot_member, channel):
            raise missing_access()
        if granted & needed != needed:
            raise missing_permissions()
        return granted

    def filesize_limit(self, channel: FakeChannel) -> int:
        """The upload limit where the channel is."""
        if channel.guild is None:
            return self.config.max_file_size
        return channel.guild.filesize_limit(self.config.max_file_size)

    def visible_message(self, channel: FakeChannel, message_id: int) -> MessageRecord:
        """A message the bot can reach through channel routes (not deleted, not ephemeral)."""
        message = self.messages.get(message_id)
        if message is None or message.channel is not channel or message.deleted or message.ephemeral:
            raise unknown("Message", 10008)
        return message

    # --- attachments ----------------------------------------------------------------------------------------------

    def store_attachment(
        self,
        *,
        channel: FakeChannel,
        filename: str,
        data: bytes,
        declared_content_type: str | None,
        description: str | None = None,
        ephemeral: bool = False,
    ) -> StoredAttachment:
        """Keep a file and give it a signed CDN URL."""
        attachment_id = self.new_id()
        content_type = detect_content_type(filename, data, declared_content_type)
        size = image_size(data, content_type)
        folder = "ephemeral-attachments" if ephemeral else "attachments"
        path = f"/{folder}/{channel.id}/{attachment_id}/{filename}"
        url = self.signer.sign(self.base_url, path, self.wall_now())
        stored = StoredAttachment(
            id=attachment_id,
            filename=filename,
            content_type=content_type,
            declared_content_type=declared_content_type,
            data=data,
            url=url,
            proxy_url=url.replace(self.base_url, f"{self.base_url}/media", 1),
            description=description,
            width=size[0] if size else None,
            height=size[1] if size else None,
            ephemeral=ephemeral,
        )
        self.attachments[attachment_id] = stored
        return stored

    def cdn_lookup(self, path: str, query: Mapping[str, str], attachment_id: int) -> StoredAttachment | None:
        """The attachment a CDN URL points at, if the URL is valid and unexpired."""
        stored = self.attachments.get(attachment_id)
        if stored is None:
            return None
        if not self.signer.valid(path, query.get("ex"), query.get("is"), query.get("hm"), self.wall_now()):
            return None
        return stored

    def check_file_sizes(self, files: Sequence[UploadedFile], limit: int) -> None:
        """``413 40005`` when any file is over the limit."""
        for upload in files:
            if len(upload.data) > limit:
                raise entity_too_large()

    def resolve_attachments(
        self,
        *,
        channel: FakeChannel,
        requested: Any,
        files: Sequence[UploadedFile],
        existing: tuple[StoredAttachment, ...],
        prefix: tuple[str | int, ...],
    ) -> tuple[StoredAttachment, ...]:
        """The attachments a message ends up with, by API v10 rules.

        ``attachments`` lists everything to keep: ids of existing attachments, and indexes of uploaded
        ``files[n]`` (with filename and description). Without it, uploads are added to what is there.
        """
        errors = FormErrors(prefix)
        by_index: dict[int, UploadedFile] = {}
        position = 0
        for upload in files:
            index = upload.index
            if index is None:
                index = position
            by_index[index] = upload
            position = max(position, index) + 1
        used: set[int] = set()
        result: list[StoredAttachment] = []
        if requested is None:
            result.extend(existing)
            for index in sorted(by_index):
                upload = by_index[index]
                used.add(index)
                result.append(
                    self.store_attachment(
                        channel=channel,
                        filename=upload.filename,
                        data=upload.data,
                        declared_content_type=upload.declared_content_type,
                    )
                )
        elif not isinstance(requested, list):
            errors.add(("attachments",), "BASE_TYPE_ARRAY", "Must be an array.")
        else:
            kept = {a.id: a for a in existing}
            for number, entry in enumerate(requested):
                raw_id = entry.get("id") if isinstance(entry, dict) else None
                try:
                    wanted = int(raw_id) if raw_id is not None else None
                except (TypeError, ValueError):
                    wanted = None
                if wanted is not None and wanted in kept:
                    result.append(kept[wanted])
                elif wanted is not None and wanted in by_index:
                    upload = by_index[wanted]
                    used.add(wanted)
                    assert isinstance(entry, dict)
                    result.append(
                        self.store_attachment(
                            channel=channel,
                            filename=str(entry.get("filename") or upload.filename),
                            data=upload.data,
                            declared_content_type=upload.declared_content_type,
                            description=entry.get("description"),
                        )
                    )
                else:
                    errors.add(("attachments", number, "id"), "ATTACHMENT_NOT_FOUND", "Unknown attachment or file.")
            # Files the list does not mention are attached all the same, after the listed ones.
            for index in sorted(set(by_index) - used):
                upload = by_index[index]
                result.append(
                    self.store_attachment(
                        channel=channel,
                        filename=upload.filename,
                        data=upload.data,
                        declared_content_type=upload.declared_content_type,
                    )
                )
        if len(result) > MAX_FILES:
            errors.too_long(("attachments",), MAX_FILES)
        errors.raise_if_any()
        return tuple(result)

    # --- messages -----------------------------------------------------------------------------------------------

    def _mentions(
        self,
        channel: FakeChannel,
        content: str,
        allowed: Any,
        *,
        author: FakeUser,
        reply_to: MessageRecord | None,
        ping_reply: bool = True,
    ) -> tuple[Mentions, Mentions]:
        guild = channel.guild
        written = written_mentions(content, guild)
        if guild is None:
            # In a DM only its two ends can be mentioned.
            ends = {self.bot_user.id} | ({channel.recipient.id} if channel.recipient is not None else set())
            written = Mentions(users=written.users & ends, roles=frozenset(), everyone=False)
        if author.bot:
            can_everyone = bool(self.bot_permissions(channel) & Permission.MENTION_EVERYONE)
        elif guild is not None:
            member = guild.member(author.id)
            can_everyone = member is not None and bool(
                guild.permissions_in(member, channel) & Permission.MENTION_EVERYONE
            )
        else:
            can_everyone = False
        replied = None
        if reply_to is not None and reply_to.author.id != author.id and ping_reply:
            replied = reply_to.author.id
        allowed_dict = allowed if isinstance(allowed, dict) else None
        notified = allowed_mentions_filter(
            written, allowed_dict, guild=guild, can_mention_everyone=can_everyone, replied_user=replied
        )
        return notified, written

    def create_message(
        self,
        *,
        channel: FakeChannel,
        author: FakeUser,
        body: MessageBody,
        via: str,
        flags_allowed: int,
        extra_flags: int = 0,
        interaction: InteractionRecord | None = None,
        message_type: int = MESSAGE_TYPE_DEFAULT,
        reply_to: MessageRecord | None = None,
        ping_reply: bool = True,
        file_limit: int | None = None,
        prefix: tuple[str | int, ...] = (),
        nonce_allowed: bool = False,
        forward_of: MessageRecord | None = None,
        message_id: int | None = None,
        webhook_id: int | None = None,
    ) -> MessageRecord:
        """Check and create a message (every check first, then nothing half-done).

        ``forward_of`` makes a forward: no content or files of its own, a snapshot of the original instead.
        """
        data = body.json
        self.check_file_sizes(body.files, file_limit if file_limit is not None else self.filesize_limit(channel))
        check_message_body(data, prefix=prefix, nonce_allowed=nonce_allowed)
        flags = settable_flags(data.get("flags"), allow=flags_allowed) | extra_flags
        attachments = self.resolve_attachments(
            channel=channel, requested=data.get("attachments"), files=body.files, existing=(), prefix=prefix
        )
        content = data.get("content") or ""
        embeds = tuple(data.get("embeds") or ())
        components = tuple(data.get("components") or ())
        snapshots: tuple[MessageSnapshot, ...] = ()
        if forward_of is not None:
            snapshots = (self._snapshot(forward_of, channel),)
            flags |= HAS_SNAPSHOT
        elif not flags & LOADING and is_empty(content, embeds, attachments, components):
            raise empty_message()
        notified, written = self._mentions(
            channel, content, data.get("allowed_mentions"), author=author, reply_to=reply_to, ping_reply=ping_reply
        )
        now = self.now()
        version = MessageVersion(
            time=now,
            content=content,
            embeds=embeds,
            attachments=attachments,
            components=components,
            flags=flags,
            mentions=notified,
            mentioned=written,
            allowed_mentions=data.get("allowed_mentions"),
            via=via,
            timestamp=iso_timestamp(),
        )
        record = MessageRecord(
            id=message_id if message_id is not None else self.new_id(),
            channel=channel,
            author=author,
            versions=[version],
            created_at=now,
            nonce=data.get("nonce"),
            interaction=interaction,
            webhook_id=webhook_id
            if webhook_id is not None
            else self.application_id
            if interaction is not None
            else None,
            message_type=message_type,
            reference=forward_of if forward_of is not None else reply_to,
            reference_type=REFERENCE_FORWARD if forward_of is not None else REFERENCE_REPLY,
            snapshots=snapshots,
            # A silent message (or a loading placeholder) notifies nobody.
            pings=Mentions() if flags & (SUPPRESS_NOTIFICATIONS | LOADING) else notified,
        )
        self.messages[record.id] = record
        if not record.ephemeral:
            channel.last_message_id = record.id
            if channel.is_thread:
                channel.message_count += 1
            record.created_event = self.message_payload(record, for_gateway=True)
            self.dispatch_message("MESSAGE_CREATE", record, record.created_event)
        self.changed()
        return record

    def _snapshot(self, original: MessageRecord, channel: FakeChannel) -> MessageSnapshot:
        # Discord keeps the forwarded files with the forward: new attachments, same bytes.
        version = original.current
        copies = tuple(
            self.store_attachment(
                channel=channel,
                filename=a.filename,
                data=a.data,
                declared_content_type=a.declared_content_type,
                description=a.description,
            )
            for a in version.attachments
        )
        return MessageSnapshot(
            message_type=original.message_type,
            content=version.content,
            embeds=version.embeds,
            attachments=copies,
            components=version.components,
            flags=version.flags & ~HAS_SNAPSHOT,
            timestamp=iso_timestamp(_snowflake_datetime(original.id)),
            edited_timestamp=version.timestamp if _was_edited(original) else None,
            mentions=tuple(self.user(u).to_payload() for u in sorted(version.mentions.users)),
            mention_roles=tuple(str(r) for r in sorted(version.mentions.roles)),
        )

    def edit_message(
        self,
        record: MessageRecord,
        body: MessageBody,
        *,
        via: str,
        file_limit: int | None = None,
        prefix: tuple[str | int, ...] = (),
    ) -> MessageRecord:
        """Check and apply an edit; fields absent from the body keep their value. Edits never ping."""
        data = body.json
        channel = record.channel
        self.check_file_sizes(body.files, file_limit if file_limit is not None else self.filesize_limit(channel))
        check_message_body(data, prefix=prefix)
        current = record.current
        attachments = self.resolve_attachments(
            channel=channel,
            requested=data.get("attachments"),
            files=body.files,
            existing=current.attachments,
            prefix=prefix,
        )
        content = (data.get("content") or "") if "content" in data else current.content
        embeds = tuple(data.get("embeds") or ()) if "embeds" in data else current.embeds
        components = tuple(data.get("components") or ()) if "components" in data else current.components
        # Only "suppress embeds" changes on an edit; resolving a deferred reply clears "loading".
        flags = current.flags & ~LOADING
        if "flags" in data and isinstance(data["flags"], int):
            flags = (flags & ~SUPPRESS_EMBEDS) | (data["flags"] & SUPPRESS_EMBEDS)
        if is_empty(content, embeds, attachments, components):
            raise empty_message()
        allowed = data.get("allowed_mentions", current.allowed_mentions)
        # A reply keeps its ping across edits (edits themselves never notify anyone).
        replied = record.reference if record.reference_type == REFERENCE_REPLY else None
        keeps_ping = replied is not None and replied.author.id in record.versions[0].mentions.users
        notified, written = self._mentions(
            channel, content, allowed, author=record.author, reply_to=replied, ping_reply=keeps_ping
        )
        record.versions.append(
            MessageVersion(
                time=self.now(),
                content=content,
                embeds=embeds,
                attachments=attachments,
                components=components,
                flags=flags,
                mentions=notified,
                mentioned=written,
                allowed_mentions=allowed,
                via=via,
                timestamp=iso_timestamp(),
            )
        )
        if not record.ephemeral:
            self.dispatch_message("MESSAGE_UPDATE", record)
        self.changed()
        return record

    def delete_message(self, record: MessageRecord) -> None:
        """Mark a message deleted."""
        record.deleted_at = self.now()
        if not record.ephemeral:
            data: dict[str, Any] = {"id": str(record.id), "channel_id": str(record.channel.id)}
            if record.channel.guild is not None:
                data["guild_id"] = str(record.channel.guild.id)
            self.gateway.dispatch(
                "MESSAGE_DELETE", data, guild_id=_guild_id(record.channel), intent=_message_intent(record.channel)
            )
        self.changed()

    def dispatch_message(self, event: str, record: MessageRecord, payload: dict[str, Any] | None = None) -> str | None:
        """Send MESSAGE_CREATE / MESSAGE_UPDATE in full; the gateway applies the intents of the session."""
        data = payload if payload is not None else self.message_payload(record, for_gateway=True)
        return self.gateway.dispatch(
            event, data, guild_id=_guild_id(record.channel), intent=_message_intent(record.channel)
        )

    def message_for_bot(self, record: MessageRecord) -> dict[str, Any]:
        """The message object a REST read by the bot answers with: the Message Content rule applies."""
        return for_reader(
            self.message_payload(record),
            bot_id=self.bot_user.id,
            in_dm=record.channel.guild is None,
            has_intent=bool(self.config.privileged_intents & INTENT_MESSAGE_CONTENT),
        )

    def message_payload(
        self, record: MessageRecord, *, for_gateway: bool = False, nested: bool = False
    ) -> dict[str, Any]:
        """The message object as the API returns it (in full: readers apply the Message Content rule)."""
        version = record.current
        guild = record.channel.guild
        payload: dict[str, Any] = {
            "id": str(record.id),
            "type": record.message_type,
            "channel_id": str(record.channel.id),
            "author": record.author.to_payload(),
            "content": version.content,
            "timestamp": iso_timestamp(_snowflake_datetime(record.id)),
            "edited_timestamp": version.timestamp if _was_edited(record) else None,
            "tts": False,
            "mention_everyone": version.mentions.everyone,
            "mentions": [self.user(u).to_payload() for u in sorted(version.mentions.users)],
            "mention_roles": [str(r) for r in sorted(version.mentions.roles)],
            "attachments": [a.to_payload() for a in version.attachments],
            "embeds": [_as_rich(e) for e in version.embeds],
            "components": list(version.components),
            "pinned": False,
            "flags": version.flags,
        }
        if record.nonce is not None:
            payload["nonce"] = record.nonce
        if record.webhook_id is not None:
            payload["webhook_id"] = str(record.webhook_id)
            if record.interaction is not None:
                payload["application_id"] = str(self.application_id)
        reference = record.reference
        if reference is not None:
            source = reference.channel
            payload["message_reference"] = {
                "type": record.reference_type,
                "message_id": str(reference.id),
                "channel_id": str(source.id),
                **({"guild_id": str(source.guild.id)} if source.guild is not None else {}),
            }
            if record.reference_type == REFERENCE_REPLY and not nested:
                # Only one level deep, and null once the replied-to message is gone.
                payload["referenced_message"] = (
                    None if reference.deleted else self.message_payload(reference, nested=True)
                )
        if record.snapshots:
            payload["message_snapshots"] = [s.to_payload() for s in record.snapshots]
        if record.channel.is_thread and record.id == record.channel.id:
            payload["position"] = 0
        interaction = record.interaction
        if interaction is not None:
            payload["interaction_metadata"] = self._interaction_metadata(interaction, record)
            payload["interaction"] = {
                "id": str(interaction.id),
                "type": int(interaction.type),
                "name": interaction.name,
                "user": interaction.user.to_payload(),
            }
        if for_gateway and guild is not None:
            payload["guild_id"] = str(guild.id)
            member = guild.member(record.author.id)
            if member is not None:
                payload["member"] = member.to_payload(with_user=False)
        return payload

    def _interaction_metadata(self, interaction: InteractionRecord, record: MessageRecord) -> dict[str, Any]:
        owners = interaction.payload.get("authorizing_integration_owners", {})
        metadata: dict[str, Any] = {
            "id": str(interaction.id),
            "type": int(interaction.type),
            "user": interaction.user.to_payload(),
            "authorizing_integration_owners": owners,
        }
        if interaction.type == InteractionType.APPLICATION_COMMAND:
            metadata["name"] = interaction.name
            metadata["command_type"] = interaction.payload["data"].get("type", 1)
        if interaction.original is not None and interaction.original is not record:
            metadata["original_response_message_id"] = str(interaction.original.id)
        if interaction.source_message is not None:
            metadata["interacted_message_id"] = str(interaction.source_message.id)
        return metadata

    # --- interactions -------------------------------------------------------------------------------------------

    def register_interaction(self, record: InteractionRecord) -> None:
        """Keep an interaction, dispatch it, and start its acknowledgement deadline."""
        self.interactions[record.id] = record
        loop = asyncio.get_running_loop()
        self._timers.append(loop.call_later(record.deadline - self.now(), self._deadline_passed, record))

        def sent(replayed: bool) -> None:
            if record.dispatched_at is None:
                record.dispatched_at = self.now()
            record.delivered_by = "replayed" if replayed else "live"
            self.changed()

        guild_id = record.guild.id if record.guild is not None else None
        delivery = self.gateway.dispatch("INTERACTION_CREATE", record.payload, guild_id=guild_id, on_sent=sent)
        if delivery is None:
            log.info("interaction %s has no gateway session to go to", record.id)
        self.changed()

    def _deadline_passed(self, record: InteractionRecord) -> None:
        if record.callback is None and record.failure is None:
            record.failure = DID_NOT_RESPOND
            record.failed_at = self.now()
            self.changed()

    def interaction_by_token(self, token: str) -> InteractionRecord | None:
        """The interaction a webhook token belongs to."""
        for record in self.interactions.values():
            if secrets.compare_digest(record.token, token):
                return record
        return None

    def handle_callback(
        self, interaction_id: int, token: str, body: MessageBody, *, with_response: bool
    ) -> dict[str, Any] | None:
        """``POST /interactions/{id}/{token}/callback``: the one and only first response."""
        record = self.interactions.get(interaction_id)
        if record is None or not secrets.compare_digest(record.token, token):
            raise unknown("interaction", 10062)
        now = self.now()
        kind = body.json.get("type")
        data = body.json.get("data")
        after = None if record.dispatched_at is None else now - record.dispatched_at
        try:
            if record.callback is not None:
                raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
            # Only the deadline matters here: the token's lifetime governs the webhook routes that follow.
            if now > record.deadline or record.failure is not None:
                raise unknown("interaction", 10062)
            result = self._apply_callback(record, kind, data, body)
        except DiscordError as error:
            record.refused_callbacks.append(
                Callback(
                    type=kind if isinstance(kind, int) else -1,
                    data=data if isinstance(data, dict) else None,
                    files=(),
                    time=now,
                    after_dispatch=after,
                    status=error.status,
                    error_code=error.code,
                )
            )
            self.changed()
            raise
        files = record.original.attachments if record.original is not None and body.files else ()
        record.callback = Callback(
            type=int(kind) if isinstance(kind, int) else -1,
            data=data if isinstance(data, dict) else None,
            files=files,
            time=now,
            after_dispatch=after,
            status=200 if with_response else 204,
        )
        self.changed()
        return result if with_response else None

    def _apply_callback(self, record: InteractionRecord, kind: Any, data: Any, body: MessageBody) -> dict[str, Any]:
        if kind not in set(CallbackType):
            errors = FormErrors()
            errors.add(("type",), "BASE_TYPE_CHOICES", "Value must be one of {1, 4, 5, 6, 7, 8, 9, 12}.")
            errors.raise_if_any()
        callback = CallbackType(kind)
        data = data if isinstance(data, dict) else {}
        from_component = record.type == InteractionType.MESSAGE_COMPONENT or (
            record.type == InteractionType.MODAL_SUBMIT and record.source_message is not None
        )
        limit = int(record.payload["attachment_size_limit"])
        message_body = MessageBody(json=data, files=body.files)
        response: dict[str, Any] = {
            "interaction": {
                "id": str(record.id),
                "type": int(record.type),
            }
        }
        if callback == CallbackType.CHANNEL_MESSAGE_WITH_SOURCE:
            message = self.create_message(
                channel=record.channel,
                author=self.bot_user,
                body=message_body,
                via="callback",
                flags_allowed=SETTABLE_FLAGS,
                interaction=record,
                message_type=_response_type(record),
                file_limit=limit,
                prefix=("data",),
            )
            record.original = message
            self._describe(response, message, callback)
        elif callback == CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE:
            message = self.create_message(
                channel=record.channel,
                author=self.bot_user,
                body=MessageBody(json={"flags": data.get("flags", 0)}),
                via="callback",
                flags_allowed=EPHEMERAL,
                extra_flags=LOADING,
                interaction=record,
                message_type=_response_type(record),
            )
            record.original = message
            self._describe(response, message, callback)
        elif callback in (CallbackType.DEFERRED_UPDATE_MESSAGE, CallbackType.UPDATE_MESSAGE):
            if not from_component or record.source_message is None:
                raise DiscordError(
                    400, 50035, "Invalid Form Body", errors=_type_error("Only for component interactions")
                )
            source = record.source_message
            if source.deleted:
                raise unknown("Message", 10008)
            if callback == CallbackType.UPDATE_MESSAGE:
                self.edit_message(source, message_body, via="callback", file_limit=limit, prefix=("data",))
            record.original = source
            self._describe(response, source, callback)
        elif callback == CallbackType.MODAL:
            if record.type == InteractionType.MODAL_SUBMIT:
                raise DiscordError(400, 50035, "Invalid Form Body", errors=_type_error("A modal cannot open a modal"))
            check_modal(data)
            record.modal = data
        elif callback == CallbackType.APPLICATION_COMMAND_AUTOCOMPLETE_RESULT:
            if record.type != InteractionType.AUTOCOMPLETE:
                raise DiscordError(400, 50035, "Invalid Form Body", errors=_type_error("Only for autocomplete"))
            choices = data.get("choices")
            # Discord's limits on suggestions: 25 at most, each name 1-100 characters, a string value 100.
            if not isinstance(choices, list) or len(choices) > 25:
                raise DiscordError(
                    400, 50035, "Invalid Form Body", errors=_type_error("Must be 25 or fewer in length.")
                )
            for choice in choices:
                if not isinstance(choice, dict) or not 1 <= len(str(choice.get("name", ""))) <= 100:
                    raise DiscordError(400, 50035, "Invalid Form Body", errors=_type_error("Invalid choice name"))
                # A string choice's value is held to 100 characters too (a number's, to its type).
                if isinstance(choice.get("value"), str) and len(choice["value"]) > 100:
                    raise DiscordError(400, 50035, "Invalid Form Body", errors=_type_error("Invalid choice value"))
        else:
            raise DiscordError(400, 50035, "Invalid Form Body", errors=_type_error("Not valid for this interaction"))
        return response

    def _describe(self, response: dict[str, Any], message: MessageRecord, callback: CallbackType) -> None:
        if not self.callbacks_name_their_message:
            return  # the fields are optional in Discord's reference: a client must cope without them
        inner = response["interaction"]
        inner["response_message_id"] = str(message.id)
        inner["response_message_loading"] = message.loading
        inner["response_message_ephemeral"] = message.ephemeral
        response["resource"] = {"type": int(callback), "message": self.message_payload(message)}

    def webhook_interaction(self, application_id: int, token: str) -> InteractionRecord:
        """The interaction behind ``/webhooks/{app}/{token}``; ``401 50027`` once its token has expired."""
        if application_id != self.application_id:
            raise unknown("Webhook", 10015)
        record = self.interaction_by_token(token)
        if record is None or not record.token_valid_at(self.now()):
            raise invalid_webhook_token()
        return record

    def webhook_message(self, record: InteractionRecord, message_ref: str) -> MessageRecord:
        """``@original`` or a follow-up of this interaction."""
        if message_ref == "@original":
            message = record.original
        else:
            try:
                wanted = int(message_ref)
            except ValueError:
                raise unknown("Message", 10008) from None
            candidates = [m for m in (record.original, *record.followups) if m is not None]
            message = next((m for m in candidates if m.id == wanted), None)
        if message is None or message.deleted:
            raise unknown("Message", 10008)
        return message

    def edit_webhook_message(self, record: InteractionRecord, message_ref: str, body: MessageBody) -> MessageRecord:
        """``PATCH /webhooks/{app}/{token}/messages/{id|@original}``."""
        message = self.webhook_message(record, message_ref)
        limit = int(record.payload["attachment_size_limit"])
        return self.edit_message(message, body, via="webhook", file_limit=limit)

    def delete_webhook_message(self, record: InteractionRecord, message_ref: str) -> None:
        """``DELETE /webhooks/{app}/{token}/messages/{id|@original}``."""
        self.delete_message(self.webhook_message(record, message_ref))

    def create_followup(self, record: InteractionRecord, body: MessageBody) -> MessageRecord:
        """``POST /webhooks/{app}/{token}``: a follow-up; the first one after a defer resolves the placeholder.

        Discord keeps the deferred reply's visibility then: after ``defer(ephemeral=False)`` such a follow-up
        is public even if it asks for ``flags: 64``.
        """
        if record.callback is None:
            raise unknown("Webhook", 10015)
        limit = int(record.payload["attachment_size_limit"])
        original = record.original
        if original is not None and original.loading and not original.deleted:
            self.edit_message(original, body, via="followup", file_limit=limit)
            record.followups.append(original)
            self.changed()
            return original
        message = self.create_message(
            channel=record.channel,
            author=self.bot_user,
            body=body,
            via="followup",
            flags_allowed=SETTABLE_FLAGS,
            interaction=record,
            message_type=MESSAGE_TYPE_REPLY if record.original is not None else _response_type(record),
            file_limit=limit,
        )
        record.followups.append(message)
        self.changed()
        return message


def _guild_id(channel: FakeChannel) -> int | None:
    return channel.guild.id if channel.guild is not None else None


def _message_intent(channel: FakeChannel) -> int:
    return INTENT_GUILD_MESSAGES if channel.guild is not None else INTENT_DIRECT_MESSAGES


def _response_type(record: InteractionRecord) -> int:
    if record.type == InteractionType.APPLICATION_COMMAND and record.payload["data"].get("type", 1) != 1:
        return MESSAGE_TYPE_CONTEXT_MENU
    if record.type == InteractionType.APPLICATION_COMMAND:
        return MESSAGE_TYPE_CHAT_INPUT
    return MESSAGE_TYPE_DEFAULT


def _was_edited(record: MessageRecord) -> bool:
    # Resolving a deferred reply is not an edit in Discord's eyes.
    placeholder = 1 if record.versions[0].flags & LOADING else 0
    return len(record.versions) > 1 + placeholder


def _as_rich(embed: dict[str, Any]) -> dict[str, Any]:
    return {"type": "rich", **embed}


def _type_error(message: str) -> dict[str, Any]:
    return {"type": {"_errors": [{"code": "INTERACTION_CALLBACK_TYPE_INVALID", "message": message}]}}


def _snowflake_datetime(snowflake: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000, dt.UTC)

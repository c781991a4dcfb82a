"""The world the Discord fake simulates: users, guilds, roles, channels, members and their permissions.

Tests build it before the bot connects (``fake.add_guild(...)``, ``guild.add_member(...)``); the fake turns it
into READY / GUILD_CREATE payloads, interaction payloads and permission checks, computed the way Discord does.
Entities compare by identity: each stands for one object on Discord's side. Channels (threads, forums, voice)
are in ``_discord_channels``; a guild tells a :class:`GuildListener` about channels created once the fake runs,
so that a connected bot hears of them (CHANNEL_CREATE, THREAD_CREATE).

Permissions in a channel follow Discord's order (@everyone, roles, member overwrites; no View Channel, nothing).
A thread has the permissions of its parent, except that without Send Messages in Threads a member also loses
Embed Links, Attach Files, Mention Everyone and TTS there (as discord.py computes it); Send Messages itself
means nothing in a thread.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tests.fakes._discord_channels import ChannelType, FakeChannel

DISCORD_EPOCH_MS = 1_420_070_400_000
DEFAULT_LOCALE = "en-US"
# A server's upload limit by its boost level, where boosts raise it: level 2 and level 3.
BOOSTED_UPLOAD_LIMITS = {2: 50 * 1024 * 1024, 3: 100 * 1024 * 1024}


class SnowflakeFactory:
    """Discord ids: milliseconds since 2015 in the high bits, so discord.py's ``snowflake_time`` is right."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0
        self._counter = itertools.count()
        self._worker = os.getpid() & 0x1F

    def __call__(self) -> int:
        with self._lock:
            ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
            candidate = (ms << 22) | (self._worker << 17) | (next(self._counter) & 0xFFF)
            # Strictly increasing even within one millisecond or if the wall clock steps back.
            self._last = max(candidate, self._last + 1)
            return self._last


def iso_timestamp(moment: dt.datetime | None = None) -> str:
    """A timestamp as Discord writes it (``2025-01-01T12:00:00.000000+00:00``)."""
    return (moment or dt.datetime.now(dt.UTC)).isoformat(timespec="microseconds")


class Permission(enum.IntFlag):
    """Discord permission bits (the ones a bot or a member of a text channel deals with)."""

    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_AUDIT_LOG = 1 << 7
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    SEND_TTS_MESSAGES = 1 << 12
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    CHANGE_NICKNAME = 1 << 26
    MANAGE_NICKNAMES = 1 << 27
    MANAGE_ROLES = 1 << 28
    MANAGE_WEBHOOKS = 1 << 29
    USE_APPLICATION_COMMANDS = 1 << 31
    CONNECT = 1 << 20
    SPEAK = 1 << 21
    MANAGE_THREADS = 1 << 34
    CREATE_PUBLIC_THREADS = 1 << 35
    CREATE_PRIVATE_THREADS = 1 << 36
    SEND_MESSAGES_IN_THREADS = 1 << 38
    MODERATE_MEMBERS = 1 << 40
    SEND_POLLS = 1 << 49
    USE_EXTERNAL_APPS = 1 << 50

    @classmethod
    def everyone_default(cls) -> Permission:
        """What a new server's @everyone role may do (Discord enables "Mention @everyone" by default)."""
        return (
            cls.CREATE_INSTANT_INVITE
            | cls.ADD_REACTIONS
            | cls.VIEW_CHANNEL
            | cls.SEND_MESSAGES
            | cls.EMBED_LINKS
            | cls.ATTACH_FILES
            | cls.READ_MESSAGE_HISTORY
            | cls.MENTION_EVERYONE
            | cls.USE_EXTERNAL_EMOJIS
            | cls.CHANGE_NICKNAME
            | cls.USE_APPLICATION_COMMANDS
            | cls.CONNECT
            | cls.SPEAK
            | cls.CREATE_PUBLIC_THREADS
            | cls.CREATE_PRIVATE_THREADS
            | cls.SEND_MESSAGES_IN_THREADS
            | cls.SEND_POLLS
            | cls.USE_EXTERNAL_APPS
        )

    @classmethod
    def bot_default(cls) -> Permission:
        """The permissions Imagine's invite asks for: what it needs where it posts."""
        return (
            cls.VIEW_CHANNEL
            | cls.SEND_MESSAGES
            | cls.EMBED_LINKS
            | cls.ATTACH_FILES
            | cls.READ_MESSAGE_HISTORY
            | cls.USE_APPLICATION_COMMANDS
        )


ALL_PERMISSIONS = (1 << 51) - 1
# What a member without Send Messages in Threads cannot do in a thread either.
_THREAD_SEND_DEPENDENT = (
    Permission.SEND_TTS_MESSAGES | Permission.MENTION_EVERYONE | Permission.EMBED_LINKS | Permission.ATTACH_FILES
)


@dataclass(eq=False)
class FakeUser:
    """A Discord user (a member's account, or the bot's own)."""

    id: int
    username: str
    global_name: str | None = None
    bot: bool = False
    locale: str = DEFAULT_LOCALE
    accepts_dms: bool = True
    """False when the user's privacy settings refuse DMs from the bot (``403 50007``)."""

    @property
    def mention(self) -> str:
        """The text that mentions this user."""
        return f"<@{self.id}>"

    def to_payload(self) -> dict[str, Any]:
        """The user object as the API returns it."""
        payload: dict[str, Any] = {
            "id": str(self.id),
            "username": self.username,
            "global_name": self.global_name,
            "discriminator": "0",
            "avatar": None,
            "avatar_decoration_data": None,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "primary_guild": None,
            "collectibles": None,
        }
        if self.bot:
            payload["bot"] = True
        return payload


@dataclass(eq=False)
class FakeRole:
    """A guild role. The @everyone role has the guild's id."""

    id: int
    guild: FakeGuild = field(repr=False)
    name: str
    permissions: int
    position: int = 0
    mentionable: bool = False
    managed_by_bot: int | None = None

    @property
    def mention(self) -> str:
        """The text that mentions this role."""
        return f"<@&{self.id}>"

    @property
    def is_everyone(self) -> bool:
        """Whether this is the guild's @everyone role."""
        return self.id == self.guild.id

    def to_payload(self) -> dict[str, Any]:
        """The role object as the API returns it."""
        payload: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "description": None,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed_by_bot is not None,
            "mentionable": self.mentionable,
            "flags": 0,
        }
        if self.managed_by_bot is not None:
            payload["tags"] = {"bot_id": str(self.managed_by_bot)}
        return payload


@dataclass(frozen=True)
class Overwrite:
    """A channel permission overwrite for a role or a member."""

    target: FakeRole | FakeMember
    allow: int = 0
    deny: int = 0

    def to_payload(self) -> dict[str, Any]:
        """The overwrite object as the API returns it."""
        kind = 0 if isinstance(self.target, FakeRole) else 1
        return {"id": str(self.target.id), "type": kind, "allow": str(self.allow), "deny": str(self.deny)}


@dataclass(eq=False)
class FakeMember:
    """A user's membership of a guild."""

    guild: FakeGuild = field(repr=False)
    user: FakeUser
    roles: list[FakeRole] = field(default_factory=list)
    nick: str | None = None
    joined_at: str = field(default_factory=iso_timestamp)

    @property
    def id(self) -> int:
        """The user's id."""
        return self.user.id

    @property
    def mention(self) -> str:
        """The text that mentions this member."""
        return self.user.mention

    def to_payload(self, *, with_user: bool = True, permissions: int | None = None) -> dict[str, Any]:
        """The guild member object as the API returns it (with ``permissions`` inside interactions)."""
        payload: dict[str, Any] = {
            "roles": [str(r.id) for r in self.roles],
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
            "unusual_dm_activity_until": None,
        }
        if with_user:
            payload["user"] = self.user.to_payload()
        if permissions is not None:
            payload["permissions"] = str(permissions)
        return payload


class GuildListener(Protocol):
    """Who hears of channels created in a guild (the running fake, to tell a connected bot)."""

    def channel_created(self, channel: FakeChannel) -> None:
        """A channel or thread was just created."""
        ...


_FIRST_CHANNEL = object()


@dataclass(eq=False)
class FakeGuild:
    """A Discord server with its roles, channels, threads and members."""

    id: int
    name: str
    owner: FakeMember = field(init=False, repr=False)
    bot_member: FakeMember = field(init=False, repr=False)
    locale: str = DEFAULT_LOCALE
    max_file_size: int | None = None
    features: list[str] = field(default_factory=list)
    roles: list[FakeRole] = field(default_factory=list, repr=False)
    channels: list[FakeChannel] = field(default_factory=list, repr=False)
    threads: list[FakeChannel] = field(default_factory=list, repr=False)
    members: list[FakeMember] = field(default_factory=list, repr=False)
    listener: GuildListener | None = field(default=None, repr=False)
    _new_id: SnowflakeFactory = field(default_factory=SnowflakeFactory, repr=False)
    _system_channel: object = field(default=_FIRST_CHANNEL, repr=False)

    @classmethod
    def create(
        cls,
        new_id: SnowflakeFactory,
        name: str,
        *,
        bot_user: FakeUser,
        owner_name: str = "owner",
        everyone_permissions: int = Permission.everyone_default(),
        bot_permissions: int = Permission.bot_default(),
        locale: str = DEFAULT_LOCALE,
        max_file_size: int | None = None,
        guild_id: int | None = None,
    ) -> FakeGuild:
        """A guild with its @everyone role, an owner, and the bot as a member with its managed role."""
        guild = cls(
            id=guild_id if guild_id is not None else new_id(),
            name=name,
            locale=locale,
            max_file_size=max_file_size,
            _new_id=new_id,
        )
        guild.roles.append(FakeRole(id=guild.id, guild=guild, name="@everyone", permissions=int(everyone_permissions)))
        bot_role = FakeRole(
            id=new_id(),
            guild=guild,
            name=bot_user.username,
            permissions=int(bot_permissions),
            position=1,
            managed_by_bot=bot_user.id,
        )
        guild.roles.append(bot_role)
        guild.owner = guild.add_member(owner_name)
        guild.bot_member = guild.add_member(bot_user)
        guild.bot_member.roles.append(bot_role)
        return guild

    @property
    def everyone(self) -> FakeRole:
        """The @everyone role."""
        return self.roles[0]

    @property
    def bot_role(self) -> FakeRole:
        """The role Discord manages for the bot (holds the permissions it was invited with)."""
        return next(r for r in self.roles if r.managed_by_bot is not None)

    def add_role(
        self, name: str, permissions: int = 0, *, mentionable: bool = False, position: int | None = None
    ) -> FakeRole:
        """Create a role (above the existing ones unless ``position`` says otherwise)."""
        role = FakeRole(
            id=self._new_id(),
            guild=self,
            name=name,
            permissions=int(permissions),
            position=len(self.roles) if position is None else position,
            mentionable=mentionable,
        )
        self.roles.append(role)
        return role

    def add_text_channel(
        self, name: str, *, overwrites: Iterable[Overwrite] = (), topic: str | None = None, nsfw: bool = False
    ) -> FakeChannel:
        """Create a text channel (``nsfw``: age-restricted; its threads are too, as Discord has it)."""
        return self._add_channel(name, ChannelType.GUILD_TEXT, overwrites=overwrites, topic=topic, nsfw=nsfw)

    def add_voice_channel(self, name: str, *, overwrites: Iterable[Overwrite] = ()) -> FakeChannel:
        """Create a voice channel (its text chat takes messages like a text channel)."""
        return self._add_channel(name, ChannelType.GUILD_VOICE, overwrites=overwrites)

    def add_forum_channel(
        self, name: str, *, overwrites: Iterable[Overwrite] = (), topic: str | None = None, nsfw: bool = False
    ) -> FakeChannel:
        """Create a forum channel: its posts are threads (``FakeDiscord.add_forum_post``)."""
        return self._add_channel(name, ChannelType.GUILD_FORUM, overwrites=overwrites, topic=topic, nsfw=nsfw)

    def _add_channel(
        self,
        name: str,
        kind: ChannelType,
        *,
        overwrites: Iterable[Overwrite],
        topic: str | None = None,
        nsfw: bool = False,
    ) -> FakeChannel:
        channel = FakeChannel(
            id=self._new_id(),
            name=name,
            type=kind,
            guild=self,
            overwrites=list(overwrites),
            position=len(self.channels),
            topic=topic,
            nsfw=nsfw,
        )
        self.channels.append(channel)
        self._created(channel)
        return channel

    def add_thread(
        self,
        parent: FakeChannel,
        name: str,
        *,
        private: bool = False,
        owner: FakeMember | None = None,
        members: Sequence[FakeMember] = (),
    ) -> FakeChannel:
        """Start a thread in a text channel (or a forum: see ``FakeDiscord.add_forum_post``).

        Its members are ``owner`` (the guild owner by default) and ``members``; a private thread is seen by
        them alone (and by those with Manage Threads): add ``guild.bot_member`` to let the bot in.
        """
        if parent.guild is not self or parent.type not in (
            ChannelType.GUILD_TEXT,
            ChannelType.GUILD_ANNOUNCEMENT,
            ChannelType.GUILD_FORUM,
        ):
            raise ValueError(f"#{parent.name} cannot hold threads")
        if private and parent.type == ChannelType.GUILD_FORUM:
            raise ValueError("forum posts are public threads")
        starter = owner or self.owner
        thread = FakeChannel(
            id=self._new_id(),
            name=name,
            type=ChannelType.PRIVATE_THREAD if private else ChannelType.PUBLIC_THREAD,
            guild=self,
            parent=parent,
            owner=starter,
            thread_members=[starter, *(m for m in members if m is not starter)],
            created_at=iso_timestamp(),
        )
        self.threads.append(thread)
        self._created(thread)
        return thread

    def _created(self, channel: FakeChannel) -> None:
        if self.listener is not None:
            self.listener.channel_created(channel)

    @property
    def system_channel(self) -> FakeChannel | None:
        """Where Discord posts welcome messages: the first text channel unless set otherwise."""
        if self._system_channel is _FIRST_CHANNEL:
            return next((c for c in self.channels if c.type == ChannelType.GUILD_TEXT), None)
        return self._system_channel if isinstance(self._system_channel, FakeChannel) else None

    @system_channel.setter
    def system_channel(self, channel: FakeChannel | None) -> None:
        if channel is not None and channel.guild is not self:
            raise ValueError(f"#{channel.name} is not a channel of {self.name}")
        self._system_channel = channel

    def add_member(
        self,
        username: str | FakeUser,
        *,
        roles: Sequence[FakeRole] = (),
        nick: str | None = None,
        global_name: str | None = None,
    ) -> FakeMember:
        """Add a member; a username creates a new user, a :class:`FakeUser` reuses an existing one."""
        if isinstance(username, FakeUser):
            user = username
        else:
            user = FakeUser(id=self._new_id(), username=username, global_name=global_name)
        if any(m.user.id == user.id for m in self.members):
            raise ValueError(f"{user.username} is already a member of {self.name}")
        for role in roles:
            if role.guild is not self or role.is_everyone:
                raise ValueError(f"role {role.name} cannot be given in {self.name}")
        member = FakeMember(guild=self, user=user, roles=list(roles), nick=nick)
        self.members.append(member)
        return member

    def member(self, user_id: int) -> FakeMember | None:
        """The member with that user id, if any."""
        return next((m for m in self.members if m.user.id == user_id), None)

    def role(self, role_id: int) -> FakeRole | None:
        """The role with that id, if any."""
        return next((r for r in self.roles if r.id == role_id), None)

    def channel(self, channel_id: int) -> FakeChannel | None:
        """The channel or thread with that id, if any."""
        return next((c for c in (*self.channels, *self.threads) if c.id == channel_id), None)

    def base_permissions(self, member: FakeMember) -> int:
        """A member's guild-wide permissions (roles only, no channel overwrites)."""
        if member is self.owner:
            return ALL_PERMISSIONS
        value = self.everyone.permissions
        for role in member.roles:
            value |= role.permissions
        if value & Permission.ADMINISTRATOR:
            return ALL_PERMISSIONS
        return value

    def permissions_in(self, member: FakeMember, channel: FakeChannel) -> int:
        """A member's permissions in a channel, with overwrites applied in Discord's order (a thread: its parent's)."""
        if channel.parent is not None and channel.is_thread:
            value = self.permissions_in(member, channel.parent)
            if not value & Permission.SEND_MESSAGES_IN_THREADS:
                value &= ~_THREAD_SEND_DEPENDENT
            return value
        value = self.base_permissions(member)
        if value == ALL_PERMISSIONS:
            return value
        role_ids = {r.id for r in member.roles}
        everyone = [o for o in channel.overwrites if o.target is self.everyone]
        roles = [o for o in channel.overwrites if isinstance(o.target, FakeRole) and o.target.id in role_ids]
        members = [o for o in channel.overwrites if isinstance(o.target, FakeMember) and o.target is member]
        for group in (everyone, roles, members):
            deny = 0
            allow = 0
            for overwrite in group:
                deny |= overwrite.deny
                allow |= overwrite.allow
            value = (value & ~deny) | allow
        if not value & Permission.VIEW_CHANNEL:
            # Without View Channel, no other channel permission applies.
            return 0
        return value

    def can_see(self, member: FakeMember, channel: FakeChannel) -> bool:
        """View Channel there; for a private thread also being in it, or Manage Threads."""
        permissions = self.permissions_in(member, channel)
        if not permissions & Permission.VIEW_CHANNEL:
            return False
        if channel.is_private_thread and not permissions & Permission.MANAGE_THREADS:
            return any(m is member for m in channel.thread_members)
        return True

    def filesize_limit(self, default: int) -> int:
        """The upload limit in this guild."""
        return self.max_file_size if self.max_file_size is not None else default

    @property
    def premium_tier(self) -> int:
        """The boost level Discord reports, which is what gives a server its upload limit: 50 MiB at level 2,
        100 MiB at level 3 (discord.py, `Guild.filesize_limit`); any other limit reads as level 0."""
        return {BOOSTED_UPLOAD_LIMITS[2]: 2, BOOSTED_UPLOAD_LIMITS[3]: 3}.get(self.max_file_size or 0, 0)

    def to_create_payload(
        self, *, members: Sequence[FakeMember], bot_user: FakeUser, join: bool = False
    ) -> dict[str, Any]:
        """The GUILD_CREATE dispatch payload: ``join`` for a server the bot was just added to.

        A join carries no ``unavailable`` key; a server that streams in (at start-up, or after an outage) says
        ``"unavailable": false``. discord.py tells them apart by exactly that (``on_guild_join`` or not).
        """
        system_channel = self.system_channel
        threads = [t for t in self.threads if self.can_see(self.bot_member, t)]
        payload: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "icon_hash": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner.user.id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "widget_enabled": False,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "roles": [r.to_payload() for r in self.roles],
            "emojis": [],
            "stickers": [],
            "features": list(self.features),
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": str(system_channel.id) if system_channel is not None else None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "premium_tier": self.premium_tier,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": self.locale,
            "nsfw_level": 0,
            "nsfw": False,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "incidents_data": None,
            "hub_type": None,
            "latest_onboarding_question_id": None,
            "home_header": None,
            "inventory_settings": None,
            "version": 0,
            "joined_at": self.bot_member.joined_at,
            "large": len(self.members) > 250,
            "lazy": True,
            "unavailable": False,
            "member_count": len(self.members),
            "voice_states": [],
            "members": [m.to_payload() for m in members],
            "channels": [c.to_payload(bot_user=bot_user) for c in self.channels],
            "threads": [t.to_payload(bot_user=bot_user) for t in threads],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
            "activity_instances": [],
            "application_command_counts": {},
        }
        if join:
            del payload["unavailable"]
        return payload

    def to_partial_payload(self) -> dict[str, Any]:
        """The partial guild that interactions carry."""
        return {"id": str(self.id), "locale": self.locale, "features": list(self.features)}

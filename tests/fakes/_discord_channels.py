"""Channels of the Discord fake: text, voice (text in voice), forum, threads, DMs, and their API objects.

What differs between them, as Discord has it:

- A **thread** (public, private, or a forum post) has a ``parent_id`` and no permission overwrites of its own:
  permissions are the parent's (see ``FakeGuild.permissions_in``), and posting in it needs Send Messages in
  Threads (``1 << 38``), not Send Messages. A **private** thread is visible only to its members and to those
  with Manage Threads. GUILD_CREATE lists active threads under ``threads``, not ``channels``.
- A **forum** holds no messages itself: each post is a public thread whose starter message has the thread's
  id. Posting a message in the forum channel is ``400 50008``.
- A **voice** channel has a text chat of its own ("text in voice"): messages work as in a text channel.
- A **DM** has no guild: one recipient, and no permissions to compute.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes._discord_model import FakeGuild, FakeMember, FakeUser, Overwrite


class ChannelType(enum.IntEnum):
    """Channel types the fake serves."""

    GUILD_TEXT = 0
    DM = 1
    GUILD_VOICE = 2
    GUILD_CATEGORY = 4
    GUILD_ANNOUNCEMENT = 5
    ANNOUNCEMENT_THREAD = 10
    PUBLIC_THREAD = 11
    PRIVATE_THREAD = 12
    GUILD_FORUM = 15

    @property
    def is_thread(self) -> bool:
        """Whether channels of this type are threads."""
        return self in (ChannelType.ANNOUNCEMENT_THREAD, ChannelType.PUBLIC_THREAD, ChannelType.PRIVATE_THREAD)

    @property
    def holds_messages(self) -> bool:
        """Whether messages can be posted in channels of this type (forums and categories hold none)."""
        return self not in (ChannelType.GUILD_CATEGORY, ChannelType.GUILD_FORUM)


@dataclass(eq=False)
class FakeChannel:
    """A guild channel (text, voice, forum, thread), or a DM channel (``guild is None``)."""

    id: int
    name: str
    type: ChannelType = ChannelType.GUILD_TEXT
    guild: FakeGuild | None = field(default=None, repr=False)
    overwrites: list[Overwrite] = field(default_factory=list)
    position: int = 0
    topic: str | None = None
    nsfw: bool = False
    recipient: FakeUser | None = None
    last_message_id: int | None = None
    parent: FakeChannel | None = field(default=None, repr=False)
    """A thread's parent channel (text, announcement or forum)."""
    owner: FakeMember | None = field(default=None, repr=False)
    """Who started a thread."""
    thread_members: list[FakeMember] = field(default_factory=list, repr=False)
    """Who joined a thread (a private thread's members are the only ones who see it)."""
    created_at: str = ""
    message_count: int = 0

    @property
    def mention(self) -> str:
        """The text that mentions this channel."""
        return f"<#{self.id}>"

    @property
    def is_thread(self) -> bool:
        """Whether this is a thread (its permissions are its parent's)."""
        return self.type.is_thread

    @property
    def is_private_thread(self) -> bool:
        """Whether this is a private thread (visible to its members and to Manage Threads only)."""
        return self.type == ChannelType.PRIVATE_THREAD

    def to_payload(self, *, bot_user: FakeUser | None = None) -> dict[str, Any]:
        """The channel object as the API returns it (with the bot's thread membership when ``bot_user`` is in)."""
        last = str(self.last_message_id) if self.last_message_id else None
        if self.guild is None:
            recipients = [self.recipient.to_payload()] if self.recipient is not None else []
            return {
                "id": str(self.id),
                "type": int(self.type),
                "last_message_id": last,
                "recipients": recipients,
                "flags": 0,
            }
        if self.is_thread:
            return self._thread_payload(last, bot_user)
        payload: dict[str, Any] = {
            "id": str(self.id),
            "type": int(self.type),
            "guild_id": str(self.guild.id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [o.to_payload() for o in self.overwrites],
            "parent_id": None,
            "nsfw": self.nsfw,
            "last_message_id": last,
            "rate_limit_per_user": 0,
            "flags": 0,
        }
        if self.type == ChannelType.GUILD_VOICE:
            payload.update({"bitrate": 64000, "user_limit": 0, "rtc_region": None, "video_quality_mode": 1})
        else:
            payload.update({"topic": self.topic, "default_auto_archive_duration": 1440})
        if self.type == ChannelType.GUILD_FORUM:
            payload.update(
                {
                    "available_tags": [],
                    "default_reaction_emoji": None,
                    "default_sort_order": None,
                    "default_forum_layout": 0,
                    "default_thread_rate_limit_per_user": 0,
                }
            )
        return payload

    def _thread_payload(self, last: str | None, bot_user: FakeUser | None) -> dict[str, Any]:
        assert self.guild is not None
        assert self.parent is not None
        assert self.owner is not None
        metadata: dict[str, Any] = {
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": self.created_at,
            "locked": False,
            "create_timestamp": self.created_at,
        }
        if self.is_private_thread:
            metadata["invitable"] = True
        payload: dict[str, Any] = {
            "id": str(self.id),
            "type": int(self.type),
            "guild_id": str(self.guild.id),
            "parent_id": str(self.parent.id),
            "owner_id": str(self.owner.id),
            "name": self.name,
            "last_message_id": last,
            "message_count": self.message_count,
            "total_message_sent": self.message_count,
            "member_count": min(len(self.thread_members), 50),
            "rate_limit_per_user": 0,
            "flags": 0,
            "thread_metadata": metadata,
        }
        if self.parent.type == ChannelType.GUILD_FORUM:
            payload["applied_tags"] = []
        if bot_user is not None and any(m.user is bot_user for m in self.thread_members):
            payload["member"] = {
                "id": str(self.id),
                "user_id": str(bot_user.id),
                "join_timestamp": self.created_at,
                "flags": 1,
            }
        return payload

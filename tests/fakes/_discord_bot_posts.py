"""The bot's own channel messages: posting, editing, deleting and reading history, with Discord's refusals.

``POST /channels/{id}/messages``:

- ``403 50001 Missing Access`` if the bot cannot see the channel (no View Channel, or a private thread it is
  not in);
- ``403 50013 Missing Permissions`` without Send Messages (in a thread: Send Messages in Threads, and Send
  Messages does not count there), Attach Files for files, Read Message History for a reply; without Embed
  Links the embeds are dropped, and a message left empty by that is refused the same way;
- ``400 50008 Cannot send messages in a non-text channel`` in a forum or a category;
- ``403 50007 Cannot send messages to this user`` in a DM with a user who refuses DMs, or with another bot;
- with ``enforce_nonce``, a repeat of a nonce within the nonce window (``FakeDiscord(nonce_window=...)``, on
  the fake's clock) answers with the message already created and creates nothing; if that message was deleted
  meanwhile, ``404 10008 Unknown Message``; past the window, a repeat creates a second message.

Editing needs the bot to be the author (``403 50005``); deleting another's message needs Manage Messages;
reading history needs Read Message History. What the bot reads of other members' messages follows the
Message Content rule (``_discord_content_rule``).

None of this applies to interaction responses (callback, ``@original``, follow-ups): they go through the
interaction's webhook, and the interaction's ``app_permissions`` tells the bot what it may do in the channel.
"""

from __future__ import annotations

from typing import Any

from tests.fakes._discord_channels import FakeChannel
from tests.fakes._discord_messages import SETTABLE_FLAGS, DiscordError, FormErrors, missing_permissions, unknown
from tests.fakes._discord_model import FakeUser, Permission
from tests.fakes._discord_records import EPHEMERAL, MessageRecord
from tests.fakes._discord_state import MESSAGE_TYPE_DEFAULT, MESSAGE_TYPE_REPLY, DiscordState, MessageBody


class BotChannelMessages:
    """The channel routes of the bot's messages, by Discord's rules."""

    def __init__(self, state: DiscordState) -> None:
        self.state = state

    def find_by_nonce(self, channel: FakeChannel, author: FakeUser, nonce: Any) -> MessageRecord | None:
        """A message this author created in this channel with the same nonce, within the nonce window."""
        horizon = self.state.now() - self.state.config.nonce_window
        for record in reversed(list(self.state.messages.values())):
            if record.created_at < horizon:
                break
            if record.channel is channel and record.author is author and record.nonce == nonce and nonce is not None:
                return record
        return None

    def post(self, channel: FakeChannel, body: MessageBody) -> MessageRecord:
        """``POST /channels/{id}/messages`` by the bot, with Discord's permission and nonce rules."""
        data = body.json
        reply_to = self._reply_target(channel, data.get("message_reference"))
        needed = Permission.SEND_MESSAGES_IN_THREADS if channel.is_thread else Permission.SEND_MESSAGES
        if body.files:
            needed |= Permission.ATTACH_FILES
        if reply_to is not None:
            needed |= Permission.READ_MESSAGE_HISTORY
        granted = self.state.require_permissions(channel, int(needed))
        if not channel.type.holds_messages:
            raise DiscordError(400, 50008, "Cannot send messages in a non-text channel")
        self._check_dm_recipient(channel)
        if data.get("embeds") and not granted & Permission.EMBED_LINKS:
            # Discord drops the embeds; with nothing else left the message is refused.
            data = {k: v for k, v in data.items() if k != "embeds"}
            if not (data.get("content") or body.files or data.get("components")):
                raise missing_permissions()
        if data.get("enforce_nonce") and data.get("nonce") is not None:
            # A repeat within the window answers with the message already created, and creates nothing.
            previous = self.find_by_nonce(channel, self.state.bot_user, data["nonce"])
            if previous is not None and previous.deleted:
                raise unknown("Message", 10008)
            if previous is not None:
                return previous
        return self.state.create_message(
            channel=channel,
            author=self.state.bot_user,
            body=MessageBody(json=data, files=body.files),
            via="channel",
            flags_allowed=SETTABLE_FLAGS & ~EPHEMERAL,
            message_type=MESSAGE_TYPE_REPLY if reply_to is not None else MESSAGE_TYPE_DEFAULT,
            reply_to=reply_to,
            nonce_allowed=True,
        )

    def _reply_target(self, channel: FakeChannel, reference: Any) -> MessageRecord | None:
        if not (isinstance(reference, dict) and reference.get("message_id")):
            return None
        try:
            target = self.state.messages.get(int(reference["message_id"]))
        except (TypeError, ValueError):
            target = None
        if target is None or target.channel is not channel or target.deleted:
            if isinstance(reference, dict) and reference.get("fail_if_not_exists") is False:
                return None
            errors = FormErrors()
            errors.add(("message_reference",), "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
            errors.raise_if_any()
        return target

    def _check_dm_recipient(self, channel: FakeChannel) -> None:
        recipient = channel.recipient
        if channel.guild is None and recipient is not None and (recipient.bot or not recipient.accepts_dms):
            raise DiscordError(403, 50007, "Cannot send messages to this user")

    def edit(self, channel: FakeChannel, message_id: int, body: MessageBody) -> MessageRecord:
        """``PATCH /channels/{id}/messages/{mid}``: only the author may change the content."""
        self.state.require_permissions(channel, 0)
        record = self.state.visible_message(channel, message_id)
        if record.author is not self.state.bot_user:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        return self.state.edit_message(record, body, via="channel")

    def delete(self, channel: FakeChannel, message_id: int) -> None:
        """``DELETE /channels/{id}/messages/{mid}``: own messages, or others' with Manage Messages."""
        self.state.require_permissions(channel, 0)
        record = self.state.visible_message(channel, message_id)
        if record.author is not self.state.bot_user:
            self.state.require_permissions(channel, int(Permission.MANAGE_MESSAGES))
        self.state.delete_message(record)

    def history(
        self, channel: FakeChannel, *, limit: int, before: int | None, after: int | None, around: int | None
    ) -> list[MessageRecord]:
        """``GET /channels/{id}/messages``: newest first, as Discord pages them."""
        self.state.require_permissions(channel, int(Permission.READ_MESSAGE_HISTORY))
        visible = [
            m for m in self.state.messages.values() if m.channel is channel and not m.deleted and not m.ephemeral
        ]
        visible.sort(key=lambda m: m.id, reverse=True)
        if around is not None:
            older = [m for m in visible if m.id <= around][: (limit + 1) // 2]
            newer = [m for m in visible if m.id > around][-(limit // 2) :] if limit // 2 else []
            return newer + older
        if before is not None:
            visible = [m for m in visible if m.id < before]
        if after is not None:
            visible = [m for m in visible if m.id > after][-limit:]
        return visible[:limit]

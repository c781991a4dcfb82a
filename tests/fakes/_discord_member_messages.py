"""Messages members post, as Discord's client sends them and Discord dispatches them to the bot.

- A member posts only where they could: they see the channel (a private thread: they are in it), and have
  Send Messages there (Send Messages in Threads in a thread) and Attach Files for files; forums hold posts,
  not messages (``add_forum_post``). Anything else raises :class:`InvocationRefused`.
- Mentions are parsed from the text as Discord's client leaves them: ``<@id>`` of a member puts them in
  ``mentions``, ``<@&id>`` in ``mention_roles``, ``@everyone``/``@here`` set ``mention_everyone`` (with the
  permission to). A reply (``reply_to``) with the ping on (``mention_author=True``, the client's default) adds
  the replied-to author to ``mentions``, and its MESSAGE_CREATE carries the ``referenced_message``.
- An edit dispatches MESSAGE_UPDATE with the whole message (a reply keeps its ping, an edit notifies nobody);
  a deletion MESSAGE_DELETE (a reply's ``referenced_message`` is null from then on).
- A forward has no content or files of its own: ``message_reference`` of type 1 (FORWARD) and
  ``message_snapshots: [{"message": {...}}]`` with a copy of the original's content, embeds and files.
- A forum post is a public thread whose starter message has the thread's id: THREAD_CREATE, then
  MESSAGE_CREATE.
- ``redeliver`` sends a message's MESSAGE_CREATE again, as Discord may (after a RESUME, for one).

Every gateway dispatch obeys the intents and the Message Content rule of the session that receives it.
"""

from __future__ import annotations

from collections.abc import Sequence

from tests.fakes._discord_channels import ChannelType, FakeChannel
from tests.fakes._discord_commands import InvocationRefused
from tests.fakes._discord_files import UploadedFile
from tests.fakes._discord_model import FakeMember, FakeUser, Permission
from tests.fakes._discord_records import MessageRecord
from tests.fakes._discord_state import MESSAGE_TYPE_DEFAULT, MESSAGE_TYPE_REPLY, DiscordState, MessageBody

Author = FakeMember | FakeUser
# Members' own messages are checked against the channel's limit by their client; the fake does not refuse them.
_NO_FILE_LIMIT = 2**62


class MemberMessages:
    """Posts, replies, edits, forwards and forum posts by members."""

    def __init__(self, state: DiscordState) -> None:
        self.state = state

    def _author(self, channel: FakeChannel, author: Author, *, with_files: bool) -> FakeUser:
        guild = channel.guild
        if guild is None:
            user = author.user if isinstance(author, FakeMember) else author
            if channel.recipient is not user:
                raise InvocationRefused(f"{user.username} is not in this DM")
            return user
        member = author if isinstance(author, FakeMember) else guild.member(author.id)
        if member is None or member.guild is not guild:
            raise InvocationRefused(f"{author!r} is not a member of {guild.name}")
        if not channel.type.holds_messages:
            raise InvocationRefused(f"#{channel.name} takes no messages (a forum takes posts: add_forum_post)")
        if not guild.can_see(member, channel):
            raise InvocationRefused(f"{member.user.username} cannot see #{channel.name}")
        permissions = guild.permissions_in(member, channel)
        needed = Permission.SEND_MESSAGES_IN_THREADS if channel.is_thread else Permission.SEND_MESSAGES
        if with_files:
            needed |= Permission.ATTACH_FILES
        if permissions & needed != needed:
            raise InvocationRefused(f"{member.user.username} may not post that in #{channel.name}")
        return member.user

    def post(
        self,
        channel: FakeChannel,
        author: Author,
        content: str,
        files: Sequence[UploadedFile],
        *,
        reply_to: MessageRecord | None = None,
        mention_author: bool = True,
    ) -> MessageRecord:
        """A member's message (a reply with ``reply_to``)."""
        user = self._author(channel, author, with_files=bool(files))
        if reply_to is not None and (reply_to.channel is not channel or reply_to.deleted or reply_to.ephemeral):
            raise InvocationRefused("a reply goes to a visible message of the same channel")
        return self.state.create_message(
            channel=channel,
            author=user,
            body=MessageBody(json={"content": content}, files=list(files)),
            via="member",
            flags_allowed=0,
            message_type=MESSAGE_TYPE_REPLY if reply_to is not None else MESSAGE_TYPE_DEFAULT,
            reply_to=reply_to,
            ping_reply=mention_author,
            file_limit=_NO_FILE_LIMIT,
        )

    def edit(self, record: MessageRecord, content: str) -> MessageRecord:
        """The author edits the text of their message: MESSAGE_UPDATE."""
        if record.author.bot or record.interaction is not None:
            raise InvocationRefused("members edit their own messages only")
        if record.deleted:
            raise InvocationRefused("the message was deleted")
        return self.state.edit_message(record, MessageBody(json={"content": content}), via="member")

    def delete(self, record: MessageRecord) -> None:
        """The author (or a moderator) deletes a message: MESSAGE_DELETE; replies then show it as gone."""
        if record.deleted:
            raise InvocationRefused("the message was already deleted")
        self.state.delete_message(record)

    def forward(self, channel: FakeChannel, author: Author, original: MessageRecord) -> MessageRecord:
        """A member forwards ``original`` to ``channel``."""
        if original.deleted or original.ephemeral:
            raise InvocationRefused("only a visible message can be forwarded")
        source_guild = original.channel.guild
        if source_guild is not None:
            member = author if isinstance(author, FakeMember) else source_guild.member(author.id)
            if member is None or member.guild is not source_guild or not source_guild.can_see(member, original.channel):
                raise InvocationRefused("the member cannot see the message they forward")
        user = self._author(channel, author, with_files=bool(original.attachments))
        return self.state.create_message(
            channel=channel,
            author=user,
            body=MessageBody(json={"content": ""}),
            via="member",
            flags_allowed=0,
            file_limit=_NO_FILE_LIMIT,
            forward_of=original,
        )

    def forum_post(
        self, forum: FakeChannel, name: str, author: FakeMember, content: str, files: Sequence[UploadedFile]
    ) -> MessageRecord:
        """A member opens a forum post: a thread, and its starter message with the thread's id."""
        guild = forum.guild
        if guild is None or forum.type != ChannelType.GUILD_FORUM:
            raise InvocationRefused(f"#{forum.name} is not a forum")
        if author.guild is not guild or not guild.can_see(author, forum):
            raise InvocationRefused(f"{author.user.username} cannot see #{forum.name}")
        # Opening a post is "Send Messages" in the forum itself.
        if not guild.permissions_in(author, forum) & Permission.SEND_MESSAGES:
            raise InvocationRefused(f"{author.user.username} may not post in #{forum.name}")
        thread = guild.add_thread(forum, name, owner=author)
        return self.state.create_message(
            channel=thread,
            author=author.user,
            body=MessageBody(json={"content": content}, files=list(files)),
            via="member",
            flags_allowed=0,
            file_limit=_NO_FILE_LIMIT,
            message_id=thread.id,
        )

    def redeliver(self, record: MessageRecord) -> str | None:
        """Dispatch the message's MESSAGE_CREATE once more; "live", "buffered", or None if no session takes it."""
        if record.created_event is None:
            raise InvocationRefused("the message was never dispatched (ephemeral?)")
        return self.state.dispatch_message("MESSAGE_CREATE", record, record.created_event)

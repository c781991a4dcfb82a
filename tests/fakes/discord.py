"""A loopback fake of Discord for end-to-end tests: REST under ``/api/v10``, the gateway, and a CDN.

It runs in the test's own event loop on 127.0.0.1 (ephemeral port). A real ``python bot.py`` reaches it with
``DISCORD_API_BASE_URL=fake.api_base`` and ``DISCORD_GATEWAY_URL=fake.gateway_url``; the test plays the
members and admins, and asserts on what the fake recorded::

    async with FakeDiscord(ack_deadline=3.0) as discord:
        guild = discord.add_guild("Test server")          # before the bot connects
        general = guild.add_text_channel("general")
        alice = guild.add_member("alice")
        ...start the bot, wait until it synced its commands...
        call = await discord.invoke_slash("imagine", {"prompt": "a cat"}, user=alice, channel=general)
        await discord.wait_for(lambda: call.original is not None and call.original.attachments)

Where it matters it behaves like Discord: the 3-second acknowledgement deadline, token expiry, one response
per interaction, file count and size limits, content and embed limits, ``allowed_mentions``, nonces and their
window, the options and permissions of synced commands, rate limits with 429 answers, the intents a bot
identified with and the Message Content rule (other members' messages arrive empty), channel permissions
(threads need Send Messages in Threads), DMs that refuse the bot, guilds that stream in after READY, and joins.
See the helper modules ``_discord_*.py`` for each rule:

- ``_discord_model`` / ``_discord_channels``: the world (guilds, roles, members, channels, threads, forums) and
  permissions;
- ``_discord_state``: messages, interactions, responses, the bot's posting rules, the fake's clock;
- ``_discord_content_rule``: what a bot without the Message Content intent reads;
- ``_discord_member_messages``: what members post (mentions, replies, edits, forwards, forum posts);
- ``_discord_guild_stream``: GUILD_CREATE at start-up, held guilds, joins, new channels;
- ``_discord_gateway``, ``_discord_rest``, ``_discord_invocations``, ``_discord_commands``,
  ``_discord_messages``, ``_discord_files``, ``_discord_records``: the wire, commands, checks and records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from aiohttp import web

from tests.fakes._discord_channels import ChannelType, FakeChannel
from tests.fakes._discord_commands import CommandSync, InvocationRefused
from tests.fakes._discord_files import Upload, UploadedFile
from tests.fakes._discord_gateway import GatewayConnection, GatewayHub, GatewaySession
from tests.fakes._discord_invocations import Invocations
from tests.fakes._discord_member_messages import MemberMessages
from tests.fakes._discord_messages import DiscordError
from tests.fakes._discord_model import (
    BOOSTED_UPLOAD_LIMITS,
    DEFAULT_LOCALE,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
    Overwrite,
    Permission,
)
from tests.fakes._discord_records import (
    DID_NOT_RESPOND,
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
from tests.fakes._discord_rest import Injection, RestApi
from tests.fakes._discord_state import DiscordState, FakeConfig

__all__ = [
    "BOOSTED_UPLOAD_LIMITS",
    "DID_NOT_RESPOND",
    "Callback",
    "CallbackType",
    "ChannelType",
    "CommandSync",
    "DiscordError",
    "FakeChannel",
    "FakeConfig",
    "FakeDiscord",
    "FakeGuild",
    "FakeMember",
    "FakeRole",
    "FakeUser",
    "GatewayConnection",
    "GatewaySession",
    "Injection",
    "InteractionRecord",
    "InteractionType",
    "InvocationRefused",
    "Mentions",
    "MessageRecord",
    "MessageSnapshot",
    "MessageVersion",
    "Overwrite",
    "Permission",
    "RecordedRequest",
    "StoredAttachment",
    "Upload",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
Member = FakeMember | FakeUser


class FakeDiscord:
    """Discord on 127.0.0.1: build the world, start, act as members, assert on the records."""

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        bot_name: str = "Imagine",
        ack_deadline: float = 3.0,
        token_lifetime: float = 15 * 60.0,
        heartbeat_interval: float = 41.25,
        max_file_size: int = 10 * 1024 * 1024,
        attachment_url_lifetime: float = 24 * 3600.0,
        nonce_window: float = 5 * 60.0,
        rate_limit: tuple[int, float] = (50, 1.0),
        route_limits: Mapping[str, tuple[int, float]] | None = None,
        privileged_intents: int = 0,
        recommended_shards: int = 1,
    ) -> None:
        self.config = FakeConfig(
            token=token,
            bot_name=bot_name,
            ack_deadline=ack_deadline,
            token_lifetime=token_lifetime,
            heartbeat_interval=heartbeat_interval,
            max_file_size=max_file_size,
            attachment_url_lifetime=attachment_url_lifetime,
            nonce_window=nonce_window,
            rate_limit=rate_limit,
            route_limits=dict(route_limits or {}),
            privileged_intents=privileged_intents,
            recommended_shards=recommended_shards,
        )
        self.state = DiscordState(self.config)
        self.gateway = GatewayHub(self.state)
        self.state.gateway = self.gateway
        self.rest = RestApi(self.state, self.gateway.handle)
        self._invocations = Invocations(self.state)
        self._member_messages = MemberMessages(self.state)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # --- the CDN --------------------------------------------------------------------------------------------------

    def hold_cdn(self) -> None:
        """Attachment downloads wait from now on (a slow CDN) until :meth:`release_cdn`."""
        self.state.cdn_gate = asyncio.Event()

    def release_cdn(self) -> None:
        """Answer the waiting attachment downloads and every later one at once."""
        gate, self.state.cdn_gate = self.state.cdn_gate, None
        if gate is not None:
            gate.set()

    @property
    def cdn_requests(self) -> int:
        """Attachment downloads asked for so far, answered or not."""
        return self.state.cdn_requests

    # --- lifecycle ----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on 127.0.0.1 on an ephemeral port."""
        runner = web.AppRunner(self.rest.app, access_log=None, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self._port = int(port)
        self.state.base_url = f"http://{host}:{port}"
        log.info("fake Discord listening on %s", self.state.base_url)

    async def stop(self) -> None:
        """Close gateway connections and the server, and cancel deadline timers."""
        self.state.cancel_timers()
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- addresses and identity -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (the CDN serves attachments under it)."""
        if self._port is None:
            raise RuntimeError("FakeDiscord is not started")
        return self.state.base_url

    @property
    def api_base(self) -> str:
        """What ``DISCORD_API_BASE_URL`` (``discord.http.Route.BASE``) must be."""
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """What ``DISCORD_GATEWAY_URL`` (``DiscordWebSocket.DEFAULT_GATEWAY``) must be."""
        return f"{self.base_url.replace('http://', 'ws://', 1)}/gateway"

    @property
    def token(self) -> str:
        """The bot token the fake accepts."""
        return self.config.token

    @property
    def bot_user(self) -> FakeUser:
        """The bot's user (its id is also the application id)."""
        return self.state.bot_user

    @property
    def application_id(self) -> int:
        """The application id."""
        return self.state.application_id

    def bot_env(self) -> dict[str, str]:
        """The environment variables that point a bot at this fake."""
        return {
            "DISCORD_TOKEN": self.token,
            "DISCORD_API_BASE_URL": self.api_base,
            "DISCORD_GATEWAY_URL": self.gateway_url,
        }

    # --- the world ----------------------------------------------------------------------------------------------

    def add_guild(
        self,
        name: str,
        *,
        everyone_permissions: int = Permission.everyone_default(),
        bot_permissions: int = Permission.bot_default(),
        locale: str = DEFAULT_LOCALE,
        max_file_size: int | None = None,
        owner_name: str = "owner",
        guild_id: int | None = None,
    ) -> FakeGuild:
        """A server with an owner, @everyone, and the bot as a member (with a managed role of its own).

        ``guild_id`` fixes the id (its bits 22 and up decide the shard: ``(id >> 22) % shard_count``). Added while
        the bot is connected, it is a join: its GUILD_CREATE (without ``unavailable``, so discord.py fires
        ``on_guild_join``) goes out at the next ``await``, with the channels added and the ``system_channel``
        set until then; channels added later arrive as CHANNEL_CREATE.
        """
        if guild_id is not None and any(g.id == guild_id for g in self.state.guilds):
            raise ValueError(f"guild id {guild_id} is taken")
        guild = FakeGuild.create(
            self.state.new_id,
            name,
            bot_user=self.state.bot_user,
            owner_name=owner_name,
            everyone_permissions=everyone_permissions,
            bot_permissions=bot_permissions,
            locale=locale,
            max_file_size=max_file_size,
            guild_id=guild_id,
        )
        self.state.guilds.append(guild)
        guild.listener = self.gateway.guild_stream
        self.gateway.guild_stream.join(guild)
        return guild

    def remove_bot(self, guild: FakeGuild) -> None:
        """An admin removes the bot from ``guild``: it hears GUILD_DELETE and may no longer act there. Adding it
        again is ``add_guild(..., guild_id=guild.id)``: a join, as on Discord, into the server as it is then."""
        self.state.leave_guild(guild)

    @property
    def guilds(self) -> list[FakeGuild]:
        """Every server the bot is in."""
        return self.state.guilds

    # --- records ------------------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every HTTP request answered, in order."""
        return self.state.requests

    @property
    def unknown_routes(self) -> list[RecordedRequest]:
        """Requests to routes the fake does not serve (answered 404)."""
        return self.state.unknown_routes

    @property
    def command_syncs(self) -> list[CommandSync]:
        """Every bulk overwrite of commands (accepted or refused)."""
        return self.state.command_syncs

    @property
    def global_commands(self) -> list[dict[str, Any]]:
        """Global commands as stored after the last sync."""
        return self.state.global_commands

    def guild_commands(self, guild: FakeGuild) -> list[dict[str, Any]]:
        """A guild's commands as stored."""
        return self.state.guild_commands.get(guild.id, [])

    @property
    def interactions(self) -> list[InteractionRecord]:
        """Every interaction, oldest first."""
        return list(self.state.interactions.values())

    @property
    def messages(self) -> list[MessageRecord]:
        """Every message (channel, interaction responses, follow-ups; deleted ones too), oldest first."""
        return list(self.state.messages.values())

    def channel_messages(self, channel: FakeChannel, *, include_deleted: bool = False) -> list[MessageRecord]:
        """The messages of a channel that everyone sees (not ephemeral), oldest first."""
        return [
            m
            for m in self.state.messages.values()
            if m.channel is channel and not m.ephemeral and (include_deleted or not m.deleted)
        ]

    @property
    def gateway_connections(self) -> list[GatewayConnection]:
        """Every websocket connection, oldest first."""
        return self.gateway.connections

    @property
    def gateway_sessions(self) -> list[GatewaySession]:
        """Every gateway session (one per IDENTIFY), oldest first."""
        return self.gateway.sessions

    def requests_to(self, method: str, route: str) -> list[RecordedRequest]:
        """Requests whose route template matches (``"PATCH", "/webhooks/{application_id}/..."``)."""
        return [r for r in self.state.requests if r.method == method and r.route == route]

    # --- waiting ------------------------------------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], T | None], timeout: float = 10.0, *, what: str = "") -> T:
        """Wait until ``predicate()`` is truthy (re-checked on every change of the fake), and return it.

        ``timeout`` is real time: :meth:`advance_time` does not shorten it.
        """
        loop_time = time.monotonic
        deadline = loop_time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop_time()
            if remaining <= 0:
                raise TimeoutError(f"fake Discord: not within {timeout}s: {what or predicate}")
            await self.state.wait_changed(remaining)

    async def wait_for_session(self, timeout: float = 10.0, *, after: int = 0) -> GatewaySession:
        """The gateway session created by the (``after``+1)-th IDENTIFY."""
        sessions = self.gateway.sessions
        return await self.wait_for(
            lambda: sessions[after] if len(sessions) > after else None, timeout, what="an IDENTIFY"
        )

    async def wait_for_sync(self, timeout: float = 10.0, *, after: int = 0) -> CommandSync:
        """The (``after``+1)-th command sync."""
        syncs = self.state.command_syncs
        return await self.wait_for(lambda: syncs[after] if len(syncs) > after else None, timeout, what="a sync")

    # --- members and admins -----------------------------------------------------------------------------------

    async def invoke_slash(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: Member,
        channel: FakeChannel | None = None,
        deadline: float | None = None,
        token_lifetime: float | None = None,
        locale: str | None = None,
    ) -> InteractionRecord:
        """A member runs ``/name`` (``"quota set"`` for a subcommand); attachments are :class:`Upload`.

        Raises :class:`InvocationRefused` when Discord's client would not send it.
        """
        return self._invocations.slash(
            name,
            options or {},
            user=user,
            channel=channel,
            deadline=deadline,
            token_lifetime=token_lifetime,
            locale=locale,
        )

    async def autocomplete(
        self,
        name: str,
        options: Mapping[str, Any],
        *,
        focused: str,
        user: Member,
        channel: FakeChannel | None = None,
        locale: str | None = None,
        timeout: float = 5.0,
    ) -> list[dict[str, Any]]:
        """A member types in the autocomplete option ``focused`` of ``/name``: the suggestions the bot answered
        (TimeoutError if it answered nothing: Discord shows no suggestions then)."""
        record = self._invocations.autocomplete(
            name, options, focused=focused, user=user, channel=channel, locale=locale
        )
        await self.wait_for(lambda: record.acknowledged or record.failed, timeout, what="the suggestions")
        assert record.callback is not None, record.failure
        assert record.callback.data is not None
        choices: list[dict[str, Any]] = record.callback.data["choices"]
        return choices

    async def invoke_message_context(
        self,
        name: str,
        message: MessageRecord,
        *,
        user: Member,
        deadline: float | None = None,
        token_lifetime: float | None = None,
        locale: str | None = None,
    ) -> InteractionRecord:
        """A member runs the message context menu command ``name`` on ``message``."""
        return self._invocations.message_context(
            name, message, user=user, deadline=deadline, token_lifetime=token_lifetime, locale=locale
        )

    async def invoke_user_context(
        self,
        name: str,
        target: FakeMember,
        *,
        user: Member,
        channel: FakeChannel | None = None,
        deadline: float | None = None,
        token_lifetime: float | None = None,
        locale: str | None = None,
    ) -> InteractionRecord:
        """A member runs the user context menu command ``name`` on ``target``."""
        return self._invocations.user_context(
            name,
            target,
            user=user,
            channel=channel,
            deadline=deadline,
            token_lifetime=token_lifetime,
            locale=locale,
        )

    async def click(
        self,
        message: MessageRecord,
        custom_id: str,
        user: Member,
        *,
        values: Sequence[str] | None = None,
        deadline: float | None = None,
        token_lifetime: float | None = None,
        locale: str | None = None,
    ) -> InteractionRecord:
        """A member clicks a button (or picks ``values`` in a string select) of a message."""
        return self._invocations.click(
            message,
            custom_id,
            user=user,
            values=values,
            deadline=deadline,
            token_lifetime=token_lifetime,
            locale=locale,
        )

    async def submit_modal(
        self,
        interaction: InteractionRecord,
        values: Mapping[str, str | Sequence[str]],
        *,
        user: Member | None = None,
        deadline: float | None = None,
        token_lifetime: float | None = None,
        locale: str | None = None,
    ) -> InteractionRecord:
        """The member fills in and submits the modal the bot opened in answer to ``interaction``."""
        return self._invocations.submit_modal(
            interaction, values, user=user, deadline=deadline, token_lifetime=token_lifetime, locale=locale
        )

    async def post_message(
        self,
        channel: FakeChannel,
        author: Member,
        content: str = "",
        *,
        files: Iterable[Upload] = (),
        reply_to: MessageRecord | None = None,
        mention_author: bool = True,
    ) -> MessageRecord:
        """A member posts a message (MESSAGE_CREATE), e.g. the target of a context menu command.

        ``<@bot_id>`` in ``content`` mentions the bot (a role or @everyone does not). ``reply_to`` makes it a reply
        whose event carries ``referenced_message``; with ``mention_author`` (the client's default) the
        replied-to author is in ``mentions``. In a DM (:meth:`dm_channel`) the author is its recipient.
        Raises :class:`InvocationRefused` where the member could not post it.
        """
        return self._member_messages.post(
            channel, author, content, _uploads(files), reply_to=reply_to, mention_author=mention_author
        )

    async def edit_message(self, message: MessageRecord, *, content: str) -> MessageRecord:
        """The member who wrote ``message`` changes its text: MESSAGE_UPDATE with the whole message."""
        return self._member_messages.edit(message, content)

    async def delete_message(self, message: MessageRecord) -> None:
        """A member (its author, or a moderator) deletes ``message``: MESSAGE_DELETE."""
        self._member_messages.delete(message)

    async def post_forward(self, channel: FakeChannel, author: Member, original: MessageRecord) -> MessageRecord:
        """A member forwards ``original`` to ``channel``: empty content and files, the original in ``snapshots``."""
        return self._member_messages.forward(channel, author, original)

    async def add_forum_post(
        self,
        forum: FakeChannel,
        name: str,
        author: FakeMember,
        content: str = "",
        files: Iterable[Upload] = (),
    ) -> MessageRecord:
        """A member opens a post in a forum: returns its starter message, whose ``channel`` is the new thread."""
        return self._member_messages.forum_post(forum, name, author, content, _uploads(files))

    def redeliver(self, message: MessageRecord) -> str | None:
        """Dispatch ``message``'s MESSAGE_CREATE again, as Discord may (e.g. after a RESUME).

        Returns "live", "buffered" (waits for a RESUME) or None (no session, or it lacks the intent).
        """
        return self._member_messages.redeliver(message)

    def dm_channel(self, user: Member) -> FakeChannel:
        """The DM channel between the bot and ``user`` (what ``POST /users/@me/channels`` answers)."""
        return self.state.dm_channel(user.user if isinstance(user, FakeMember) else user)

    # --- the application ----------------------------------------------------------------------------------------

    @property
    def application_owner(self) -> FakeUser:
        """The user who owns the application (add them to a guild with ``guild.add_member(owner)``)."""
        return self.state.app_owner

    def set_public(self, public: bool) -> None:
        """Whether anyone may add the bot (the Developer Portal's Public Bot): ``bot_public``."""
        self.state.application.public = public

    def set_team(self, accepted: Sequence[FakeUser], *, invited: Sequence[FakeUser] = ()) -> None:
        """A team owns the application from now on: ``accepted`` members, and ``invited`` ones who have not
        accepted yet. The application's ``owner`` becomes the team's pseudo-user."""
        self.state.application.set_team(self.state.new_id(), accepted, invited)

    def add_channel_webhook(self, channel: FakeChannel, name: str = "Operator alerts") -> str:
        """An incoming webhook of ``channel``, as an admin creates one: returns its URL (the form the Developer
        Portal shows, ``https://discord.com/api/webhooks/{id}/{token}``; a bot reaches it at its API base)."""
        return self.state.channel_webhooks.add(channel, name).url

    # --- controls -----------------------------------------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Every interaction token expires now: webhook routes answer ``401 50027`` from here on."""
        for record in self.state.interactions.values():
            record.token_revoked = True
        self.state.changed()

    def expire_token(self, interaction: InteractionRecord) -> None:
        """One interaction's token expires now."""
        interaction.token_revoked = True
        self.state.changed()

    def advance_time(self, seconds: float) -> None:
        """Let ``seconds`` pass at once on the fake's clock: nonce window, token lifetimes, acknowledgement
        deadlines (an unanswered interaction fails now), rate-limit windows, attachment URL expiry."""
        self.state.advance(seconds)

    def refuse_dms(self, user: Member, refuse: bool = True) -> None:
        """The user's privacy settings refuse DMs from the bot: posting in their DM answers ``403 50007``."""
        (user.user if isinstance(user, FakeMember) else user).accepts_dms = not refuse

    def hold_guild(self, guild: FakeGuild, *, delay: float | None = None) -> None:
        """At the next IDENTIFY, READY lists ``guild`` as unavailable and its GUILD_CREATE waits.

        It waits until :meth:`release_guild`, or ``delay`` seconds after the IDENTIFY. Interactions from it reach
        the bot meanwhile (their ``member`` carries role ids the bot's cache does not know).
        """
        self.gateway.guild_stream.hold(guild, delay)

    def release_guild(self, guild: FakeGuild) -> int:
        """Send a held guild's GUILD_CREATE (``"unavailable": false``); returns to how many sessions."""
        return self.gateway.guild_stream.release(guild)

    def expire_attachment_urls(self) -> None:
        """Every attachment URL issued so far expires (the CDN answers 404 to them)."""
        self.state.cdn_clock_offset += self.config.attachment_url_lifetime + 1

    def inject_429(
        self,
        pattern: str,
        *,
        times: int = 1,
        retry_after: float = 0.05,
        is_global: bool = False,
        scope: str = "user",
        after: str | None = None,
    ) -> Injection:
        """Answer the next ``times`` requests matching ``pattern`` (``"PATCH /webhooks/*"``) with a 429.

        With ``after`` (a pattern of the same form), only requests that come once a request matching it has
        succeeded: e.g. the edit that follows a channel message.
        """
        injection = Injection(
            pattern=pattern, remaining=times, retry_after=retry_after, is_global=is_global, scope=scope, after=after
        )
        self.rest.injections.append(injection)
        return injection

    async def drop_gateway(self, code: int | None = 4000) -> int:
        """Close every gateway connection (``code=None`` cuts TCP instead). The bot is expected to RESUME."""
        return await self.gateway.drop(code)

    @contextlib.asynccontextmanager
    async def gateway_outage(self, code: int | None = 4000) -> AsyncIterator[None]:
        """Drop the gateway and keep it down inside the block: dispatches wait for the RESUME after it."""
        self.gateway.hold()
        try:
            await self.gateway.drop(code)
            yield
        finally:
            self.gateway.release()

    def request_reconnect(self) -> int:
        """Send op 7 RECONNECT on every live connection."""
        return self.gateway.send_op(7, None)

    def invalidate_session(self, *, resumable: bool = False) -> int:
        """Send op 9 INVALID_SESSION on every live connection."""
        return self.gateway.send_op(9, resumable)


def _uploads(files: Iterable[Upload]) -> list[UploadedFile]:
    return [
        UploadedFile(field=f"files[{n}]", filename=f.filename, data=f.data, declared_content_type=f.content_type)
        for n, f in enumerate(files)
    ]

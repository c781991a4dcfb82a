"""How guilds reach a connected bot: after READY, later when held, as joins; and their new channels.

- READY lists every guild of the shard as ``{"id", "unavailable": true}``; a GUILD_CREATE with
  ``"unavailable": false`` follows for each. A **held** guild (``FakeDiscord.hold_guild``) streams in only
  when the test releases it or after a delay: meanwhile its interactions already reach the bot, whose cache
  knows the guild as unavailable and none of its roles or channels (discord.py's ``Member.roles`` then drops
  the role ids the interaction's ``member`` carries).
- A guild added while a session is up is a **join**: a GUILD_CREATE without the ``unavailable`` key, which is
  how discord.py tells ``on_guild_join`` from ``on_guild_available``. It is sent at the next turn of the event
  loop, so the test can add the guild's channels and set its system channel in the same synchronous step.
- A channel or thread created while a session is up arrives as CHANNEL_CREATE or THREAD_CREATE (with
  ``newly_created``); a private thread only if the bot can see it.
- A GUILD_CREATE carries every member only with the GUILD_MEMBERS intent (the bot's own member otherwise),
  and the active threads the bot can see.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.fakes._discord_channels import FakeChannel
from tests.fakes._discord_model import FakeGuild

if TYPE_CHECKING:
    from tests.fakes._discord_gateway import GatewaySession
    from tests.fakes._discord_state import DiscordState

log = logging.getLogger(__name__)

INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1

Send = Callable[["GatewaySession", str, dict[str, Any]], object]
SessionFor = Callable[[int | None], "GatewaySession | None"]


@dataclass
class _Hold:
    delay: float | None
    waiting: list[GatewaySession] = field(default_factory=list)
    timers: list[asyncio.TimerHandle] = field(default_factory=list)


class GuildStream:
    """Sends GUILD_CREATE at IDENTIFY (or later, for held guilds), joins, and channel creations."""

    def __init__(self, state: DiscordState, send: Send, session_for: SessionFor) -> None:
        self.state = state
        self._send = send
        self._session_for = session_for
        self._holds: dict[int, _Hold] = {}
        self._joining: set[int] = set()

    # --- held guilds --------------------------------------------------------------------------------------------

    def hold(self, guild: FakeGuild, delay: float | None = None) -> None:
        """From the next IDENTIFY on, READY lists ``guild`` but its GUILD_CREATE waits (``delay`` s, or a release)."""
        self._holds[guild.id] = _Hold(delay=delay)

    def release(self, guild: FakeGuild) -> int:
        """Send the held GUILD_CREATE to every session waiting for it; returns how many were sent."""
        hold = self._holds.pop(guild.id, None)
        if hold is None:
            return 0
        for timer in hold.timers:
            timer.cancel()
        sent = 0
        for session in hold.waiting:
            if not session.invalidated:
                self._send(session, "GUILD_CREATE", self.create_payload(guild, session, join=False))
                sent += 1
        self.state.changed()
        return sent

    def is_held(self, guild: FakeGuild) -> bool:
        """Whether the guild's GUILD_CREATE is still held back."""
        return guild.id in self._holds

    def cancel_timers(self) -> None:
        """Stop delayed releases (the fake is stopping)."""
        for hold in self._holds.values():
            for timer in hold.timers:
                timer.cancel()

    # --- identify, joins, channels -----------------------------------------------------------------------------

    def on_identify(self, session: GatewaySession, guilds: list[FakeGuild]) -> None:
        """The GUILD_CREATEs that follow READY (the held ones wait)."""
        for guild in guilds:
            hold = self._holds.get(guild.id)
            if hold is None:
                self._send(session, "GUILD_CREATE", self.create_payload(guild, session, join=False))
                continue
            hold.waiting.append(session)
            if hold.delay is not None:
                loop = asyncio.get_running_loop()
                hold.timers.append(loop.call_later(hold.delay, self.release, guild))

    def join(self, guild: FakeGuild) -> None:
        """The bot was added to ``guild`` while connected: GUILD_CREATE as a join, at the next loop turn."""
        if self._session_for(guild.id) is None:
            return
        self._joining.add(guild.id)
        asyncio.get_running_loop().call_soon(self._send_join, guild)

    def _send_join(self, guild: FakeGuild) -> None:
        self._joining.discard(guild.id)
        session = self._session_for(guild.id)
        if session is not None:
            self._send(session, "GUILD_CREATE", self.create_payload(guild, session, join=True))
            self.state.changed()

    def channel_created(self, channel: FakeChannel) -> None:
        """CHANNEL_CREATE or THREAD_CREATE for a connected bot that can see the new channel."""
        guild = channel.guild
        if guild is None or guild.id in self._joining or guild.id in self._holds:
            return
        session = self._session_for(guild.id)
        if session is None or not session.intents & INTENT_GUILDS:
            return
        if not guild.can_see(guild.bot_member, channel):
            return
        payload = channel.to_payload(bot_user=self.state.bot_user)
        if channel.is_thread:
            self._send(session, "THREAD_CREATE", {**payload, "newly_created": True})
        else:
            self._send(session, "CHANNEL_CREATE", payload)
        self.state.changed()

    def create_payload(self, guild: FakeGuild, session: GatewaySession, *, join: bool) -> dict[str, Any]:
        """GUILD_CREATE for this session: members as its intents allow."""
        members = guild.members if session.intents & INTENT_GUILD_MEMBERS else [guild.bot_member]
        return guild.to_create_payload(members=members, bot_user=self.state.bot_user, join=join)

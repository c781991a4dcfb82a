"""The Discord gateway: websocket sessions with HELLO, IDENTIFY/READY, heartbeats, RESUME and dispatches.

Every dispatch of a session gets the next sequence number and is kept, so a client that RESUMEs with the
last sequence it saw receives what it missed, then RESUMED. A dispatch that needs an intent (MESSAGE_CREATE in
a guild: GUILD_MESSAGES, ``1 << 9``; in a DM: DIRECT_MESSAGES, ``1 << 12``) goes only to a session that asked
for it at IDENTIFY, and message events follow the Message Content rule (``_discord_content_rule``) by the
session's intents. Guilds reach the session as ``_discord_guild_stream`` describes.

The connection speaks JSON text frames, or ``zlib-stream`` binary frames when the URL asks for it (discord.py
does, unless ``zstandard`` is installed, in which case it asks for ``zstd-stream`` and gets plain text, which
it also accepts).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes._discord_content_rule import INTENT_MESSAGE_CONTENT, for_reader
from tests.fakes._discord_guild_stream import GuildStream
from tests.fakes._discord_state import PRIVILEGED_INTENTS, DiscordState

log = logging.getLogger(__name__)

OP_DISPATCH = 0
OP_HEARTBEAT = 1
OP_IDENTIFY = 2
OP_PRESENCE_UPDATE = 3
OP_VOICE_STATE_UPDATE = 4
OP_RESUME = 6
OP_RECONNECT = 7
OP_REQUEST_GUILD_MEMBERS = 8
OP_INVALID_SESSION = 9
OP_HELLO = 10
OP_HEARTBEAT_ACK = 11

CLOSE_UNKNOWN_ERROR = 4000
CLOSE_UNKNOWN_OPCODE = 4001
CLOSE_DECODE_ERROR = 4002
CLOSE_NOT_AUTHENTICATED = 4003
CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_ALREADY_AUTHENTICATED = 4005
CLOSE_INVALID_SHARD = 4010
CLOSE_INVALID_API_VERSION = 4012
CLOSE_INVALID_INTENTS = 4013
CLOSE_DISALLOWED_INTENTS = 4014


@dataclass
class _Frame:
    payload: dict[str, Any]
    on_sent: Callable[[bool], None] | None = None
    replay: bool = False


@dataclass
class GatewayConnection:
    """One websocket connection (a bot process may open several over its life: initial, resumes...)."""

    id: int
    path: str
    query: dict[str, str]
    opened_at: float
    compression: str | None
    session: GatewaySession | None = None
    identified: bool = False
    resumed: bool = False
    heartbeats: int = 0
    received_ops: list[int] = field(default_factory=list)
    closed_at: float | None = None
    close_code: int | None = None
    closed_by: str | None = None
    _ws: web.WebSocketResponse | None = field(default=None, repr=False)
    _request: web.Request | None = field(default=None, repr=False)
    _queue: asyncio.Queue[_Frame | None] = field(default_factory=asyncio.Queue, repr=False)
    _zlib: Any = field(default=None, repr=False)

    @property
    def open(self) -> bool:
        """Whether the websocket is still up."""
        return self.closed_at is None

    def send(self, frame: _Frame) -> None:
        """Queue a frame; one writer per connection keeps them in order."""
        self._queue.put_nowait(frame)


@dataclass
class GatewaySession:
    """A gateway session: what IDENTIFY created, with its dispatches for RESUME to replay."""

    id: str
    shard: tuple[int, int]
    intents: int
    identify: dict[str, Any]
    created_at: float
    seq: int = 0
    events: list[_Frame] = field(default_factory=list, repr=False)
    connection: GatewayConnection | None = None
    resumes: int = 0
    invalidated: bool = False
    presences: list[dict[str, Any]] = field(default_factory=list)

    def handles(self, guild_id: int | None) -> bool:
        """Whether this session's shard receives a guild's events (DMs go to shard 0)."""
        shard_id, count = self.shard
        if guild_id is None:
            return shard_id == 0
        return (guild_id >> 22) % count == shard_id

    @property
    def event_names(self) -> list[str]:
        """The dispatched event names, in sequence order."""
        return [str(f.payload["t"]) for f in self.events]


class GatewayHub:
    """Accepts gateway connections and routes dispatches to the session that handles each guild."""

    def __init__(self, state: DiscordState) -> None:
        self.state = state
        self.connections: list[GatewayConnection] = []
        self.sessions: list[GatewaySession] = []
        self._ids = itertools.count(1)
        self._open = asyncio.Event()
        self._open.set()
        self._writers: set[asyncio.Task[None]] = set()
        self.guild_stream = GuildStream(state, self._dispatch_to, self.session_for)

    # --- test controls ------------------------------------------------------------------------------------------

    def hold(self) -> None:
        """Keep new connections waiting before HELLO (an outage) until :meth:`release`."""
        self._open.clear()

    def release(self) -> None:
        """End an outage: waiting connections get their HELLO."""
        self._open.set()

    async def drop(self, code: int | None = CLOSE_UNKNOWN_ERROR) -> int:
        """Close every live connection (``code=None``: cut TCP without a close frame). Returns how many."""
        live = [c for c in self.connections if c.open and c._ws is not None]
        for connection in live:
            await self._close(connection, code, by="fake")
        return len(live)

    def send_op(self, op: int, data: Any) -> int:
        """Send a raw opcode (RECONNECT, INVALID_SESSION...) on every live connection. Returns how many."""
        live = [c for c in self.connections if c.open and c._ws is not None]
        for connection in live:
            if op == OP_INVALID_SESSION and data is False and connection.session is not None:
                connection.session.invalidated = True
            connection.send(_Frame({"op": op, "d": data, "s": None, "t": None}))
        return len(live)

    async def close_all(self) -> None:
        """Close everything (the fake is stopping)."""
        self.release()
        self.guild_stream.cancel_timers()
        for connection in [c for c in self.connections if c.open]:
            await self._close(connection, 1001, by="fake")
        for task in list(self._writers):
            task.cancel()
        for task in list(self._writers):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- dispatch -----------------------------------------------------------------------------------------------

    def session_for(self, guild_id: int | None) -> GatewaySession | None:
        """The newest valid session whose shard handles ``guild_id``."""
        for session in reversed(self.sessions):
            if not session.invalidated and session.handles(guild_id):
                return session
        return None

    def dispatch(
        self,
        event: str,
        data: dict[str, Any],
        *,
        guild_id: int | None,
        intent: int | None = None,
        on_sent: Callable[[bool], None] | None = None,
    ) -> str | None:
        """Queue a dispatch; "live" if a connection is up, "buffered" if it waits for a RESUME, else None."""
        session = self.session_for(guild_id)
        if session is None:
            return None
        if intent is not None and not session.intents & intent:
            return None
        if event == "MESSAGE_CREATE" or event == "MESSAGE_UPDATE":
            data = for_reader(
                data,
                bot_id=self.state.bot_user.id,
                in_dm=guild_id is None,
                has_intent=bool(session.intents & INTENT_MESSAGE_CONTENT),
            )
        return self._dispatch_to(session, event, data, on_sent)

    def _dispatch_to(
        self,
        session: GatewaySession,
        event: str,
        data: dict[str, Any],
        on_sent: Callable[[bool], None] | None = None,
    ) -> str:
        session.seq += 1
        frame = _Frame({"op": OP_DISPATCH, "d": data, "s": session.seq, "t": event}, on_sent)
        session.events.append(frame)
        if session.connection is not None and session.connection.open:
            session.connection.send(frame)
            return "live"
        return "buffered"

    # --- websocket ----------------------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The websocket endpoint (``/gateway`` and the ``resume_gateway_url``)."""
        ws = web.WebSocketResponse(autoping=True, heartbeat=None, max_msg_size=0)
        await ws.prepare(request)
        query = dict(request.query)
        compression = query.get("compress")
        connection = GatewayConnection(
            id=next(self._ids),
            path=request.path,
            query=query,
            opened_at=self.state.now(),
            compression=compression if compression == "zlib-stream" else None,
            _ws=ws,
            _request=request,
        )
        if connection.compression == "zlib-stream":
            connection._zlib = zlib.compressobj()
        self.connections.append(connection)
        self.state.changed()
        writer = asyncio.create_task(self._writer(connection))
        self._writers.add(writer)
        writer.add_done_callback(self._writers.discard)
        try:
            await self._serve(connection, ws)
        finally:
            self._closed(connection, ws.close_code, by=connection.closed_by or "client")
            connection._queue.put_nowait(None)
        return ws

    async def _serve(self, connection: GatewayConnection, ws: web.WebSocketResponse) -> None:
        if connection.query.get("v") not in (None, "10"):
            await self._close(connection, CLOSE_INVALID_API_VERSION, by="fake")
            return
        if connection.query.get("encoding", "json") != "json":
            await self._close(connection, CLOSE_DECODE_ERROR, by="fake")
            return
        await self._open.wait()
        interval_ms = int(self.state.config.heartbeat_interval * 1000)
        connection.send(_Frame({"op": OP_HELLO, "d": {"heartbeat_interval": interval_ms}, "s": None, "t": None}))
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                if message.type == WSMsgType.BINARY:
                    await self._close(connection, CLOSE_DECODE_ERROR, by="fake")
                continue
            try:
                packet = json.loads(message.data)
                op = packet["op"]
            except (ValueError, KeyError, TypeError):
                await self._close(connection, CLOSE_DECODE_ERROR, by="fake")
                return
            connection.received_ops.append(op)
            await self._on_packet(connection, op, packet.get("d"))
            if not connection.open:
                return

    async def _on_packet(self, connection: GatewayConnection, op: int, data: Any) -> None:
        if op == OP_HEARTBEAT:
            connection.heartbeats += 1
            connection.send(_Frame({"op": OP_HEARTBEAT_ACK, "d": None, "s": None, "t": None}))
            self.state.changed()
        elif op == OP_IDENTIFY:
            await self._identify(connection, data)
        elif op == OP_RESUME:
            await self._resume(connection, data)
        elif connection.session is None:
            await self._close(connection, CLOSE_NOT_AUTHENTICATED, by="fake")
        elif op == OP_PRESENCE_UPDATE:
            connection.session.presences.append(data)
        elif op == OP_REQUEST_GUILD_MEMBERS:
            self._members_chunk(connection.session, data)
        elif op == OP_VOICE_STATE_UPDATE:
            pass
        else:
            await self._close(connection, CLOSE_UNKNOWN_OPCODE, by="fake")

    async def _identify(self, connection: GatewayConnection, data: Any) -> None:
        if connection.session is not None:
            await self._close(connection, CLOSE_ALREADY_AUTHENTICATED, by="fake")
            return
        if not isinstance(data, dict) or data.get("token") != self.state.config.token:
            await self._close(connection, CLOSE_AUTHENTICATION_FAILED, by="fake")
            return
        intents = data.get("intents")
        if not isinstance(intents, int):
            await self._close(connection, CLOSE_INVALID_INTENTS, by="fake")
            return
        if intents & PRIVILEGED_INTENTS & ~self.state.config.privileged_intents:
            await self._close(connection, CLOSE_DISALLOWED_INTENTS, by="fake")
            return
        shard = data.get("shard") or [0, 1]
        if not (isinstance(shard, list) and len(shard) == 2 and 0 <= shard[0] < shard[1]):
            await self._close(connection, CLOSE_INVALID_SHARD, by="fake")
            return
        session = GatewaySession(
            id=secrets.token_hex(16),
            shard=(int(shard[0]), int(shard[1])),
            intents=intents,
            identify={k: v for k, v in data.items() if k != "token"},
            created_at=self.state.now(),
            connection=connection,
        )
        self.sessions.append(session)
        connection.session = session
        connection.identified = True
        guilds = [g for g in self.state.guilds if session.handles(g.id)]
        self._dispatch_to(session, "READY", self._ready_payload(session, connection, guilds))
        self.guild_stream.on_identify(session, guilds)
        self.state.changed()

    def _ready_payload(self, session: GatewaySession, connection: GatewayConnection, guilds: list[Any]) -> Any:
        host = connection._request.host if connection._request is not None else "127.0.0.1"
        return {
            "v": 10,
            "user": {**self.state.bot_user.to_payload(), "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": f"ws://{host}/resume-gateway",
            "shard": list(session.shard),
            "application": {"id": str(self.state.application_id), "flags": 1 << 23 | 1 << 19},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "user_settings": {},
            "geo_ordered_rtc_regions": ["fake"],
            "auth": {},
            "_trace": ['["fake-gateway",{"micros":1}]'],
        }

    async def _resume(self, connection: GatewayConnection, data: Any) -> None:
        if connection.session is not None:
            await self._close(connection, CLOSE_ALREADY_AUTHENTICATED, by="fake")
            return
        if not isinstance(data, dict) or data.get("token") != self.state.config.token:
            await self._close(connection, CLOSE_AUTHENTICATION_FAILED, by="fake")
            return
        session = next((s for s in self.sessions if s.id == data.get("session_id")), None)
        seq = data.get("seq")
        if session is None or session.invalidated or not isinstance(seq, int) or seq > session.seq:
            # Not resumable: the client must IDENTIFY again.
            connection.send(_Frame({"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None}))
            return
        previous = session.connection
        if previous is not None and previous.open and previous is not connection:
            await self._close(previous, CLOSE_UNKNOWN_ERROR, by="fake")
        session.connection = connection
        session.resumes += 1
        connection.session = session
        connection.resumed = True
        for frame in session.events:
            if int(frame.payload["s"]) > seq:
                connection.send(_Frame(frame.payload, frame.on_sent, replay=True))
        self._dispatch_to(session, "RESUMED", {"_trace": ['["fake-gateway",{"micros":1}]']})
        self.state.changed()

    def _members_chunk(self, session: GatewaySession, data: Any) -> None:
        if not isinstance(data, dict):
            return
        guild_id = int(data.get("guild_id", 0))
        guild = next((g for g in self.state.guilds if g.id == guild_id), None)
        if guild is None:
            return
        wanted = {int(u) for u in data.get("user_ids") or []}
        query = str(data.get("query") or "")
        members = [
            m
            for m in guild.members
            if (not wanted or m.user.id in wanted) and m.user.username.lower().startswith(query.lower())
        ]
        limit = int(data.get("limit") or 0)
        if limit:
            members = members[:limit]
        chunk: dict[str, Any] = {
            "guild_id": str(guild.id),
            "members": [m.to_payload() for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
        }
        if wanted:
            chunk["not_found"] = [str(u) for u in sorted(wanted - {m.user.id for m in members})]
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        self._dispatch_to(session, "GUILD_MEMBERS_CHUNK", chunk)

    async def _writer(self, connection: GatewayConnection) -> None:
        ws = connection._ws
        assert ws is not None
        while True:
            frame = await connection._queue.get()
            if frame is None or ws.closed:
                return
            text = json.dumps(frame.payload, separators=(",", ":"))
            try:
                if connection._zlib is not None:
                    compressed = connection._zlib.compress(text.encode()) + connection._zlib.flush(zlib.Z_SYNC_FLUSH)
                    await ws.send_bytes(compressed)
                else:
                    await ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return
            if frame.on_sent is not None:
                frame.on_sent(frame.replay)

    async def _close(self, connection: GatewayConnection, code: int | None, *, by: str) -> None:
        ws = connection._ws
        connection.closed_by = connection.closed_by or by
        if ws is None:
            return
        if code is None:
            request = connection._request
            if request is not None and request.transport is not None:
                request.transport.abort()
            self._closed(connection, None, by=by)
            return
        self._closed(connection, code, by=by)
        with contextlib.suppress(ConnectionError, RuntimeError, asyncio.TimeoutError):
            await ws.close(code=code)

    def _closed(self, connection: GatewayConnection, code: int | None, *, by: str) -> None:
        if connection.closed_at is not None:
            return
        connection.closed_at = self.state.now()
        connection.close_code = code
        connection.closed_by = connection.closed_by or by
        session = connection.session
        if session is not None and session.connection is connection:
            session.connection = None
            # A clean close by the client (1000/1001) ends the session: nothing more is kept for it.
            if by == "client" and code in (1000, 1001):
                session.invalidated = True
        log.debug("gateway connection %s closed (%s by %s)", connection.id, code, by)
        self.state.changed()

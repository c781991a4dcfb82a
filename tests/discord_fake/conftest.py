"""Fixtures for the Discord fake's own tests: a started fake, a small world, raw HTTP and gateway clients."""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from PIL import Image

from tests.fakes.discord import FakeChannel, FakeDiscord, FakeGuild, FakeMember, FakeRole, Overwrite, Permission

# What discord.py's tree.sync() sends for commands shaped like Imagine's (checked against a real sync in
# test_minimal_bot.py); used where no bot process is needed.
IMAGINE_COMMAND: dict[str, Any] = {
    "type": 1,
    "name": "imagine",
    "description": "Generate an image from a prompt",
    "options": [
        {"type": 3, "name": "prompt", "description": "What to draw", "required": True, "min_length": 1,
         "max_length": 4000},
        {"type": 3, "name": "size", "description": "size", "required": False, "choices": [
            {"name": "square", "value": "1024x1024"},
            {"name": "landscape", "value": "1536x1024"},
            {"name": "portrait", "value": "1024x1536"},
        ]},
        {"type": 4, "name": "n", "description": "How many images", "required": False, "min_value": 1,
         "max_value": 4},
        {"type": 11, "name": "image", "description": "image", "required": False},
    ],
    "contexts": [0],
    "dm_permission": False,
    "default_member_permissions": None,
    "nsfw": False,
}  # fmt: skip
QUOTA_COMMAND: dict[str, Any] = {
    "type": 1,
    "name": "quota",
    "description": "Manage quotas",
    "options": [
        {"type": 1, "name": "set", "description": "Set a limit", "options": [
            {"type": 3, "name": "scope", "description": "scope", "required": True, "choices": [
                {"name": "server", "value": "server"}, {"name": "member", "value": "member"}]},
            {"type": 4, "name": "limit", "description": "limit", "required": True, "min_value": 0},
        ]},
        {"type": 2, "name": "role", "description": "Role rules", "options": [
            {"type": 1, "name": "give", "description": "Give a role a limit", "options": [
                {"type": 8, "name": "role", "description": "role", "required": True},
                {"type": 6, "name": "member", "description": "member", "required": False},
                {"type": 7, "name": "channel", "description": "channel", "required": False, "channel_types": [0]},
            ]},
        ]},
    ],
    "contexts": [0],
    "default_member_permissions": str(int(Permission.MANAGE_GUILD)),
}  # fmt: skip
CONTEXT_MENU: dict[str, Any] = {"type": 3, "name": "Imagine from images", "contexts": [0]}
HELP_COMMAND: dict[str, Any] = {"type": 1, "name": "help", "description": "Help", "contexts": [0, 1]}


@dataclass
class World:
    """One server with a few members and channels."""

    guild: FakeGuild
    general: FakeChannel
    hidden: FakeChannel
    no_files: FakeChannel
    no_embeds: FakeChannel
    no_commands: FakeChannel
    admins: FakeRole
    alice: FakeMember
    bob: FakeMember
    admin: FakeMember


def build_world(fake: FakeDiscord) -> World:
    """The standard world of these tests."""
    guild = fake.add_guild("Test server")
    admins = guild.add_role("Admins", Permission.MANAGE_GUILD)
    bot = guild.bot_member
    general = guild.add_text_channel("general")
    hidden = guild.add_text_channel("hidden", overwrites=[Overwrite(bot, deny=Permission.VIEW_CHANNEL)])
    no_files = guild.add_text_channel("no-files", overwrites=[Overwrite(guild.bot_role, deny=Permission.ATTACH_FILES)])
    no_embeds = guild.add_text_channel("no-embeds", overwrites=[Overwrite(guild.bot_role, deny=Permission.EMBED_LINKS)])
    no_commands = guild.add_text_channel(
        "no-commands", overwrites=[Overwrite(guild.everyone, deny=Permission.USE_APPLICATION_COMMANDS)]
    )
    return World(
        guild=guild,
        general=general,
        hidden=hidden,
        no_files=no_files,
        no_embeds=no_embeds,
        no_commands=no_commands,
        admins=admins,
        alice=guild.add_member("alice"),
        bob=guild.add_member("bob"),
        admin=guild.add_member("admin", roles=[admins]),
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    """A started fake with default (Discord's) settings."""
    async with FakeDiscord() as started:
        yield started


@pytest.fixture
def world(fake: FakeDiscord) -> World:
    """The standard world in the started fake."""
    return build_world(fake)


@dataclass
class Answer:
    """A raw HTTP answer."""

    status: int
    headers: dict[str, str]
    body: Any

    @property
    def code(self) -> int | None:
        """Discord's JSON error code."""
        return self.body.get("code") if isinstance(self.body, dict) else None

    def field_errors(self, *path: str | int) -> list[str]:
        """The ``_errors`` codes at a path of the ``errors`` object."""
        node: Any = self.body.get("errors", {}) if isinstance(self.body, dict) else {}
        for part in path:
            node = node.get(str(part), {})
        return [e["code"] for e in node.get("_errors", [])]


class RawClient:
    """Plain HTTP against the fake, as any client would speak to Discord."""

    def __init__(self, fake: FakeDiscord, session: aiohttp.ClientSession) -> None:
        self.fake = fake
        self.session = session

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        files: Sequence[tuple[str, bytes]] = (),
        auth: str | None = "default",
        query: dict[str, str] | None = None,
        url: str | None = None,
    ) -> Answer:
        """``method`` ``/api/v10{path}`` with a JSON body, or multipart when ``files`` are given."""
        headers = {}
        if auth == "default":
            headers["Authorization"] = f"Bot {self.fake.token}"
        elif auth is not None:
            headers["Authorization"] = auth
        data: Any = None
        if files:
            form = aiohttp.FormData(quote_fields=False)
            form.add_field("payload_json", json.dumps(json_body or {}), content_type="application/json")
            for index, (filename, content) in enumerate(files):
                form.add_field(f"files[{index}]", content, filename=filename, content_type="application/octet-stream")
            data = form
        elif json_body is not None:
            data = json.dumps(json_body)
            headers["Content-Type"] = "application/json"
        target = url or f"{self.fake.api_base}{path}"
        async with self.session.request(method, target, data=data, headers=headers, params=query) as response:
            raw = await response.read()
            text = raw.decode(errors="replace")
            body: Any = json.loads(text) if response.headers.get("Content-Type") == "application/json" else text
            return Answer(response.status, dict(response.headers), body)

    async def sync(self, commands: list[dict[str, Any]], guild: FakeGuild | None = None) -> Answer:
        """A bulk overwrite of commands, global or for a guild."""
        scope = f"/guilds/{guild.id}" if guild is not None else ""
        return await self.request(
            "PUT", f"/applications/{self.fake.application_id}{scope}/commands", json_body=commands
        )

    async def callback(self, interaction: Any, body: dict[str, Any], *, with_response: bool = True) -> Answer:
        """``POST /interactions/{id}/{token}/callback``."""
        query = {"with_response": "true"} if with_response else None
        return await self.request(
            "POST",
            f"/interactions/{interaction.id}/{interaction.token}/callback",
            json_body=body,
            auth=None,
            query=query,
        )

    async def webhook(self, method: str, interaction: Any, suffix: str = "", **kwargs: Any) -> Answer:
        """``/webhooks/{app}/{token}{suffix}``."""
        path = f"/webhooks/{self.fake.application_id}/{interaction.token}{suffix}"
        return await self.request(method, path, auth=None, **kwargs)


@pytest.fixture
async def http(fake: FakeDiscord) -> AsyncIterator[RawClient]:
    """A raw HTTP client for the started fake."""
    async with aiohttp.ClientSession() as session:
        yield RawClient(fake, session)


def png_bytes(width: int = 4, height: int = 3) -> bytes:
    """A real PNG image."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


# --- a raw gateway client ---------------------------------------------------------------------------------

INTENTS_DEFAULT = 53575421  # discord.Intents.default(): all but the three privileged intents
MESSAGE_CONTENT = 1 << 15


class RawGateway:
    """A bare websocket client speaking the gateway protocol."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, *, compressed: bool) -> None:
        self.ws = ws
        self._inflate = zlib.decompressobj() if compressed else None
        self.binary_frames = 0

    async def receive(self, timeout: float = 5.0) -> dict[str, Any]:
        message = await self.ws.receive(timeout=timeout)
        if message.type == aiohttp.WSMsgType.BINARY:
            assert self._inflate is not None
            self.binary_frames += 1
            assert message.data.endswith(b"\x00\x00\xff\xff")
            return dict(json.loads(self._inflate.decompress(message.data)))
        if message.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"closed: {message.type} {self.ws.close_code}")
        return dict(json.loads(message.data))

    async def until(self, event: str, timeout: float = 5.0) -> dict[str, Any]:
        while True:
            packet = await self.receive(timeout)
            if packet.get("t") == event:
                return packet

    async def send(self, op: int, data: Any) -> None:
        await self.ws.send_str(json.dumps({"op": op, "d": data}))

    async def identify(self, token: str, intents: int = INTENTS_DEFAULT, **extra: Any) -> dict[str, Any]:
        await self.send(2, {"token": token, "intents": intents, "properties": {}, **extra})
        return await self.until("READY")

    async def closed_with(self) -> int | None:
        message = await self.ws.receive(timeout=5.0)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
        return self.ws.close_code


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP session for websocket clients."""
    async with aiohttp.ClientSession() as client:
        yield client


async def connect(
    session: aiohttp.ClientSession, url: str, *, compress: str | None = None, version: str = "10"
) -> RawGateway:
    query = {"v": version, "encoding": "json"}
    if compress:
        query["compress"] = compress
    ws = await session.ws_connect(url, params=query, autoclose=False)
    return RawGateway(ws, compressed=compress == "zlib-stream")


GUILDS = 1 << 0
GUILD_MESSAGES = 1 << 9
DIRECT_MESSAGES = 1 << 12


async def identified(
    session: aiohttp.ClientSession, fake: FakeDiscord, *, intents: int = INTENTS_DEFAULT, guilds: int = 1
) -> RawGateway:
    """A gateway client past HELLO, IDENTIFY, READY and the first ``guilds`` GUILD_CREATEs."""
    gateway = await connect(session, fake.gateway_url)
    await gateway.receive()
    await gateway.identify(fake.token, intents=intents)
    for _ in range(guilds):
        await gateway.until("GUILD_CREATE")
    return gateway


async def event_about(gateway: RawGateway, message: Any, event: str = "MESSAGE_CREATE") -> dict[str, Any]:
    """The data of the next ``event`` about ``message`` (a ``MessageRecord``), skipping others."""
    while True:
        packet = await gateway.until(event)
        if packet["d"]["id"] == str(message.id):
            return dict(packet["d"])

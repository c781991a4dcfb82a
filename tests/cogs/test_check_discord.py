"""cogs/_check.py: the Discord lines of `python bot.py --check` when Discord cannot be asked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import discord
import pytest

from cogs._check import check_discord
from generation.checks import Mark


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A port that accepts connections and never answers: a Discord (or proxy) that hangs."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for writer in held:
            writer.close()
        server.close()


async def test_a_discord_that_never_answers_is_named_as_such(
    silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # TimeoutError is an OSError: caught as "cannot reach … ()", with nothing between the brackets, the line
    # did not say that Discord connected and never answered.
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{silent_server}/api/v10")

    found = await check_discord(
        "not-a-real-token", guild_allowed=lambda guild_id: True, restricted=False, operator_guild_id=None, timeout=0.2
    )

    (line,) = found.lines
    assert line.mark is Mark.FAIL
    assert line.render() == "✗ Discord: no answer within 0.2 s. Check the network."
    assert found.application_id is None

"""A minimal discord.py bot: the test subject of the Discord fake, and the performance floor of the real bot.

It syncs one ``/imagine``-like slash command, defers each invocation, and edits the reply with a file (the
first attachment's bytes echoed back, or a small generated file). Nothing can answer faster through
discord.py, so the real bot's numbers are measured against this one.

Environment:
    DISCORD_TOKEN, DISCORD_API_BASE_URL, DISCORD_GATEWAY_URL   where Discord is (the fake)
    MINIMAL_BOT_ACK_DELAY   seconds to sleep before deferring (default 0)
    MINIMAL_BOT_DEFER_ONLY  "1" only defers (no edit): the floor for the acknowledgement benchmark
    MINIMAL_BOT_EXTRAS      "1" adds test-only commands: the "Imagine from images" message context menu
                            (modal, then a reply with a button), a "Describe message" context menu (what
                            discord.py parsed of the message) and an admin ``/quota set`` group

Words of the prompt steer one invocation (for the fake's own tests): ``ack_delay=S`` sleep before deferring,
``wait=S`` sleep between the defer and the edit, ``ephemeral`` defer ephemerally, ``followup`` send a
follow-up after the edit, ``channel`` also post the result to the channel twice with the same nonce.

It prints one line per event, for the test to wait on: ``SYNCED n``, ``READY guilds=n``, ``RESUMED``,
``DEFERRED id``, ``EDITED id``, ``FOLLOWUP id``, ``CHANNEL id first second``, ``ERROR id step status code``;
with the extras also ``GUILD_AVAILABLE guild``, ``GUILD_JOIN guild system_channel=id`` and
``DESCRIBE id content=... files=[...] snapshot_files=[[...]]``.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import sys
from typing import Literal

import discord
import yarl
from discord import app_commands

log = logging.getLogger("minimal_bot")


def say(line: str) -> None:
    """One event line on stdout."""
    print(line, flush=True)


def directives(prompt: str) -> dict[str, str]:
    """``key=value`` and bare words of the prompt."""
    found: dict[str, str] = {}
    for word in prompt.split():
        key, _, value = word.partition("=")
        found[key] = value
    return found


class MinimalBot(discord.Client):
    """Defers, then edits the reply with a file."""

    def __init__(self, *, ack_delay: float, extras: bool, defer_only: bool = False) -> None:
        # A short guild_ready_timeout: the fake sends every GUILD_CREATE at once, so waiting 2 s is pure loss.
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.05)
        self.tree = app_commands.CommandTree(self)
        self.ack_delay = ack_delay
        self.defer_only = defer_only
        self.extras = extras
        self.tree.add_command(imagine)
        if extras:
            self.tree.add_command(app_commands.ContextMenu(name="Imagine from images", callback=from_images))
            self.tree.add_command(app_commands.ContextMenu(name="Describe message", callback=describe))
            self.tree.add_command(QuotaGroup())

    async def setup_hook(self) -> None:
        if self.extras:
            self.add_view(AgainView())
        synced = await self.tree.sync()
        say(f"SYNCED {len(synced)}")

    async def on_ready(self) -> None:
        say(f"READY guilds={len(self.guilds)}")

    async def on_resumed(self) -> None:
        say("RESUMED")

    async def on_guild_available(self, guild: discord.Guild) -> None:
        if self.extras:
            say(f"GUILD_AVAILABLE {guild.id}")

    async def on_guild_join(self, guild: discord.Guild) -> None:
        if self.extras:
            channel = guild.system_channel
            say(f"GUILD_JOIN {guild.id} system_channel={channel.id if channel is not None else None}")


@app_commands.command(name="imagine", description="Generate an image from a prompt")
@app_commands.describe(prompt="What to draw", n="How many images")
@app_commands.choices(
    size=[
        app_commands.Choice(name="square", value="1024x1024"),
        app_commands.Choice(name="landscape", value="1536x1024"),
        app_commands.Choice(name="portrait", value="1024x1536"),
    ]
)
async def imagine(
    interaction: discord.Interaction[MinimalBot],
    prompt: app_commands.Range[str, 1, 4000],
    size: app_commands.Choice[str] | None = None,
    n: app_commands.Range[int, 1, 4] = 1,
    image: discord.Attachment | None = None,
) -> None:
    """Defer, then edit the reply with a file; the prompt's words may ask for more (see the module doc)."""
    steps = directives(prompt)
    delay = float(steps.get("ack_delay") or interaction.client.ack_delay)
    if delay:
        await asyncio.sleep(delay)
    try:
        await interaction.response.defer(thinking=True, ephemeral="ephemeral" in steps)
    except discord.HTTPException as error:
        say(f"ERROR {interaction.id} defer {error.status} {error.code}")
        return
    say(f"DEFERRED {interaction.id}")
    if interaction.client.defer_only:
        return
    if steps.get("wait"):
        await asyncio.sleep(float(steps["wait"]))
    if image is not None:
        data, filename = await image.read(), image.filename
    else:
        data, filename = f"minimal-bot {prompt}".encode(), "result.txt"
    label = size.value if size is not None else "1024x1024"
    try:
        await interaction.edit_original_response(
            content=f"done n={n} size={label}",
            attachments=[discord.File(io.BytesIO(data), filename=filename)],
            allowed_mentions=discord.AllowedMentions.none(),
        )
    except discord.HTTPException as error:
        say(f"ERROR {interaction.id} edit {error.status} {error.code}")
        return
    say(f"EDITED {interaction.id}")
    if "followup" in steps:
        message = await interaction.followup.send(f"follow-up for {interaction.id}", ephemeral=True, wait=True)
        say(f"FOLLOWUP {interaction.id} {message.id}")
    if "channel" in steps and isinstance(interaction.channel, discord.TextChannel):
        nonce = f"mb{interaction.id}"[-25:]
        first = await interaction.channel.send(f"channel copy for {interaction.id}", nonce=nonce)
        second = await interaction.channel.send(f"channel copy for {interaction.id}", nonce=nonce)
        say(f"CHANNEL {interaction.id} {first.id} {second.id}")


async def from_images(interaction: discord.Interaction[MinimalBot], message: discord.Message) -> None:
    """Message context menu: ask for a prompt, then answer with the message's attachments."""
    await interaction.response.send_modal(PromptModal(message))


async def describe(interaction: discord.Interaction[MinimalBot], message: discord.Message) -> None:
    """Message context menu: what discord.py parsed of the target (a forward's snapshots too)."""
    files = [a.filename for a in message.attachments]
    snapshot_files = [[a.filename for a in s.attachments] for s in message.message_snapshots]
    await interaction.response.send_message("described", ephemeral=True)
    say(f"DESCRIBE {interaction.id} content={message.content!r} files={files} snapshot_files={snapshot_files}")


class PromptModal(discord.ui.Modal, title="Imagine from images"):
    """Asks for the prompt."""

    prompt: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(
        label="Prompt", custom_id="prompt", max_length=4000
    )

    def __init__(self, message: discord.Message) -> None:
        super().__init__(custom_id="imagine-from-images")
        self.message = message

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        files = [await a.to_file() for a in self.message.attachments[:4]]
        await interaction.edit_original_response(
            content=f"prompt: {self.prompt.value}", attachments=files, view=AgainView()
        )
        say(f"EDITED {interaction.id}")


class AgainView(discord.ui.View):
    """A persistent button that survives restarts."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Again", custom_id="minimal:again", style=discord.ButtonStyle.primary)
    async def again(self, interaction: discord.Interaction, button: discord.ui.Button[AgainView]) -> None:
        await interaction.response.edit_message(content=f"again by {interaction.user.id}", view=None)
        say(f"CLICKED {interaction.id}")


@app_commands.default_permissions(manage_guild=True)
@app_commands.guild_only()
class QuotaGroup(app_commands.Group, name="quota", description="Manage quotas"):
    """Admin commands (a subcommand to exercise groups and default permissions)."""

    @app_commands.command(name="set", description="Set a limit")
    async def set_limit(
        self,
        interaction: discord.Interaction,
        scope: Literal["server", "member"],
        limit: app_commands.Range[int, 0, 1000],
    ) -> None:
        await interaction.response.send_message(f"quota {scope} {limit}", ephemeral=True)
        say(f"QUOTA {interaction.id} {scope} {limit}")


async def run() -> None:
    """Log in, serve until SIGTERM, then close cleanly."""
    bot = MinimalBot(
        ack_delay=float(os.environ.get("MINIMAL_BOT_ACK_DELAY", "0")),
        extras=os.environ.get("MINIMAL_BOT_EXTRAS") == "1",
        defer_only=os.environ.get("MINIMAL_BOT_DEFER_ONLY") == "1",
    )
    loop = asyncio.get_running_loop()
    closing: list[asyncio.Task[None]] = []
    loop.add_signal_handler(signal.SIGTERM, lambda: closing.append(asyncio.create_task(bot.close())))
    async with bot:
        await bot.start(os.environ["DISCORD_TOKEN"])
    say("CLOSED")


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(levelname)s %(name)s %(message)s")
    api = os.environ.get("DISCORD_API_BASE_URL")
    if api:
        discord.http.Route.BASE = api.rstrip("/")
    gateway = os.environ.get("DISCORD_GATEWAY_URL")
    if gateway:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())

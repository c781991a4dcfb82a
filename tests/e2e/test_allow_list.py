"""ALLOWED_GUILD_IDS covers every door, through `python bot.py`: in a server off the list, an admin command, a
button, a form, the context menu and /imagine each get the same short private answer, an autocomplete no
suggestion, and nothing changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cogs._texts import refusal_text
from generation.refusals import ServerNotAllowed
from tests.e2e.conftest import STEP_TIMEOUT, delivered, first_response, open_world, png_bytes
from tests.e2e.test_actions import CONTEXT_MENU, text_inputs
from tests.fakes.discord import CallbackType, InteractionRecord, Upload
from tests.fakes.toapis import Endpoint

NOT_HERE = refusal_text(ServerNotAllowed(), "en-US")
TABLES = ("jobs", "quota_ledger", "quota_rules", "usage_log", "guild_settings", "guild_allowed_channels")


def refused_here(call: InteractionRecord) -> None:
    assert not call.failed, call.failure
    assert call.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
    assert call.callback is not None
    assert call.callback.ephemeral
    assert call.callback.data is not None
    assert call.callback.data["content"] == NOT_HERE


async def test_a_server_off_the_list_is_refused_at_every_door_and_nothing_changes(tmp_path: Path) -> None:
    async with open_world(tmp_path / "bot") as world:
        other = world.discord.add_guild("Another server")
        lounge = other.add_text_channel("lounge")
        owner = other.owner
        # Before the operator limits the bot, it works in the other server too: a result with buttons there,
        # and a form a member opened and has not sent yet.
        async with world.bot():
            made = await world.imagine(owner, "a cat", channel=lounge)
            await world.discord.wait_for(lambda: delivered(made), STEP_TIMEOUT, what="the result there")
            await world.finished_row(await world.submitted_job("a cat"))
            photo = Upload(png_bytes((64, 48), "teal"), "boat.png", "image/png")
            post = await world.discord.post_message(lounge, owner, "", files=[photo])
            menu = await world.discord.invoke_message_context(CONTEXT_MENU, post, user=owner)
            await first_response(world, menu)
            (field,) = text_inputs(menu.modal)

        async with world.bot(ALLOWED_GUILD_IDS=str(world.guild.id)):
            before: dict[str, Any] = {table: world.rows(f"SELECT * FROM {table}") for table in TABLES}
            submits = len(world.api.requests_to(Endpoint.SUBMIT))
            assert made.original is not None
            reroll = next(cid for cid in made.original.custom_ids() if cid.startswith("imagine:reroll:"))

            calls = [
                await world.discord.invoke_slash(
                    "quota set", {"scope": "server", "limit": 1_000_000}, user=owner, channel=lounge
                ),
                await world.discord.invoke_slash("usage", {}, user=owner, channel=lounge),
                await world.imagine(owner, "a dog", channel=lounge),
                await world.discord.click(made.original, reroll, owner),
                await world.discord.submit_modal(menu, {field: "the boat at night"}),
                await world.discord.invoke_message_context(CONTEXT_MENU, post, user=owner),
            ]
            for call in calls:
                await first_response(world, call)
                refused_here(call)
            suggestions = await world.discord.autocomplete(
                "imagine", {"prompt": "a dog", "model": "gpt"}, focused="model", user=owner, channel=lounge
            )
            assert suggestions == []  # autocomplete answers with no suggestion

            assert {table: world.rows(f"SELECT * FROM {table}") for table in TABLES} == before
            assert len(world.api.requests_to(Endpoint.SUBMIT)) == submits
            # The allowed server is served as before.
            served = await world.imagine(world.admin, "a bird")
            await world.discord.wait_for(lambda: delivered(served), STEP_TIMEOUT, what="the allowed server's images")

"""Content controls through the real ``python bot.py``: a blocked word, and one member's own limit."""

from __future__ import annotations

from typing import Any

import pytest

import i18n
from tests.e2e.conftest import STEP_TIMEOUT, World, answered_in_time, delivered, first_response, settled
from tests.e2e.harness import wait_until
from tests.fakes.discord import CallbackType, InteractionRecord, MessageRecord

PROMPT_BLOCKED = i18n.translate("refusal.prompt_blocked", i18n.SOURCE)

pytestmark = pytest.mark.e2e


async def admin_says(world: World, name: str, options: dict[str, Any]) -> MessageRecord:
    """The admin runs a command; its private answer."""
    call = await world.discord.invoke_slash(name, options, user=world.admin, channel=world.channel)
    await world.discord.wait_for(lambda: settled(call), STEP_TIMEOUT, what=f"the answer to /{name}")
    assert call.callback is not None
    assert call.callback.ephemeral
    answer = call.followups[-1] if call.followups else call.original
    assert answer is not None
    assert answer.mentions_nobody
    return answer


async def refusal_after_defer(world: World, call: InteractionRecord) -> MessageRecord:
    followup: MessageRecord = await world.discord.wait_for(
        lambda: call.followups[-1] if call.followups else None, STEP_TIMEOUT, what="the refusal"
    )
    assert call.original is not None
    assert call.original.deleted
    assert followup.ephemeral
    return followup


async def test_a_blocked_word_is_refused_at_once_logged_and_costs_nothing(world: World) -> None:
    mod = world.guild.add_text_channel("mod")
    async with world.bot():
        await admin_says(world, "imagine-settings log-channel", {"channel": mod})
        await admin_says(world, "imagine-settings mod-log on", {})
        added = await admin_says(world, "imagine-settings blocked-words add", {"words": "Dragon, real person"})
        assert added.content.startswith("Blocked: `dragon`, `real person`.")
        bea = world.member("bea")
        prompt = "a ｄｒａ\u200bgón over the sea"

        call = await world.imagine(bea, prompt)
        await first_response(world, call)

        answered_in_time(call)
        assert call.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
        assert call.original is not None
        assert call.original.ephemeral
        assert call.original.mentions_nobody
        assert call.original.content == PROMPT_BLOCKED
        assert call.original.embeds[0]["description"] == f"```\n{prompt}\n```"
        # Written after the answer: the usage log's row, and the moderation log's one entry.
        (row,) = await wait_until(
            lambda: world.rows("SELECT * FROM usage_log WHERE user_id = ?", bea.id), STEP_TIMEOUT, what="the row"
        )
        assert (row["status"], row["images"], row["prompt"]) == ("blocked", 0, prompt)
        (entry,) = await world.discord.wait_for(
            lambda: world.discord.channel_messages(mod) or None, STEP_TIMEOUT, what="the moderation log's entry"
        )
        assert entry.mentions_nobody
        assert entry.embeds[0]["description"] == f"||{prompt} ||"
        # A word that merely contains the blocked one is served.
        served = await world.imagine(bea, "a dragonfly over the sea")
        await world.discord.wait_for(lambda: delivered(served), STEP_TIMEOUT, what="the images")

    assert [submit["prompt"] for submit in world.submits("a dragonfly over the sea")] == ["a dragonfly over the sea"]
    assert world.submits(prompt) == []
    assert world.rows("SELECT job_id FROM quota_ledger WHERE user_id = ?", bea.id) == [
        {"job_id": world.submit_of("a dragonfly over the sea")["client_business_id"]}
    ]
    assert len(world.discord.channel_messages(mod)) == 1


async def test_a_member_override_beats_a_larger_role_rule_and_can_be_cleared(world: World) -> None:
    patrons = world.guild.add_role("patrons")
    cara = world.guild.add_member("cara", roles=[patrons])
    async with world.bot():
        await admin_says(world, "quota role", {"role": patrons, "limit": 10})
        told = await admin_says(world, "quota member", {"member": cara, "limit": 1})
        assert told.content.startswith(f"<@{cara.id}> now gets 1 image per day, whatever their roles")

        first = await world.imagine(cara, "a fox")
        await world.discord.wait_for(lambda: delivered(first), STEP_TIMEOUT, what="the images")
        refused = await refusal_after_defer(world, await world.imagine(cara, "another fox"))
        assert refused.content.startswith("You have reached the limit set for you for today (1 image).")

        shown = await admin_says(world, "quota show", {})
        cleared = await admin_says(world, "quota clear", {"scope": "member_override", "member": cara})
        again = await world.imagine(cara, "a third fox")
        await world.discord.wait_for(lambda: delivered(again), STEP_TIMEOUT, what="the images")

    assert f"**<@{cara.id}>'s own limit**: 1 image per day: **1** used" in shown.embeds[0]["description"]
    assert cleared.content.startswith(f"Removed the own limit of <@{cara.id}>")
    assert world.submits("another fox") == []
    assert len(world.rows("SELECT job_id FROM quota_ledger WHERE user_id = ?", cara.id)) == 2

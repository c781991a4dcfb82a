"""The ten languages through the real ``python bot.py`` (docs/i18n.md): a member's private answers speak their
Discord language, the public messages the server's (its preferred locale, or the language its admins chose),
and a Discord locale without a catalog of its own speaks its nearest one (``es-419`` reads Spanish)."""

from __future__ import annotations

import pytest

import i18n
from tests.e2e.conftest import STEP_TIMEOUT, World, delivered, embed_fields, settled
from tests.fakes.discord import CallbackType

pytestmark = pytest.mark.e2e


async def test_a_japanese_member_is_refused_in_japanese_in_a_chinese_server_that_shows_results_in_chinese(
    world: World,
) -> None:
    server = world.discord.add_guild("伺服器", locale="zh-CN")
    channel = server.add_text_channel("general")
    member = server.add_member("haruka")
    async with world.bot():
        refused = await world.discord.invoke_slash(
            "imagine", {"prompt": "  "}, user=member, channel=channel, locale="ja"
        )
        call = await world.discord.invoke_slash(
            "imagine", {"prompt": "夕暮れの灯台", "n": 2}, user=member, channel=channel, locale="ja"
        )
        await world.discord.wait_for(lambda: refused.acknowledged and delivered(call), STEP_TIMEOUT)

    assert refused.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
    assert refused.original is not None
    assert refused.original.content == i18n.translate("refusal.prompt_empty", "ja")
    assert refused.original.content != i18n.translate("refusal.prompt_empty", "en-US")

    assert call.original is not None
    (embed,) = call.original.embeds
    fields = embed_fields(embed)
    # The result's fields are the server's language: Simplified Chinese, not the member's Japanese.
    assert i18n.translate("result.model", "zh-CN") in fields
    assert fields[i18n.translate("result.images", "zh-CN")] == "2"
    assert i18n.translate("result.model", "ja") not in fields
    buttons = [c["label"] for row in call.original.components for c in row["components"] if c.get("label")]
    assert i18n.translate("button.reroll", "zh-CN") in buttons
    (row,) = world.rows("SELECT locale FROM jobs")
    assert row["locale"] == "zh-CN"


async def test_latin_american_spanish_reads_spain_s_catalog(world: World) -> None:
    member = world.member("lucia")
    async with world.bot():
        refused = await world.discord.invoke_slash(
            "imagine", {"prompt": "  "}, user=member, channel=world.channel, locale="es-419"
        )
        await world.discord.wait_for(lambda: refused.acknowledged, STEP_TIMEOUT)

    assert refused.original is not None
    assert refused.original.content == i18n.translate("refusal.prompt_empty", "es-ES")
    assert refused.original.content != i18n.translate("refusal.prompt_empty", "en-US")


async def test_an_admin_turns_the_public_messages_german(world: World) -> None:
    member = world.member("jonas")
    async with world.bot():
        chosen = await world.discord.invoke_slash(
            "imagine-settings language", {"language": "de"}, user=world.admin, channel=world.channel
        )
        await world.discord.wait_for(lambda: settled(chosen), STEP_TIMEOUT)
        call = await world.imagine(member, "a lighthouse at dusk")
        await world.discord.wait_for(lambda: delivered(call), STEP_TIMEOUT)

    # The admin's answer speaks the admin's own Discord language (English here); the channel's result, German.
    assert call.original is not None
    (embed,) = call.original.embeds
    fields = embed_fields(embed)
    assert i18n.translate("result.model", "de") in fields
    assert i18n.translate("result.model", "en-US") not in fields
    (row,) = world.rows("SELECT locale FROM jobs")
    assert row["locale"] == "de"

"""Locales through the real ``python bot.py``: a member's refusal in their locale while the public result speaks
the server's, a resumed job keeping its locale, and a command sync that carries the translations.

The pseudo-locale stands in for a Discord locale the bot does not speak (``IMAGINE_PSEUDO_LOCALE=fi``, for
tests only): a member whose Discord is in Finnish reads every text of the catalog accented and bracketed, so a
text that escaped the catalog shows.
"""

from __future__ import annotations

import json

import pytest

import i18n
from tests.e2e.conftest import STEP_TIMEOUT, World, delivered, embed_fields
from tests.fakes.discord import CallbackType
from tests.fakes.toapis import Timeline

pytestmark = pytest.mark.e2e

PSEUDO = {"IMAGINE_PSEUDO_LOCALE": "fi"}


async def test_a_refusal_speaks_the_members_pseudo_locale_and_the_public_result_the_servers_english(
    world: World,
) -> None:
    assert world.guild.locale == "en-US"
    alice = world.member("alice")
    async with world.bot(**PSEUDO) as bot:
        refused = await world.discord.invoke_slash(
            "imagine", {"prompt": "   "}, user=alice, channel=world.channel, locale="fi"
        )
        call = await world.discord.invoke_slash(
            "imagine", {"prompt": "a lighthouse at dusk", "n": 2}, user=alice, channel=world.channel, locale="fi"
        )
        await world.discord.wait_for(lambda: refused.acknowledged and delivered(call), STEP_TIMEOUT)
        assert await bot.terminate() == 0

    assert refused.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
    assert refused.original is not None
    assert refused.original.ephemeral
    assert refused.original.content == i18n.pseudo("Your prompt is empty: describe the image you want.")

    assert call.original is not None
    assert not call.original.ephemeral
    (embed,) = call.original.embeds
    assert embed["description"] == "a lighthouse at dusk"
    assert embed_fields(embed)["Images"] == "2"
    assert embed_fields(embed)["Counted as"] == "2 images"
    assert "⟦" not in json.dumps([version.embeds for version in call.original.versions], ensure_ascii=False)
    (row,) = world.rows("SELECT locale FROM jobs")
    assert row["locale"] == "en-US"


async def test_a_job_resumed_after_a_restart_keeps_the_locale_it_was_admitted_with(world: World) -> None:
    world.guild.locale = "fi"  # a server whose preferred locale speaks the pseudo-locale here
    prompt = "a slow sunrise over the harbour"
    world.api.on_prompt("slow sunrise", Timeline.never_ends(progress=60))
    first = await world.start_bot(env=world.env(**PSEUDO))
    call = await world.imagine(world.member("bob"), prompt)
    job_id = await world.submitted_job(prompt)
    (task,) = world.api.tasks_for(job_id)
    assert await first.kill() == -9
    assert world.rows("SELECT locale FROM jobs WHERE id = ?", job_id) == [{"locale": "fi"}]

    # The server changes its preferred locale while the bot is down: the job still speaks the one it had.
    world.guild.locale = "en-US"
    world.api.end_task(task.id)
    second = await world.start_bot(env=world.env(**PSEUDO))
    await world.discord.wait_for(lambda: delivered(call), STEP_TIMEOUT)
    assert (await world.finished_row(job_id))["status"] == "completed"
    assert await second.terminate() == 0
    assert world.rows("SELECT locale, state FROM jobs WHERE id = ?", job_id) == [{"locale": "fi", "state": "completed"}]


async def test_the_sync_carries_the_translations_and_is_redone_when_one_changes(world: World) -> None:
    async with world.bot() as plain:
        assert await plain.terminate() == 0
    (english,) = world.discord.command_syncs
    imagine = next(command for command in english.payload if command["name"] == "imagine")
    assert not imagine.get("description_localizations")  # English alone: nothing to localize

    # The same commands, now with a locale more: what discord.py's to_dict() shows is unchanged, yet it syncs.
    async with world.bot(**PSEUDO) as pseudo:
        assert await pseudo.terminate() == 0
    _english, localized = world.discord.command_syncs
    assert localized.status == 200
    imagine = next(command for command in localized.payload if command["name"] == "imagine")
    assert imagine["description"] == "Generate images from a prompt, optionally guided by up to four reference images."
    assert imagine["description_localizations"] == {"fi": i18n.fit(i18n.pseudo(imagine["description"]), 100)}
    prompt = next(option for option in imagine["options"] if option["name"] == "prompt")
    assert prompt["description_localizations"]["fi"] == i18n.pseudo("What to draw, in up to 4,000 characters")
    assert not prompt.get("name_localizations")  # option names stay as they are
    menu = next(command for command in localized.payload if command.get("type") == 3)
    assert menu["name"] == "Imagine from images"
    assert menu["name_localizations"] == {"fi": i18n.pseudo("Imagine from images")}
    stored = next(command for command in world.discord.global_commands if command["name"] == "imagine")
    assert stored["description_localizations"] == imagine["description_localizations"]

    async with world.bot(**PSEUDO) as again:
        assert again.matching("not syncing")
        assert await again.terminate() == 0
    assert len(world.discord.command_syncs) == 2

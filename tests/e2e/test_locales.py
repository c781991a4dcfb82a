"""Locales through the real ``python bot.py``: a member's refusal in their locale while the public result speaks
the server's, a whole flow in a server that speaks the pseudo-locale with no text escaping it, a resumed job
keeping its locale, and a command sync that carries the translations.

The pseudo-locale stands in for a Discord locale the bot does not speak (``IMAGINE_PSEUDO_LOCALE=fi``, for
tests only): a member whose Discord is in Finnish reads every text of the catalog accented and bracketed, so a
text that escaped the catalog shows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any, Final

import pytest

import i18n
from tests.e2e.conftest import STEP_TIMEOUT, World, delivered, embed_fields
from tests.fakes.discord import CallbackType, MessageRecord
from tests.fakes.toapis import Timeline
from toapis import catalog

pytestmark = pytest.mark.e2e

PSEUDO = {"IMAGINE_PSEUDO_LOCALE": "fi"}
# What a pseudo-locale text keeps as it is (i18n/pseudo.py), and a job's reference: none of it is a text of the bot.
NOT_TEXT: Final = re.compile(r"<[^<>\s]+>|`[^`]*`|https?://\S+|(?<![\w/])/[a-z][\w-]*|\b[0-9a-f]{8,32}\b")


def visible_texts(message: MessageRecord) -> Iterator[str]:
    """Everything a member reads of a message, in every version it had: its content, its embeds' titles,
    descriptions, fields, footers and authors, and the labels of its buttons."""
    for version in message.versions:
        yield version.content
        for embed in version.embeds:
            yield embed.get("title") or ""
            yield embed.get("description") or ""
            yield (embed.get("footer") or {}).get("text") or ""
            yield (embed.get("author") or {}).get("name") or ""
            for field in embed.get("fields") or []:
                yield field["name"]
                yield field["value"]
        yield from labels(version.components)


def labels(components: Sequence[dict[str, Any]]) -> Iterator[str]:
    for component in components:
        if component.get("label"):
            yield component["label"]
        yield from labels(component.get("components") or [])


def unaccented(text: str, *, names: Sequence[str]) -> str:
    """The plain Latin letters left in `text` once the names (the member's prompt, models, the bot's own) and what
    the pseudo-locale keeps are taken out: nothing, when every text came from the catalog."""
    for name in sorted(names, key=len, reverse=True):
        text = text.replace(name, " ")
    return " ".join(re.findall(r"[A-Za-z]+", NOT_TEXT.sub(" ", text)))


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


async def test_a_whole_flow_in_a_pseudo_locale_server_shows_no_text_outside_the_catalog(world: World) -> None:
    world.guild.locale = "fi"  # the server's preferred locale speaks the pseudo-locale here
    alice, bob = world.member("alice"), world.member("bob")
    running_prompt, waiting_prompt = "a lighthouse beam sweeping the fog", "a dog waiting its turn"
    world.api.on_prompt("lighthouse beam", Timeline.never_ends(progress=20))
    bot = await world.start_bot(env=world.env(**PSEUDO, MAX_CONCURRENT_JOBS="1", GENERATION_TIMEOUT="1.5"))

    # One job runs, is late, and ends: its result goes to the channel with a mention (its reply said it was late).
    running = await world.discord.invoke_slash(
        "imagine", {"prompt": running_prompt}, user=alice, channel=world.channel, locale="fi"
    )
    job_id = await world.submitted_job(running_prompt)
    late_title = i18n.pseudo("Taking longer than usual")

    def titles(message: MessageRecord | None) -> list[str]:
        return [str(e.get("title")) for v in (message.versions if message else []) for e in v.embeds]

    await world.discord.wait_for(lambda: late_title in titles(running.original), STEP_TIMEOUT, what="the late notice")
    # Another waits in line behind it, with a Cancel button: someone else may not cancel it, its member does.
    waiting = await world.discord.invoke_slash(
        "imagine", {"prompt": waiting_prompt, "n": 2}, user=bob, channel=world.channel, locale="fi"
    )

    def cancel_button() -> str | None:
        ids = waiting.original.custom_ids() if waiting.original is not None else []
        return next((i for i in ids if i.startswith("imagine:cancel:")), None)

    cancel = await world.discord.wait_for(cancel_button, STEP_TIMEOUT, what="a Cancel button")
    assert waiting.original is not None
    refused = await world.discord.click(waiting.original, cancel, alice, locale="fi")
    await world.discord.wait_for(lambda: refused.acknowledged, STEP_TIMEOUT, what="the refused click's answer")
    cancelled = await world.discord.click(waiting.original, cancel, bob, locale="fi")
    await world.discord.wait_for(
        lambda: i18n.pseudo("Cancelled") in titles(waiting.original), STEP_TIMEOUT, what="the cancellation"
    )
    (task,) = world.api.tasks_for(job_id)
    world.api.end_task(task.id)

    def result_in_channel() -> MessageRecord | None:
        found = [m for m in world.discord.channel_messages(world.channel) if m.interaction is None and m.attachments]
        return found[0] if found else None

    result = await world.discord.wait_for(result_in_channel, STEP_TIMEOUT, what="the result in the channel")
    assert await bot.terminate() == 0

    assert refused.callback is not None
    assert refused.callback.ephemeral
    assert refused.callback.data is not None
    answer = str(refused.callback.data["content"])
    assert not cancelled.failed
    messages = [running.original, waiting.original, result]
    texts = [text for message in messages if message is not None for text in visible_texts(message) if text]
    texts.append(answer)
    names = [running_prompt, waiting_prompt, i18n.bot_name(), *(spec.name for spec in catalog.MODELS.values())]
    assert {text: unaccented(text, names=names) for text in texts if unaccented(text, names=names)} == {}
    # Not vacuous: the flow showed progress, the late notice, a place in line, the cancellation, the result's
    # fields and buttons, the mention that comes with it, and the private answer, all from the catalog.
    assert late_title in titles(running.original)
    assert i18n.pseudo("Next in line") in titles(waiting.original)
    assert result.content == i18n.translate("reporter.ready.channel", i18n.PSEUDO, member=alice.id)
    assert result.pings.users == frozenset({alice.id})
    (embed,) = result.embeds
    assert all(i18n.is_pseudo(name) for name in embed_fields(embed))
    assert sorted(labels(result.components)) == sorted(
        i18n.pseudo(text) for text in ("Re-roll", "Remix", "Delete", "Vary 1")
    )
    assert answer == i18n.pseudo("Only the member who asked can cancel this.")
    (row,) = world.rows("SELECT locale FROM jobs WHERE id = ?", job_id)
    assert row["locale"] == "fi"


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
    # English is Discord's default: only the other supported locales are localized.
    # (es-419, which Discord sends Latin American members, reads Spain's Spanish.)
    translated = [locale for locale in (*i18n.SUPPORTED, "es-419") if locale != i18n.SOURCE]
    descriptions = {locale: i18n.translate("command.imagine", locale) for locale in translated}
    assert (imagine.get("description_localizations") or {}) == descriptions

    # The same commands, now with a locale more: what discord.py's to_dict() shows is unchanged, yet it syncs.
    async with world.bot(**PSEUDO) as pseudo:
        assert await pseudo.terminate() == 0
    _english, localized = world.discord.command_syncs
    assert localized.status == 200
    imagine = next(command for command in localized.payload if command["name"] == "imagine")
    assert imagine["description"] == "Generate images from a prompt, optionally guided by up to four reference images."
    assert imagine["description_localizations"] == {
        **descriptions,
        "fi": i18n.fit(i18n.pseudo(imagine["description"]), 100),
    }
    prompt = next(option for option in imagine["options"] if option["name"] == "prompt")
    assert prompt["description_localizations"]["fi"] == i18n.pseudo("What to draw, in up to 4,000 characters")
    assert not prompt.get("name_localizations")  # option names stay as they are
    menu = next(command for command in localized.payload if command.get("type") == 3)
    assert menu["name"] == "Imagine from images"
    menu_names = {locale: i18n.translate("menu.from_images", locale) for locale in translated}
    assert menu["name_localizations"] == {**menu_names, "fi": i18n.pseudo("Imagine from images")}
    stored = next(command for command in world.discord.global_commands if command["name"] == "imagine")
    assert stored["description_localizations"] == imagine["description_localizations"]

    async with world.bot(**PSEUDO) as again:
        assert again.matching("not syncing")
        assert await again.terminate() == 0
    assert len(world.discord.command_syncs) == 2

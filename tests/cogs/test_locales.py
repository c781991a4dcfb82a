"""Locales in the bot: command texts through the catalog and the translator, the sync hash over the translated
payload, private answers in the member's locale (every text of /help, /history, /show, /quota and /imagine-settings
show in the pseudo-locale), the server's language kept with each job and named by
/imagine-settings, and what the bot posts on its own (the welcome, alerts, the moderation log) in the server's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Where

import i18n
from cogs._texts import server_alert_text
from cogs._translator import CatalogTranslator
from generation.alerts import AlertKind
from i18n.catalog import read_catalog
from i18n.locales import FALLBACKS
from tests.cogs.conftest import World, WorldFactory, delivered, wait_until
from tests.cogs.test_alerts import outcome
from tests.cogs.test_imagine_settings import refused_at_once, settings_fields
from tests.cogs.test_quota import answer
from tests.cogs.test_quota import command as run_command
from tests.fakes._discord_records import iter_components
from tests.fakes.discord import CallbackType, FakeChannel, FakeGuild, MessageRecord
from tests.fakes.toapis import Endpoint, Fault
from toapis import catalog

PSEUDO_ENV = {"IMAGINE_PSEUDO_LOCALE": "fi"}
NAMES = (Where.command_name, Where.group_name, Where.parameter_name)
# The supported locales other than English: synced with every command alongside the pseudo-locale's `fi`.
# The supported translations, and the Discord locales they stand in for (es-419 reads es-ES).
TRANSLATED = {locale for locale in i18n.SUPPORTED if locale != i18n.SOURCE} | {
    discord_locale for discord_locale, served_by in FALLBACKS.items() if served_by in i18n.SUPPORTED
} - {i18n.SOURCE, "en-GB"}


class Recorder(app_commands.Translator):
    """Records every string discord.py asks to translate, and where it sits."""

    def __init__(self) -> None:
        self.asked: list[tuple[app_commands.locale_str, Where, Any]] = []

    async def translate(self, string: app_commands.locale_str, locale: discord.Locale, context: Any) -> str | None:
        if locale is discord.Locale.american_english:
            self.asked.append((string, context.location, context.data))
        return None


async def test_every_description_and_choice_name_comes_from_the_catalog_and_no_name_is_translated(
    world: World,
) -> None:
    tree, recorder = world.bot.tree, Recorder()
    for command in tree.get_commands():
        await command.get_translated_payload(tree, recorder)

    # The languages a server may choose are named in their own words (Babel's data), the same in every locale.
    keyed = {
        (string.message, location): string.extras.get("key")
        for string, location, data in recorder.asked
        if not (isinstance(data, app_commands.Choice) and data.value in i18n.SUPPORTED)
    }
    menus = {str(s) for s, location, data in recorder.asked if isinstance(data, app_commands.ContextMenu)}
    assert menus == {"Imagine from images"}
    for (message, location), key in keyed.items():
        if location in NAMES and message not in menus:
            assert key is None, (message, location)  # command and option names stay as they are
        else:
            assert isinstance(key, str), (message, location)
            assert i18n.translate(key, "en-US", model="m") == message or key == "choice.model.default"
    locations = {location for _, location in keyed}
    assert {Where.command_description, Where.group_description, Where.parameter_description, Where.choice_name} <= (
        locations
    )


async def test_with_the_pseudo_locale_the_sync_carries_localized_texts_within_discords_limits(
    make_world: WorldFactory,
) -> None:
    async with make_world(**PSEUDO_ENV) as world:
        (sync,) = world.discord.command_syncs
    assert sync.status == 200

    def check(item: dict[str, Any], *, menu: bool = False) -> None:
        if menu:
            names = item["name_localizations"]
            assert set(names) == {*TRANSLATED, "fi"}
            assert i18n.is_pseudo(names["fi"])
            assert all(len(name) <= 32 for name in names.values())
            return
        assert item.get("name_localizations") in (None, {}), item["name"]
        texts = item["description_localizations"]
        assert set(texts) == {*TRANSLATED, "fi"}, item["name"]
        assert i18n.is_pseudo(texts["fi"]), texts["fi"]
        assert all(len(text) <= 100 for text in texts.values()), texts
        for choice in item.get("choices") or []:
            if choice["value"] in i18n.SUPPORTED:  # a language, named in its own words everywhere
                assert not choice.get("name_localizations"), choice
            else:
                assert i18n.is_pseudo(choice["name_localizations"]["fi"]), choice
        for option in item.get("options") or []:
            check(option)

    commands = {command["name"]: command for command in sync.payload}
    assert set(commands) == {
        "imagine",
        "usage",
        "quota",
        "imagine-settings",
        "show",
        "history",
        "help",
        "Imagine from images",
    }
    for command in sync.payload:
        check(command, menu=command.get("type") == 3)
    imagine = commands["imagine"]
    assert imagine["description_localizations"]["fi"].startswith("⟦Ĝéñéŕàţé îɱàĝéš")
    aspect = next(option for option in imagine["options"] if option["name"] == "aspect")
    assert aspect["choices"][0]["name"] == "Square 1:1"
    assert aspect["choices"][0]["name_localizations"]["fi"] == "⟦Šʠûàŕé 1:1⟧"


async def test_a_changed_translation_changes_the_hash_and_is_synced_at_the_next_start(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = await world.bot.command_tree_hash()
    untranslated = [command.to_dict(world.bot.tree) for command in world.bot.tree.get_commands()]
    po = tmp_path / "ja.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Language: ja\\n"\n"Plural-Forms: nplurals=1; plural=0;\\n"\n\n'
        'msgid "command.imagine"\nmsgstr "プロンプトから画像を生成します。"\n',
        encoding="utf-8",
    )
    monkeypatch.setattr("i18n.locales.SUPPORTED", ("en-US", "ja"))
    monkeypatch.setitem(i18n.catalogs(), "ja", read_catalog("ja", po))

    after = await world.bot.command_tree_hash()
    assert after != before
    # What the hash used to cover (the untranslated commands) did not change: only the translated payload did.
    assert [command.to_dict(world.bot.tree) for command in world.bot.tree.get_commands()] == untranslated

    await world.restart()
    first, second = world.discord.command_syncs
    assert (first.status, second.status) == (200, 200)
    imagine = next(command for command in second.payload if command["name"] == "imagine")
    assert imagine["description_localizations"]["ja"] == "プロンプトから画像を生成します。"
    # Texts without a Japanese translation fall back to English, which Discord shows by default: not sent.
    assert all("ja" not in (option.get("description_localizations") or {}) for option in imagine["options"])
    await world.restart()
    assert len(world.discord.command_syncs) == 2


async def test_the_translator_leaves_what_has_no_key_and_english_alone() -> None:
    translator = CatalogTranslator()
    keyed = app_commands.locale_str("Your images", key="usage.title")
    context: app_commands.TranslationContext[Any, Any] = app_commands.TranslationContext(Where.other, None)
    assert await translator.translate(app_commands.locale_str("imagine"), discord.Locale.finnish, context) is None
    assert await translator.translate(keyed, discord.Locale.american_english, context) is None
    assert await translator.translate(keyed, discord.Locale.british_english, context) is None
    assert await translator.translate(keyed, discord.Locale.italian, context) is None  # not spoken: English


# -- private answers in the member's locale --------------------------------------------------------------------


async def test_a_refusal_speaks_the_members_locale(make_world: WorldFactory) -> None:
    async with make_world(**PSEUDO_ENV) as world:
        english = await world.discord.invoke_slash(
            "imagine", {"prompt": "   "}, user=world.member, channel=world.channel, locale="en-US"
        )
        finnish = await world.discord.invoke_slash(
            "imagine", {"prompt": "   "}, user=world.member, channel=world.channel, locale="fi"
        )
        await world.discord.wait_for(lambda: english.acknowledged and finnish.acknowledged, 10)
    assert english.original is not None
    assert finnish.original is not None
    assert english.original.content == "Your prompt is empty: describe the image you want."
    assert finnish.original.content == "⟦Ýöûŕ ƥŕöɱƥţ îš éɱƥţý: đéšçŕîƀé ţĥé îɱàĝé ýöû ŵàñţ.⟧"
    assert finnish.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE


async def test_usage_and_the_model_suggestions_speak_the_members_locale(make_world: WorldFactory) -> None:
    async with make_world(**PSEUDO_ENV) as world:
        call = await world.discord.invoke_slash("usage", {}, user=world.member, channel=world.channel, locale="fi")
        await world.discord.wait_for(lambda: bool(call.followups), 10)
        suggestions = await world.discord.autocomplete(
            "imagine", {"prompt": "a cat", "model": ""}, focused="model", user=world.member, locale="fi"
        )
        english = await world.discord.autocomplete(
            "imagine", {"prompt": "a cat", "model": ""}, focused="model", user=world.member, locale="en-US"
        )
    (embed,) = call.followups[0].embeds
    assert embed["title"] == "⟦Ýöûŕ îɱàĝéš⟧"
    assert all(i18n.is_pseudo(line) for line in embed["description"].splitlines() if line)
    assert "<t:" in embed["description"]
    assert suggestions[0]["name"] == "⟦GPT Image 2 (đéƒàûĺţ)⟧"
    assert english[0]["name"] == "GPT Image 2 (default)"


# What is not text to translate: mentions and timestamps, code spans, links, slash commands, job references.
NOT_TEXT = re.compile(r"<[^<>\s]+>|`[^`]*`|https?://\S+|(?<![\w/])/[a-z][\w-]*|\b[0-9a-f]{8,32}\b")
PROMPT = "a cat"


def shown_texts(message: MessageRecord) -> Iterator[str]:
    """Everything a member reads of a message: its content, its embeds, its buttons' and menus' labels."""
    yield message.content or ""
    for embed in message.embeds:
        yield from (
            embed.get("title") or "",
            embed.get("description") or "",
            (embed.get("footer") or {}).get("text", ""),
        )
        for field in embed.get("fields") or []:
            yield from (field["name"], field["value"])
    for component in iter_components(message.components):
        yield from (component.get("label") or "", component.get("placeholder") or "")
        for option in component.get("options") or []:
            yield option.get("label") or ""


def english_left(text: str) -> str:
    """The words of `text` that are not pseudo-localized, once names (the bot's, the models', the languages' in
    their own words), the prompt and what is not text are taken out."""
    names = [i18n.bot_name(), PROMPT, *(spec.name for spec in catalog.MODELS.values())]
    names += [i18n.language_name(locale) for locale in i18n.SUPPORTED]
    for name in sorted(names, key=len, reverse=True):
        text = text.replace(name, " ")
    return " ".join(re.findall(r"[A-Za-z]{2,}", NOT_TEXT.sub(" ", text)))


@pytest.mark.parametrize(
    ("name", "by_admin"),
    [
        ("help", False),
        ("history", False),
        ("show", False),
        ("quota show", True),
        ("quota usage", True),
        ("imagine-settings show", True),
    ],
)
async def test_what_a_command_shows_is_all_in_the_pseudo_locale(
    make_world: WorldFactory, name: str, by_admin: bool
) -> None:
    async with make_world(**PSEUDO_ENV) as world:
        world.guild.locale = "fi"  # /show posts the images again for the channel: the server speaks it too
        first = await world.imagine(PROMPT)
        await world.discord.wait_for(lambda: delivered(first), 15)
        assert first.original is not None
        reference = re.search(r"[0-9a-f]{8,32}", first.original.embeds[0]["footer"]["text"])
        assert reference is not None
        options = {"job": reference.group()} if name == "show" else {}
        user = world.guild.owner if by_admin else world.member
        call = await world.discord.invoke_slash(name, options, user=user, channel=world.channel, locale="fi")
        message = await answer(world, call)
        if name == "show":
            await world.discord.wait_for(lambda: delivered(call), 15, what="the images shown")
            assert call.original is not None
            message = call.original

    texts = [text for text in shown_texts(message) if text]
    assert texts, f"/{name} showed nothing"
    assert {text: english_left(text) for text in texts if english_left(text)} == {}


# -- the server's language, kept with each job -------------------------------------------------------------------


async def test_a_job_keeps_the_servers_preferred_locale_or_its_chosen_language(world: World) -> None:
    world.guild.locale = "ja"
    first = await world.imagine("a cat")
    await world.discord.wait_for(lambda: delivered(first), 15)

    admin = world.guild.owner
    chosen = await world.discord.invoke_slash(
        "imagine-settings language", {"language": "en-US"}, user=admin, channel=world.channel
    )
    await world.discord.wait_for(lambda: bool(chosen.followups), 10)
    assert chosen.followups[0].content.startswith("Progress and results in this server are now in English")
    second = await world.imagine("a dog")
    await world.discord.wait_for(lambda: delivered(second), 15)

    auto = await world.discord.invoke_slash(
        "imagine-settings language", {"language": "auto"}, user=admin, channel=world.channel
    )
    await world.discord.wait_for(lambda: bool(auto.followups), 10)
    assert "(日本語)" in auto.followups[0].content
    third = await world.imagine("a bird")
    await world.discord.wait_for(lambda: delivered(third), 15)

    jobs = await wait_until(lambda: _jobs_when(world, 3))
    assert [job.locale for job in jobs] == ["ja", "en-US", "ja"]
    assert world.bot.services.server_settings.get(world.guild.id).language is None


async def test_auto_names_the_language_public_messages_speak_not_a_preferred_locale_the_bot_does_not(
    world: World,
) -> None:
    # A Community server set to Italian: the bot speaks no Italian, so its public messages are English.
    world.guild.locale = "it"
    auto = await run_command(world, "imagine-settings language", {"language": "auto"})
    assert auto.content.startswith(
        "Progress and results in this server now follow its preferred locale, italiano, which Imagine does not "
        "speak: they are in English (United States)."
    )
    shown = settings_fields(await run_command(world, "imagine-settings show"))
    assert shown["Language of progress and results"] == (
        "English (United States) (Imagine does not speak the server's preferred locale, italiano)"
    )

    # es-419 is served by the Spanish of Spain: that is the Spanish the channel reads.
    world.guild.locale = "es-419"
    shown = settings_fields(await run_command(world, "imagine-settings show"))
    assert shown["Language of progress and results"] == "español (España) (the server's preferred locale)"


async def _jobs_when(world: World, count: int) -> list[Any] | None:
    jobs = await world.jobs()
    return jobs if len(jobs) == count else None


# -- what the bot posts on its own: the server's language ----------------------------------------------------------


async def joined(world: World, name: str, locale: str) -> tuple[FakeGuild, FakeChannel, FakeChannel]:
    """The bot is added to a Community server whose preferred locale is `locale`, with a #lobby (where the
    welcome goes) and an #ops channel, both in the bot's cache."""
    await world.bot.wait_until_ready()  # a server added in the first seconds counts as one it was in already
    guild = world.discord.add_guild(name, locale=locale)
    lobby = guild.add_text_channel("lobby")
    ops = guild.add_text_channel("ops")

    async def cached() -> bool:
        return world.bot.get_channel(ops.id) is not None

    await wait_until(cached, 10)
    return guild, lobby, ops


def posted(world: World, channel: FakeChannel, count: int) -> list[MessageRecord] | None:
    messages = world.discord.channel_messages(channel)
    return messages if len(messages) >= count else None


async def test_the_welcome_speaks_the_servers_preferred_locale(world: World) -> None:
    _, lobby, _ = await joined(world, "스튜디오", "ko")

    (welcome,) = await world.discord.wait_for(lambda: posted(world, lobby, 1), 10, what="the welcome")

    assert welcome.content == i18n.translate("welcome", "ko")
    assert welcome.content != i18n.translate("welcome", i18n.SOURCE)


async def test_log_channel_alerts_speak_the_preferred_locale_or_the_chosen_language(world: World) -> None:
    japanese, _, japanese_ops = await joined(world, "スタジオ", "ja")
    await run_command(
        world, "imagine-settings log-channel", {"channel": japanese_ops}, user=japanese.owner, channel=japanese_ops
    )
    # The test server's preferred locale is en-US; its admins chose German for what the channel sees.
    ops = world.guild.add_text_channel("ops")
    world.discord.gateway.dispatch("CHANNEL_CREATE", ops.to_payload(), guild_id=world.guild.id)

    async def cached() -> bool:
        return world.bot.get_channel(ops.id) is not None

    await wait_until(cached, 10)
    await run_command(world, "imagine-settings log-channel", {"channel": ops})
    await run_command(world, "imagine-settings language", {"language": "de"})
    world.api.fail(Endpoint.SUBMIT, Fault.unauthorized(), times=None)
    world.api.fail(Endpoint.MODELS, Fault.unauthorized(), times=None)

    await outcome(world, await world.imagine("a cat"))
    await world.discord.wait_for(lambda: posted(world, japanese_ops, 1), 10, what="the alert")
    world.api.clear_faults()
    await world.discord.wait_for(lambda: posted(world, japanese_ops, 2), 10, what="the all-clear")
    await world.discord.wait_for(lambda: posted(world, ops, 2), 10, what="the all-clear")

    kinds = (AlertKind.API_KEY_REJECTED, AlertKind.UPSTREAM_BACK)
    assert [m.content for m in world.discord.channel_messages(japanese_ops)] == [
        server_alert_text(kind, "ja") for kind in kinds
    ]
    assert [m.content for m in world.discord.channel_messages(ops)] == [server_alert_text(kind, "de") for kind in kinds]
    assert server_alert_text(AlertKind.API_KEY_REJECTED, "de") != server_alert_text(
        AlertKind.API_KEY_REJECTED, i18n.SOURCE
    )


async def test_the_mod_log_speaks_the_servers_preferred_locale(world: World) -> None:
    guild, lobby, ops = await joined(world, "Estúdio", "pt-BR")
    for name, options in (
        ("imagine-settings log-channel", {"channel": ops}),
        ("imagine-settings mod-log on", {}),
        ("imagine-settings blocked-words add", {"words": "dragon"}),
    ):
        await run_command(world, name, options, user=guild.owner, channel=lobby)

    await refused_at_once(world, await world.imagine("a dragon", user=guild.add_member("carol"), channel=lobby))

    (entry,) = await world.discord.wait_for(lambda: posted(world, ops, 1), 10, what="the entry")
    (embed,) = entry.embeds
    assert embed["title"] == i18n.translate("modlog.title", "pt-BR")
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert fields[i18n.translate("modlog.reason", "pt-BR")] == i18n.translate("modlog.reason.blocked", "pt-BR")
    assert set(fields) == {i18n.translate(f"modlog.{name}", "pt-BR") for name in ("member", "channel", "reason")}
    assert embed["title"] != i18n.translate("modlog.title", i18n.SOURCE)

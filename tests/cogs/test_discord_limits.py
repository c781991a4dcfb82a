"""Discord's limits on what the bot sends, driven through the real bot with the longest inputs a member or an
admin can give (docs/discord.md): every answer must reach them, whatever they typed."""

from __future__ import annotations

import pytest

from storage.quotas import Period, RuleScope
from tests.cogs.conftest import World, WorldFactory, wait_until
from tests.cogs.test_chat import mention, pings_only, reply_of, say
from tests.cogs.test_imagine_settings import refused_at_once
from tests.cogs.test_quota import announce_role, answer, assert_embed_within_limits, command
from tests.fakes.discord import CallbackType, Permission
from toapis import catalog

# Discord takes at most 2,000 characters of message content; a member may type 6,000 into a string option, and a
# message of 2,000 (4,000 with Nitro).
MAX_CONTENT = 2000
OPTION_TEXT = 6000


async def test_a_model_of_thousands_of_characters_typed_into_imagine_is_refused_in_words(world: World) -> None:
    # `model` is a free-text option (its suggestions are only suggestions): Discord's client sends what was typed.
    text = await refused_at_once(world, await world.imagine("a cat", model="m" * OPTION_TEXT))

    assert text.startswith("This server does not offer the model 'mmm")
    assert text.endswith("It offers: GPT Image 2.")
    assert len(text) <= MAX_CONTENT


async def test_a_long_inline_option_in_the_conversation_is_refused_in_a_reply(world: World) -> None:
    world.bot.services.chat.refusal_seconds = 0  # one refusal after another, each answered
    # A message of 2,000 characters, nearly all of them one option's value.
    model_text = f"{mention(world)} a fox --model "
    count_text = f"{mention(world)} a fox --n x"
    model = await say(world, model_text + "m" * (MAX_CONTENT - len(model_text)))
    count = await say(world, count_text + "9" * (MAX_CONTENT - len(count_text)))

    for message, start in ((model, "This server does not offer the model 'mmm"), (count, "`--n` takes a number")):
        refusal = await reply_of(world, message)
        assert refusal.versions[0].content.startswith(start)
        assert pings_only(refusal, world.member)


async def test_a_long_model_given_to_an_admin_command_is_refused_in_words(world: World) -> None:
    call = await world.discord.invoke_slash(
        "imagine-settings models add", {"model": "m" * OPTION_TEXT}, user=world.guild.owner, channel=world.channel
    )
    await world.discord.wait_for(lambda: call.acknowledged or call.failed, 10, what="the refusal")

    assert call.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE, call.failure
    assert call.original is not None
    assert call.original.content.startswith("This server does not offer the model 'mmm")


async def test_a_day_of_thousands_of_characters_given_to_quota_export_is_refused_in_words(world: World) -> None:
    answer = await command(world, "quota export", {"start": "2026-" + "1" * (OPTION_TEXT - 5)})

    assert answer.content.startswith("`start` must be a date like 2026-11-01, not '2026-111")
    assert len(answer.content) <= MAX_CONTENT


def words(prefix: str, count: int) -> list[str]:
    """`count` distinct blocked-word entries of ten letters."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    return [f"{prefix}{letters[i // 26]}{letters[i % 26]}".ljust(10, "q") for i in range(count)]


async def test_adding_blocked_words_answers_within_a_message_whatever_was_new_known_or_unusable(world: World) -> None:
    known = words("kn", 60)
    await command(world, "imagine-settings blocked-words add", {"words": ", ".join(known)})
    # In one add of 4,000 characters: entries new, entries blocked already, and entries too long to use.
    fresh = words("fr", 60)
    unusable = ["z" * 101] * 7
    typed = ", ".join([*fresh, *known, *unusable])
    assert len(typed) <= 4000

    answer = await command(world, "imagine-settings blocked-words add", {"words": typed})

    assert answer.content.startswith("Blocked: `fraaqqqqqq`, ")
    assert len(answer.content) <= MAX_CONTENT
    assert len(world.bot.services.server_settings.get(world.guild.id).blocked_words) == 120


ALL_MODELS = ",".join(catalog.MODELS)


async def _cached(world: World) -> bool:
    return world.bot.get_guild(world.guild.id) is not None


@pytest.mark.parametrize("locale", ["de", "ru", "fr", "fi"])
async def test_help_with_every_setting_at_its_longest_fits_an_embed(make_world: WorldFactory, locale: str) -> None:
    async with make_world(TOAPIS_MODELS=ALL_MODELS, IMAGINE_PSEUDO_LOCALE="fi") as world:
        await wait_until(lambda: _cached(world))
        settings = world.bot.services.server_settings
        await settings.set_chat(world.guild.id, True)
        for index in range(300):
            await settings.add_allowed_channel(world.guild.id, 10**18 + index)
        admins = await announce_role(world, "Admins", Permission.MANAGE_GUILD)
        admin = world.guild.add_member("admin", roles=[admins])
        await world.store.quotas.set_rule(world.guild.id, RuleScope.MEMBER, 10, Period.WEEK)
        await world.store.quotas.set_rule(world.guild.id, RuleScope.ROLE, 7, Period.MONTH, role_id=admins.id)
        await world.store.quotas.set_rule(world.guild.id, RuleScope.MEMBER_OVERRIDE, 5, Period.DAY, user_id=admin.id)

        call = await world.discord.invoke_slash("help", {}, user=admin, channel=world.channel, locale=locale)
        reply = await answer(world, call)

    (embed,) = reply.embeds
    assert len(embed["fields"]) >= 9
    assert embed["fields"][0]["name"] != "How to use it"  # in the member's language (fi: the pseudo-locale)
    assert_embed_within_limits(embed)


async def test_help_counts_a_members_role_limit_before_the_servers_data_has_come(make_world: WorldFactory) -> None:
    async with make_world(DEFAULT_MEMBER_DAILY_LIMIT="none", DEFAULT_SERVER_DAILY_LIMIT="none") as world:
        limited = world.guild.add_role("Limited")
        lea = world.guild.add_member("lea", roles=[limited])
        await world.store.quotas.set_rule(world.guild.id, RuleScope.ROLE, 3, Period.DAY, role_id=limited.id)
        # The next start: the server's data comes late, and Lea's /help arrives before it (the interaction carries
        # her roles; discord.py drops from `Member.roles` those it has not cached).
        await world.restart(while_stopped=lambda: world.discord.hold_guild(world.guild))
        usage = await command(world, "usage", user=lea)
        helped = await command(world, "help", user=lea)
        world.discord.release_guild(world.guild)

    assert f"<@&{limited.id}>" in usage.embeds[0]["description"]
    (limits,) = [field["value"] for field in helped.embeds[0]["fields"] if field["name"] == "Your limits here"]
    assert f"<@&{limited.id}>" in limits

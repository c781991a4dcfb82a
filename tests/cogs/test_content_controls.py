"""Content controls through the real bot: blocked words, one member's own limit, spoilers and the moderation log.

Admins set each control with its command; the tests then act as members and assert on what the fakes recorded
(what was answered and to whom, what was posted where, what reached ToAPIs) and on the database.
"""

from __future__ import annotations

from typing import Any

import pytest

import i18n
from cogs._embeds import fenced
from cogs._mod_log import spoiler
from cogs._texts import policy_category_text
from storage.usage import UsageEntry
from tests.cogs.conftest import World, WorldFactory, png_upload, wait_until
from tests.cogs.test_imagine_settings import refused_at_once, refused_at_once_after
from tests.cogs.test_quota import (
    add_server,
    announce_channel,
    announce_role,
    command,
    description,
    generate,
    refused_quota,
)
from tests.fakes._discord_records import iter_components
from tests.fakes.discord import CallbackType, FakeChannel, InteractionRecord, MessageRecord
from tests.fakes.toapis import Endpoint, Timeline
from toapis.contract import CONTENT_POLICY_CATEGORIES

PROMPT_BLOCKED = i18n.translate("refusal.prompt_blocked", i18n.SOURCE)

CONTEXT_MENU = "Imagine from images"


async def block(world: World, words: str) -> MessageRecord:
    return await command(world, "imagine-settings blocked-words add", {"words": words})


async def blocked_rows(world: World, user_id: int | None = None) -> list[UsageEntry]:
    """The usage log's rows of prompts refused for a blocked word, once the bot has written them."""
    await world.interactions_handled()
    await world.bot.services.mod_log.wait_idle()
    rows = await world.store.usage.for_member(world.guild.id, user_id or world.member.id)
    return [row for row in rows if row.status == "blocked"]


def assert_blocked_answer(message: MessageRecord, prompt: str) -> None:
    """The neutral refusal: no word named, the prompt repeated in a code block it cannot break out of."""
    assert message.content == PROMPT_BLOCKED
    (embed,) = message.embeds
    text = embed["description"]
    assert text.startswith("```\n")
    assert text.endswith("\n```")
    assert "```" not in text[3:-3]
    assert text[4:-4].replace("`\u200b", "`") == prompt


async def no_more_posts_in(world: World, channel: FakeChannel) -> list[MessageRecord]:
    """What the bot posted in `channel` once its logging work has ended."""
    await world.bot.services.mod_log.wait_idle()
    return world.discord.channel_messages(channel)


# -- blocked words: the admin's side ------------------------------------------------------------------------------


async def test_blocked_words_are_added_listed_and_removed_and_shown_to_the_admin_only(world: World) -> None:
    added = await block(world, "Bad Word, ｒｅａｌ  person, 裸体, c++, , bad word")

    assert added.content.splitlines() == [
        "Blocked: `bad word`, `real person`, `裸体`.",
        "Left out (no letters or digits, a single letter, or over 100 characters): `c++`.",
        "This server blocks 3 words or phrases. A prompt that contains one is refused, and its member is not "
        "told which.",
    ]
    again = await block(world, "BAD WORD, gore")
    assert again.content.splitlines()[:2] == ["Blocked: `gore`.", "Already blocked: `bad word`."]

    listing = await command(world, "imagine-settings blocked-words list")
    assert description(listing).splitlines() == [
        "4 words or phrases, as Imagine compares them (no case, accents or punctuation).",
        "",
        "`bad word`, `gore`, `real person`, `裸体`",
    ]
    shown = await command(world, "imagine-settings show")
    fields = {field["name"]: field["value"] for field in shown.embeds[0]["fields"]}
    assert fields["Blocked words"] == "4 (see blocked-words list)"
    assert "gore" not in str(shown.embeds)

    removed = await command(world, "imagine-settings blocked-words remove", {"words": "GORE, never listed"})
    assert removed.content.splitlines() == [
        "Allowed again: `gore`.",
        "Not on the list: `never listed`.",
        "This server blocks 3 words or phrases.",
    ]
    assert (await world.store.guild_settings.get(world.guild.id)).blocked_words == {"bad word", "real person", "裸体"}


async def test_entries_that_could_never_match_sensibly_are_refused_at_once(world: World) -> None:
    reply = await block(world, "c++, !!!, x")

    assert reply.content.startswith("Nothing to block in `c++`, `!!!`, `x`:")
    assert (await world.store.guild_settings.get(world.guild.id)).blocked_words == frozenset()


async def test_a_server_blocks_at_most_500_entries(world: World) -> None:
    await world.bot.services.server_settings.add_blocked_words(world.guild.id, [f"word{i}" for i in range(498)])

    too_many = await block(world, "one, two, three")
    last = await block(world, "one, two")
    full = await block(world, "three")

    assert too_many.content == (
        "A server can block at most 500 words or phrases: there is room for only 2 more. Nothing was added."
    )
    assert last.content.startswith("Blocked: `one`, `two`.")
    assert full.content == "This server already blocks 500 words or phrases, the most it can: remove some first."
    assert len((await world.store.guild_settings.get(world.guild.id)).blocked_words) == 500


async def test_a_long_list_comes_in_pages(world: World) -> None:
    await world.bot.services.server_settings.add_blocked_words(world.guild.id, [f"word{i:03d}" for i in range(300)])

    listing = await command(world, "imagine-settings blocked-words list")

    assert listing.embeds[0]["footer"]["text"].startswith("Page 1 of ")
    assert len(listing.embeds[0]["description"]) <= 4096


# -- blocked words: the member's side -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt",
    [
        "a photo of the bad word",
        "a BAD WORD, in capitals",
        "ｂａｄ ｗｏｒｄ in full-width letters",
        "a bád wörd with accents",
        "a b\u200bad wo\u200drd with invisible characters",
        "b.a.d w-o-r-d spelled out",
        "b a d_word",
    ],
    ids=["plain", "capitals", "full-width", "accents", "zero-width", "separators", "spaces-and-underscore"],
)
async def test_a_blocked_prompt_is_refused_at_once_and_costs_nothing(world: World, prompt: str) -> None:
    await block(world, "bad word")

    call = await world.imagine(prompt, image=png_upload())

    await refused_at_once(world, call)
    assert call.original is not None
    assert_blocked_answer(call.original, prompt)
    assert call.original.mentions_nobody
    assert await world.jobs() == []
    assert await world.ledger() == []
    assert world.api.requests_to(Endpoint.UPLOAD) == []
    assert world.discord.cdn_requests == 0
    (row,) = await blocked_rows(world)
    assert (row.prompt, row.images, row.n, row.status, row.model) == (prompt, 0, 1, "blocked", "gpt-image-2")
    assert row.reference_count == 1


async def test_a_word_that_merely_contains_a_blocked_word_is_not_refused(world: World) -> None:
    await block(world, "ass")

    await generate(world, "a classy glass of bass in an assassin's class")

    assert await blocked_rows(world) == []


async def test_a_blocked_prompt_starts_the_cooldown_so_the_list_cannot_be_probed_for_free(world: World) -> None:
    await command(world, "imagine-settings cooldown", {"seconds": 600})
    await block(world, "dragon")

    await refused_at_once(world, await world.imagine("a red dragon"))
    again = await refused_at_once(world, await world.imagine("a red lizard"))

    assert again.startswith("You can use /imagine again <t:")
    # A refusal that is the member's own mistake (a wrong option) still costs no wait.
    bob = world.guild.add_member("bob")
    await command(world, "imagine-settings max-n", {"value": 1})
    await refused_at_once_after(world, await world.imagine("two cats", user=bob, n=2))
    await generate(world, "one cat", user=bob)


async def test_a_prompt_that_tries_to_break_out_of_the_code_block_stays_inside(world: World) -> None:
    await block(world, "forbidden")
    prompt = "```\n@everyone forbidden ``` <@123> ````"

    call = await world.imagine(prompt)

    await refused_at_once(world, call)
    assert call.original is not None
    assert_blocked_answer(call.original, prompt)


async def test_a_reroll_and_a_vary_of_a_prompt_blocked_since_are_refused_after_the_defer(world: World) -> None:
    first = await generate(world, "a cat on a wall", n=2)
    (job,) = await world.jobs()
    await block(world, "cat")
    assert first.original is not None

    for custom_id in (f"imagine:reroll:{job.id}", f"imagine:vary:{job.id}:1"):
        click = await world.discord.click(first.original, custom_id, world.member)
        text = await refused_quota(world, click)
        assert text == PROMPT_BLOCKED
        assert_blocked_answer(click.followups[-1], "a cat on a wall")

    assert len(world.api.requests_to(Endpoint.SUBMIT)) == 1
    assert [row.images for row in await world.ledger()] == [2]
    assert [(row.status, row.n, row.images) for row in await blocked_rows(world)] == [("blocked", 2, 0)] * 2


def text_input(modal: dict[str, Any] | None) -> str:
    assert modal is not None
    (custom_id,) = [c["custom_id"] for c in iter_components(modal.get("components")) if c.get("type") == 4]
    return str(custom_id)


def owed_writes(world: World, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The owed answers written from now on (one is written right after a public "thinking" defer)."""
    written: list[object] = []
    record = world.store.owed_answers.record

    async def recording(owed: Any, *args: Any, **kwargs: Any) -> Any:
        written.append(owed)
        return await record(owed, *args, **kwargs)

    monkeypatch.setattr(world.store.owed_answers, "record", recording)
    return written


async def test_the_context_menus_form_refuses_a_blocked_prompt_at_once_privately(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await block(world, "dragon")
    post = await world.discord.post_message(world.channel, world.member, "", files=[png_upload("boat.png")])
    menu = await world.discord.invoke_message_context(CONTEXT_MENU, post, user=world.member)
    await world.discord.wait_for(lambda: menu.modal is not None, 10, what="the form")
    written = owed_writes(world, monkeypatch)

    sent = await world.discord.submit_modal(menu, {text_input(menu.modal): "a DRAGON boat"})

    # The typed prompt is checked from memory before the first response: a private answer at once, no public
    # "thinking" reply, no owed answer written, no stored form or image read.
    assert await refused_at_once(world, sent) == PROMPT_BLOCKED
    assert sent.original is not None
    assert_blocked_answer(sent.original, "a DRAGON boat")
    (row,) = await blocked_rows(world)
    assert (row.prompt, row.source) == ("a DRAGON boat", "form")
    assert written == []
    assert world.discord.channel_messages(world.channel) == [post]
    assert await world.jobs() == []
    assert world.discord.cdn_requests == 0
    assert world.api.requests_to(Endpoint.UPLOAD) == []
    assert world.bot.services.intake.admission.cooldowns.remaining(world.guild.id, world.member.id, 600) > 0


async def test_blocked_prompts_are_in_the_export_and_apart_from_jobs_in_quota_usage(world: World) -> None:
    await block(world, "dragon")
    await refused_at_once(world, await world.imagine("a dragon"))
    await generate(world, "a cat", n=2)
    await wait_until(lambda: _all_finished(world))
    assert len(await blocked_rows(world)) == 1

    usage = description(await command(world, "quota usage", {"days": 1}))
    export = await command(world, "quota export")
    mine = description(await command(world, "usage", user=world.member))

    assert f"<@{world.member.id}>: **2** images in 1 job, 1 prompt blocked" in usage
    rows = export.attachments[0].data.decode("utf-8").splitlines()
    assert len(rows) == 3
    assert any(",a dragon," in row and ",blocked," in row for row in rows)
    assert "**Your limit** today: 2 of 25 used" in mine


async def _all_finished(world: World) -> bool:
    jobs = await world.jobs()
    return bool(jobs) and all(job.is_finished for job in jobs)


async def test_blocked_words_are_per_server_and_survive_a_restart(world: World) -> None:
    second, lobby = await add_server(world, "Second server")
    carol = second.add_member("carol")
    await block(world, "dragon")

    await generate(world, "a dragon", user=carol, channel=lobby)
    await world.restart()

    await refused_at_once_after(world, await world.imagine("a dragon"))


# -- one member's own limit ----------------------------------------------------------------------------------------


async def test_a_member_override_beats_a_larger_role_rule(world: World) -> None:
    patrons = await announce_role(world, "patrons")
    await command(world, "quota role", {"role": patrons, "limit": 50})
    bob = world.guild.add_member("bob", roles=[patrons])
    carol = world.guild.add_member("carol", roles=[patrons])

    reply = await command(world, "quota member", {"member": bob, "limit": 2, "period": "week"})

    assert reply.content == (
        f"<@{bob.id}> now gets 2 images per week, whatever their roles: this replaces the role and member limits "
        "for them. What was already used still counts."
    )
    usage = description(await command(world, "usage", user=bob))
    assert "**Your own limit** this week: 0 of 2 used, **2 left**." in usage
    assert f"<@&{patrons.id}>" not in usage
    await generate(world, "two cats", user=bob, n=2)
    text = await refused_quota(world, await world.imagine("one more", user=bob))
    assert text.startswith("You have reached the limit set for you for this week (2 images).")
    await generate(world, "three cats", user=carol, n=3)  # the role's 50 still apply to Carol
    show = description(await command(world, "quota show"))
    assert f"**<@{bob.id}>'s own limit**: 2 images per week: **2** used" in show
    role_section = show.split(f"**Role <@&{patrons.id}>**")[1].split("**", 1)[0]
    assert f"<@{carol.id}>" in show
    assert f"<@{bob.id}>" not in role_section


async def test_a_member_override_of_0_stops_that_member(world: World) -> None:
    bob = world.guild.add_member("bob")
    await command(world, "quota member", {"member": bob, "limit": 0})

    text = await refused_quota(world, await world.imagine("a cat", user=bob, image=png_upload()))

    assert text.startswith("Image generation is turned off by the limit set for you for today.")
    assert await world.ledger() == []
    assert world.api.requests_to(Endpoint.UPLOAD) == []
    await generate(world, "a cat")  # Alice is not stopped


async def test_clearing_a_member_override_restores_the_other_limits(world: World) -> None:
    await command(world, "quota set", {"scope": "member", "limit": 1})
    await command(world, "quota member", {"member": world.member, "limit": 5})
    await generate(world, "two cats", n=2)

    missing = await command(world, "quota clear", {"scope": "member_override"})
    misplaced = await command(world, "quota clear", {"scope": "server", "member": world.member})
    cleared = await command(world, "quota clear", {"scope": "member_override", "member": world.member})
    again = await command(world, "quota clear", {"scope": "member_override", "member": world.member})

    assert missing.content == "Choose the `member` whose own limit to remove."
    assert misplaced.content == "A `member` is only for `scope: member-override`."
    assert (
        cleared.content == f"Removed the own limit of <@{world.member.id}>: their role or member limit applies again."
    )
    assert again.content == f"There was no own limit of <@{world.member.id}> to remove."
    text = await refused_quota(world, await world.imagine("one more"))
    assert text.startswith("You have reached your limit for today (1 image).")


async def test_a_member_override_above_the_operators_cap_says_what_applies(make_world: WorldFactory) -> None:
    async with make_world(MEMBER_DAILY_CAP="3") as world:
        reply = await command(world, "quota member", {"member": world.member, "limit": 10})

        assert "The bot's owner caps each member at 3 images a day" in reply.content
        await generate(world, "three cats", n=3)
        text = await refused_quota(world, await world.imagine("one more"))
        assert "the bot owner's cap on each member for today" in text


# -- spoilers ------------------------------------------------------------------------------------------------------


def filenames(call: InteractionRecord) -> list[str]:
    assert call.original is not None
    return [attachment.filename for attachment in call.original.attachments]


async def age_restricted_channel(world: World, name: str) -> FakeChannel:
    channel = world.guild.add_text_channel(name, nsfw=True)

    async def cached() -> bool:
        return world.bot.get_channel(channel.id) is not None

    await wait_until(cached, 10)
    return channel


async def test_spoiler_results_carry_spoiler_file_names(world: World) -> None:
    plain = await generate(world, "a cat", n=2)
    reply = await command(world, "imagine-settings spoiler on")

    hidden = await generate(world, "a cat", n=2)
    await command(world, "imagine-settings spoiler off")
    plain_again = await generate(world, "a dog")

    assert reply.content == "Results are now posted as spoilers in this server."
    assert filenames(plain) == ["imagine-1.png", "imagine-2.png"]
    assert filenames(hidden) == ["SPOILER_imagine-1.png", "SPOILER_imagine-2.png"]
    assert filenames(plain_again) == ["imagine-1.png"]


async def test_age_restricted_channels_can_be_exempted_from_spoilers(world: World) -> None:
    adults = await age_restricted_channel(world, "adults")
    thread = world.guild.add_thread(adults, "inside", members=[world.guild.bot_member, world.member])
    await command(world, "imagine-settings spoiler on")
    hidden_there = await generate(world, "a cat", channel=adults)

    reply = await command(world, "imagine-settings spoiler on", {"exempt-nsfw": True})

    in_adults = await generate(world, "a cat", channel=adults)
    in_thread = await generate(world, "a cat", channel=thread)
    in_general = await generate(world, "a cat")
    assert reply.content == "Results are now posted as spoilers in this server, except in age-restricted channels."
    assert filenames(hidden_there) == ["SPOILER_imagine-1.png"]
    assert filenames(in_adults) == ["imagine-1.png"]
    assert filenames(in_thread) == ["imagine-1.png"]
    assert filenames(in_general) == ["SPOILER_imagine-1.png"]
    shown = await command(world, "imagine-settings show")
    fields = {field["name"]: field["value"] for field in shown.embeds[0]["fields"]}
    assert fields["Spoilers"] == "on, except in age-restricted channels"


async def test_a_result_posted_in_the_channel_is_a_spoiler_too(world: World) -> None:
    await command(world, "imagine-settings spoiler on")
    world.api.queue_timeline(Timeline.simple(running=0.5))

    call = await world.imagine("a slow cat")
    world.discord.expire_token(call)

    posted = await world.discord.wait_for(
        lambda: next((m for m in world.discord.channel_messages(world.channel) if m.attachments), None), 15
    )
    assert [attachment.filename for attachment in posted.attachments] == ["SPOILER_imagine-1.png"]


# -- the moderation log --------------------------------------------------------------------------------------------


async def log_channel(world: World) -> FakeChannel:
    ops = await announce_channel(world, "mod-log")
    await command(world, "imagine-settings log-channel", {"channel": ops})
    return ops


async def test_the_mod_log_gets_one_entry_per_blocked_prompt_with_the_prompt_hidden(world: World) -> None:
    ops = await log_channel(world)
    reply = await command(world, "imagine-settings mod-log on")
    await block(world, "dragon")
    prompt = "a dragon || seen || `code` and a \\ backslash <@&1> @everyone https://example.invalid/x||"

    await refused_at_once(world, await world.imagine(prompt))

    assert reply.content == f"Refused prompts will be posted in <#{ops.id}>, hidden in spoilers."
    entry = await world.discord.wait_for(lambda: next(iter(world.discord.channel_messages(ops)), None), 10)
    assert await no_more_posts_in(world, ops) == [entry]
    assert entry.mentions_nobody
    (embed,) = entry.embeds
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert fields == {
        "Member": f"<@{world.member.id}>",
        "Channel": f"<#{world.channel.id}>",
        "Reason": "Blocked word: the prompt contains a word or phrase on this server's list.",
    }
    hidden = embed["description"]
    assert hidden.startswith("||")
    assert hidden.endswith(" ||")
    inside = hidden[2:-3]
    assert "||" not in inside.replace("\\|", "")
    assert "`" not in inside.replace("\\`", "")
    assert inside.replace("\\\\", "\\").replace("\\|", "|").replace("\\`", "`") == prompt
    assert "dragon" not in entry.content


async def test_the_mod_log_gets_content_policy_refusals_in_fixed_words(world: World) -> None:
    ops = await log_channel(world)
    await command(world, "imagine-settings mod-log on")
    world.api.queue_timeline(
        Timeline.content_policy(
            message="Rejected by the safety system of internal-host-7: the content policy forbids gore."
        )
    )

    call = await world.imagine("a battle")

    await world.discord.wait_for(lambda: bool(call.followups), 15, what="the refusal")
    entry = await world.discord.wait_for(lambda: next(iter(world.discord.channel_messages(ops)), None), 10)
    assert await no_more_posts_in(world, ops) == [entry]
    (embed,) = entry.embeds
    reason = {field["name"]: field["value"] for field in embed["fields"]}["Reason"]
    assert reason == "Content policy of the image service (violence): the service declined the prompt or its images."
    assert "internal-host-7" not in str(embed)
    assert embed["description"] == "||a battle ||"


async def test_a_content_policy_failure_told_again_after_a_crash_is_not_posted_twice(world: World) -> None:
    ops = await log_channel(world)
    await command(world, "imagine-settings mod-log on")
    world.api.queue_timeline(Timeline.content_policy())
    call = await world.imagine("a battle")
    await world.discord.wait_for(lambda: bool(call.followups), 15, what="the refusal")
    first = await world.discord.wait_for(lambda: next(iter(world.discord.channel_messages(ops)), None), 10)
    (job,) = await world.jobs()
    await wait_until(lambda: _told(world, job.id))

    # A crash after the entry was posted and the member told, before the failure was noted as told: the next
    # start tells the member again (without the details).
    await world.store.db.execute("UPDATE jobs SET delivered_at = NULL WHERE id = :id", {"id": job.id})
    followups = len(call.followups)
    await world.restart()
    await wait_until(lambda: _told(world, job.id))
    assert len(call.followups) > followups  # told again

    assert await no_more_posts_in(world, ops) == [first]


async def test_a_content_policy_entry_a_crash_kept_from_the_log_is_posted_when_the_failure_is_told_again(
    world: World,
) -> None:
    # The entry was never posted (here: the log was off then; as after a crash before the post), and the member's
    # telling was not noted: told again at the next start, the refusal reaches the log then, once.
    ops = await log_channel(world)
    world.api.queue_timeline(Timeline.content_policy())
    call = await world.imagine("a battle")
    await world.discord.wait_for(lambda: bool(call.followups), 15, what="the refusal")
    (job,) = await world.jobs()
    await wait_until(lambda: _told(world, job.id))
    assert await no_more_posts_in(world, ops) == []

    await command(world, "imagine-settings mod-log on")
    await world.store.db.execute("UPDATE jobs SET delivered_at = NULL WHERE id = :id", {"id": job.id})
    await world.restart()
    await wait_until(lambda: _told(world, job.id))
    entry = await world.discord.wait_for(lambda: next(iter(world.discord.channel_messages(ops)), None), 10)
    assert await no_more_posts_in(world, ops) == [entry]
    (embed,) = entry.embeds
    assert embed["description"] == "||a battle ||"
    assert embed["footer"]["text"].startswith("Job ")


async def _told(world: World, job_id: str) -> bool | None:
    job = await world.store.jobs.get(job_id)
    return True if job is not None and job.delivered_at is not None else None


async def test_the_content_policy_category_is_in_the_language_of_who_reads_it(world: World) -> None:
    ops = await log_channel(world)
    await command(world, "imagine-settings mod-log on")
    await command(world, "imagine-settings language", {"language": "de"})
    world.api.queue_timeline(Timeline.content_policy(message="The content policy forbids gore."))

    # The member's own Discord speaks Japanese.
    call = await world.discord.invoke_slash(
        "imagine", {"prompt": "a battle"}, user=world.member, channel=world.channel, locale="ja"
    )

    await world.discord.wait_for(lambda: bool(call.followups), 15, what="the refusal")
    entry = await world.discord.wait_for(lambda: next(iter(world.discord.channel_messages(ops)), None), 10)
    (embed,) = entry.embeds
    reason = {field["name"]: field["value"] for field in embed["fields"]}[i18n.translate("modlog.reason", "de")]
    gewalt = i18n.translate("failure.category.violence", "de")
    assert reason == i18n.translate("modlog.reason.policy_category", "de", category=gewalt)
    assert "violence" not in reason
    # The member is told privately, in their own language (docs/i18n.md), not the server's.
    notice = await world.discord.wait_for(lambda: next((m for m in call.followups if not m.deleted), None), 10)
    told = notice.embeds[0]["description"]
    boryoku = i18n.translate("failure.category.violence", "ja")
    assert told.startswith(i18n.translate("failure.content_policy_category", "ja", category=boryoku))
    assert "violence" not in told


def test_every_content_policy_category_toapis_reads_is_named_in_every_language() -> None:
    for category in CONTENT_POLICY_CATEGORIES:
        for locale in i18n.SUPPORTED:
            assert policy_category_text(category, locale), (category, locale)
    assert policy_category_text(None, "de") is None
    assert policy_category_text("a category nobody named", "de") is None


async def test_no_entry_while_the_mod_log_is_off_nor_in_a_server_that_never_turned_it_on(world: World) -> None:
    ops = await log_channel(world)
    await block(world, "dragon")
    second, lobby = await add_server(world, "Second server")
    their_log = second.add_text_channel("their-log")
    await command(world, "imagine-settings log-channel", {"channel": their_log}, user=second.owner, channel=lobby)
    await command(world, "imagine-settings blocked-words add", {"words": "dragon"}, user=second.owner, channel=lobby)
    world.api.queue_timeline(Timeline.content_policy())

    await refused_at_once(world, await world.imagine("a dragon"))
    await refused_at_once(world, await world.imagine("a dragon", user=second.add_member("carol"), channel=lobby))
    policy = await world.imagine("a battle")
    await world.discord.wait_for(lambda: bool(policy.followups), 15, what="the content-policy refusal")

    await command(world, "imagine-settings mod-log on")
    await command(world, "imagine-settings mod-log off")
    await refused_at_once_after(world, await world.imagine("a dragon again"))

    assert await no_more_posts_in(world, ops) == []
    assert await no_more_posts_in(world, their_log) == []
    shown = await command(world, "imagine-settings show")
    fields = {field["name"]: field["value"] for field in shown.embeds[0]["fields"]}
    assert fields["Moderation log"] == "off"


async def test_mod_log_on_without_a_log_channel_says_so(world: World) -> None:
    reply = await command(world, "imagine-settings mod-log on")

    assert reply.content == (
        "The moderation log is on, but no log channel is set: choose one with /imagine-settings log-channel."
    )
    ops = await announce_channel(world, "ops")
    chosen = await command(world, "imagine-settings log-channel", {"channel": ops})
    assert chosen.content == f"Operator alerts will be posted in <#{ops.id}>. So will the moderation log."


async def test_a_blocked_prompt_answers_first_even_when_the_database_is_slow(make_world: WorldFactory) -> None:
    from tests.cogs.test_quota import write_lock_held_elsewhere

    async with make_world(fake_discord={"ack_deadline": 3.0}) as world:
        await block(world, "dragon")
        async with write_lock_held_elsewhere(world):
            call = await world.imagine("a dragon")
            await world.discord.wait_for(lambda: call.acknowledged or call.failed, 10, what="the first response")
            assert call.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE, call.failure
        # Written once the lock is released: the refusal did not wait for it.
        (row,) = await blocked_rows(world)
        assert (row.prompt, row.status) == ("a dragon", "blocked")


# -- what nothing in a prompt can break ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt",
    ["|" * 4000, "\\" * 4000, "`" * 4000, "a||b" * 1000, "x" * 4090 + "\\|"],
    ids=["pipes", "backslashes", "backticks", "spoiler ends", "cut inside an escape"],
)
def test_the_longest_prompts_stay_inside_their_spoiler_and_code_block(prompt: str) -> None:
    hidden = spoiler(prompt)
    fenced_prompt = fenced(prompt, 4096)

    assert len(hidden) <= 4096
    assert hidden.startswith("||")
    assert hidden.endswith(" ||")
    inside = hidden[2:-3]
    # Every pipe and backtick inside is escaped by a backslash that is not itself escaped.
    unescaped = inside.replace("\\\\", "").replace("\\|", "").replace("\\`", "")
    assert "|" not in unescaped
    assert "`" not in unescaped
    assert len(fenced_prompt) <= 4096
    assert fenced_prompt.startswith("```\n")
    assert fenced_prompt.endswith("\n```")
    assert "```" not in fenced_prompt[3:-3]

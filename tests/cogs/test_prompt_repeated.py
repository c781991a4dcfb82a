"""The prompt is never lost: every refusal or failure a member receives about their own request repeats their prompt
in an embed of its own, in a code block it cannot break out of, mentioning nobody (docs/members.md)."""

from __future__ import annotations

from typing import Any

import pytest

import i18n
from cogs._embeds import fenced
from cogs._limits import DESCRIPTION_LIMIT
from tests.cogs.conftest import World, WorldFactory, delivered, png_upload, wait_until
from tests.cogs.test_imagine_failures import showing_title
from tests.cogs.test_imagine_settings import refused_at_once
from tests.cogs.test_quota import command, generate, refused_quota
from tests.fakes._discord_records import iter_components
from tests.fakes.discord import CallbackType, MessageRecord
from tests.fakes.toapis import Outcome, Timeline

YOUR_PROMPT = i18n.translate("embed.your_prompt", i18n.SOURCE)
# Backticks that would close a code block, mentions that would ping.
TRICKY = "```\n@everyone a cat ``` <@123> <@&456> ````"


def prompt_in(message: MessageRecord, *, pinging: int | None = None) -> str:
    """The prompt a message repeats: its one "Your prompt" embed, a code block whose backticks cannot close it; the
    message pings nobody (or only the member `pinging` names)."""
    (embed,) = [e for e in message.embeds if e.get("title") == YOUR_PROMPT]
    text = embed["description"]
    assert len(text) <= DESCRIPTION_LIMIT
    assert text.startswith("```\n")
    assert text.endswith("\n```")
    assert "```" not in text[3:-3]
    if pinging is None:
        assert message.mentions_nobody
    else:
        pings = message.pings
        assert (pings.users, pings.roles, pings.everyone) == (frozenset({pinging}), frozenset(), False)
    return str(text[4:-4]).replace("`\u200b", "`")


async def test_a_refusal_at_once_repeats_the_prompt(world: World) -> None:
    await command(world, "imagine-settings max-n", {"value": 1})

    call = await world.imagine(TRICKY, n=2)

    assert (await refused_at_once(world, call)) == "This server allows one image per request: set n to 1."
    assert call.original is not None
    assert prompt_in(call.original) == TRICKY


async def test_a_refusal_after_the_defer_repeats_the_prompt(make_world: WorldFactory) -> None:
    async with make_world(DEFAULT_MEMBER_DAILY_LIMIT="1") as world:
        call = await world.imagine(TRICKY, n=2, image=png_upload())

        assert (await refused_quota(world, call)).startswith("You asked for 2 images")
        assert prompt_in(call.followups[-1]) == TRICKY


async def test_a_prompt_of_4000_characters_is_repeated_whole(make_world: WorldFactory) -> None:
    prompt = "a lighthouse, " * 285 + "at dusk"
    assert len(prompt) <= 4000
    async with make_world(DEFAULT_MEMBER_DAILY_LIMIT="0") as world:
        call = await world.imagine(prompt)

        await refused_quota(world, call)
        assert prompt_in(call.followups[-1]) == prompt


async def test_a_prompt_of_4000_characters_full_of_backticks_is_repeated_whole(make_world: WorldFactory) -> None:
    # Inline code in singles and pairs (three backticks in five characters), and fences of three and four.
    prompt = "```" + "`a` ``b`` " * 399 + "a```"
    assert len(prompt) == 3997
    assert prompt.count("`") == 2400
    async with make_world(DEFAULT_MEMBER_DAILY_LIMIT="0") as world:
        call = await world.imagine(prompt)

        await refused_quota(world, call)
        assert prompt_in(call.followups[-1]) == prompt


def test_only_runs_of_three_backticks_or_more_are_broken_in_a_code_block() -> None:
    assert fenced("a `b` ``c`` d", 4096) == "```\na `b` ``c`` d\n```"
    assert fenced("``` ```` `````", 4096) == "```\n``\u200b` ``\u200b`` ``\u200b``\u200b`\n```"
    # What cannot fit even so (a prompt of backticks alone grows by half) is cut, never broken.
    text = fenced("`" * 4000, 4096)
    assert len(text) <= 4096
    assert text.endswith("…\n```")
    assert "```" not in text[3:-3]


async def test_an_unexpected_error_while_accepting_repeats_the_prompt(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(request: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(world.pipeline, "submit", broken)

    call = await world.imagine("a cat that meets a bug")

    assert (await refused_quota(world, call)).startswith("Something went wrong on Imagine's side")
    assert prompt_in(call.followups[-1]) == "a cat that meets a bug"


async def test_a_failure_on_the_reply_shows_the_prompt_under_it(world: World) -> None:
    world.api.queue_timeline(Timeline.failing())

    call = await world.imagine(TRICKY)

    reply = await world.discord.wait_for(lambda: showing_title(call, "Could not generate"), 15)
    assert not reply.ephemeral
    assert reply.embeds[0]["description"].startswith("The image service could not generate this image.")
    assert prompt_in(reply) == TRICKY


async def test_a_content_policy_refusal_repeats_the_prompt_to_the_member_alone(world: World) -> None:
    world.api.queue_timeline(Timeline.content_policy(after=0.2))

    call = await world.imagine("something the service refuses")

    await world.discord.wait_for(lambda: call.original is not None and call.original.deleted, 10)
    notice = await world.discord.wait_for(lambda: next((m for m in call.followups if not m.deleted), None), 10)
    assert notice.ephemeral
    assert "content policy" in notice.embeds[0]["description"]
    assert prompt_in(notice) == "something the service refuses"
    assert world.discord.channel_messages(world.channel) == []


async def test_a_failure_after_the_token_expired_is_posted_with_the_prompt(world: World) -> None:
    world.api.queue_timeline(Timeline.never_ends())
    call = await world.imagine(TRICKY)
    await world.discord.wait_for(lambda: bool(world.api.tasks), 10, what="the task")
    world.discord.expire_token(call)
    (task,) = world.api.tasks.values()

    world.api.end_task(task.id, Outcome.FAILED)

    def failure_notice() -> MessageRecord | None:
        return next((m for m in world.discord.channel_messages(world.channel) if m.interaction is None), None)

    message = await world.discord.wait_for(failure_notice, 15, what="the failure in the channel")
    assert message.embeds[0]["title"] == "Could not generate"
    # The requester alone is mentioned, by the bot's own words: nothing in the prompt pings.
    assert prompt_in(message, pinging=world.member.id) == TRICKY


async def test_a_reroll_refused_at_once_repeats_the_prompt_on_the_message(world: World) -> None:
    await command(world, "imagine-settings cooldown", {"seconds": 600})
    first = await generate(world, "a cat on a wall")
    assert first.original is not None
    (job,) = await world.jobs()

    click = await world.discord.click(first.original, f"imagine:reroll:{job.id}", world.member)
    await world.discord.wait_for(lambda: click.acknowledged or click.failed, 10, what="the refusal")

    assert click.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
    assert click.original is not None
    assert click.original.content.startswith("You can use /imagine again")
    assert prompt_in(click.original) == "a cat on a wall"


async def test_a_form_sent_too_late_repeats_what_was_typed(world: World) -> None:
    post = await world.discord.post_message(world.channel, world.member, "", files=[png_upload("boat.png")])
    menu = await world.discord.invoke_message_context("Imagine from images", post, user=world.member)
    await world.discord.wait_for(lambda: menu.modal is not None, 10, what="the form")
    (field,) = [c["custom_id"] for c in iter_components(menu.modal and menu.modal["components"]) if c["type"] == 4]
    await wait_until(lambda: world.store.db.fetch_all("SELECT id FROM forms"))
    await world.store.db.execute("DELETE FROM forms", {})

    sent = await world.discord.submit_modal(menu, {field: "a boat at night, in gouache"})

    text = await refused_quota(world, sent)
    assert text.startswith("This form has expired")
    assert prompt_in(sent.followups[-1]) == "a boat at night, in gouache"
    assert not delivered(sent)

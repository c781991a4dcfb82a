"""The creative loop through the real ``python bot.py``: a job found again with /show (its images posted again with
working buttons; another member's job and another server's refused), /history paging through thirty jobs, /help
with this member's limits, and the welcome that goes out once per server.

One bot process serves the module; each test acts as members of its own with prompts of its own.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator, Iterator
from typing import Final

import pytest
import pytest_asyncio

import i18n
from tests.e2e.conftest import STEP_TIMEOUT, World, answered_in_time, delivered, open_world
from tests.e2e.harness import ScriptProcess, wait_until
from tests.e2e.test_actions import assert_refused_after_defer, button, upload_of
from tests.fakes.discord import (
    CallbackType,
    FakeChannel,
    FakeGuild,
    FakeMember,
    InteractionRecord,
    MessageRecord,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

MEMBER_LIMIT: Final = 40
REFERENCE: Final = re.compile(r"^Job ([0-9a-f]{8,32})\b")
NEW_SERVER_ID: Final = 5_150_150 << 22
WELCOME: Final = i18n.translate("welcome", i18n.SOURCE)


@dataclasses.dataclass
class Shared:
    world: World
    bot: ScriptProcess
    other: FakeGuild
    hall: FakeChannel


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shared]:
    async with open_world(tmp_path_factory.mktemp("loop") / "bot") as world:
        other = world.discord.add_guild("Other server")
        hall = other.add_text_channel("hall")
        async with world.bot(DEFAULT_MEMBER_DAILY_LIMIT=str(MEMBER_LIMIT)) as bot:
            yield Shared(world, bot, other, hall)
            assert await bot.terminate() == 0


@pytest.fixture
def world(shared: Shared) -> Iterator[World]:
    """The shared world; after the test, the bot asked the fakes for nothing they do not serve and logged no error."""
    start = len(shared.bot.lines)
    yield shared.world
    shared.world.check_routes()
    errors = shared.bot.matching(r" (ERROR|CRITICAL) ", start=start)
    assert not errors, "\n".join(match.string for match in errors)


async def result_of(world: World, call: InteractionRecord) -> tuple[MessageRecord, str]:
    """The delivered result of an /imagine and the reference in its footer."""
    await world.discord.wait_for(lambda: delivered(call), STEP_TIMEOUT, what="the images")
    assert call.original is not None
    found = REFERENCE.match(call.original.embeds[0]["footer"]["text"])
    assert found is not None, call.original.embeds[0]
    return call.original, found.group(1)


async def show(
    world: World, member: FakeMember, reference: str, channel: FakeChannel | None = None
) -> InteractionRecord:
    return await world.discord.invoke_slash("show", {"job": reference}, user=member, channel=channel or world.channel)


async def test_show_posts_a_job_again_with_working_buttons(world: World) -> None:
    alice, bob = world.member("alice"), world.member("bob")
    result, reference = await result_of(world, await world.imagine(alice, "a red kite over the dunes", n=2))
    job_id = world.submit_of("a red kite over the dunes")["client_business_id"]
    assert job_id.startswith(reference)
    lounge = world.guild.add_text_channel("lounge")

    # Suggested as she types, then shown in #lounge.
    (suggestion,) = await world.discord.autocomplete("show", {"job": "kite"}, focused="job", user=alice)
    assert suggestion["value"] == reference
    call = await show(world, alice, reference, lounge)
    await world.discord.wait_for(lambda: delivered(call), STEP_TIMEOUT, what="the images shown again")

    answered_in_time(call)
    assert call.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    shown = call.original
    assert shown is not None
    assert (shown.channel, shown.ephemeral, shown.mentions_nobody) == (lounge, False, True)
    assert [(a.filename, a.data) for a in shown.attachments] == [(a.filename, a.data) for a in result.attachments]
    assert shown.embeds[0]["footer"]["text"].startswith(f"Job {reference} · ")
    assert sorted(shown.custom_ids()) == sorted(result.custom_ids())
    # Its buttons work: Vary 2 on the message shown again uses that message's second image, for bob.
    vary = await world.discord.click(shown, button(shown, "imagine:vary:", ":1"), bob)
    await world.discord.wait_for(lambda: delivered(vary), STEP_TIMEOUT, what="the variation")
    _, varied = world.submits("a red kite over the dunes")
    (url,) = varied["reference_images"]
    assert upload_of(world, url).data == shown.attachments[1].data
    assert world.rows("SELECT user_id, kind, parent_job_id, channel_id FROM jobs WHERE user_id = ?", bob.id) == [
        {"user_id": bob.id, "kind": "vary", "parent_job_id": job_id, "channel_id": lounge.id}
    ]


async def test_show_refuses_another_members_job_and_another_servers(world: World, shared: Shared) -> None:
    carol, dan = world.member("carol"), world.member("dan")
    _, reference = await result_of(world, await world.imagine(carol, "carol's quiet harbour"))

    theirs = await show(world, dan, reference)
    elsewhere = await show(world, shared.other.owner, reference, shared.hall)

    await assert_refused_after_defer(world, theirs, "another member's")
    await assert_refused_after_defer(world, elsewhere, "no job of this server")
    assert world.discord.channel_messages(shared.hall) == []
    assert [m for m in world.discord.channel_messages(world.channel) if m.interaction in (theirs, elsewhere)] == []


async def turn_page(world: World, reply: MessageRecord, custom_id: str, member: FakeMember) -> None:
    versions = len(reply.versions)
    await world.discord.click(reply, custom_id, member)
    await world.discord.wait_for(lambda: len(reply.versions) > versions, STEP_TIMEOUT, what="the next page")


async def test_history_pages_through_thirty_jobs_newest_first(world: World) -> None:
    erin = world.member("erin")
    calls = [await world.imagine(erin, f"a study of light, number {number:02d}") for number in range(30)]
    await world.discord.wait_for(lambda: all(delivered(c) for c in calls), STEP_TIMEOUT * 2, what="thirty results")
    await wait_until(
        lambda: len(world.rows("SELECT id FROM jobs WHERE user_id = ? AND state = 'completed'", erin.id)) == 30,
        STEP_TIMEOUT,
        what="thirty completed jobs",
    )
    jobs = world.rows(
        "SELECT id, channel_id, result_message_id FROM jobs WHERE user_id = ? ORDER BY created_at DESC, id DESC",
        erin.id,
    )

    call = await world.discord.invoke_slash("history", {}, user=erin, channel=world.channel)
    reply: MessageRecord = await world.discord.wait_for(
        lambda: call.original if call.original is not None and not call.original.loading else None,
        STEP_TIMEOUT,
        what="the history",
    )
    pages = [reply.embeds[0]]
    _, next_id = reply.custom_ids()
    while len(pages) < 10 and pages[-1].get("footer", {}).get("text") != f"Page {len(pages)} of {len(pages)}":
        await turn_page(world, reply, next_id, erin)
        pages.append(reply.embeds[0])

    assert reply.ephemeral
    assert [page["footer"]["text"] for page in pages] == ["Page 1 of 2", "Page 2 of 2"]
    lines = [line for page in pages for line in page["description"].splitlines() if line.startswith("`")]
    assert len(lines) == 30
    for line, job in zip(lines, jobs, strict=True):
        reference = line.split("`")[1]
        assert job["id"].startswith(reference)
        link = f"https://discord.com/channels/{world.guild.id}/{job['channel_id']}/{job['result_message_id']}"
        assert line.endswith(f"· delivered · [images]({link})")


async def test_help_shows_this_members_limits(world: World) -> None:
    fay = world.member("fay")
    await result_of(world, await world.imagine(fay, "two lanterns", n=2))
    await wait_until(
        lambda: world.rows("SELECT state FROM jobs WHERE user_id = ?", fay.id) == [{"state": "completed"}],
        STEP_TIMEOUT,
        what="fay's job to complete",
    )

    call = await world.discord.invoke_slash("help", {}, user=fay, channel=world.channel)
    reply: MessageRecord = await world.discord.wait_for(
        lambda: call.original if call.original is not None and not call.original.loading else None,
        STEP_TIMEOUT,
        what="the help",
    )

    answered_in_time(call)
    assert reply.ephemeral
    fields = {field["name"]: field["value"] for field in reply.embeds[0]["fields"]}
    limits = fields["Your limits here"].splitlines()
    assert any(
        line.startswith(f"**Your limit** today: 2 of {MEMBER_LIMIT} used, **{MEMBER_LIMIT - 2} left**.")
        for line in limits
    ), limits
    assert "For admins" not in fields
    admin_call = await world.discord.invoke_slash("help", {}, user=world.admin, channel=world.channel)
    admin_reply: MessageRecord = await world.discord.wait_for(
        lambda: admin_call.original if admin_call.original is not None and not admin_call.original.loading else None,
        STEP_TIMEOUT,
        what="the admin's help",
    )
    assert "For admins" in [field["name"] for field in admin_reply.embeds[0]["fields"]]


async def test_the_welcome_goes_out_once_per_server(world: World, shared: Shared) -> None:
    # Servers that arrive before discord.py is ready count as servers the bot was in: add this one after.
    await shared.bot.wait_for_line(r"Ready as .* in \d+ server", STEP_TIMEOUT)
    start = len(shared.bot.lines)
    studio = world.discord.add_guild("Studio", guild_id=NEW_SERVER_ID)
    lobby = studio.add_text_channel("lobby")

    welcome: MessageRecord = await world.discord.wait_for(
        lambda: next(iter(world.discord.channel_messages(lobby)), None), STEP_TIMEOUT, what="the welcome"
    )
    assert welcome.content == WELCOME
    assert welcome.mentions_nobody

    # Removed and added again: no second welcome.
    world.discord.remove_bot(studio)
    again = world.discord.add_guild("Studio", guild_id=NEW_SERVER_ID)
    fresh = again.add_text_channel("lobby")
    await shared.bot.wait_for_line(rf"Server {NEW_SERVER_ID} was welcomed before", STEP_TIMEOUT, start=start)
    assert world.discord.channel_messages(fresh) == []
    # The servers the bot was in when it started were never greeted.
    assert world.discord.channel_messages(shared.hall) == []
    assert [m for m in world.discord.channel_messages(world.channel) if m.content == WELCOME] == []

"""Guardrails for the operator's bill: caps no server can lift, and refused requests that cost nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from cogs import _forms, _intake
from tests.cogs.conftest import World, WorldFactory, delivered, png_upload, wait_until
from tests.cogs.test_quota import command, refused_quota
from tests.fakes._discord_records import iter_components
from tests.fakes.discord import CallbackType, FakeChannel, FakeMember, InteractionRecord
from tests.fakes.toapis import Endpoint


async def test_a_server_rule_above_the_operators_cap_is_answered_with_what_applies(make_world: WorldFactory) -> None:
    async with make_world(SERVER_DAILY_CAP="300", MEMBER_DAILY_CAP="20") as world:
        answered = await command(world, "quota set", {"scope": "server", "limit": 1_000_000})
        assert answered.content.startswith("The server pool is now 1,000,000 images per day.")
        assert "The bot's owner caps this server at 300 images a day" in answered.content

        member = await command(world, "quota set", {"scope": "member", "limit": 10})
        assert "caps" not in member.content  # within the cap: nothing to add

        shown = await command(world, "quota show")
        (embed,) = shown.embeds
        assert (
            "**Server cap** (set by the bot's owner; no rule here can lift it): 300 images per day"
            in (embed["description"])
        )


def rule_options(world: World, name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The command's options, with the role or member it needs (a new role, the test's member)."""
    if name == "quota role":
        return {**options, "role": world.guild.add_role("vip")}
    if name == "quota member":
        return {**options, "member": world.member}
    return options


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("quota set", {"scope": "member", "limit": 500}),
        ("quota role", {"limit": 500}),
        ("quota member", {"limit": 500}),
    ],
    ids=["member", "role", "member-override"],
)
async def test_a_member_rule_above_the_operators_cap_is_answered_with_what_applies(
    make_world: WorldFactory, name: str, options: dict[str, Any]
) -> None:
    async with make_world(MEMBER_DAILY_CAP="20") as world:
        given = rule_options(world, name, options)

        answered = await command(world, name, given)
        assert answered.content.endswith(
            "\nThe bot's owner caps each member at 20 images a day, so that is the most any member can use in a day."
        )

        within = await command(world, name, {**given, "limit": 20})
        assert "caps" not in within.content


@pytest.mark.parametrize("member_cap", ["80", "none"], ids=["larger-member-cap", "no-member-cap"])
@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("quota set", {"scope": "member", "limit": 500}),
        ("quota role", {"limit": 500}),
        ("quota member", {"limit": 500}),
    ],
    ids=["member", "role", "member-override"],
)
async def test_a_member_rule_above_the_server_cap_is_answered_with_the_server_cap(
    make_world: WorldFactory, name: str, options: dict[str, Any], member_cap: str
) -> None:
    # No member can use more in a day than the whole server may: that cap is what applies, not the member cap.
    async with make_world(SERVER_DAILY_CAP="30", MEMBER_DAILY_CAP=member_cap) as world:
        given = rule_options(world, name, options)

        answered = await command(world, name, given)
        assert answered.content.endswith(
            "\nThe bot's owner caps this server at 30 images a day, so that is the most it can use in a day."
        )
        assert "caps each member" not in answered.content

        within = await command(world, name, {**given, "limit": 30})
        assert "caps" not in within.content


async def test_twenty_members_at_once_cannot_lift_the_server_above_its_cap(make_world: WorldFactory) -> None:
    async with make_world(SERVER_DAILY_CAP="5", DEFAULT_MEMBER_DAILY_LIMIT="none") as world:
        await command(world, "quota set", {"scope": "server", "limit": 1_000_000})
        members = [world.guild.add_member(f"member{index}") for index in range(20)]
        calls = await asyncio.gather(*(world.imagine(f"cat {index}", user=m) for index, m in enumerate(members)))

        async def settled() -> bool:
            jobs = await world.jobs()
            refused = [call for call in calls if call.followups]
            return len(refused) + len(jobs) == 20 and all(job.is_finished for job in jobs)

        await wait_until(settled, 30)
        ledger = await world.ledger()
        assert sum(row.images for row in ledger) == 5
        assert len([call for call in calls if delivered(call)]) == 5
        refusals = [call.followups[-1].content for call in calls if call.followups]
        assert len(refusals) == 15
        assert all("the bot owner's cap on this server for today" in text for text in refusals)


async def test_a_quota_refusal_downloads_no_attachment(make_world: WorldFactory) -> None:
    async with make_world(DEFAULT_MEMBER_DAILY_LIMIT="1") as world:
        first = await world.imagine("a cat")
        await world.discord.wait_for(lambda: delivered(first), 15)

        second = await world.imagine("like this", image=png_upload(), image2=png_upload("b.png"))
        text = await refused_quota(world, second)

        assert text.startswith("You have reached your limit for today")
        assert world.discord.cdn_requests == 0  # every CDN folder (slash-command files are "ephemeral")
        assert world.api.requests_to(Endpoint.UPLOAD) == []


async def test_a_reroll_over_quota_reads_no_stored_reference(
    make_world: WorldFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with make_world(DEFAULT_MEMBER_DAILY_LIMIT="1") as world:
        first = await world.imagine("like this", image=png_upload())
        await world.discord.wait_for(lambda: delivered(first), 15)
        (job,) = await world.jobs()
        read: list[str] = []
        original = world.bot.services.history.references

        async def watched(parent: Any, **options: Any) -> Any:
            read.append(parent.id)
            return await original(parent, **options)

        monkeypatch.setattr(world.bot.services.history, "references", watched)
        assert first.original is not None
        click = await world.discord.click(first.original, f"imagine:reroll:{job.id}", world.member)

        followup = await wait_followup(world, click)
        assert followup.content.startswith("You have reached your limit for today")
        assert read == []


async def wait_followup(world: World, call: InteractionRecord) -> Any:
    return await world.discord.wait_for(lambda: call.followups[-1] if call.followups else None, 10)


async def test_at_most_a_few_requests_prepare_references_at_once(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    inside = 0
    most = 0
    release = asyncio.Event()
    entered = asyncio.Event()
    real = _intake.prepare_references  # type: ignore[attr-defined]

    async def slow(blobs: Any, **options: Any) -> Any:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        entered.set()
        await release.wait()
        inside -= 1
        return await real(blobs, **options)

    monkeypatch.setattr(_intake, "prepare_references", slow)
    members: list[FakeMember] = [world.guild.add_member(f"member{index}") for index in range(4)]
    calls = [await world.imagine("like this", user=m, image=png_upload()) for m in members]
    for call in calls:
        await world.discord.wait_for(_acknowledged(call), 10)
    await entered.wait()
    await wait_until(lambda: _settled_at(inside, _intake.REFERENCE_WORKERS), 5)
    # Every request was acknowledged at once; only REFERENCE_WORKERS of them are inside the pool.
    assert all(call.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE for call in calls)
    assert inside == _intake.REFERENCE_WORKERS
    release.set()
    for call in calls:
        await world.discord.wait_for(_delivered(call), 15)
    assert most == _intake.REFERENCE_WORKERS


async def _settled_at(value: int, expected: int) -> bool:
    return value == expected


def _acknowledged(call: InteractionRecord) -> Callable[[], bool]:
    return lambda: call.acknowledged


def _delivered(call: InteractionRecord) -> Callable[[], bool]:
    return lambda: delivered(call)


async def test_a_thread_of_an_allowed_channel_is_allowed_and_a_forum_can_be_listed(world: World) -> None:
    general = world.channel
    elsewhere = world.guild.add_text_channel("elsewhere")
    forum = world.guild.add_forum_channel("art")
    await command(world, "imagine-settings channels add", {"channel": general})
    added = await command(world, "imagine-settings channels add", {"channel": forum})
    assert added.content.startswith(f"/imagine is allowed in <#{forum.id}>.")
    in_general = world.guild.add_thread(general, "ideas", members=[world.guild.bot_member, world.member])
    in_elsewhere = world.guild.add_thread(elsewhere, "off-topic", members=[world.guild.bot_member, world.member])
    post = await world.discord.add_forum_post(forum, "my post", world.member, "a thread of its own")

    allowed = await world.imagine("a cat", channel=in_general)
    in_forum = await world.imagine("a dog", channel=post.channel)
    refused = await world.imagine("a fish", channel=in_elsewhere)

    await world.discord.wait_for(lambda: delivered(allowed) and delivered(in_forum), 15)
    await world.discord.wait_for(lambda: refused.acknowledged, 10)
    assert refused.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
    assert refused.callback is not None
    assert refused.callback.data is not None
    assert refused.callback.data["content"].startswith("/imagine is not used in this channel.")


async def test_the_bot_leaves_a_server_off_the_list_that_adds_it_but_never_one_it_was_in(
    make_world: WorldFactory, caplog: pytest.LogCaptureFixture
) -> None:
    allowed = 7 << 22
    async with make_world(guild_id=allowed, ALLOWED_GUILD_IDS=str(allowed)) as world:
        # In a server off the list when it starts (a typo in the list, say): logged, never left.
        old: list[Any] = []
        await world.restart(while_stopped=lambda: old.append(world.discord.add_guild("Was there before")))
        await world.bot.wait_until_ready()
        assert any(f"The bot is in server {old[0].id}" in record.message for record in caplog.records)

        stranger = world.discord.add_guild("Added later")  # a join: off the list, so the bot leaves
        await world.discord.wait_for(lambda: stranger in world.discord.state.left_guilds, 10, what="the leave")

        assert world.discord.state.left_guilds == [stranger]
        assert any(f"Added to server {stranger.id}" in record.message for record in caplog.records)


FROM_IMAGES = "Imagine from images"


async def open_from_images_form(world: World, channel: FakeChannel, user: FakeMember) -> InteractionRecord:
    """`user` runs "Imagine from images" on a new message with an image in `channel`: the form, once kept."""
    post = await world.discord.post_message(channel, world.member, "", files=[png_upload("boat.png")])
    menu = await world.discord.invoke_message_context(FROM_IMAGES, post, user=user)
    await world.discord.wait_for(lambda: menu.modal is not None, 10, what="the form")
    assert menu.modal is not None
    form = _forms.parse(str(menu.modal["custom_id"]))
    assert form is not None
    await wait_until(lambda: world.bot.services.forms.find(form[1]), 10)
    return menu


@pytest.mark.parametrize("sender", ["another member", "another channel"])
async def test_a_from_images_form_sent_by_another_member_or_from_another_channel_is_refused(
    world: World, sender: str
) -> None:
    owners = await open_from_images_form(world, world.channel, world.member)
    if sender == "another member":
        theirs = await open_from_images_form(world, world.channel, world.guild.add_member("mallory"))
    else:
        theirs = await open_from_images_form(world, world.guild.add_text_channel("elsewhere"), world.member)
    assert owners.modal is not None
    assert theirs.modal is not None
    # A hostile client submits its own form with the custom id of the first one.
    theirs.modal["custom_id"] = owners.modal["custom_id"]
    (field,) = [c["custom_id"] for c in iter_components(theirs.modal.get("components")) if c.get("type") == 4]

    sent = await world.discord.submit_modal(theirs, {field: "a boat at night"})

    assert await refused_quota(world, sent) == "This form has expired. Use Imagine from images on the message again."
    assert await world.jobs() == []
    assert world.discord.cdn_requests == 0

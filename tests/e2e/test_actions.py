"""What members do after the image, through the real ``python bot.py``: "Imagine from images", Cancel while
queued, and the refusals of the result buttons; then every button on messages posted before a restart.

The re-roll by another member, Vary, Delete by the requester (test_imagine.py), Re-roll after a restart
(test_restarts.py) and the queue's place and Cancel by its requester only (test_queue.py) are tested there.

One bot process serves every test but the restart one. It runs one upstream task at a time
(``MAX_CONCURRENT_JOBS=1``, so that a job can be held in line) and lets a member ``MEMBER_LIMIT`` images a
day; each test acts as members of its own with prompts of its own, and ends every task it holds open.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import pytest
import pytest_asyncio

from tests.e2e.conftest import (
    ACK_DEADLINE,
    STEP_TIMEOUT,
    World,
    answered_in_time,
    delivered,
    first_response,
    open_world,
    png_bytes,
    settled,
)
from tests.e2e.harness import ScriptProcess, wait_until
from tests.fakes._discord_records import iter_components
from tests.fakes.discord import (
    CallbackType,
    FakeChannel,
    FakeGuild,
    FakeMember,
    InteractionRecord,
    MessageRecord,
    Permission,
    Upload,
)
from tests.fakes.toapis import Endpoint, FakeUpload, Outcome, Timeline

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

CONTEXT_MENU: Final = "Imagine from images"
MEMBER_LIMIT: Final = 4
RETENTION_DAYS: Final = 30
# Once a result is shown, a follow-up that waited for it is one loopback request away: it gets as long as
# Discord gives a bot to answer at all.
NOTICE_AFTER_RESULT: Final = ACK_DEADLINE
COLOURS: Final = ("navy", "gold", "teal", "coral", "olive", "plum")


@dataclasses.dataclass
class Shared:
    """The module's world and its bot, and a second server whose admin limits /imagine to #art."""

    world: World
    bot: ScriptProcess
    strict: FakeGuild
    art: FakeChannel
    lobby: FakeChannel
    strict_admin: FakeMember


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shared]:
    async with open_world(tmp_path_factory.mktemp("actions") / "bot") as world:
        # Servers are created before the bot connects: its GUILD_CREATE events carry them.
        strict = world.discord.add_guild("Strict server")
        art, lobby = strict.add_text_channel("art"), strict.add_text_channel("lobby")
        strict_admin = strict.add_member("strict-admin", roles=[strict.add_role("Admins", Permission.MANAGE_GUILD)])
        async with world.bot(MAX_CONCURRENT_JOBS="1", DEFAULT_MEMBER_DAILY_LIMIT=str(MEMBER_LIMIT)) as bot:
            yield Shared(world, bot, strict, art, lobby, strict_admin)
            assert await bot.terminate() == 0


@pytest.fixture
def world(shared: Shared) -> Iterator[World]:
    """The shared world; after the test, the bot asked the fakes for nothing they do not serve and logged no error."""
    start = len(shared.bot.lines)
    try:
        yield shared.world
    finally:
        # A test that failed half-way must not leave the one upstream slot taken for the next ones.
        end_open_tasks(shared.world)
    shared.world.check_routes()
    errors = shared.bot.matching(r" (ERROR|CRITICAL) ", start=start)
    assert not errors, "\n".join(match.string for match in errors)


# --- helpers ----------------------------------------------------------------------------------------------------


def end_open_tasks(world: World) -> None:
    """End every upstream task that would otherwise run forever."""
    for task in world.api.tasks.values():
        if task.timeline.outcome is Outcome.NEVER and task.forced_end is None:
            world.api.end_task(task.id)


async def last_followup(world: World, call: InteractionRecord) -> MessageRecord:
    followup: MessageRecord = await world.discord.wait_for(
        lambda: call.followups[-1] if call.followups else None, STEP_TIMEOUT, what="a follow-up"
    )
    return followup


def button(message: MessageRecord, prefix: str, suffix: str = "") -> str:
    """The custom id of the message's button that starts with ``prefix`` (and ends with ``suffix``)."""
    return next(i for i in message.custom_ids() if i.startswith(prefix) and i.endswith(suffix))


def cancel_button(message: MessageRecord | None) -> str | None:
    ids = message.custom_ids() if message is not None else []
    return next((i for i in ids if i.startswith("imagine:cancel:")), None)


def text(message: MessageRecord | None) -> str:
    """A message's content and embeds' titles and descriptions, lower case."""
    if message is None:
        return ""
    parts = [message.content] + [str(e.get(key) or "") for e in message.embeds for key in ("title", "description")]
    return " ".join(parts).lower()


def upload_of(world: World, url: str) -> FakeUpload:
    """The upload a reference URL of a submit points at."""
    return world.api.uploads[url.rsplit("/", 1)[1].rsplit(".", 1)[0]]


def text_inputs(modal: dict[str, Any] | None) -> list[str]:
    """The custom ids of a modal's text inputs."""
    assert modal is not None
    return [c["custom_id"] for c in iter_components(modal.get("components")) if c.get("type") == 4]


def member_rows(world: World, member: FakeMember) -> list[dict[str, Any]]:
    return world.rows(
        "SELECT id, kind, parent_job_id, state FROM jobs WHERE user_id = ? ORDER BY created_at", member.id
    )


async def assert_refused_after_defer(world: World, call: InteractionRecord, *words: str) -> MessageRecord:
    """The click was deferred in time, then its reply deleted and the member told why, privately."""
    followup = await last_followup(world, call)
    answered_in_time(call)
    assert call.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    assert call.original is not None
    assert call.original.deleted
    assert followup is not call.original
    assert followup.ephemeral
    assert followup.mentions_nobody
    for word in words:
        assert word in followup.content.lower(), followup.content
    return followup


# --- "Imagine from images" ----------------------------------------------------------------------------------


async def test_imagine_from_images_uses_the_first_four_images_and_the_first_ones_shape(world: World) -> None:
    olga = world.member("olga")
    shapes = [(1500, 1000), (600, 900), (64, 64), (300, 200), (100, 300), (50, 50)]
    photos = [
        Upload(png_bytes(shape, colour), f"photo-{index}.png", "image/png")
        for index, (shape, colour) in enumerate(zip(shapes, COLOURS, strict=True), start=1)
    ]
    post = await world.discord.post_message(world.channel, olga, "our holiday", files=photos)
    uploads_before = len(world.api.requests_to(Endpoint.UPLOAD))
    prompt = "the same places, painted in gouache"
    # The task runs until the notice is in: a job that ends sooner loses it (see the next test).
    world.api.on_prompt("painted in gouache", Timeline.never_ends(progress=50))

    menu = await world.discord.invoke_message_context(CONTEXT_MENU, post, user=olga)
    await first_response(world, menu)

    # The first response is the modal (it cannot follow a defer), and nothing was read or stored for it.
    answered_in_time(menu)
    assert menu.callback_type is CallbackType.MODAL
    assert menu.original is None
    assert member_rows(world, olga) == []
    (field,) = text_inputs(menu.modal)

    submitted = await world.discord.submit_modal(menu, {field: prompt})
    notice = await last_followup(world, submitted)
    world.api.end_task(world.api.tasks_for(await world.submitted_job(prompt))[0].id)
    await world.discord.wait_for(lambda: delivered(submitted), STEP_TIMEOUT, what="the images")

    # After the modal: a public deferred reply, which becomes the result.
    answered_in_time(submitted)
    assert submitted.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    assert submitted.callback is not None
    assert not submitted.callback.ephemeral
    # The first four images, byte for byte and in order, uploaded and sent with the submit; the size follows
    # the first image's 3:2 landscape; one image.
    submit = world.submit_of(prompt)
    assert (submit["size"], submit["resolution"], submit["n"]) == ("3:2", "1k", 1)  # 1536x1024
    assert [upload_of(world, url).data for url in submit["reference_images"]] == [p.data for p in photos[:4]]
    assert len(world.api.requests_to(Endpoint.UPLOAD)) - uploads_before == 4
    skipped = [
        r for r in world.discord.requests if r.method == "GET" and r.path.endswith(("photo-5.png", "photo-6.png"))
    ]
    assert skipped == []
    # The member alone is told that two images were left out; the reply stays the result, in public.
    assert notice is not submitted.original
    assert notice.ephemeral
    assert notice.mentions_nobody
    assert re.findall(r"\b[46]\b", notice.content) == ["4", "6"], notice.content
    original = submitted.original
    assert original is not None
    assert not original.ephemeral
    assert len(original.attachments) == 1
    assert prompt in text(original)
    job_id = submit["client_business_id"]
    row = await world.finished_row(job_id)
    assert (row["status"], row["reference_count"], row["images"]) == ("completed", 4, 1)
    assert member_rows(world, olga) == [{"id": job_id, "kind": "context", "parent_job_id": None, "state": "completed"}]


async def test_the_skipped_images_notice_is_sent_when_the_job_ends_during_the_first_progress_edit(
    world: World,
) -> None:
    quinn = world.member("quinn")
    photos = [Upload(png_bytes((800, 1200), colour), f"{colour}.png", "image/png") for colour in COLOURS[:5]]
    post = await world.discord.post_message(world.channel, quinn, "", files=photos)
    prompt = "a quick sketch of these five"
    menu = await world.discord.invoke_message_context(CONTEXT_MENU, post, user=quinn)
    await first_response(world, menu)
    (field,) = text_inputs(menu.modal)

    submitted = await world.discord.submit_modal(menu, {field: prompt})
    # Discord holds the first progress edit (a 429 for a minute); the job ends meanwhile, and its result
    # replaces the reply. Rate-limited edits are ordinary; so are jobs that end within a few edit intervals.
    held = world.discord.inject_429(f"PATCH /webhooks/*/{submitted.token}/*", retry_after=60)
    await world.discord.wait_for(lambda: delivered(submitted), STEP_TIMEOUT, what="the images")
    assert held.hits == 1
    assert world.submit_of(prompt)["size"] == "2:3"  # 1024x1536

    # Once the result is shown, the notice is one request away.
    notice: MessageRecord = await world.discord.wait_for(
        lambda: next((m for m in submitted.followups if m is not submitted.original), None),
        NOTICE_AFTER_RESULT,
        what="the notice that one image was left out",
    )
    assert notice.ephemeral
    assert re.findall(r"\b[45]\b", notice.content) == ["4", "5"], notice.content


@pytest.mark.parametrize(
    "files",
    [[], [Upload(b"eggs, milk, flour\n" * 10, "shopping.txt", "text/plain")]],
    ids=["text-only", "text-file"],
)
async def test_imagine_from_images_on_a_message_without_images_explains_at_once(
    world: World, files: list[Upload]
) -> None:
    pia = world.member(f"pia-{len(files)}")
    post = await world.discord.post_message(world.channel, pia, "no pictures here", files=files)

    menu = await world.discord.invoke_message_context(CONTEXT_MENU, post, user=pia)
    await first_response(world, menu)

    answered_in_time(menu)
    assert menu.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
    assert menu.modal is None
    assert menu.original is not None
    assert menu.original.ephemeral
    assert menu.original.mentions_nobody
    assert "image" in menu.original.content.lower()
    assert menu.followups == []
    # Nothing read, reserved or stored.
    assert not [r for r in world.discord.requests if r.method == "GET" and r.path.endswith("/shopping.txt")]
    assert member_rows(world, pia) == []
    assert world.rows("SELECT job_id FROM quota_ledger WHERE user_id = ?", pia.id) == []


async def test_imagine_from_images_with_an_unreadable_image_is_refused_after_the_modal(world: World) -> None:
    rosa = world.member("rosa")
    photos = [
        Upload(png_bytes((640, 480), "gold"), "fine.png", "image/png"),
        Upload(b"not a picture at all, whatever the name says\n" * 20, "broken.png", "image/png"),
    ]
    post = await world.discord.post_message(world.channel, rosa, "", files=photos)
    uploads_before = len(world.api.requests_to(Endpoint.UPLOAD))
    prompt = "these two, as a diptych"
    menu = await world.discord.invoke_message_context(CONTEXT_MENU, post, user=rosa)
    await first_response(world, menu)
    assert menu.callback_type is CallbackType.MODAL
    (field,) = text_inputs(menu.modal)

    submitted = await world.discord.submit_modal(menu, {field: prompt})

    # Found after the defer: the deferred reply goes, and the member alone is told which image is the problem.
    await assert_refused_after_defer(world, submitted, "image 2")
    assert len(submitted.followups) == 1
    assert len(world.api.requests_to(Endpoint.UPLOAD)) == uploads_before
    assert world.submits(prompt) == []
    assert member_rows(world, rosa) == []
    assert world.rows("SELECT job_id FROM quota_ledger WHERE user_id = ?", rosa.id) == []


async def test_imagine_from_images_in_a_channel_off_the_servers_list_is_refused_before_the_modal(
    shared: Shared, world: World
) -> None:
    setting = await world.discord.invoke_slash(
        "imagine-settings channels add", {"channel": shared.art}, user=shared.strict_admin, channel=shared.art
    )
    await world.discord.wait_for(lambda: settled(setting), STEP_TIMEOUT, what="the admin's answer")
    sam = world.member("sam", guild=shared.strict)
    post = await world.discord.post_message(
        shared.lobby, sam, "", files=[Upload(png_bytes((64, 64), "teal"), "lobby.png", "image/png")]
    )

    menu = await world.discord.invoke_message_context(CONTEXT_MENU, post, user=sam)
    await first_response(world, menu)

    answered_in_time(menu)
    assert menu.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
    assert menu.modal is None
    assert menu.original is not None
    assert menu.original.ephemeral
    assert shared.art.mention in menu.original.content
    assert not [r for r in world.discord.requests if r.method == "GET" and r.path.endswith("/lobby.png")]
    assert member_rows(world, sam) == []


# --- Cancel ---------------------------------------------------------------------------------------------------


async def test_cancel_while_queued_and_the_button_gone_once_submitted(world: World) -> None:
    alice, bob, carol = world.member("queue-alice"), world.member("queue-bob"), world.member("queue-carol")
    world.api.on_prompt("slot holder", Timeline.never_ends(progress=30))
    world.api.on_prompt("patient heron", Timeline.never_ends(progress=30))
    holder = await world.imagine(alice, "a slot holder: a lighthouse in fog")
    holder_job = await world.submitted_job("a slot holder: a lighthouse in fog")
    # A submitted job's reply shows its progress, without a Cancel button.
    await world.discord.wait_for(
        lambda: holder.original is not None and "generating" in text(holder.original), STEP_TIMEOUT, what="progress"
    )
    assert cancel_button(holder.original) is None

    first = await world.imagine(bob, "a dog waiting its turn, charcoal", n=2)
    second = await world.imagine(carol, "a patient heron in the reeds")
    await world.discord.wait_for(
        lambda: cancel_button(first.original) and cancel_button(second.original), STEP_TIMEOUT, what="Cancel buttons"
    )
    assert "**2**" in text(second.original), text(second.original)
    (first_job,) = [row["id"] for row in member_rows(world, bob)]
    (second_job,) = [row["id"] for row in member_rows(world, carol)]
    assert first.original is not None
    assert second.original is not None

    # The requester cancels: the click updates the reply in place (no message of its own).
    cancelled = await world.discord.click(first.original, button(first.original, "imagine:cancel:"), bob)
    await world.discord.wait_for(
        lambda: "cancel" in text(first.original) and cancel_button(first.original) is None,
        STEP_TIMEOUT,
        what="the reply showing the cancellation",
    )
    answered_in_time(cancelled)
    assert cancelled.callback_type is CallbackType.DEFERRED_UPDATE_MESSAGE
    assert cancelled.followups == []
    assert world.ledger_images(first_job) == 0
    assert world.submits("a dog waiting its turn, charcoal") == []
    # The job behind it moves up, still cancellable.
    await world.discord.wait_for(lambda: "**1**" in text(second.original), STEP_TIMEOUT, what="place 1")
    assert cancel_button(second.original) is not None

    # Its first edit after it leaves the line is held (Discord answers 429 for a minute; the result, which
    # replaces it, ends the wait): the Cancel button is still on the member's screen when the job is submitted,
    # and they click it.
    held = world.discord.inject_429(f"PATCH /webhooks/*/{second.token}/*", retry_after=60)
    world.api.end_task(world.api.tasks_for(holder_job)[0].id)
    assert await world.submitted_job("a patient heron in the reeds") == second_job
    await world.discord.wait_for(lambda: held.hits, STEP_TIMEOUT, what="the held progress edit")
    late = await world.discord.click(second.original, button(second.original, "imagine:cancel:"), carol)
    refusal = await last_followup(world, late)

    answered_in_time(late)
    assert refusal.ephemeral
    assert "too late" in refusal.content.lower()
    assert world.ledger_images(second_job) == 1
    assert world.rows("SELECT state FROM jobs WHERE id = ?", second_job) == [{"state": "running"}]
    # The job goes on; the result replaces the reply, and no Cancel button is left on it.
    world.api.end_task(world.api.tasks_for(second_job)[0].id)
    await world.discord.wait_for(lambda: delivered(second) and delivered(holder), STEP_TIMEOUT, what="both results")
    assert held.hits == 1
    assert cancel_button(second.original) is None
    assert cancel_button(holder.original) is None
    assert (await world.finished_row(second_job))["status"] == "completed"
    # The slot freed twice since; the cancelled job was never sent.
    assert world.submits("a dog waiting its turn, charcoal") == []
    assert world.ledger_images(first_job) == 0


async def test_a_double_click_on_cancel_is_told_the_job_is_already_cancelled(world: World) -> None:
    vic, wes = world.member("vic"), world.member("wes")
    world.api.on_prompt("kettle", Timeline.never_ends(progress=10))
    await world.imagine(vic, "a kettle that takes its time")
    holder_job = await world.submitted_job("a kettle that takes its time")
    prompt = "a cat that changes its mind"
    waiting = await world.imagine(wes, prompt)
    cancel = await world.discord.wait_for(lambda: cancel_button(waiting.original), STEP_TIMEOUT, what="Cancel")
    assert waiting.original is not None

    # Two clicks before the reply changes (a double click: Discord sends both).
    clicks = [await world.discord.click(waiting.original, cancel, wes) for _ in range(2)]
    (job_id,) = [row["id"] for row in member_rows(world, wes)]
    assert (await world.finished_row(job_id))["status"] == "failed"
    # One click cancels; the other is told what happened.
    told: MessageRecord = await world.discord.wait_for(
        lambda: next((m for click in clicks for m in click.followups), None), STEP_TIMEOUT, what="an answer"
    )
    for click in clicks:
        answered_in_time(click)
    world.api.end_task(world.api.tasks_for(holder_job)[0].id)
    await world.finished_row(holder_job)
    assert world.submits(prompt) == []
    assert told.ephemeral
    assert "already cancelled" in told.content.lower(), told.content


# --- refusals of the result buttons -----------------------------------------------------------------------------


async def test_a_re_roll_at_the_quota_limit_is_refused_and_submits_nothing(world: World) -> None:
    dan = world.member("dan")
    prompt = "four moons over a desert"
    call = await world.imagine(dan, prompt, n=MEMBER_LIMIT)
    await world.discord.wait_for(lambda: delivered(call), STEP_TIMEOUT, what="the images")
    original = call.original
    assert original is not None
    versions, components = len(original.versions), original.components

    again = await world.discord.click(original, button(original, "imagine:reroll:"), dan)
    await assert_refused_after_defer(world, again, "limit", f"{MEMBER_LIMIT} images")

    assert len(world.submits(prompt)) == 1
    assert len(member_rows(world, dan)) == 1
    assert len(world.rows("SELECT job_id FROM quota_ledger WHERE user_id = ?", dan.id)) == 1
    # The result is untouched.
    assert not original.deleted
    assert (len(original.versions), original.components) == (versions, components)


async def test_the_buttons_of_a_job_the_database_does_not_know_are_answered(world: World) -> None:
    eve = world.member("eve")
    prompt = "a compass rose, engraved"
    call = await world.imagine(eve, prompt, n=2)
    await world.discord.wait_for(lambda: delivered(call), STEP_TIMEOUT, what="the images")
    original = call.original
    assert original is not None
    # As if the buttons had been posted by an Imagine whose database was since replaced: a job never seen here.
    known = world.submit_of(prompt)["client_business_id"]
    stranger = secrets.token_hex(16)
    components = json.loads(json.dumps(original.components).replace(known, stranger))
    original.versions.append(dataclasses.replace(original.current, components=tuple(components)))
    world.discord.state.changed()

    reroll = await world.discord.click(original, button(original, f"imagine:reroll:{stranger}"), eve)
    await assert_refused_after_defer(world, reroll, "no longer knows")
    vary = await world.discord.click(original, button(original, f"imagine:vary:{stranger}", ":1"), eve)
    await assert_refused_after_defer(world, vary, "no longer knows")

    assert len(world.submits(prompt)) == 1
    assert world.rows("SELECT id FROM jobs WHERE id = ? OR parent_job_id = ?", stranger, stranger) == []
    assert len(member_rows(world, eve)) == 1
    assert not original.deleted


# --- after a restart ------------------------------------------------------------------------------------------


async def test_every_button_works_on_messages_posted_before_a_restart(tmp_path: Path) -> None:
    async with open_world(tmp_path / "bot") as world:
        erin, finn, gus, hal, ida = (world.member(name) for name in ("erin", "finn", "gus", "hal", "ida"))
        mod = world.guild.add_member("mod", roles=[world.guild.add_role("Moderators", Permission.MANAGE_MESSAGES)])
        kite, shell = png_bytes((48, 32), "crimson"), png_bytes((32, 48), "ivory")
        kept_prompt, purged_prompt = "a red kite over the harbour", "a shell on the sand, pencil"
        holder_prompt, waiting_prompt = "a long exposure of the tide", "a queue of gulls on a rail"
        world.api.on_prompt("long exposure", Timeline.never_ends(progress=20))
        env = world.env(MAX_CONCURRENT_JOBS="1")
        first = await world.start_bot(env=env)
        kept = await world.imagine(erin, kept_prompt, n=2, image=Upload(kite, "kite.png", "image/png"))
        purged = await world.imagine(gus, purged_prompt, image=Upload(shell, "shell.png", "image/png"))
        kept_job, purged_job = await world.submitted_job(kept_prompt), await world.submitted_job(purged_prompt)
        await world.finished_row(kept_job)
        await world.finished_row(purged_job)
        await world.discord.wait_for(lambda: delivered(kept) and delivered(purged), STEP_TIMEOUT, what="the images")
        # One job runs upstream, and one waits in line behind it, its Cancel button showing.
        holder = await world.imagine(hal, holder_prompt)
        holder_job = await world.submitted_job(holder_prompt)
        waiting = await world.imagine(ida, waiting_prompt, n=2)
        await world.discord.wait_for(lambda: cancel_button(waiting.original), STEP_TIMEOUT, what="a Cancel button")
        (waiting_job,) = [row["id"] for row in member_rows(world, ida)]
        assert await first.terminate() == 0
        # While the bot is down, one job's references become older than RETENTION_DAYS: the next start purges them.
        age_references(world, purged_job, timedelta(days=RETENTION_DAYS + 1))

        second = await world.start_bot(env=env)
        assert second.matching(r"Resumed 2 unfinished job")
        await wait_until(
            lambda: not world.rows("SELECT 1 FROM job_references WHERE job_id = ?", purged_job),
            STEP_TIMEOUT,
            what="the purge of the old references",
        )
        assert len(world.rows("SELECT 1 FROM job_references WHERE job_id = ?", kept_job)) == 1
        original = kept.original
        assert original is not None
        assert purged.original is not None
        assert waiting.original is not None
        versions = len(original.versions)

        # Cancel, by the requester, on the reply of a job that waited in line across the restart.
        cancel = await world.discord.click(waiting.original, button(waiting.original, "imagine:cancel:"), ida)
        assert (await world.finished_row(waiting_job))["status"] == "failed"
        answered_in_time(cancel)
        assert world.ledger_images(waiting_job) == 0
        await world.discord.wait_for(
            lambda: "cancel" in text(waiting.original) and cancel_button(waiting.original) is None,
            STEP_TIMEOUT,
            what="the reply showing the cancellation",
        )
        world.api.end_task(world.api.tasks_for(holder_job)[0].id)
        await world.discord.wait_for(lambda: delivered(holder), STEP_TIMEOUT, what="the resumed job's images")

        # Re-roll: the same prompt, size, n and reference image, sent again from what the bot kept.
        reroll = await world.discord.click(original, button(original, "imagine:reroll:"), erin)
        await world.discord.wait_for(lambda: delivered(reroll) or reroll.failed, STEP_TIMEOUT, what="the re-roll")
        answered_in_time(reroll)
        rerolled = world.submits(kept_prompt)[1]
        assert (rerolled["size"], rerolled["n"]) == ("1:1", 2)
        assert [upload_of(world, url).data for url in rerolled["reference_images"]] == [kite]
        # Re-roll of the job whose references were purged: refused, saying why.
        refused_reroll = await world.discord.click(purged.original, button(purged.original, "imagine:reroll:"), gus)
        await assert_refused_after_defer(world, refused_reroll, "no longer kept", f"{RETENTION_DAYS} days")
        assert len(world.submits(purged_prompt)) == 1
        assert len(member_rows(world, gus)) == 1
        # Vary 2 by another member: that image, as it is on the message, is the reference of a new job of theirs.
        vary = await world.discord.click(original, button(original, "imagine:vary:", ":1"), finn)
        await world.discord.wait_for(lambda: delivered(vary) or vary.failed, STEP_TIMEOUT, what="the variation")
        answered_in_time(vary)
        varied = world.submits(kept_prompt)[2]
        (url,) = varied["reference_images"]
        assert upload_of(world, url).data == original.attachments[1].data
        assert (varied["size"], varied["n"]) == ("1:1", 2)
        (job,) = member_rows(world, finn)
        assert (job["id"], job["kind"], job["parent_job_id"]) == (varied["client_business_id"], "vary", kept_job)
        assert (await world.finished_row(job["id"]))["status"] == "completed"
        # Delete: refused to a member without Manage Messages, done by one with it.
        refused = await world.discord.click(original, button(original, "imagine:delete:"), finn)
        await first_response(world, refused)
        answered_in_time(refused)
        assert refused.callback is not None
        assert refused.callback.ephemeral
        assert not original.deleted
        deleting = await world.discord.click(original, button(original, "imagine:delete:"), mod)
        await world.discord.wait_for(lambda: original.deleted, STEP_TIMEOUT, what="the deletion")
        answered_in_time(deleting)
        assert len(original.versions) == versions
        assert not purged.original.deleted
        assert world.submits(waiting_prompt) == []

        assert await second.terminate() == 0
        for process in (first, second):
            assert not process.matching(r" (ERROR|CRITICAL) "), process.output()


def age_references(world: World, job_id: str, age: timedelta) -> None:
    """Make a job's stored references ``age`` older (the bot is stopped: nothing else writes)."""
    connection = sqlite3.connect(world.database, timeout=10)
    try:
        with connection:
            changed = connection.execute(
                "UPDATE job_references SET created_at = created_at - ? WHERE job_id = ?",
                (age // timedelta(milliseconds=1), job_id),
            ).rowcount
        assert changed == 1
    finally:
        connection.close()

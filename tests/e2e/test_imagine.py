"""/imagine through the real ``python bot.py``: what a member sees, what reached ToAPIs, what the bot stored.

One bot process serves the whole module (a start is the main cost of a test). Each test acts as members of its
own, with prompts of its own, so the tests do not see each other's jobs; the bot runs with a member limit of
``MEMBER_LIMIT`` images a day (the quota test relies on it, the others ask for fewer).
"""

from __future__ import annotations

import io
import itertools
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from PIL import Image

from tests.e2e.conftest import (
    CHANNEL_MESSAGES,
    PROGRESS_EDIT_INTERVAL,
    STEP_TIMEOUT,
    WEBHOOK_MESSAGE,
    World,
    answered_in_time,
    delivered,
    embed_fields,
    first_response,
    open_world,
    png_bytes,
    progress_versions,
    request_files,
    settled,
)
from tests.e2e.harness import ScriptProcess
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
from tests.fakes.toapis import Endpoint, Timeline

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

MEMBER_LIMIT = 4
DISCORD_FILE_LIMIT = 10 * 1024 * 1024
# Edits are spaced by the bot when it sends them; the fake stamps them when they arrive, so a first edit that
# took a little longer in transit than the next one shortens the gap the fake sees by that much.
TRANSIT_SLACK = 0.1

# Progress changes every 0.1 s and the bot looks every 0.05 s: without coalescing it would edit far more often.
STEADY = Timeline.simple(queued=0.05, running=1.0, progress=tuple(range(10, 100, 10)))
RELATIVE_TIME = re.compile(r"<t:(\d+):R>")


@dataclass
class Shared:
    """The module's world, its bot, and a second server whose admins set its rules (max n, allowed channels)."""

    world: World
    bot: ScriptProcess
    strict: FakeGuild
    strict_channel: FakeChannel
    strict_admin: FakeMember


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shared]:
    async with open_world(tmp_path_factory.mktemp("imagine") / "bot") as world:
        # Servers are created before the bot connects: its GUILD_CREATE events carry them.
        strict = world.discord.add_guild("Strict server")
        strict_channel = strict.add_text_channel("art")
        strict.add_text_channel("lobby")
        strict_admin = strict.add_member("strict-admin", roles=[strict.add_role("Admins", Permission.MANAGE_GUILD)])
        async with world.bot(DEFAULT_MEMBER_DAILY_LIMIT=str(MEMBER_LIMIT)) as bot:
            yield Shared(world, bot, strict, strict_channel, strict_admin)
            assert await bot.terminate() == 0
            assert bot.matching("Imagine stopped")


@pytest.fixture(autouse=True)
def checked_after_each_test(shared: Shared) -> Iterator[None]:
    """After each test: the bot asked the fakes for nothing they do not serve, and logged no error."""
    start = len(shared.bot.lines)
    yield
    shared.world.check_routes()
    errors = shared.bot.matching(r" (ERROR|CRITICAL) ", start=start)
    assert not errors, "\n".join(match.string for match in errors)


def percentages(call: InteractionRecord) -> list[int]:
    """The percentages the progress edits showed, in order."""
    shown = []
    for version in progress_versions(call):
        text = " ".join(str(e.get("description") or "") for e in version.embeds)
        found = re.search(r"(\d+)%", text)
        if found:
            shown.append(int(found.group(1)))
    return shown


async def test_imagine_defers_shows_progress_and_edits_in_the_images(shared: Shared) -> None:
    world = shared.world
    alice = world.member("alice")
    world.api.on_prompt("lighthouse", STEADY)
    prompt = "a lighthouse at dusk, oil painting"

    call = await world.imagine(alice, prompt, n=2, aspect="3:2")
    await world.discord.wait_for(lambda: delivered(call), STEP_TIMEOUT, what="the images")

    # The first response: a public deferred reply, well within Discord's deadline.
    answered_in_time(call)
    assert call.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    assert call.callback is not None
    assert not call.callback.ephemeral
    # Progress: edits of that reply, no closer together than PROGRESS_EDIT_INTERVAL, showing the percentage.
    progress = progress_versions(call)
    assert len(progress) >= 3, [v.embeds for v in call.original.versions] if call.original else None
    gaps = [later.time - earlier.time for earlier, later in itertools.pairwise(progress)]
    assert min(gaps) >= PROGRESS_EDIT_INTERVAL - TRANSIT_SLACK, gaps
    shown = percentages(call)
    assert len(set(shown)) >= 2, shown
    assert shown == sorted(shown)
    # What went upstream.
    submit = world.submit_of(prompt)
    assert (submit["model"], submit["size"], submit["resolution"], submit["n"]) == ("gpt-image-2", "3:2", "1k", 2)
    job_id = submit["client_business_id"]
    (task,) = world.api.tasks_for(job_id)
    # The result: the fake's images, byte for byte, uploaded once as multipart files of one edit.
    expected = [world.api.result_png(task.id, 1), world.api.result_png(task.id, 2)]
    original = call.original
    assert original is not None
    assert [a.data for a in original.attachments] == expected
    assert [a.filename for a in original.attachments] == ["imagine-1.png", "imagine-2.png"]
    edits = [r for r in world.discord.requests_to("PATCH", WEBHOOK_MESSAGE) if call.token in r.path]
    uploads = [r for r in edits if r.files]
    assert len(uploads) == 1
    assert request_files(uploads) == [("imagine-1.png", len(expected[0])), ("imagine-2.png", len(expected[1]))]
    assert all(r.status == 200 for r in edits)
    # The embed and the buttons.
    (embed,) = original.embeds
    assert embed["description"] == prompt
    fields = embed_fields(embed)
    assert (fields["Model"], fields["Aspect"], fields["Resolution"]) == (
        "GPT Image 2",
        "Landscape 3:2",
        "1K (standard)",
    )
    assert (fields["Images"], fields["Counted as"]) == ("2", "2 images")
    assert fields["Requested by"] == alice.mention
    assert "Time" in fields
    labels = [str(c.get("label")) for c in iter_components(original.components) if c.get("type") == 2]
    assert sorted(labels) == ["Delete", "Re-roll", "Remix", "Vary 1", "Vary 2"]
    assert original.mentions_nobody
    assert world.discord.channel_messages(world.channel) == [original]
    # And the usage log.
    row = await world.finished_row(job_id)
    assert (row["status"], row["images"], row["n"], row["task_id"]) == ("completed", 2, 2, task.id)
    assert (row["model"], row["aspect"], row["resolution"], row["weight"]) == ("gpt-image-2", "3:2", "1k", 1)
    assert (row["user_id"], row["guild_id"], row["channel_id"]) == (alice.id, world.guild.id, world.channel.id)
    assert world.ledger_images(job_id) == 2


async def test_references_are_read_from_discord_uploaded_and_sent_with_the_submit(shared: Shared) -> None:
    world = shared.world
    bob = world.member("bob")
    references = [png_bytes((64, 48), "teal"), png_bytes((40, 40), "orange")]
    prompt = "the same scene, in the style of these two"

    call = await world.imagine(
        bob,
        prompt,
        image=Upload(references[0], "first.png", "image/png"),
        image2=Upload(references[1], "second.png", "image/png"),
    )
    await world.discord.wait_for(lambda: delivered(call), STEP_TIMEOUT, what="the images")

    answered_in_time(call)
    assert call.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    # The bot read both attachments from Discord's CDN...
    cdn = [r for r in world.discord.requests if r.method == "GET" and r.path.endswith(("/first.png", "/second.png"))]
    assert sorted(r.path.rsplit("/", 1)[1] for r in cdn if r.status == 200) == ["first.png", "second.png"]
    # ...uploaded their bytes to ToAPIs, and sent the uploads' URLs, in order, with the submit.
    submit = world.submit_of(prompt)
    urls = submit["reference_images"]
    assert len(urls) == 2
    uploaded = [world.api.uploads[url.rsplit("/", 1)[1].rsplit(".", 1)[0]] for url in urls]
    assert [u.data for u in uploaded] == references
    assert all(u.mime_type == "image/png" for u in uploaded)
    job_id = submit["client_business_id"]
    (task,) = world.api.tasks_for(job_id)
    assert task.reference_images == tuple(urls)
    original = call.original
    assert original is not None
    assert [a.data for a in original.attachments] == [world.api.result_png(task.id, 1)]
    row = await world.finished_row(job_id)
    assert (row["status"], row["reference_count"], row["images"]) == ("completed", 2, 1)


async def test_the_result_buttons_re_roll_vary_and_delete(shared: Shared) -> None:
    world = shared.world
    mia, nick = world.member("mia"), world.member("nick")
    prompt = "two foxes in the snow"
    call = await world.imagine(mia, prompt, n=2, aspect="2:3")
    await world.finished_row(await world.submitted_job(prompt))
    original = call.original
    assert original is not None
    buttons = original.custom_ids()

    def button(prefix: str, suffix: str = "") -> str:
        return next(b for b in buttons if b.startswith(prefix) and b.endswith(suffix))

    # Re-roll, by another member: a new job of theirs, with the same prompt, size and count.
    again = await world.discord.click(original, button("imagine:reroll:"), nick)
    await world.discord.wait_for(lambda: delivered(again) or again.failed, STEP_TIMEOUT, what="the re-roll")
    assert not again.failed, again.failure
    answered_in_time(again)
    first, rerolled = world.submits(prompt)
    assert (rerolled["size"], rerolled["n"]) == ("2:3", 2)
    (job,) = world.rows("SELECT user_id, parent_job_id FROM jobs WHERE id = ?", rerolled["client_business_id"])
    assert job == {"user_id": nick.id, "parent_job_id": first["client_business_id"]}
    # Vary 2: the second image becomes the reference of a new job.
    vary = await world.discord.click(original, button("imagine:vary:", ":1"), mia)
    await world.discord.wait_for(lambda: delivered(vary) or vary.failed, STEP_TIMEOUT, what="the variation")
    varied = world.submits(prompt)[2]
    (url,) = varied["reference_images"]
    assert world.api.uploads[url.rsplit("/", 1)[1].rsplit(".", 1)[0]].data == original.attachments[1].data
    # Delete: not by someone else, but by the member who asked.
    refused = await world.discord.click(original, button("imagine:delete:"), nick)
    await first_response(world, refused)
    assert refused.callback is not None
    assert refused.callback.ephemeral
    assert not original.deleted
    await world.discord.click(original, button("imagine:delete:"), mia)
    await world.discord.wait_for(lambda: original.deleted, STEP_TIMEOUT, what="the deletion")


async def test_a_file_that_is_not_an_image_is_refused_after_the_defer(shared: Shared) -> None:
    world = shared.world
    carol = world.member("carol")
    uploads_before = len(world.api.requests_to(Endpoint.UPLOAD))
    prompt = "like this one"
    notes = Upload(b"my shopping list, not a picture\n" * 20, "notes.txt", "text/plain")

    call = await world.imagine(carol, prompt, image=notes)
    followup: MessageRecord = await world.discord.wait_for(
        lambda: call.followups[-1] if call.followups else None, STEP_TIMEOUT, what="an ephemeral follow-up"
    )

    answered_in_time(call)
    assert call.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    assert call.original is not None
    assert call.original.deleted
    assert followup.ephemeral
    assert followup.mentions_nobody
    assert "image" in followup.content.lower()
    assert len(followup.content) < 300
    # Nothing reserved, stored, uploaded or submitted.
    assert len(world.api.requests_to(Endpoint.UPLOAD)) == uploads_before
    assert world.submits(prompt) == []
    assert world.rows("SELECT id FROM jobs WHERE user_id = ?", carol.id) == []
    assert world.rows("SELECT job_id FROM quota_ledger WHERE user_id = ?", carol.id) == []
    assert world.rows("SELECT job_id FROM usage_log WHERE user_id = ?", carol.id) == []


async def test_n_above_the_servers_maximum_is_refused_at_once(shared: Shared) -> None:
    world = shared.world
    setting = await world.discord.invoke_slash(
        "imagine-settings max-n", {"value": 2}, user=shared.strict_admin, channel=shared.strict_channel
    )
    await world.discord.wait_for(lambda: settled(setting), STEP_TIMEOUT, what="the admin's answer")
    assert setting.callback is not None
    assert setting.callback.ephemeral
    dave = world.member("dave", guild=shared.strict)

    call = await world.imagine(dave, "three cats on a sofa", channel=shared.strict_channel, n=3)
    await first_response(world, call)

    # Answered at once, privately, without a defer: nothing was needed but the server's settings.
    answered_in_time(call)
    assert call.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
    assert call.callback is not None
    assert call.callback.ephemeral
    assert call.callback.data is not None
    assert "2" in call.callback.data["content"]
    assert call.followups == []
    assert world.submits("three cats on a sofa") == []
    assert world.rows("SELECT id FROM jobs WHERE user_id = ?", dave.id) == []
    # Within the maximum, the same member is served.
    allowed = await world.imagine(dave, "two cats on a sofa", channel=shared.strict_channel, n=2)
    await world.discord.wait_for(lambda: delivered(allowed), STEP_TIMEOUT, what="the images")
    assert allowed.original is not None
    assert len(allowed.original.attachments) == 2


async def test_a_channel_off_the_servers_list_is_refused_at_once_naming_the_allowed_one(shared: Shared) -> None:
    world = shared.world
    art = shared.strict_channel
    lobby = next(c for c in shared.strict.channels if c.name == "lobby")
    setting = await world.discord.invoke_slash(
        "imagine-settings channels add", {"channel": art}, user=shared.strict_admin, channel=art
    )
    await world.discord.wait_for(lambda: settled(setting), STEP_TIMEOUT, what="the admin's answer")
    olive = world.member("olive", guild=shared.strict)

    call = await world.imagine(olive, "a quiet lobby", channel=lobby)
    await first_response(world, call)

    answered_in_time(call)
    assert call.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
    assert call.callback is not None
    assert call.callback.ephemeral
    assert call.callback.data is not None
    assert art.mention in call.callback.data["content"]
    assert world.submits("a quiet lobby") == []
    assert world.rows("SELECT id FROM jobs WHERE user_id = ?", olive.id) == []


async def test_a_failed_task_is_shown_in_the_reply_and_refunded(shared: Shared) -> None:
    world = shared.world
    erin = world.member("erin")
    world.api.on_prompt("doomed", Timeline.failing("The model crashed", code="generation_failed", after=0.2))
    prompt = "a doomed ship in a storm"

    call = await world.imagine(erin, prompt, n=2)
    job_id = await world.submitted_job(prompt)
    row = await world.finished_row(job_id)

    assert row["status"] == "failed"
    assert row["images"] == 0
    assert "generation_failed" in (row["error"] or "") or "The model crashed" in (row["error"] or "")
    assert world.ledger_images(job_id) == 0  # refunded
    original = call.original
    assert original is not None
    shown = await world.discord.wait_for(
        lambda: not original.deleted and original.embeds and "not counted" in str(original.embeds[0]),
        STEP_TIMEOUT,
        what="the failure in the reply",
    )
    assert shown
    assert "could not" in str(original.embeds[0]).lower()
    assert original.attachments == ()
    assert not [c for c in iter_components(original.components) if c.get("type") == 2]
    assert original.mentions_nobody
    assert len(world.api.tasks_for(job_id)) == 1


async def test_a_quota_refusal_deletes_the_reply_and_says_what_is_left(shared: Shared) -> None:
    world = shared.world
    frank = world.member("frank")
    first = await world.imagine(frank, "three owls at night", n=3)
    await world.discord.wait_for(lambda: delivered(first), STEP_TIMEOUT, what="the first images")
    await world.finished_row(world.submit_of("three owls at night")["client_business_id"])

    second = await world.imagine(frank, "two more owls", n=2)
    followup: MessageRecord = await world.discord.wait_for(
        lambda: second.followups[-1] if second.followups else None, STEP_TIMEOUT, what="an ephemeral follow-up"
    )

    answered_in_time(second)
    assert second.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    assert second.original is not None
    assert second.original.deleted
    assert followup.ephemeral
    assert followup.mentions_nobody
    text = followup.content
    assert re.search(rf"\b{MEMBER_LIMIT}\b", text), text  # the limit
    assert re.search(r"\b1\b", text), text  # what is left
    found = RELATIVE_TIME.search(text)
    assert found is not None, text  # when it resets, in the member's own time zone
    assert time.time() < int(found.group(1)) <= time.time() + 24 * 3600 + 60
    # Nothing reserved, stored or submitted for the refused request.
    assert world.submits("two more owls") == []
    assert len(world.rows("SELECT job_id FROM quota_ledger WHERE user_id = ?", frank.id)) == 1
    assert world.discord.channel_messages(world.channel)[-1] is not second.original


async def test_with_an_expired_token_the_result_goes_to_the_channel_pinging_only_the_requester(
    shared: Shared,
) -> None:
    world = shared.world
    gina = world.member("gina")
    bystander = world.member("harry")
    world.api.on_prompt("patient heron", Timeline.never_ends(progress=30))
    prompt = f"a patient heron, for @everyone and {bystander.mention}"

    call = await world.imagine(gina, prompt)
    job_id = await world.submitted_job(prompt)
    (task,) = world.api.tasks_for(job_id)
    await world.discord.wait_for(lambda: progress_versions(call), STEP_TIMEOUT, what="a progress edit")
    # Fifteen minutes later, as far as Discord is concerned: the reply can no longer be edited.
    world.discord.expire_token(call)
    # And Discord asks it, once, to slow down: the post is sent again, files and all.
    slow_down = world.discord.inject_429("POST /channels/*/messages", retry_after=0.05)
    world.api.end_task(task.id)

    def posted() -> list[MessageRecord]:
        return [m for m in world.discord.channel_messages(world.channel) if m.interaction is None and m.attachments]

    (message,) = await world.discord.wait_for(posted, STEP_TIMEOUT, what="a channel message with the images")
    row = await world.finished_row(job_id)

    assert row["status"] == "completed"
    assert message.author is world.discord.bot_user
    assert [a.data for a in message.attachments] == [world.api.result_png(task.id, 1)]
    assert message.embeds[0]["description"] == prompt
    # It pings the requester, and only them, whatever the prompt says.
    assert gina.mention in message.content
    assert message.pings.users == frozenset({gina.id})
    assert not message.pings.roles
    assert not message.pings.everyone
    # A nonce derived from the job lets Discord recognise a repeat after a crash.
    (post,) = [
        r
        for r in world.discord.requests_to("POST", CHANNEL_MESSAGES)
        if r.path.endswith(f"/channels/{world.channel.id}/messages") and r.status == 200 and r.files
    ]
    assert isinstance(post.body, dict)
    assert post.body.get("enforce_nonce") is True
    assert slow_down.hits == 1
    assert message.nonce
    assert str(message.nonce) in job_id
    assert posted() == [message]
    # The reply itself was not given the images: its token had expired.
    assert call.original is not None
    assert not call.original.attachments


async def test_results_over_the_upload_limit_are_re_encoded_to_fit(shared: Shared) -> None:
    world = shared.world
    ivan = world.member("ivan")
    prompt = "a very detailed map of the old town"
    # The fake's PNGs grow past Discord's 10 MiB per file (the fake refuses bigger uploads, as Discord does).
    world.api.result_min_bytes = 11 * 1024 * 1024
    try:
        call = await world.imagine(ivan, prompt, n=2)
        job_id = await world.submitted_job(prompt)
        row = await world.finished_row(job_id)
    finally:
        world.api.result_min_bytes = 0

    assert (row["status"], row["images"]) == ("completed", 2)
    (task,) = world.api.tasks_for(job_id)
    original = call.original
    assert original is not None
    assert len(original.attachments) == 2
    for index, attachment in enumerate(original.attachments, start=1):
        assert attachment.size <= DISCORD_FILE_LIMIT
        with Image.open(io.BytesIO(attachment.data)) as image:
            assert image.size == (1024, 1024)
            shown = image.convert("RGB").getpixel((512, 512))
        with Image.open(io.BytesIO(png_bytes_of(world, task.id, index))) as generated:
            made = generated.convert("RGB").getpixel((512, 512))
        assert isinstance(shown, tuple)
        assert isinstance(made, tuple)
        assert max(abs(a - b) for a, b in zip(shown, made, strict=True)) <= 8, (shown, made)
    refused = [r for r in world.discord.requests if r.status == 413 or r.error_code == 40005]
    assert refused == []
    # The embed says so (links to the originals only for https results: the fake serves them over http).
    fields = embed_fields(original.embeds[0])
    assert fields["Re-encoded to fit"] == "2 images re-encoded to fit Discord's upload limit in this server."


def png_bytes_of(world: World, task_id: str, index: int) -> bytes:
    """The image the fake generated, at its natural size (without the padding)."""
    padding, world.api.result_min_bytes = world.api.result_min_bytes, 0
    try:
        return world.api.result_png(task_id, index)
    finally:
        world.api.result_min_bytes = padding


async def test_a_dropped_gateway_is_resumed_and_jobs_and_commands_go_on(shared: Shared) -> None:
    world = shared.world
    jack = world.member("jack")
    world.api.on_prompt("drifting boat", Timeline.never_ends(progress=20))
    call = await world.imagine(jack, "a drifting boat")
    job_id = await world.submitted_job("a drifting boat")
    (task,) = world.api.tasks_for(job_id)
    await world.discord.wait_for(lambda: progress_versions(call), STEP_TIMEOUT, what="a progress edit")
    sessions = len(world.discord.gateway_sessions)
    session = world.discord.gateway_sessions[-1]
    resumes = session.resumes

    await world.discord.drop_gateway()
    await world.discord.wait_for(lambda: session.resumes > resumes, STEP_TIMEOUT, what="a RESUME")
    world.api.end_task(task.id)
    after = await world.imagine(jack, "a calm sea after the storm")

    await world.discord.wait_for(lambda: delivered(call) and delivered(after), STEP_TIMEOUT, what="both results")
    assert len(world.discord.gateway_sessions) == sessions  # resumed, not identified again
    answered_in_time(after)
    assert (await world.finished_row(job_id))["status"] == "completed"

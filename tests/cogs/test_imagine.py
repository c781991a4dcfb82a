"""/imagine end to end in one process: the real bot against the fakes of Discord and ToAPIs."""

from __future__ import annotations

import itertools
import logging
from datetime import UTC, datetime, timedelta

import pytest

from cogs._embeds import progress_bar
from tests.cogs.conftest import World, WorldFactory, delivered, png_upload
from tests.fakes.discord import CallbackType, InteractionRecord, MessageRecord, MessageVersion
from tests.fakes.toapis import Endpoint, Timeline

# The edit interval of the timing tests, and how much earlier than it the fake may record an edit: the fake
# stamps an edit when it arrives, the bot spaces them from when it sends them, and the request of the earlier
# edit can take a while on a busy machine.
EDIT_INTERVAL = 0.25
ARRIVAL_SLACK = 0.1


def progress_versions(message: MessageRecord) -> list[MessageVersion]:
    """The edits of a reply that showed progress (an embed, no images yet)."""
    return [v for v in message.edits if v.embeds and not v.attachments]


async def lookups_after(world: World, count: int) -> None:
    """Wait until the bot has looked the task up more than `count` times in all."""
    await world.api.wait_for(lambda: len(world.api.requests_to(Endpoint.LOOKUP)) > count, 10)


def showing(call: InteractionRecord, text: str) -> bool:
    original = call.original
    return original is not None and bool(original.embeds) and text in original.embeds[0].get("description", "")


async def test_imagine_defers_shows_progress_and_posts_the_images(world: World) -> None:
    # The task runs until the reply has shown it generating: a quick task on a loaded machine would otherwise end
    # before the first progress edit is due, and the result would rightly replace the queue's place at once.
    world.api.queue_timeline(Timeline.never_ends(progress=40))
    call = await world.imagine("a lighthouse at dusk", n=2, aspect="3:2")

    def generating() -> bool:
        versions = call.original.versions if call.original is not None else []
        return any(v.embeds and v.embeds[0].get("title") == "Generating" for v in versions)

    await world.discord.wait_for(generating, 15, what="a progress edit")
    (running,) = world.api.tasks.values()
    world.api.end_task(running.id)
    await world.discord.wait_for(lambda: delivered(call), 15)

    assert call.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    assert call.callback is not None
    assert not call.callback.ephemeral
    job = await world.finished_job()
    (task,) = world.api.tasks_for(job.id)
    original = call.original
    assert original is not None
    expected = [world.api.result_png(task.id, 1), world.api.result_png(task.id, 2)]
    assert [a.data for a in original.attachments] == expected
    assert [a.filename for a in original.attachments] == ["imagine-1.png", "imagine-2.png"]
    (embed,) = original.embeds
    assert embed["description"] == "a lighthouse at dusk"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert (fields["Model"], fields["Aspect"], fields["Resolution"]) == (
        "GPT Image 2",
        "Landscape 3:2",
        "1K (standard)",
    )
    assert (fields["Images"], fields["Counted as"]) == ("2", "2 images")
    assert fields["Requested by"] == f"<@{world.member.id}>"
    # Progress was shown by editing the reply before the result replaced it.
    titles = [v.embeds[0].get("title") for v in original.versions if v.embeds and not v.attachments]
    assert "Generating" in titles
    usage = await world.store.usage.get(job.id)
    assert usage is not None
    assert (usage.status, usage.images, usage.n, usage.aspect, usage.task_id) == ("completed", 2, 2, "3:2", task.id)
    assert usage.prompt == "a lighthouse at dusk"


async def test_a_model_that_takes_no_reference_image_gets_no_vary_buttons(make_world: WorldFactory) -> None:
    async with make_world(TOAPIS_MODELS="gpt-image-2,grok-imagine-1.0") as world:
        plain = await world.imagine("a fox in the snow", n=2, model="grok-imagine-1.0")
        varied = await world.imagine("a fox in the rain", n=2)
        await world.discord.wait_for(lambda: delivered(plain) and delivered(varied), 15)

        assert plain.original is not None
        assert varied.original is not None
        by_model = {job.model: job for job in await world.jobs()}
        grok, gpt = by_model["grok-imagine-1.0"], by_model["gpt-image-2"]
        assert [c.split(":")[1] for c in plain.original.custom_ids()] == ["reroll", "remix", "delete"]
        assert [c.split(":")[1] for c in varied.original.custom_ids()] == [
            "reroll",
            "remix",
            "delete",
            "vary",
            "vary",
        ]
        assert all(grok.id in c for c in plain.original.custom_ids())
        assert all(gpt.id in c for c in varied.original.custom_ids())


async def test_references_are_uploaded_and_sent_with_the_submit(world: World) -> None:
    call = await world.imagine("in this style", image=png_upload("a.png"), image2=png_upload("b.png", colour="red"))
    await world.discord.wait_for(lambda: delivered(call), 15)
    uploads = world.api.requests_to(Endpoint.UPLOAD)
    assert len(uploads) == 2
    (submit,) = world.api.requests_to(Endpoint.SUBMIT)
    assert submit.json is not None
    assert len(submit.json["reference_images"]) == 2
    job = await world.finished_job()
    assert job.reference_count == 2
    assert len(await world.store.references.load(job.id)) == 2


async def test_a_prompt_full_of_mentions_pings_nobody(world: World) -> None:
    role = world.guild.add_role("everyone-fans")
    prompt = f"@everyone @here <@&{role.id}> <@{world.member.id}> a crowd"
    call = await world.imagine(prompt)
    await world.discord.wait_for(lambda: delivered(call), 15)
    original = call.original
    assert original is not None
    assert original.embeds[0]["description"] == prompt
    # Progress edits echo the prompt too; neither they nor the result ping anyone.
    assert any(f["value"] == prompt for v in progress_versions(original) for f in v.embeds[0].get("fields", [])), (
        "the progress replies show the prompt"
    )
    for message in world.discord.messages:
        assert message.mentions_nobody, message


async def test_the_deferred_reply_comes_well_within_discords_deadline(world: World) -> None:
    call = await world.imagine("a quick acknowledgement", image=png_upload())

    await world.discord.wait_for(lambda: call.acknowledged or call.failed, 10)

    assert not call.failed, call.failure
    assert call.callback is not None
    assert call.callback.after_dispatch is not None
    assert call.callback.after_dispatch < 3.0
    assert call.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    await world.discord.wait_for(lambda: delivered(call), 15)
    # Nothing was read before the defer: the reference was fetched from the CDN after it.
    (download,) = [r for r in world.discord.requests if "/ephemeral-attachments/" in r.path]
    assert download.status == 200
    assert download.time >= call.callback.time


async def test_progress_edits_are_spaced_by_the_interval_and_coalesced(make_world: WorldFactory) -> None:
    async with make_world(PROGRESS_EDIT_INTERVAL=str(EDIT_INTERVAL)) as world:
        # About 1.5 s of work, looked up every 10 ms: a hundred or more states to show.
        progress = tuple(range(5, 100, 10))
        world.api.queue_timeline(Timeline.simple(running=1.5, progress=progress))
        call = await world.imagine("a slow sunrise")

        await world.discord.wait_for(lambda: delivered(call), 15)

        original = call.original
        assert original is not None
        shown = progress_versions(original)
        times = [v.time for v in shown]
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert gaps
        assert min(gaps) >= EDIT_INTERVAL - ARRIVAL_SLACK, gaps
        lookups = len(world.api.requests_to(Endpoint.LOOKUP))
        assert lookups > 3 * len(shown), (lookups, len(shown))
        # Each edit showed something new: the percentage climbed through the timeline.
        lines = [v.embeds[0]["description"].split("\n") for v in shown]
        bars = [(first, second) for first, second, *_ in (line for line in lines if len(line) >= 2)]
        percents = [int(text.split("**")[1].rstrip("%")) for _, text in bars if text.startswith("Progress: **")]
        assert len(percents) >= 3
        assert percents == sorted(percents)
        # Above each, a bar that reads at a glance: a tenth filled per ten percent.
        assert all(
            bar
            == "▰" * (int(text.split("**")[1].rstrip("%")) // 10)
            + "▱" * (10 - int(text.split("**")[1].rstrip("%")) // 10)
            for bar, text in bars
        )
        assert any("▰" in bar for bar, _ in bars)


async def test_the_latest_progress_is_always_shown(make_world: WorldFactory) -> None:
    async with make_world(PROGRESS_EDIT_INTERVAL=str(EDIT_INTERVAL)) as world:
        world.api.queue_timeline(Timeline.never_ends(progress=10))
        call = await world.imagine("a long night")
        await world.discord.wait_for(lambda: showing(call, "**10%**"), 10)
        (job,) = await world.jobs()
        (task,) = world.api.tasks_for(job.id)

        # A burst of states right after an edit: only the last one must (and will) be shown.
        for percent in (20, 30, 40, 73):
            world.api.set_task_state(task.id, "in_progress", percent)
            await lookups_after(world, len(world.api.requests_to(Endpoint.LOOKUP)) + 1)

        await world.discord.wait_for(lambda: showing(call, "**73%**"), 10)
        assert call.original is not None
        times = [v.time for v in progress_versions(call.original)]
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert min(gaps) >= EDIT_INTERVAL - ARRIVAL_SLACK, gaps
        world.api.end_task(task.id)
        await world.discord.wait_for(lambda: delivered(call), 15)


async def test_the_usage_log_row_has_every_field(world: World) -> None:
    before = datetime.now(UTC)
    call = await world.imagine("  a usage row for the ledger  ", n=3, aspect="2:3", image=png_upload())
    await world.discord.wait_for(lambda: delivered(call), 15)
    job = await world.finished_job()

    usage = await world.store.usage.get(job.id)

    (task,) = world.api.tasks_for(job.id)
    (submit,) = world.api.requests_to(Endpoint.SUBMIT)
    assert usage is not None
    assert (usage.guild_id, usage.channel_id, usage.user_id) == (world.guild.id, world.channel.id, world.member.id)
    assert usage.prompt == "a usage row for the ledger"
    assert usage.model == "gpt-image-2"
    assert submit.json is not None
    assert submit.json["model"] == usage.model
    assert (usage.aspect, usage.resolution, usage.n, usage.images, usage.reference_count) == ("2:3", "1k", 3, 3, 1)
    assert usage.task_id == task.id
    assert (usage.status, usage.error) == ("completed", None)
    after = datetime.now(UTC)
    assert usage.finished_at is not None
    slack = timedelta(seconds=1)
    assert before - slack <= usage.created_at <= usage.finished_at <= after + slack


async def test_no_secret_reaches_the_log_at_the_default_level(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    call = await world.imagine("a secretive cat", image=png_upload())
    await world.discord.wait_for(lambda: delivered(call), 15)
    expired = await world.imagine("a second cat")
    await world.discord.wait_for(lambda: expired.acknowledged, 10)
    world.discord.expire_token(expired)
    await world.discord.wait_for(lambda: len(world.discord.channel_messages(world.channel)) >= 3, 15)
    secrets = {
        "Discord token": world.discord.token,
        "ToAPIs key": world.api.api_key,
        "interaction token": call.token,
        "expired interaction token": expired.token,
    }

    # What `python bot.py` logs at LOG_LEVEL=INFO (the default); tests/test_bot.py checks DEBUG in a real process.
    emitted = [r for r in caplog.records if not r.name.startswith("tests.") and r.levelno >= logging.INFO]
    assert emitted
    for record in emitted:
        text = caplog.handler.format(record)
        for what, secret in secrets.items():
            assert secret not in text, f"{what} in a log record of {record.name}: {record.getMessage()[:200]}"


async def test_the_bot_uses_only_routes_discord_has(world: World) -> None:
    call = await world.imagine("a well-behaved client", image=png_upload(), n=2)
    await world.discord.wait_for(lambda: delivered(call), 15)

    assert world.discord.unknown_routes == []
    assert [r for r in world.discord.requests if r.status >= 400] == []


@pytest.mark.parametrize(("percent", "bar"), [(0, "▱" * 10), (30, "▰▰▰▱▱▱▱▱▱▱"), (99, "▰" * 9 + "▱"), (100, "▰" * 10)])
def test_the_progress_bar_fills_a_tenth_per_ten_percent_and_is_never_full_early(percent: int, bar: str) -> None:
    assert progress_bar(percent) == bar

"""Re-roll and Vary repeat what the job asked for: the model, aspect and resolution of a job of any model, of a
job stored before aspects and resolutions existed (its pixel size read as a ratio at 1K), and a refund gives back
what the job's images were counted as when it was admitted, whatever the weights say since."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from cogs._views import result_view
from storage.connect import open_database
from storage.jobs import Job, JobKind, JobState
from storage.schema import MIGRATIONS_DIR
from tests.cogs.conftest import LedgerRow, World, WorldFactory, delivered, wait_until
from tests.fakes.discord import InteractionRecord
from tests.fakes.toapis import Endpoint, Timeline

GUILD = 555_444_333_222_111_000
OLD_JOB = "0123456789abcdef" * 2


def submits(world: World) -> list[dict[str, Any]]:
    return [request.json for request in world.api.requests_to(Endpoint.SUBMIT)]


async def clicked(world: World, message_id: int, custom_id: str) -> InteractionRecord:
    """The member clicks a button of the bot's message in #general; its new job is delivered."""
    (message,) = [m for m in world.discord.channel_messages(world.channel) if m.id == message_id]
    click = await world.discord.click(message, custom_id, world.member)
    await world.discord.wait_for(lambda: delivered(click) or bool(click.followups), 15, what="the new job")
    assert delivered(click), [m.content for m in click.followups]
    return click


async def job_of(world: World, kind: JobKind) -> Job:
    (job,) = [job for job in await world.jobs() if job.kind is kind]
    return job


async def test_a_reroll_of_a_job_stored_in_pixels_asks_its_ratio_at_1k(
    tmp_path: Path, make_world: WorldFactory
) -> None:
    # A database as it was before the model surface (migrations up to 0008): a job of the old 1536x1024 size.
    before = tmp_path / "before"
    before.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if int(path.name[:4]) <= 8:
            (before / path.name).write_text(path.read_text())
    async with await open_database(f"sqlite:///{tmp_path / 'imagine.db'}", migrations_dir=before) as old:
        await old.execute(
            """
            INSERT INTO jobs (id, guild_id, channel_id, user_id, kind, prompt, size, n, model, state,
                              created_at, updated_at)
            VALUES (:id, :guild, 2, 3, 'imagine', 'an old harbour', '1536x1024', 2, 'gpt-image-2', 'completed', 0, 0)
            """,
            {"id": OLD_JOB, "guild": GUILD},
        )

    async with make_world(guild_id=GUILD) as world:  # the bot migrates the database as it starts
        parent = await world.store.jobs.get(OLD_JOB)
        assert parent is not None
        assert (parent.aspect, parent.resolution, parent.weight) == ("3:2", "1k", 1)
        channel = world.bot.get_partial_messageable(world.channel.id, guild_id=GUILD)
        posted = await channel.send("Its images, as the bot posted them then.", view=result_view(parent, 2))

        await clicked(world, posted.id, f"imagine:reroll:{OLD_JOB}")

        (submit,) = submits(world)
        assert (submit["prompt"], submit["model"], submit["size"], submit["resolution"], submit["n"]) == (
            "an old harbour",
            "gpt-image-2",
            "3:2",
            "1k",
            2,
        )
        again = await job_of(world, JobKind.REROLL)
        assert (again.parent_job_id, again.aspect, again.resolution, again.weight) == (OLD_JOB, "3:2", "1k", 1)
        assert await world.ledger() == [LedgerRow(again.id, 2, 2)]


async def test_reroll_and_vary_keep_a_non_default_model_aspect_and_resolution(make_world: WorldFactory) -> None:
    # Seedream 4.0 at 1K (its own default is 2K; the server's default model is GPT Image 2), in 16:9.
    async with make_world(TOAPIS_MODELS="gpt-image-2,doubao-seedream-4-0") as world:
        call = await world.imagine("a dune at noon", model="doubao-seedream-4-0", resolution="1k", aspect="16:9")
        await world.discord.wait_for(lambda: delivered(call), 15, what="the images")
        assert call.original is not None
        parent = await job_of(world, JobKind.IMAGINE)

        await clicked(world, call.original.id, f"imagine:reroll:{parent.id}")
        await clicked(world, call.original.id, f"imagine:vary:{parent.id}:0")

        first, reroll, vary = submits(world)
        for submit in (first, reroll, vary):
            assert (submit["model"], submit["size"], submit["metadata"]["resolution"], submit["n"]) == (
                "doubao-seedream-4-0",
                "16:9",
                "1K",
                1,
            )
        assert len(vary["image_urls"]) == 1
        for kind in (JobKind.REROLL, JobKind.VARY):
            job = await job_of(world, kind)
            assert (job.model, job.aspect, job.resolution, job.weight) == ("doubao-seedream-4-0", "16:9", "1k", 1)


async def test_a_refund_gives_back_the_weight_the_job_was_admitted_at(make_world: WorldFactory) -> None:
    async with make_world() as world:
        # Two 4K images (4 each by default) asked; the task will return one.
        world.api.queue_timeline(dataclasses.replace(Timeline.never_ends(), images=1))
        call = await world.imagine("two towers at dusk", n=2, resolution="4k")

        async def submitted() -> Job | None:
            jobs = await world.jobs()
            return jobs[0] if jobs and jobs[0].task_id else None

        job = await wait_until(submitted)
        assert job.weight == 4
        assert await world.ledger() == [LedgerRow(job.id, 8, 8)]
        # The operator weighs 4K at 6 now; the job was admitted at 4, and keeps it.
        assert world.settings is not None
        world.settings = dataclasses.replace(world.settings, model_weights=(("gpt-image-2", "4k", 6),))
        await world.restart()
        (task,) = world.api.tasks_for(job.id)
        world.api.end_task(task.id)

        finished = await world.finished_job()
        assert (finished.state, finished.images_delivered, finished.weight) == (JobState.COMPLETED, 1, 4)
        assert await world.ledger() == [LedgerRow(job.id, 4, 8)]
        await world.discord.wait_for(lambda: delivered(call), 15, what="the one image")
        assert call.original is not None
        fields = {field["name"]: field["value"] for field in call.original.embeds[0]["fields"]}
        assert (fields["Images"], fields["Counted as"]) == ("1 of 2", "4 images")
        # What the operator weighs now applies to what is admitted now.
        again = await world.imagine("one more tower", resolution="4k")
        await world.discord.wait_for(lambda: delivered(again), 15, what="the next images")
        latest = (await world.jobs())[-1]
        assert latest.weight == 6


async def test_a_reroll_of_a_model_the_operator_withdrew_is_refused_privately_naming_what_is_offered(
    make_world: WorldFactory,
) -> None:
    async with make_world(TOAPIS_MODELS="gpt-image-2,flux-2-pro") as world:
        call = await world.imagine("a fox in the snow", model="flux-2-pro", aspect="16:9")
        await world.discord.wait_for(lambda: delivered(call), 15, what="the images")
        assert call.original is not None
        parent = await job_of(world, JobKind.IMAGINE)
        # The operator stops paying for FLUX.2 Pro.
        assert world.settings is not None
        world.settings = dataclasses.replace(world.settings, toapis_models=("gpt-image-2",))
        await world.restart()

        for custom_id in (f"imagine:reroll:{parent.id}", f"imagine:vary:{parent.id}:0"):
            click = await world.discord.click(call.original, custom_id, world.member)
            await world.discord.wait_for(lambda: bool(click.followups), 15, what="the refusal")  # noqa: B023
            (refusal,) = click.followups
            assert refusal.ephemeral
            assert refusal.content == "This server does not offer the model 'flux-2-pro'. It offers: GPT Image 2."
            assert click.original is not None
            assert click.original.deleted  # the public "thinking" reply is gone

        assert len(submits(world)) == 1
        assert [job.kind for job in await world.jobs()] == [JobKind.IMAGINE]

"""/imagine end to end in one process: the real bot against the fakes of Discord and ToAPIs."""

from __future__ import annotations

from tests.cogs.conftest import World, png_upload
from tests.fakes.discord import CallbackType, InteractionRecord
from tests.fakes.toapis import Endpoint


def delivered(call: InteractionRecord) -> bool:
    return call.original is not None and not call.original.deleted and bool(call.original.attachments)


async def test_imagine_defers_shows_progress_and_posts_the_images(world: World) -> None:
    call = await world.imagine("a lighthouse at dusk", n=2, size="1536x1024")
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
    assert fields["Size"] == "Landscape (1536×1024)"
    assert fields["Images"] == "2"
    assert fields["Requested by"] == f"<@{world.member.id}>"
    # Progress was shown by editing the reply before the result replaced it.
    titles = [v.embeds[0].get("title") for v in original.versions if v.embeds and not v.attachments]
    assert "Generating" in titles
    usage = await world.store.usage.get(job.id)
    assert usage is not None
    assert (usage.status, usage.images, usage.n, usage.size, usage.task_id) == ("completed", 2, 2, "1536x1024", task.id)
    assert usage.prompt == "a lighthouse at dusk"


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
    for message in world.discord.messages:
        assert message.pings.nobody, message

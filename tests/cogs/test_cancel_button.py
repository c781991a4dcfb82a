"""The Cancel button stays on a waiting job's reply, through a pause, and goes once the job moves on."""

from __future__ import annotations

from tests.cogs.conftest import WorldFactory
from tests.fakes.discord import InteractionRecord
from tests.fakes.toapis import Endpoint, Fault, Timeline


def titles_and_buttons(call: InteractionRecord) -> list[tuple[str | None, bool]]:
    assert call.original is not None
    return [
        (
            version.embeds[0].get("title") if version.embeds else None,
            any(
                "imagine:cancel:" in (c.get("custom_id") or "") for row in version.components for c in row["components"]
            ),
        )
        for version in call.original.versions
    ]


async def test_a_paused_waiting_job_keeps_its_cancel_button(make_world: WorldFactory) -> None:
    async with make_world(MAX_CONCURRENT_JOBS="1") as world:
        world.api.queue_timeline(Timeline.never_ends(), Timeline.instant())
        busy = await world.imagine("the job in front")
        await world.discord.wait_for(lambda: bool(world.api.tasks), 10)
        waiting = await world.imagine("the job behind", user=world.guild.add_member("bob"))

        def shown(title: str) -> bool:
            return any(t == title for t, _ in titles_and_buttons(waiting)) if waiting.original else False

        await world.discord.wait_for(lambda: shown("Next in line"), 10)
        # The upstream stops answering: the breaker opens (and its probe fails) until the faults are cleared.
        world.api.fail(Endpoint.MODELS, Fault.server_error(), times=None)
        world.pipeline.breaker.trip("the upstream stopped answering")
        await world.discord.wait_for(lambda: shown("Paused"), 10)
        assert ("Paused", True) in titles_and_buttons(waiting)  # still cancellable while it waits

        world.api.clear_faults()
        (task,) = world.api.tasks.values()
        world.api.end_task(task.id)
        await world.discord.wait_for(lambda: _delivered(busy) and _delivered(waiting), 15)
        final = titles_and_buttons(waiting)[-1]
        assert final[1] is False  # the result has no Cancel


def _delivered(call: InteractionRecord) -> bool:
    return call.original is not None and bool(call.original.attachments)

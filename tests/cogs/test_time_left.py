"""The time left on a job's progress: shown once recent jobs of its model and resolution say how long it takes,
rounded no finer than the estimate is, in the job's locale, and gone once the images are there."""

from __future__ import annotations

import pytest

import i18n
from cogs._texts import time_left
from tests.cogs.conftest import World, delivered
from tests.fakes.toapis import Timeline


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.4, "5 s"),
        (3.0, "5 s"),
        (17.3, "20 s"),
        (55.0, "55 s"),
        (56.0, "1 min 00 s"),
        (94.0, "1 min 30 s"),
        (731.0, "12 min 00 s"),
    ],
)
def test_the_time_left_is_rounded_to_what_an_estimate_can_say(seconds: float, shown: str) -> None:
    assert time_left(seconds, "en-US") == shown


def showing(call_description: str | None, text: str) -> bool:
    return call_description is not None and text in call_description


async def test_the_progress_shows_the_time_left_from_recent_jobs_of_the_same_kind(world: World) -> None:
    for index in range(5):
        world.pipeline.durations.record(f"earlier-{index}", "gpt-image-2", "1k", 30.0)
    world.api.queue_timeline(Timeline.never_ends(progress=40))

    call = await world.imagine("a lighthouse at dusk")

    def description() -> str | None:
        original = call.original
        return original.embeds[0].get("description") if original is not None and original.embeds else None

    await world.discord.wait_for(lambda: showing(description(), "About 30 s left"), 15)
    assert showing(description(), "40%")
    (task,) = world.api.tasks_for((await world.jobs())[0].id)
    world.api.end_task(task.id)
    await world.discord.wait_for(lambda: delivered(call), 15)
    assert call.original is not None
    assert "left" not in str(call.original.embeds)


def test_every_locale_says_the_time_left() -> None:
    texts = {locale: i18n.translate("progress.remaining", locale, remaining="20 s") for locale in i18n.SUPPORTED}
    assert all("20 s" in text for text in texts.values())
    assert len(set(texts.values())) == len(texts)

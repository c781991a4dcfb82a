"""The result's embed on its own: the prompt whole within Discord's limits, and the links to the originals of
images re-encoded to fit, only while the image service keeps them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cogs._embeds import result_embed
from cogs._limits import DESCRIPTION_LIMIT, TOTAL_LIMIT
from storage.jobs import Job, JobState
from tests import jobs
from tests.jobs import CREATED

SUBMITTED = CREATED + timedelta(minutes=3)
ORIGINALS = ("https://files.toapis.example/r/abc-1.png", "https://files.toapis.example/r/abc-2.png")


def a_job(**changes: Any) -> Job:
    """A 4K job of two images about to be delivered, submitted at SUBMITTED."""
    delivering = {
        "n": 2,
        "aspect": "16:9",
        "resolution": "4k",
        "weight": 4,
        "state": JobState.DELIVERING,
        "task_id": "task-1",
        "progress": 100,
        "submit_started_at": SUBMITTED,
        "result_files": ORIGINALS,
    }
    return jobs.a_job(**(delivering | changes))


def reencoded_note(job: Job, at: datetime) -> str:
    embed = result_embed(job, images=2, elapsed=60.0, refunded=0, reencoded=2, originals=ORIGINALS, now=at)
    (note,) = [field.value for field in embed.fields if field.name == "Re-encoded to fit"]
    assert isinstance(note, str)
    return note


def test_the_originals_are_linked_while_the_image_service_keeps_them() -> None:
    note = reencoded_note(a_job(), SUBMITTED + timedelta(hours=23, minutes=59))

    assert note == (
        "2 images re-encoded to fit Discord's upload limit in this server. The full ones, for a day: "
        f"[original 1]({ORIGINALS[0]}) [original 2]({ORIGINALS[1]})"
    )


def test_a_delivery_a_day_after_the_submit_links_no_original() -> None:
    # A delivery resumed after a long restart: the task completed more than a day ago, its links are dead.
    late = SUBMITTED + timedelta(hours=24, minutes=1)

    assert reencoded_note(a_job(), late) == "2 images re-encoded to fit Discord's upload limit in this server."
    # A job never marked as submitted counts from its creation.
    assert "original 1" in reencoded_note(a_job(submit_started_at=None), CREATED + timedelta(hours=23))
    assert "original 1" not in reencoded_note(a_job(submit_started_at=None), CREATED + timedelta(hours=24))


def test_the_longest_prompt_is_shown_whole_beside_every_field() -> None:
    prompt = "a harbour at dawn, " * 210 + "gulls"
    assert len(prompt) == 3995
    links = tuple(f"https://files.toapis.example/r/{'x' * 200}-{index}.png" for index in range(1, 5))
    job = a_job(prompt=prompt, n=4)

    embed = result_embed(
        job, images=4, elapsed=3600.0, refunded=1, reencoded=4, originals=links, reference="01234567", now=SUBMITTED
    )

    assert embed.description == prompt
    assert len(embed.description) <= DESCRIPTION_LIMIT
    assert len(embed) <= TOTAL_LIMIT

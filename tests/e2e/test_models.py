"""Another model, aspect and resolution through `python bot.py`: what reaches ToAPIs, what the member sees,
and what the job counts as."""

from __future__ import annotations

from tests.e2e.conftest import STEP_TIMEOUT, World, delivered, embed_fields
from tests.fakes.toapis import Endpoint


async def test_a_seedream_4k_widescreen_job_counts_as_four_images(world: World) -> None:
    async with world.bot(TOAPIS_MODELS="gpt-image-2,doubao-seedream-4-5"):
        bea = world.member("bea")
        suggested = await world.discord.autocomplete(
            "imagine", {"prompt": "a harbour", "model": "dream"}, focused="model", user=bea, channel=world.channel
        )
        assert suggested == [{"name": "Seedream 4.5", "value": "doubao-seedream-4-5"}]

        call = await world.imagine(
            bea, "a harbour at dawn", model="doubao-seedream-4-5", aspect="16:9", resolution="4k"
        )
        await world.discord.wait_for(lambda: delivered(call), STEP_TIMEOUT, what="the images")

        (submit,) = [r.json for r in world.api.requests_to(Endpoint.SUBMIT) if r.json]
        assert (submit["model"], submit["size"], submit["metadata"]) == (
            "doubao-seedream-4-5",
            "16:9",
            {"resolution": "4K"},
        )
        assert call.original is not None
        (embed,) = call.original.embeds
        fields = embed_fields(embed)
        assert (fields["Model"], fields["Aspect"], fields["Resolution"]) == ("Seedream 4.5", "Widescreen 16:9", "4K")
        assert fields["Counted as"] == "4 images"
        job_id = submit["client_business_id"]
        assert world.ledger_images(job_id) == 4
        row = await world.finished_row(job_id)
        assert (row["model"], row["aspect"], row["resolution"], row["weight"], row["images"]) == (
            "doubao-seedream-4-5",
            "16:9",
            "4k",
            4,
            1,
        )

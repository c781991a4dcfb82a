"""Remix through the real bot: a result's button opens a form pre-filled with the job's prompt, its model's aspect
ratios and resolutions (the job's own chosen); sending it makes a new job with the edited values and the same
reference images, for the member who sent it, counted against their quota. And what it refuses, repeating the
prompt each time."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import i18n
from cogs._remix import RemixTarget, offered
from storage.jobs import Job, JobKind
from tests.cogs.conftest import World, WorldFactory, delivered, png_upload, wait_until
from tests.cogs.test_content_controls import owed_writes
from tests.cogs.test_quota import command, refused_quota
from tests.fakes.discord import CallbackType, FakeMember, InteractionRecord, MessageRecord
from tests.fakes.toapis import Endpoint
from toapis import catalog


async def result(world: World, prompt: str, *, user: FakeMember | None = None, **options: Any) -> MessageRecord:
    """A member's delivered /imagine: its result message."""
    call = await world.imagine(prompt, user=user, **options)
    await world.discord.wait_for(lambda: delivered(call) or bool(call.followups), 15, what="the images")
    assert delivered(call), [m.content for m in call.followups]
    assert call.original is not None
    return call.original


# Where results cut the prompt before they showed it whole (a message posted then still shows it so).
OLDER_RESULT_CUT = 3500


def shown_before(message: MessageRecord, prompt: str) -> None:
    """The result message as a version of Imagine that cut long prompts posted it."""
    older = {**message.embeds[0], "description": prompt[: OLDER_RESULT_CUT - 1].rstrip() + "…"}
    message.versions.append(dataclasses.replace(message.current, embeds=(older,)))


def remix_button(message: MessageRecord) -> str:
    (custom_id,) = [c for c in message.custom_ids() if c.startswith("imagine:remix:")]
    return custom_id


async def open_remix(world: World, message: MessageRecord, user: FakeMember | None = None) -> InteractionRecord:
    """Click Remix; the form is the first response."""
    click = await world.discord.click(message, remix_button(message), user or world.member)
    await world.discord.wait_for(lambda: click.acknowledged or click.failed, 10, what="the form")
    assert click.callback_type is CallbackType.MODAL, click.failure
    return click


def labelled(modal: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The form's labels by their text, each with its component."""
    assert modal is not None
    assert all(item["type"] == 18 for item in modal["components"])
    return {item["label"]: item for item in modal["components"]}


def options(label: dict[str, Any]) -> tuple[list[str], list[str]]:
    """A select's values, and those chosen by default."""
    offered = label["component"]["options"]
    return [o["value"] for o in offered], [o["value"] for o in offered if o.get("default")]


async def sent(world: World, click: InteractionRecord, **values: str) -> InteractionRecord:
    return await world.discord.submit_modal(click, values)


async def member_jobs(world: World, member: FakeMember) -> list[Job]:
    return [job for job in await world.jobs() if job.user_id == member.id]


def echoed(message: MessageRecord, prompt: str) -> None:
    """The prompt repeated in its own embed, in a code block nothing in it can close."""
    prompts = [e for e in message.embeds if e.get("title") == i18n.translate("embed.your_prompt", i18n.SOURCE)]
    assert len(prompts) == 1, message.embeds
    # Runs of three backticks are broken by a zero-width space (cogs/_embeds.py, `fenced`).
    assert prompts[0]["description"] == "```\n" + prompt.replace("```", "``\u200b`") + "\n```"
    assert message.mentions_nobody


def reference_bytes(world: World, submit: dict[str, Any]) -> list[bytes]:
    return [world.api.uploads[url.rsplit("/", 1)[1].rsplit(".", 1)[0]].data for url in submit["reference_images"]]


async def test_remix_edits_the_prompt_aspect_and_resolution_and_keeps_the_references_for_whoever_sends_it(
    world: World,
) -> None:
    original = await result(world, "a lighthouse at dusk", image=png_upload(colour="navy"), n=2)
    (parent,) = await world.jobs()
    bob = world.guild.add_member("bob")

    click = await open_remix(world, original, bob)

    assert click.modal is not None
    assert click.modal["title"] == "Remix"
    fields = labelled(click.modal)
    assert list(fields) == ["Prompt", "Aspect", "Resolution"]
    assert fields["Prompt"]["component"]["value"] == "a lighthouse at dusk"
    assert "description" not in fields["Prompt"]
    spec = catalog.get_model("gpt-image-2")
    assert options(fields["Aspect"]) == (list(spec.aspects), ["1:1"])
    assert options(fields["Resolution"]) == (list(spec.resolutions), ["1k"])
    assert [o["label"] for o in fields["Aspect"]["component"]["options"]][:2] == ["Square 1:1", "Landscape 3:2"]
    # Nothing was stored or read for the form but its record.
    assert len(await world.jobs()) == 1

    remix = await sent(world, click, prompt="a lighthouse at dawn", aspect="16:9", resolution="2k")
    await world.discord.wait_for(lambda: delivered(remix), 15, what="the remix")

    first, second = (request.json for request in world.api.requests_to(Endpoint.SUBMIT))
    assert (second["prompt"], second["size"], second["resolution"], second["n"]) == (
        "a lighthouse at dawn",
        "16:9",
        "2k",
        2,
    )
    assert reference_bytes(world, second) == reference_bytes(world, first)
    (job,) = await member_jobs(world, bob)
    assert (job.kind, job.parent_job_id, job.model, job.reference_count) == (JobKind.REMIX, parent.id, parent.model, 1)
    # Counted against bob's quota, at 2K's weight.
    ledger = {row.job_id: row.images for row in await world.ledger()}
    assert ledger == {parent.id: 2, job.id: 4}
    # The remix's result has its own Remix button, naming it.
    assert remix.original is not None
    assert remix_button(remix.original) == RemixTarget.of(job).custom_id


async def test_a_prompt_left_as_an_older_message_shows_it_cut_is_the_jobs_whole_prompt(world: World) -> None:
    prompt = ("a very detailed harbour scene " * 130).strip()
    assert 3500 < len(prompt) <= 4000
    original = await result(world, prompt)
    assert original.embeds[0]["description"] == prompt
    shown_before(original, prompt)

    click = await open_remix(world, original)
    fields = labelled(click.modal)
    shown = fields["Prompt"]["component"]["value"]
    assert shown == prompt[: OLDER_RESULT_CUT - 1].rstrip() + "…"
    assert fields["Prompt"]["description"] == i18n.translate("form.remix.prompt_cut", i18n.SOURCE)

    remix = await sent(world, click)  # nothing changed: the shown text, the job's own aspect and resolution
    await world.discord.wait_for(lambda: delivered(remix), 15, what="the remix")

    second = world.api.requests_to(Endpoint.SUBMIT)[1].json
    assert (second["prompt"], second["size"], second["resolution"]) == (prompt, "1:1", "1k")


async def test_a_remix_whose_job_is_gone_is_refused_repeating_what_was_typed(world: World) -> None:
    original = await result(world, "a fox")
    (parent,) = await world.jobs()
    click = await open_remix(world, original)
    await world.store.db.execute("DELETE FROM jobs WHERE id = :id", {"id": parent.id})

    remix = await sent(world, click, prompt="a ``` fox <@1> @everyone")

    text = await refused_quota(world, remix)
    assert text == i18n.translate("refusal.parent_unknown.remixed", i18n.SOURCE, bot="Imagine")
    echoed(remix.followups[-1], "a ``` fox <@1> @everyone")
    assert len(world.api.requests_to(Endpoint.SUBMIT)) == 1


async def test_a_remix_whose_references_expired_is_refused(world: World) -> None:
    original = await result(world, "a kite", image=png_upload())
    (parent,) = await world.jobs()
    click = await open_remix(world, original)
    await world.store.db.execute("DELETE FROM job_references WHERE job_id = :id", {"id": parent.id})

    remix = await sent(world, click, prompt="a red kite")

    text = await refused_quota(world, remix)
    assert "so it cannot be remixed" in text
    assert "30 days" in text
    echoed(remix.followups[-1], "a red kite")
    assert len(await world.jobs()) == 1
    assert (await world.ledger())[0].images == 1


async def test_an_aspect_the_jobs_model_does_not_offer_is_refused(make_world: WorldFactory) -> None:
    async with make_world(TOAPIS_MODELS="gpt-image-2,flux-2-pro") as world:
        original = await result(world, "a tower")
        (parent,) = await world.jobs()
        click = await open_remix(world, original)
        assert "21:9" in options(labelled(click.modal)["Aspect"])[0]
        # The button named gpt-image-2 (which offers 21:9); the stored job says flux-2-pro (which does not).
        await world.store.db.execute("UPDATE jobs SET model = 'flux-2-pro' WHERE id = :id", {"id": parent.id})

        remix = await sent(world, click, aspect="21:9")

        text = await refused_quota(world, remix)
        assert text == "FLUX.2 Pro offers the aspect ratios 1:1, 3:2, 2:3, 4:3, 3:4, 16:9, 9:16: choose one of them."
        echoed(remix.followups[-1], "a tower")
        assert len(world.api.requests_to(Endpoint.SUBMIT)) == 1


async def test_a_remix_over_quota_is_refused_before_any_reference_is_read(make_world: WorldFactory) -> None:
    async with make_world(DEFAULT_MEMBER_DAILY_LIMIT="1") as world:
        original = await result(world, "a boat", image=png_upload())
        click = await open_remix(world, original)
        uploads = len(world.api.requests_to(Endpoint.UPLOAD))

        remix = await sent(world, click, prompt="```\nа boat``` at night\n```")

        text = await refused_quota(world, remix)
        assert text.startswith("You have reached your limit for today")
        echoed(remix.followups[-1], "```\nа boat``` at night\n```")
        assert len(world.api.requests_to(Endpoint.UPLOAD)) == uploads
        assert len(await world.jobs()) == 1


async def test_a_form_whose_record_is_gone_asks_to_click_remix_again(world: World) -> None:
    original = await result(world, "a bridge")
    click = await open_remix(world, original)
    await wait_until(lambda: world.store.db.fetch_all("SELECT id FROM forms"))
    await world.store.db.execute("DELETE FROM forms", {})

    remix = await sent(world, click, prompt="a bridge in fog")

    assert await refused_quota(world, remix) == "This form has expired. Click Remix on the images again."
    echoed(remix.followups[-1], "a bridge in fog")


async def test_remix_in_a_cooldown_is_refused_at_once_with_the_prompt_on_the_message(world: World) -> None:
    await command(world, "imagine-settings cooldown", {"seconds": 600})
    original = await result(world, "a mill")

    click = await world.discord.click(original, remix_button(original), world.member)
    await world.discord.wait_for(lambda: click.acknowledged or click.failed, 10, what="the refusal")

    assert click.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
    assert click.original is not None
    assert click.original.ephemeral
    assert click.original.content.startswith("You can use /imagine again")
    echoed(click.original, "a mill")
    assert click.original.components == ()


def test_every_catalogued_model_fits_a_remix_buttons_custom_id() -> None:
    for spec in catalog.MODELS.values():
        for aspect in spec.aspects:
            for resolution in spec.resolutions:
                assert len(RemixTarget("0" * 32, spec.id, aspect, resolution).custom_id) <= 100


def test_a_model_the_catalog_no_longer_knows_offers_the_jobs_own_aspect_and_resolution_alone() -> None:
    assert offered(RemixTarget("0" * 32, "retired-model", "3:2", "2k")) == (("3:2",), ("2k",))
    spec = catalog.get_model("flux-2-pro")
    assert offered(RemixTarget("0" * 32, "flux-2-pro", "1:1", "1k")) == (spec.aspects, spec.resolutions)


async def test_a_remix_to_a_blocked_prompt_is_refused_at_once_privately_and_counts_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = await result(world, "a quiet harbour")
    await world.bot.services.server_settings.add_blocked_words(world.guild.id, ["explosion"])
    click = await open_remix(world, original)
    public_before = world.discord.channel_messages(world.channel)
    written = owed_writes(world, monkeypatch)

    remix = await sent(world, click, prompt="a quiet harbour, one Explosion")

    # The typed prompt is checked from memory before the first response: a private answer at once, no public
    # "thinking" reply, no owed answer written.
    await world.discord.wait_for(lambda: remix.acknowledged or remix.failed, 10, what="the refusal")
    assert remix.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE, remix.failure
    assert remix.callback is not None
    assert remix.callback.ephemeral
    assert remix.original is not None
    assert remix.original.mentions_nobody
    text = remix.original.content
    assert text.startswith("Your prompt contains something this server does not allow")
    echoed(remix.original, "a quiet harbour, one Explosion")
    assert written == []
    assert world.discord.channel_messages(world.channel) == public_before
    assert len(world.api.requests_to(Endpoint.SUBMIT)) == 1  # the original's alone
    assert len(await world.jobs()) == 1
    # Nothing counted, and the cooldown started, so the list cannot be probed for free.
    assert world.bot.services.intake.admission.cooldowns.remaining(world.guild.id, world.member.id, 600) > 0


async def test_a_shown_prompt_cut_inside_a_word_is_checked_whole_once_loaded(world: World) -> None:
    # A result posted before results showed prompts whole cut this one inside "badge": "… bad…" read alone would
    # be refused, the job's whole prompt is not.
    head = "a harbour " * ((OLDER_RESULT_CUT - 10) // 10)
    prompt = head + "x" * (OLDER_RESULT_CUT - 5 - len(head)) + " badge and more words after it"
    original = await result(world, prompt)
    shown_before(original, prompt)
    await world.bot.services.server_settings.add_blocked_words(world.guild.id, ["bad"])
    click = await open_remix(world, original)
    assert labelled(click.modal)["Prompt"]["component"]["value"].endswith(" bad…")

    remix = await sent(world, click)
    await world.discord.wait_for(lambda: delivered(remix) or bool(remix.followups), 15, what="the remix")

    assert delivered(remix), [m.content for m in remix.followups]
    assert world.api.requests_to(Endpoint.SUBMIT)[1].json["prompt"] == prompt


async def test_the_forms_prompt_takes_no_more_than_the_jobs_model_does(make_world: WorldFactory) -> None:
    """The form is the place where Discord itself can hold the member to the model's limit (1,000 characters for
    GPT-4o Image): its text input's max length is the model's, not the 4,000 of every prompt."""
    async with make_world(TOAPIS_MODELS="gpt-image-2,gpt-4o-image") as world:
        original = await result(world, "a lantern", model="gpt-4o-image")
        click = await open_remix(world, original)

        prompt = labelled(click.modal)["Prompt"]["component"]
        assert prompt["max_length"] == catalog.get_model("gpt-4o-image").prompt_max == 1000
        assert prompt["value"] == "a lantern"


async def test_a_remix_prompt_over_the_models_limit_is_refused_repeating_it(make_world: WorldFactory) -> None:
    """A form shown before the model's limit was the text input's (an older version of Imagine): the prompt over
    the limit is refused after the reply, with the prompt repeated, and nothing is counted."""
    async with make_world(TOAPIS_MODELS="gpt-image-2,gpt-4o-image") as world:
        original = await result(world, "a lantern", model="gpt-4o-image")
        click = await open_remix(world, original)
        assert click.modal is not None
        labelled(click.modal)["Prompt"]["component"]["max_length"] = 4000  # as an older version showed it
        typed = "a paper lantern over still water " * 40
        assert 1000 < len(typed.strip()) <= 4000

        remix = await sent(world, click, prompt=typed)

        text = await refused_quota(world, remix)
        assert text == i18n.translate("refusal.prompt_too_long", i18n.SOURCE, length="1,319", limit="1,000")
        echoed(remix.followups[-1], typed)
        assert len(world.api.requests_to(Endpoint.SUBMIT)) == 1
        assert [row.images for row in await world.ledger()] == [1]


async def test_the_selects_offer_the_jobs_models_choices_with_the_jobs_own_chosen(make_world: WorldFactory) -> None:
    async with make_world(TOAPIS_MODELS="gpt-image-2,doubao-seedream-4-5") as world:
        original = await result(world, "a canyon", model="doubao-seedream-4-5", aspect="9:16", resolution="4k")
        click = await open_remix(world, original)

        fields = labelled(click.modal)
        spec = catalog.get_model("doubao-seedream-4-5")
        assert options(fields["Aspect"]) == (list(spec.aspects), ["9:16"])
        assert options(fields["Resolution"]) == (["2k", "4k"], ["4k"])
        assert fields["Prompt"]["component"]["max_length"] == spec.prompt_max


async def test_a_remix_left_as_it_was_with_a_word_blocked_since_is_refused_at_once(world: World) -> None:
    """The form shows the job's prompt whole: sent unchanged, it is checked before the first response, like a
    typed one (docs/members.md, A word the server does not allow)."""
    original = await result(world, "a quiet harbour")
    await world.bot.services.server_settings.add_blocked_words(world.guild.id, ["harbour"])
    click = await open_remix(world, original)

    remix = await sent(world, click)

    await world.discord.wait_for(lambda: remix.acknowledged or remix.failed, 10, what="the refusal")
    assert remix.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE, remix.failure
    assert remix.original is not None
    assert remix.original.ephemeral
    assert remix.original.content.startswith("Your prompt contains something this server does not allow")
    echoed(remix.original, "a quiet harbour")
    assert len(await world.jobs()) == 1

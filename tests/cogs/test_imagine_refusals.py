"""/imagine refusals: what the bot can see without I/O is answered at once, ephemerally, without a defer; what it
finds after the defer (an unreadable image, a quota) deletes the deferred reply and follows up ephemerally.
Nothing is reserved, stored, uploaded or submitted for a refused request."""

from __future__ import annotations

import io
import re
import time
from datetime import UTC, datetime

import pytest
from PIL import Image

from cogs._texts import generic_text, quota_refusal
from storage.quotas import Period, RuleScope, RuleUsage
from tests.cogs.conftest import World, WorldFactory, delivered, png_upload
from tests.cogs.test_prompt_repeated import TRICKY, prompt_in
from tests.fakes.discord import CallbackType, InteractionRecord, MessageRecord, Upload
from tests.fakes.toapis import Endpoint

GENERIC = generic_text("en-US")

RELATIVE_TIMESTAMP = re.compile(r"<t:(\d+):R>")


async def answered_at_once(world: World, call: InteractionRecord) -> str:
    """The text of the immediate ephemeral refusal `call` got; fails if it was deferred or answered otherwise."""
    await world.discord.wait_for(lambda: call.acknowledged or call.failed, 10, what="the first response")
    assert call.callback is not None, call.failure
    assert call.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE
    assert call.callback.ephemeral
    assert call.refused_callbacks == []
    assert call.original is not None
    assert call.original.ephemeral
    assert call.original.mentions_nobody
    assert call.followups == []
    content = call.callback.data["content"] if call.callback.data else ""
    assert isinstance(content, str)
    return content


async def refused_after_defer(world: World, call: InteractionRecord) -> MessageRecord:
    """The ephemeral follow-up of a refusal found after the defer; the deferred reply must be deleted."""
    followup: MessageRecord = await world.discord.wait_for(
        lambda: call.followups[-1] if call.followups else None, 10, what="an ephemeral follow-up"
    )
    assert call.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    assert call.callback is not None
    assert not call.callback.ephemeral
    assert call.original is not None
    assert call.original.deleted
    assert followup is not call.original
    assert followup.ephemeral
    assert followup.mentions_nobody
    # Nobody else in the channel sees anything of the refused request.
    assert world.discord.channel_messages(world.channel) == []
    return followup


async def assert_nothing_happened(world: World) -> None:
    """No job, no reservation, nothing sent upstream."""
    assert await world.jobs() == []
    assert await world.ledger() == []
    assert world.api.requests_to(Endpoint.UPLOAD) == []
    assert world.api.requests_to(Endpoint.SUBMIT) == []


def image_bytes(size: tuple[int, int], *, mode: str = "RGB", fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format=fmt)
    return buffer.getvalue()


# -- after the defer: the images -------------------------------------------------------------------------------


async def test_a_text_file_named_png_is_refused_naming_the_image(world: World) -> None:
    text = Upload(b"these are my notes, not a picture\n" * 20, "notes.png", "image/png")
    call = await world.imagine("like this", image=png_upload("fine.png"), image2=text)

    followup = await refused_after_defer(world, call)

    assert "Image 2" in followup.content
    assert "is not a JPEG, PNG, WebP or GIF image" in followup.content
    await assert_nothing_happened(world)


async def test_a_truncated_image_is_refused(world: World) -> None:
    whole = image_bytes((300, 200))
    call = await world.imagine("like this", image=Upload(whole[: len(whole) // 2], "cut.png", "image/png"))

    followup = await refused_after_defer(world, call)

    assert followup.content.startswith("Your image ")
    assert "could not be read as an image" in followup.content
    await assert_nothing_happened(world)


async def test_a_50_megapixel_image_is_refused_before_it_is_decoded(world: World) -> None:
    # A 1-bit PNG of 7100×7100 (50.4 megapixels) is a few kilobytes: a decompression bomb in miniature.
    bomb = image_bytes((7100, 7100), mode="1")
    assert len(bomb) < 100_000
    call = await world.imagine("like this", image=Upload(bomb, "bomb.png", "image/png"))

    followup = await refused_after_defer(world, call)

    assert "Your image is 7100×7100 pixels" in followup.content
    assert "50 megapixels" in followup.content
    await assert_nothing_happened(world)


SEEDREAM_TOO = "gpt-image-2,doubao-seedream-4-5"


@pytest.mark.parametrize(
    ("size", "text"),
    [
        ((400, 100), "Image 2 is too long and narrow for Seedream 4.5, which takes reference images up to 3:1 wide"),
        ((10, 40), "Image 2 is 10×40 pixels, too small for Seedream 4.5, which takes reference images of at least 15"),
    ],
    ids=["4:1", "10-px-wide"],
)
async def test_a_reference_of_a_shape_seedream_does_not_take_is_refused_before_any_upload(
    make_world: WorldFactory, size: tuple[int, int], text: str
) -> None:
    async with make_world(TOAPIS_MODELS=SEEDREAM_TOO) as world:
        odd = Upload(image_bytes(size), "odd.png", "image/png")
        call = await world.imagine("a banner", model="doubao-seedream-4-5", image=png_upload(), image2=odd)

        followup = await refused_after_defer(world, call)

        assert followup.content.startswith(text)
        await assert_nothing_happened(world)


async def test_a_3_to_1_reference_for_seedream_and_a_4_to_1_one_for_gpt_image_2_are_taken(
    make_world: WorldFactory,
) -> None:
    async with make_world(TOAPIS_MODELS=SEEDREAM_TOO) as world:
        at_the_limit = Upload(image_bytes((300, 100)), "wide.png", "image/png")
        seedream = await world.imagine("a banner", model="doubao-seedream-4-5", image=at_the_limit)
        wider = Upload(image_bytes((400, 100)), "wider.png", "image/png")
        gpt = await world.imagine("a banner", user=world.guild.add_member("bob"), image=wider)

        await world.discord.wait_for(lambda: delivered(seedream) and delivered(gpt), 15, what="the images")
        submitted = {request.json["model"] for request in world.api.requests_to(Endpoint.SUBMIT)}
        assert submitted == {"doubao-seedream-4-5", "gpt-image-2"}
        assert len(world.api.requests_to(Endpoint.UPLOAD)) == 2


async def test_a_refusal_after_the_bot_read_the_images_keeps_the_cooldown(world: World) -> None:
    # The bot downloaded and decoded the attachment before refusing it: a refusal is not free, or a member
    # could make the bot do that work without pause.
    await world.bot.services.server_settings.set_cooldown(world.guild.id, 600)
    bad = await world.imagine("like this", image=Upload(b"not an image", "x.png", "image/png"))
    await refused_after_defer(world, bad)

    call = await world.imagine("a second try")

    text = await answered_at_once(world, call)
    assert text.startswith("You can use /imagine again <t:")
    await assert_nothing_happened(world)


async def test_a_failure_on_imagines_side_after_the_reply_keeps_the_cooldown(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bot acknowledged the request and did I/O for it before failing: the cooldown is kept, as for a
    # refusal, so that no outcome can be had without pause.
    await world.bot.services.server_settings.set_cooldown(world.guild.id, 600)

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(world.bot.services.quotas, "would_refuse", broken)
    failed = await world.imagine("a cat")
    followup = await refused_after_defer(world, failed)
    assert followup.content == GENERIC
    monkeypatch.undo()

    call = await world.imagine("a second try")

    text = await answered_at_once(world, call)
    assert text.startswith("You can use /imagine again <t:")
    await assert_nothing_happened(world)


# -- at once, without I/O --------------------------------------------------------------------------------------


async def test_n_above_the_servers_maximum_is_refused_at_once(world: World) -> None:
    await world.bot.services.server_settings.set_max_n(world.guild.id, 2)

    call = await world.imagine("three cats", n=3)

    text = await answered_at_once(world, call)
    assert text == "This server allows 1 to 2 images per request: choose n within that."
    await assert_nothing_happened(world)


async def test_a_channel_not_allowed_is_refused_naming_the_allowed_one(world: World) -> None:
    art = world.guild.add_text_channel("art")
    await world.bot.services.server_settings.add_allowed_channel(world.guild.id, art.id)

    call = await world.imagine("a cat")

    text = await answered_at_once(world, call)
    assert f"<#{art.id}>" in text
    assert f"<#{world.channel.id}>" not in text
    await assert_nothing_happened(world)
    # In the allowed channel the same request is taken.
    allowed = await world.imagine("a cat", channel=art)
    await world.discord.wait_for(lambda: allowed.acknowledged, 10)
    assert allowed.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE


async def test_the_cooldown_refuses_a_second_request_at_once_with_a_relative_time(world: World) -> None:
    await world.bot.services.server_settings.set_cooldown(world.guild.id, 120)
    first = await world.imagine("a cat")
    await world.discord.wait_for(lambda: first.acknowledged, 10)
    assert first.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE

    second = await world.imagine("another cat")

    text = await answered_at_once(world, second)
    found = RELATIVE_TIMESTAMP.search(text)
    assert found is not None, text
    # About two minutes from now (the bot's clock is this machine's); a slow machine only makes it less.
    assert 60 <= int(found.group(1)) - time.time() <= 121
    job = await world.finished_job()
    assert len(await world.jobs()) == 1
    assert len(world.api.tasks_for(job.id)) == 1
    assert len(world.api.requests_to(Endpoint.SUBMIT)) == 1


async def test_an_attachment_over_50_mb_is_refused_before_it_is_downloaded(make_world: WorldFactory) -> None:
    # A boosted server's members may attach 100 MB files; Imagine takes references of at most 50 MB.
    async with make_world(fake_discord={"max_file_size": 100 * 1024 * 1024}) as world:
        huge = Upload(b"\x89PNG\r\n\x1a\n" + bytes(51_000_000), "huge.png", "image/png")

        call = await world.imagine("like this", image=png_upload(), image2=huge)

        text = await answered_at_once(world, call)
        assert text.startswith("Image 2 is 51 MB")
        assert "at most 50 MB" in text
        await assert_nothing_happened(world)
        # Not even downloaded from the CDN.
        assert world.discord.cdn_requests == 0


async def test_a_server_outside_allowed_guild_ids_is_told_imagine_is_not_enabled(make_world: WorldFactory) -> None:
    async with make_world(ALLOWED_GUILD_IDS="123456789012345678") as world:
        call = await world.imagine(TRICKY, image=png_upload())

        text = await answered_at_once(world, call)
        assert "not enabled in this server" in text
        assert call.original is not None
        assert prompt_in(call.original) == TRICKY
        await assert_nothing_happened(world)
        assert await world.store.db.fetch_all("SELECT * FROM usage_log") == []
        assert await world.store.db.fetch_all("SELECT * FROM job_references") == []


# -- quota ---------------------------------------------------------------------------------------------------


async def test_a_quota_refusal_names_the_rule_what_is_left_and_when_it_resets(make_world: WorldFactory) -> None:
    async with make_world(DEFAULT_MEMBER_DAILY_LIMIT="2") as world:
        first = await world.imagine("two cats", n=2)
        await world.discord.wait_for(lambda: first.original is not None and bool(first.original.attachments), 15)
        job = await world.finished_job()
        submits = len(world.api.requests_to(Endpoint.SUBMIT))

        second = await world.imagine("one more cat", n=1)

        followup = await refused_after_defer_in_channel_with(world, second, first.original)
        text = followup.content
        assert "your limit for today" in text
        assert "(2 images)" in text
        assert RELATIVE_TIMESTAMP.search(text) is not None, text
        # Nothing was reserved, stored, uploaded or submitted for the refused request.
        assert [row.job_id for row in await world.ledger()] == [job.id]
        assert [j.id for j in await world.jobs()] == [job.id]
        assert len(world.api.requests_to(Endpoint.SUBMIT)) == submits


async def test_a_quota_refusal_says_how_many_are_left(make_world: WorldFactory) -> None:
    async with make_world(DEFAULT_MEMBER_DAILY_LIMIT="2") as world:
        first = await world.imagine("one cat")
        await world.discord.wait_for(lambda: first.original is not None and bool(first.original.attachments), 15)
        await world.finished_job()

        second = await world.imagine("two more cats", n=2)

        followup = await refused_after_defer_in_channel_with(world, second, first.original)
        assert "You asked for 2 images, but only 1 of your limit for today (2) is left" in followup.content
        assert RELATIVE_TIMESTAMP.search(followup.content) is not None


RESETS = datetime(2026, 12, 7, tzinfo=UTC)
WHEN = f"<t:{int(RESETS.timestamp())}:R>"


def member_usage(limit: int, used: int) -> RuleUsage:
    return RuleUsage(RuleScope.MEMBER, Period.DAY, limit, used, RESETS)


def test_a_quota_refusal_says_what_the_request_counted_as_and_what_can_be_done() -> None:
    def text(used: int, requested: int, weight: int, locale: str = "en-US") -> str:
        return quota_refusal(member_usage(25, used), requested, locale, weight)

    # One 4K image, which counts as 4: asking for fewer is no way out, a lower resolution is.
    assert text(23, 1, 4) == (
        "You asked for 1 image, which counts as 4 images at this model and resolution, but only 2 of your limit for "
        f"today (25) are left. Ask for a lower resolution, or wait until it resets {WHEN}."
    )
    assert text(22, 2, 2) == (
        "You asked for 2 images, which count as 4 images at this model and resolution, but only 3 of your limit "
        f"for today (25) are left. Ask for fewer images or a lower resolution, or wait until it resets {WHEN}."
    )
    assert text(24, 3, 1) == (
        f"You asked for 3 images, but only 1 of your limit for today (25) is left. Ask for fewer, or wait until it "
        f"resets {WHEN}."
    )
    # Nothing left: what the request would have counted as, when it counts as more than its images.
    assert text(25, 1, 4) == (
        "You asked for 1 image, which counts as 4 images at this model and resolution, but you have reached your "
        f"limit for today (25 images). It resets {WHEN}."
    )
    assert text(25, 2, 1) == f"You have reached your limit for today (25 images). It resets {WHEN}."
    # Plurals by each language's rules, for the images asked for and those left.
    assert text(23, 1, 4, "ru") == (
        "Вы запросили 1 изображение, которое с этой моделью и разрешением засчитывается как 4 изображения, но ваш "
        f"лимит на сегодня (25) позволяет ещё только 2 изображения. Выберите разрешение пониже или подождите: лимит "
        f"обновится {WHEN}."
    )
    assert text(25, 2, 2, "ja") == (
        f"2枚（このモデルと解像度では4枚分）をリクエストしましたが、あなたの今日の上限（25枚）に達しています。{WHEN}にリセットされます。"
    )


async def refused_after_defer_in_channel_with(
    world: World, call: InteractionRecord, earlier: MessageRecord | None
) -> MessageRecord:
    """Like `refused_after_defer`, in a channel that already holds an earlier result."""
    followup: MessageRecord = await world.discord.wait_for(
        lambda: call.followups[-1] if call.followups else None, 10, what="an ephemeral follow-up"
    )
    assert call.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    assert call.original is not None
    assert call.original.deleted
    assert followup is not call.original
    assert followup.ephemeral
    assert followup.mentions_nobody
    assert world.discord.channel_messages(world.channel) == [earlier]
    return followup


async def test_a_prompt_of_only_spaces_is_refused_at_once(world: World) -> None:
    call = await world.imagine("    ")

    text = await answered_at_once(world, call)

    assert text == "Your prompt is empty: describe the image you want."
    await assert_nothing_happened(world)


async def test_a_request_whose_defer_failed_does_not_start_the_cooldown(world: World) -> None:
    await world.bot.services.server_settings.set_cooldown(world.guild.id, 600)
    # Discord gave up on this interaction before the bot answered (a slow gateway, a busy machine).
    missed = await world.discord.invoke_slash(
        "imagine", {"prompt": "a cat"}, user=world.member, channel=world.channel, deadline=0.0
    )
    await world.discord.wait_for(lambda: bool(missed.refused_callbacks), 10, what="the refused defer")
    assert missed.failed
    assert not missed.acknowledged
    assert await world.jobs() == []

    again = await world.imagine("a cat")

    await world.discord.wait_for(lambda: again.acknowledged, 10)
    assert again.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE


async def test_simultaneous_requests_never_exceed_the_quota(make_world: WorldFactory) -> None:
    async with make_world(DEFAULT_MEMBER_DAILY_LIMIT="3") as world:
        members = [world.member, *(world.guild.add_member(name) for name in ("bob", "carol"))]
        # Each member's own limit is 3: two requests of 2 images each at the same moment, one must be refused.
        calls = [await world.imagine(f"a cat for {m.user.username} #{i}", user=m, n=2) for m in members for i in (1, 2)]

        def settled(call: InteractionRecord) -> bool:
            return delivered(call) or bool(call.followups)

        await world.discord.wait_for(lambda: all(settled(call) for call in calls), 20, what="every answer")

        for member in members:
            mine = [call for call in calls if call.user is member.user]
            assert sorted(delivered(call) for call in mine) == [False, True], member.user.username
            (refused,) = [call for call in mine if not delivered(call)]
            (followup,) = refused.followups
            assert followup.ephemeral
            assert "only 1 of your limit for today (3) is left" in followup.content
        rows = await world.ledger()
        assert len(rows) == 3
        assert sum(row.images for row in rows) == 6
        assert len(world.api.requests_to(Endpoint.SUBMIT)) == 3

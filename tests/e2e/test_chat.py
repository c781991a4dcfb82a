"""Imagine in the conversation through the real ``python bot.py``: members mention it in messages, reply to its
results, write options inline; refusals, a message delivered twice or edited, and a SIGKILL mid-job.

The fake dispatches MESSAGE_CREATE as Discord does to a bot without the Message Content intent: other members'
messages arrive without text or files unless they mention the bot (also inside a ``referenced_message``), and
the bot's own messages arrive in full. Two bot starts in all: one world for the flows, one for the crash.
"""

from __future__ import annotations

import io
import signal

import pytest
from PIL import Image

from tests.e2e.conftest import STEP_TIMEOUT, World, png_bytes
from tests.fakes.discord import MessageRecord, Upload
from tests.fakes.toapis import Endpoint, Timeline

pytestmark = pytest.mark.e2e


def mention(world: World) -> str:
    return f"<@{world.discord.bot_user.id}>"


def replies_to(world: World, message: MessageRecord) -> list[MessageRecord]:
    return [m for m in world.bot_messages() if m.reference is message]


async def answer_to(world: World, message: MessageRecord, *, with_files: bool = False) -> MessageRecord:
    """The bot's one reply to `message` (once it shows images, with `with_files`)."""

    def found() -> MessageRecord | None:
        replies = replies_to(world, message)
        assert len(replies) <= 1, replies
        if replies and (replies[0].attachments or not with_files):
            return replies[0]
        return None

    return await world.discord.wait_for(found, STEP_TIMEOUT, what="the bot's reply")


def reference_colours(world: World, submit: dict[str, object]) -> list[tuple[int, ...]]:
    """The colour of each reference image a submit sent, from the fake's uploads."""
    urls = submit["reference_images"]
    assert isinstance(urls, list)
    uploads = [world.api.uploads[str(url).rsplit("/", 1)[1].rsplit(".", 1)[0]] for url in urls]
    return [colour(u.data) for u in uploads]


def colour(data: bytes) -> tuple[int, ...]:
    """The colour of an image's first pixel (the fakes' images are of one colour)."""
    pixel = Image.open(io.BytesIO(data)).convert("RGB").getpixel((0, 0))
    assert isinstance(pixel, tuple)
    return pixel


async def test_members_ask_in_the_conversation_with_every_rule_of_the_command(world: World) -> None:
    alice = world.member("alice")
    art = world.guild.add_text_channel("art")
    async with world.bot():
        # Two images and inline options: the prompt is the text without the mention and the options.
        photos = [Upload(png_bytes((64, 48), c), f"{c}.png", "image/png") for c in ("red", "blue")]
        ask = await world.discord.post_message(
            art, alice, f"{mention(world)} put the cat from the first into the second --ar 16:9 --n 2", files=photos
        )
        result = await answer_to(world, ask, with_files=True)
        submit = world.submit_of("put the cat from the first into the second")
        assert (submit["size"], submit["n"]) == ("16:9", 2)
        assert reference_colours(world, submit) == [(255, 0, 0), (0, 0, 255)]
        assert len(result.attachments) == 2
        assert result.versions[0].mentions.users == {alice.id}
        row = await world.finished_row(submit["client_business_id"])
        assert (row["status"], row["source"]) == ("completed", "message")

        # A reply to the result (its ping on: no mention typed) uses the result's images and keeps its aspect.
        night = await world.discord.post_message(art, alice, "make it night", reply_to=result)
        await answer_to(world, night, with_files=True)
        changed = world.submit_of("make it night")
        (task,) = world.api.tasks_for(submit["client_business_id"])
        assert (changed["size"], changed["n"]) == ("16:9", 1)
        assert reference_colours(world, changed) == [colour(world.api.result_png(task.id, i)) for i in (1, 2)]

        # A reply to another member's message, which arrives empty: the member's own prompt is taken alone, and a
        # note (pinging nobody) says how to use that message's images.
        bob = world.member("bob")
        photo = await world.discord.post_message(
            art, bob, "my dog", files=[Upload(png_bytes((32, 32), "white"), "dog.png", "image/png")]
        )
        blue = await world.discord.post_message(art, alice, f"{mention(world)} a blue dog", reply_to=photo)
        notes = await world.discord.wait_for(
            lambda: [m for m in replies_to(world, blue) if "Imagine from images" in m.content] or None,
            STEP_TIMEOUT,
            what="the note",
        )
        assert notes[0].versions[0].mentions.users == frozenset()
        await world.submitted_job("a blue dog")
        assert world.submit_of("a blue dog").get("reference_images") in (None, [])

        # Delivered again (as after a RESUME) and edited: still one job, one reply.
        assert world.discord.redeliver(ask) == "live"
        await world.discord.edit_message(ask, content=f"{mention(world)} something else entirely")
        # Refusals: no prompt; a channel off the server's allow-list. Each a short reply pinging only the author.
        admin_call = await world.discord.invoke_slash(
            "imagine-settings channels add", {"channel": art}, user=world.admin, channel=art
        )
        await world.discord.wait_for(lambda: admin_call.followups, STEP_TIMEOUT, what="the allow-list set")
        # A member refused is not answered again while that refusal is shown (another member still is).
        cara = world.member("cara")
        empty = await world.discord.post_message(art, alice, f"{mention(world)} --n 2")
        elsewhere = await world.discord.post_message(world.channel, cara, f"{mention(world)} a fox")
        for refused, member, text in (
            (empty, alice, "Your prompt is empty: describe the image you want."),
            (elsewhere, cara, f"/imagine is not used in this channel. In this server, use it in <#{art.id}>."),
        ):
            answer = await answer_to(world, refused)
            assert answer.content == text
            assert answer.versions[0].mentions.users == {member.id}
            assert answer.reference is refused
        again = await world.discord.post_message(art, alice, f"{mention(world)}")
        marker = await world.discord.post_message(art, cara, f"{mention(world)} a marker")
        await answer_to(world, marker, with_files=True)
        assert replies_to(world, again) == []
        assert len(replies_to(world, ask)) == 1
        assert len(world.api.requests_to(Endpoint.SUBMIT)) == 4
        assert world.rows("SELECT count(*) AS jobs FROM jobs") == [{"jobs": 4}]


async def test_a_sigkill_during_the_job_still_delivers_it_once_in_the_reply(world: World) -> None:
    bea = world.member("bea")
    prompt = "a paper boat in a storm"
    world.api.on_prompt("paper boat", Timeline.never_ends(progress=30))
    first = await world.start_bot()
    ask = await world.discord.post_message(world.channel, bea, f"{mention(world)} {prompt}")
    job_id = await world.submitted_job(prompt)
    reply = await answer_to(world, ask)
    assert await first.kill() == -signal.SIGKILL
    (task,) = world.api.tasks_for(job_id)
    world.api.end_task(task.id)

    second = await world.start_bot()
    row = await world.finished_row(job_id)

    assert row["status"] == "completed"
    assert second.matching(r"Resumed 1 unfinished job")
    await world.discord.wait_for(lambda: reply.attachments, STEP_TIMEOUT, what="the result in the reply")
    assert replies_to(world, ask) == [reply]
    assert world.bot_messages(with_files=True) == [reply]
    assert [a.data for a in reply.attachments] == [world.api.result_png(task.id, 1)]
    assert world.job_ids().count(job_id) == 1
    assert len(world.usage_rows(job_id)) == 1
    assert await second.terminate() == 0

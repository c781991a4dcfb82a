"""/history through the real bot: a member's own jobs in this server, newest first, in pages, each with its
reference, the prompt's start, model and aspect, status, when, and a link to its images."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

import cogs._pagination as pagination
from cogs._pagination import Paginator
from storage.jobs import Job, JobKind, JobState
from tests.cogs.conftest import World, delivered, wait_until
from tests.cogs.test_quota import button, command, description, flip
from tests.cogs.test_show import refused, show
from tests.fakes.discord import CallbackType, Overwrite, Permission
from tests.fakes.toapis import Timeline

LINE = re.compile(r"^`(?P<reference>[0-9a-f]{8,32})` <t:\d+:R> · (?P<rest>.*)$")


async def history_pages(world: World) -> list[str]:
    """Every page of the member's /history (ephemeral, pinging nobody), turned with Next."""
    reply = await command(world, "history", user=world.member)
    assert reply.interaction is not None
    assert reply.interaction.callback_type is CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    assert reply.embeds[0]["title"] == "Your latest jobs"
    pages = [description(reply)]
    if not reply.components:
        return pages
    _, next_id = reply.custom_ids()
    while not button(reply, next_id).get("disabled"):
        await flip(world, reply, next_id, world.member)
        pages.append(description(reply))
    return pages


def job_lines(page: str) -> list[str]:
    return [line for line in page.splitlines() if line.startswith("`")]


async def test_a_member_with_no_job_is_told_so(world: World) -> None:
    (page,) = await history_pages(world)
    assert "You have not asked Imagine for images in this server yet." in page


async def test_history_lists_the_members_own_jobs_newest_first_with_status_and_links(world: World) -> None:
    done = await world.imagine("a lighthouse *at* dusk\nwith gulls", aspect="16:9")
    await world.discord.wait_for(lambda: delivered(done), 15, what="the images")
    world.api.on_prompt("a failing task", Timeline.failing())
    await world.imagine("a failing task")
    bob = world.guild.add_member("bob")
    others = await world.imagine("bob's job", user=bob)
    await world.discord.wait_for(lambda: delivered(others), 15, what="bob's images")

    async def settled() -> bool:
        return all(job.is_finished for job in await world.jobs())

    await wait_until(settled)
    (page,) = await history_pages(world)

    assert page.startswith("Newest first, in this server. `/show job:<reference>` posts a job's images here again.")
    failed, lighthouse = job_lines(page)
    jobs = {job.prompt: job for job in await world.jobs()}
    first = jobs["a lighthouse *at* dusk\nwith gulls"]
    link = f"https://discord.com/channels/{world.guild.id}/{world.channel.id}/{first.result_message_id}"
    parts = LINE.match(lighthouse)
    assert parts is not None
    assert parts["reference"] == first.id[:8]
    # On one line, its markdown shown as typed.
    assert parts["rest"] == f"a lighthouse \\*at\\* dusk with gulls · GPT Image 2 · 16:9 · delivered · [images]({link})"
    failed_parts = LINE.match(failed)
    assert failed_parts is not None
    assert failed_parts["rest"] == "a failing task · GPT Image 2 · 1:1 · failed"
    assert "bob's job" not in page


async def stored_job(world: World, number: int) -> Job:
    """One of the member's jobs, stored as the pipeline stores it, waiting in line."""
    await asyncio.sleep(0.002)  # one millisecond apart at least: jobs are ordered by when they were made
    return await world.store.jobs.create(
        guild_id=world.guild.id,
        channel_id=world.channel.id,
        user_id=world.member.id,
        kind=JobKind.IMAGINE,
        prompt=f"picture number {number:02d}",
        n=1,
        model="gpt-image-2",
    )


async def test_thirty_jobs_come_in_pages_newest_first(world: World) -> None:
    jobs = world.store.jobs
    for number in range(30):
        job = await stored_job(world, number)
        if number % 3 == 0:
            await jobs.fail(job.id, "cancelled")
        elif number % 3 == 1:
            await jobs.set_state(job.id, JobState.DELIVERING)
            await jobs.record_delivery(job.id, images_delivered=1, result_message_id=1000 + number)
            await jobs.set_state(job.id, JobState.COMPLETED)

    pages = await history_pages(world)

    assert len(pages) == 2
    lines = [line for page in pages for line in job_lines(page)]
    assert [line.split(" · ")[1] for line in lines] == [f"picture number {n:02d}" for n in reversed(range(30))]
    assert lines[0].endswith("· waiting in line")  # 29
    assert lines[1].endswith(f"/{world.channel.id}/1028)")  # 28: delivered, with its link
    assert lines[2].endswith("· cancelled")  # 27


async def test_a_result_the_channel_refused_links_to_the_members_direct_messages(world: World) -> None:
    world.api.queue_timeline(Timeline.never_ends())
    call = await world.imagine("a lantern for the inbox")

    async def running() -> Job | None:
        jobs = await world.jobs()
        return jobs[0] if jobs and jobs[0].task_id else None

    job = await wait_until(running)
    # The bot could post here when it was asked; by the time the images come, the channel refuses them.
    world.channel.overwrites.append(Overwrite(world.guild.bot_role, deny=Permission.SEND_MESSAGES))
    world.discord.expire_token(call)
    (task,) = world.api.tasks_for(job.id)
    world.api.end_task(task.id)
    dm = world.discord.dm_channel(world.member)
    sent = await world.discord.wait_for(
        lambda: next((m for m in world.discord.channel_messages(dm) if m.attachments), None), 15, what="the DM"
    )
    finished = await world.finished_job()
    assert finished.result_message_id == sent.id
    world.channel.overwrites.clear()

    (page,) = await history_pages(world)

    (line,) = job_lines(page)
    assert line.endswith(f"· delivered · [images](https://discord.com/channels/@me/{dm.id}/{sent.id})")


async def test_fifteen_jobs_are_one_page_without_buttons_and_sixteen_are_two(world: World) -> None:
    for number in range(15):
        await stored_job(world, number)

    (page,) = await history_pages(world)
    assert len(job_lines(page)) == 15

    await stored_job(world, 15)
    first, second = await history_pages(world)
    assert [len(job_lines(first)), len(job_lines(second))] == [15, 1]
    assert job_lines(second)[0].split(" · ")[1] == "picture number 00"


async def test_next_after_the_listings_token_expired_says_to_run_history_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the reply's 15 minutes its buttons cannot be greyed out (the token is gone): a click on Next once the
    listing stopped is answered with a note, not "This interaction failed"."""
    views: list[Paginator] = []
    real = pagination.Paginator

    def short_lived(*args: Any, **kwargs: Any) -> Paginator:
        view = real(*args, **kwargs)
        view.timeout = 0.05
        views.append(view)
        return view

    monkeypatch.setattr(pagination, "Paginator", short_lived)
    for number in range(16):
        await stored_job(world, number)
    reply = await command(world, "history", user=world.member)
    assert reply.interaction is not None
    _, next_id = reply.custom_ids()
    world.discord.expire_token(reply.interaction)
    (view,) = views
    assert await view.wait()  # True: it stopped on its timeout, with the token gone

    click = await world.discord.click(reply, next_id, world.member)

    await world.discord.wait_for(lambda: click.acknowledged or click.failed, 10, what="the note")
    assert click.callback_type is CallbackType.CHANNEL_MESSAGE_WITH_SOURCE, click.failure
    assert click.original is not None
    assert click.original.ephemeral
    assert click.original.content == "This listing has expired: run the command again to see it."
    assert len(job_lines(description(reply))) == 15  # the first page, as it was


async def test_a_result_deleted_with_its_delete_button_is_listed_without_a_link(world: World) -> None:
    done = await world.imagine("a lighthouse")
    await world.discord.wait_for(lambda: delivered(done), 15, what="the images")
    assert done.original is not None
    (delete_id,) = [c for c in done.original.custom_ids() if c.startswith("imagine:delete:")]
    click = await world.discord.click(done.original, delete_id, world.member)
    await world.discord.wait_for(lambda: done.original is not None and done.original.deleted, 10, what="the deletion")
    assert click.acknowledged
    await wait_until(deletion_noted(world))

    (page,) = await history_pages(world)

    (line,) = job_lines(page)
    assert "](https://discord.com/channels/" not in line
    assert line.endswith("images deleted")


async def test_a_result_a_moderator_deleted_is_listed_without_a_link_and_show_says_so_without_fetching(
    world: World,
) -> None:
    done = await world.imagine("a lighthouse")
    await world.discord.wait_for(lambda: delivered(done), 15, what="the images")
    assert done.original is not None
    await world.discord.delete_message(done.original)  # MESSAGE_DELETE, by id: whoever deleted it
    await wait_until(deletion_noted(world))

    (page,) = await history_pages(world)
    (line,) = job_lines(page)
    assert "](https://discord.com/channels/" not in line
    assert line.endswith("images deleted")

    (job,) = await world.jobs()
    fetched_before = len(world.discord.requests)
    gone = await refused(world, await show(world, job.id[:8]))
    assert gone == "The message with that job's images was deleted, so they cannot be shown again."
    assert not any(r.method == "GET" and "/messages/" in r.path for r in world.discord.requests[fetched_before:])


def deletion_noted(world: World) -> Any:
    async def noted() -> bool:
        jobs = await world.jobs()
        return bool(jobs) and jobs[0].result_deleted_at is not None

    return noted

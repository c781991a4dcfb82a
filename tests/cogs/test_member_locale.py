"""What the requester alone reads about their request speaks their own Discord locale, while what the channel sees
speaks the server's (docs/i18n.md): a content-policy refusal told privately (also by a job resumed after a
restart), a result or a failure notice sent by direct message, and the private follow-up of an owed answer whose
reply is gone. A job or an owed answer stored without the member's locale (before it was kept) speaks the public
one."""

from __future__ import annotations

import re
from typing import Any

import pytest

import i18n
from cogs._owed import OwedAnswerer
from storage.jobs import Job
from storage.quotas import Period, RuleScope
from tests.cogs.conftest import World, delivered, running_job, wait_until
from tests.fakes.discord import InteractionRecord, MessageRecord, Overwrite, Permission
from tests.fakes.toapis import Outcome, Timeline

# Kana and CJK ideographs: Japanese text, which no English or German text holds.
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


async def imagine_as(world: World, prompt: str, locale: str) -> InteractionRecord:
    """/imagine by the test's member, whose Discord speaks `locale`, in a server whose own locale is en-US."""
    return await world.discord.invoke_slash(
        "imagine", {"prompt": prompt}, user=world.member, channel=world.channel, locale=locale
    )


def public_messages(world: World) -> list[MessageRecord]:
    """Every message anyone in the server could have seen, deleted or not: not ephemeral, not in a DM."""
    return [m for m in world.discord.messages if m.channel.guild is not None and not m.ephemeral]


def every_text(message: MessageRecord) -> str:
    """Every version of a message, its content and embeds (titles, fields, footers) and components."""
    return repr([(v.content, v.embeds, v.components) for v in message.versions])


def assert_told_privately(notice: MessageRecord, locale: str, prompt: str) -> None:
    """The content-policy refusal, its title, text and the prompt's embed, all in `locale`."""
    assert notice.ephemeral
    failure, echoed = notice.embeds
    assert failure["title"] == i18n.translate("failure.title", locale)
    assert failure["description"].startswith(i18n.translate("failure.content_policy", locale))
    assert echoed["title"] == i18n.translate("embed.your_prompt", locale)
    assert prompt in echoed["description"]


async def test_a_content_policy_refusal_is_told_in_the_members_locale_and_nothing_public_speaks_it(
    world: World,
) -> None:
    world.api.queue_timeline(Timeline.content_policy())

    call = await imagine_as(world, "a battle", "ja")

    job = await world.finished_job()
    assert (job.error_code, job.locale, job.member_locale) == ("content_policy", "en-US", "ja")
    await world.discord.wait_for(lambda: call.original is not None and call.original.deleted, 10)
    notice = await world.discord.wait_for(lambda: next((m for m in call.followups if not m.deleted), None), 15)
    assert_told_privately(notice, "ja", "a battle")
    # The public reply is gone, and nothing anyone else saw (its progress included) was in Japanese.
    assert world.discord.channel_messages(world.channel) == []
    public = public_messages(world)
    assert call.original in public
    assert [every_text(m) for m in public if JAPANESE.search(every_text(m))] == []


async def test_a_job_resumed_after_a_restart_tells_its_refusal_in_the_members_locale(world: World) -> None:
    world.api.queue_timeline(Timeline.never_ends())
    call = await imagine_as(world, "a battle", "de")
    job = await running_job(world)
    (task,) = world.api.tasks_for(job.id)

    await world.restart()
    world.api.end_task(task.id, Outcome.CONTENT_POLICY)

    assert (await world.finished_job()).error_code == "content_policy"
    await world.discord.wait_for(lambda: call.original is not None and call.original.deleted, 10)
    notice = await world.discord.wait_for(lambda: next((m for m in call.followups if not m.deleted), None), 15)
    assert_told_privately(notice, "de", "a battle")
    german = i18n.translate("failure.title", "de")
    assert [every_text(m) for m in public_messages(world) if german in every_text(m)] == []


async def test_a_job_stored_without_the_members_locale_speaks_the_public_one_privately(world: World) -> None:
    # The server speaks German; the job's row has no member locale, as a row written before it was kept.
    world.guild.locale = "de"
    world.api.queue_timeline(Timeline.never_ends())
    call = await imagine_as(world, "a battle", "ja")
    job = await running_job(world)
    assert (job.locale, job.member_locale) == ("de", "ja")
    await world.store.db.execute("UPDATE jobs SET member_locale = NULL WHERE id = :id", {"id": job.id})
    (task,) = world.api.tasks_for(job.id)

    await world.restart()
    world.api.end_task(task.id, Outcome.CONTENT_POLICY)

    await world.finished_job()
    notice = await world.discord.wait_for(lambda: next((m for m in call.followups if not m.deleted), None), 15)
    assert_told_privately(notice, "de", "a battle")


@pytest.mark.parametrize(
    ("outcome", "dm_key", "title_key"),
    [(Outcome.COMPLETED, "reporter.ready.dm", None), (Outcome.FAILED, "reporter.failed.dm", "failure.title")],
    ids=["result", "failure"],
)
async def test_what_goes_by_dm_speaks_the_members_locale(
    world: World, outcome: Outcome, dm_key: str, title_key: str | None
) -> None:
    world.api.queue_timeline(Timeline.never_ends())
    call = await imagine_as(world, "a heron at dawn", "ja")
    job = await running_job(world)
    # The channel refuses the bot's posts, and the reply's token has expired: only the member's DMs are left.
    world.channel.overwrites.append(Overwrite(world.guild.bot_role, deny=int(Permission.SEND_MESSAGES)))
    world.discord.expire_token(call)
    (task,) = world.api.tasks_for(job.id)

    world.api.end_task(task.id, outcome)

    dm = world.discord.dm_channel(world.member)
    (sent,) = await world.discord.wait_for(lambda: world.discord.channel_messages(dm), 15, what="the DM")
    assert sent.content == i18n.translate(dm_key, "ja", channel=world.channel.id)
    embed = sent.embeds[0]
    reference = await world.bot.services.history.reference(await world.finished_job())
    assert embed["footer"]["text"].endswith(i18n.translate("result.job", "ja", reference=reference))
    if title_key is None:
        fields: list[dict[str, Any]] = embed["fields"]
        assert fields[0]["name"] == i18n.translate("result.model", "ja")
        labels = [c.get("label") for row in sent.components for c in row["components"]]
        assert i18n.translate("button.reroll", "ja") in labels
    else:
        assert embed["title"] == i18n.translate(title_key, "ja")
    assert [every_text(m) for m in public_messages(world) if JAPANESE.search(every_text(m))] == []


@pytest.mark.parametrize("kept", [True, False], ids=["member-locale", "stored-without-it"])
async def test_an_owed_answer_whose_reply_is_gone_follows_up_in_the_members_locale(world: World, kept: bool) -> None:
    """The quota refuses the request after the defer (which deletes the public reply), and Discord refuses the
    private refusal until discord.py gives up: the sweep owes the member an answer, a private follow-up, in their
    locale; in the reply's (the server's: German here) when the record does not have it (written before it was)."""
    world.guild.locale = "de"
    await world.store.quotas.set_rule(world.guild.id, RuleScope.MEMBER, 0, Period.DAY)
    refusals = world.discord.inject_429("POST /webhooks/*", times=5, retry_after=0.01)

    call = await imagine_as(world, "a kite over the dunes", "ja")
    await world.discord.wait_for(lambda: call.original is not None and call.original.deleted, 10)
    await world.interactions_handled()
    assert refusals.remaining == 0
    if not kept:
        await world.store.db.execute("UPDATE owed_answers SET member_locale = NULL")

    await world.bot.services.owed_answers.answer_left_over(OwedAnswerer(world.bot))

    (answer,) = call.followups
    assert answer.ephemeral
    locale = "ja" if kept else "de"
    assert answer.content == i18n.translate("owed.unanswered", locale)
    (echoed,) = answer.embeds
    assert echoed["title"] == i18n.translate("embed.your_prompt", locale)
    assert "a kite over the dunes" in echoed["description"]
    assert await world.store.owed_answers.count() == 0
    assert [every_text(m) for m in public_messages(world) if JAPANESE.search(every_text(m))] == []


async def test_a_reroll_speaks_the_clickers_locale_privately(world: World) -> None:
    """Alice (Japanese) asked; Bob, whose Discord speaks German, re-rolls her result: the re-roll is his request, so
    what he alone reads about it (its content-policy refusal) is in German."""
    first = await imagine_as(world, "a battle at sea", "ja")
    await world.discord.wait_for(lambda: delivered(first), 15, what="the images")
    parent = await world.finished_job()
    assert first.original is not None
    bob = world.guild.add_member("bob")
    world.api.queue_timeline(Timeline.content_policy())

    click = await world.discord.click(first.original, f"imagine:reroll:{parent.id}", bob, locale="de")

    async def rerolled() -> Job | None:
        found = [job for job in await world.jobs() if job.parent_job_id == parent.id and job.is_finished]
        return found[0] if found else None

    job: Job = await wait_until(rerolled)
    assert (job.user_id, job.locale, job.member_locale) == (bob.id, "en-US", "de")
    notice = await world.discord.wait_for(lambda: next((m for m in click.followups if not m.deleted), None), 15)
    assert_told_privately(notice, "de", "a battle at sea")

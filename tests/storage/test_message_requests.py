"""The claims of messages that ask for images: once per message, whoever claims it, and what a crash left owed."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from storage.database import Database
from storage.jobs import JobKind, JobRepository
from storage.message_requests import MessageRequestRepository
from tests.storage.conftest import FakeClock

GUILD, CHANNEL, MEMBER = 700_000_000_000_000_001, 800_000_000_000_000_001, 900_000_000_000_000_001


async def claim(requests: MessageRequestRepository, message_id: int) -> bool:
    return await requests.claim(message_id, guild_id=GUILD, channel_id=CHANNEL, user_id=MEMBER, locale="ja")


async def test_a_message_is_claimed_once_however_many_claim_it_at_once(db: Database, clock: FakeClock) -> None:
    requests = MessageRequestRepository(db, clock)
    won = await asyncio.gather(*(claim(requests, 1) for _ in range(20)))
    assert won.count(True) == 1
    assert await claim(requests, 1) is False
    assert await claim(requests, 2) is True
    stored = await requests.get(1)
    assert stored is not None
    assert (stored.guild_id, stored.channel_id, stored.user_id, stored.locale) == (GUILD, CHANNEL, MEMBER, "ja")
    assert (stored.reply_message_id, stored.job_id, stored.answered_at) == (None, None, None)
    assert stored.created_at == clock.now


async def test_what_a_claim_became_and_what_is_still_owed(db: Database, clock: FakeClock) -> None:
    requests = MessageRequestRepository(db, clock)
    jobs = JobRepository(db, clock)
    for message_id in (1, 2, 3, 4):
        await claim(requests, message_id)
    await requests.set_reply(1, 101)  # replied to, then admitted
    job = await jobs.create(
        guild_id=GUILD, channel_id=CHANNEL, user_id=MEMBER, kind=JobKind.MESSAGE, prompt="a cat", n=1, model="m"
    )
    await requests.attach_job(1, job.id)
    await requests.answered(2)  # refused
    await requests.set_reply(3, 103)  # replied to, then the process died
    start = clock.advance(minutes=1)
    await claim(requests, 5)  # after the start: not owed (it is being answered now)

    owed = await requests.unanswered(since=start - timedelta(days=1), before=start)

    assert [(r.source_message_id, r.reply_message_id) for r in owed] == [(3, 103), (4, None)]
    first = await requests.get(1)
    assert first is not None
    assert (first.reply_message_id, first.job_id) == (101, job.id)
    answered = await requests.get(2)
    assert answered is not None
    assert answered.answered_at == start - timedelta(minutes=1)
    await requests.answered(2)  # again: the first answer's time stays
    assert (await requests.get(2)) == answered
    assert await requests.unanswered(since=start, before=start + timedelta(minutes=1)) != []
    assert await requests.unanswered(since=start - timedelta(days=1), before=start - timedelta(minutes=2)) == []


async def test_old_claims_are_purged(db: Database, clock: FakeClock) -> None:
    requests = MessageRequestRepository(db, clock)
    await claim(requests, 1)
    cutoff = clock.advance(days=30)
    await claim(requests, 2)
    assert await requests.purge_older_than(cutoff) == 1
    assert await requests.get(1) is None
    assert await requests.get(2) is not None

"""Every acknowledged request ends as exactly one of: a job, or an answer (generation/owed_answers.py).

Admission takes the request's record in the job's own transaction, so a refused admission leaves it (to be
answered) and an admitted one leaves none; what a stopped process left is answered once, for this process's
servers only, and what Discord could not take yet is tried again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import sys
from datetime import timedelta

import pytest

from generation.owed_answers import Outcome, OwedAnswers
from generation.refusals import AnsweredElsewhere, QuotaExceeded
from storage.owed_answers import LEFT, OwedAnswer
from storage.quotas import Period, RuleScope
from storage.store import Storage
from tests.generation.conftest import Harness, request


def owed(interaction_id: int, *, guild_id: int = 1, at: Storage) -> OwedAnswer:
    return OwedAnswer(
        interaction_id=interaction_id,
        guild_id=guild_id,
        channel_id=500,
        user_id=100,
        application_id=7,
        interaction_token="token",
        token_expires_at=at.clock() + timedelta(minutes=15),
        reply_message_id=900 + interaction_id,
        prompt="a lighthouse at dusk",
        options={"n": 1},
        locale="en-US",
        channel_postable=True,
    )


class Answers:
    """An answerer that records what it was asked and answers as told."""

    def __init__(self, *outcomes: Outcome | Exception) -> None:
        self.outcomes = list(outcomes)
        self.asked: list[int] = []
        self.called = asyncio.Event()

    async def __call__(self, owed: OwedAnswer) -> Outcome:
        self.asked.append(owed.interaction_id)
        self.called.set()
        outcome = self.outcomes.pop(0) if self.outcomes else Outcome.ANSWERED
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


async def test_admission_takes_the_record_with_the_job(harness: Harness) -> None:
    config = harness.config()
    pipeline = await harness.start(owner=config.owner)
    store = harness.store
    assert store is not None
    book = OwedAnswers(store, config)
    assert await book.record(owed(1, at=store))

    job = await harness.submit(pipeline, dataclasses.replace(request(), owed_interaction_id=1))

    assert await store.owed_answers.count() == 0
    assert (await store.jobs.get(job.id)) is not None


async def test_a_refused_admission_leaves_the_record_to_be_answered(harness: Harness) -> None:
    config = harness.config()
    pipeline = await harness.start(owner=config.owner)
    store = harness.store
    assert store is not None
    await store.quotas.set_rule(1, RuleScope.MEMBER, 0, Period.DAY)
    book = OwedAnswers(store, config)
    assert await book.record(owed(1, at=store))

    with pytest.raises(QuotaExceeded):
        await harness.submit(pipeline, dataclasses.replace(request(), owed_interaction_id=1))

    # Rolled back with the reservation: the intake answers the refusal and settles it.
    assert await store.owed_answers.count() == 1
    assert await store.jobs.list_unfinished() == []


async def test_a_record_another_process_took_stops_the_admission(harness: Harness) -> None:
    config = harness.config()
    pipeline = await harness.start(owner=config.owner)
    store = harness.store
    assert store is not None
    await store.owed_answers.record(owed(1, at=store), owner="someone else", ttl_seconds=60)

    with pytest.raises(AnsweredElsewhere):
        await harness.submit(pipeline, dataclasses.replace(request(), owed_interaction_id=1))

    assert await store.jobs.list_unfinished() == []
    assert await store.db.fetch_all("SELECT job_id FROM quota_ledger") == []


async def test_the_start_answers_what_a_previous_run_left_and_not_its_own(harness: Harness) -> None:
    store = await harness.open_store()
    previous = OwedAnswers(store, harness.config())
    for interaction_id in (1, 2):
        assert await previous.record(owed(interaction_id, at=store))
    now = OwedAnswers(store, harness.config())
    assert await now.record(owed(3, at=store))  # this run's own, in progress
    answers = Answers()

    assert await now.answer_left_over(answers) == 2

    assert sorted(answers.asked) == [1, 2]
    assert [o.interaction_id for o in await store.owed_answers.orphans("nobody", expired_only=False)] == [3]


async def test_only_this_processs_servers_are_answered(harness: Harness) -> None:
    store = await harness.open_store()
    previous = OwedAnswers(store, harness.config())
    assert await previous.record(owed(1, guild_id=1, at=store))
    assert await previous.record(owed(2, guild_id=2, at=store))
    answers = Answers()
    shard = OwedAnswers(store, harness.config(owns_guild=lambda guild_id: guild_id == 2))

    assert await shard.answer_left_over(answers) == 1
    assert answers.asked == [2]
    assert await store.owed_answers.count() == 1


async def test_what_discord_could_not_take_is_tried_again_and_what_is_gone_is_dropped(harness: Harness) -> None:
    store = await harness.open_store()
    previous = OwedAnswers(store, harness.config())
    for interaction_id in (1, 2, 3):
        assert await previous.record(owed(interaction_id, at=store))
    now = OwedAnswers(store, harness.config())
    failing = Answers(Outcome.RETRY, Outcome.GONE, RuntimeError("Discord is down"))

    assert await now.answer_left_over(failing) == 0

    # The gone one is forgotten; the other two wait, given up so that any process's next pass takes them, still
    # marked as left by a stopped process (their answer says the bot restarted).
    left = await store.owed_answers.orphans(now.owner, expired_only=False)
    assert sorted(o.interaction_id for o in left) == [1, 3]
    assert {o.owner for o in left} == {LEFT}
    assert await now.answer_left_over(Answers()) == 2
    assert await store.owed_answers.count() == 0


async def test_with_leases_the_start_answers_the_records_of_a_stopped_process_of_this_host_at_once(
    harness: Harness,
) -> None:
    """A restart on a shared database: the previous process's claims still run (an hour here), but it ran on this
    host and has stopped, so its members are answered at start-up, not once the claims run out. Another shard's
    records are left to the process that serves it; a process on another host (a deploy's overlap) may still run,
    so its records wait for its claims to run out."""
    store = await harness.open_store()
    ttl = 3600.0
    stopped = await a_stopped_pid()
    previous = OwedAnswers(store, harness.config(lease_ttl=ttl, owner=f"{socket.gethostname()}:{stopped}:0a1b2c3d"))
    elsewhere = OwedAnswers(store, harness.config(lease_ttl=ttl, owner="another-host:1:0a1b2c3d"))
    assert await previous.record(owed(1, guild_id=1, at=store))
    assert await previous.record(owed(2, guild_id=2, at=store))
    assert await elsewhere.record(owed(3, guild_id=1, at=store))
    answers = Answers()
    restarted = OwedAnswers(store, harness.config(lease_ttl=ttl, owns_guild=lambda guild_id: guild_id == 1))

    assert await restarted.answer_left_over(answers, at_start=True) == 1

    assert answers.asked == [1]
    left = await store.owed_answers.orphans("nobody", expired_only=False)
    assert sorted((o.interaction_id, o.owner) for o in left) == [(2, previous.owner), (3, elsewhere.owner)]


async def a_stopped_pid() -> int:
    """The process id of a process of this host that has ended."""
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await child.wait()
    return child.pid


async def test_with_leases_a_live_process_keeps_its_records_and_answers_a_dead_ones(harness: Harness) -> None:
    store = await harness.open_store()
    ttl = 0.3
    alive = OwedAnswers(store, harness.config(lease_ttl=ttl))
    dead = OwedAnswers(store, harness.config(lease_ttl=ttl))
    assert await alive.record(owed(1, at=store))
    assert await dead.record(owed(2, at=store))
    answers = Answers()

    assert await alive.answer_left_over(answers) == 0  # the other's claim is live
    harness.clock.advance(seconds=ttl * 2)  # both claims run out; only the live process renews its own
    keeping = asyncio.create_task(alive.keep(answers))
    try:
        async with asyncio.timeout(10):
            await answers.called.wait()
    finally:
        keeping.cancel()

    assert answers.asked == [2]
    (left,) = await store.owed_answers.orphans("nobody", expired_only=False)
    assert (left.interaction_id, left.owner) == (1, alive.owner)


async def test_a_message_another_process_answered_meanwhile_becomes_no_job(harness: Harness) -> None:
    """A request in the conversation whose admission stalled past the owed grace: another process's start-up
    answered its claim (nothing was counted, it said). The admission that comes after must not make a job too."""
    pipeline = await harness.start()
    store = harness.store
    assert store is not None
    assert await store.message_requests.claim(77, guild_id=1, channel_id=500, user_id=100, locale="en-US")
    await store.message_requests.set_reply(77, 901)
    await store.message_requests.answered(77)  # the other process's `MessageIntake.answer_owed`

    with pytest.raises(AnsweredElsewhere):
        await harness.submit(pipeline, dataclasses.replace(request(), source_message_id=77))

    assert await store.jobs.list_unfinished() == []
    assert await store.db.fetch_all("SELECT job_id FROM quota_ledger") == []
    claim = await store.message_requests.get(77)
    assert claim is not None
    assert claim.job_id is None

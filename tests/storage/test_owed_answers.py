"""Owed answers: written right after a deferral, taken by admission or settled by an answer, and what a stopped
process left found, claimed once, and given up again when answering it failed."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from storage.database import Database
from storage.errors import StorageError
from storage.owed_answers import OwedAnswer, OwedAnswerRepository
from tests.storage.conftest import FakeClock

TTL = 30.0


@pytest.fixture
def owed(db: Database, clock: FakeClock) -> OwedAnswerRepository:
    return OwedAnswerRepository(db, clock)


def request(clock: FakeClock, interaction_id: int = 1001, **changes: object) -> OwedAnswer:
    base = OwedAnswer(
        interaction_id=interaction_id,
        guild_id=10,
        channel_id=20,
        user_id=30,
        application_id=40,
        interaction_token="secret-token",
        token_expires_at=clock.now + timedelta(minutes=15),
        reply_message_id=50,
        prompt="a lighthouse ``` at dawn",
        options={"kind": "imagine", "n": 2, "aspect": "16:9", "attachments": 4},
        locale="ja",
        channel_postable=True,
        member_locale="de",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def test_a_record_reads_back_as_written_and_its_token_stays_out_of_its_repr(
    owed: OwedAnswerRepository, clock: FakeClock
) -> None:
    written = request(clock)
    await owed.record(written, owner="a", ttl_seconds=TTL)

    (found,) = await owed.orphans("b", expired_only=False)
    assert found == replace(
        written, owner="a", created_at=clock.now, claim_expires_at=clock.now + timedelta(seconds=TTL)
    )
    assert "secret-token" not in repr(found)
    assert (found.locale, found.member_locale, found.private_locale) == ("ja", "de", "de")
    assert await owed.orphans("a", expired_only=False) == []


async def test_a_loaders_request_has_no_prompt_yet(owed: OwedAnswerRepository, clock: FakeClock) -> None:
    await owed.record(request(clock, prompt=None, options={}), owner="a", ttl_seconds=TTL)
    (found,) = await owed.orphans("b", expired_only=False)
    assert (found.prompt, found.options) == (None, {})


async def test_one_request_is_recorded_once(owed: OwedAnswerRepository, clock: FakeClock) -> None:
    await owed.record(request(clock), owner="a", ttl_seconds=TTL)
    with pytest.raises(StorageError):
        await owed.record(request(clock), owner="a", ttl_seconds=TTL)
    assert await owed.count() == 1


async def test_admission_takes_its_own_record_only(owed: OwedAnswerRepository, clock: FakeClock) -> None:
    await owed.record(request(clock), owner="a", ttl_seconds=TTL)
    assert not await owed.take(1001, "b")  # another process's
    assert not await owed.take(9999, "a")  # none
    assert await owed.take(1001, "a")
    assert not await owed.take(1001, "a")
    assert await owed.count() == 0


async def test_a_claimed_record_is_no_longer_its_writers_to_take(owed: OwedAnswerRepository, clock: FakeClock) -> None:
    """The process that stalled past its claim finds its record gone to another: its admission must stop."""
    await owed.record(request(clock), owner="a", ttl_seconds=TTL)
    clock.advance(seconds=TTL + 1)
    (left,) = await owed.orphans("b", expired_only=True)
    assert await owed.claim(left, "b", TTL)
    assert not await owed.take(1001, "a")
    assert await owed.count() == 1


async def test_with_shared_databases_only_expired_claims_are_orphans(
    owed: OwedAnswerRepository, clock: FakeClock
) -> None:
    await owed.record(request(clock, 1), owner="a", ttl_seconds=TTL)
    clock.advance(seconds=TTL / 2)
    await owed.record(request(clock, 2), owner="a", ttl_seconds=TTL)
    assert await owed.orphans("b", expired_only=True) == []
    clock.advance(seconds=TTL / 2)
    assert [o.interaction_id for o in await owed.orphans("b", expired_only=True)] == [1]
    # Renewed, it is a live process's again.
    assert await owed.renew("a", TTL) == 2
    assert await owed.orphans("b", expired_only=True) == []


async def test_of_two_processes_claiming_at_once_one_gets_it(owed: OwedAnswerRepository, clock: FakeClock) -> None:
    await owed.record(request(clock), owner="gone", ttl_seconds=TTL)
    clock.advance(seconds=TTL + 1)
    (left,) = await owed.orphans("b", expired_only=True)
    results = await asyncio.gather(*(owed.claim(left, name, TTL) for name in ("b", "c", "d")))
    assert sorted(results) == [False, False, True]


async def test_a_released_record_is_anyones_at_once(owed: OwedAnswerRepository, clock: FakeClock) -> None:
    await owed.record(request(clock), owner="gone", ttl_seconds=TTL)
    clock.advance(seconds=TTL + 1)
    (left,) = await owed.orphans("b", expired_only=True)
    assert await owed.claim(left, "b", TTL)
    assert not await owed.release(1001, "c")
    assert await owed.release(1001, "b")
    (again,) = await owed.orphans("b", expired_only=True)
    assert again.owner == ""
    assert await owed.claim(again, "c", TTL)


async def test_settling_forgets_the_request(owed: OwedAnswerRepository, clock: FakeClock) -> None:
    await owed.record(request(clock), owner="a", ttl_seconds=TTL)
    await owed.settle(1001)
    await owed.settle(1001)  # twice is harmless
    assert await owed.count() == 0

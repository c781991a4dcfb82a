"""Admissions wait for the first answers of the requests still waiting for theirs (cogs/_first_answers.py)."""

from __future__ import annotations

import asyncio

from cogs._first_answers import FirstAnswers


async def test_nothing_waiting_means_no_wait() -> None:
    answers = FirstAnswers()
    settled = asyncio.create_task(answers.settled())
    await asyncio.sleep(0)
    assert settled.done()


async def test_an_admission_waits_until_every_request_has_its_first_answer() -> None:
    answers = FirstAnswers(wait=60)
    with answers.waiting():
        with answers.waiting():
            assert answers.pending == 2
            settled = asyncio.create_task(answers.settled())
            await asyncio.sleep(0)
            assert not settled.done()
        await asyncio.sleep(0)
        assert not settled.done()  # one request still waits for its answer
    await asyncio.wait_for(settled, 5)
    assert answers.pending == 0


async def test_a_first_answer_that_fails_ends_the_wait_too() -> None:
    answers = FirstAnswers(wait=60)
    settled = None
    try:
        with answers.waiting():
            settled = asyncio.create_task(answers.settled())
            raise RuntimeError("the defer failed")
    except RuntimeError:
        pass
    assert settled is not None
    await asyncio.wait_for(settled, 5)


async def test_a_stream_of_requests_holds_an_admission_up_for_the_limit_at_most() -> None:
    answers = FirstAnswers(wait=0.01)
    with answers.waiting():
        await asyncio.wait_for(answers.settled(), 5)  # returns although a request still waits
        assert answers.pending == 1

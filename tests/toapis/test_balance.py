"""GET /balance: the circuit breaker's way to see that an empty account was topped up, without a billed submit."""

from __future__ import annotations

import pytest

from tests.fakes.toapis import Endpoint, FakeToAPIs, Fault
from toapis import AccountBalance, InsufficientBalanceError, ToAPIsClient


async def test_the_balance_is_read_and_an_empty_account_refuses_submits(
    toapis_fake: FakeToAPIs, toapis_client: ToAPIsClient
) -> None:
    balance = await toapis_client.get_balance()
    assert balance == AccountBalance(found=True, remain_balance=100.0, remain_credits=1000.0)
    assert not balance.exhausted

    toapis_fake.remain_balance = toapis_fake.remain_credits = 0
    assert (await toapis_client.get_balance()).exhausted
    with pytest.raises(InsufficientBalanceError):
        await toapis_client.submit_generation(prompt="a cat", n=1, client_business_id="job-1")
    assert toapis_fake.tasks_for("job-1") == []

    toapis_fake.remain_credits = 3
    assert not (await toapis_client.get_balance()).exhausted
    task = await toapis_client.submit_generation(prompt="a cat", n=1, client_business_id="job-2")
    assert task.id


async def test_an_account_the_api_does_not_find_is_not_called_exhausted(
    toapis_fake: FakeToAPIs, toapis_client: ToAPIsClient
) -> None:
    toapis_fake.fail(Endpoint.BALANCE, Fault.answer(200, {"success": False, "message": "not found"}))
    balance = await toapis_client.get_balance()
    assert balance == AccountBalance(found=False)
    assert not balance.exhausted


@pytest.mark.parametrize(
    ("balance", "credits", "exhausted"),
    [
        (0.0, 0.0, True),
        (-1.0, 0.0, True),
        (0.01, 0.0, False),
        (0.0, 1.0, False),
        (None, 0.0, True),
        (None, None, False),
    ],
)
def test_exhausted_only_when_nothing_remains(balance: float | None, credits: float | None, exhausted: bool) -> None:
    assert AccountBalance(found=True, remain_balance=balance, remain_credits=credits).exhausted is exhausted

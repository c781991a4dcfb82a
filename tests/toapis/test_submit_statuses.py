"""Submit answers the documentation does not show: a 2xx other than 200 is a success, a 409 is ambiguous."""

from __future__ import annotations

from tests.fakes.toapis import Endpoint, FakeToAPIs, Fault
from toapis import ToAPIsClient


async def test_a_202_with_a_task_is_a_success(toapis_fake: FakeToAPIs, toapis_client: ToAPIsClient) -> None:
    body = {"id": "task_img_accepted", "object": "generation.task", "status": "queued", "progress": 0}
    toapis_fake.fail(Endpoint.SUBMIT, Fault.answer(202, body))
    task = await toapis_client.submit_generation(prompt="a cat", n=1, client_business_id="job-202")
    assert task.id == "task_img_accepted"
    assert len(toapis_fake.requests_to(Endpoint.SUBMIT)) == 1


async def test_a_409_is_resolved_by_looking_the_business_id_up(
    toapis_fake: FakeToAPIs, toapis_client: ToAPIsClient
) -> None:
    # The task was created, then the answer said "conflict": the client must find it, not submit again.
    conflict = {"error": {"code": "conflict", "message": "duplicate client_business_id", "type": "conflict"}}
    toapis_fake.fail(Endpoint.SUBMIT, Fault.answer(409, conflict), after_effect=True)
    task = await toapis_client.submit_generation(prompt="a cat", n=1, client_business_id="job-409")
    (created,) = toapis_fake.tasks_for("job-409")
    assert task.id == created.id
    assert len(toapis_fake.requests_to(Endpoint.SUBMIT)) == 1

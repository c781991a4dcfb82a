"""The real ``python bot.py`` with webhooks on: it listens on WEBHOOK_PORT, sends ``callback_url``, and a job is
delivered by the webhook (with a 5 s poll interval the safety look-ups come every 30 s, far beyond the wait);
the secret never shows; ``--check`` says webhooks are on, then that ToAPIs refused them."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import STEP_TIMEOUT, World, delivered
from tests.e2e.test_operations import closed_port, marks, run_bot
from tests.fakes.toapis import Endpoint

pytestmark = pytest.mark.e2e

SECRET = "whsec_e2e_0123456789abcdef0123456789"
PUBLIC_URL = "https://imagine.example.test/toapis/webhook"


async def test_a_job_is_delivered_by_its_webhook_and_check_reports_the_setup(world: World) -> None:
    port = closed_port()
    webhooks = {
        "TOAPIS_WEBHOOK_SECRET": SECRET,
        "WEBHOOK_PUBLIC_URL": PUBLIC_URL,
        "WEBHOOK_PORT": str(port),
        "TOAPIS_POLL_INTERVAL": "5",
    }
    world.api.webhooks.configure(url=PUBLIC_URL, secret=SECRET, forward_to=f"http://127.0.0.1:{port}")
    async with world.bot(**webhooks) as bot:
        call = await world.imagine(world.member("alice"), "a lighthouse announced by webhook")
        await world.discord.wait_for(lambda: delivered(call), STEP_TIMEOUT, what="the delivery")
        (submit,) = world.api.requests_to(Endpoint.SUBMIT)
        assert submit.json["callback_url"] == PUBLIC_URL
        task_id = world.api.tasks_for(submit.json["client_business_id"])[0].id
        assert [d.status for d in world.api.webhooks.of_task(task_id)] == [200]
        assert sum(1 for r in world.api.requests_to(Endpoint.LOOKUP) if r.path.endswith(task_id)) == 1
        assert bot.matching(rf"ToAPIs webhooks received on http://127\.0\.0\.1:{port}")
    assert world.rows("SELECT COUNT(*) AS n FROM webhook_events")[0]["n"] == 1

    check = await run_bot(world, "--check", **webhooks)
    assert marks(check)["webhooks"] == "✓"
    # Task Webhooks turned off in the console: the next job falls back to polling, and --check says so.
    world.api.webhooks.enabled = False
    async with world.bot(**webhooks | {"TOAPIS_POLL_INTERVAL": "0.05"}):
        call = await world.imagine(world.member("bob"), "a lighthouse found by polling")
        await world.discord.wait_for(lambda: delivered(call), STEP_TIMEOUT, what="the delivery by polling")
    check = await run_bot(world, "--check", **webhooks)
    assert marks(check)["webhooks"] == "⚠"
    assert check.matching("webhook_not_configured|not configured")
    for process in world.processes:
        assert SECRET not in "\n".join(process.lines)

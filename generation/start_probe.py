"""At start-up, one probe of ToAPIs: a rejected key is an error in the log at once, not the first member's
surprise. The bot starts either way; a rejected key also opens the circuit breaker now (generation/upstream.py),
which keeps refusing requests until the key works."""

from __future__ import annotations

import logging

from generation.upstream import UpstreamHealth
from toapis import ToAPIsClient

log = logging.getLogger(__name__)


async def probe_at_start(client: ToAPIsClient, health: UpstreamHealth) -> None:
    """Probe `GET /models` once and say what it found."""
    status = await client.check_health()
    if status.ok:
        log.info("ToAPIs answers and accepts the key (%.2f s)", status.latency)
    elif status.key_accepted is False and status.error is not None:
        log.error(
            "ToAPIs rejected TOAPIS_API_KEY (%s): no image can be generated until it is fixed. Check the key "
            "(python bot.py --check).",
            status.reason,
        )
        health.service_problem(status.error)
    elif status.error is not None and status.key_accepted is True:
        # Answered, but refused for the account (an empty balance): the same breaker.
        log.error("ToAPIs refuses the account: %s", status.reason)
        health.service_problem(status.error)
    else:
        log.warning("ToAPIs did not answer the start-up probe (%s): jobs wait for it", status.reason)

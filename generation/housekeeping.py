"""Periodic upkeep: reference images (and results nobody could receive) are kept `RETENTION_DAYS`, then deleted;
forms whose time is over go too, and so do the claims of messages older than that. Quota reservations go once
they can count in no period (`LEDGER_KEPT`).

The usage log is never purged.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from storage.store import Storage

log = logging.getLogger(__name__)

PURGE_INTERVAL = 3600.0
# The longest period a rule counts over is a calendar month, and a job ends within a day of its reservation: a
# reservation older than this counts nowhere and holds nothing to refund.
LEDGER_KEPT = timedelta(days=62)


async def purge_expired_references(store: Storage, *, retention_days: int) -> int:
    """Delete the reference images saved more than `retention_days` ago, with undelivered results kept as long
    and forms whose time is over; returns the jobs whose references went."""
    cutoff = store.clock() - timedelta(days=retention_days)
    await store.kept_results.purge_older_than(cutoff)
    await store.forms.purge_expired()
    await store.message_requests.purge_older_than(cutoff)
    await store.quotas.purge_reserved_before(store.clock() - LEDGER_KEPT)
    return await store.references.purge_older_than(cutoff)


async def keep_tidy(store: Storage, *, retention_days: int, interval: float = PURGE_INTERVAL) -> None:
    """Purge now, then every `interval` seconds, until cancelled. A failed round is logged and retried later."""
    while True:
        try:
            await purge_expired_references(store, retention_days=retention_days)
        except Exception:
            log.exception("Purging expired reference images failed; trying again in %.0f s", interval)
        await asyncio.sleep(interval)

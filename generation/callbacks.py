"""The `callback_url` each submit sends when webhooks are on, and what happens when ToAPIs refuses it.

ToAPIs answers a submit that sends `callback_url` with `400 webhook_not_configured` when the key's Token has
webhooks off, or no URL or secret (toapis/contract.py), and with a 400 naming `callback_url` when the URL's
scheme, host or port differ from the Token's (`CallbackURLRefusedError`, a `WebhookNotConfiguredError`: webhooks
cannot reach it either). A 400 creates no task, so the job submits again without
it and is followed by polling alone; this process stops sending `callback_url` for an hour (then tries once
more: the operator may have fixed the console meanwhile). The problem is recorded in the database, where
`python bot.py --check` reads it, and the operator is alerted when it is first recorded: once, whichever
process or restart meets it again, until a `callback_url` is accepted (docs/operators.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from generation.alerts import AlertKind, AlertThrottle
from storage.webhook_events import WebhookEvents
from toapis import WebhookNotConfiguredError, contract

log = logging.getLogger(__name__)

NOT_CONFIGURED: Final = contract.WEBHOOK_NOT_CONFIGURED_CODE
"""The problem's name in the database (`webhook_problems`)."""


class WebhookCallbacks:
    """Whether submits send `callback_url` now, and the fallback when ToAPIs says webhooks are not set up."""

    def __init__(
        self,
        url: str,
        *,
        events: WebhookEvents,
        alerts: AlertThrottle | None,
        retry_after: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._events = events
        self._alerts = alerts
        self._retry_after = retry_after
        self._clock = clock
        self._off_until: float | None = None
        # What the last answer to a callback_url said (as recorded, from `load`; hopeful until then): whether
        # tasks submitted now will have their end announced. A refusal makes it False until a callback_url is
        # accepted again.
        self._working = True
        self._problem_may_be_recorded = True  # until this process has cleared it once

    async def load(self) -> None:
        """Start from what is recorded: after a refusal (by this process before a restart, or by another), tasks
        were submitted without callback_url and no webhook announces their end, until one is accepted again. The
        next submit still sends callback_url: the operator may have fixed the console meanwhile."""
        try:
            problems = await self._events.problems()
        except Exception:
            # Unknown: assume the worst, which costs only look-ups at the usual interval until a submit says.
            log.exception("Could not read whether ToAPIs refused callback_url before; polling as usual until it says")
            self._working = False
            return
        self._working = all(problem.problem != NOT_CONFIGURED for problem in problems)

    @property
    def url(self) -> str | None:
        """What the next submit sends as `callback_url`; None while ToAPIs refuses it."""
        if self._off_until is not None and self._clock() < self._off_until:
            return None
        return self._url

    @property
    def announces_ends(self) -> bool:
        """Whether a webhook will announce the end of a task submitted now (so look-ups may be rare): not after a
        refusal, until a `callback_url` is accepted again."""
        return self._working and self.url is not None

    async def refused(self, error: WebhookNotConfiguredError) -> None:
        """ToAPIs refused `callback_url`: submit without it from now on (for a while), record it, tell once."""
        self._off_until = self._clock() + self._retry_after
        self._working = False
        self._problem_may_be_recorded = True
        detail = f"{error.message} (HTTP {error.status})" if error.status else error.message
        log.warning(
            "ToAPIs refused callback_url (%s): submitting without it and polling; turn Task Webhooks on for this "
            "key's Token in the ToAPIs console, with the scheme, host and port of WEBHOOK_PUBLIC_URL",
            detail,
        )
        try:
            first = await self._events.note_problem(NOT_CONFIGURED, detail)
        except Exception:
            # Better told twice than never: the operator is the one who can fix it.
            log.exception("Could not record that webhooks are not configured")
            first = True
        if first and self._alerts is not None:
            self._alerts.raise_alert(AlertKind.WEBHOOK_NOT_CONFIGURED, detail)

    async def accepted(self) -> None:
        """A submit with `callback_url` was accepted: webhooks are set up, whatever was recorded before."""
        self._working = True
        if not self._problem_may_be_recorded:
            return
        try:
            if await self._events.clear_problem(NOT_CONFIGURED):
                log.info("ToAPIs accepts callback_url again: task webhooks are on")
                if self._alerts is not None:
                    self._alerts.resolve(AlertKind.WEBHOOK_NOT_CONFIGURED)
        except Exception:
            log.exception("Could not clear the record that webhooks are not configured")
            return
        self._problem_may_be_recorded = False

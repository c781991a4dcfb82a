"""What the cog hands the pipeline (a validated request) and what it gets back when it is refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from storage.jobs import JobKind
from storage.quotas import Period, RuleScope, RuleUsage

UNAVAILABLE_REASON = "Imagine cannot generate images right now. Please try again later."
RESTARTING_REASON = "Imagine is restarting. Please try again in a minute."


@dataclass(frozen=True)
class Reference:
    """A reference image as prepared by `validation.prepare_references`: bytes that fit the upload limit."""

    data: bytes = field(repr=False)
    mime_type: str


@dataclass(frozen=True)
class JobRequest:
    """A validated request: the prompt is trimmed, the size and n are allowed, the references decoded."""

    guild_id: int
    channel_id: int
    user_id: int
    prompt: str
    size: str
    n: int
    role_ids: frozenset[int] = frozenset()
    references: tuple[Reference, ...] = ()
    kind: JobKind = JobKind.IMAGINE
    parent_job_id: str | None = None
    application_id: int | None = None
    interaction_token: str | None = field(default=None, repr=False)
    token_expires_at: datetime | None = None
    reply_message_id: int | None = None


class JobRefused(Exception):
    """The request was not accepted; nothing was reserved, stored or uploaded.

    `reason` is for the member; `quota` is the rule that refused it, when a quota did.
    """

    def __init__(self, reason: str, *, quota: RuleUsage | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.quota = quota


_PERIOD_WORDS = {Period.DAY: "daily", Period.WEEK: "weekly", Period.MONTH: "monthly"}


def quota_reason(usage: RuleUsage | None, requested: int) -> str:
    """What the member is told about a quota refusal: which rule, what is left, and when it resets."""
    if usage is None:
        return "A quota was reached."
    period = _PERIOD_WORDS[usage.period]
    whose = {
        RuleScope.SERVER: f"This server's {period} limit",
        RuleScope.MEMBER: f"Your {period} limit",
        RuleScope.ROLE: f"Your role's {period} limit",
        RuleScope.GLOBAL: f"Imagine's {period} limit across all servers",
    }[usage.scope]
    images = "image" if usage.limit == 1 else "images"
    resets = usage.resets_at.strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{whose} is {usage.limit} {images}: {usage.remaining} left, and this request needs {requested}. "
        f"It resets at {resets}."
    )

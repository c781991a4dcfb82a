"""What the cogs hand the pipeline: a validated request, with its references prepared."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from storage.jobs import JobKind


@dataclass(frozen=True)
class Reference:
    """A reference image as prepared by `validation.prepare_references`: bytes that fit the upload limit."""

    data: bytes = field(repr=False)
    mime_type: str


@dataclass(frozen=True)
class JobRequest:
    """A validated request: the prompt is trimmed, the model, aspect, resolution and n are offered, the
    references decoded."""

    guild_id: int
    channel_id: int
    user_id: int
    prompt: str
    model: str
    aspect: str
    resolution: str
    n: int
    weight: int = 1
    """How many images each image counts as (the model's and resolution's weight, fixed now)."""
    role_ids: frozenset[int] = frozenset()
    references: tuple[Reference, ...] = ()
    kind: JobKind = JobKind.IMAGINE
    parent_job_id: str | None = None
    application_id: int | None = None
    interaction_token: str | None = field(default=None, repr=False)
    token_expires_at: datetime | None = None
    reply_message_id: int | None = None
    channel_postable: bool = True
    """Whether the bot may post in the channel (what outlives the reply goes to the member's DMs otherwise)."""
    locale: str = "en-US"
    """The Discord locale the job's public messages speak: the server's language (docs/i18n.md)."""
    member_locale: str | None = None
    """The requester's own Discord locale, which the job's private messages speak; None: not known (the public one)."""
    source_message_id: int | None = None
    """The member's message a request in the conversation came from (its claim names the job; docs/guarantees.md)."""
    owed_interaction_id: int | None = None
    """The interaction whose owed answer (generation/owed_answers.py) admission takes in the job's transaction."""

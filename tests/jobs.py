"""A stored job as tests need one without a database: every field set, each test changing what it is about."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from storage.jobs import Job, JobKind, JobState

CREATED = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def a_job(**changes: Any) -> Job:
    """A one-image /imagine job of gpt-image-2, just created, with `changes` made."""
    job = Job(
        id="0123456789abcdef0123456789abcdef",
        guild_id=1,
        channel_id=2,
        user_id=3,
        kind=JobKind.IMAGINE,
        parent_job_id=None,
        prompt="a lighthouse at dusk",
        n=1,
        model="gpt-image-2",
        aspect="1:1",
        resolution="1k",
        weight=1,
        reference_count=0,
        state=JobState.QUEUED,
        task_id=None,
        progress=0,
        submit_started_at=None,
        result_files=(),
        images_delivered=0,
        error_code=None,
        error_message=None,
        late_notified=False,
        application_id=None,
        interaction_token=None,
        token_expires_at=None,
        reply_message_id=None,
        result_message_id=None,
        delivered_at=None,
        created_at=CREATED,
        updated_at=CREATED,
        finished_at=None,
    )
    return dataclasses.replace(job, **changes)

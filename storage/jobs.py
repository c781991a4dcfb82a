"""Jobs: each generation request, stored at every step of the pipeline so it can be resumed after a restart.

A job moves forward through `JobState` (steps may be skipped, a state may be re-entered when a job is
resumed) and ends in `COMPLETED` or `FAILED`, which are final. Every change of state is recorded with its
time in `job_events`.

When several processes share the table, a lease says which one works a job: `claim` takes it (if nobody
holds it, its holder's lease expired, or it is ours already), `renew_leases` keeps a process's leases alive,
`release` lets one go. A process that dies stops renewing, and its jobs become claimable when the leases expire.
"""

from __future__ import annotations

import copy
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from storage.clock import Clock, from_epoch_ms, optional_from_epoch_ms, to_epoch_ms, utc_now
from storage.database import Database, Row
from storage.errors import InvalidTransitionError, JobNotFoundError, LeaseLostError

log = logging.getLogger(__name__)


class JobState(StrEnum):
    """Where a job is in the pipeline, in pipeline order."""

    QUEUED = "queued"
    UPLOADING = "uploading"
    SUBMITTING = "submitting"
    RUNNING = "running"
    DOWNLOADING = "downloading"
    DELIVERING = "delivering"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_finished(self) -> bool:
        """True for the final states: nothing moves a job out of them."""
        return self in _FINISHED


_FINISHED: Final = frozenset({JobState.COMPLETED, JobState.FAILED})
_ORDER: Final = {state: index for index, state in enumerate(JobState)}


def can_transition(current: JobState, new: JobState) -> bool:
    """Whether a job in `current` may move to `new`.

    Forward in pipeline order (skipping steps is fine: a job without references never uploads), staying in
    the same unfinished state (a resumed job re-enters it), or to `FAILED` from any unfinished state.
    `COMPLETED` is reached only from `DELIVERING`. Nothing leaves a finished state.
    """
    if current.is_finished:
        return False
    if new is JobState.FAILED:
        return True
    if new is JobState.COMPLETED:
        return current is JobState.DELIVERING
    return _ORDER[new] >= _ORDER[current]


class JobKind(StrEnum):
    """What started a job."""

    IMAGINE = "imagine"
    REROLL = "reroll"
    VARY = "vary"
    CONTEXT = "context"
    REMIX = "remix"
    MESSAGE = "message"
    """A message that mentions the bot (docs/members.md, "In the conversation")."""

    @property
    def source(self) -> str:
        """How the member asked, as the usage log records it: command, button, form or message."""
        return _SOURCES.get(self, "command")


_SOURCES: Final = {
    JobKind.REROLL: "button",
    JobKind.VARY: "button",
    JobKind.CONTEXT: "form",
    JobKind.REMIX: "form",
    JobKind.MESSAGE: "message",
}


@dataclass(frozen=True)
class Job:
    """A job as stored. Instants are aware UTC datetimes; Discord ids are ints."""

    id: str
    guild_id: int
    channel_id: int
    user_id: int
    kind: JobKind
    parent_job_id: str | None
    prompt: str
    n: int
    model: str
    aspect: str
    """An aspect ratio among the model's ("1:1", "16:9")."""
    resolution: str
    """A resolution tier among the model's ("1k", "2k", "4k")."""
    weight: int
    """How many images each of its images counts as, fixed when it was admitted."""
    reference_count: int
    state: JobState
    task_id: str | None
    progress: int
    # Set just before a submit is sent: a resumed job with this set and no task_id may exist upstream.
    submit_started_at: datetime | None
    result_files: tuple[str, ...]
    images_delivered: int
    error_code: str | None
    error_message: str | None
    late_notified: bool
    application_id: int | None
    interaction_token: str | None = field(repr=False)
    token_expires_at: datetime | None
    reply_message_id: int | None
    result_message_id: int | None
    delivered_at: datetime | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    lease_owner: str | None = None
    """The process working the job (see `JobRepository.claim`), if any."""
    lease_expires_at: datetime | None = None
    channel_postable: bool = True
    """Whether the bot may post in the job's channel (results past the reply's life go there, else by DM); set
    false when a result went by DM because the channel refused it (`record_delivery`)."""
    locale: str = "en-US"
    """The Discord locale its public messages speak (the server's, fixed at admission; docs/i18n.md)."""
    member_locale: str | None = None
    """The requester's own Discord locale at admission (`interaction.locale`); None when not known (a request in
    the conversation, a job stored before it was kept). Read it through `private_locale`."""
    result_deleted_at: datetime | None = None
    """When its result message was seen deleted (`note_results_deleted`); None while it stands, or not known."""

    @property
    def private_locale(self) -> str:
        """The locale of what the requester alone reads about the job (an ephemeral follow-up, a direct message):
        theirs, else the public `locale` (docs/i18n.md)."""
        return self.member_locale or self.locale

    @property
    def is_finished(self) -> bool:
        """True once the job is completed or failed."""
        return self.state.is_finished


@dataclass(frozen=True)
class JobEvent:
    """One change of a job's state."""

    job_id: str
    from_state: JobState | None
    state: JobState
    at: datetime


# Columns a caller may change, and how each is written. The SQL only ever names columns from this table.
_INSTANT: Final = "instant"
_FILES: Final = "files"
_BOOL: Final = "bool"
_PLAIN: Final = "plain"
_UPDATABLE: Final[dict[str, str]] = {
    "task_id": _PLAIN,
    "progress": _PLAIN,
    "submit_started_at": _INSTANT,
    "result_files": _FILES,
    "images_delivered": _PLAIN,
    "error_code": _PLAIN,
    "error_message": _PLAIN,
    "late_notified": _BOOL,
    "application_id": _PLAIN,
    "interaction_token": _PLAIN,
    "token_expires_at": _INSTANT,
    "reply_message_id": _PLAIN,
    "result_message_id": _PLAIN,
    "delivered_at": _INSTANT,
    "reference_count": _PLAIN,
    "channel_postable": _BOOL,
}


def _encode(name: str, value: Any) -> Any:
    if name not in _UPDATABLE:
        raise ValueError(f"job field {name!r} cannot be updated (updatable: {', '.join(sorted(_UPDATABLE))})")
    kind = _UPDATABLE[name]
    if value is None:
        return None
    if kind == _INSTANT:
        return to_epoch_ms(value)
    if kind == _FILES:
        if isinstance(value, str):
            raise TypeError("result_files takes a sequence of paths or URLs, not one string")
        return json.dumps([str(item) for item in value])
    if kind == _BOOL:
        return int(bool(value))
    return value


def _job_from_row(row: Row) -> Job:
    return Job(
        id=row["id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        user_id=row["user_id"],
        kind=JobKind(row["kind"]),
        parent_job_id=row["parent_job_id"],
        prompt=row["prompt"],
        n=row["n"],
        model=row["model"],
        aspect=row["aspect"],
        resolution=row["resolution"],
        weight=row["weight"],
        reference_count=row["reference_count"],
        state=JobState(row["state"]),
        task_id=row["task_id"],
        progress=row["progress"],
        submit_started_at=optional_from_epoch_ms(row["submit_started_at"]),
        result_files=tuple(json.loads(row["result_files"])),
        images_delivered=row["images_delivered"],
        error_code=row["error_code"],
        error_message=row["error_message"],
        late_notified=bool(row["late_notified"]),
        application_id=row["application_id"],
        interaction_token=row["interaction_token"],
        token_expires_at=optional_from_epoch_ms(row["token_expires_at"]),
        reply_message_id=row["reply_message_id"],
        result_message_id=row["result_message_id"],
        delivered_at=optional_from_epoch_ms(row["delivered_at"]),
        created_at=from_epoch_ms(row["created_at"]),
        updated_at=from_epoch_ms(row["updated_at"]),
        finished_at=optional_from_epoch_ms(row["finished_at"]),
        lease_owner=row["lease_owner"],
        lease_expires_at=optional_from_epoch_ms(row["lease_expires_at"]),
        channel_postable=bool(row["channel_postable"]),
        locale=row["locale"],
        member_locale=row["member_locale"],
        result_deleted_at=optional_from_epoch_ms(row["result_deleted_at"]),
    )


# Ids are lowercase hex (uuid4), and "g" sorts after every hex digit on both engines: the ids that start with a
# prefix are exactly those in [prefix, prefix + "g"), a range the (guild_id, id) index answers. (LIKE 'abc%' would
# not use a PostgreSQL index under a non-C collation.)
_PREFIX_RANGE: Final = "id >= :low AND id < :high"
_HEX: Final = frozenset("0123456789abcdef")


def _prefix_range(prefix: str) -> dict[str, str]:
    if not prefix or not set(prefix) <= _HEX:
        raise ValueError(f"a job id prefix is lowercase hex, not {prefix!r}")
    return {"low": prefix, "high": prefix + "g"}


def _lease_ms(ttl_seconds: float) -> int:
    if not ttl_seconds > 0:
        raise ValueError(f"a lease needs a positive ttl_seconds, not {ttl_seconds}")
    return max(1, round(ttl_seconds * 1000))


class JobRepository:
    """Creates, reads and moves jobs. Every method that changes a job returns it as now stored.

    `held_by(owner)` gives the same repository for a lease holder: each of its writes to a job (its state,
    its fields) checks, in the same statement, that `owner` still holds the job's lease, and raises
    `LeaseLostError` having changed nothing when another process has taken the job over.
    """

    def __init__(self, db: Database, clock: Clock = utc_now, *, holder: str | None = None) -> None:
        self._db = db
        self._clock = clock
        self._holder = holder

    def held_by(self, owner: str) -> JobRepository:
        """This repository for the process `owner`: every write to a job checks that it holds the job's lease."""
        if not owner:
            raise ValueError("a lease owner cannot be empty")
        held = copy.copy(self)  # a subclass stays itself
        held._holder = owner
        return held

    async def confirm_held(self, job_id: str) -> None:
        """Raise `LeaseLostError` unless this repository's holder still holds the job (nothing when unleased).

        Called before an act that cannot be taken back (posting the result), so that a process that lost the
        job during a deploy's overlap does not post what the new holder will post."""
        if self._holder is not None:
            await self._update_row(job_id, {}, to_epoch_ms(self._clock()))

    async def create(
        self,
        *,
        guild_id: int,
        channel_id: int,
        user_id: int,
        kind: JobKind | str,
        prompt: str,
        n: int,
        model: str,
        aspect: str = "1:1",
        resolution: str = "1k",
        weight: int = 1,
        channel_postable: bool = True,
        reference_count: int = 0,
        parent_job_id: str | None = None,
        application_id: int | None = None,
        interaction_token: str | None = None,
        token_expires_at: datetime | None = None,
        job_id: str | None = None,
        locale: str = "en-US",
        member_locale: str | None = None,
    ) -> Job:
        """Store a new job in `QUEUED` (with its first event) and return it. The id is a new uuid4 hex."""
        kind = JobKind(kind)
        if n < 1:
            raise ValueError(f"a job needs n >= 1 images, not {n}")
        if weight < 1:
            raise ValueError(f"a job's weight is at least 1, not {weight}")
        if reference_count < 0:
            raise ValueError(f"reference_count cannot be negative ({reference_count})")
        now = to_epoch_ms(self._clock())
        new_id = job_id or uuid.uuid4().hex
        params = {
            "id": new_id,
            "guild_id": guild_id,
            "channel_id": channel_id,
            "user_id": user_id,
            "kind": kind.value,
            "parent_job_id": parent_job_id,
            "prompt": prompt,
            "n": n,
            "model": model,
            "aspect": aspect,
            "resolution": resolution,
            "weight": weight,
            "channel_postable": int(channel_postable),
            "reference_count": reference_count,
            "state": JobState.QUEUED.value,
            "application_id": application_id,
            "interaction_token": interaction_token,
            "token_expires_at": None if token_expires_at is None else to_epoch_ms(token_expires_at),
            "locale": locale,
            "member_locale": member_locale,
            "now": now,
        }
        async with self._db.transaction():
            row = await self._db.fetch_one(
                """
                INSERT INTO jobs (id, guild_id, channel_id, user_id, kind, parent_job_id, prompt, size, n, model,
                                  aspect, resolution, weight, channel_postable, reference_count, state, application_id,
                                  interaction_token, token_expires_at, locale, member_locale, created_at, updated_at)
                VALUES (:id, :guild_id, :channel_id, :user_id, :kind, :parent_job_id, :prompt, :aspect, :n, :model,
                        :aspect, :resolution, :weight, :channel_postable, :reference_count, :state, :application_id,
                        :interaction_token, :token_expires_at, :locale, :member_locale, :now, :now)
                RETURNING *
                """,
                params,
            )
            await self._record_event(new_id, None, JobState.QUEUED, now)
        assert row is not None
        return _job_from_row(row)

    async def get(self, job_id: str) -> Job | None:
        """The job, or `None` if there is none with this id."""
        row = await self._db.fetch_one("SELECT * FROM jobs WHERE id = :id", {"id": job_id})
        return None if row is None else _job_from_row(row)

    async def set_state(self, job_id: str, state: JobState, **fields: Any) -> Job:
        """Move the job to `state` and update `fields` with it, recording the change and its time.

        Raises `JobNotFoundError`, or `InvalidTransitionError` when `can_transition` forbids the move (the
        job is then left untouched). Reaching a finished state sets `finished_at`.
        """
        assignments = {name: _encode(name, value) for name, value in fields.items()}
        now = to_epoch_ms(self._clock())
        async with self._db.transaction():
            row = await self._db.fetch_one(
                f"SELECT state, lease_owner FROM jobs WHERE id = :id{self._db.dialect.row_lock}", {"id": job_id}
            )
            if row is None:
                raise JobNotFoundError(job_id)
            if self._holder is not None and row["lease_owner"] != self._holder:
                raise LeaseLostError(job_id, self._holder)
            current_state = JobState(row["state"])
            if not can_transition(current_state, state):
                raise InvalidTransitionError(job_id, current_state.value, state.value)
            assignments["state"] = state.value
            if state.is_finished:
                assignments["finished_at"] = now
            job = await self._update_row(job_id, assignments, now)
            await self._record_event(job_id, current_state, state, now)
        log.debug("job %s: %s -> %s", job_id, current_state.value, state.value)
        return job

    async def update(self, job_id: str, **fields: Any) -> Job:
        """Change `fields` without changing the state (see `_UPDATABLE` for the names accepted)."""
        if not fields:
            raise ValueError("update() needs at least one field")
        assignments = {name: _encode(name, value) for name, value in fields.items()}
        return await self._update_row(job_id, assignments, to_epoch_ms(self._clock()))

    async def mark_submit_started(self, job_id: str) -> Job:
        """Note, before sending the submit, that one may now exist upstream."""
        return await self.update(job_id, submit_started_at=self._clock())

    async def set_task_id(self, job_id: str, task_id: str) -> Job:
        """Record the upstream task id once the submit was accepted."""
        return await self.update(job_id, task_id=task_id)

    async def set_progress(self, job_id: str, progress: int) -> Job:
        """Record the percentage the API reports (clamped to 0-100)."""
        return await self.update(job_id, progress=max(0, min(100, progress)))

    async def set_results(self, job_id: str, result_files: tuple[str, ...] | list[str]) -> Job:
        """Record the downloaded results (paths or URLs), in order."""
        return await self.update(job_id, result_files=result_files)

    async def set_reply_message(self, job_id: str, message_id: int) -> Job:
        """Record the id of the deferred reply that shows the job's progress."""
        return await self.update(job_id, reply_message_id=message_id)

    async def record_delivery(
        self, job_id: str, *, images_delivered: int, result_message_id: int | None, by_dm: bool = False
    ) -> Job:
        """Record that the results were delivered (in the reply, or in a message with this id). `by_dm`: in the
        member's direct messages, since the channel refused them; kept as `channel_postable` false (true of the
        channel, and what tells a link to the result where that message is: docs/members.md, /history)."""
        extra = {"channel_postable": False} if by_dm else {}
        return await self.update(
            job_id,
            images_delivered=images_delivered,
            result_message_id=result_message_id,
            delivered_at=self._clock(),
            **extra,
        )

    async def note_results_deleted(self, message_ids: Iterable[int]) -> int:
        """Record that these messages were deleted, for the jobs whose result they were; how many such jobs. Any
        deleted message may be asked about: only a job's result message matches (indexed)."""
        now = to_epoch_ms(self._clock())
        noted = 0
        for message_id in message_ids:
            noted += await self._db.execute(
                """
                UPDATE jobs SET result_deleted_at = :now
                WHERE result_message_id = :message_id AND result_message_id IS NOT NULL AND result_deleted_at IS NULL
                """,
                {"now": now, "message_id": message_id},
            )
        return noted

    async def mark_late_notified(self, job_id: str) -> Job:
        """Record that the member was told their job is late (so a resume does not tell them again)."""
        return await self.update(job_id, late_notified=True)

    async def fail(self, job_id: str, error_code: str, error_message: str | None = None) -> Job:
        """Move the job to `FAILED` with the reason."""
        return await self.set_state(job_id, JobState.FAILED, error_code=error_code, error_message=error_message)

    async def list_unfinished(self) -> list[Job]:
        """Every job not yet completed or failed, oldest first: what to resume at start-up."""
        rows = await self._db.fetch_all(
            "SELECT * FROM jobs WHERE state NOT IN ('completed', 'failed') ORDER BY created_at, id"
        )
        return [_job_from_row(row) for row in rows]

    async def list_unannounced_failures(self, since: datetime) -> list[Job]:
        """Jobs that failed at or after `since` without their member being told (`delivered_at` unset): a
        crash came between storing the failure and telling it."""
        # The condition is that of the partial index jobs_untold_failures (0021): change one, change the other.
        rows = await self._db.fetch_all(
            """
            SELECT * FROM jobs
            WHERE state = 'failed' AND delivered_at IS NULL AND finished_at >= :since
            ORDER BY finished_at, id
            """,
            {"since": to_epoch_ms(since)},
        )
        return [_job_from_row(row) for row in rows]

    # -- finding jobs again -----------------------------------------------------------------------------------

    async def recent_of_member(self, guild_id: int, user_id: int, *, limit: int) -> list[Job]:
        """The member's latest `limit` jobs in the guild, newest first."""
        rows = await self._db.fetch_all(
            """
            SELECT * FROM jobs WHERE guild_id = :guild_id AND user_id = :user_id
            ORDER BY created_at DESC, id DESC LIMIT :limit
            """,
            {"guild_id": guild_id, "user_id": user_id, "limit": limit},
        )
        return [_job_from_row(row) for row in rows]

    async def oldest_with_prefix(self, guild_id: int, prefix: str) -> Job | None:
        """The guild's oldest job whose id starts with `prefix` (lowercase hex), or None."""
        rows = await self._db.fetch_all(
            f"""
            SELECT * FROM jobs WHERE guild_id = :guild_id AND {_PREFIX_RANGE}
            ORDER BY created_at, id LIMIT 1
            """,
            {"guild_id": guild_id, **_prefix_range(prefix)},
        )
        return _job_from_row(rows[0]) if rows else None

    async def older_ids_with_prefix(self, job: Job, prefix: str) -> list[str]:
        """The ids of the guild's jobs created before `job` (ties: by id) whose ids start with `prefix` too."""
        rows = await self._db.fetch_all(
            f"""
            SELECT id FROM jobs WHERE guild_id = :guild_id AND {_PREFIX_RANGE}
            AND (created_at < :created_at OR (created_at = :created_at AND id < :id))
            """,
            {
                "guild_id": job.guild_id,
                "created_at": to_epoch_ms(job.created_at),
                "id": job.id,
                **_prefix_range(prefix),
            },
        )
        return [str(row["id"]) for row in rows]

    # -- leases ----------------------------------------------------------------------------------------------

    async def claim(self, job_id: str, owner: str, ttl_seconds: float) -> bool:
        """Take the job for `owner` for `ttl_seconds`, if nobody holds it, its lease expired, or `owner` holds it.

        One conditional statement: of processes claiming at once, exactly one gets the job. Returns whether
        `owner` holds it now (`False` for an unknown job too). The job's state is not looked at: read the job
        after claiming it, since another process may have finished it meanwhile.
        """
        if not owner:
            raise ValueError("a lease owner cannot be empty")
        ttl = _lease_ms(ttl_seconds)
        now = to_epoch_ms(self._clock())
        claimed = await self._db.execute(
            """
            UPDATE jobs SET lease_owner = :owner, lease_expires_at = :expires
            WHERE id = :id AND (lease_owner IS NULL OR lease_owner = :owner OR lease_expires_at <= :now)
            """,
            {"id": job_id, "owner": owner, "expires": now + ttl, "now": now},
        )
        return claimed > 0

    async def renew_leases(self, owner: str, ttl_seconds: float) -> int:
        """Extend every lease `owner` holds on an unfinished job, or on a failed one whose member is not told yet
        (telling may take a while: Discord's rate limits, a DM instead), to `ttl_seconds` from now; returns how
        many.

        A lease that expired is renewed too, unless another process claimed the job meanwhile: that job is no
        longer `owner`'s, and is not counted.
        """
        ttl = _lease_ms(ttl_seconds)
        # The state condition is that of the partial index jobs_by_lease_owner (0021): change one, change the other.
        return await self._db.execute(
            """
            UPDATE jobs SET lease_expires_at = :expires
            WHERE lease_owner = :owner
              AND (state NOT IN ('completed', 'failed') OR (state = 'failed' AND delivered_at IS NULL))
            """,
            {"owner": owner, "expires": to_epoch_ms(self._clock()) + ttl},
        )

    async def release(self, job_id: str, owner: str) -> bool:
        """Give the job's lease up, if `owner` holds it; returns whether it did."""
        released = await self._db.execute(
            """
            UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL
            WHERE id = :id AND lease_owner = :owner
            """,
            {"id": job_id, "owner": owner},
        )
        return released > 0

    async def events(self, job_id: str) -> list[JobEvent]:
        """The job's state history, oldest first (empty for an unknown job)."""
        rows = await self._db.fetch_all(
            "SELECT job_id, from_state, state, at FROM job_events WHERE job_id = :job_id ORDER BY id",
            {"job_id": job_id},
        )
        return [
            JobEvent(
                job_id=row["job_id"],
                from_state=None if row["from_state"] is None else JobState(row["from_state"]),
                state=JobState(row["state"]),
                at=from_epoch_ms(row["at"]),
            )
            for row in rows
        ]

    async def _update_row(self, job_id: str, assignments: dict[str, Any], now: int) -> Job:
        # Column names come from _UPDATABLE (checked in _encode) or from this module: never from the caller.
        setters = "".join(f"{name} = :{name}, " for name in assignments)
        params = {**assignments, "updated_at": now, "id": job_id}
        held = ""
        if self._holder is not None:
            held = " AND lease_owner = :holder"
            params["holder"] = self._holder
        row = await self._db.fetch_one(
            f"UPDATE jobs SET {setters}updated_at = :updated_at WHERE id = :id{held} RETURNING *", params
        )
        if row is None:
            if self._holder is not None and await self.get(job_id) is not None:
                raise LeaseLostError(job_id, self._holder)
            raise JobNotFoundError(job_id)
        return _job_from_row(row)

    async def _record_event(self, job_id: str, from_state: JobState | None, state: JobState, at: int) -> None:
        await self._db.execute(
            "INSERT INTO job_events (job_id, from_state, state, at) VALUES (:job_id, :from_state, :state, :at)",
            {
                "job_id": job_id,
                "from_state": None if from_state is None else from_state.value,
                "state": state.value,
                "at": at,
            },
        )

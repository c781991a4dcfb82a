"""Typed results of the ToAPIs client: a closed status enum and frozen dataclasses. No raw dicts leave toapis/."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from toapis import contract


class TaskStatus(StrEnum):
    """The state of a generation task. Every documented status, plus UNKNOWN for anything else."""

    QUEUED = "queued"
    PENDING = "pending"
    SUBMITTED = "submitted"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    # Not an upstream value: stands for any status the documentation does not list. Treated as running, so an
    # unexpected status makes a job wait (up to its deadline) instead of failing it.
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: object) -> TaskStatus:
        """Map an upstream status to a member; anything undocumented becomes UNKNOWN."""
        if isinstance(value, str):
            try:
                return cls(value.strip().lower())
            except ValueError:
                pass
        return cls.UNKNOWN

    @property
    def is_terminal(self) -> bool:
        """True for completed and failed: the task will not change any more."""
        return self in (TaskStatus.COMPLETED, TaskStatus.FAILED)

    @property
    def is_running(self) -> bool:
        """True for every status that is not terminal, UNKNOWN included."""
        return not self.is_terminal


@dataclass(frozen=True)
class TaskError:
    """Why a task ended "failed", as the API said it."""

    code: str
    message: str

    @property
    def is_content_policy(self) -> bool:
        """True when the failure was a content-policy refusal (by code, or by a message that names the policy)."""
        if self.code.lower() in contract.CONTENT_POLICY_CODES:
            return True
        message = self.message.lower()
        return any(marker in message for marker in contract.CONTENT_POLICY_MARKERS)

    @property
    def policy_category(self) -> str | None:
        """The content-policy category the message names, if any (`contract.CONTENT_POLICY_CATEGORIES`)."""
        return policy_category(self.message)


def policy_category(message: str) -> str | None:
    """The first content-policy category whose marker appears in an upstream message, or None."""
    lowered = message.lower()
    for category, markers in contract.CONTENT_POLICY_CATEGORIES.items():
        if any(marker in lowered for marker in markers):
            return category
    return None


@dataclass(frozen=True)
class ResultImage:
    """One generated image: a (short-lived) URL, or the decoded bytes if the API ever answers with b64_json."""

    url: str | None
    data: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Task:
    """A generation task as the API last described it."""

    id: str
    status: TaskStatus
    progress: int
    model: str | None
    created_at: datetime | None
    completed_at: datetime | None = None
    expires_at: datetime | None = None
    images: tuple[ResultImage, ...] = ()
    error: TaskError | None = None
    client_business_id: str | None = None

    @property
    def is_terminal(self) -> bool:
        """True when the task has completed or failed."""
        return self.status.is_terminal

    @property
    def is_running(self) -> bool:
        """True while the task may still change (every non-terminal status, UNKNOWN included)."""
        return self.status.is_running

    @property
    def is_content_policy_failure(self) -> bool:
        """True when the task failed because the content policy refused the prompt or an image."""
        return self.status is TaskStatus.FAILED and self.error is not None and self.error.is_content_policy


@dataclass(frozen=True)
class UploadedImage:
    """A reference image stored by the API. Its URL is assumed short-lived: upload again for every job."""

    id: str
    url: str
    mime_type: str
    size: int


@dataclass(frozen=True)
class DownloadedImage:
    """A downloaded result: either its bytes (`data`) or the file it was streamed to (`path`)."""

    url: str
    content_type: str
    size: int
    data: bytes | None = field(default=None, repr=False)
    path: Path | None = None

    def read_bytes(self) -> bytes:
        """Return the image's bytes, reading the file when the image was streamed to disk."""
        if self.data is not None:
            return self.data
        if self.path is None:  # pragma: no cover - the client always sets one of the two
            raise ValueError("downloaded image has neither data nor path")
        return self.path.read_bytes()


@dataclass(frozen=True)
class AccountBalance:
    """What GET /balance says of the key's account; `found` False when the API did not find it."""

    found: bool
    remain_balance: float | None = None
    remain_credits: float | None = None
    used_balance: float | None = None
    used_credits: float | None = None
    unlimited: bool = False
    """`unlimited_quota`: the account is never exhausted (its `remain_balance` then reads -1)."""
    credits_per_usd: float = contract.CREDITS_PER_USD

    @property
    def remain_dollars(self) -> float | None:
        """What is left in US dollars, from the credits: `remain_balance` is in the account's own unit (USD, CNY or
        tokens), which the answer does not name."""
        return self._dollars(self.remain_credits)

    @property
    def used_dollars(self) -> float | None:
        """What was used in US dollars, from the credits."""
        return self._dollars(self.used_credits)

    def _dollars(self, credits: float | None) -> float | None:
        return None if credits is None or self.credits_per_usd <= 0 else credits / self.credits_per_usd

    @property
    def exhausted(self) -> bool:
        """True when the account can no longer pay for a task (contract.BALANCE_EXHAUSTED_WHEN_BOTH_ZERO)."""
        if not self.found or self.unlimited:
            return False  # unknown: a submit will say (402) if it is
        remaining = [value for value in (self.remain_balance, self.remain_credits) if value is not None]
        return bool(remaining) and all(value <= 0 for value in remaining)

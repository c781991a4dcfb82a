"""When and how long to wait before retrying a transient failure: capped exponential backoff with jitter."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """How the client retries transient failures (connection errors, timeouts, 408, 429, 5xx).

    The delay before retry k (0-based) is `min(initial_delay * 2**k, max_delay)`, less up to `jitter` of it
    at random. A `Retry-After` from the server replaces that delay when it is at most `max_retry_after`; a
    longer one is not waited for: the error is raised so the caller can decide. The defaults follow
    openai-python. `RetryPolicy(max_retries=0)` disables retries; tests use zero delays.
    """

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.25
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.initial_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("delays must be >= 0")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1")

    def backoff(self, attempt: int, *, rand: Callable[[], float] = random.random) -> float:
        """Return the delay before retry number `attempt` (0-based) when the server gave no Retry-After."""
        base = min(self.initial_delay * 2.0**attempt, self.max_delay)
        return base * (1.0 - self.jitter * rand())

    def delay_before_retry(
        self, attempt: int, retry_after: float | None = None, *, rand: Callable[[], float] = random.random
    ) -> float | None:
        """Return how long to wait before retry `attempt`, or None when no retry should be made.

        None when the retries are used up, or when the server asked for a longer wait than `max_retry_after`.
        """
        if attempt >= self.max_retries:
            return None
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            return max(retry_after, 0.0)
        return self.backoff(attempt, rand=rand)

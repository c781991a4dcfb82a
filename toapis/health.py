"""What the health probe found: kept apart from models.py, since it carries the error (errors.py imports models)."""

from __future__ import annotations

from dataclasses import dataclass

from toapis.errors import ToAPIsError


@dataclass(frozen=True)
class HealthStatus:
    """The answer of the health probe: is the API up, and does it accept the key?"""

    ok: bool
    reason: str
    # The API answered (anything but a connection failure, a timeout or a 5xx/gateway answer).
    reachable: bool
    # None when the API could not be reached, so nothing is known about the key.
    key_accepted: bool | None
    latency: float
    error: ToAPIsError | None = None

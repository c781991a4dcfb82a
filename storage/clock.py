"""Time for the repositories: an injectable clock, and the one storage format of instants.

Every instant is stored as integer milliseconds since the Unix epoch, UTC (portable to any SQL engine, exact
to compare, cheap to index), and leaves the package as an aware UTC `datetime`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]
"""Returns "now" as an aware datetime. Tests inject a fake one to cross a day, week or month boundary."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc_now() -> datetime:
    """The default clock: the current time in UTC."""
    return datetime.now(UTC)


def to_epoch_ms(moment: datetime) -> int:
    """An aware datetime as integer milliseconds since the epoch. Naive datetimes are refused: ambiguous."""
    if moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None:
        raise ValueError(f"naive datetime {moment!r}: storage needs an aware datetime (e.g. tzinfo=UTC)")
    # timedelta arithmetic is exact, unlike datetime.timestamp() which goes through a float
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(value: int) -> datetime:
    """The inverse of `to_epoch_ms`: an aware UTC datetime."""
    return _EPOCH + timedelta(milliseconds=value)


def optional_from_epoch_ms(value: int | None) -> datetime | None:
    """`from_epoch_ms` that passes `None` (a NULL column) through."""
    return None if value is None else from_epoch_ms(value)


def optional_to_epoch_ms(moment: datetime | None) -> int | None:
    """`to_epoch_ms` that passes `None` through."""
    return None if moment is None else to_epoch_ms(moment)

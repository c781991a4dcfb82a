"""The errors of the storage package: everything it raises on purpose is a `StorageError`.

Messages name the problem and, where there is one, what to do about it. They never contain a database
password or any other secret: URLs are reduced to their scheme before they appear in a message.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every error the storage package raises on purpose."""


class UnsupportedDatabaseURLError(StorageError):
    """`DATABASE_URL` names a scheme or form that this version cannot open."""


class DatabaseTooNewError(StorageError):
    """The database was migrated by a newer version of Imagine than this one."""

    def __init__(self, database_version: int, code_version: int) -> None:
        super().__init__(
            f"the database is at schema version {database_version}, but this version of Imagine only knows "
            f"versions up to {code_version}: it was written by a newer Imagine. Run that version, or point "
            "DATABASE_URL at another database; this one was left untouched"
        )
        self.database_version = database_version
        self.code_version = code_version


class MigrationError(StorageError):
    """A migration file is malformed, or applying it failed (the failing migration was rolled back)."""


class DatabaseClosedError(StorageError):
    """The database was used after `close()`."""


class DatabaseError(StorageError):
    """The database engine reported an error (the original is chained as `__cause__`)."""


class DatabaseBusyError(DatabaseError):
    """Another connection held the write lock for longer than the busy timeout."""


class ConstraintViolationError(DatabaseError):
    """A write broke a uniqueness, foreign-key or check constraint."""


class JobNotFoundError(StorageError):
    """No job has the given id."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r}")
        self.job_id = job_id


class LeaseLostError(StorageError):
    """A process wrote to a job whose lease it no longer holds: another process works it now."""

    def __init__(self, job_id: str, holder: str) -> None:
        super().__init__(f"job {job_id!r} is no longer held by {holder!r}")
        self.job_id = job_id
        self.holder = holder


class InvalidTransitionError(StorageError):
    """A job was asked to move to a state it cannot reach from its current one."""

    def __init__(self, job_id: str, current: str, requested: str) -> None:
        super().__init__(f"job {job_id!r} cannot move from {current!r} to {requested!r}")
        self.job_id = job_id
        self.current = current
        self.requested = requested

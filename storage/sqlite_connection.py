"""SQLite's one connection, used on the event loop for what is quick and in a thread of its own for the rest.

Why on the loop: the bot's statements are small (a row read, a row written, a transaction of a few), tens of
microseconds each in WAL mode with `synchronous = NORMAL` (no sync at commit). Sent to a thread one by one,
each cost a trip there and back, and the coroutine waited for its result until the loop came round again: with
a busy loop (many jobs completing at once, a burst of requests) that was milliseconds per statement, 20 to 30
statements per job, all in a row on the one connection. So a statement runs on the loop, unless:

- SQLite answers that another connection holds the lock it needs (a second process, `python -m storage copy`):
  the loop must not wait for that, so `busy_timeout` is 0 on the loop and the statement runs again in the
  connection's thread, which waits up to the busy timeout;
- it is a statement outside a transaction that runs longer than `BUDGET` (a report's scan, a purge): it is
  interrupted, which undoes it whole, and run again in the thread. A statement inside a transaction is never
  interrupted (SQLite would roll the whole transaction back): a transaction that may be long (a purge) asks
  for the thread (`SQLiteDatabase.transaction(bulk=True)`).

Checkpoints (copying the write-ahead log into the database file, with a sync) would otherwise run in the
committing statement every 1,000 pages, tens of milliseconds: they are turned off on this connection and run
instead by a connection of their own, in the thread, every `CHECKPOINT_EVERY` statements.

One user at a time: `SQLiteDatabase` holds an `asyncio.Lock` around every use, so the loop and the thread never
use the connection together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], T]

# Longest a statement outside a transaction may hold the loop before it is moved to the thread.
BUDGET: Final = 0.002
# How often (in virtual machine steps) SQLite asks whether the budget is spent: a few microseconds apart.
_PROGRESS_STEPS: Final = 1000
CHECKPOINT_EVERY: Final = 500
_SQLITE_BUSY: Final = 5
_SQLITE_LOCKED: Final = 6
_SQLITE_INTERRUPT: Final = 9


class SQLiteConnection:
    """A sqlite3 connection (autocommit mode, rows as `sqlite3.Row`) with `run` on the loop and `in_thread`."""

    def __init__(self, raw: sqlite3.Connection, path: Path | None, busy_timeout: float) -> None:
        self.raw = raw
        self._path = path
        self._busy_ms = int(busy_timeout * 1000)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._deadline: float | None = None
        self._statements = 0
        self._checkpointer: sqlite3.Connection | None = None
        self._checkpoint: asyncio.Future[None] | None = None
        raw.set_progress_handler(self._over_budget, _PROGRESS_STEPS)

    @classmethod
    async def open(cls, path: Path | None, busy_timeout: float) -> SQLiteConnection:
        target = ":memory:" if path is None else str(path)

        def connect() -> sqlite3.Connection:
            # Not bound to the opening thread: the loop's thread and the connection's take turns (see the lock).
            raw = sqlite3.connect(target, isolation_level=None, timeout=0, check_same_thread=False)
            raw.row_factory = sqlite3.Row
            raw.execute("PRAGMA busy_timeout = 0")
            return raw

        return cls(await asyncio.to_thread(connect), path, busy_timeout)

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    def checkpoint_in_thread(self) -> None:
        """From now on, the log is copied into the file by `checkpoint` rather than by the committing statement."""
        self.raw.execute("PRAGMA wal_autocheckpoint = 0")

    async def run(self, work: Work[T], *, movable: bool) -> T:
        """`work` on the loop; in the thread instead when SQLite is busy, or when `movable` (a statement outside
        a transaction, which an interruption undoes whole) and it overran the budget."""
        self._deadline = time.perf_counter() + BUDGET if movable else None
        try:
            result = work(self.raw)
        except sqlite3.OperationalError as exc:
            code = exc.sqlite_errorcode & 0xFF
            if code not in (_SQLITE_BUSY, _SQLITE_LOCKED) and not (movable and code == _SQLITE_INTERRUPT):
                raise
        else:
            self._counted()
            return result
        finally:
            self._deadline = None
        return await self.in_thread(work)

    async def in_thread(self, work: Work[T]) -> T:
        """`work` in the connection's thread, waiting up to the busy timeout for other connections' locks.

        A caller cancelled meanwhile interrupts the statement (which undoes it; in a transaction, the whole
        transaction, which the caller's cancellation rolls back anyway) and keeps the connection until the
        thread has let go of it, then sees the cancellation."""

        def waiting() -> T:
            self.raw.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            try:
                return work(self.raw)
            finally:
                self.raw.execute("PRAGMA busy_timeout = 0")

        future = asyncio.get_running_loop().run_in_executor(self._thread, waiting)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            self.raw.interrupt()
            await _outlast(future)
            raise

    async def close(self) -> None:
        """Close after a checkpoint in progress; closing the last connection copies the log into the file."""
        if self._checkpoint is not None:
            await _outlast(self._checkpoint)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._close_all)
        self._thread.shutdown(wait=False)

    def _close_all(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        self.raw.close()

    def _over_budget(self) -> bool:
        deadline = self._deadline
        return deadline is not None and time.perf_counter() > deadline

    def _counted(self) -> None:
        self._statements += 1
        if self._path is None or self._statements % CHECKPOINT_EVERY:
            return
        if self._checkpoint is None or self._checkpoint.done():
            loop = asyncio.get_running_loop()
            self._checkpoint = loop.run_in_executor(self._thread, self._copy_log)

    def _copy_log(self) -> None:
        """A passive checkpoint: copies what it can without waiting for (or holding up) the writer."""
        assert self._path is not None
        try:
            if self._checkpointer is None:
                self._checkpointer = sqlite3.connect(str(self._path), isolation_level=None, check_same_thread=False)
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            log.warning("checkpoint of %s failed (the next one tries again): %s", self._path, exc)


async def _outlast(future: asyncio.Future[T]) -> None:
    """Wait until `future` is done, whatever cancellations arrive meanwhile (its outcome is left to others)."""
    while not future.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({future})
    if not future.cancelled():
        future.exception()  # retrieved: the caller reports its own cancellation instead

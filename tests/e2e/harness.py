"""Run a Python script as a subprocess and watch it: output lines, patterns, signals, exit code.

Used by the end-to-end tests to run ``bot.py`` (or ``minimal_bot.py``) against the loopback fakes::

    async with ScriptProcess.start(BOT, env=fake.bot_env()) as bot:
        await bot.wait_for_line(r"READY", timeout=20)
        ...
        assert await bot.terminate() == 0

Nothing here sleeps hoping for the best: waits are on a condition (a new output line, the process exit, a
predicate) with a generous timeout, and fail with the captured output so a failure explains itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
_LINE_LIMIT = 1024 * 1024


class ProcessFailed(AssertionError):
    """The process did not do what the test waited for; the message holds its recent output."""


class ScriptProcess:
    """A running Python script whose stdout and stderr lines are captured as they come."""

    def __init__(self, process: asyncio.subprocess.Process, name: str) -> None:
        self._process = process
        self.name = name
        self.lines: list[str] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        script: Path | str,
        *,
        env: Mapping[str, str],
        args: Sequence[str] = (),
        cwd: Path | str | None = None,
        inherit_env: bool = True,
        python: str = sys.executable,
    ) -> AsyncIterator[ScriptProcess]:
        """Start ``python script args...`` with ``env`` (added to this process's environment by default).

        Leaving the block stops the process (SIGTERM, then SIGKILL) if it is still running.
        """
        process = await cls.spawn(script, env=env, args=args, cwd=cwd, inherit_env=inherit_env, python=python)
        try:
            yield process
        finally:
            await process.stop()

    @classmethod
    async def spawn(
        cls,
        script: Path | str,
        *,
        env: Mapping[str, str],
        args: Sequence[str] = (),
        cwd: Path | str | None = None,
        inherit_env: bool = True,
        python: str = sys.executable,
    ) -> ScriptProcess:
        """Start the process without a context manager; the caller must :meth:`stop` it."""
        full_env = dict(os.environ) if inherit_env else {}
        full_env.update(env)
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        process = await asyncio.create_subprocess_exec(
            python,
            str(script),
            *args,
            cwd=str(cwd) if cwd is not None else None,
            env=full_env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            limit=_LINE_LIMIT,
        )
        return cls(process, Path(script).name)

    async def _read(self) -> None:
        stream = self._process.stdout
        assert stream is not None
        while True:
            try:
                raw = await stream.readline()
            except ValueError:
                # A line longer than the limit: keep what fits rather than lose the stream.
                raw = await stream.read(_LINE_LIMIT)
            if not raw:
                break
            self.lines.append(raw.decode(errors="replace").rstrip("\r\n"))
            self._pulse()
        await self._process.wait()
        self._pulse()

    def _pulse(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    @property
    def pid(self) -> int:
        """The process id."""
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        """The exit code, or ``None`` while it runs (negative: killed by that signal)."""
        return self._process.returncode

    @property
    def running(self) -> bool:
        """Whether the process has not exited yet."""
        return self._process.returncode is None

    def output(self, last: int = 60) -> str:
        """The last ``last`` output lines, for failure messages."""
        return "\n".join(self.lines[-last:])

    def matching(self, pattern: str | re.Pattern[str], *, start: int = 0) -> list[re.Match[str]]:
        """Every output line from index ``start`` that matches ``pattern`` (``re.search``)."""
        compiled = re.compile(pattern)
        found = (compiled.search(line) for line in self.lines[start:])
        return [m for m in found if m is not None]

    async def wait_for_line(
        self, pattern: str | re.Pattern[str], timeout: float = 10.0, *, start: int = 0
    ) -> re.Match[str]:
        """The first line from index ``start`` matching ``pattern``; fails if the process exits first."""
        compiled = re.compile(pattern)
        position = start

        def found() -> re.Match[str] | None:
            nonlocal position
            while position < len(self.lines):
                match = compiled.search(self.lines[position])
                position += 1
                if match is not None:
                    return match
            return None

        async def exited_without_it() -> None:
            raise ProcessFailed(
                f"{self.name} exited ({self.returncode}) before printing /{compiled.pattern}/:\n{self.output()}"
            )

        return await self._wait(found, timeout, f"a line matching /{compiled.pattern}/", on_exit=exited_without_it)

    async def wait_exit(self, timeout: float = 10.0) -> int:
        """Wait for the process to exit and return its exit code."""
        await self._wait(lambda: self.returncode is not None, timeout, "the process to exit")
        await self._drain()
        code = self._process.returncode
        assert code is not None
        return code

    async def _wait(
        self,
        predicate: Callable[[], T | None],
        timeout: float,
        what: str,
        *,
        on_exit: Callable[[], Awaitable[None]] | None = None,
    ) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if on_exit is not None and self.returncode is not None and self._reader.done():
                await on_exit()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ProcessFailed(f"{self.name}: no {what} within {timeout}s:\n{self.output()}")
            event = self._changed
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation that arrives as the event
            # is set, and a cancelled wait would then go on until its own timeout.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await event.wait()

    async def _drain(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await asyncio.shield(self._reader)

    def send_signal(self, signum: int) -> None:
        """Send a signal if the process still runs."""
        if self.running:
            self._process.send_signal(signum)

    async def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM, then wait for the exit; returns the exit code (fails if it does not exit in time)."""
        self.send_signal(signal.SIGTERM)
        return await self.wait_exit(timeout)

    async def kill(self, timeout: float = 10.0) -> int:
        """SIGKILL, as a crash would; returns the exit code (``-9``)."""
        self.send_signal(signal.SIGKILL)
        return await self.wait_exit(timeout)

    async def stop(self, grace: float = 10.0) -> int:
        """Make sure it is gone: SIGTERM, and SIGKILL if it has not exited within ``grace`` seconds."""
        if self.running:
            self.send_signal(signal.SIGTERM)
            try:
                return await self.wait_exit(grace)
            except ProcessFailed:
                return await self.kill()
        return await self.wait_exit()


@overload
async def wait_until(
    predicate: Callable[[], Awaitable[T | None]], timeout: float = ..., *, interval: float = ..., what: str = ...
) -> T: ...


@overload
async def wait_until(
    predicate: Callable[[], T | None], timeout: float = ..., *, interval: float = ..., what: str = ...
) -> T: ...


async def wait_until(
    predicate: Callable[[], Any],
    timeout: float = 10.0,
    *,
    interval: float = 0.01,
    what: str = "",
) -> Any:
    """Poll ``predicate`` (sync or async) until it returns something truthy, and return that.

    For state the test cannot be notified about (a database file, a directory). For the Discord fake's
    records use ``FakeDiscord.wait_for``, which wakes up on every change instead of polling.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return result
        if loop.time() >= deadline:
            raise TimeoutError(f"not within {timeout}s: {what or predicate}")
        await asyncio.sleep(interval)

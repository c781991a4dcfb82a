"""Processes that race: started apart, released together, their outputs collected."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WAIT = 60.0  # generous: 2 shared, noisy cores


async def race(script: str, argv_of_each: Sequence[Sequence[str]]) -> list[bytes]:
    """Run `python -c script *argv` once per argv; each prints "ready", waits for "go", then races the others.

    Returns each process's stdout (after "ready"), in order; fails if any exits non-zero.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
            env=env,
        )
        for argv in argv_of_each
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            assert (await asyncio.wait_for(process.stdout.readline(), WAIT)).strip() == b"ready"
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(b"go\n")
            await process.stdin.drain()
        outputs = [await asyncio.wait_for(process.communicate(), WAIT) for process in processes]
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert [process.returncode for process in processes] == [0] * len(processes)
    return [stdout for stdout, _ in outputs]

"""A lease holder's name says which host and process it was; only a process of this host that has ended is known
to have stopped."""

from __future__ import annotations

import asyncio
import os
import socket
import sys

from generation.process_identity import new_owner, stopped_here


async def test_only_an_ended_process_of_this_host_is_known_to_have_stopped() -> None:
    host = socket.gethostname()
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await child.wait()
    assert stopped_here(f"{host}:{child.pid}:0a1b2c3d")  # ended
    assert stopped_here(new_owner())  # our own pid: a restart of the same container took it over
    assert not stopped_here(f"{host}:{os.getppid()}:0a1b2c3d")  # runs
    assert not stopped_here(f"another-host:{child.pid}:0a1b2c3d")  # may run: nobody here can tell
    assert not stopped_here("")  # released: not a name
    assert not stopped_here("someone")
    assert not stopped_here(f"{host}:pid:0a1b2c3d")


def test_each_process_start_has_a_name_of_its_own() -> None:
    first, second = new_owner(), new_owner()
    assert first != second
    assert first.startswith(f"{socket.gethostname()}:{os.getpid()}:")

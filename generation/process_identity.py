"""Who a process is, as a lease holder: `host:pid:nonce`, and whether such a holder has stopped for sure.

A holder on this host whose process id no longer runs (or is ours: a container restarted keeps its host name and
often its pid 1) has stopped, whatever its leases say; a holder on another host may still run, so its leases are
waited out (docs/guarantees.md).
"""

from __future__ import annotations

import os
import socket
import uuid


def new_owner() -> str:
    """A name for this process, unique across hosts and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def stopped_here(owner: str) -> bool:
    """Whether `owner` was a process of this host that has stopped (False when unsure: another host, or a name
    not made by `new_owner`)."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    host, pid = parts[0], int(parts[1])
    if host != socket.gethostname():
        return False
    if pid == os.getpid():
        return True  # we are that pid now: the process that held it is gone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it runs, as another user
    return False

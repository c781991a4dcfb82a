"""generation/checks.py: what `python bot.py --check` says of the database, as lines (never a traceback) that
show no password (docs/operators.md, Checking everything)."""

from __future__ import annotations

import socket

import pytest

from generation.checks import Mark, check_database, describe_database


def closed_port() -> int:
    """A port nothing listens on: connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("cut", ["/", "#", "?", "["])
async def test_a_password_that_cuts_the_url_short_is_a_line_without_the_password(cut: str) -> None:
    # A generated password (base64 has `/`) that is not percent-encoded ends urlsplit's host early: what follows
    # the user's colon was read as a port, and the ValueError quoted it, out of --check, with a traceback.
    password = f"s3cr{cut}Et-Pg-value"
    url = f"postgresql://imagine:{password}@127.0.0.1:{closed_port()}/imagine"

    line, schema = await check_database(url, timeout=5)

    assert line.mark is Mark.FAIL
    assert schema is None
    assert "s3cr" not in line.render()
    assert "Et-Pg-value" not in line.render()
    assert "s3cr" not in describe_database(url)

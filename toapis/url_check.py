"""What makes a URL unusable as an API's base URL, checked once for the bot's settings and the command-line tool.

aiohttp raises on a URL it cannot parse (an unmatched `[`, a port out of range) with a message that echoes it,
password included, and refuses to send a request that has a user or password in its URL next to the
Authorization header every API request carries: both are refused before any client is built.
"""

from __future__ import annotations

import enum
from urllib.parse import urlsplit


class UrlProblem(enum.Enum):
    """Why a URL cannot be a base URL."""

    NOT_A_URL = "not a URL of an accepted scheme"
    CREDENTIALS = "a user or password in it"


def base_url_problem(value: str, schemes: tuple[str, ...]) -> UrlProblem | None:
    """None when `value` can be a base URL with one of `schemes`; otherwise what is wrong with it."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - read for its check of the port's range
    except ValueError:
        return UrlProblem.NOT_A_URL
    if parts.scheme not in schemes or not parts.netloc:
        return UrlProblem.NOT_A_URL
    if parts.username is not None or parts.password is not None:
        return UrlProblem.CREDENTIALS
    return None

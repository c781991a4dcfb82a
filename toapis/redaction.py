"""A URL fit to show in a log line, an error or a repr: one redaction for every reader of a URL from the
environment (settings.py reads Imagine's, `python -m toapis` its own two), so none shows a secret another hides.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit

# Query parameters that carry a secret: libpq and asyncpg take `?password=` as well as a password before the host.
_SECRET_PARAMETER: Final = re.compile(r"pass|secret|token|key|auth|sig", re.IGNORECASE)


def redacted_url(url: str) -> str:
    """A URL fit to show: any user and password (a database's, a proxy's), and the values of query parameters
    such as `password=`, replaced by `***`. The scheme, host, port and path (a database's name) stay."""
    try:
        parts = urlsplit(url)
    except ValueError:
        # An unmatched `[` or `]` (in a password, say): no host can be told apart, so nothing past the scheme shows.
        return url.split("://", 1)[0] + "://***" if "://" in url else "***"
    if "@" in parts.netloc:
        url = parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]).geturl()
    elif "@" in url:
        # An `@` past the parsed host: a password holding `/`, `?` or `#` unescaped. Hide all before the last `@`.
        scheme = url.split("://", 1)[0] + "://" if "://" in url else ""
        url = f"{scheme}***@{url.rsplit('@', 1)[1]}"
    base, question, rest = url.partition("?")
    if not question:
        return url
    query, hash_sign, fragment = rest.partition("#")
    pairs = [pair.partition("=") for pair in query.split("&")]
    shown = [
        name + equals + ("***" if equals and _SECRET_PARAMETER.search(name) else value) for name, equals, value in pairs
    ]
    return f"{base}?{'&'.join(shown)}{hash_sign}{fragment}"

"""Named `:name` parameters rewritten as PostgreSQL's positional `$1, $2...`.

The scanner knows just enough SQL not to be fooled: a `::` cast, string literals ('...', E'...' with
backslash escapes, $tag$...$tag$), quoted identifiers and comments are copied as they are. A name used
twice gets one number, so `GROUP BY created_at / :day_ms` matches the same expression in the `SELECT`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final

from storage.errors import DatabaseError

_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR_TAG: Final = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_IDENTIFIER_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


@lru_cache(maxsize=1024)
def to_positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """`sql` with `:name` replaced by `$n`, and the names in the order of their numbers."""
    out: list[str] = []
    names: list[str] = []
    numbers: dict[str, int] = {}
    index = 0
    length = len(sql)
    while index < length:
        char = sql[index]
        if char == "'":
            escapes = index > 0 and sql[index - 1] in "eE" and (index < 2 or sql[index - 2] not in _IDENTIFIER_CHARS)
            end = _end_of_quoted(sql, index, "'", backslash_escapes=escapes)
        elif char == '"':
            end = _end_of_quoted(sql, index, '"', backslash_escapes=False)
        elif sql.startswith("--", index):
            newline = sql.find("\n", index)
            end = length if newline < 0 else newline + 1
        elif sql.startswith("/*", index):
            close = sql.find("*/", index + 2)
            end = length if close < 0 else close + 2
        elif char == "$" and (tag := _DOLLAR_TAG.match(sql, index)) is not None and not _follows_identifier(sql, index):
            close = sql.find(tag.group(0), tag.end())
            end = length if close < 0 else close + len(tag.group(0))
        elif sql.startswith("::", index):
            end = index + 2
        elif char == ":" and (name := _NAME.match(sql, index + 1)) is not None:
            key = name.group(0)
            if key not in numbers:
                names.append(key)
                numbers[key] = len(names)
            out.append(f"${numbers[key]}")
            index = name.end()
            continue
        else:
            end = index + 1
        out.append(sql[index:end])
        index = end
    return "".join(out), tuple(names)


def arguments(names: tuple[str, ...], params: Mapping[str, Any] | None) -> tuple[Any, ...]:
    """The values for `names`, in order; parameters the statement does not use are ignored, as SQLite does."""
    if not names:
        return ()
    if params is None:
        params = {}
    try:
        return tuple(params[name] for name in names)
    except KeyError as missing:
        raise DatabaseError(f"database error: no value supplied for the parameter :{missing.args[0]}") from None


def _follows_identifier(sql: str, index: int) -> bool:
    # `$1` after a word is part of an identifier (PostgreSQL allows `$` inside names), not a dollar quote.
    return index > 0 and sql[index - 1] in _IDENTIFIER_CHARS


def _end_of_quoted(sql: str, start: int, quote: str, *, backslash_escapes: bool) -> int:
    """The index just past the literal that opens at `start` (doubled quotes stay inside it)."""
    index = start + 1
    length = len(sql)
    while index < length:
        char = sql[index]
        if backslash_escapes and char == "\\":
            index += 2
            continue
        if char == quote:
            if index + 1 < length and sql[index + 1] == quote:
                index += 2
                continue
            return index + 1
        index += 1
    return length

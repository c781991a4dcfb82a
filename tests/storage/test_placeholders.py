"""Named parameters rewritten for PostgreSQL: only real `:name`s become `$n`, whatever surrounds them."""

from __future__ import annotations

import pytest

from storage._placeholders import arguments, to_positional
from storage.errors import DatabaseError


@pytest.mark.parametrize(
    ("sql", "expected", "names"),
    [
        ("SELECT * FROM t WHERE a = :a AND b = :b", "SELECT * FROM t WHERE a = $1 AND b = $2", ("a", "b")),
        # one name, one number: the GROUP BY expression matches the SELECT's
        (
            "SELECT x / :d AS day FROM t GROUP BY x / :d HAVING COUNT(*) > :n",
            "SELECT x / $1 AS day FROM t GROUP BY x / $1 HAVING COUNT(*) > $2",
            ("d", "n"),
        ),
        ("SELECT :a::text, col::bigint FROM t", "SELECT $1::text, col::bigint FROM t", ("a",)),
        ("SELECT current_schema()::regnamespace", "SELECT current_schema()::regnamespace", ()),
        ("SELECT ':not_a_name', 'it''s :still_text', :yes", "SELECT ':not_a_name', 'it''s :still_text', $1", ("yes",)),
        ("SELECT E'\\' :escaped', :after", "SELECT E'\\' :escaped', $1", ("after",)),
        # a plain string ending in a backslash is not an escape: the literal ends there
        ("SELECT 'C:\\', :path", "SELECT 'C:\\', $1", ("path",)),
        ('SELECT ":quoted_identifier" FROM t WHERE x = :x', 'SELECT ":quoted_identifier" FROM t WHERE x = $1', ("x",)),
        ("SELECT 1 -- :comment\nWHERE a = :a", "SELECT 1 -- :comment\nWHERE a = $1", ("a",)),
        ("SELECT /* :block\n:comment */ :a", "SELECT /* :block\n:comment */ $1", ("a",)),
        ("SELECT $tag$ :inside $tag$, $$ :also $$, :real", "SELECT $tag$ :inside $tag$, $$ :also $$, $1", ("real",)),
        ("SELECT arr[1:2], :a", "SELECT arr[1:2], $1", ("a",)),
        ("SELECT :_under_score1", "SELECT $1", ("_under_score1",)),
        ("no parameters at all", "no parameters at all", ()),
        ("SELECT 'unterminated :x", "SELECT 'unterminated :x", ()),
    ],
)
def test_to_positional(sql: str, expected: str, names: tuple[str, ...]) -> None:
    assert to_positional(sql) == (expected, names)


def test_arguments_follow_the_numbers_and_ignore_extras() -> None:
    _sql, names = to_positional("SELECT :b, :a, :b")
    assert arguments(names, {"a": 1, "b": 2, "unused": 3}) == (2, 1)
    assert arguments((), None) == ()


def test_a_missing_argument_is_named() -> None:
    with pytest.raises(DatabaseError, match=":b"):
        arguments(("a", "b"), {"a": 1})
    with pytest.raises(DatabaseError, match=":a"):
        arguments(("a",), None)

"""Imagine's database: the only package with SQL. Imports nothing from Discord or the rest of Imagine.

- `database`: `Database.open(url)`, the connection, PRAGMAs, migrations and the query facade;
- `jobs`, `usage`, `quotas`, `references`, `guild_settings`: one repository per concern, returning frozen
  dataclasses; each takes the `Database` (and a `clock.Clock` where time matters);
- `errors`: `StorageError` and its subclasses.
"""

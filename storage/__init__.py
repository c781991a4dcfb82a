"""Imagine's database: the only package with SQL. Imports nothing from Discord or the rest of Imagine.

- `database`: `Database`, the facade every query goes through, whichever engine is behind it; `connect`:
  `open_database(url)`, which opens (and migrates) the engine the URL names;
- `sqlite`, `postgres`: the two engines (`sqlite:///path`: one file; `postgresql://...`: a server shared by
  several processes); `dialect`: the few statements that differ between them;
- `schema`: the numbered migrations in `migrations/`, one sequence for both engines;
- `jobs`, `usage`, `quotas`, `references`, `guild_settings`: one repository per concern, returning frozen
  dataclasses; each takes the `Database` (and a `clock.Clock` where time matters); `store.Storage` holds them all;
- `copy` (`python -m storage copy SOURCE_URL DEST_URL`): copies every row into a new, empty database;
- `errors`: `StorageError` and its subclasses.
"""

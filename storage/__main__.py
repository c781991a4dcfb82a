"""`python -m storage copy SOURCE_URL DEST_URL`: copy an Imagine database into a new, empty one.

For example, with the bot stopped, from SQLite to PostgreSQL:

    python -m storage copy sqlite:///data/imagine.db postgresql://imagine:secret@db:5432/imagine

Both databases are migrated to this version first; the destination must hold no rows. Prints the rows copied
per table. Exit status: 0 copied, 1 refused or failed (nothing written), 2 bad command line.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from storage.copy import DEFAULT_BATCH_SIZE, CopyReport, copy_between
from storage.database import engine_from_url
from storage.errors import StorageError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m storage", description="Imagine's database tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    copy = commands.add_parser(
        "copy",
        help="copy every row of one database into a new, empty one",
        description="Copy every row of SOURCE_URL into DEST_URL (freshly created and empty), in one transaction.",
    )
    copy.add_argument("source", metavar="SOURCE_URL", help="e.g. sqlite:///data/imagine.db")
    copy.add_argument("destination", metavar="DEST_URL", help="e.g. postgresql://user:password@host:5432/imagine")
    copy.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="rows read and written at once")
    copy.add_argument("-v", "--verbose", action="store_true", help="log migrations and progress")
    return parser


def _print_report(report: CopyReport, source: str, destination: str) -> None:
    width = max((len(table.table) for table in report.tables), default=0)
    for table in report.tables:
        print(f"  {table.table:<{width}}  {table.rows:>10,} rows")
    print(
        f"copied {report.rows:,} rows in {len(report.tables)} tables from {source} to {destination} "
        f"in {report.seconds:.1f} s"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    try:
        # Only the schemes are ever shown: a URL may carry a password.
        source, destination = engine_from_url(args.source).value, engine_from_url(args.destination).value
        report = asyncio.run(copy_between(args.source, args.destination, batch_size=args.batch_size))
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _print_report(report, source, destination)
    return 0


if __name__ == "__main__":
    sys.exit(main())

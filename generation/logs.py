"""Which job, server and shard a log record is about, and the JSON lines `LOG_FORMAT=json` writes.

The job and the server are bound to the running task (`bind_log_context`): a job's run, the interaction that
asked for it. asyncio copies the context into every task created afterwards, so what a task starts is about
the same job; other tasks never see it. A record may also name them itself (`extra={"job": ..., "guild": ...}`).

The JSON formatter writes what the text formatter writes (the message is formatted the same way, so no secret
reaches one and not the other), as one object a line: time, level, logger, message, and the job, guild and
shard where they apply, and the traceback of an exception.
"""

from __future__ import annotations

import json
import logging
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

# Discord's URLs that carry a credential in their path: a webhook's token (OPERATOR_ALERT_WEBHOOK_URL's) and an
# interaction's (a 15-minute credential). aiohttp's errors name the URL they asked, and tracebacks print them.
_TOKEN_IN_URL = re.compile(r"(/(?:webhooks|interactions)/\d+/)[A-Za-z0-9._\-]+")


def without_tokens(text: str) -> str:
    """`text` with the token of every Discord webhook or interaction URL in it replaced by `***`."""
    return _TOKEN_IN_URL.sub(r"\1***", text)


class TokenlessFormatter(logging.Formatter):
    """The text format, with no webhook or interaction token in a message or a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        return without_tokens(super().format(record))


_job: ContextVar[str | None] = ContextVar("imagine_log_job", default=None)
_guild: ContextVar[int | None] = ContextVar("imagine_log_guild", default=None)


def bind_log_context(*, job: str | None = None, guild: int | None = None) -> None:
    """From now on, in this task (and the tasks it starts), log records are about this job and server."""
    _job.set(job)
    _guild.set(guild)


class LogContextFilter(logging.Filter):
    """Puts the bound job and server on each record (`record.job`, `record.guild`) unless it names its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job", None) is None:
            record.job = _job.get()
        if getattr(record, "guild", None) is None:
            record.guild = _guild.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line, for log collectors. `shard_count` (set once the bot knows it) gives the shard
    of a record's server, by Discord's rule."""

    def __init__(self) -> None:
        super().__init__()
        self.shard_count: int | None = None

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        job, guild = getattr(record, "job", None), getattr(record, "guild", None)
        if job is not None:
            entry["job"] = job
        if isinstance(guild, int):
            entry["guild"] = str(guild)  # a snowflake: JavaScript readers lose precision above 2**53
            if self.shard_count:
                entry["shard"] = (guild >> 22) % self.shard_count
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return without_tokens(json.dumps(entry, ensure_ascii=False))

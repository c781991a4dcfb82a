"""Every repository on one database, opened and closed together: what the composition root builds once."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Self

from storage.alert_bursts import AlertBursts
from storage.clock import Clock, utc_now
from storage.connect import open_database
from storage.database import Database
from storage.durations import TaskDurationRepository
from storage.forms import FormRepository
from storage.guild_settings import GuildSettingsRepository
from storage.jobs import JobRepository
from storage.kept_results import KeptResults
from storage.message_requests import MessageRequestRepository
from storage.owed_answers import OwedAnswerRepository
from storage.quotas import OperatorDefaults, QuotaRepository
from storage.references import ReferenceStore
from storage.usage import UsageLog
from storage.webhook_events import WebhookEvents


@dataclass(frozen=True)
class Storage:
    """The database and every repository on it; `Storage.open(url)` works the same on SQLite and PostgreSQL."""

    db: Database
    jobs: JobRepository
    usage: UsageLog
    quotas: QuotaRepository
    references: ReferenceStore
    guild_settings: GuildSettingsRepository
    forms: FormRepository
    kept_results: KeptResults
    owed_answers: OwedAnswerRepository
    alert_bursts: AlertBursts
    message_requests: MessageRequestRepository
    webhook_events: WebhookEvents
    durations: TaskDurationRepository
    clock: Clock

    @classmethod
    async def open(cls, url: str, *, defaults: OperatorDefaults | None = None, clock: Clock = utc_now) -> Self:
        """Open (and migrate) the database `url` names and build every repository on it."""
        db = await open_database(url)
        return cls.on(db, defaults=defaults, clock=clock)

    @classmethod
    def on(cls, db: Database, *, defaults: OperatorDefaults | None = None, clock: Clock = utc_now) -> Self:
        """Every repository on an open database."""
        return cls(
            db=db,
            jobs=JobRepository(db, clock),
            usage=UsageLog(db, clock),
            quotas=QuotaRepository(db, defaults, clock),
            references=ReferenceStore(db, clock),
            guild_settings=GuildSettingsRepository(db, clock),
            forms=FormRepository(db, clock),
            kept_results=KeptResults(db, clock),
            owed_answers=OwedAnswerRepository(db, clock),
            alert_bursts=AlertBursts(db, clock),
            message_requests=MessageRequestRepository(db, clock),
            webhook_events=WebhookEvents(db, clock),
            durations=TaskDurationRepository(db, clock),
            clock=clock,
        )

    async def close(self) -> None:
        """Close the database (after the transaction in progress, if any)."""
        await self.db.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

"""What the cogs are given: everything is built once in bot.py and injected; cogs never open connections.

Cogs reach storage only through the services of generation/ (never the store itself): the pipeline, the
server settings, the quota service and the job history (docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import discord

from cogs._operators import Operators
from generation.alerts import AlertThrottle
from generation.forms import FormBook
from generation.history import JobHistory
from generation.operator_status import OperatorStatus
from generation.owed_answers import OwedAnswers
from generation.pipeline import Pipeline
from generation.quota_service import QuotaService
from generation.server_settings import ServerSettings
from settings import Settings

if TYPE_CHECKING:
    from cogs._intake import Intake
    from cogs._message_intake import MessageIntake
    from cogs._mod_log import ModerationLog
    from cogs._result_actions import ResultActions


@dataclass(frozen=True)
class Services:
    settings: Settings
    pipeline: Pipeline
    server_settings: ServerSettings
    quotas: QuotaService
    history: JobHistory
    forms: FormBook
    alerts: AlertThrottle
    mod_log: ModerationLog
    intake: Intake
    owed_answers: OwedAnswers
    actions: ResultActions
    chat: MessageIntake
    operator_status: OperatorStatus | None = None
    operators: Operators = field(default_factory=Operators)


def services_of(client: discord.Client) -> Services:
    """The services the composition root attached to the bot (a cog's, or an interaction's `client`)."""
    services = getattr(client, "services", None)
    if not isinstance(services, Services):
        raise RuntimeError("this bot was not built by bot.py: it has no Imagine services")
    return services

"""What the cogs are given: everything is built once in bot.py and injected; cogs never open connections."""

from __future__ import annotations

from dataclasses import dataclass

from discord.ext import commands

from generation.alerts import AlertThrottle
from generation.cooldowns import Cooldowns
from generation.pipeline import Pipeline
from generation.server_settings import ServerSettings
from settings import Settings
from storage.store import Storage


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: Storage
    pipeline: Pipeline
    server_settings: ServerSettings
    cooldowns: Cooldowns
    alerts: AlertThrottle


def services_of(bot: commands.Bot | commands.AutoShardedBot) -> Services:
    """The services the composition root attached to the bot."""
    services = getattr(bot, "services", None)
    if not isinstance(services, Services):
        raise RuntimeError("this bot was not built by bot.py: it has no Imagine services")
    return services

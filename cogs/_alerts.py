"""Operator alerts, posted where they belong.

The operator hears every detail: in the log (generation/alerts.py logs each alert) and, with
OPERATOR_ALERT_WEBHOOK_URL, in their own Discord channel through that webhook. Server admins who chose a log
channel read a fixed text written for them, in the server's language (docs/i18n.md), never upstream or exception
text, and only in servers on the allow-list that this process serves (with several processes, each server's alert
is posted once, by the process that runs its shard). The operator's webhook hears of a burst once in all: from
the process whose alert claimed it (`Alert.to_operator`, generation/alerts.py). Posts go out in the order the
alerts came, so "works again" never comes before the problem it ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

import aiohttp
import discord

from cogs._embeds import NO_MENTIONS
from cogs._locale import guild_locale
from cogs._texts import server_alert_text
from generation.alerts import OPERATOR_ONLY, Alert
from generation.server_settings import ServerSettings
from settings import Secret

log = logging.getLogger(__name__)

# What a post may fail with: Discord's refusal, and, outside it, no route to Discord (aiohttp's errors are
# OSErrors or ClientErrors; discord.py passes them on). One failure must not keep the next post from being made.
_POST_FAILED: Final = (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError)


class AlertPoster:
    """The AlertSink of the bot: posts each alert to the operator's webhook and to the servers' log channels."""

    def __init__(
        self,
        client: discord.Client,
        *,
        server_settings: ServerSettings,
        guild_allowed: Callable[[int], bool],
        owns_guild: Callable[[int], bool],
        operator_webhook_url: Secret | None,
    ) -> None:
        self._client = client
        self._server_settings = server_settings
        self._guild_allowed = guild_allowed
        self._owns_guild = owns_guild
        self._webhook_url = operator_webhook_url
        self._tail: asyncio.Task[None] | None = None

    def __call__(self, alert: Alert) -> None:
        """Synchronous, as an AlertSink must be: the posts run in the background."""
        if self._client.is_closed():
            return
        channels = {
            guild_id: channel_id
            for guild_id, channel_id in self._server_settings.log_channels().items()
            if self._guild_allowed(guild_id) and self._owns_guild(guild_id) and alert.kind not in OPERATOR_ONLY
        }
        self._tail = asyncio.create_task(self._post(alert, channels, after=self._tail), name="operator-alert")

    async def _post(self, alert: Alert, channels: dict[int, int], *, after: asyncio.Task[None] | None) -> None:
        if after is not None:
            await asyncio.wait([after])
        if self._webhook_url is not None and alert.to_operator:
            try:
                webhook = discord.Webhook.from_url(self._webhook_url.reveal(), client=self._client)
                # The operator's own channel reads the details as the log has them, in English.
                await webhook.send(f"⚠️ {alert.text}", allowed_mentions=NO_MENTIONS)
            except (*_POST_FAILED, ValueError) as exc:
                # The exception may quote the URL, whose token is a secret: only its kind is logged.
                log.warning("Could not post an alert to OPERATOR_ALERT_WEBHOOK_URL (%s)", type(exc).__name__)
        if not channels:
            return  # and operator-only alerts have no text for servers
        for guild_id, channel_id in channels.items():
            language = self._server_settings.get(guild_id).language
            text = server_alert_text(alert.kind, guild_locale(self._client, guild_id, language))
            channel = self._client.get_partial_messageable(channel_id, guild_id=guild_id)
            try:
                await channel.send(text, allowed_mentions=NO_MENTIONS)
            except _POST_FAILED as exc:
                log.warning("Could not post an alert in channel %s of guild %s: %r", channel_id, guild_id, exc)

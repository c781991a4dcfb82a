"""Discord's side of the answer owed to a request the bot acknowledged and did not take (generation/owed_answers.py).

The deferred reply is edited while the interaction's token lives (15 minutes): it still shows "thinking...", or
it is gone and a private follow-up answers instead.
After that the reply can no longer be touched, so the member is told in the channel, mentioning only them, as
for late results; where the bot may not post, there is nowhere left to answer and the record is dropped.
"""

from __future__ import annotations

import logging
from typing import Final

import discord

import i18n
from cogs._embeds import NO_MENTIONS, prompt_embed
from cogs._reporter import TOKEN_MARGIN
from generation.owed_answers import Outcome
from storage.clock import utc_now
from storage.owed_answers import RELEASED, OwedAnswer

log = logging.getLogger(__name__)

# The channel will not take the bot's message.
_CHANNEL_REFUSED: Final = frozenset({10003, 50001, 50013})


def owed_text(owed: OwedAnswer, key: str, locale: str | None = None) -> str:
    """What the member is told, in `locale`, else the reply's (public) locale."""
    return i18n.translate(key, locale or owed.locale)


def owed_embeds(owed: OwedAnswer, locale: str | None = None) -> list[discord.Embed]:
    """The prompt as given (so that it can be sent again) and the options that went with it, in `locale`, else the
    reply's (public) locale."""
    if owed.prompt is None:
        return []
    locale = locale or owed.locale
    embed = prompt_embed(owed.prompt, locale)
    options = [
        f"{name}:{owed.options[name]}" for name in ("aspect", "resolution", "n", "model") if owed.options.get(name)
    ]
    attached = int(owed.options.get("attachments") or 0)
    lines = [f"`{' '.join(options)}`"] if options else []
    if attached:
        lines.append(i18n.plural("owed.attach_again", attached, locale))
    if lines:
        embed.add_field(name=i18n.translate("owed.options_title", locale), value="\n".join(lines), inline=False)
    return [embed]


class OwedAnswerer:
    """Answers one owed request: the deferred reply if it can still be edited, else a post in the channel."""

    def __init__(self, client: discord.Client) -> None:
        self._client = client

    async def __call__(self, owed: OwedAnswer) -> Outcome:
        # A record its process gave up (its answer failed there) was not left by a restart.
        key = "owed.unanswered" if owed.owner == RELEASED else "owed.restarted"
        text = owed_text(owed, key)
        if owed.reply_message_id is not None and utc_now() < owed.token_expires_at - TOKEN_MARGIN:
            webhook = discord.Webhook.partial(owed.application_id, owed.interaction_token, client=self._client)
            webhook.type = discord.WebhookType.application
            try:
                await webhook.edit_message(
                    owed.reply_message_id, content=text, embeds=owed_embeds(owed), allowed_mentions=NO_MENTIONS
                )
            except discord.HTTPException as exc:
                if exc.code == 10008:
                    return await self._follow_up(webhook, owed, key, text)
                if exc.status >= 500 or exc.status == 429:
                    return Outcome.RETRY
                # The token died early (or Discord refused the edit): the channel, as after its 15 minutes.
                log.info("Could not edit the reply of interaction %s: %s", owed.interaction_id, exc)
            else:
                return Outcome.ANSWERED
        return await self._post(owed, text)

    async def _follow_up(self, webhook: discord.Webhook, owed: OwedAnswer, key: str, text: str) -> Outcome:
        """The reply is gone while its token lives: deleted by the bot itself on its way to a private answer (a
        refusal deletes the public "thinking" reply, then sends the answer as a follow-up: cogs/_intake.py) when
        it stopped in between, or by a moderator. The member alone is told, in a follow-up; a follow-up cannot
        become the reply any more, so it stays private, and speaks the member's own locale (docs/i18n.md); `text`
        is what the channel reads if it cannot be sent."""
        private = owed.private_locale
        try:
            await webhook.send(
                owed_text(owed, key, private),
                embeds=owed_embeds(owed, private),
                ephemeral=True,
                allowed_mentions=NO_MENTIONS,
            )
        except discord.HTTPException as exc:
            if exc.status >= 500 or exc.status == 429:
                return Outcome.RETRY
            log.info("Could not follow up on interaction %s: %s", owed.interaction_id, exc)
            return await self._post(owed, text)
        return Outcome.ANSWERED

    async def _post(self, owed: OwedAnswer, text: str) -> Outcome:
        if not owed.channel_postable:
            return Outcome.GONE
        channel = self._client.get_partial_messageable(owed.channel_id, guild_id=owed.guild_id)
        requester = discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(owed.user_id)])
        try:
            await channel.send(
                i18n.translate("owed.restarted_channel", owed.locale, member=f"<@{owed.user_id}>", text=text),
                embeds=owed_embeds(owed),
                allowed_mentions=requester,
                nonce=f"owed{owed.interaction_id}"[:25],
            )
        except discord.HTTPException as exc:
            # Before the channel's refusals: this 404 names the message, not the channel.
            if exc.code == 10008:
                return Outcome.ANSWERED  # the nonce's earlier post, deleted since
            if exc.code in _CHANNEL_REFUSED or exc.status in (403, 404):
                return Outcome.GONE
            return Outcome.RETRY
        return Outcome.ANSWERED

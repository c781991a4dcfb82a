"""The application as ``GET /oauth2/applications/@me`` describes it, and channel webhooks an operator creates.

- The application is public (anyone may add the bot) unless a test says otherwise, and owned by one user, or by
  a team: then ``owner`` is the team's pseudo-user and ``team.members`` lists who was invited, with their
  ``membership_state`` (1 invited, 2 accepted), as Discord answers.
- A channel webhook (Server Settings, Integrations, Webhooks) has an id, a token and a channel; its URL is the
  ``https://discord.com/api/webhooks/{id}/{token}`` the Developer Portal shows. ``POST /webhooks/{id}/{token}``
  posts in its channel as the webhook (author: the webhook's user, ``webhook_id`` set), answering 204, or the
  message with ``?wait=true``. An unknown id is ``404 10015``, a wrong token ``401 50027``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.fakes._discord_channels import FakeChannel
from tests.fakes._discord_messages import invalid_webhook_token, unknown
from tests.fakes._discord_model import FakeUser

TEAM_INVITED = 1
TEAM_ACCEPTED = 2


@dataclass
class Application:
    """What the fake says of the bot's application."""

    owner: FakeUser
    public: bool = True
    team_id: int | None = None
    team_accepted: list[FakeUser] = field(default_factory=list)
    team_invited: list[FakeUser] = field(default_factory=list)

    def set_team(self, team_id: int | None, accepted: Sequence[FakeUser], invited: Sequence[FakeUser]) -> None:
        self.team_id = team_id
        self.team_accepted = list(accepted)
        self.team_invited = list(invited)

    def owner_payload(self) -> dict[str, Any]:
        if self.team_id is None:
            return self.owner.to_payload()
        # Discord's pseudo-user for a team-owned application.
        return FakeUser(id=self.team_id, username=f"team{self.team_id}").to_payload()

    def team_payload(self) -> dict[str, Any] | None:
        if self.team_id is None:
            return None
        team_id = str(self.team_id)
        members = [(user, TEAM_ACCEPTED) for user in self.team_accepted] + [
            (user, TEAM_INVITED) for user in self.team_invited
        ]
        return {
            "id": team_id,
            "icon": None,
            "name": "Imagine team",
            "owner_user_id": str(self.team_accepted[0].id if self.team_accepted else self.owner.id),
            "members": [
                {
                    "membership_state": state,
                    "team_id": team_id,
                    "user": user.to_payload(),
                    "role": "admin",
                    "permissions": ["*"],
                }
                for user, state in members
            ],
        }


@dataclass
class ChannelWebhook:
    """An incoming webhook of a channel."""

    id: int
    token: str
    channel: FakeChannel
    user: FakeUser

    @property
    def url(self) -> str:
        return f"https://discord.com/api/webhooks/{self.id}/{self.token}"


class ChannelWebhooks:
    """The channel webhooks that exist, by id."""

    def __init__(self, new_id: Callable[[], int]) -> None:
        self._new_id = new_id
        self.by_id: dict[int, ChannelWebhook] = {}

    def add(self, channel: FakeChannel, name: str) -> ChannelWebhook:
        webhook_id = self._new_id()
        # Discord's tokens are 68 URL-safe characters; discord.py's Webhook.from_url insists on 60 or more.
        token = secrets.token_urlsafe(51)[:68]
        webhook = ChannelWebhook(webhook_id, token, channel, FakeUser(id=webhook_id, username=name, bot=True))
        self.by_id[webhook_id] = webhook
        return webhook

    def find(self, webhook_id: int, token: str) -> ChannelWebhook | None:
        """The webhook of this id (None: not a channel webhook); a wrong token is ``401 50027``."""
        webhook = self.by_id.get(webhook_id)
        if webhook is None:
            return None
        if not secrets.compare_digest(webhook.token, token):
            raise invalid_webhook_token()
        return webhook

    def require(self, webhook_id: int, token: str) -> ChannelWebhook:
        webhook = self.find(webhook_id, token)
        if webhook is None:
            raise unknown("Webhook", 10015)
        return webhook

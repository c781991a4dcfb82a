"""Who may use the operator's commands (/imagine-admin): the application's owner, or the members of the team
that owns it. Resolved once at start-up (the bot's setup hook), from the application Discord describes at login.
"""

from __future__ import annotations

import logging

import discord

log = logging.getLogger(__name__)


class Operators:
    """The user ids of the application's owner or its team's members (invited members who have not accepted are
    not among them)."""

    def __init__(self) -> None:
        self._ids: frozenset[int] = frozenset()

    def resolve(self, application: discord.AppInfo) -> None:
        team = application.team
        if team is not None:
            accepted = discord.TeamMembershipState.accepted
            self._ids = frozenset(member.id for member in team.members if member.membership_state is accepted)
            log.info("Operator commands: the %d member(s) of team %s", len(self._ids), team.name)
        else:
            self._ids = frozenset({application.owner.id})
            log.info("Operator commands: the application's owner (%s)", application.owner.id)

    def allows(self, user_id: int) -> bool:
        return user_id in self._ids

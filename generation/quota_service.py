"""Quotas and usage as the cogs see them: the server's rules, a member's standing, and the usage reports.

Counting is storage's (storage/quotas.py: the ledger is the truth); this is the one door the cogs use to it,
and the place where what the operator allows bounds what a server sets.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from generation.refusals import PromptBlocked
from storage.quotas import Period, QuotaRule, RuleScope, RuleStatus, RuleUsage
from storage.store import Storage
from storage.usage import BLOCKED_STATUS, DailyUsage, MemberUsageSummary


@dataclass(frozen=True)
class RuleSet:
    """A rule as set, and the operator's daily cap that bounds it (when its limit is above the cap)."""

    rule: QuotaRule
    cap: int | None = None
    cap_scope: RuleScope | None = None
    """Which cap `cap` is: `SERVER_CAP` or `MEMBER_CAP` (a member's rule may be bound by either)."""


class QuotaService:
    """Sets and reads a server's quota rules; reports its usage."""

    def __init__(self, store: Storage) -> None:
        self._store = store

    async def set_rule(
        self,
        guild_id: int,
        scope: RuleScope,
        limit: int,
        period: Period,
        role_id: int | None = None,
        *,
        user_id: int | None = None,
    ) -> RuleSet:
        """Create or replace a rule of the server (usage already counted still counts). A limit above the
        operator's cap is kept as set, but the cap is what applies: the answer says so."""
        quotas = self._store.quotas
        rule = await quotas.set_rule(guild_id, scope, limit, period, role_id=role_id, user_id=user_id)
        defaults = quotas.defaults
        # A member can use no more than the whole server may: the server cap bounds member rules too.
        caps = [(defaults.server_daily_cap, RuleScope.SERVER_CAP)]
        if scope is not RuleScope.SERVER:
            caps.insert(0, (defaults.member_daily_cap, RuleScope.MEMBER_CAP))
        bounding = [(cap, cap_scope) for cap, cap_scope in caps if cap is not None and limit > cap]
        if not bounding:
            return RuleSet(rule)
        cap, cap_scope = min(bounding, key=lambda pair: pair[0])
        return RuleSet(rule, cap, cap_scope)

    async def would_refuse(self, guild_id: int, user_id: int, role_ids: Iterable[int], n: int) -> RuleUsage | None:
        """The rule that would refuse `n` more images for the member now (read-only; admission stays exact)."""
        return await self._store.quotas.would_refuse(guild_id, user_id, role_ids, n)

    async def remove_rule(
        self, guild_id: int, scope: RuleScope, role_id: int | None = None, *, user_id: int | None = None
    ) -> bool:
        """Remove a rule; whether there was one."""
        return await self._store.quotas.remove_rule(guild_id, scope, role_id, user_id=user_id)

    async def forget_role(self, guild_id: int, role_id: int) -> bool:
        """Remove the rule of a role the server deleted (no admin could pick it to clear it); whether it had one."""
        return await self._store.quotas.remove_rule(guild_id, RuleScope.ROLE, role_id)

    async def rules(self, guild_id: int) -> list[RuleStatus]:
        """Every rule of the server (the operator's defaults where it has none) with this period's usage."""
        return await self._store.quotas.usage_for_rules(guild_id, include_global=False)

    async def forgive(self, guild_id: int, user_id: int) -> int:
        """Forgive a member's usage of member and role rules this period; the images forgiven."""
        return await self._store.quotas.forgive(guild_id, user_id)

    async def standing(self, guild_id: int, user_id: int, role_ids: Iterable[int]) -> list[RuleUsage]:
        """Each rule that applies to the member, with what they used and when it resets."""
        return await self._store.quotas.usage_for_member(guild_id, user_id, role_ids)

    async def by_member(self, guild_id: int, start: datetime, end: datetime) -> list[MemberUsageSummary]:
        """Images, jobs and failures per member of the server between `start` and `end`."""
        return await self._store.usage.period_summary(guild_id, start, end)

    async def by_day(self, guild_id: int, start: datetime, end: datetime) -> list[DailyUsage]:
        """Images, jobs and failures per UTC day."""
        return await self._store.usage.daily(guild_id, start, end)

    async def record_blocked(
        self, refusal: PromptBlocked, *, guild_id: int, channel_id: int, user_id: int, source: str = "command"
    ) -> str:
        """Write a prompt refused for a blocked word to the usage log: status `blocked`, 0 images, no job (the
        row's id is its own). Returns that id."""
        now = self._store.clock()
        row_id = uuid.uuid4().hex
        await self._store.usage.record(
            job_id=row_id,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            prompt=refusal.prompt,
            model=refusal.model,
            aspect=refusal.aspect,
            resolution=refusal.resolution,
            weight=refusal.weight,
            n=refusal.n,
            images=0,
            reference_count=refusal.reference_count,
            task_id=None,
            status=BLOCKED_STATUS,
            error=None,
            created_at=now,
            finished_at=now,
            source=source,
        )
        return row_id

    async def export_csv(self, file: IO[bytes], *, guild_id: int, start: datetime | None, end: datetime | None) -> int:
        """Write the server's usage log as CSV into `file`; the rows written."""
        return await self._store.usage.export_csv(file, guild_id=guild_id, start=start, end=end)

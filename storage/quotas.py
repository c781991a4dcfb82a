"""Quotas, counted exactly as docs/admins.md ("How quotas count") says.

The truth is a ledger: one row per job with the images it holds and the instant they were reserved. Rules
are only thresholds over that ledger, so changing a rule or a member's roles never resets what was used.

Which rules apply to a member of a guild:
- the server pool: the guild's server rule, else the operator's daily server default (if any);
- the member limit: the member's own override (`/quota member`), if the guild set one; else among the member's
  roles that have a rule, the one with the largest limit; else the guild's member rule; else the operator's
  daily member default (if any);
- the operator's global daily cap (if any), which counts every guild;
- the operator's caps per server and per member (if any): daily limits that no rule of the guild can lift;
  the member cap counts forgiven images too, since forgiving is the guild's and the cap is the operator's.
A rule is met when the images stamped in its current period plus the new ones stay within its limit: the
whole guild's images for the server pool, the member's (not forgiven) for member, role and override rules, all
guilds' for the global cap.

`reserve` checks every applicable rule and writes the reservation in one transaction that first takes the
`quotas` lock (`Database.lock`), so it is exact however many coroutines or processes reserve at once: on
SQLite the transaction holds the write lock from `BEGIN IMMEDIATE`, on PostgreSQL the lock is an advisory
lock that every reservation, refund and forgive takes. One lock for all guilds, since the global cap counts
every guild.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from storage.clock import Clock, from_epoch_ms, optional_from_epoch_ms, to_epoch_ms, utc_now
from storage.database import Database, Row

log = logging.getLogger(__name__)


class Period(StrEnum):
    """A quota period, in UTC: a calendar day, an ISO week (from Monday 00:00) or a calendar month."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    def start(self, now: datetime) -> datetime:
        """The instant the period containing `now` began (aware UTC)."""
        if now.tzinfo is None:
            raise ValueError(f"naive datetime {now!r}: periods need an aware datetime")
        day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        if self is Period.DAY:
            return day
        if self is Period.WEEK:
            return day - timedelta(days=day.weekday())
        return day.replace(day=1)

    def next_start(self, now: datetime) -> datetime:
        """The instant the period containing `now` ends and the next begins: when its usage resets."""
        start = self.start(now)
        if self is Period.DAY:
            return start + timedelta(days=1)
        if self is Period.WEEK:
            return start + timedelta(weeks=1)
        # Day 28 exists in every month, and 4 days later is always in the next one.
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


class RuleScope(StrEnum):
    """Whom a rule counts. `GLOBAL` and the caps are the operator's, never set by a guild."""

    SERVER = "server"
    MEMBER = "member"
    ROLE = "role"
    MEMBER_OVERRIDE = "member_override"
    """One member's own limit in a server: it replaces role and member rules for them."""
    GLOBAL = "global"
    SERVER_CAP = "server_cap"
    """The operator's cap on one server's images (SERVER_DAILY_CAP), whatever the server's rules."""
    MEMBER_CAP = "member_cap"
    """The operator's cap on one member's images in a server (MEMBER_DAILY_CAP), whatever the server's rules."""

    @property
    def counts_server(self) -> bool:
        """Whether the rule counts the whole server's images (else one member's, or every server's)."""
        return self in (RuleScope.SERVER, RuleScope.SERVER_CAP)


_LOCK: Final = "quotas"
"""The lock every change of the ledger takes: reservations, refunds and forgives happen one at a time."""

_SCOPE_ORDER: Final = {
    RuleScope.SERVER: 0,
    RuleScope.MEMBER: 1,
    RuleScope.ROLE: 2,
    RuleScope.MEMBER_OVERRIDE: 3,
    RuleScope.GLOBAL: 4,
    RuleScope.SERVER_CAP: 5,
    RuleScope.MEMBER_CAP: 6,
}
_PERIOD_ORDER: Final = {Period.DAY: 0, Period.WEEK: 1, Period.MONTH: 2}


@dataclass(frozen=True)
class OperatorDefaults:
    """The operator's limits from settings; `None` means unlimited. All count UTC days."""

    member_daily: int | None = None
    server_daily: int | None = None
    global_daily: int | None = None
    server_daily_cap: int | None = None
    """Images per UTC day a server may use, whatever its own rules say."""
    member_daily_cap: int | None = None
    """Images per UTC day a member may use in a server, whatever its rules say."""

    def __post_init__(self) -> None:
        for name in ("member_daily", "server_daily", "global_daily", "server_daily_cap", "member_daily_cap"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"OperatorDefaults.{name} must be >= 0 or None, not {value}")


@dataclass(frozen=True)
class QuotaRule:
    """A rule a guild set. `role_id` is set for role rules only, `user_id` for member overrides only."""

    guild_id: int
    scope: RuleScope
    limit: int
    period: Period
    role_id: int | None = None
    user_id: int | None = None


@dataclass(frozen=True)
class RuleUsage:
    """One rule that applies, and what was used against it in its current period."""

    scope: RuleScope
    period: Period
    limit: int
    used: int
    resets_at: datetime
    role_id: int | None = None
    is_default: bool = False
    """True when the limit is the operator's (a default or the global cap), not a rule the guild set."""
    user_id: int | None = None
    """The member, for a member override."""

    @property
    def remaining(self) -> int:
        """Images that can still be reserved in this period (never negative)."""
        return max(0, self.limit - self.used)


@dataclass(frozen=True)
class ReservationResult:
    """The outcome of `reserve`. Refused: nothing was written, and `refusals` says which rules were full."""

    job_id: str
    requested: int
    granted: bool
    rules: tuple[RuleUsage, ...]
    """Every applicable rule: after this reservation when granted, as things stand when refused."""
    refusals: tuple[RuleUsage, ...] = ()
    """The rules the request would exceed, the one that resets last first."""
    already_reserved: bool = False
    """The job had a reservation already; it was returned as it is, nothing was counted again."""
    held: int = 0
    """Images the job holds now."""

    @property
    def refused_by(self) -> RuleUsage | None:
        """The rule to tell the member about: of those exceeded, the one that keeps them waiting longest."""
        return self.refusals[0] if self.refusals else None


@dataclass(frozen=True)
class Reservation:
    """A job's row in the ledger."""

    job_id: str
    guild_id: int
    user_id: int
    images: int
    reserved_images: int
    reserved_at: datetime
    forgiven_at: datetime | None


@dataclass(frozen=True)
class MemberImages:
    """A member's images counted against member and role rules in a period."""

    user_id: int
    images: int
    role_id: int | None = None
    """The role whose rule governed the member's latest reservation of the period; None: the member rule."""


@dataclass(frozen=True)
class RuleStatus:
    """A rule of a guild (or the operator default standing in for one) and this period's usage, for `/quota show`.

    Pool rules (server, global) and member overrides (one member's) have `used`. Per-member rules (member, role)
    have `members`: every member with images counted in the rule's period, most first; the caller knows who holds
    which role.
    """

    scope: RuleScope
    period: Period
    limit: int
    resets_at: datetime
    role_id: int | None
    is_default: bool
    used: int | None
    members: tuple[MemberImages, ...]
    user_id: int | None = None
    """The member, for a member override."""


@dataclass(frozen=True)
class _Applicable:
    scope: RuleScope
    period: Period
    limit: int
    role_id: int | None
    is_default: bool
    user_id: int | None = None


def _rule_from_row(row: Row) -> QuotaRule:
    scope = RuleScope(row["scope"])
    return QuotaRule(
        guild_id=row["guild_id"],
        scope=scope,
        limit=row["image_limit"],
        period=Period(row["period"]),
        role_id=row["role_id"] if scope is RuleScope.ROLE else None,
        user_id=row["user_id"] if scope is RuleScope.MEMBER_OVERRIDE else None,
    )


# The guild's rules, and its member overrides as rules of their own scope: all of them, or one member's.
_RULES: Final = """
    SELECT guild_id, scope, role_id, 0 AS user_id, image_limit, period FROM quota_rules WHERE guild_id = :guild_id
    UNION ALL
    SELECT guild_id, 'member_override' AS scope, 0 AS role_id, user_id, image_limit, period
    FROM quota_member_overrides WHERE guild_id = :guild_id{member}
"""


def _role_preference(rule: QuotaRule) -> tuple[int, int, int]:
    # Largest limit wins; on a tie the shorter period (it refills sooner), then the lowest role id, so the
    # choice never depends on the order roles come in.
    return (-rule.limit, _PERIOD_ORDER[rule.period], rule.role_id or 0)


class QuotaRepository:
    """Rules, the ledger, reservations and refunds."""

    def __init__(self, db: Database, defaults: OperatorDefaults | None = None, clock: Clock = utc_now) -> None:
        self._db = db
        self._defaults = defaults or OperatorDefaults()
        self._clock = clock

    @property
    def defaults(self) -> OperatorDefaults:
        """The operator's defaults this repository applies."""
        return self._defaults

    # -- rules -----------------------------------------------------------------------------------------------

    async def set_rule(
        self,
        guild_id: int,
        scope: RuleScope,
        limit: int,
        period: Period,
        role_id: int | None = None,
        *,
        user_id: int | None = None,
    ) -> QuotaRule:
        """Create or replace the guild's rule for `scope` (and `role_id` for a role rule, `user_id` for a member
        override)."""
        if scope in (RuleScope.GLOBAL, RuleScope.SERVER_CAP, RuleScope.MEMBER_CAP):
            raise ValueError("the global cap and the caps are the operator's, not a guild rule")
        if (scope is RuleScope.ROLE) != (role_id is not None):
            raise ValueError("a role rule needs a role_id, and only a role rule takes one")
        if (scope is RuleScope.MEMBER_OVERRIDE) != (user_id is not None):
            raise ValueError("a member override needs a user_id, and only a member override takes one")
        if limit < 0:
            raise ValueError(f"a quota limit must be >= 0, not {limit}")
        if user_id is not None:
            await self._db.execute(
                """
                INSERT INTO quota_member_overrides (guild_id, user_id, image_limit, period, updated_at)
                VALUES (:guild_id, :user_id, :limit, :period, :now)
                ON CONFLICT (guild_id, user_id)
                DO UPDATE SET image_limit = excluded.image_limit, period = excluded.period,
                              updated_at = excluded.updated_at
                """,
                {
                    "guild_id": guild_id,
                    "user_id": user_id,
                    "limit": limit,
                    "period": Period(period).value,
                    "now": to_epoch_ms(self._clock()),
                },
            )
            log.info("guild %s: member %s's own limit set to %s per %s", guild_id, user_id, limit, period)
            return QuotaRule(guild_id, scope, limit, Period(period), user_id=user_id)
        await self._db.execute(
            """
            INSERT INTO quota_rules (guild_id, scope, role_id, image_limit, period, updated_at)
            VALUES (:guild_id, :scope, :role_id, :limit, :period, :now)
            ON CONFLICT (guild_id, scope, role_id)
            DO UPDATE SET image_limit = excluded.image_limit, period = excluded.period, updated_at = excluded.updated_at
            """,
            {
                "guild_id": guild_id,
                "scope": scope.value,
                "role_id": role_id or 0,
                "limit": limit,
                "period": Period(period).value,
                "now": to_epoch_ms(self._clock()),
            },
        )
        log.info(
            "guild %s: quota rule %s%s set to %s per %s", guild_id, scope.value, _role_text(role_id), limit, period
        )
        return QuotaRule(guild_id, scope, limit, Period(period), role_id)

    async def remove_rule(
        self, guild_id: int, scope: RuleScope, role_id: int | None = None, *, user_id: int | None = None
    ) -> bool:
        """Remove the rule; returns whether there was one. Usage is untouched: the ledger is not the rules."""
        if scope is RuleScope.MEMBER_OVERRIDE:
            if user_id is None:
                raise ValueError("a member override is removed by its user_id")
            removed = await self._db.execute(
                "DELETE FROM quota_member_overrides WHERE guild_id = :guild_id AND user_id = :user_id",
                {"guild_id": guild_id, "user_id": user_id},
            )
            return removed > 0
        removed = await self._db.execute(
            "DELETE FROM quota_rules WHERE guild_id = :guild_id AND scope = :scope AND role_id = :role_id",
            {"guild_id": guild_id, "scope": scope.value, "role_id": role_id or 0},
        )
        return removed > 0

    async def list_rules(self, guild_id: int, *, member: int | None = None) -> list[QuotaRule]:
        """The guild's own rules: server, member, role rules by role id, then member overrides by member id
        (only `member`'s, when given)."""
        params: dict[str, Any] = {"guild_id": guild_id}
        if member is not None:
            params["user_id"] = member
        sql = _RULES.format(member="" if member is None else " AND user_id = :user_id")
        rules = [_rule_from_row(row) for row in await self._db.fetch_all(sql, params)]
        return sorted(rules, key=lambda rule: (_SCOPE_ORDER[rule.scope], rule.role_id or 0, rule.user_id or 0))

    def _applicable(self, rules: Iterable[QuotaRule], role_ids: frozenset[int], user_id: int) -> list[_Applicable]:
        rules = list(rules)
        by_scope: dict[RuleScope, QuotaRule] = {
            rule.scope: rule for rule in rules if rule.scope not in (RuleScope.ROLE, RuleScope.MEMBER_OVERRIDE)
        }
        override = next(
            (rule for rule in rules if rule.scope is RuleScope.MEMBER_OVERRIDE and rule.user_id == user_id), None
        )
        applicable: list[_Applicable] = []

        server = by_scope.get(RuleScope.SERVER)
        if server is not None:
            applicable.append(_Applicable(RuleScope.SERVER, server.period, server.limit, None, False))
        elif self._defaults.server_daily is not None:
            applicable.append(_Applicable(RuleScope.SERVER, Period.DAY, self._defaults.server_daily, None, True))

        role_rules = [rule for rule in rules if rule.scope is RuleScope.ROLE and rule.role_id in role_ids]
        member = by_scope.get(RuleScope.MEMBER)
        if override is not None:
            applicable.append(
                _Applicable(RuleScope.MEMBER_OVERRIDE, override.period, override.limit, None, False, user_id)
            )
        elif role_rules:
            best = min(role_rules, key=_role_preference)
            applicable.append(_Applicable(RuleScope.ROLE, best.period, best.limit, best.role_id, False))
        elif member is not None:
            applicable.append(_Applicable(RuleScope.MEMBER, member.period, member.limit, None, False))
        elif self._defaults.member_daily is not None:
            applicable.append(_Applicable(RuleScope.MEMBER, Period.DAY, self._defaults.member_daily, None, True))

        if self._defaults.global_daily is not None:
            applicable.append(_Applicable(RuleScope.GLOBAL, Period.DAY, self._defaults.global_daily, None, True))
        applicable.extend(self._caps())
        return applicable

    def _caps(self) -> list[_Applicable]:
        """The operator's caps on a server and on a member, as daily rules."""
        caps = []
        if self._defaults.server_daily_cap is not None:
            caps.append(_Applicable(RuleScope.SERVER_CAP, Period.DAY, self._defaults.server_daily_cap, None, True))
        if self._defaults.member_daily_cap is not None:
            caps.append(_Applicable(RuleScope.MEMBER_CAP, Period.DAY, self._defaults.member_daily_cap, None, True))
        return caps

    # -- counting --------------------------------------------------------------------------------------------

    async def _measure(
        self, guild_id: int, user_id: int, applicable: list[_Applicable], now: datetime
    ) -> list[RuleUsage]:
        """What each applicable rule has used in its current period: one query, one sub-select per rule."""
        usages, _held = await self._measure_and_held(guild_id, user_id, applicable, now, None)
        return usages

    async def _measure_and_held(
        self, guild_id: int, user_id: int, applicable: list[_Applicable], now: datetime, job_id: str | None
    ) -> tuple[list[RuleUsage], int | None]:
        """`_measure`, and in the same query the images `job_id` holds (`None`: it never reserved)."""
        params: dict[str, Any] = {"guild_id": guild_id, "user_id": user_id}
        selects: list[str] = []
        if job_id is not None:
            params["job_id"] = job_id
            selects.append("(SELECT images FROM quota_ledger WHERE job_id = :job_id) AS held")
        if not selects and not applicable:
            return [], None
        for index, rule in enumerate(applicable):
            params[f"start{index}"] = to_epoch_ms(rule.period.start(now))
            params[f"end{index}"] = to_epoch_ms(rule.period.next_start(now))
            window = f"reserved_at >= :start{index} AND reserved_at < :end{index}"
            if rule.scope.counts_server:
                where = f"guild_id = :guild_id AND {window}"
            elif rule.scope is RuleScope.GLOBAL:
                where = window
            elif rule.scope is RuleScope.MEMBER_CAP:
                where = f"guild_id = :guild_id AND user_id = :user_id AND {window}"
            else:
                where = f"guild_id = :guild_id AND user_id = :user_id AND forgiven_at IS NULL AND {window}"
            selects.append(f"(SELECT COALESCE(SUM(images), 0) FROM quota_ledger WHERE {where}) AS used{index}")
        row = await self._db.fetch_one("SELECT " + ", ".join(selects), params)
        assert row is not None
        held = None if job_id is None or row["held"] is None else int(row["held"])
        usages = [
            RuleUsage(
                scope=rule.scope,
                period=rule.period,
                limit=rule.limit,
                used=int(row[f"used{index}"]),
                resets_at=rule.period.next_start(now),
                role_id=rule.role_id,
                is_default=rule.is_default,
                user_id=rule.user_id,
            )
            for index, rule in enumerate(applicable)
        ]
        return usages, held

    async def _rules_for_member(self, guild_id: int, user_id: int, role_ids: frozenset[int]) -> list[_Applicable]:
        return self._applicable(await self.list_rules(guild_id, member=user_id), role_ids, user_id)

    # -- reservations ----------------------------------------------------------------------------------------

    async def reserve(
        self, job_id: str, guild_id: int, user_id: int, role_ids: Iterable[int], n: int, *, weight: int = 1
    ) -> ReservationResult:
        """Reserve `n` images of `weight` each (n × weight weighted images, what every rule counts) for a job
        against every rule that applies to the member, or none at all. The weight is kept with the reservation.

        Exact under any concurrency: the check and the write happen in one transaction that holds the quota
        lock. A job reserves once: calling again with the same `job_id` returns its existing reservation
        (`already_reserved`), counting nothing again, so a resumed job may safely ask twice.
        """
        if n < 1:
            raise ValueError(f"a reservation needs n >= 1 images, not {n}")
        if weight < 1:
            raise ValueError(f"a weight is at least 1, not {weight}")
        roles = frozenset(role_ids)
        n *= weight
        async with self._db.transaction():
            # Rules are read before the lock: a rule changing meanwhile is no different from one changing just
            # before. Under the lock, as few statements as possible: every reservation waits for them.
            applicable = await self._rules_for_member(guild_id, user_id, roles)
            await self._db.lock(_LOCK)
            now = self._clock()
            usages, held = await self._measure_and_held(guild_id, user_id, applicable, now, job_id)
            if held is not None:
                return ReservationResult(job_id, n, granted=True, rules=tuple(usages), already_reserved=True, held=held)
            refusals = _refusals(usages, n)
            if refusals:
                log.info(
                    "quota refused job %s (guild %s, member %s, %s images): %s",
                    job_id,
                    guild_id,
                    user_id,
                    n,
                    ", ".join(f"{u.scope.value}{_role_text(u.role_id)} {u.used}/{u.limit}" for u in refusals),
                )
                return ReservationResult(job_id, n, granted=False, rules=tuple(usages), refusals=tuple(refusals))
            governing_role = next((rule.role_id for rule in applicable if rule.scope is RuleScope.ROLE), None)
            await self._db.execute(
                """
                INSERT INTO quota_ledger
                    (job_id, guild_id, user_id, images, reserved_images, reserved_at, rule_role_id, weight)
                VALUES (:job_id, :guild_id, :user_id, :n, :n, :now, :rule_role_id, :weight)
                """,
                {
                    "job_id": job_id,
                    "guild_id": guild_id,
                    "user_id": user_id,
                    "n": n,
                    "now": to_epoch_ms(now),
                    "rule_role_id": governing_role,
                    "weight": weight,
                },
            )
        granted = tuple(
            RuleUsage(u.scope, u.period, u.limit, u.used + n, u.resets_at, u.role_id, u.is_default, u.user_id)
            for u in usages
        )
        return ReservationResult(job_id, n, granted=True, rules=granted, held=n)

    async def would_refuse(self, guild_id: int, user_id: int, role_ids: Iterable[int], n: int) -> RuleUsage | None:
        """Read-only: the rule that would refuse `n` more images for this member now, or None.

        Takes no lock and writes nothing, so it only saves work on a request that would be refused anyway:
        `reserve` stays the authority.
        """
        applicable = await self._rules_for_member(guild_id, user_id, frozenset(role_ids))
        refusals = _refusals(await self._measure(guild_id, user_id, applicable, self._clock()), n)
        return refusals[0] if refusals else None

    async def refund(self, job_id: str, images: int | None = None) -> int:
        """Give back `images` of the job's reservation (all of it if `None`); returns how many were given back.

        The images return to the period they were reserved in (the ledger row keeps its stamp). Asking for
        more than the job still holds gives back what it holds; refunding a job with nothing left, or with no
        reservation, gives back 0, so repeating a refund is safe.
        """
        if images is not None and images < 0:
            raise ValueError(f"cannot refund a negative number of images ({images})")
        async with self._db.transaction():
            await self._db.lock(_LOCK)
            held = await self._db.fetch_value(
                "SELECT images FROM quota_ledger WHERE job_id = :job_id", {"job_id": job_id}
            )
            if not held:
                return 0
            amount = held if images is None else min(images, held)
            if amount:
                await self._db.execute(
                    "UPDATE quota_ledger SET images = images - :amount WHERE job_id = :job_id",
                    {"amount": amount, "job_id": job_id},
                )
        log.info("refunded %s of job %s's images", amount, job_id)
        return int(amount)

    async def purge_reserved_before(self, cutoff: datetime) -> int:
        """Delete the reservations made before `cutoff`; returns how many. Only for a cutoff past every period's
        start (a month at most) and every job's end (a day at most): such rows count in no rule and hold nothing a
        refund could still give back. The usage log keeps each job's record."""
        return await self._db.execute(
            "DELETE FROM quota_ledger WHERE reserved_at < :cutoff", {"cutoff": to_epoch_ms(cutoff)}
        )

    async def forgive(self, guild_id: int, user_id: int) -> int:
        """Stop counting the member's images for member and role rules (the server pool still counts them).

        Only images that can still count anywhere (reserved since the start of the current week or month,
        whichever is earlier) are marked. Returns the number of images forgiven.
        """
        now = self._clock()
        horizon = min(period.start(now) for period in Period)
        async with self._db.transaction():
            await self._db.lock(_LOCK)
            rows = await self._db.fetch_all(
                """
                UPDATE quota_ledger SET forgiven_at = :now
                WHERE guild_id = :guild_id AND user_id = :user_id AND forgiven_at IS NULL AND reserved_at >= :horizon
                RETURNING images
                """,
                {"guild_id": guild_id, "user_id": user_id, "now": to_epoch_ms(now), "horizon": to_epoch_ms(horizon)},
            )
        forgiven = sum(int(row["images"]) for row in rows)
        log.info("guild %s: forgave %s images of member %s", guild_id, forgiven, user_id)
        return forgiven

    async def reservation(self, job_id: str) -> Reservation | None:
        """The job's ledger row, or `None` if it never reserved."""
        row = await self._db.fetch_one("SELECT * FROM quota_ledger WHERE job_id = :job_id", {"job_id": job_id})
        if row is None:
            return None
        return Reservation(
            job_id=row["job_id"],
            guild_id=row["guild_id"],
            user_id=row["user_id"],
            images=row["images"],
            reserved_images=row["reserved_images"],
            reserved_at=from_epoch_ms(row["reserved_at"]),
            forgiven_at=optional_from_epoch_ms(row["forgiven_at"]),
        )

    async def reserved_for_job(self, job_id: str) -> int:
        """Images the job holds now (0 if it never reserved or was refunded in full)."""
        value = await self._db.fetch_value("SELECT images FROM quota_ledger WHERE job_id = :job_id", {"job_id": job_id})
        return int(value or 0)

    # -- reporting -------------------------------------------------------------------------------------------

    async def images_today(self) -> int:
        """Images counted this UTC day across every server: what GLOBAL_DAILY_LIMIT is checked against."""
        now = self._clock()
        value = await self._db.fetch_value(
            "SELECT COALESCE(SUM(images), 0) FROM quota_ledger WHERE reserved_at >= :start AND reserved_at < :end",
            {"start": to_epoch_ms(Period.DAY.start(now)), "end": to_epoch_ms(Period.DAY.next_start(now))},
        )
        return int(value)

    async def usage_for_member(self, guild_id: int, user_id: int, role_ids: Iterable[int]) -> list[RuleUsage]:
        """Each rule that applies to the member (defaults included), with its usage and when it resets: `/usage`."""
        applicable = await self._rules_for_member(guild_id, user_id, frozenset(role_ids))
        return await self._measure(guild_id, user_id, applicable, self._clock())

    async def usage_for_rules(self, guild_id: int, *, include_global: bool = False) -> list[RuleStatus]:
        """Every rule of the guild (operator defaults where it has none) with this period's usage: `/quota show`."""
        now = self._clock()
        rules = await self.list_rules(guild_id)
        shown: list[_Applicable] = []
        by_scope: dict[RuleScope, QuotaRule] = {rule.scope: rule for rule in rules if rule.scope is not RuleScope.ROLE}
        for scope, default in (
            (RuleScope.SERVER, self._defaults.server_daily),
            (RuleScope.MEMBER, self._defaults.member_daily),
        ):
            own = by_scope.get(scope)
            if own is not None:
                shown.append(_Applicable(scope, own.period, own.limit, None, False))
            elif default is not None:
                shown.append(_Applicable(scope, Period.DAY, default, None, True))
        shown.extend(
            _Applicable(RuleScope.ROLE, role_rule.period, role_rule.limit, role_rule.role_id, False)
            for role_rule in rules
            if role_rule.scope is RuleScope.ROLE
        )
        shown.extend(
            _Applicable(RuleScope.MEMBER_OVERRIDE, own.period, own.limit, None, False, own.user_id)
            for own in rules
            if own.scope is RuleScope.MEMBER_OVERRIDE
        )
        if include_global and self._defaults.global_daily is not None:
            shown.append(_Applicable(RuleScope.GLOBAL, Period.DAY, self._defaults.global_daily, None, True))
        shown.extend(self._caps())

        per_member: dict[tuple[Period, bool], tuple[MemberImages, ...]] = {}
        statuses: list[RuleStatus] = []
        for rule in shown:
            used: int | None = None
            members: tuple[MemberImages, ...] = ()
            if rule.scope.counts_server or rule.scope is RuleScope.GLOBAL:
                (usage,) = await self._measure(guild_id, 0, [rule], now)
                used = usage.used
            else:
                key = (rule.period, rule.scope is RuleScope.MEMBER_CAP)
                if key not in per_member:
                    per_member[key] = await self._member_images(guild_id, rule.period, now, forgiven=key[1])
                members = per_member[key]
                if rule.scope is RuleScope.MEMBER_OVERRIDE:
                    # One member's rule: their images, like a pool's total.
                    used = next((m.images for m in members if m.user_id == rule.user_id), 0)
                    members = ()
            statuses.append(
                RuleStatus(
                    scope=rule.scope,
                    period=rule.period,
                    limit=rule.limit,
                    resets_at=rule.period.next_start(now),
                    role_id=rule.role_id,
                    is_default=rule.is_default,
                    used=used,
                    members=members,
                    user_id=rule.user_id,
                )
            )
        return statuses

    async def _member_images(
        self, guild_id: int, period: Period, now: datetime, *, forgiven: bool = False
    ) -> tuple[MemberImages, ...]:
        """Each member's images in the period, most first; `forgiven` counts forgiven images too."""
        # A literal of this module, never caller input.
        counted = "" if forgiven else "AND counted.forgiven_at IS NULL"
        rows = await self._db.fetch_all(
            f"""
            SELECT counted.user_id, SUM(counted.images) AS images,
                   (SELECT latest.rule_role_id FROM quota_ledger AS latest
                    WHERE latest.guild_id = :guild_id AND latest.user_id = counted.user_id
                      AND latest.reserved_at >= :start AND latest.reserved_at < :end
                    ORDER BY latest.reserved_at DESC, latest.job_id DESC
                    LIMIT 1) AS role_id
            FROM quota_ledger AS counted
            WHERE counted.guild_id = :guild_id {counted}
              AND counted.reserved_at >= :start AND counted.reserved_at < :end
            GROUP BY counted.user_id
            HAVING SUM(counted.images) > 0
            ORDER BY SUM(counted.images) DESC, counted.user_id
            """,
            {
                "guild_id": guild_id,
                "start": to_epoch_ms(period.start(now)),
                "end": to_epoch_ms(period.next_start(now)),
            },
        )
        return tuple(MemberImages(row["user_id"], int(row["images"]), row["role_id"]) for row in rows)


def _refusals(usages: Iterable[RuleUsage], n: int) -> list[RuleUsage]:
    """The rules `n` more images would exceed, the one that keeps the member waiting longest first: a limit of 0
    before any other, since it never comes back by itself (docs/admins.md, What `0` means)."""
    return sorted(
        (usage for usage in usages if usage.used + n > usage.limit),
        key=lambda usage: (usage.limit == 0, usage.resets_at, -_SCOPE_ORDER[usage.scope]),
        reverse=True,
    )


def _role_text(role_id: int | None) -> str:
    return "" if role_id is None else f" (role {role_id})"

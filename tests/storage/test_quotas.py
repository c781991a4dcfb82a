"""Quotas counted as docs/admins.md says: periods, rules and defaults, all-or-nothing, refunds, rollover, forgive."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from storage.database import Database
from storage.quotas import (
    MemberImages,
    OperatorDefaults,
    Period,
    QuotaRepository,
    QuotaRule,
    RuleScope,
    RuleUsage,
)
from tests.storage.conftest import FakeClock

GUILD = 111_111_111_111_111_111
OTHER_GUILD = 222_222_222_222_222_222
ALICE = 1
BOB = 2
CAROL = 3
ARTISTS = 501
PATRONS = 502
NO_DEFAULTS = OperatorDefaults()


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture
def quotas(db: Database, clock: FakeClock) -> QuotaRepository:
    return QuotaRepository(db, NO_DEFAULTS, clock)


def usage_of(usages: list[RuleUsage], scope: RuleScope) -> RuleUsage:
    (found,) = [usage for usage in usages if usage.scope is scope]
    return found


# -- periods -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "now", "start", "next_start"),
    [
        (Period.DAY, at(2026, 3, 11, 23, 59, 59), at(2026, 3, 11), at(2026, 3, 12)),
        (Period.DAY, at(2026, 12, 31, 12), at(2026, 12, 31), at(2027, 1, 1)),
        (Period.WEEK, at(2026, 3, 11, 12), at(2026, 3, 9), at(2026, 3, 16)),  # Wednesday -> Monday
        (Period.WEEK, at(2026, 3, 9), at(2026, 3, 9), at(2026, 3, 16)),  # Monday 00:00 starts a week
        (Period.WEEK, at(2026, 3, 15, 23, 59), at(2026, 3, 9), at(2026, 3, 16)),  # Sunday ends it
        # 2026-12-31 is a Thursday in ISO week 2026-W53, which runs Mon 2026-12-28 to Sun 2027-01-03
        (Period.WEEK, at(2026, 12, 31, 8), at(2026, 12, 28), at(2027, 1, 4)),
        (Period.WEEK, at(2027, 1, 3, 23), at(2026, 12, 28), at(2027, 1, 4)),
        (Period.MONTH, at(2026, 3, 31, 23), at(2026, 3, 1), at(2026, 4, 1)),
        (Period.MONTH, at(2026, 12, 15), at(2026, 12, 1), at(2027, 1, 1)),
        (Period.MONTH, at(2028, 2, 29, 12), at(2028, 2, 1), at(2028, 3, 1)),
    ],
)
def test_period_boundaries_in_utc(period: Period, now: datetime, start: datetime, next_start: datetime) -> None:
    assert period.start(now) == start
    assert period.next_start(now) == next_start


def test_periods_convert_other_time_zones_to_utc_and_refuse_naive_times() -> None:
    from zoneinfo import ZoneInfo

    # 01:30 in Tokyo on the 12th is still the 11th in UTC
    tokyo = datetime(2026, 3, 12, 1, 30, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert Period.DAY.start(tokyo) == at(2026, 3, 11)
    with pytest.raises(ValueError, match="naive"):
        Period.DAY.start(datetime(2026, 3, 11))  # naive on purpose


# -- rules ---------------------------------------------------------------------------------------------------------


async def test_rules_are_set_replaced_listed_and_removed(quotas: QuotaRepository) -> None:
    await quotas.set_rule(GUILD, RuleScope.ROLE, 30, Period.MONTH, role_id=PATRONS)
    await quotas.set_rule(GUILD, RuleScope.MEMBER, 5, Period.DAY)
    await quotas.set_rule(GUILD, RuleScope.SERVER, 100, Period.WEEK)
    await quotas.set_rule(GUILD, RuleScope.ROLE, 10, Period.DAY, role_id=ARTISTS)
    await quotas.set_rule(GUILD, RuleScope.MEMBER, 8, Period.WEEK)  # replaces, not adds
    await quotas.set_rule(OTHER_GUILD, RuleScope.MEMBER, 1, Period.DAY)
    assert await quotas.list_rules(GUILD) == [
        QuotaRule(GUILD, RuleScope.SERVER, 100, Period.WEEK),
        QuotaRule(GUILD, RuleScope.MEMBER, 8, Period.WEEK),
        QuotaRule(GUILD, RuleScope.ROLE, 10, Period.DAY, ARTISTS),
        QuotaRule(GUILD, RuleScope.ROLE, 30, Period.MONTH, PATRONS),
    ]
    assert await quotas.remove_rule(GUILD, RuleScope.ROLE, ARTISTS) is True
    assert await quotas.remove_rule(GUILD, RuleScope.ROLE, ARTISTS) is False
    assert await quotas.remove_rule(GUILD, RuleScope.MEMBER) is True
    assert [rule.scope for rule in await quotas.list_rules(GUILD)] == [RuleScope.SERVER, RuleScope.ROLE]
    assert len(await quotas.list_rules(OTHER_GUILD)) == 1


@pytest.mark.parametrize(
    ("scope", "limit", "role_id", "message"),
    [
        (RuleScope.GLOBAL, 5, None, "operator's"),
        (RuleScope.ROLE, 5, None, "needs a role_id"),
        (RuleScope.MEMBER, 5, ARTISTS, "only a role rule"),
        (RuleScope.SERVER, -1, None, ">= 0"),
    ],
)
async def test_bad_rules_are_refused(
    quotas: QuotaRepository, scope: RuleScope, limit: int, role_id: int | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await quotas.set_rule(GUILD, scope, limit, Period.DAY, role_id=role_id)
    assert await quotas.list_rules(GUILD) == []


def test_operator_defaults_refuse_negative_limits() -> None:
    with pytest.raises(ValueError, match="member_daily"):
        OperatorDefaults(member_daily=-1)


# -- reserving -----------------------------------------------------------------------------------------------------


async def test_a_granted_reservation_reports_every_rule_after_it(quotas: QuotaRepository, clock: FakeClock) -> None:
    await quotas.set_rule(GUILD, RuleScope.SERVER, 50, Period.MONTH)
    await quotas.set_rule(GUILD, RuleScope.MEMBER, 5, Period.DAY)
    result = await quotas.reserve("j1", GUILD, ALICE, [], 3)
    assert result.granted
    assert result.held == 3
    assert result.refused_by is None
    assert result.rules == (
        RuleUsage(RuleScope.SERVER, Period.MONTH, 50, 3, at(2026, 4, 1)),
        RuleUsage(RuleScope.MEMBER, Period.DAY, 5, 3, at(2026, 3, 12)),
    )
    assert result.rules[1].remaining == 2
    reservation = await quotas.reservation("j1")
    assert reservation is not None
    assert (reservation.images, reservation.reserved_images, reservation.reserved_at) == (3, 3, clock.now)
    assert await quotas.reserved_for_job("j1") == 3
    assert await quotas.reserved_for_job("never") == 0


async def test_a_full_rule_refuses_all_or_nothing_and_leaves_the_other_untouched(quotas: QuotaRepository) -> None:
    await quotas.set_rule(GUILD, RuleScope.SERVER, 10, Period.DAY)
    await quotas.set_rule(GUILD, RuleScope.MEMBER, 5, Period.DAY)
    for member in (BOB, CAROL):
        assert (await quotas.reserve(f"job-of-{member}", GUILD, member, [], 4)).granted  # the pool: 8 of 10
    assert (await quotas.reserve("alice1", GUILD, ALICE, [], 1)).granted  # 9 of 10; Alice 1 of 5
    result = await quotas.reserve("alice2", GUILD, ALICE, [], 2)  # her rule has room, the pool has not
    assert not result.granted
    assert result.held == 0
    refused = result.refused_by
    assert refused is not None
    assert (refused.scope, refused.period, refused.limit, refused.used, refused.remaining) == (
        RuleScope.SERVER,
        Period.DAY,
        10,
        9,
        1,
    )
    assert refused.resets_at == at(2026, 3, 12)
    assert result.refusals == (refused,)
    assert await quotas.reservation("alice2") is None
    alice = usage_of(await quotas.usage_for_member(GUILD, ALICE, []), RuleScope.MEMBER)
    assert alice.used == 1  # untouched by the refused request


async def test_a_refusal_names_the_rule_that_resets_last_first(quotas: QuotaRepository) -> None:
    await quotas.set_rule(GUILD, RuleScope.SERVER, 4, Period.DAY)
    await quotas.set_rule(GUILD, RuleScope.MEMBER, 4, Period.MONTH)
    assert (await quotas.reserve("a", GUILD, ALICE, [], 4)).granted
    result = await quotas.reserve("b", GUILD, ALICE, [], 1)
    assert [r.scope for r in result.refusals] == [RuleScope.MEMBER, RuleScope.SERVER]
    assert result.refused_by is not None
    assert result.refused_by.resets_at == at(2026, 4, 1)


async def test_a_refusal_names_a_zero_limit_first_since_it_never_resets(quotas: QuotaRepository) -> None:
    # Alice's weekly limit is full, and the server is turned off for the day: the pool's 0 is what keeps her
    # waiting longest (it does not come back by itself), not the week's reset.
    await quotas.set_rule(GUILD, RuleScope.MEMBER, 2, Period.WEEK)
    assert (await quotas.reserve("a", GUILD, ALICE, [], 2)).granted
    await quotas.set_rule(GUILD, RuleScope.SERVER, 0, Period.DAY)

    result = await quotas.reserve("b", GUILD, ALICE, [], 1)
    refusal = await quotas.would_refuse(GUILD, ALICE, [], 1)

    assert [r.scope for r in result.refusals] == [RuleScope.SERVER, RuleScope.MEMBER]
    assert result.refused_by is not None
    assert result.refused_by.limit == 0
    assert refusal == result.refused_by


async def test_a_zero_limit_stops_generation(quotas: QuotaRepository) -> None:
    await quotas.set_rule(GUILD, RuleScope.MEMBER, 0, Period.DAY)
    result = await quotas.reserve("j", GUILD, ALICE, [], 1)
    assert not result.granted
    assert result.refused_by is not None
    assert (result.refused_by.limit, result.refused_by.remaining) == (0, 0)


async def test_bad_requests_are_refused(quotas: QuotaRepository) -> None:
    with pytest.raises(ValueError, match="n >= 1"):
        await quotas.reserve("j", GUILD, ALICE, [], 0)
    with pytest.raises(ValueError, match="negative"):
        await quotas.refund("j", -1)


async def test_reserving_twice_for_one_job_counts_once(quotas: QuotaRepository) -> None:
    await quotas.set_rule(GUILD, RuleScope.MEMBER, 5, Period.DAY)
    assert (await quotas.reserve("j", GUILD, ALICE, [], 4)).granted
    again = await quotas.reserve("j", GUILD, ALICE, [], 4)
    assert again.granted
    assert again.already_reserved
    assert again.held == 4
    assert usage_of(list(again.rules), RuleScope.MEMBER).used == 4


async def test_no_rules_and_no_defaults_means_unlimited(quotas: QuotaRepository) -> None:
    result = await quotas.reserve("j", GUILD, ALICE, [], 4)
    assert result.granted
    assert result.rules == ()
    assert await quotas.usage_for_member(GUILD, ALICE, []) == []


# -- defaults and the global cap ------------------------------------------------------------------------------------


async def test_operator_defaults_apply_where_the_guild_set_nothing(db: Database, clock: FakeClock) -> None:
    quotas = QuotaRepository(db, OperatorDefaults(member_daily=3, server_daily=5), clock)
    assert (await quotas.reserve("a1", GUILD, ALICE, [], 3)).granted
    refused = await quotas.reserve("a2", GUILD, ALICE, [], 1)
    assert refused.refused_by is not None
    assert (refused.refused_by.scope, refused.refused_by.is_default) == (RuleScope.MEMBER, True)
    assert (await quotas.reserve("b1", GUILD, BOB, [], 2)).granted
    pool = await quotas.reserve("b2", GUILD, BOB, [], 1)
    assert pool.refused_by is not None
    assert (pool.refused_by.scope, pool.refused_by.limit, pool.refused_by.is_default) == (RuleScope.SERVER, 5, True)
    # a guild rule replaces the default
    await quotas.set_rule(GUILD, RuleScope.SERVER, 100, Period.DAY)
    granted = await quotas.reserve("b2", GUILD, BOB, [], 1)
    assert granted.granted
    assert usage_of(list(granted.rules), RuleScope.SERVER) == RuleUsage(
        RuleScope.SERVER, Period.DAY, 100, 6, at(2026, 3, 12), None, False
    )


async def test_the_global_cap_counts_every_guild_for_the_utc_day(db: Database, clock: FakeClock) -> None:
    quotas = QuotaRepository(db, OperatorDefaults(global_daily=6), clock)
    assert (await quotas.reserve("a", GUILD, ALICE, [], 4)).granted
    refused = await quotas.reserve("b", OTHER_GUILD, BOB, [], 3)
    assert refused.refused_by is not None
    assert (refused.refused_by.scope, refused.refused_by.used, refused.refused_by.limit) == (RuleScope.GLOBAL, 4, 6)
    assert (await quotas.reserve("c", OTHER_GUILD, BOB, [], 2)).granted
    await quotas.forgive(GUILD, ALICE)  # forgiving never lifts the operator's cap
    assert not (await quotas.reserve("d", OTHER_GUILD, BOB, [], 1)).granted
    clock.set(2026, 3, 12)
    assert (await quotas.reserve("d", OTHER_GUILD, BOB, [], 1)).granted


# -- roles ---------------------------------------------------------------------------------------------------------


async def test_the_largest_role_limit_wins_over_the_member_rule(quotas: QuotaRepository) -> None:
    await quotas.set_rule(GUILD, RuleScope.MEMBER, 2, Period.DAY)
    await quotas.set_rule(GUILD, RuleScope.ROLE, 6, Period.DAY, role_id=ARTISTS)
    await quotas.set_rule(GUILD, RuleScope.ROLE, 4, Period.DAY, role_id=PATRONS)
    usages = await quotas.usage_for_member(GUILD, ALICE, [PATRONS, ARTISTS, 999])
    assert [(u.scope, u.role_id, u.limit) for u in usages] == [(RuleScope.ROLE, ARTISTS, 6)]
    assert (await quotas.reserve("a", GUILD, ALICE, [PATRONS, ARTISTS], 6)).granted
    # Bob has only the smaller role; a member with no rule-bearing role gets the member rule
    assert [(u.role_id, u.limit) for u in await quotas.usage_for_member(GUILD, BOB, [PATRONS])] == [(PATRONS, 4)]
    assert [(u.scope, u.limit) for u in await quotas.usage_for_member(GUILD, BOB, [999])] == [(RuleScope.MEMBER, 2)]


async def test_a_role_limit_may_be_smaller_than_the_member_rule(quotas: QuotaRepository) -> None:
    # "instead of the member rule": a role rule replaces it, even downwards (e.g. a restricted role)
    await quotas.set_rule(GUILD, RuleScope.MEMBER, 10, Period.DAY)
    await quotas.set_rule(GUILD, RuleScope.ROLE, 1, Period.DAY, role_id=ARTISTS)
    assert (await quotas.reserve("a", GUILD, ALICE, [ARTISTS], 1)).granted
    assert not (await quotas.reserve("b", GUILD, ALICE, [ARTISTS], 1)).granted


async def test_losing_the_role_restores_the_member_rule_without_resetting_usage(quotas: QuotaRepository) -> None:
    await quotas.set_rule(GUILD, RuleScope.MEMBER, 3, Period.DAY)
    await quotas.set_rule(GUILD, RuleScope.ROLE, 10, Period.DAY, role_id=ARTISTS)
    assert (await quotas.reserve("a", GUILD, ALICE, [ARTISTS], 4)).granted
    # without the role the member rule applies again, and the 4 images already count against it
    member = await quotas.usage_for_member(GUILD, ALICE, [])
    assert [(u.scope, u.used, u.limit, u.remaining) for u in member] == [(RuleScope.MEMBER, 4, 3, 0)]
    assert not (await quotas.reserve("b", GUILD, ALICE, [], 1)).granted
    # removing the role rule itself has the same effect
    await quotas.remove_rule(GUILD, RuleScope.ROLE, ARTISTS)
    assert not (await quotas.reserve("c", GUILD, ALICE, [ARTISTS], 1)).granted
    # and giving the rule back brings back the room it had
    await quotas.set_rule(GUILD, RuleScope.ROLE, 10, Period.DAY, role_id=ARTISTS)
    assert (await quotas.reserve("d", GUILD, ALICE, [ARTISTS], 6)).granted


# -- member overrides ----------------------------------------------------------------------------------------------


async def test_a_member_override_beats_a_larger_role_rule_and_the_member_rule(quotas: QuotaRepository) -> None:
    await quotas.set_rule(GUILD, RuleScope.SERVER, 100, Period.DAY)
    await quotas.set_rule(GUILD, RuleScope.MEMBER, 10, Period.DAY)
    await quotas.set_rule(GUILD, RuleScope.ROLE, 50, Period.DAY, role_id=ARTISTS)
    await quotas.set_rule(GUILD, RuleScope.MEMBER_OVERRIDE, 2, Period.WEEK, user_id=ALICE)

    usages = await quotas.usage_for_member(GUILD, ALICE, [ARTISTS])
    assert [(u.scope, u.limit, u.period, u.user_id) for u in usages] == [
        (RuleScope.SERVER, 100, Period.DAY, None),
        (RuleScope.MEMBER_OVERRIDE, 2, Period.WEEK, ALICE),
    ]
    assert (await quotas.reserve("a", GUILD, ALICE, [ARTISTS], 2)).granted
    refused = await quotas.reserve("b", GUILD, ALICE, [ARTISTS], 1)
    assert refused.refused_by is not None
    assert (refused.refused_by.scope, refused.refused_by.used, refused.refused_by.limit) == (
        RuleScope.MEMBER_OVERRIDE,
        2,
        2,
    )
    # Bob, with the same role and no override of his own, keeps the role's limit.
    assert (await quotas.reserve("c", GUILD, BOB, [ARTISTS], 40)).granted
    # The server pool still applies on top of the override.
    await quotas.set_rule(GUILD, RuleScope.MEMBER_OVERRIDE, 1000, Period.DAY, user_id=ALICE)
    refused = await quotas.reserve("d", GUILD, ALICE, [], 59)
    assert refused.refused_by is not None
    assert refused.refused_by.scope is RuleScope.SERVER


async def test_a_member_override_of_0_stops_that_member_only(quotas: QuotaRepository) -> None:
    await quotas.set_rule(GUILD, RuleScope.MEMBER_OVERRIDE, 0, Period.DAY, user_id=ALICE)
    refused = await quotas.reserve("a", GUILD, ALICE, [ARTISTS], 1)
    assert not refused.granted
    assert refused.refused_by is not None
    assert (refused.refused_by.scope, refused.refused_by.limit) == (RuleScope.MEMBER_OVERRIDE, 0)
    assert await quotas.would_refuse(GUILD, ALICE, [], 1) == refused.refused_by
    assert (await quotas.reserve("b", GUILD, BOB, [], 1)).granted
    assert await quotas.reserved_for_job("a") == 0


async def test_removing_an_override_restores_the_members_other_rules_and_keeps_usage(quotas: QuotaRepository) -> None:
    await quotas.set_rule(GUILD, RuleScope.MEMBER, 3, Period.DAY)
    await quotas.set_rule(GUILD, RuleScope.MEMBER_OVERRIDE, 20, Period.DAY, user_id=ALICE)
    await quotas.set_rule(GUILD, RuleScope.MEMBER_OVERRIDE, 5, Period.DAY, user_id=BOB)
    assert (await quotas.reserve("a", GUILD, ALICE, [], 4)).granted

    assert await quotas.remove_rule(GUILD, RuleScope.MEMBER_OVERRIDE, user_id=ALICE) is True
    assert await quotas.remove_rule(GUILD, RuleScope.MEMBER_OVERRIDE, user_id=ALICE) is False

    assert [(u.scope, u.used, u.limit) for u in await quotas.usage_for_member(GUILD, ALICE, [])] == [
        (RuleScope.MEMBER, 4, 3)
    ]
    assert [rule.user_id for rule in await quotas.list_rules(GUILD)] == [None, BOB]


async def test_overrides_are_listed_after_the_other_rules_with_their_members_usage(
    quotas: QuotaRepository, clock: FakeClock
) -> None:
    await quotas.set_rule(GUILD, RuleScope.MEMBER_OVERRIDE, 7, Period.WEEK, user_id=BOB)
    await quotas.set_rule(GUILD, RuleScope.MEMBER_OVERRIDE, 2, Period.DAY, user_id=ALICE)
    await quotas.set_rule(GUILD, RuleScope.MEMBER, 5, Period.DAY)
    await quotas.set_rule(OTHER_GUILD, RuleScope.MEMBER_OVERRIDE, 9, Period.DAY, user_id=ALICE)
    assert (await quotas.reserve("a", GUILD, BOB, [], 3)).granted
    clock.advance(days=1)
    assert (await quotas.reserve("b", GUILD, BOB, [], 1)).granted

    assert await quotas.list_rules(GUILD) == [
        QuotaRule(GUILD, RuleScope.MEMBER, 5, Period.DAY),
        QuotaRule(GUILD, RuleScope.MEMBER_OVERRIDE, 2, Period.DAY, user_id=ALICE),
        QuotaRule(GUILD, RuleScope.MEMBER_OVERRIDE, 7, Period.WEEK, user_id=BOB),
    ]
    statuses = await quotas.usage_for_rules(GUILD)
    overrides = [(s.user_id, s.limit, s.period, s.used) for s in statuses if s.scope is RuleScope.MEMBER_OVERRIDE]
    assert overrides == [(ALICE, 2, Period.DAY, 0), (BOB, 7, Period.WEEK, 4)]


@pytest.mark.parametrize(
    ("scope", "user_id", "message"),
    [
        (RuleScope.MEMBER_OVERRIDE, None, "needs a user_id"),
        (RuleScope.MEMBER, ALICE, "only a member override"),
        (RuleScope.MEMBER_CAP, None, "operator's"),
    ],
)
async def test_bad_overrides_are_refused(
    quotas: QuotaRepository, scope: RuleScope, user_id: int | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await quotas.set_rule(GUILD, scope, 5, Period.DAY, user_id=user_id)
    assert await quotas.list_rules(GUILD) == []


async def test_changing_a_rule_never_resets_what_was_used(quotas: QuotaRepository, clock: FakeClock) -> None:
    await quotas.set_rule(GUILD, RuleScope.MEMBER, 5, Period.DAY)
    assert (await quotas.reserve("a", GUILD, ALICE, [], 3)).granted
    await quotas.set_rule(GUILD, RuleScope.MEMBER, 10, Period.DAY)
    assert [(u.used, u.remaining) for u in await quotas.usage_for_member(GUILD, ALICE, [])] == [(3, 7)]
    clock.advance(days=1)  # Thursday: a new day, the same week
    assert (await quotas.reserve("b", GUILD, ALICE, [], 2)).granted
    await quotas.set_rule(GUILD, RuleScope.MEMBER, 6, Period.WEEK)
    assert [(u.used, u.remaining) for u in await quotas.usage_for_member(GUILD, ALICE, [])] == [(5, 1)]
    await quotas.remove_rule(GUILD, RuleScope.MEMBER)
    await quotas.set_rule(GUILD, RuleScope.MEMBER, 5, Period.WEEK)
    assert [u.used for u in await quotas.usage_for_member(GUILD, ALICE, [])] == [5]


# -- refunds -------------------------------------------------------------------------------------------------------


async def test_a_refund_restores_exactly_what_was_reserved(quotas: QuotaRepository) -> None:
    await quotas.set_rule(GUILD, RuleScope.MEMBER, 4, Period.DAY)
    assert (await quotas.reserve("j", GUILD, ALICE, [], 4)).granted
    assert await quotas.refund("j", 1) == 1  # the API returned 3 of 4
    assert await quotas.reserved_for_job("j") == 3
    assert [u.used for u in await quotas.usage_for_member(GUILD, ALICE, [])] == [3]
    assert await quotas.refund("j", 10) == 3  # clamped to what is left
    assert await quotas.refund("j") == 0  # repeating is safe
    assert await quotas.refund("never reserved") == 0
    assert [u.used for u in await quotas.usage_for_member(GUILD, ALICE, [])] == [0]
    reservation = await quotas.reservation("j")
    assert reservation is not None
    assert (reservation.images, reservation.reserved_images) == (0, 4)


async def test_a_refund_goes_back_to_the_period_the_images_were_reserved_in(
    quotas: QuotaRepository, clock: FakeClock
) -> None:
    await quotas.set_rule(GUILD, RuleScope.MEMBER, 4, Period.DAY)
    await quotas.set_rule(GUILD, RuleScope.SERVER, 100, Period.MONTH)
    clock.set(2026, 3, 11, 23, 59)
    assert (await quotas.reserve("late", GUILD, ALICE, [], 4)).granted
    clock.set(2026, 3, 12, 0, 1)  # the job finishes (and fails) after midnight
    assert (await quotas.reserve("today", GUILD, ALICE, [], 4)).granted
    assert await quotas.refund("late") == 4
    # today's usage is unchanged: the refund went to yesterday
    usages = await quotas.usage_for_member(GUILD, ALICE, [])
    assert [(u.scope, u.used) for u in usages] == [(RuleScope.SERVER, 4), (RuleScope.MEMBER, 4)]
    assert not (await quotas.reserve("more", GUILD, ALICE, [], 1)).granted


async def test_refund_all_when_no_task_was_created(quotas: QuotaRepository) -> None:
    await quotas.set_rule(GUILD, RuleScope.SERVER, 4, Period.DAY)
    assert (await quotas.reserve("j", GUILD, ALICE, [], 4)).granted
    assert not (await quotas.reserve("k", GUILD, BOB, [], 1)).granted
    assert await quotas.refund("j") == 4
    assert (await quotas.reserve("k", GUILD, BOB, [], 4)).granted


# -- rollover --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "last_moment", "first_moment_after"),
    [
        (Period.DAY, at(2026, 3, 11, 23, 59, 59), at(2026, 3, 12)),
        (Period.WEEK, at(2027, 1, 3, 23, 59), at(2027, 1, 4)),  # ISO week 2026-W53 ends on Sunday 2027-01-03
        (Period.MONTH, at(2026, 12, 31, 23, 59), at(2027, 1, 1)),
    ],
)
async def test_a_new_period_starts_from_zero(
    quotas: QuotaRepository, clock: FakeClock, period: Period, last_moment: datetime, first_moment_after: datetime
) -> None:
    await quotas.set_rule(GUILD, RuleScope.MEMBER, 3, period)
    clock.now = period.start(last_moment)  # the very first moment of the period
    assert (await quotas.reserve("first", GUILD, ALICE, [], 2)).granted
    clock.now = last_moment
    assert (await quotas.reserve("second", GUILD, ALICE, [], 1)).granted
    refused = await quotas.reserve("third", GUILD, ALICE, [], 1)
    assert refused.refused_by is not None
    assert refused.refused_by.resets_at == first_moment_after
    clock.now = first_moment_after
    (usage,) = await quotas.usage_for_member(GUILD, ALICE, [])
    assert (usage.used, usage.remaining) == (0, 3)
    assert (await quotas.reserve("third", GUILD, ALICE, [], 3)).granted


async def test_the_iso_week_spans_the_new_year(quotas: QuotaRepository, clock: FakeClock) -> None:
    await quotas.set_rule(GUILD, RuleScope.MEMBER, 5, Period.WEEK)
    clock.set(2026, 12, 31, 10)  # Thursday, ISO 2026-W53
    assert (await quotas.reserve("thu", GUILD, ALICE, [], 3)).granted
    clock.set(2027, 1, 2, 10)  # Saturday, still 2026-W53 although a new calendar year
    (usage,) = await quotas.usage_for_member(GUILD, ALICE, [])
    assert (usage.used, usage.resets_at) == (3, at(2027, 1, 4))
    assert not (await quotas.reserve("sat", GUILD, ALICE, [], 3)).granted


# -- forgive ---------------------------------------------------------------------------------------------------------


async def test_forgive_clears_member_and_role_usage_but_not_the_server_pool(quotas: QuotaRepository) -> None:
    await quotas.set_rule(GUILD, RuleScope.SERVER, 10, Period.DAY)
    await quotas.set_rule(GUILD, RuleScope.MEMBER, 4, Period.DAY)
    await quotas.set_rule(GUILD, RuleScope.ROLE, 5, Period.WEEK, role_id=ARTISTS)
    assert (await quotas.reserve("a", GUILD, ALICE, [], 4)).granted
    assert (await quotas.reserve("b", GUILD, BOB, [], 3)).granted
    assert not (await quotas.reserve("c", GUILD, ALICE, [], 1)).granted
    assert await quotas.forgive(GUILD, ALICE) == 4
    usages = await quotas.usage_for_member(GUILD, ALICE, [])
    assert [(u.scope, u.used) for u in usages] == [(RuleScope.SERVER, 7), (RuleScope.MEMBER, 0)]
    assert [u.used for u in await quotas.usage_for_member(GUILD, ALICE, [ARTISTS])] == [7, 0]
    assert [u.used for u in await quotas.usage_for_member(GUILD, BOB, [])] == [7, 3]  # Bob is not forgiven
    granted = await quotas.reserve("c", GUILD, ALICE, [], 3)
    assert granted.granted
    pool = await quotas.reserve("d", GUILD, ALICE, [], 1)  # 10 of 10 in the pool now
    assert pool.refused_by is not None
    assert pool.refused_by.scope is RuleScope.SERVER
    assert await quotas.forgive(GUILD, ALICE) == 3
    assert await quotas.forgive(GUILD, ALICE) == 0


async def test_refunding_a_forgiven_job_still_frees_the_pool(quotas: QuotaRepository) -> None:
    await quotas.set_rule(GUILD, RuleScope.SERVER, 4, Period.DAY)
    assert (await quotas.reserve("a", GUILD, ALICE, [], 4)).granted
    await quotas.forgive(GUILD, ALICE)
    assert await quotas.refund("a") == 4
    assert (await quotas.reserve("b", GUILD, BOB, [], 4)).granted


# -- /quota show ---------------------------------------------------------------------------------------------------


async def test_usage_for_rules_shows_each_rule_with_this_periods_usage(db: Database, clock: FakeClock) -> None:
    quotas = QuotaRepository(db, OperatorDefaults(member_daily=5, server_daily=50, global_daily=500), clock)
    await quotas.set_rule(GUILD, RuleScope.ROLE, 20, Period.WEEK, role_id=ARTISTS)
    await quotas.reserve("a", GUILD, ALICE, [ARTISTS], 4)
    await quotas.reserve("b", GUILD, BOB, [], 2)
    await quotas.reserve("c", OTHER_GUILD, BOB, [], 3)
    clock.advance(days=1)  # a new day in the same week
    await quotas.reserve("d", GUILD, BOB, [], 1)

    statuses = await quotas.usage_for_rules(GUILD)
    assert [(s.scope, s.role_id, s.is_default) for s in statuses] == [
        (RuleScope.SERVER, None, True),
        (RuleScope.MEMBER, None, True),
        (RuleScope.ROLE, ARTISTS, False),
    ]
    server, member, role = statuses
    assert (server.limit, server.used, server.members, server.resets_at) == (50, 1, (), at(2026, 3, 13))
    assert (member.used, member.members) == (None, (MemberImages(BOB, 1),))
    # This week, everyone, each with the role whose rule governed their latest reservation (None: the member rule).
    assert role.members == (MemberImages(ALICE, 4, ARTISTS), MemberImages(BOB, 3))
    assert role.resets_at == at(2026, 3, 16)

    with_global = await quotas.usage_for_rules(GUILD, include_global=True)
    assert (with_global[-1].scope, with_global[-1].used, with_global[-1].limit) == (RuleScope.GLOBAL, 1, 500)
    quiet = await quotas.usage_for_rules(OTHER_GUILD + 1)
    assert [(s.scope, s.limit, s.used, s.members) for s in quiet] == [
        (RuleScope.SERVER, 50, 0, ()),
        (RuleScope.MEMBER, 5, None, ()),
    ]

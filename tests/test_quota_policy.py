"""Quota arithmetic: costs, limits, the UTC day; a member's allowance, 4K access, blocked words."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot import quota
from bot.models import (
    Allowance,
    AllowanceSource,
    FourKAccess,
    LimitKind,
    MemberBlock,
    MemberControls,
    MemberLimit,
    QuotaInputs,
    QuotaSettings,
    RoleLimit,
    Usage,
)


@pytest.mark.parametrize(("resolution", "weight", "cost"), [("1K", 2, 1), ("2K", 3, 1), ("4K", 2, 2), ("4K", 1, 1)])
def test_job_cost(resolution: str, weight: int, cost: int) -> None:
    assert quota.job_cost(resolution, weight) == cost


@pytest.mark.parametrize(
    ("settings", "usage", "cost", "expected"),
    [
        (QuotaSettings(1), Usage(100, 100, 100), 1, None),
        (QuotaSettings(1, user_daily=1), Usage(0, 0, 0), 1, None),
        (QuotaSettings(1, user_daily=1), Usage(1, 1, 0), 1, LimitKind.USER_DAILY),
        (QuotaSettings(1, user_daily=3), Usage(2, 2, 0), 2, LimitKind.USER_DAILY),
        (QuotaSettings(1, guild_daily=5), Usage(0, 5, 0), 1, LimitKind.GUILD_DAILY),
        (QuotaSettings(1, max_concurrent=2), Usage(0, 0, 2), 1, LimitKind.MAX_CONCURRENT),
    ],
)
def test_check(settings: QuotaSettings, usage: Usage, cost: int, expected: LimitKind | None) -> None:
    refusal = quota.check(settings, usage, cost)
    assert (refusal.limit if refusal else None) == expected


NOBODY = MemberControls()
CAPPED = QuotaSettings(1, user_daily=3, weight_4k=4)
RICH_ROLE = (RoleLimit(7, 10, 1, 0.0),)


@pytest.mark.parametrize(
    ("resolution", "role_ids", "inputs", "enforce", "expected"),
    [
        # outside a server: the operator's 4K weight, no limits
        ("4K", (), None, True, (2, None)),
        # the server's own 4K weight, within the member default
        ("4K", (), QuotaInputs(CAPPED, NOBODY, (), Usage(0, 0, 0)), True, (4, LimitKind.USER_DAILY)),
        ("1K", (), QuotaInputs(CAPPED, NOBODY, (), Usage(2, 2, 0)), True, (1, None)),
        ("1K", (), QuotaInputs(CAPPED, NOBODY, (), Usage(3, 3, 0)), True, (1, LimitKind.USER_DAILY)),
        # a role's allowance replaces the default; the member's own override wins over the role
        ("1K", (7,), QuotaInputs(CAPPED, NOBODY, RICH_ROLE, Usage(3, 3, 0)), True, (1, None)),
        (
            "1K",
            (7,),
            QuotaInputs(CAPPED, MemberControls(limit=MemberLimit(5, 3, 1, 0.0)), RICH_ROLE, Usage(3, 3, 0)),
            True,
            (1, LimitKind.USER_DAILY),
        ),
        # a blocked member is refused before any limit
        (
            "1K",
            (),
            QuotaInputs(CAPPED, MemberControls(block=MemberBlock(5, 1, 0.0)), (), Usage(0, 0, 0)),
            True,
            (1, LimitKind.BLOCKED),
        ),
        # not enforced: the cost only
        ("4K", (), QuotaInputs(CAPPED, NOBODY, (), Usage(9, 9, 9)), False, (4, None)),
    ],
)
def test_reservation(
    resolution: str,
    role_ids: tuple[int, ...],
    inputs: QuotaInputs | None,
    enforce: bool,
    expected: tuple[int, LimitKind | None],
) -> None:
    cost, refusal = quota.reservation(resolution, role_ids, inputs, default_4k_weight=2, enforce=enforce)
    assert (cost, refusal.limit if refusal is not None else None) == expected


def test_day_and_reset_are_utc() -> None:
    late = datetime(2026, 11, 24, 23, 59, 30, tzinfo=UTC).timestamp()
    assert quota.utc_day(late) == "2026-11-24"
    assert quota.next_reset(late) == datetime(2026, 11, 25, tzinfo=UTC).timestamp()


# -- server controls: a member's daily allowance, 4K access, blocked words -------------------------


def roles(*limits: tuple[int, int | None]) -> list[RoleLimit]:
    return [RoleLimit(role_id, daily, set_by=1, set_at=0.0) for role_id, daily in limits]


def override(daily: int | None) -> MemberLimit:
    return MemberLimit(user_id=7, daily=daily, set_by=1, set_at=0.0)


@pytest.mark.parametrize(
    ("server_daily", "role_limits", "member_roles", "member", "expected"),
    [
        # No allowance anywhere: the server's default (or no limit).
        (5, [], [], None, Allowance(5, AllowanceSource.SERVER)),
        (None, [], [101], None, Allowance(None, AllowanceSource.SERVER)),
        # Allowances of roles the member does not have do not count.
        (5, roles((101, 50)), [102], None, Allowance(5, AllowanceSource.SERVER)),
        # A role's allowance replaces the default, lower or higher.
        (5, roles((101, 2)), [101], None, Allowance(2, AllowanceSource.ROLE, 101)),
        (5, roles((101, 20)), [101], None, Allowance(20, AllowanceSource.ROLE, 101)),
        # Two roles: the larger allowance wins; no limit is the largest.
        (1, roles((101, 2), (102, 3)), [101, 102], None, Allowance(3, AllowanceSource.ROLE, 102)),
        (1, roles((102, 3), (101, 2)), [102, 101], None, Allowance(3, AllowanceSource.ROLE, 102)),
        (1, roles((101, None), (102, 3)), [101, 102], None, Allowance(None, AllowanceSource.ROLE, 101)),
        (1, roles((101, 4), (102, 4)), [102, 101], None, Allowance(4, AllowanceSource.ROLE, 101)),
        # A member override beats both roles and the default, upwards or downwards.
        (1, roles((101, 2), (102, 3)), [101, 102], override(10), Allowance(10, AllowanceSource.MEMBER)),
        (9, roles((101, None)), [101], override(1), Allowance(1, AllowanceSource.MEMBER)),
        (9, roles((101, 2)), [101], override(None), Allowance(None, AllowanceSource.MEMBER)),
    ],
)
def test_allowance(
    server_daily: int | None,
    role_limits: list[RoleLimit],
    member_roles: list[int],
    member: MemberLimit | None,
    expected: Allowance,
) -> None:
    assert quota.allowance(server_daily, role_limits, member_roles, member) == expected


@pytest.mark.parametrize(
    ("allowance", "usage", "expected"),
    [
        (Allowance(3, AllowanceSource.ROLE, 1), Usage(2, 2, 0), None),  # the server's user_daily 1 is replaced
        (Allowance(3, AllowanceSource.ROLE, 1), Usage(3, 3, 0), LimitKind.USER_DAILY),
        (Allowance(None, AllowanceSource.MEMBER), Usage(50, 50, 0), None),
        (Allowance(None, AllowanceSource.MEMBER), Usage(50, 100, 0), LimitKind.GUILD_DAILY),  # still applies
        (Allowance(None, AllowanceSource.MEMBER), Usage(0, 0, 2), LimitKind.MAX_CONCURRENT),  # still applies
    ],
)
def test_check_with_an_allowance(allowance: Allowance, usage: Usage, expected: LimitKind | None) -> None:
    settings = QuotaSettings(1, user_daily=1, guild_daily=100, max_concurrent=2)
    refusal = quota.check(settings, usage, 1, allowance)
    assert (refusal.limit if refusal else None) == expected
    if refusal is not None and refusal.limit is LimitKind.USER_DAILY:
        assert refusal.allowed == allowance.daily


@pytest.mark.parametrize(
    ("access", "allowed", "member_roles", "expected"),
    [
        (FourKAccess.EVERYONE, (), (), True),
        (FourKAccess.EVERYONE, (101,), (), True),
        (FourKAccess.OFF, (101,), (101,), False),
        (FourKAccess.ROLES, (101, 102), (5, 102), True),
        (FourKAccess.ROLES, (101,), (5, 102), False),
        (FourKAccess.ROLES, (), (5, 102), False),
    ],
)
def test_may_use_4k(
    access: FourKAccess, allowed: tuple[int, ...], member_roles: tuple[int, ...], expected: bool
) -> None:
    assert quota.may_use_4k(access, allowed, member_roles) is expected


BLOCKED = ("Crème", "forbidden fruit", "naïve", "Straße", "кот")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a creme brulee", "Crème"),  # accents do not matter
        ("CRÈME on a plate", "Crème"),  # nor case
        ("crème.", "Crème"),
        ("a crèmerie", None),  # a word inside another word does not match
        ("ice-creme", "Crème"),  # punctuation separates words
        ("crème_brulee", None),  # an underscore does not
        ("a Forbidden   Fruit tree", "forbidden fruit"),  # a phrase: its words in sequence
        ("the forbidden-fruit", "forbidden fruit"),
        ("forbidden fruity drinks", None),
        ("fruit that is forbidden", None),
        ("a NAIVE painting", "naïve"),
        ("ｎａïｖｅ art", "naïve"),  # compatibility forms (full width) fold too
        ("STRASSE at night", "Straße"),  # case folding: ß is ss
        ("Кот на крыше", "кот"),
        ("котенок", None),
        ("", None),
    ],
)
def test_blocked_phrase(text: str, expected: str | None) -> None:
    assert quota.blocked_phrase(text, BLOCKED) == expected


def test_blocked_phrase_with_no_list_and_phrase_keys() -> None:
    assert quota.blocked_phrase("anything at all", ()) is None
    assert quota.phrase_key("  Forbidden,   FRUIT ") == "forbidden fruit"
    assert quota.phrase_key("Crème") == quota.phrase_key("CREME") == "creme"
    assert quota.phrase_key("!!! ...") == ""

"""Quota arithmetic: costs, limits, the UTC day."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot import quota
from bot.models import LimitKind, QuotaSettings, Usage


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


def test_day_and_reset_are_utc() -> None:
    late = datetime(2026, 11, 24, 23, 59, 30, tzinfo=UTC).timestamp()
    assert quota.utc_day(late) == "2026-11-24"
    assert quota.next_reset(late) == datetime(2026, 11, 25, tzinfo=UTC).timestamp()

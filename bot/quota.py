"""Quota policy: what a job costs and whether it may start. Pure functions; storage applies them
inside one transaction so concurrent requests can never exceed a limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.models import LimitKind, QuotaRefusal, QuotaSettings, Usage


def job_cost(resolution: str, weight_4k: int) -> int:
    """Quota units one job uses: 4K costs more upstream, so it may count as several images."""
    return max(1, weight_4k) if resolution == "4K" else 1


def effective_4k_weight(settings: QuotaSettings, default: int) -> int:
    return settings.weight_4k if settings.weight_4k is not None else default


def check(settings: QuotaSettings, usage: Usage, cost: int) -> QuotaRefusal | None:
    """The first limit a new job of ``cost`` units would break, or ``None`` if it may go ahead."""
    if settings.max_concurrent is not None and usage.user_active >= settings.max_concurrent:
        return QuotaRefusal(LimitKind.MAX_CONCURRENT, settings.max_concurrent, usage.user_active, cost)
    if settings.user_daily is not None and usage.user_used + cost > settings.user_daily:
        return QuotaRefusal(LimitKind.USER_DAILY, settings.user_daily, usage.user_used, cost)
    if settings.guild_daily is not None and usage.guild_used + cost > settings.guild_daily:
        return QuotaRefusal(LimitKind.GUILD_DAILY, settings.guild_daily, usage.guild_used, cost)
    return None


def utc_day(timestamp: float) -> str:
    """The UTC calendar day a timestamp falls on, as ``YYYY-MM-DD`` (the quota period)."""
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d")


def next_reset(timestamp: float) -> float:
    """The next UTC midnight after ``timestamp``: when daily use starts again from zero."""
    day = datetime.fromtimestamp(timestamp, tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (day + timedelta(days=1)).timestamp()

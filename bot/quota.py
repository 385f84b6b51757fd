"""Quota policy: what a job costs and whether it may start, and the server's other controls (a
member's daily allowance from roles and overrides, who may use 4K, blocked words). Pure functions;
storage applies the quota inside one transaction so concurrent requests can never exceed a limit.

A member's own daily limit, in order of precedence:

1. a member override set for them (``/settings limit member``), whatever their roles;
2. else, if any of their roles has an allowance (``/settings limit role``), the highest of those
   (no limit beats any number): it replaces the server's default, so a role may lower it as well
   as raise it;
3. else the server's per-member default (``/quota set user_daily``).

The server-wide limits (``guild_daily``, ``max_concurrent``) apply to every member whatever their
allowance. Blocking a member is its own action, checked before any of this.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Collection, Iterable
from datetime import UTC, datetime, timedelta

from bot.models import (
    Allowance,
    AllowanceSource,
    FourKAccess,
    LimitKind,
    MemberLimit,
    QuotaInputs,
    QuotaRefusal,
    QuotaSettings,
    RoleLimit,
    Usage,
)

MAX_DAILY = 100_000  # the largest per-member or per-role daily allowance an admin may set
MAX_BLOCKED_WORDS = 200  # entries in a server's blocked-word list
MAX_BLOCKED_WORD_CHARS = 100  # characters in one entry


def job_cost(resolution: str, weight_4k: int) -> int:
    """Quota units one job uses: 4K costs more upstream, so it may count as several images."""
    return max(1, weight_4k) if resolution == "4K" else 1


def effective_4k_weight(settings: QuotaSettings, default: int) -> int:
    return settings.weight_4k if settings.weight_4k is not None else default


def check(settings: QuotaSettings, usage: Usage, cost: int, allowance: Allowance | None = None) -> QuotaRefusal | None:
    """The first limit a new job of ``cost`` units would break, or ``None`` if it may go ahead.
    ``allowance`` is the member's own daily limit (default: the server's ``user_daily``)."""
    user_daily = allowance.daily if allowance is not None else settings.user_daily
    if settings.max_concurrent is not None and usage.user_active >= settings.max_concurrent:
        return QuotaRefusal(LimitKind.MAX_CONCURRENT, settings.max_concurrent, usage.user_active, cost)
    if user_daily is not None and usage.user_used + cost > user_daily:
        return QuotaRefusal(LimitKind.USER_DAILY, user_daily, usage.user_used, cost)
    if settings.guild_daily is not None and usage.guild_used + cost > settings.guild_daily:
        return QuotaRefusal(LimitKind.GUILD_DAILY, settings.guild_daily, usage.guild_used, cost)
    return None


def reservation(
    resolution: str,
    role_ids: Collection[int],
    inputs: QuotaInputs | None,
    *,
    default_4k_weight: int,
    enforce: bool = True,
) -> tuple[int, QuotaRefusal | None]:
    """What a new job costs and the refusal it meets (``None``: it may be reserved), from what its
    reservation read: ``inputs`` is ``None`` outside a server. A blocked member is refused first;
    the member's own allowance comes from their override, else their roles, else the default."""
    settings = inputs.settings if inputs is not None else None
    weight = effective_4k_weight(settings, default_4k_weight) if settings is not None else default_4k_weight
    cost = job_cost(resolution, weight)
    if not enforce or inputs is None:
        return cost, None
    member = inputs.member
    if member.blocked:
        return cost, QuotaRefusal(LimitKind.BLOCKED, 0, 0, cost)
    roles = () if member.limit is not None else inputs.role_limits
    return cost, check(
        inputs.settings, inputs.usage, cost, allowance(inputs.settings.user_daily, roles, role_ids, member.limit)
    )


def utc_day(timestamp: float) -> str:
    """The UTC calendar day a timestamp falls on, as ``YYYY-MM-DD`` (the quota period)."""
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d")


def next_reset(timestamp: float) -> float:
    """The next UTC midnight after ``timestamp``: when daily use starts again from zero."""
    day = datetime.fromtimestamp(timestamp, tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (day + timedelta(days=1)).timestamp()


# -- server controls -------------------------------------------------------------------------------


def allowance(
    server_daily: int | None,
    role_limits: Iterable[RoleLimit],
    member_roles: Collection[int],
    override: MemberLimit | None = None,
) -> Allowance:
    """A member's own daily limit: their override, else the highest allowance among their roles
    (``None``, no limit, is the highest), else the server's default ``server_daily``."""
    if override is not None:
        return Allowance(override.daily, AllowanceSource.MEMBER)
    best: RoleLimit | None = None
    for limit in role_limits:
        if limit.role_id not in member_roles:
            continue
        if (
            best is None
            or _more(limit.daily, best.daily)
            or (limit.daily == best.daily and limit.role_id < best.role_id)
        ):
            best = limit
    if best is not None:
        return Allowance(best.daily, AllowanceSource.ROLE, best.role_id)
    return Allowance(server_daily, AllowanceSource.SERVER)


def _more(a: int | None, b: int | None) -> bool:
    """Whether daily limit ``a`` allows more than ``b`` (``None`` is no limit)."""
    if a is None:
        return b is not None
    return b is not None and a > b


def may_use_4k(access: FourKAccess, allowed_roles: Collection[int], member_roles: Iterable[int]) -> bool:
    """Whether a member with ``member_roles`` may ask for 4K in a server."""
    if access is FourKAccess.EVERYONE:
        return True
    if access is FourKAccess.OFF:
        return False
    return any(role in allowed_roles for role in member_roles)


_WORD = re.compile(r"\w+")


def fold(text: str) -> str:
    """Text as blocked words are compared: case folded, compatibility forms unified (NFKD), accents
    and other combining marks removed."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words_of(text: str) -> tuple[str, ...]:
    """The words of ``text`` (runs of letters, digits and underscores), folded."""
    return tuple(_WORD.findall(fold(text)))


def phrase_key(phrase: str) -> str:
    """The form under which a blocked word or phrase is stored and compared ("" if it has no word)."""
    return " ".join(words_of(phrase))


@functools.lru_cache(maxsize=128)
def _phrase_index(phrases: tuple[str, ...]) -> dict[str, list[tuple[tuple[str, ...], str]]]:
    """The phrases by their first word, each as its words and as typed."""
    index: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for phrase in phrases:
        words = words_of(phrase)
        if words:
            index.setdefault(words[0], []).append((words, phrase))
    return index


def blocked_phrase(text: str, phrases: tuple[str, ...]) -> str | None:
    """The first blocked word or phrase that ``text`` contains as whole words (a phrase: its words in
    sequence, whatever separates them), compared case- and accent-insensitively; ``None`` if none."""
    if not phrases:
        return None
    index = _phrase_index(phrases)
    words = words_of(text)
    for i, word in enumerate(words):
        for sequence, phrase in index.get(word, ()):
            if words[i : i + len(sequence)] == sequence:
                return phrase
    return None

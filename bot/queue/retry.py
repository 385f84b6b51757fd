"""Retry timing for idempotent upstream calls: capped exponential backoff with full jitter."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a call is retried.

    ``attempts`` counts every try, the first included. Waits grow from ``base_delay`` and are capped
    at ``max_delay``; every wait is at least ``base_delay / 2``, so a retry is never instant. A
    ``Retry-After`` is honoured as given (with that same floor, so ``Retry-After: 0`` cannot make a
    tight loop); one longer than ``max_retry_after`` is not waited for: the rate limit is reported
    instead, and the client holds every call back for ``max_retry_after``.
    """

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be >= 1")
        if not 0 < self.base_delay <= self.max_delay:
            raise ValueError("RetryPolicy needs 0 < base_delay <= max_delay")
        if self.max_retry_after < 0:
            raise ValueError("RetryPolicy.max_retry_after must be >= 0")

    @property
    def min_delay(self) -> float:
        return self.base_delay / 2

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before try number ``attempt + 1`` (``attempt`` starts at 1)."""
        if retry_after is not None:
            return max(self.min_delay, retry_after)
        # The exponent is bounded so a large attempt number cannot overflow a float.
        ceiling = min(self.max_delay, self.base_delay * (2 ** min(max(0, attempt - 1), 32)))
        # Full jitter keeps many jobs from retrying in lock-step, with a floor so a retry is never instant.
        return float(ceiling / 2 + rng.uniform(0, ceiling / 2))


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (HTTP dates are rare for APIs and are treated as absent)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None

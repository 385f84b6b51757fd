"""Opt-in rate limits: fixed windows keyed by a route regex, answered like Discord (429 + headers)."""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .state import JSON


@dataclass
class RateLimitRule:
    pattern: re.Pattern[str]
    limit: int
    per: float
    method: str | None = None
    #: Send X-RateLimit-* headers on successful answers (discord.py then waits pre-emptively).
    headers: bool = True
    is_global: bool = False
    scope: str = "user"
    bucket: str = ""
    window_start: float | None = None
    used: int = 0
    hits: int = 0
    served_429: int = 0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.pattern.search(path) is not None

    def _roll(self) -> float:
        now = self.clock()
        if self.window_start is None or now - self.window_start >= self.per:
            self.window_start = now
            self.used = 0
        return now

    def reset_after(self) -> float:
        """Seconds until the window resets, rounded UP to the millisecond (a client that waits
        exactly this long must not hit the same window again)."""
        now = self.clock()
        left = self.per if self.window_start is None else max(0.0, self.per - (now - self.window_start))
        return math.ceil(left * 1000) / 1000

    def consume(self) -> bool:
        """Count one request; False means it must be answered with 429."""
        self._roll()
        self.hits += 1
        if self.used >= self.limit:
            self.served_429 += 1
            return False
        self.used += 1
        return True

    def headers_for(self, *, limited: bool) -> dict[str, str]:
        reset_after = self.reset_after()
        remaining = 0 if limited else max(0, self.limit - self.used)
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": self.bucket,
        }
        if limited:
            headers["X-RateLimit-Scope"] = self.scope
            headers["Retry-After"] = str(max(1, math.ceil(reset_after)))
            headers["Via"] = "1.1 google"
            if self.is_global:
                headers["X-RateLimit-Global"] = "true"
        return headers

    def limited_body(self) -> JSON:
        return {
            "message": "You are being rate limited.",
            "retry_after": self.reset_after(),
            "global": self.is_global,
        }


def make_rule(
    pattern: str,
    *,
    limit: int,
    per: float,
    method: str | None = None,
    headers: bool = True,
    is_global: bool = False,
    scope: str | None = None,
) -> RateLimitRule:
    digest = hashlib.sha1(f"{method}:{pattern}".encode(), usedforsecurity=False).hexdigest()[:32]
    return RateLimitRule(
        pattern=re.compile(pattern),
        limit=limit,
        per=per,
        method=method,
        headers=headers,
        is_global=is_global,
        scope=scope or ("global" if is_global else "user"),
        bucket=digest,
    )

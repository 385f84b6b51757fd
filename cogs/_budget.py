"""Discord calls as a budget: token buckets per route and channel, so cosmetic calls never draw a 429.

Discord limits reactions to about 4 a second per channel, and edits of messages through the bot
token to 5 per 5 seconds per channel; every 429 also counts towards the invalid-request ban. The
reply presenter spends these buckets by priority: a final state waits for its turn
(:meth:`CallBudget.take`), a progress refresh or a ❌ is sent only when there is room now
(:meth:`CallBudget.try_take`) and is otherwise skipped (a refresh comes again later; a ❌ is never
retried, since the Cancel button and members' own ❌ do the same).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Rate:
    """``calls`` per ``per`` seconds, at most ``burst`` at once."""

    calls: int
    per: float
    burst: int = 1


REACTIONS = Rate(calls=4, per=1.0, burst=1)
CHANNEL_EDITS = Rate(calls=5, per=5.0, burst=2)
# Edits of one reply through its interaction token (a webhook): 5 per 5 seconds.
TOKEN_EDITS = Rate(calls=5, per=5.0)


class _Bucket:
    __slots__ = ("level", "stamp")

    def __init__(self, level: float, stamp: float) -> None:
        self.level = level
        self.stamp = stamp


class CallBudget:
    """Token buckets keyed by (route kind, channel). Memory stays bounded: full buckets are dropped."""

    def __init__(self, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[Hashable, _Bucket] = {}

    def _refill(self, key: Hashable, rate: Rate) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(rate.burst), now)
        else:
            bucket.level = min(float(rate.burst), bucket.level + (now - bucket.stamp) * rate.calls / rate.per)
            bucket.stamp = now
        if len(self._buckets) > 10_000:  # forget channels whose buckets are full again
            for stale in [k for k, b in self._buckets.items() if b.level >= rate.burst and k != key]:
                del self._buckets[stale]
        return bucket

    def try_take(self, key: Hashable, rate: Rate) -> bool:
        """Spend one call if the bucket has room now; never waits."""
        bucket = self._refill(key, rate)
        if bucket.level >= 1.0:
            bucket.level -= 1.0
            return True
        return False

    async def take(self, key: Hashable, rate: Rate) -> None:
        """Spend one call, waiting for the bucket's next one when it is empty (calls queue in turn)."""
        bucket = self._refill(key, rate)
        bucket.level -= 1.0
        if bucket.level < 0:
            await self._sleep(-bucket.level * rate.per / rate.calls)

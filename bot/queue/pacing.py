"""Spreading calls evenly over time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Pacer:
    """At most ``rate`` turns a second, spread evenly: each caller takes the next free slot, so a
    thousand jobs resumed at once read their status over seconds instead of in one burst."""

    def __init__(self, rate: float, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self._gap = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0

    async def turn(self) -> None:
        now = self._clock()
        slot = max(now, self._next)
        self._next = slot + self._gap
        if slot > now:
            await self._sleep(slot - now)

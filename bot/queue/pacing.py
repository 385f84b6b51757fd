"""Spreading calls evenly over time, in batches that share the process's wake-ups."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Pacer:
    """At most ``rate`` turns a second, given out in ticks of ``tick`` seconds: each tick gives out
    its share of the rate (callers beyond it wait for the next tick with room), so a thousand jobs
    resumed at once read their status over seconds instead of in one burst, and reads that come due
    together (the tracker wakes its polls on a grid) leave together instead of one wake-up each.

    The turns are also counted as they are given out: no ``1 + margin`` seconds ever hold more than
    ``rate`` of them, however late a busy event loop wakes the waiting. The margin covers what
    happens between a turn and the call's arrival (the rest of the HTTP client's work, the network,
    the server's own loop; longer for the later turns of a tick's batch), so that the server too
    never counts more than ``rate`` in one second.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        margin: float = 0.1,
        tick: float = 0.1,
    ) -> None:
        self._window = 1.0 + margin
        self._tick = tick
        self._per_tick = max(1, math.floor(rate * tick / self._window))
        self._clock = clock
        self._sleep = sleep
        self._tick_index = -math.inf
        self._in_tick = 0
        # When the latest turns were given out, as many as one window may hold.
        self._given: deque[float] = deque(maxlen=max(1, math.floor(rate)))

    async def turn(self) -> None:
        now = self._clock()
        index = max(math.floor(now / self._tick), self._tick_index)
        if index != self._tick_index:
            self._tick_index, self._in_tick = index, 0
        if self._in_tick >= self._per_tick:
            self._tick_index, self._in_tick = self._tick_index + 1, 0
        self._in_tick += 1
        start = self._tick_index * self._tick
        if start > now:
            await self._sleep(start - now)
        given = self._given
        while len(given) == given.maxlen and (wait := given[0] + self._window - self._clock()) > 0:
            await self._sleep(wait)
        given.append(self._clock())

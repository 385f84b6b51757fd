"""Spreading calls evenly over time."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Pacer:
    """At most ``rate`` turns a second, spread evenly: each caller takes the next free slot, so a
    thousand jobs resumed at once read their status over seconds instead of in one burst.

    A slot is only the earliest moment a turn may start: a busy event loop wakes sleepers late, and
    turns whose slots have passed would then leave together. So the turns are also counted as they
    are given out: no ``1 + margin`` seconds ever hold more than ``rate`` of them. The margin
    covers what happens between a turn and the call's arrival (the rest of the HTTP client's work,
    the network, the server's own loop), so that the server too never counts more than ``rate`` in
    one second.
    """

    def __init__(
        self, rate: float, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep, margin: float = 0.05
    ) -> None:
        self._window = 1.0 + margin
        self._gap = self._window / rate
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        # When the latest turns were given out, as many as one window may hold.
        self._given: deque[float] = deque(maxlen=max(1, math.floor(rate)))

    async def turn(self) -> None:
        now = self._clock()
        slot = max(now, self._next)
        self._next = slot + self._gap
        if slot > now:
            await self._sleep(slot - now)
        given = self._given
        while len(given) == given.maxlen and (wait := given[0] + self._window - self._clock()) > 0:
            await self._sleep(wait)
        given.append(self._clock())

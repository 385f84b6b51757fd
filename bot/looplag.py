"""Event-loop lag: how late the bot's one event loop runs what is due.

Everything the bot does (Discord events, polls, edits, the gateway heartbeat) shares one asyncio
loop, so a busy loop delays all of it at once. :func:`watch_loop_lag` runs one small task that asks
to sleep a fixed ``interval`` again and again and reports, each time, how much later than asked it
woke up (``bot.metrics.Metrics.loop_lag``, served as ``imagine_event_loop_lag_seconds``)::

    async with watch_loop_lag(metrics.loop_lag):
        ...  # the bot runs; one sample every 50 ms

The clock and the sleep are injectable, for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

__all__ = ["DEFAULT_INTERVAL", "LoopLagMonitor", "watch_loop_lag"]

#: Seconds between samples: 20 wake-ups a second cost next to nothing and catch stalls of 50 ms.
DEFAULT_INTERVAL: Final = 0.05

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Report = Callable[[float], None]


class LoopLagMonitor:
    """Sleeps ``interval`` seconds in a loop and reports each wake-up's delay (never negative)."""

    def __init__(
        self,
        report: Report,
        *,
        interval: float = DEFAULT_INTERVAL,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be > 0")
        self._report = report
        self._interval = interval
        self._clock = clock
        self._sleep = sleep

    async def sample(self) -> float:
        """Sleep once and report (and return) how late the sleep ended."""
        asked = self._clock()
        await self._sleep(self._interval)
        lag = max(0.0, self._clock() - asked - self._interval)
        self._report(lag)
        return lag

    async def run(self) -> None:
        """Sample until cancelled."""
        while True:
            await self.sample()


@contextlib.asynccontextmanager
async def watch_loop_lag(
    report: Report,
    *,
    interval: float = DEFAULT_INTERVAL,
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
) -> AsyncIterator[LoopLagMonitor]:
    """Run a :class:`LoopLagMonitor` in the background for the duration of the block."""
    monitor = LoopLagMonitor(report, interval=interval, clock=clock, sleep=sleep)
    task = asyncio.create_task(monitor.run(), name="loop-lag")
    try:
        yield monitor
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

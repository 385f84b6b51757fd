"""The event-loop lag monitor (bot/looplag.py) on an injected clock, and its histogram."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.looplag import LoopLagMonitor, watch_loop_lag
from bot.metrics import Metrics


class SteppedClock:
    """A clock that a fake sleep moves forward by the time slept plus a scripted extra delay."""

    def __init__(self, extra: list[float]) -> None:
        self.now = 100.0
        self.extra = list(extra)
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds + (self.extra.pop(0) if self.extra else 0.0)


async def test_reports_how_late_each_wake_up_was() -> None:
    clock = SteppedClock([0.0, 0.004, 0.25])
    seen: list[float] = []
    monitor = LoopLagMonitor(seen.append, interval=0.05, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        await monitor.sample()
    assert seen == pytest.approx([0.0, 0.004, 0.25])
    assert clock.slept == [0.05, 0.05, 0.05]


async def test_an_early_wake_up_counts_as_no_lag() -> None:
    clock = SteppedClock([-0.01])
    seen: list[float] = []
    assert await LoopLagMonitor(seen.append, interval=0.05, clock=clock, sleep=clock.sleep).sample() == 0.0
    assert seen == [0.0]


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval"):
        LoopLagMonitor(lambda _: None, interval=0)


async def test_watch_samples_in_the_background_and_stops_with_the_block() -> None:
    clock = SteppedClock([0.3])
    seen: list[float] = []
    five = asyncio.Event()

    def report(lag: float) -> None:
        seen.append(lag)
        if len(seen) >= 5:
            five.set()

    async def sleep(seconds: float) -> None:
        await clock.sleep(seconds)
        await asyncio.sleep(0)  # let the block run between samples

    async with watch_loop_lag(report, interval=0.05, clock=clock, sleep=sleep):
        await asyncio.wait_for(five.wait(), 5)
    count = len(seen)
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(seen) == count  # stopped
    assert seen[0] == pytest.approx(0.3) and seen[1:] == [0.0] * (count - 1)


async def test_a_blocked_loop_shows_up_on_the_real_clock() -> None:
    seen: list[float] = []
    async with watch_loop_lag(seen.append, interval=0.01):
        await asyncio.sleep(0.03)
        time.sleep(0.15)  # noqa: ASYNC251 - blocking the loop on purpose
        await asyncio.sleep(0.03)
    assert max(seen) >= 0.1


def test_metrics_histogram() -> None:
    metrics = Metrics()
    for lag in (0.0005, 0.02, 0.09, 0.3, -1.0):
        metrics.loop_lag(lag)
    text = metrics.render().decode()
    samples = {
        (s.name, s.labels.get("le")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("imagine_event_loop_lag_seconds")
    }
    assert samples[("imagine_event_loop_lag_seconds_count", None)] == 5
    assert samples[("imagine_event_loop_lag_seconds_bucket", "0.001")] == 2  # 0.0005 and the negative one (0)
    assert samples[("imagine_event_loop_lag_seconds_bucket", "0.1")] == 4
    assert samples[("imagine_event_loop_lag_seconds_bucket", "+Inf")] == 5
    assert samples[("imagine_event_loop_lag_seconds_sum", None)] == pytest.approx(0.4105)

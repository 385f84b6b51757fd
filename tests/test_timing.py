"""The learned polling schedule and the estimate shown to members (pure logic), and the pacer."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from dataclasses import replace

import pytest

from bot.jobrun import on_grid, timing_of
from bot.models import JobRecord, JobState
from bot.queue.pacing import Pacer
from bot.timing import MEMORY, PRIOR_SECONDS, WINDOW, PollPolicy, TimingModel

POLICY = PollPolicy(min_interval=0.5, dense=1.0, max_interval=10.0)
JOB = JobRecord(
    id=1,
    status=JobState.QUEUED,
    user_id=1,
    guild_id=None,
    channel_id=1,
    message_id=None,
    application_id=None,
    interaction_token=None,
    token_expires_at=None,
    upload_limit=10 * 1024 * 1024,
    prompt="p",
    aspect_ratio=None,
    resolution="1K",
    with_text=False,
    image_urls=(),
    cost=1,
    quota_day="2026-12-02",
    created_at=90.0,
    submitted_at=100.0,
)


def learned(durations: list[float], tier: str = "1K", per_position: float | None = None) -> TimingModel:
    model = TimingModel(POLICY)
    for seconds in durations:
        model.observe_generation(tier, seconds)
    if per_position is not None:
        model.observe_queue(tier, 1, per_position)
    return model


# Generation times learned: uniformly 10..20 s (10th percentile 11, 95th 19.5).
TEN_TO_TWENTY = [10.0 + i * 0.1 for i in range(101)]


@pytest.mark.parametrize(
    ("running_for", "position", "waited", "expected"),
    [
        (0.0, None, 3.0, 10.0),  # just started: nothing before ~11 s, capped at max_interval
        (5.0, None, 8.0, 6.0),  # sleep until the earliest likely end
        (11.5, None, 15.0, 1.0),  # around the expected end: dense
        (19.0, None, 22.0, 1.0),
        (24.0, None, 27.0, 1.23),  # overdue by 4.5 s (95th percentile 19.5): backs off gently
        (39.0, None, 42.0, 2.0),  # twice as long as the 95th percentile
        (200.0, None, 203.0, 10.0),  # long overdue: never slower than max_interval
        (None, 4, 2.0, 10.0),  # far in the queue (4 × 5 s / 2), capped
        (None, 3, 2.0, 7.5),  # half of the expected wait (15 s)
        (None, 2, 2.0, 5.0),  # the start is due in 10 s, not within max_interval: half of it
        (None, 1, 2.0, 5.0),  # due within max_interval: look when it should start (5 s), not at half
        (None, 0, 12.0, 1.0),  # waiting with no position: the generation clock from the submit
        (None, None, 0.2, 10.0),
    ],
)
def test_next_poll(running_for: float | None, position: int | None, waited: float, expected: float) -> None:
    model = learned(TEN_TO_TWENTY, per_position=5.0)
    got = model.next_poll("1K", running_for=running_for, position=position, waited=waited)
    assert got == pytest.approx(expected, abs=0.11)


def test_an_unknown_queue_speed_is_not_trusted_for_long() -> None:
    """Until the queue's speed is seen, a queued job is looked at again before it could have
    started and finished unseen (the earliest likely generation time), however far back it is."""
    five_to_twenty = learned([5.0 + i * 0.15 for i in range(101)])  # 10th percentile 6.5
    assert five_to_twenty.next_poll("1K", running_for=None, position=40, waited=1.0) == pytest.approx(6.5)
    assert TimingModel(POLICY).next_poll("1K", running_for=None, position=40, waited=1.0) == pytest.approx(6.5)  # prior
    assert TimingModel(POLICY).next_poll("1K", running_for=None, position=1, waited=1.0) == pytest.approx(2.5)
    assert learned(TEN_TO_TWENTY, per_position=5.0).next_poll(
        "1K", running_for=None, position=40, waited=1.0
    ) == pytest.approx(POLICY.max_interval)


def test_bounds_hold_for_any_input() -> None:
    model = learned([0.1, 0.2, 500.0])
    for running_for in (None, 0.0, 0.1, 1.0, 50.0, 1e6):
        for position in (None, 0, 1, 1000):
            interval = model.next_poll("1K", running_for=running_for, position=position, waited=1.0)
            assert POLICY.min_interval <= interval <= POLICY.max_interval


def test_priors_apply_per_tier_until_something_is_learned() -> None:
    model = TimingModel(POLICY)
    slow = model.estimate("4K", running_for=0.0, position=None, waited=0.0).remaining
    fast = model.estimate("1K", running_for=0.0, position=None, waited=0.0).remaining
    assert slow > fast
    assert fast == pytest.approx(PRIOR_SECONDS["1K"], rel=0.2)


@pytest.mark.parametrize(
    ("running_for", "position", "waited", "remaining", "fraction"),
    [
        (None, 3, 1.0, 3 * 5.0 + 15.0, 1.0 / 31.0),  # queued: the positions ahead, then a typical run
        (0.0, None, 2.0, 15.0, 2.0 / 17.0),
        (10.0, None, 12.0, 5.0, 12.0 / 17.0),
        (30.0, None, 32.0, 0.0, 0.99),  # overdue: "any moment", never 100 % before the end
    ],
)
def test_estimate(
    running_for: float | None, position: int | None, waited: float, remaining: float, fraction: float
) -> None:
    model = learned(TEN_TO_TWENTY, per_position=5.0)
    estimate = model.estimate("1K", running_for=running_for, position=position, waited=waited)
    assert estimate.remaining == pytest.approx(remaining, abs=0.2)
    assert estimate.progress == pytest.approx(fraction, abs=0.02)


def test_queue_speed_is_an_average_of_what_was_seen() -> None:
    model = TimingModel(POLICY)
    model.observe_queue("2K", 2, 4.0)  # 2 s per position
    assert model.per_position("2K") == pytest.approx(2.0)
    for _ in range(50):
        model.observe_queue("2K", 1, 6.0)
    assert model.per_position("2K") == pytest.approx(6.0, rel=0.05)
    model.observe_queue("2K", 0, 3.0)  # nothing moved: nothing learned
    model.observe_queue("2K", 1, 0.0)
    assert model.per_position("2K") == pytest.approx(6.0, rel=0.05)


def test_snapshot_survives_a_restart() -> None:
    model = learned(TEN_TO_TWENTY, tier="4K", per_position=3.0)
    again = TimingModel(POLICY)
    again.restore(model.snapshot())
    args = {"running_for": 12.0, "position": None, "waited": 14.0}
    assert again.estimate("4K", **args) == model.estimate("4K", **args)
    assert again.per_position("4K") == pytest.approx(3.0)


@pytest.mark.parametrize("snapshot", [None, "", "not json", "[]", '{"1K": 5}', '{"1K": {"durations": ["x", null]}}'])
def test_an_unreadable_snapshot_leaves_the_priors(snapshot: str | None) -> None:
    model = TimingModel(POLICY)
    model.restore(snapshot)
    fresh = TimingModel(POLICY)
    args = {"running_for": 1.0, "position": None, "waited": 1.0}
    assert model.estimate("1K", **args) == fresh.estimate("1K", **args)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_nonsense_durations_are_not_learned(bad: float) -> None:
    model = TimingModel(POLICY)
    model.observe_generation("1K", bad)
    assert model.snapshot() in ("{}", '{"1K": {"durations": [], "per_position": null, "seen": 0}}')


def test_a_burst_seen_shortest_first_does_not_bias_what_is_learned() -> None:
    """1,000 jobs of 5–20 s started together complete in order of length. A window of the latest
    completions would keep only the longest (95th percentile stuck near 20 s, 10th near 17 s) at
    the end of the burst, and only the shortest in its middle; the sample covers the whole burst."""
    model = TimingModel(POLICY, rng=random.Random(3))
    draw = random.Random(1)
    times = sorted(draw.uniform(5.0, 20.0) for _ in range(1000))
    for seconds in times[:500]:
        model.observe_generation("1K", seconds)
    early, _, late = model._spread("1K")
    assert early == pytest.approx(5.4, abs=0.4) and late == pytest.approx(12.1, abs=0.6)  # the first half
    for seconds in times[500:]:
        model.observe_generation("1K", seconds)
    early, typical, late = model._spread("1K")
    assert early == pytest.approx(6.5, abs=1.0)
    assert typical == pytest.approx(12.5, abs=1.0)
    assert late == pytest.approx(19.25, abs=0.5)


def test_the_sample_follows_a_provider_that_slows_down() -> None:
    model = TimingModel(POLICY, rng=random.Random(5))
    for _ in range(3000):
        model.observe_generation("1K", 10.0)
    for _ in range(6000):
        model.observe_generation("1K", 30.0)
    assert model._spread("1K")[0] == 30.0  # the horizon (MEMORY completions) has passed


def test_snapshot_keeps_how_much_was_seen() -> None:
    model = TimingModel(POLICY, rng=random.Random(2))
    for i in range(5000):
        model.observe_generation("1K", 5.0 + i % 15)
    again = TimingModel(POLICY, rng=random.Random(2))
    again.restore(model.snapshot())
    assert again._tier("1K").seen == MEMORY == model._tier("1K").seen
    assert again._tier("1K").durations == model._tier("1K").durations and len(again._tier("1K").durations) == WINDOW


@pytest.mark.parametrize(
    ("per_position", "position", "now", "expected"),
    [
        (2.0, 3, 120.0, 106.0),  # the last queued read (at 100, 3 ahead) expected it to start at 106
        (2.0, 3, 104.0, 104.0),  # seen generating before that: not later than now
        (2.0, 0, 120.0, 100.0),  # no position: the earliest possible start, that read
        (2.0, None, 120.0, 100.0),
        (None, 3, 120.0, 100.0),  # the queue's speed unknown: the earliest possible start
    ],
)
def test_a_start_seen_late_is_placed_where_the_queue_expected_it(
    per_position: float | None, position: int | None, now: float, expected: float
) -> None:
    model = learned(TEN_TO_TWENTY, per_position=per_position)
    assert model.likely_start("1K", queued_at=100.0, position=position, now=now) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("status", "started_at", "running_since", "running_for"),
    [
        (JobState.RUNNING, 110.0, None, 10.0),  # resumed: only the stored first sight is known
        (JobState.RUNNING, 110.0, 104.0, 16.0),  # it probably started before it was first seen generating
        (JobState.QUEUED, None, None, None),
        (JobState.QUEUED, None, 104.0, None),  # not generating: no generation clock
    ],
)
def test_the_generation_clock_starts_at_the_likely_start(
    status: JobState, started_at: float | None, running_since: float | None, running_for: float | None
) -> None:
    job = replace(JOB, status=status, started_at=started_at)
    assert timing_of(job, 120.0, running_since)["running_for"] == running_for


@pytest.mark.parametrize(
    ("now", "seconds", "tick", "expected"),
    [
        (100.07, 2.0, 0.25, 1.93),  # ends at 102.0, the nearest point of the grid
        (100.2, 2.0, 0.25, 2.05),  # 102.2 → 102.25
        (100.0, 1.5, 0.25, 1.5),  # already on the grid
        (100.07, 0.1, 0.25, 0.1),  # shorter than a tick: as asked
        (100.07, 2.0, 0.0, 2.0),  # no grid
    ],
)
def test_a_poll_waits_until_the_nearest_point_of_the_grid(
    now: float, seconds: float, tick: float, expected: float
) -> None:
    assert on_grid(now, seconds, tick) == pytest.approx(expected)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


async def test_pacer_gives_a_burst_out_tick_by_tick() -> None:
    """25 callers at the same instant, 100 turns a second in ticks of 0.1 s: ten now, ten at the next
    tick, five at the one after; after a quiet spell a turn is given at once."""
    clock = FakeClock()
    pacer = Pacer(100.0, clock=clock, sleep=clock.sleep, margin=0.0, tick=0.1)
    for _ in range(25):
        await pacer.turn()
    assert clock.slept == pytest.approx([0.1] * 10 + [0.2] * 5)
    clock.now += 10.0
    clock.slept.clear()
    await pacer.turn()
    assert clock.slept == []


async def test_turns_due_together_leave_together_within_a_ticks_share() -> None:
    """Turns asked for one by one within a tick are given at once while the tick has room (they
    share the wake-up that brought them); the next one waits for the next tick."""
    clock = FakeClock()
    clock.now = 100.02
    pacer = Pacer(40.0, clock=clock, sleep=clock.sleep, margin=0.0, tick=0.25)
    for _ in range(10):
        await pacer.turn()
        clock.now += 0.001
    assert clock.slept == []
    await pacer.turn()
    assert clock.slept == pytest.approx([100.25 - 100.03])


class StallingClock(FakeClock):
    """A fake clock whose sleepers wake only when the test moves time on, all those due at once, as
    a loop that was busy for a while wakes them."""

    def __init__(self) -> None:
        super().__init__()
        self._due: list[tuple[float, int, asyncio.Future[None]]] = []
        self._count = itertools.count()

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._due, (self.now + seconds, next(self._count), future))
        await future

    async def move_to(self, moment: float) -> None:
        self.now = moment
        while self._due and self._due[0][0] <= moment:
            heapq.heappop(self._due)[2].set_result(None)
        for _ in range(10):  # let the woken run (a turn may sleep again)
            await asyncio.sleep(0)


async def test_turns_keep_a_margin_for_what_happens_before_the_call_arrives() -> None:
    """By default a second holds 10% fewer turns than the rate (a tick's share is rounded down), so
    that jitter between the bot and the upstream cannot put more than the rate into one second
    where they arrive."""
    clock = FakeClock()
    pacer = Pacer(200.0, clock=clock, sleep=clock.sleep)
    for _ in range(19):  # ticks of 0.1 s: 200 × 0.1 / 1.1 = 18.2, 18 a tick
        await pacer.turn()
    assert clock.slept == [pytest.approx(0.1)]


async def test_a_stalled_loop_never_lets_more_than_rate_turns_into_one_second() -> None:
    """Thirty reads wait for their turns (10 a second, one a tick); the loop is busy from 100.45 to
    101.45, so every tick in between comes due at once. Counted as they are given out, no second
    holds more than 10 of them, and all are given out soon after the rate allows."""
    clock = StallingClock()
    pacer = Pacer(10.0, clock=clock, sleep=clock.sleep, margin=0.0, tick=0.1)
    given: list[float] = []

    async def read() -> None:
        await pacer.turn()
        given.append(clock.now)

    tasks = [asyncio.create_task(read()) for _ in range(30)]
    await clock.move_to(100.0)
    for moment in (100.1, 100.2, 100.3, 100.4, 101.45, *(101.5 + 0.05 * i for i in range(60))):
        await clock.move_to(moment)
    await asyncio.gather(*tasks)
    busiest = max(sum(1 for t in given if start <= t < start + 1.0) for start in given)
    assert busiest <= 10
    assert len(given) == 30 and max(given) <= 103.5  # 102.9 at best, and the loop lost a second

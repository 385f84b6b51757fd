"""The learned polling schedule and the estimate shown to members (pure logic), and the pacer."""

from __future__ import annotations

import pytest

from bot.jobrun import Pacer
from bot.timing import PRIOR_SECONDS, PollPolicy, TimingModel

POLICY = PollPolicy(min_interval=0.5, dense=1.0, max_interval=10.0)


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
        (24.0, None, 27.0, 3.25),  # overdue by 4.5 s (95th percentile 19.5): backs off gently
        (200.0, None, 203.0, 10.0),  # long overdue: never slower than max_interval
        (None, 4, 2.0, 10.0),  # far in the queue (4 × 5 s / 2), capped
        (None, 2, 2.0, 5.0),  # half of the expected wait
        (None, 0, 12.0, 1.0),  # waiting with no position: the generation clock from the submit
        (None, None, 0.2, 10.0),
    ],
)
def test_next_poll(running_for: float | None, position: int | None, waited: float, expected: float) -> None:
    model = learned(TEN_TO_TWENTY, per_position=5.0)
    got = model.next_poll("1K", running_for=running_for, position=position, waited=waited)
    assert got == pytest.approx(expected, abs=0.11)


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
    assert model.snapshot() in ("{}", '{"1K": {"durations": [], "per_position": null}}')


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


async def test_pacer_spreads_a_burst_evenly() -> None:
    clock = FakeClock()
    pacer = Pacer(100.0, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        await pacer.turn()  # five callers at the same instant
    assert clock.slept == pytest.approx([0.01, 0.02, 0.03, 0.04])
    clock.now += 10.0
    clock.slept.clear()
    await pacer.turn()  # after a quiet spell, no wait
    assert clock.slept == []

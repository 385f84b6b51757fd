"""What finished jobs teach about the next ones: how long each tier takes, how fast the queue moves.

:class:`TimingModel` keeps, per size tier, a window of recent generation times and an average of
the seconds the upstream's queue takes to advance one position. From them it answers two
questions for a job in progress: when to look at it next (:meth:`TimingModel.next_poll`: sparsely
while it is far from its expected end, densely around it) and when it will probably be done
(:meth:`TimingModel.estimate`, shown to the member as an ETA and a progress bar). Pure logic: the
tracker feeds it observations, and the store keeps a snapshot so a restart starts informed.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field

# Before anything is learned: the provider's typical generation times.
PRIOR_SECONDS = {"1K": 13.0, "2K": 16.0, "4K": 22.0}
PRIOR_PER_POSITION = 5.0
WINDOW = 200  # generation times kept per tier: a sample of the last MEMORY completions
# How far back the sample reaches. Completions arrive shortest first after a burst (and longest last
# at its end), so a window of the latest completions is biased either way exactly when it matters;
# a sample drawn at random from the last MEMORY completions (reservoir sampling with a horizon)
# sees the whole burst, and still follows a provider that slows down within a few thousand jobs.
MEMORY = 2000
EWMA_WEIGHT = 0.1


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """Bounds of the schedule. ``dense``: the interval around the expected end (half of it is the
    typical delay between the upstream finishing and the bot noticing)."""

    min_interval: float = 0.5
    dense: float = 1.0
    max_interval: float = 10.0


@dataclass(frozen=True, slots=True)
class Estimate:
    """A job's expected remaining time and how far along it is (0..1), for the member."""

    remaining: float
    progress: float


@dataclass
class TierStats:
    durations: list[float] = field(default_factory=list)
    seen: int = 0  # completions observed (the reservoir's count, capped at MEMORY)
    per_position: float | None = None

    def add(self, seconds: float, rng: random.Random) -> None:
        """Reservoir sampling over the last ``MEMORY`` completions: once the window is full, the
        new time replaces a random slot with probability ``WINDOW / min(seen, MEMORY)``."""
        self.seen = min(self.seen + 1, MEMORY)
        if len(self.durations) < WINDOW:
            self.durations.append(seconds)
            return
        slot = rng.randrange(self.seen)
        if slot < WINDOW:
            self.durations[slot] = seconds

    def quantile(self, q: float, prior: float) -> float:
        if not self.durations:
            return prior * (0.4 + 1.0 * q)  # a spread around the prior until there is data
        ordered = sorted(self.durations)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class TimingModel:
    """Per-tier generation times and queue speed, learned from finished jobs."""

    def __init__(self, policy: PollPolicy | None = None, *, rng: random.Random | None = None) -> None:
        self.policy = policy or PollPolicy()
        self._rng = rng or random.Random()
        self._tiers: dict[str, TierStats] = {}
        self._cache: dict[str, tuple[float, float, float]] = {}

    def _tier(self, tier: str) -> TierStats:
        return self._tiers.setdefault(tier, TierStats())

    # -- learning ----------------------------------------------------------------------------

    def observe_generation(self, tier: str, seconds: float) -> None:
        """A job of ``tier`` generated for ``seconds`` (from running to done)."""
        if seconds > 0 and math.isfinite(seconds):
            self._tier(tier).add(seconds, self._rng)
            self._cache.pop(tier, None)

    def observe_queue(self, tier: str, positions: int, seconds: float) -> None:
        """The queue advanced ``positions`` in ``seconds`` while a job of ``tier`` waited."""
        if positions <= 0 or seconds <= 0:
            return
        sample = seconds / positions
        stats = self._tier(tier)
        old = stats.per_position
        stats.per_position = sample if old is None else old + EWMA_WEIGHT * (sample - old)

    # -- answers -----------------------------------------------------------------------------

    def _spread(self, tier: str) -> tuple[float, float, float]:
        """(early, typical, late) generation times: the 10th, 50th and 95th percentiles."""
        if (cached := self._cache.get(tier)) is None:
            stats, prior = self._tier(tier), PRIOR_SECONDS.get(tier, PRIOR_SECONDS["1K"])
            cached = (stats.quantile(0.10, prior), stats.quantile(0.50, prior), stats.quantile(0.95, prior))
            self._cache[tier] = cached
        return cached

    def per_position(self, tier: str) -> float:
        learned = self._tier(tier).per_position
        return learned if learned is not None else PRIOR_PER_POSITION

    def next_poll(self, tier: str, *, running_for: float | None, position: int | None, waited: float) -> float:
        """Seconds until the next status read of a job.

        ``running_for``: seconds since it was seen generating (None while queued); ``position``:
        jobs ahead of it (None or 0 when unknown); ``waited``: seconds since it was submitted.
        """
        policy = self.policy
        if running_for is None and position:
            learned = self._tier(tier).per_position
            if learned is None:
                # The queue's speed is not known yet (a first start, or a first burst): the job may
                # start at any moment, so look again before it could be done, as if it had started.
                interval = min(0.5 * position * PRIOR_PER_POSITION, self._spread(tier)[0])
            else:
                # Far in the queue: look again when about half of the expected wait has passed.
                # Near its front (the start is due within the longest interval): look when it should
                # start, not at halves of halves of the wait; its generation clock then starts at
                # the start the last read expected (see likely_start).
                wait = position * learned
                interval = wait if wait < policy.max_interval else 0.5 * wait
        else:
            # Generating (or waiting with no position): the clock of the generation time applies.
            elapsed = running_for if running_for is not None else waited
            early, _, late = self._spread(tier)
            if elapsed < early:
                interval = early - elapsed  # nothing is likely to happen before then
            elif elapsed < late:
                interval = policy.dense
            else:
                # Overdue: back off gently, in proportion to how late it is. Early in a burst only the
                # shortest jobs have finished, so "late" is learned short and most jobs run past it.
                interval = policy.dense * (1.0 + (elapsed - late) / late)
        return min(policy.max_interval, max(policy.min_interval, interval))

    def may_be_done(self, tier: str, *, running_for: float | None) -> bool:
        """Whether a job generating for ``running_for`` seconds may well have finished: it is past
        the earliest likely generation time (a poll then reads the result at once, if it is there)."""
        return running_for is not None and running_for >= self._spread(tier)[0]

    def likely_start(self, tier: str, *, queued_at: float, position: int | None, now: float) -> float:
        """When a job first seen generating at ``now`` probably started: where the last read that saw
        it queued (at ``queued_at``, ``position`` jobs ahead) expected it to, within that read and
        now. Without a learned queue speed: that read, the earliest it can have started."""
        learned = self._tier(tier).per_position
        if learned is None or not position:
            return queued_at
        return min(now, queued_at + position * learned)

    def estimate(self, tier: str, *, running_for: float | None, position: int | None, waited: float) -> Estimate:
        _, typical, late = self._spread(tier)
        if running_for is None:
            queue_left = (position or 0) * self.per_position(tier)
            remaining = queue_left + typical
            done = waited
        else:
            expected = typical if running_for < typical else min(late, running_for * 1.2)
            remaining = max(0.0, expected - running_for)
            done = waited
        total = done + remaining
        return Estimate(remaining=remaining, progress=0.0 if total <= 0 else min(0.99, done / total))

    # -- persistence -------------------------------------------------------------------------

    def snapshot(self) -> str:
        """Everything learned, as JSON (kept in the database's meta table)."""
        return json.dumps(
            {
                tier: {
                    "durations": [round(d, 3) for d in stats.durations],
                    "seen": stats.seen,
                    "per_position": stats.per_position,
                }
                for tier, stats in self._tiers.items()
            },
            sort_keys=True,
        )

    def restore(self, snapshot: str | None) -> None:
        """Load a :meth:`snapshot`; anything unreadable is ignored (the priors apply)."""
        if not snapshot:
            return
        try:
            data = json.loads(snapshot)
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        for tier, entry in data.items():
            if not isinstance(entry, dict):
                continue
            stats = self._tier(str(tier))
            for value in entry.get("durations") or []:
                if isinstance(value, int | float) and len(stats.durations) < WINDOW:
                    stats.durations.append(float(value))
            seen = entry.get("seen")
            stats.seen = min(MEMORY, max(len(stats.durations), seen if isinstance(seen, int) else 0))
            per_position = entry.get("per_position")
            if isinstance(per_position, int | float) and per_position > 0:
                stats.per_position = float(per_position)
        self._cache.clear()

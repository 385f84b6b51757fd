"""Polling: delivery lag against status polls per job, fixed intervals beside the learned schedule.

Run from the repository root, after ``pip install -e ".[dev]"``::

    python bench/polling.py [--jobs 1000] [--seed 1] [--intervals 1,2,3,5,10]

(``python -m bench.polling`` works too.) A pure simulation on a virtual clock, no network, a few
seconds. The same jobs (durations drawn uniformly from 5 to 20 s, seeded) are followed by each
policy, in two cases: no queue (each job starts when it is submitted) and a queue (the jobs are
submitted within 5 s to an upstream that runs 100 at a time, first in first out, and reports each
waiting job's position as the simulator does). A policy polls a job once right after its submit, as
the bot does, and then waits:

- ``fixed N s``: N seconds (times 0.9–1.1, the bot's jitter), ending on the bot's 0.25-s grid of
  wake-ups (``bot.jobrun.on_grid``), as every wait below;
- ``learned``: what ``bot.timing.TimingModel.next_poll`` answers for what the bot would know at
  that poll (generating for how long since it was first *seen* generating, or its queue position,
  or how long since the submit), times the same jitter, with the bot's default bounds. The model
  learns as the bot does: each completion's generation time, and the queue's speed whenever a
  job's position drops. ``learned`` is first trained on another batch of the same case (a bot that
  has been running a while); ``learned, priors only`` starts from nothing (a fresh database).
  ``learned, fair window (diag.)`` is a diagnostic, not the bot: the same schedule with a window of
  generation times drawn at random from the distribution (instead of the latest completions) and
  the queue speed of the trained model, learning nothing more; it separates the shape of the
  schedule from what learning from a burst's completions does to it.

For each policy it prints status polls per job, seconds of job life (submit to completion) per
poll, and the lag between the upstream completing a job and the first poll that sees it (p50, p95,
p99, max): the part of the delivery lag that polling decides; fetching and posting the image come
on top. Then, for each fixed interval, whether the learned schedule beats it on both polls and lag.
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import random
import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import machine_lines, percentile, say
from bot.jobrun import POLL_TICK, TrackerSettings, on_grid, poll_policy
from bot.timing import WINDOW, TimingModel

TIER = "1K"
LOW, HIGH = 5.0, 20.0


@dataclass(frozen=True, slots=True)
class Job:
    submitted: float
    started: float
    finished: float


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    jobs: list[Job]
    starts: list[float]  # sorted
    finishes: list[float]  # sorted
    workers: int

    def position(self, index: int, now: float) -> int:
        """The simulator's queue_position of a waiting job: jobs waiting ahead of it, plus the running
        jobs that must finish before a worker is free for it."""
        started = bisect.bisect_right(self.starts, now)
        busy = started - bisect.bisect_right(self.finishes, now)
        return max(0, index - started) + max(0, busy - (self.workers - 1))


def make_case(name: str, count: int, workers: int, spread: float, rng: random.Random) -> Case:
    """Jobs submitted uniformly over ``spread`` seconds to ``workers`` first-in-first-out workers."""
    submitted = sorted(rng.uniform(0.0, spread) for _ in range(count))
    free = [0.0] * min(workers, count)
    jobs: list[Job] = []
    for at in submitted:
        start = max(at, heapq.heappop(free))
        finish = start + rng.uniform(LOW, HIGH)
        heapq.heappush(free, finish)
        jobs.append(Job(at, start, finish))
    return Case(name, jobs, [j.started for j in jobs], sorted(j.finished for j in jobs), workers)


@dataclass(frozen=True, slots=True)
class Outcome:
    polls: list[int]
    lags: list[float]
    life: float


def follow(
    case: Case, interval: float | None, model: TimingModel | None, rng: random.Random, *, learn: bool = True
) -> Outcome:
    """Poll every job of ``case`` until it is seen complete; all jobs on one clock, in time order (the
    learned model is shared by all jobs and, unless ``learn`` is False, learns while they run, as in
    the bot)."""
    polls = [0] * len(case.jobs)
    lags = [0.0] * len(case.jobs)
    seen_running: list[float | None] = [None] * len(case.jobs)
    last_queued: list[tuple[float, int] | None] = [None] * len(case.jobs)
    last_position: list[tuple[int, float] | None] = [None] * len(case.jobs)
    due = [(job.submitted, i) for i, job in enumerate(case.jobs)]
    heapq.heapify(due)
    while due:
        now, i = heapq.heappop(due)
        job = case.jobs[i]
        polls[i] += 1
        if now >= job.finished:
            lags[i] = now - job.finished
            if model is not None and learn:
                model.observe_generation(TIER, job.finished - job.started)
            continue
        position: int | None = None
        if now < job.started:
            position = case.position(i, now)
            last_queued[i] = (now, position)
            before = last_position[i]
            if model is not None and learn and before is not None and position < before[0]:
                model.observe_queue(TIER, before[0] - position, now - before[1])
            if before is None or position != before[0]:
                last_position[i] = (position, now)
        elif seen_running[i] is None:
            # As the bot does: the generation clock starts where the last read that saw it queued
            # expected it to start (within that read and now), or now if it was never seen queued.
            queued = last_queued[i]
            if queued is None or model is None:
                seen_running[i] = now if queued is None else queued[0]
            else:
                seen_running[i] = model.likely_start(TIER, queued_at=queued[0], position=queued[1], now=now)
        if model is None:
            assert interval is not None
            wait = interval
        else:
            started = seen_running[i]
            wait = model.next_poll(
                TIER,
                running_for=None if started is None else now - started,
                position=position,
                waited=now - job.submitted,
            )
        heapq.heappush(due, (now + on_grid(now, wait * rng.uniform(0.9, 1.1), POLL_TICK), i))
    life = sum(job.finished - job.submitted for job in case.jobs)
    return Outcome(polls, lags, life)


def row(name: str, outcome: Outcome) -> tuple[str, float, float, list[float | None]]:
    total = sum(outcome.polls)
    per_job = total / len(outcome.polls)
    per_poll = outcome.life / total
    lags = [percentile(outcome.lags, q) for q in (0.5, 0.95, 0.99, 1.0)]
    return name, per_job, per_poll, lags


def print_case(case: Case, rows: list[tuple[str, float, float, list[float | None]]]) -> None:
    print()
    print(case.name)
    print(f"  {'policy':<29} {'polls/job':>9} {'s of life/poll':>15}   lag p50    p95    p99    max   targets")
    for name, per_job, per_poll, lags in rows:
        p50, _, p99, _ = lags
        ok_lag = p50 is not None and p99 is not None and p50 <= 1.0 and p99 <= 2.5
        ok_polls = per_poll >= 3.0
        marks = f"lag {'met' if ok_lag else 'MISSED'}, polls {'met' if ok_polls else 'MISSED'}"
        cells = " ".join(f"{v:6.2f}" if v is not None else "     —" for v in lags)
        print(f"  {name:<29} {per_job:9.1f} {per_poll:15.2f}   {cells}   {marks}")
    learned = next(r for r in rows if r[0] == "learned")
    for name, per_job, _, lags in rows:
        if not name.startswith("fixed"):
            continue
        fewer = learned[1] < per_job
        sooner = (learned[3][2] or 0.0) < (lags[2] or 0.0)
        verdict = "beats it on both" if fewer and sooner else "does not beat it on both"
        say(
            f"learned vs {name}",
            f"{verdict}: {learned[1]:.1f} vs {per_job:.1f} polls/job, lag p99 {learned[3][2]:.2f} vs {lags[2]:.2f} s",
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/polling.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per case (default 1000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of durations, submit times and jitter")
    parser.add_argument("--intervals", default="1,2,3,5,10", help="fixed intervals to compare, seconds")
    args = parser.parse_args(argv)
    if not 10 <= args.jobs <= 100_000:
        parser.error("--jobs must be 10..100000")
    intervals = [float(x) for x in args.intervals.split(",") if x.strip()]
    if not intervals or any(not 0.1 <= x <= 60 for x in intervals):
        parser.error("--intervals: seconds between 0.1 and 60, separated by commas")

    print("bench/polling.py")
    for line in machine_lines():
        say(*line.split(": ", 1))
    policy = poll_policy(TrackerSettings())
    say(
        "schedule bounds",
        f"min {policy.min_interval:g} s, dense {policy.dense:g} s, max {policy.max_interval:g} s (the bot's defaults)",
    )
    say("jobs", f"{args.jobs} per case, durations {LOW:g}–{HIGH:g} s uniform, seed {args.seed}")
    say("lag", "upstream completion → the first status poll that sees it (fetching and posting come on top)")

    shapes = (
        ("no queue: every job starts when it is submitted", args.jobs, 5.0),
        ("queue: submitted within 5 s, 100 upstream workers, first in first out", 100, 5.0),
    )
    for number, (title, workers, spread) in enumerate(shapes):
        case = make_case(title, args.jobs, workers, spread, random.Random(f"{args.seed}:{number}:measured"))
        warmup = make_case(title, args.jobs, workers, spread, random.Random(f"{args.seed}:{number}:warm-up"))
        rows = []
        for interval in intervals:
            outcome = follow(case, interval, None, random.Random(f"{args.seed}:jitter"))
            rows.append(row(f"fixed {interval:g} s", outcome))
        trained = TimingModel(policy, rng=random.Random(f"{args.seed}:{number}:model"))
        follow(warmup, None, trained, random.Random(f"{args.seed}:warm-up jitter"))
        frozen = TimingModel(policy, rng=random.Random(f"{args.seed}:{number}:model"))
        frozen.restore(trained.snapshot())  # the queue speed learned in the warm-up
        sample = random.Random(f"{args.seed}:{number}:sample")
        for _ in range(WINDOW):  # a window of generation times drawn at random, not by completion order
            frozen.observe_generation(TIER, sample.uniform(LOW, HIGH))
        rows.append(row("learned", follow(case, None, trained, random.Random(f"{args.seed}:jitter"))))
        fresh = TimingModel(policy, rng=random.Random(f"{args.seed}:{number}:model"))
        rows.append(row("learned, priors only", follow(case, None, fresh, random.Random(f"{args.seed}:jitter"))))
        jitter = random.Random(f"{args.seed}:jitter")
        rows.append(row("learned, fair window (diag.)", follow(case, None, frozen, jitter, learn=False)))
        print_case(case, rows)
    print()
    print("targets: lag p50 ≤ 1.0 s and p99 ≤ 2.5 s; at most one poll per 3 s of job life")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Load: N ``/imagine`` jobs within a few seconds, the real bot against the simulator and the fake Discord.

Run from the repository root, after ``pip install -e ".[dev]"``::

    python bench/load.py --jobs 100
    python bench/load.py --jobs 1000 --users 200 --channels 1
    python bench/load.py --jobs 1000 --users 200 --channels 20

(``python -m bench.load ...`` works too.) It starts ``python -m bot`` as a child process with its
default settings, ``LOG_LEVEL=WARNING`` and a ``/metrics`` listener; the simulator in another child
process, with ``--workers`` queue workers and each job running a duration drawn uniformly from
``--min-duration`` to ``--max-duration`` seconds (seeded); and the fake Discord in this process, with
Discord's rate limits: 5 message edits per 5 s per interaction token and per channel (bot-token
edits), 4 reaction changes per second per channel. Then ``--users`` members send ``--jobs``
``/imagine`` commands, round robin over ``--channels`` channels, evenly over ``--spread`` seconds,
and it waits until every reply shows its image or a failure, or ``--timeout`` seconds have passed.
The simulator renders one PNG (1024×1024, 64 KB) and serves it to every job, unless
``--unique-images``: encoding a PNG per job would take the simulator ~25 ms of CPU each, on the
cores the bot is measured on. Everything stays on 127.0.0.1; the database and the bot's log go to a
temporary folder, removed at the end unless ``--keep``; ``--database-url`` runs the bot on another
database instead, such as PostgreSQL (``postgresql://…``, an existing database: the bot migrates it). ``--profile FILE`` records the bot with
py-spy (``pip install py-spy``) during the run and prints where its CPU went.

It prints (times from the fake Discord and the simulator, which share the machine's monotonic clock):

- jobs: sent, acknowledged, submitted upstream, completed upstream, delivered, failed, not
  acknowledged within Discord's 3 s (the member sees "The application did not respond");
- submit delay (interaction sent → submit received by the simulator) p50 / p99 / max, split at the
  bot's defer callback, and into steps with the times the bot's database records (when it began
  creating the job, when it began the submit);
- delivery lag (upstream completion → the image in the reply) p50 / p95 / p99 / max, split into
  noticing (completion → the first status poll after it) and handing over (that poll → the image);
- status polls per job and per second of job life (submit to completion), by phase: reads of the
  status URL, and reads of the response URL that saw the job unfinished (202) or first saw it done
  (the bot reads the response URL once a job may well be done); and all upstream reads per job;
- Discord REST calls in the run (per job, by route), 429s by limit, gateway events sent to the
  bot, and calls per job against 2 + the number of distinct visible states of its reply (a state:
  the title, the status line without the elapsed time, and whether it shows the image; the
  "thinking…" placeholder counts as one), with the calls and versions of the worst job;
- the bot's CPU seconds per job (``/proc/<pid>/stat``, from healthy to the end), its peak RSS
  (``VmHWM``), event-loop lag p50 / p99 from its ``imagine_event_loop_lag_seconds`` histogram;
- the CPU used by this process and the simulator's (the machine is shared), the bot's warnings;
- each target of the load benchmark as met or missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    SIM_KEY,
    BotChild,
    KeyedRateLimits,
    Profiler,
    Samples,
    SimRecords,
    SimulatorProcess,
    add_channels,
    add_members,
    apply_discord_limits,
    bot_env,
    buckets,
    ending,
    free_port,
    highest_bucket,
    histogram_quantile,
    image_time,
    job_of_request,
    machine_lines,
    ms,
    own_cpu_seconds,
    peak_in_window,
    percentile,
    profile_summary,
    prompt_of,
    route_of,
    sample_total,
    say,
    scrape,
    seconds,
    send_imagines,
    visible_state,
)
from bot.config import is_postgres_url, sqlite_path
from bot.devtools.fakediscord import FakeDiscord, FakeInteraction
from bot.simulator import SimulatorOptions
from bot.storage.postgres import redacted

MAX_JOBS = 20_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/load.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100, help="/imagine commands to send (default 100)")
    parser.add_argument("--users", type=int, default=20, help="members sending them (default 20)")
    parser.add_argument("--channels", type=int, default=1, help="channels they are sent in (default 1)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the job durations (default 1)")
    parser.add_argument("--workers", type=int, default=100, help="upstream jobs running at once (default 100)")
    parser.add_argument("--min-duration", type=float, default=5.0, help="shortest job, seconds (default 5)")
    parser.add_argument("--max-duration", type=float, default=20.0, help="longest job, seconds (default 20)")
    parser.add_argument("--spread", type=float, default=5.0, help="seconds over which to send them (default 5)")
    parser.add_argument("--timeout", type=float, default=240.0, help="give up after this many seconds (default 240)")
    parser.add_argument(
        "--unique-images",
        action="store_true",
        help="have the simulator render a PNG per job (by default it renders one and serves it to all)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (database, bot log)")
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="the bot's DATABASE_URL, e.g. postgresql://user@127.0.0.1:5432/bench"
        " (default: a new SQLite file in the temporary folder)",
    )
    parser.add_argument(
        "--profile", type=Path, metavar="FILE", help="record the bot with py-spy during the run (collapsed stacks)"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.jobs <= MAX_JOBS:
        parser.error(f"--jobs must be 1..{MAX_JOBS}")
    if not 1 <= args.users <= 5000 or not 1 <= args.channels <= 100 or not 1 <= args.workers <= 20_000:
        parser.error("--users must be 1..5000, --channels 1..100, --workers 1..20000")
    if not 0 <= args.min_duration <= args.max_duration <= 600:
        parser.error("need 0 <= --min-duration <= --max-duration <= 600")
    if not 0 <= args.spread <= 120 or not 10 <= args.timeout <= 3600:
        parser.error("--spread must be 0..120 and --timeout 10..3600")
    return args


@dataclass
class Run:
    """Everything measured, for the report."""

    args: argparse.Namespace
    interactions: list[FakeInteraction]
    records: SimRecords
    fake: FakeDiscord
    limits: KeyedRateLimits
    first_request: int
    first_dispatch: int
    started: float
    ended: float
    bot_cpu: float
    bot_peak_rss: float
    bot_rss: float
    bench_cpu: float
    sim_cpu: float
    metrics_before: Samples
    metrics_after: Samples
    bot: BotChild
    exit_code: int | None
    # From the bot's database, by prompt: when it began creating the job, began the submit,
    # recorded the request id (on the bot's wall clock, converted to the monotonic clock).
    steps: dict[str, tuple[float, float | None, float | None]]


async def measure(args: argparse.Namespace, workdir: Path, sim: SimulatorProcess) -> Run:
    async with FakeDiscord() as fake:
        channels = add_channels(fake, args.channels)
        users = add_members(fake, args.users)
        limits = apply_discord_limits(fake)
        port = free_port()
        env = bot_env(fake, sim.base_url, workdir / "bot.sqlite3", port)
        if args.database_url:
            env["DATABASE_URL"] = args.database_url
        bot = BotChild(env, workdir)
        since = time.time()
        bot.start()
        try:
            await fake.wait_synced(timeout=60)
            await bot.wait_healthy(port, 60)
            stats = bot.stats
            cpu_before, bench_before, sim_before = stats.cpu_seconds(), own_cpu_seconds(), sim.stats.cpu_seconds()
            metrics_before = await scrape(port)
            profiler = Profiler(stats.pid, args.profile) if args.profile else None
            first_request, first_dispatch = len(fake.requests), len(fake.dispatch_log)
            started = time.monotonic()
            sent: list[FakeInteraction] = []
            sender = asyncio.create_task(
                send_imagines(fake, args.jobs, users, channels, spread=args.spread, prompt=prompt_of, sent=sent)
            )
            await wait_until_done(fake, sim, sender, sent, args, started)
            ended = time.monotonic()
            cpu = stats.cpu_seconds() - cpu_before
            if profiler is not None:
                profiler.stop()
            peak, rss = stats.peak_rss_mb(), stats.rss_mb()
            metrics_after = await scrape(port)
            bench_cpu, sim_cpu = own_cpu_seconds() - bench_before, sim.stats.cpu_seconds() - sim_before
            records = await sim.records()
            code = await bot.terminate()
        finally:
            bot.kill()
        steps = await read_steps(env["DATABASE_URL"], since)
        return Run(
            args,
            sent,
            records,
            fake,
            limits,
            first_request,
            first_dispatch,
            started,
            ended,
            cpu,
            peak,
            rss,
            bench_cpu,
            sim_cpu,
            metrics_before,
            metrics_after,
            bot,
            code,
            steps,
        )


async def read_steps(database_url: str, since: float) -> dict[str, tuple[float, float | None, float | None]]:
    """Per prompt, when the bot began creating the job, began its submit and recorded it (jobs of this
    run only: created since ``since``): the bot stamps these with ``time.time()``, read here on the
    monotonic clock of the other figures."""
    offset = time.time() - time.monotonic()
    query = "SELECT prompt, created_at, submit_started_at, submitted_at FROM jobs WHERE created_at >= "
    if is_postgres_url(database_url):
        db = await asyncpg.connect(database_url)
        try:
            rows = [tuple(r) for r in await db.fetch(query + "$1", since)]
        finally:
            await db.close()
    else:
        path = sqlite_path(database_url)
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as sqlite_db:
            rows = sqlite_db.execute(query + "?", (since,)).fetchall()
    return {
        prompt: (created - offset, None if began is None else began - offset, None if sent is None else sent - offset)
        for prompt, created, began, sent in rows
    }


async def wait_until_done(
    fake: FakeDiscord,
    sim: SimulatorProcess,
    sender: asyncio.Task[None],
    sent: list[FakeInteraction],
    args: argparse.Namespace,
    started: float,
) -> None:
    deadline = started + args.timeout
    next_report = started + 10.0
    try:
        while True:
            await asyncio.sleep(0.25)
            if sender.done():
                sender.result()  # a failure to send is a failure of the bench
            finals = Counter(ending(i, fake.clock()) for i in sent)
            done = len(sent) - finals[None]
            now = time.monotonic()
            if sender.done() and done >= args.jobs:
                return
            if now >= deadline:
                print(f"  (timeout: {done} of {args.jobs} jobs have a final state after {args.timeout:.0f} s)")
                return
            if now >= next_report:
                created, completed, _ = await sim.counts()
                print(
                    f"  … {now - started:5.0f} s: sent {len(sent)}, submitted {created}, completed upstream "
                    f"{completed}, delivered {finals['image']}, failed {finals['failed']}, "
                    f"not acknowledged in time {finals['not acknowledged in time']}, "
                    f"429s {fake.rate_limited_count}",
                    flush=True,
                )
                next_report += 10.0
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)


def poll_reads(reads: list[tuple[float, str]], finished: float | None) -> list[tuple[float, str]]:
    """The reads of a job that were polls: every status read, and every read of its response URL
    except the one that only fetched the result after a status read had seen the job finished (a
    response read is a poll when it sees the job unfinished, 202, or is the first to see it done)."""
    polls: list[tuple[float, str]] = []
    seen_done = False
    for at, endpoint in sorted(reads):
        done = finished is not None and at >= finished
        if endpoint == "result" and done and seen_done:
            continue
        seen_done = seen_done or done
        polls.append((at, endpoint))
    return polls


def report(run: Run) -> dict[str, bool]:
    """Print the figures; return each target as met (True) or missed."""
    args, fake, records = run.args, run.fake, run.records
    n = args.jobs
    by_prompt = records.by_prompt()
    submits = {c.request_id: c for c in records.calls if c.endpoint == "submit" and c.request_id}
    job_reads: dict[str, list[tuple[float, str]]] = {}  # status and response URL reads of each job
    for call in records.calls:
        if call.endpoint in ("status", "result") and call.request_id is not None:
            job_reads.setdefault(call.request_id, []).append((call.received_at, call.endpoint))
    finished_at = {job.request_id: job.finished_at for job in records.jobs}
    kept = {request_id: poll_reads(times, finished_at.get(request_id)) for request_id, times in job_reads.items()}
    polls = {request_id: [at for at, _ in times] for request_id, times in kept.items()}
    early_results = sum(1 for times in kept.values() for _, endpoint in times if endpoint == "result")

    deferred_at: dict[str, float] = {}
    for request in fake.requests[run.first_request :]:
        if request.method == "POST" and request.path.startswith("/interactions/"):
            deferred_at.setdefault(request.path.split("/")[3], request.time)
    submit_delays: list[float] = []
    to_defer: list[float] = []
    defer_to_submit: list[float] = []
    stages: dict[str, list[float]] = {name: [] for name in _STAGES}
    lags: list[float] = []
    noticing: list[float] = []
    handing: list[float] = []
    late: list[tuple[float, Any, float, float, int]] = []  # noticing, job, last read before, first after, reads
    lives: list[float] = []
    phase = Counter[str]()
    finals = Counter[str]()
    ours = 0
    for i, interaction in enumerate(run.interactions):
        message = interaction.original()
        finals[ending(interaction, run.ended) or "no final state"] += 1
        job = by_prompt.get(prompt_of(i))
        if job is None:
            continue
        ours += 1
        submit = submits.get(job.request_id)
        if submit is not None:
            submit_delays.append(submit.received_at - interaction.created_at)
            if (deferred := deferred_at.get(interaction.token)) is not None:
                to_defer.append(deferred - interaction.created_at)
                defer_to_submit.append(submit.received_at - deferred)
                created, began, _ = run.steps.get(prompt_of(i), (None, None, None))
                if created is not None and began is not None:
                    marks = (interaction.created_at, created, deferred, began, submit.received_at)
                    for name, a, b in zip(_STAGES, marks, marks[1:], strict=False):
                        stages[name].append(b - a)
        times = polls.get(job.request_id, [])
        for t in times:
            if job.started_at is None or t < job.started_at:
                phase["queued"] += 1
            elif job.finished_at is None or t < job.finished_at:
                phase["running"] += 1
            else:
                phase["after completion"] += 1
        lives.append((job.finished_at or run.ended) - job.queued_at)
        shown = image_time(message)
        if job.finished_at is not None and shown is not None:
            lags.append(shown - job.finished_at)
            seen = min((t for t in times if t >= job.finished_at), default=None)
            if seen is not None:
                noticing.append(seen - job.finished_at)
                handing.append(shown - seen)
                before = [t for t in times if t < job.finished_at]
                last = before[-1] if before else job.queued_at
                late.append((seen - job.finished_at, job, last, seen, len(times)))

    completed = sum(1 for job in records.jobs if job.finished_at is not None and job.prompt in _prompts(n))
    acked = sum(1 for i in run.interactions if i.responses)
    wall = run.ended - run.started
    print()
    print("jobs")
    say("sent", f"{len(run.interactions)} of {n} over {args.spread:g} s")
    say("acknowledged (deferred)", acked)
    say("submitted upstream", ours)
    say("completed upstream", completed)
    say("delivered (image in the reply)", f"{finals['image']} within {wall:.0f} s")
    say("other endings", ", ".join(f"{k}: {v}" for k, v in finals.items() if k != "image") or "none")
    print("submit delay (interaction → upstream submit)")
    say("p50 / p99 / max", _triple(submit_delays, (0.5, 0.99, 1.0)))
    say("interaction → defer callback p50 / p99", _triple(to_defer, (0.5, 0.99)))
    say("defer callback → submit p50 / p99", _triple(defer_to_submit, (0.5, 0.99)))
    print("  in steps (the bot's database stamps when each step began), p50 / p99:")
    for name, values in stages.items():
        say(f"  {name}", _triple(values, (0.5, 0.99)))
    print("delivery lag (upstream completion → image in the reply)")
    say("p50 / p95 / p99 / max", _triple(lags, (0.5, 0.95, 0.99, 1.0)))
    say("noticing (→ first poll after it) p50/p99", _triple(noticing, (0.5, 0.99)))
    for lag, job, last, seen, reads in sorted(late, key=lambda e: e[0], reverse=True)[:5]:
        start = job.started_at if job.started_at is not None else job.queued_at
        print(
            f"    noticed {lag:4.2f} s late: queued {start - job.queued_at:5.1f} s, generated "
            f"{job.finished_at - start:4.1f} s, read {reads}×, last read {job.finished_at - last:4.1f} s before "
            f"its end ({'queued' if last < start else 'generating'}), next {seen - last:4.1f} s after that, "
            f"ended {job.finished_at - run.started:5.1f} s into the run"
        )
    say("handing over (→ image) p50 / p99", _triple(handing, (0.5, 0.99)))

    total_polls = sum(phase.values())
    life = sum(lives)
    print("status polls")
    say("per job", f"{total_polls / max(1, ours):.1f} ({total_polls} in all)")
    say(
        "per second of job life",
        f"{total_polls / life:.3f} (1 per {life / max(1, total_polls):.1f} s)" if life else "—",
    )
    say("by phase", ", ".join(f"{k} {v}" for k, v in phase.items()))
    say("of which response URL reads", f"{early_results} (202 while unfinished, or the read that found it done)")
    say(
        "upstream reads per job",
        f"{sum(len(t) for t in job_reads.values()) / max(1, ours):.1f} (polls and result fetches)",
    )
    say("peak status reads in 1 s", peak_in_window([t for ts in polls.values() for t in ts]))

    window = fake.requests[run.first_request :]
    routes = Counter(route_of(r.method, r.path) for r in window)
    limited = sum(1 for r in window if r.status == 429)
    print("Discord REST")
    say("calls", f"{len(window)} ({len(window) / n:.1f} per job)")
    for route, count in routes.most_common(8):
        print(f"      {count:>7} ({count / n:5.2f} per job)  {route}")
    say("429s", f"{limited} ({run.limits.summary()})")
    say("invalid requests (401/403/429)", fake.invalid_request_count)
    events = Counter(record.event for record in fake.dispatch_log[run.first_dispatch :])
    say(
        "gateway events sent to the bot",
        f"{sum(events.values())}: " + ", ".join(f"{k} {v}" for k, v in events.most_common(4)),
    )
    calls, states, over = _calls_against_states(run)
    refreshes = _refreshes(run)
    say("calls per job / visible states per job", f"{_mean(calls):.1f} / {_mean(states):.1f}")
    say("edits that changed no visible state", f"{refreshes} ({refreshes / n:.2f} per job: elapsed time, estimate)")
    say("jobs over 2 + visible states", f"{over} of {len(calls)}")
    if over:
        worst = max(range(len(calls)), key=lambda i: calls[i] - states[i])
        say("  e.g. job", f"{worst}: {calls[worst]} calls, {states[worst]} visible states")
        for line in _job_story(run, worst):
            print(f"      {line}")

    samples_a, samples_b = run.metrics_before, run.metrics_after
    lag_name = "imagine_event_loop_lag_seconds"
    loop_before, loop_after = buckets(samples_a, lag_name), buckets(samples_b, lag_name)
    loop_p50 = histogram_quantile(0.5, loop_after, loop_before)
    loop_p99 = histogram_quantile(0.99, loop_after, loop_before)
    worst = highest_bucket(loop_after, loop_before)
    bot_polls = sample_total(samples_b, "imagine_status_polls_total") - sample_total(
        samples_a, "imagine_status_polls_total"
    )
    bot_lag_b, bot_lag_a = (
        buckets(samples_b, "imagine_delivery_lag_seconds"),
        buckets(samples_a, "imagine_delivery_lag_seconds"),
    )
    print("the bot process")
    say(
        "CPU",
        f"{run.bot_cpu:.1f} s ({run.bot_cpu / n * 1000:.1f} ms per job, {100 * run.bot_cpu / wall:.0f}% of a core)",
    )
    say("peak RSS (VmHWM) / RSS at the end", f"{run.bot_peak_rss:.0f} MB / {run.bot_rss:.0f} MB")
    say("event-loop lag p50 / p99", f"{ms(loop_p50)} / {ms(loop_p99)} (histogram)")
    say("  samples over 100 ms", _over(loop_after, loop_before, 0.1))
    say("  highest bucket reached", "—" if worst is None else f"≤ {worst:g} s")
    say("status polls it counted", f"{bot_polls:.0f}")
    say(
        "its delivery-lag metric p50 / p99",
        f"{seconds(histogram_quantile(0.5, bot_lag_b, bot_lag_a))} / {seconds(histogram_quantile(0.99, bot_lag_b, bot_lag_a))}"
        " (histogram; from when it noticed)",
    )
    say("exit code after SIGTERM", run.exit_code)
    count, top = run.bot.problems()
    say("warnings and errors logged", count)
    for line in top:
        print(f"      {line}")
    print("the rest of the machine")
    say("CPU of the fake Discord (this process)", f"{run.bench_cpu:.1f} s")
    say("CPU of the simulator", f"{run.sim_cpu:.1f} s")

    p99 = percentile(submit_delays, 0.99)
    lag50, lag99 = percentile(lags, 0.5), percentile(lags, 0.99)
    targets = {
        "all submitted within 2 s of their interaction (p99)": ours == n and p99 is not None and p99 <= 2.0,
        "all delivered": finals["image"] == n,
        "no 429": limited == 0,
        "delivery lag p50 ≤ 1.0 s and p99 ≤ 2.5 s": lag50 is not None
        and lag99 is not None
        and lag50 <= 1.0
        and lag99 <= 2.5,
        "at most one status poll per 3 s of job life": bool(life) and total_polls / life <= 1 / 3,
        "at most 2 + visible states Discord calls per job": over == 0 and len(calls) == n,
        "peak RSS ≤ 250 MB": run.bot_peak_rss <= 250,
        "event-loop lag p99 ≤ 100 ms": loop_p99 is not None and loop_p99 <= 0.1,
        "CPU ≤ 20 ms per job": run.bot_cpu / n <= 0.020,
    }
    print("targets")
    for name, met in targets.items():
        say(name, "met" if met else "MISSED")
    if args.profile is not None and args.profile.exists():
        print(f"profile of the bot ({args.profile}, py-spy, CPU only)")
        for line in profile_summary(args.profile):
            print(f"  {line}")
    return targets


_STAGES = (
    "interaction → handler creates the job",
    "→ defer callback at Discord",
    "→ submit begins",
    "→ submit at the upstream",
)


def _prompts(n: int) -> set[str]:
    return {prompt_of(i) for i in range(n)}


def _calls_against_states(run: Run) -> tuple[list[int], list[int], int]:
    """Per job: REST calls naming its interaction or its reply, and distinct visible states of the reply."""
    index: dict[tuple[str, str], int] = {}
    for i, interaction in enumerate(run.interactions):
        index[("token", interaction.token)] = i
        if interaction.original_id is not None:
            index[("message", interaction.original_id)] = i
    calls = [0] * len(run.interactions)
    for request in run.fake.requests[run.first_request :]:
        key = job_of_request(request.path)
        if key is not None and (i := index.get(key)) is not None:
            calls[i] += 1
    states = []
    for interaction in run.interactions:
        message = interaction.original()
        states.append(len({visible_state(s) for s in message.history}) if message is not None else 0)
    over = sum(1 for c, s in zip(calls, states, strict=True) if c > 2 + s)
    return calls, states, over


def _refreshes(run: Run) -> int:
    """Versions of the replies that look like the one before, but for the elapsed time and estimate."""
    count = 0
    for interaction in run.interactions:
        message = interaction.original()
        shown = [visible_state(s) for s in message.history] if message is not None else []
        count += sum(1 for a, b in itertools.pairwise(shown) if a == b)
    return count


def _job_story(run: Run, index: int) -> list[str]:
    """One job's REST calls and reply versions, in time order (for a job over its call budget)."""
    interaction = run.interactions[index]
    keys = {("token", interaction.token), ("message", interaction.original_id or "")}
    events = [
        (r.time, f"{r.method} {route_of(r.method, r.path).split(' ', 1)[1]} → {r.status}")
        for r in run.fake.requests[run.first_request :]
        if job_of_request(r.path) in keys
    ]
    message = interaction.original()
    for snapshot in message.history if message is not None else []:
        loading, title, status, image, _ = visible_state(snapshot)
        shown = "thinking…" if loading else f"{title} {status}".strip() + (" + image" if image else "")
        events.append((snapshot.time, f"    shows: {shown}"))
    start = interaction.created_at
    return [f"{t - start:6.2f} s  {text}" for t, text in sorted(events)]


def _mean(values: list[int]) -> float:
    return sum(values) / len(values) if values else 0.0


def _triple(values: list[float], qs: tuple[float, ...]) -> str:
    return " / ".join(seconds(percentile(values, q)) for q in qs)


def _over(after: dict[float, float], before: dict[float, float], bound: float) -> str:
    total = after.get(float("inf"), 0) - before.get(float("inf"), 0)
    within = after.get(bound, 0) - before.get(bound, 0)
    return f"{total - within:.0f} of {total:.0f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print("bench/load.py")
    for line in machine_lines():
        say(*line.split(": ", 1))
    say(
        "run",
        f"{args.jobs} jobs, {args.users} members, {args.channels} channel(s), {args.workers} upstream workers, "
        f"jobs of {args.min_duration:g}–{args.max_duration:g} s (seed {args.seed}), timeout {args.timeout:g} s",
    )
    say("database", redacted(args.database_url) if args.database_url else "SQLite, a new file in the temporary folder")
    workdir = Path(tempfile.mkdtemp(prefix="imagine-bench-load-"))
    options = SimulatorOptions(
        api_key=SIM_KEY,
        workers=args.workers,
        job_duration=args.min_duration,
        job_duration_max=args.max_duration,
        seed=args.seed,
        reuse_images=not args.unique_images,
    )
    sim = SimulatorProcess(options)
    try:
        sim.start()
        run = asyncio.run(measure(args, workdir, sim))
        report(run)
    finally:
        sim.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

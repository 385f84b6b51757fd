"""Resume: N unfinished jobs in the database, the bot killed, then started again.

Run from the repository root, after ``pip install -e ".[dev]"``::

    python bench/resume.py --jobs 1000

(``python -m bench.resume ...`` works too.) The same three processes as ``bench/load.py`` (the bot as
``python -m bot`` with default settings, the simulator, the fake Discord with Discord's rate limits;
the simulator serves one rendered PNG to every job unless ``--unique-images``).

1. The jobs are made the way members make them: ``--users`` members send ``--jobs`` ``/imagine``
   commands over ``--spread`` seconds, to a simulator in manual mode (a job runs until the bench
   finishes it). Once the simulator has every job and the database has every request id, the bot
   is killed with SIGKILL: N unfinished jobs are left in its database.
2. ``--down-fraction`` of the jobs (chosen at random, seeded) are finished upstream while the bot is
   down; each of the others finishes at a random moment 2–12 s after the bot is started again.
3. The bot is started again, and the bench waits until every reply shows its image (or a failure),
   or ``--timeout`` seconds have passed.

It prints: seconds from the start to READY (the gateway's READY sent by the fake Discord); when
the first status poll arrived and when every job had been polled again, from READY; the most
upstream calls in any 1 s window after the start (status reads, which the bot paces to
``upstream_reads_per_second``, 250 by default; all API calls; file downloads) against that bound;
when every job was delivered; delivery lag for the jobs finished while the bot was down (READY to
the image) and for the others (completion to the image); 429s; the bot's CPU, peak RSS and
event-loop lag over the resume; and the resume targets as met or missed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    SIM_KEY,
    BotChild,
    SimulatorProcess,
    add_channels,
    add_members,
    apply_discord_limits,
    bot_env,
    buckets,
    final_state,
    free_port,
    histogram_quantile,
    image_time,
    machine_lines,
    ms,
    own_cpu_seconds,
    peak_in_window,
    percentile,
    prompt_of,
    say,
    scrape,
    seconds,
    send_imagines,
)
from bot.config import DEFAULT_READS_PER_SECOND
from bot.devtools.fakediscord import FakeDiscord, FakeInteraction
from bot.simulator import SimulatorOptions

AFTER_RESTART = (2.0, 12.0)  # the jobs still running finish this many seconds after the restart


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/resume.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000, help="unfinished jobs to resume (default 1000)")
    parser.add_argument("--users", type=int, default=200, help="members who made them (default 200)")
    parser.add_argument("--channels", type=int, default=1, help="channels they were made in (default 1)")
    parser.add_argument("--spread", type=float, default=5.0, help="seconds over which they are made (default 5)")
    parser.add_argument(
        "--down-fraction", type=float, default=0.5, help="share finished upstream while the bot is down (default 0.5)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of which jobs finish when (default 1)")
    parser.add_argument("--timeout", type=float, default=240.0, help="give up after this many seconds (default 240)")
    parser.add_argument(
        "--unique-images",
        action="store_true",
        help="have the simulator render a PNG per job (by default it renders one and serves it to all)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (database, bot logs)")
    args = parser.parse_args(argv)
    if not 1 <= args.jobs <= 20_000 or not 1 <= args.users <= 5000 or not 1 <= args.channels <= 100:
        parser.error("--jobs must be 1..20000, --users 1..5000, --channels 1..100")
    if not 0.0 <= args.down_fraction <= 1.0 or not 0 <= args.spread <= 120 or not 10 <= args.timeout <= 3600:
        parser.error("--down-fraction must be 0..1, --spread 0..120, --timeout 10..3600")
    return args


def unfinished(db_path: Path) -> Counter[str]:
    """Submitted, unfinished jobs in the bot's database, by state (read-only)."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as db:
        rows = db.execute(
            "SELECT status, count(*) FROM jobs WHERE request_id IS NOT NULL "
            "AND status IN ('queued', 'running', 'delivering') GROUP BY status"
        ).fetchall()
    return Counter(dict(rows))


async def wait_ready(fake: FakeDiscord, count: int, within: float) -> float:
    """The monotonic time at which the fake had sent its ``count``-th READY."""
    deadline = time.monotonic() + within
    while len(fake.dispatched("READY")) < count:
        if time.monotonic() > deadline:
            raise TimeoutError("no READY")
        await asyncio.sleep(0.005)
    return time.monotonic()


async def measure(args: argparse.Namespace, workdir: Path, sim: SimulatorProcess) -> None:
    db_path = workdir / "bot.sqlite3"
    async with FakeDiscord() as fake:
        channels = add_channels(fake, args.channels)
        users = add_members(fake, args.users)
        limits = apply_discord_limits(fake)
        port = free_port()
        env = bot_env(fake, sim.base_url, db_path, port)

        # 1. Make the jobs, then kill the bot.
        first = BotChild(env, workdir, "bot-first")
        first.start()
        try:
            await fake.wait_synced(timeout=60)
            await first.wait_healthy(port, 60)
            made = time.monotonic()
            sent: list[FakeInteraction] = []
            await send_imagines(fake, args.jobs, users, channels, spread=args.spread, prompt=prompt_of, sent=sent)
            deadline = made + args.timeout
            while sum(unfinished(db_path).values()) < args.jobs:
                if time.monotonic() > deadline or not first.running:
                    raise RuntimeError(f"only {sum(unfinished(db_path).values())} of {args.jobs} jobs were submitted")
                await asyncio.sleep(0.25)
            took = time.monotonic() - made
            first.kill()
        finally:
            first.kill()
        states = unfinished(db_path)
        print()
        print("before the restart")
        say("jobs made and submitted", f"{args.jobs} in {took:.1f} s")
        say("bot killed (SIGKILL); unfinished in its database", ", ".join(f"{k} {v}" for k, v in states.items()))

        ids = sorted(await sim.request_ids())
        rng = random.Random(args.seed)
        rng.shuffle(ids)
        down = set(ids[: round(args.down_fraction * len(ids))])
        await sim.finish([(request_id, 0.0) for request_id in down])
        for _ in range(600):  # the simulator completes them on its workers: a moment
            if (await sim.counts())[1] >= len(down):
                break
            await asyncio.sleep(0.05)
        say("finished upstream while the bot was down", len(down))
        say(
            "finishing after the restart",
            f"{len(ids) - len(down)}, each {AFTER_RESTART[0]:g}–{AFTER_RESTART[1]:g} s after it",
        )

        # 2. Start it again.
        first_request = len(fake.requests)
        plan = [(request_id, rng.uniform(*AFTER_RESTART)) for request_id in ids if request_id not in down]
        second = BotChild(env, workdir, "bot-second")
        bench_before, sim_before = own_cpu_seconds(), sim.stats.cpu_seconds()
        await sim.finish(plan)
        second.start()
        try:
            ready_count = len(fake.dispatched("READY")) + 1
            ready = await wait_ready(fake, ready_count, 60)
            await second.wait_healthy(port, 60)
            metrics_before = await scrape(port)
            deadline = second.started_at + args.timeout
            while True:
                finals = Counter(final_state(i.original()) for i in sent)
                if finals[None] == 0 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.25)
            ended = time.monotonic()
            stats = second.stats
            cpu, peak = stats.cpu_seconds(), stats.peak_rss_mb()
            metrics_after = await scrape(port)
            bench_cpu, sim_cpu = own_cpu_seconds() - bench_before, sim.stats.cpu_seconds() - sim_before
            records = await sim.records()
            code = await second.terminate()
        finally:
            second.kill()

    start = second.started_at
    after = [c for c in records.calls if c.received_at >= start]
    first_poll: dict[str, float] = {}
    for call in after:
        if call.endpoint == "status" and call.request_id is not None:
            first_poll.setdefault(call.request_id, call.received_at)
    by_prompt = records.by_prompt()
    lag_down: list[float] = []
    lag_after: list[float] = []
    shown_times: list[float] = []
    for i, interaction in enumerate(sent):
        job = by_prompt.get(prompt_of(i))
        shown = image_time(interaction.original())
        if job is None or shown is None or job.finished_at is None or shown < start:
            continue
        shown_times.append(shown)
        if job.request_id in down:
            lag_down.append(shown - ready)
        else:
            lag_after.append(shown - job.finished_at)
    bound = DEFAULT_READS_PER_SECOND
    status_times = [c.received_at for c in after if c.endpoint == "status"]
    api_times = [c.received_at for c in after if c.endpoint in ("submit", "status", "result", "cancel")]
    file_times = [c.received_at for c in after if c.endpoint == "file"]
    polled_all = max(first_poll.values()) if len(first_poll) >= len(ids) else None
    finals = Counter(final_state(i.original()) or "no final state" for i in sent)
    window = fake.requests[first_request:]
    loop_after = buckets(metrics_after, "imagine_event_loop_lag_seconds")
    loop_before = buckets(metrics_before, "imagine_event_loop_lag_seconds")

    print("after the restart (times from READY unless said otherwise)")
    say("READY", f"{ready - start:.2f} s after the start")
    say(
        "first status poll",
        "—"
        if not first_poll
        else f"{min(first_poll.values()) - ready:+.2f} s ({min(first_poll.values()) - start:.2f} s after the start)",
    )
    say(
        "every job polled again",
        f"{polled_all - ready:+.2f} s ({polled_all - start:.2f} s after the start)"
        if polled_all is not None
        else f"no: {len(first_poll)} of {len(ids)}",
    )
    say("peak status reads in any 1 s", f"{peak_in_window(status_times)} (bound {bound:g}/s)")
    per_second = Counter(int(t - start) for t in status_times)
    say("status reads per second after the start", " ".join(str(per_second[k]) for k in range(20)) + " …")
    say("peak upstream API calls in any 1 s", f"{peak_in_window(api_times)} (status, result, cancel, submit)")
    say("peak image downloads in any 1 s", peak_in_window(file_times))
    say("endings", ", ".join(f"{k}: {v}" for k, v in finals.items()))
    say(
        "every image delivered",
        f"{max(shown_times) - ready:+.2f} s" if finals["image"] == len(sent) and shown_times else "no",
    )
    say(
        "lag, finished while down (READY → image)",
        " / ".join(seconds(percentile(lag_down, q)) for q in (0.5, 0.99, 1.0)) + " (p50 / p99 / max)",
    )
    say(
        "lag, finished after (completion → image)",
        " / ".join(seconds(percentile(lag_after, q)) for q in (0.5, 0.99, 1.0)) + " (p50 / p99 / max)",
    )
    say(
        "Discord REST calls / 429s", f"{len(window)} / {sum(1 for r in window if r.status == 429)} ({limits.summary()})"
    )
    say("bot CPU from the start / peak RSS", f"{cpu:.1f} s / {peak:.0f} MB")
    say("event-loop lag p99 after healthy", ms(histogram_quantile(0.99, loop_after, loop_before)))
    say("CPU of the fake Discord / the simulator", f"{bench_cpu:.1f} s / {sim_cpu:.1f} s")
    say("exit code after SIGTERM", code)
    count, top = second.problems()
    say("warnings and errors logged", count)
    for line in top:
        print(f"      {line}")
    say("run took", f"{ended - start:.0f} s")
    print("targets")
    within = polled_all is not None and polled_all - ready <= 5.0
    say("every job polled again within 5 s of READY", "met" if within else "MISSED")
    say(
        f"no burst above {bound:g} status reads per second",
        "met" if peak_in_window(status_times) <= bound else "MISSED",
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print("bench/resume.py")
    for line in machine_lines():
        say(*line.split(": ", 1))
    say(
        "run",
        f"{args.jobs} jobs by {args.users} members in {args.channels} channel(s); "
        f"{args.down_fraction:.0%} finish while the bot is down (seed {args.seed}), timeout {args.timeout:g} s",
    )
    workdir = Path(tempfile.mkdtemp(prefix="imagine-bench-resume-"))
    sim = SimulatorProcess(
        SimulatorOptions(api_key=SIM_KEY, workers=args.jobs, manual=True, reuse_images=not args.unique_images)
    )
    try:
        sim.start()
        asyncio.run(measure(args, workdir, sim))
    finally:
        sim.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Chaos: ``python -m bot`` is killed (SIGKILL) and started again at random moments while three
members use /imagine at random moments and the upstream fails one status or result call in ten.
Once things settle, every job has ended exactly once where its member sees it, nothing was sent
upstream twice, nothing that never reached the upstream was dropped, and only delivered images
count against the quota.

The schedule comes from one seed, printed at the start: ``CHAOS_SEED=<seed> pytest
tests/test_chaos.py`` replays it (the moments are the same; the bot's own timing varies a little).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.devtools.fakediscord import FakeDiscord, FakeInteraction, FakeMessage, FakeUser, wait_until
from bot.simulator import Fault, Simulator, SimulatorOptions, run_simulator
from tests.harness import SIM_KEY, BotProcess, decoded_size, settings_env, settings_for

JOBS = 30
KILLS = 3
# The interactions are spread over this many seconds; the kills fall inside it too.
WINDOW = 9.0
# At least one kill comes this soon (at most) after an interaction reached the bot.
KILL_AFTER_INTERACTION = 0.05
MAX_DOWNTIME = 0.3
FAULT_RATE = 0.1
# Status and result calls covered by the fault schedule (far more than a run makes).
SCHEDULED_CALLS = 6000
SETTLE_TIMEOUT = 45.0
START_TIMEOUT = 30.0

DONE, FAILED, CANCELLED = "✅ Done", "⚠️ No image this time", "🛑 Cancelled"
TITLE_OF = {"delivered": DONE, "failed": FAILED, "cancelled": CANCELLED}
TERMINAL = frozenset(TITLE_OF)
# Failures the upstream itself causes: a job may end with these whether or not its submit was seen.
UPSTREAM_FAILURES = frozenset(
    {
        "content_blocked",
        "invalid_request",
        "upstream_timeout",
        "upstream_failed",
        "upstream_unavailable",
        "no_image",
        "lost_upstream",
        "result_unavailable",
    }
)


@dataclass(frozen=True)
class Invocation:
    at: float
    user: int  # index into the three members
    prompt: str
    kill_after: float | None = None  # kill the bot this many seconds after the interaction


@dataclass
class Plan:
    seed: int
    job_duration: float
    invocations: list[Invocation]
    kills: list[float]  # moments of the kills not tied to an interaction
    downtimes: list[float]  # before each restart

    def describe(self) -> str:
        tied = next(i for i in self.invocations if i.kill_after is not None)
        assert tied.kill_after is not None
        return (
            f"seed {self.seed}: job_duration {self.job_duration:.2f} s, kills at "
            f"{', '.join(f'{k:.2f}' for k in self.kills)} s and {tied.kill_after * 1000:.0f} ms after the "
            f"interaction at {tied.at:.2f} s, downtimes {', '.join(f'{d:.2f}' for d in self.downtimes)} s"
        )


def make_plan(seed: int) -> Plan:
    rng = random.Random(seed)
    moments = sorted(rng.uniform(0.0, WINDOW) for _ in range(JOBS))
    tied = rng.randrange(JOBS // 6, JOBS - JOBS // 6)
    invocations = [
        Invocation(
            at=at,
            user=rng.randrange(3),
            prompt=f"chaos {seed} job {n:02d}",
            kill_after=rng.uniform(0.0, KILL_AFTER_INTERACTION) if n == tied else None,
        )
        for n, at in enumerate(moments)
    ]
    return Plan(
        seed=seed,
        job_duration=rng.uniform(0.3, 1.0),
        invocations=invocations,
        kills=sorted(rng.uniform(0.5, WINDOW) for _ in range(KILLS - 1)),
        downtimes=[rng.uniform(0.0, MAX_DOWNTIME) for _ in range(KILLS)],
    )


def fault_schedule(rng: random.Random, endpoint: Any, calls: int, rate: float) -> list[Fault]:
    """Each of the next ``calls`` calls to ``endpoint`` fails (HTTP 500) with probability ``rate``.

    Fault slots are used up in order: one without a status lets a run of calls through as usual.
    """
    faults: list[Fault] = []
    run_ok = run_bad = 0

    def flush() -> None:
        nonlocal run_ok, run_bad
        if run_ok:
            faults.append(Fault(endpoint, times=run_ok))
        if run_bad:
            faults.append(Fault(endpoint, status=500, times=run_bad))
        run_ok = run_bad = 0

    for _ in range(calls):
        if rng.random() < rate:
            run_bad += 1
        else:
            if run_bad:
                flush()
            run_ok += 1
    flush()
    return faults


def option(interaction: FakeInteraction, name: str) -> Any:
    return next((o["value"] for o in interaction.data.get("options", []) if o["name"] == name), None)


def title(embeds: list[dict[str, Any]]) -> str | None:
    return embeds[0].get("title") if embeds else None


def read_jobs(db: Path) -> list[dict[str, Any]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=rw", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute("SELECT * FROM jobs ORDER BY id")]


@dataclass
class Chaos:
    fake: FakeDiscord
    sim: Simulator
    env: dict[str, str]
    workdir: Path
    db: Path
    plan: Plan
    members: list[FakeUser]
    processes: list[BotProcess] = field(default_factory=list)
    sessions_before: int = 0
    undelivered: int = 0  # interactions sent while no bot was connected
    log: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def note(self, what: str) -> None:
        self.log.append(f"{time.monotonic() - self.started:6.2f} s  {what}")

    @property
    def current(self) -> BotProcess:
        return self.processes[-1]

    def start_bot(self) -> None:
        self.sessions_before = len(self.fake.sessions)
        process = BotProcess(self.env, self.workdir)
        process.start()
        self.processes.append(process)
        self.note(f"started bot #{len(self.processes)}")

    async def bot_up(self) -> None:
        """Wait until the current process has identified on the gateway (it takes interactions)."""
        await self.fake.wait_until(
            lambda: any(s.ready and s.connected for s in self.fake.sessions[self.sessions_before :]),
            START_TIMEOUT,
            f"bot #{len(self.processes)} on the gateway",
        )

    async def kill_and_restart(self, downtime: float) -> None:
        self.current.kill()
        states = Counter(job["status"] for job in read_jobs(self.db) if job["status"] not in TERMINAL)
        self.note(f"killed bot #{len(self.processes)} with jobs {dict(states) or 'none'} in progress")
        await asyncio.sleep(downtime)  # the schedule's downtime, not a wait for anything
        self.start_bot()

    async def invoke(self, invocation: Invocation) -> None:
        user = self.members[invocation.user]
        try:
            await self.fake.invoke("imagine", user, options={"prompt": invocation.prompt})
            self.note(f"/imagine {invocation.prompt!r} by {user.name}")
        except RuntimeError as exc:  # no bot on the gateway: Discord says "did not respond"
            if "no connected gateway session" not in str(exc):
                raise
            self.undelivered += 1
            self.note(f"/imagine {invocation.prompt!r} by {user.name}: no bot connected")

    async def run(self) -> None:
        """Play the plan: the interactions and the kills, each at its moment."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        events: list[tuple[float, Invocation | None]] = [(i.at, i) for i in self.plan.invocations]
        events += [(at, None) for at in self.plan.kills]
        downtimes = iter(self.plan.downtimes)
        for at, invocation in sorted(events, key=lambda e: e[0]):
            delay = start + at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)  # the schedule's moment
            if invocation is None:
                await self.kill_and_restart(next(downtimes))
            elif invocation.kill_after is None:
                await self.invoke(invocation)
            else:
                await self.bot_up()  # this kill must come right after an interaction the bot got
                await self.invoke(invocation)
                await asyncio.sleep(invocation.kill_after)
                await self.kill_and_restart(next(downtimes))

    def logs(self) -> str:
        parts = []
        for n, process in enumerate(self.processes, start=1):
            lines = process.output().splitlines()
            worth = [line for line in lines if "ERROR" in line or "Traceback" in line or "CRITICAL" in line]
            parts.append(f"--- bot #{n} ({process.log}): {len(lines)} lines; errors:\n" + "\n".join(worth[-20:]))
        return "\n".join(parts)


def check_visible(
    fake: FakeDiscord,
    job: dict[str, Any],
    interaction: FakeInteraction | None,
    by_prompt: dict[str, list[FakeMessage]],
) -> list[str]:
    """What is wrong with how the job's end shows in Discord (nothing: an empty list)."""
    problems: list[str] = []
    label = f"job {job['id']} ({job['prompt']!r}, {job['status']} {job['error_type'] or ''})"
    expected = TITLE_OF.get(job["status"])
    message = fake.messages.get(str(job["message_id"])) if job["message_id"] is not None else None
    if message is None or message.deleted:
        return [f"{label}: no reply message (message_id {job['message_id']})"]
    own_reply = interaction is not None and message.id == interaction.original_id
    if not own_reply and str(job["user_id"]) not in message.pinged:
        problems.append(f"{label}: shown in message {message.id}, neither the reply nor mentioning the member")
    if message.loading or title(message.embeds) != expected:
        problems.append(f"{label}: its message shows {title(message.embeds)!r} (loading={message.loading})")
    if job["status"] == "delivered":
        if len(message.attachments) != 1:
            problems.append(f"{label}: {len(message.attachments)} attachments on the delivered reply")
        elif decoded_size(fake.attachment_bytes(message.attachments[0].id)) != (1024, 1024):
            problems.append(f"{label}: the image is not a 1K square")
    # Exactly one end: no message about this job shows another end, or still shows progress.
    for other in by_prompt.get(job["prompt"], []):
        ends = {t for s in other.history if (t := title(s.embeds)) is not None and t in TITLE_OF.values()}
        if ends - {expected}:
            problems.append(f"{label}: message {other.id} showed {sorted(ends)}")
        if not other.deleted and (other.loading or title(other.embeds) != expected):
            problems.append(f"{label}: message {other.id} still shows {title(other.embeds)!r}")
    if interaction is not None and (original := interaction.original()) is not None and original.loading:
        problems.append(f"{label}: the interaction's reply is still 'thinking…'")
    return problems


async def test_chaos(tmp_path: Path) -> None:
    seed = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(1, 2**32))
    print(f"chaos seed: {seed}")
    plan = make_plan(seed)
    print(plan.describe())
    db = tmp_path / "bot.sqlite3"
    options = SimulatorOptions(api_key=SIM_KEY, workers=3, job_duration=plan.job_duration)
    async with FakeDiscord() as fake, run_simulator(options) as sim:
        faults = random.Random(f"{seed}-faults")
        for endpoint in ("status", "result"):
            for fault in fault_schedule(faults, endpoint, SCHEDULED_CALLS, FAULT_RATE):
                sim.add_fault(fault)
        members = [fake.alice, fake.bob, fake.add_member("carol")]
        chaos = Chaos(fake, sim, settings_env(settings_for(fake, sim, db)), tmp_path, db, plan, members)
        chaos.start_bot()
        try:
            await fake.wait_synced(timeout=START_TIMEOUT)
            await chaos.bot_up()
            await chaos.run()
            await chaos.bot_up()
            interactions = [i for i in fake.interactions.values() if i.data.get("name") == "imagine"]
            # Every interaction the last bot got has been answered (or can no longer be).
            await wait_until(  # polled: the deadline passing is no change the fake reports
                lambda: all(i.responses or fake.clock() - i.created_at > fake.callback_deadline for i in interactions),
                fake.callback_deadline + 5.0,
                interval=0.05,
                what="every interaction answered or past its deadline",
            )

            def settled() -> bool:
                jobs = read_jobs(db)
                return all(
                    j["status"] in TERMINAL and (j["told_at"] is not None or j["status"] == "delivered") for j in jobs
                )

            try:
                await wait_until(settled, SETTLE_TIMEOUT, interval=0.05, what="every job ended and told")
            except AssertionError as exc:
                stuck = [
                    (j["id"], j["prompt"], j["status"], j["told_at"])
                    for j in read_jobs(db)
                    if j["status"] not in TERMINAL or j["told_at"] is None
                ]
                raise AssertionError(
                    f"chaos seed {seed}: {exc}; not settled: {stuck}\n" + "\n".join(chaos.log) + "\n" + chaos.logs()
                ) from None
            chaos.note("settled")
        finally:
            chaos.current.kill()
        jobs = read_jobs(db)

    submitted = Counter(call.json["prompt"] for call in sim.submits())
    # Prompts are unique: they tie interactions, job rows, upstream submits and messages together (a
    # row's interaction token is erased once its member has been told).
    by_prompt_interaction = {option(i, "prompt"): i for i in interactions}
    by_prompt: dict[str, list[FakeMessage]] = {}
    for message in fake.messages.values():
        if message.embeds and not message.ephemeral:
            by_prompt.setdefault(message.embeds[0].get("description") or "", []).append(message)
    rows = {job["prompt"]: job for job in jobs}
    problems: list[str] = []

    # Nothing was sent upstream twice, and nothing was sent that has no job.
    problems += [f"{prompt!r} was submitted {n} times" for prompt, n in submitted.items() if n > 1]
    prompts = {job["prompt"] for job in jobs}
    problems += [f"{prompt!r} was submitted without a job row" for prompt in submitted if prompt not in prompts]

    # Interactions: answered ones have a job; unanswered ones have none (the bot died before the row:
    # nothing reserved, nothing sent) or the row was written just before the kill, in which case the
    # job went on at the next start (docs/crash-windows.md, window 2) and is checked with the others.
    window_2 = 0
    for interaction in interactions:
        prompt = option(interaction, "prompt")
        row = rows.get(prompt)
        if interaction.responses:
            if interaction.response_type != 5:
                problems.append(f"{prompt!r}: answered with type {interaction.response_type}, not a deferral")
            if row is None:
                problems.append(f"{prompt!r}: answered but no job row")
        elif row is None:
            if submitted[prompt]:
                problems.append(f"{prompt!r}: never answered and no job row, yet submitted")
        else:
            window_2 += 1

    for job in jobs:
        label = f"job {job['id']} ({job['prompt']!r})"
        asked = by_prompt_interaction.get(job["prompt"])
        if asked is None:
            problems.append(f"{label}: no interaction with that prompt")
        if job["status"] not in TERMINAL:
            problems.append(f"{label}: still {job['status']}")
            continue
        problems += check_visible(fake, job, asked, by_prompt)
        # Nothing that never reached the upstream was dropped.
        if job["status"] == "failed":
            if job["error_type"] == "interrupted":
                if job["submit_started_at"] is None:
                    problems.append(f"{label}: failed as interrupted although its submit never started")
            elif not submitted[job["prompt"]] and job["error_type"] not in UPSTREAM_FAILURES:
                problems.append(f"{label}: failed ({job['error_type']}) without ever reaching the upstream")
        if job["status"] == "delivered" and submitted[job["prompt"]] != 1:
            problems.append(f"{label}: delivered, but submitted {submitted[job['prompt']]} times")
        if job["cost"] != (1 if job["status"] == "delivered" else 0):
            problems.append(f"{label}: cost {job['cost']} for a {job['status']} job")
    delivered = sum(1 for job in jobs if job["status"] == "delivered")
    used = sum(job["cost"] for job in jobs)
    if used != delivered:
        problems.append(f"quota use {used} != {delivered} images delivered")
    if len(jobs) < JOBS // 2:
        problems.append(f"only {len(jobs)} of {JOBS} interactions made a job: the schedule tested too little")

    status_calls, result_calls = sim.calls_to("status"), sim.calls_to("result")
    outcomes = Counter((j["status"], j["error_type"]) for j in jobs)
    summary = (
        f"chaos seed {seed}: {len(interactions)} interactions ({chaos.undelivered} with no bot connected, "
        f"{sum(1 for i in interactions if not i.responses)} unanswered, {window_2} of them with a job); "
        f"{len(jobs)} jobs: {dict(outcomes)}; {sum(submitted.values())} submits; "
        f"status calls {len(status_calls)} ({sum(c.status == 500 for c in status_calls)} failed), "
        f"result calls {len(result_calls)} ({sum(c.status == 500 for c in result_calls)} failed); "
        f"{time.monotonic() - chaos.started:.1f} s"
    )
    print(summary)
    print("\n".join(line for line in chaos.log if "killed" in line))
    assert not problems, (
        f"{summary}\n{plan.describe()}\n"
        + "\n".join(problems)
        + "\n--- timeline:\n"
        + "\n".join(chaos.log)
        + "\n"
        + chaos.logs()
    )

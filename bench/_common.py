"""What the benchmarks share: the simulator in a child process, Discord-like rate limits for the fake
Discord, ``python -m bot`` as a child process, and reading figures (``/proc``, ``/metrics``, replies).

Three processes take part: the bench itself (the fake Discord, which the members' interactions come
from and which records every REST request and every version of every message), the simulator (in
its own process, so that rendering PNGs and answering polls does not slow the fake down), and the
bot exactly as ``python -m bot`` runs it, with default settings. All three use the same monotonic
clock (``CLOCK_MONOTONIC`` is system-wide), so times taken in one compare with times taken in another.
Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import multiprocessing
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.devtools.fakediscord import FakeChannel, FakeDiscord, FakeInteraction, FakeMessage, FakeUser, MessageFlag
from bot.devtools.fakediscord.ratelimit import RateLimitRule
from bot.metrics import discord_route
from bot.simulator import SimulatorOptions, run_simulator

ROOT = Path(__file__).resolve().parent.parent
SIM_KEY = "bench-upstream-key"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ================================================================================== the machine


def git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_lines() -> list[str]:
    """Date, cores, memory, Python and the commit (with any uncommitted changes to tracked files)."""
    mem_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]
    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    if changed:
        commit += f" (uncommitted changes in {', '.join(changed)})"
    return [
        f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"machine: {os.cpu_count()} cores, {mem_kb / 1024 / 1024:.1f} GiB memory, Python {sys.version.split()[0]}",
        f"commit: {commit}",
    ]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ================================================================================== figures


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..1) of ``values``; None if there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def seconds(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f} s"


def ms(value: float | None) -> str:
    return "—" if value is None else f"{value * 1000:.0f} ms"


def say(label: str, value: object) -> None:
    print(f"  {label:<44} {value}", flush=True)


def peak_in_window(times: Iterable[float], window: float = 1.0) -> int:
    """The most events in any ``window``-second interval (sliding)."""
    ordered = sorted(times)
    best = 0
    start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


@dataclass(frozen=True, slots=True)
class ProcStats:
    """CPU time and memory of a process, read from ``/proc`` (Linux)."""

    pid: int

    def cpu_seconds(self) -> float:
        """User plus system CPU seconds so far."""
        text = Path(f"/proc/{self.pid}/stat").read_text()
        fields = text[text.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def _status_kb(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    def peak_rss_mb(self) -> float:
        """VmHWM: the most resident memory the process ever had."""
        return self._status_kb("VmHWM") / 1024

    def rss_mb(self) -> float:
        return self._status_kb("VmRSS") / 1024


def own_cpu_seconds() -> float:
    usage = os.times()
    return usage.user + usage.system


# ================================================================================== /metrics


Samples = list[tuple[str, dict[str, str], float]]


async def scrape(port: int) -> Samples:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as response:
        text = await response.text()
    return [(s.name, dict(s.labels), float(s.value)) for f in text_string_to_metric_families(text) for s in f.samples]


def sample_total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of every sample called ``name`` whose labels include ``labels``."""
    return sum(v for n, lab, v in samples if n == name and all(lab.get(k) == x for k, x in labels.items()))


def buckets(samples: Samples, name: str) -> dict[float, float]:
    """A histogram's cumulative bucket counts by upper bound (``inf`` for +Inf)."""
    return {float(lab["le"]): v for n, lab, v in samples if n == f"{name}_bucket"}


def highest_bucket(after: dict[float, float], before: dict[float, float] | None = None) -> float | None:
    """The upper bound of the highest bucket that got an observation between two scrapes."""
    highest, below = None, 0.0
    for bound in sorted(after):
        cumulative = after[bound] - (before or {}).get(bound, 0.0)
        if cumulative > below:
            highest = bound
        below = cumulative
    return highest


def histogram_quantile(q: float, after: dict[float, float], before: dict[float, float] | None = None) -> float | None:
    """The ``q`` quantile of the observations between two scrapes, interpolated inside its bucket
    like Prometheus' ``histogram_quantile`` (a quantile in the +Inf bucket reads as the last bound)."""
    bounds = sorted(after)
    counts = [after[b] - (before or {}).get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return None
    rank = q * counts[-1]
    lower, below = 0.0, 0.0
    for bound, cumulative in zip(bounds, counts, strict=True):
        if cumulative >= rank:
            if math.isinf(bound):
                return lower
            inside = cumulative - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, cumulative
    return lower


# ================================================================================== the simulator


@dataclass(frozen=True, slots=True)
class SimCall:
    endpoint: str
    request_id: str | None
    received_at: float
    status: int | None


@dataclass(frozen=True, slots=True)
class SimJobRecord:
    request_id: str
    prompt: str
    queued_at: float
    started_at: float | None
    finished_at: float | None
    duration: float
    state: str
    error_type: str | None


@dataclass(frozen=True, slots=True)
class SimRecords:
    calls: list[SimCall]
    jobs: list[SimJobRecord]

    def by_prompt(self) -> dict[str, SimJobRecord]:
        return {job.prompt: job for job in self.jobs}


def _simulator_child(conn: Connection, options: SimulatorOptions) -> None:
    """The simulator's process: serve until told to stop (or the bench goes away)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the bench's to handle
    asyncio.run(_serve_simulator(conn, options))


async def _serve_simulator(conn: Connection, options: SimulatorOptions) -> None:
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    async with run_simulator(options) as sim:

        def finish(request_id: str) -> None:
            job = sim.jobs.get(request_id)
            if job is None or job.state == "COMPLETED":
                return
            if job.state == "IN_QUEUE":  # not started yet: finish it as soon as a worker has it
                loop.call_later(0.05, finish, request_id)
                return
            sim.finish(request_id)

        def on_message() -> None:
            try:
                kind, *args = conn.recv()
            except (EOFError, OSError):
                stopped.set()
                return
            if kind == "counts":
                completed = sum(1 for job in sim.jobs.values() if job.state == "COMPLETED")
                conn.send((len(sim.jobs), completed, len(sim.calls)))
            elif kind == "ids":
                conn.send(list(sim.jobs))
            elif kind == "records":
                calls = [SimCall(c.endpoint, c.request_id, c.received_at, c.status) for c in sim.calls]
                jobs = [
                    SimJobRecord(
                        j.request_id,
                        str(j.body.get("prompt", "")),
                        j.queued_at,
                        j.started_at,
                        j.finished_at,
                        j.duration,
                        j.state,
                        j.error_type,
                    )
                    for j in sim.jobs.values()
                ]
                conn.send(SimRecords(calls, jobs))
            elif kind == "finish":  # [(request_id, seconds from now), ...]
                for request_id, delay in args[0]:
                    loop.call_later(max(0.0, delay), finish, request_id)
                conn.send(len(args[0]))
            else:  # "stop"
                conn.send(None)
                stopped.set()

        loop.add_reader(conn.fileno(), on_message)
        conn.send(sim.base_url)
        await stopped.wait()
        loop.remove_reader(conn.fileno())


class SimulatorProcess:
    """The upstream simulator served from a child process; ask it for counts and records."""

    def __init__(self, options: SimulatorOptions) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self.process = context.Process(target=_simulator_child, args=(child, options), name="simulator", daemon=True)
        self._lock = asyncio.Lock()
        self.base_url = ""

    def start(self, timeout: float = 60.0) -> str:
        self.process.start()
        if not self._conn.poll(timeout):
            raise RuntimeError("the simulator did not start")
        self.base_url = self._conn.recv()
        return self.base_url

    @property
    def stats(self) -> ProcStats:
        assert self.process.pid is not None
        return ProcStats(self.process.pid)

    def _ask_blocking(self, message: tuple[Any, ...]) -> Any:
        self._conn.send(message)
        return self._conn.recv()

    async def _ask(self, *message: Any) -> Any:
        async with self._lock:
            return await asyncio.get_running_loop().run_in_executor(None, self._ask_blocking, message)

    async def counts(self) -> tuple[int, int, int]:
        """(jobs created, jobs completed, calls received)."""
        counts: tuple[int, int, int] = await self._ask("counts")
        return counts

    async def request_ids(self) -> list[str]:
        ids: list[str] = await self._ask("ids")
        return ids

    async def records(self) -> SimRecords:
        records: SimRecords = await self._ask("records")
        return records

    async def finish(self, plan: Sequence[tuple[str, float]]) -> None:
        """Complete jobs (manual mode): each ``(request_id, seconds from now)``."""
        await self._ask("finish", list(plan))

    def stop(self) -> None:
        if self.process.pid is None:  # never started
            return
        with contextlib.suppress(OSError, EOFError):
            self._conn.send(("stop",))
            if self._conn.poll(5):
                self._conn.recv()
        self.process.join(5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


# ================================================================================== Discord-like limits


@dataclass
class KeyedLimit:
    """``limit`` requests per ``per`` seconds for each value of the pattern's ``key`` group (an
    interaction token, a channel id), as fixed windows like the fake's own rules."""

    name: str
    pattern: re.Pattern[str]
    methods: frozenset[str]
    limit: int
    per: float
    rules: dict[str, RateLimitRule] = field(default_factory=dict)

    def rule_for(self, method: str, path: str) -> RateLimitRule | None:
        if method.upper() not in self.methods:
            return None
        match = self.pattern.search(path)
        if match is None:
            return None
        key = match.group("key")
        rule = self.rules.get(key)
        if rule is None:
            bucket = hashlib.sha1(self.name.encode(), usedforsecurity=False).hexdigest()[:32]
            rule = RateLimitRule(pattern=self.pattern, limit=self.limit, per=self.per, bucket=bucket)
            self.rules[key] = rule
        return rule

    @property
    def served_429(self) -> int:
        return sum(rule.served_429 for rule in self.rules.values())

    @property
    def hits(self) -> int:
        return sum(rule.hits for rule in self.rules.values())


class KeyedRateLimits:
    """Stands in for ``FakeDiscord.rate_limits`` to give each key its own window.

    The fake takes the first rule of ``rate_limits`` whose ``matches(method, path)`` is true, and
    then counts the request on that rule and answers with its headers. Its own rules have one window
    per rule, so a limit per interaction token or per channel would need one rule per token (a
    thousand rules, scanned by regex on every request). Iterating this object yields a probe first,
    which finds (or makes) the rule of the request's key and answers False, then that rule, which
    matches: the same rule objects, one per key, found in constant time.
    """

    def __init__(self, limits: Iterable[KeyedLimit]) -> None:
        self.limits = list(limits)
        self._found: RateLimitRule | None = None

    def matches(self, method: str, path: str) -> bool:
        self._found = next((r for lim in self.limits if (r := lim.rule_for(method, path)) is not None), None)
        return False

    def __iter__(self) -> Iterator[Any]:
        yield self
        found, self._found = self._found, None
        if found is not None:
            yield found

    def append(self, rule: RateLimitRule) -> None:
        raise TypeError("the bench's rate limits are fixed; add a KeyedLimit instead")

    def clear(self) -> None:
        for limit in self.limits:
            limit.rules.clear()

    def summary(self) -> str:
        return ", ".join(f"{lim.name}: {lim.served_429}" for lim in self.limits)


def discord_limits() -> KeyedRateLimits:
    """Discord's limits that matter to a busy channel: 5 message edits per 5 s per interaction token
    (the reply edited through its interaction) and per channel (edits with the bot token), and 4
    reaction changes per second per channel (adding and removing count alike)."""
    return KeyedRateLimits(
        [
            KeyedLimit(
                "edits per interaction token",
                re.compile(r"^/webhooks/\d+/(?P<key>[^/]+)/messages/[^/]+$"),
                frozenset({"PATCH"}),
                limit=5,
                per=5.0,
            ),
            KeyedLimit(
                "edits per channel",
                re.compile(r"^/channels/(?P<key>\d+)/messages/\d+$"),
                frozenset({"PATCH"}),
                limit=5,
                per=5.0,
            ),
            KeyedLimit(
                "reactions per channel",
                re.compile(r"^/channels/(?P<key>\d+)/messages/\d+/reactions(?:/|$)"),
                frozenset({"PUT", "DELETE"}),
                limit=4,
                per=1.0,
            ),
        ]
    )


def apply_discord_limits(fake: FakeDiscord) -> KeyedRateLimits:
    limits = discord_limits()
    fake.rate_limits = limits  # type: ignore[assignment]
    return limits


# ================================================================================== the fake's world


def add_channels(fake: FakeDiscord, count: int) -> list[FakeChannel]:
    """``count`` text channels (``#general`` first); call before the bot connects, so that its
    GUILD_CREATE lists them."""
    channels = [fake.general]
    for number in range(2, count + 1):
        channel = FakeChannel(id=fake.snowflake(), name=f"bench-{number}", guild_id=fake.guild.id, position=10 + number)
        fake.guild.channels[channel.id] = channel
        channels.append(channel)
    return channels


def add_members(fake: FakeDiscord, count: int) -> list[FakeUser]:
    return [fake.add_member(f"member-{number}") for number in range(1, count + 1)]


async def send_imagines(
    fake: FakeDiscord,
    count: int,
    users: Sequence[FakeUser],
    channels: Sequence[FakeChannel],
    *,
    spread: float,
    prompt: Callable[[int], str],
    sent: list[FakeInteraction],
) -> None:
    """``count`` /imagine interactions, evenly spaced over ``spread`` seconds, appended to ``sent``
    as they go; job ``i`` comes from ``users[i % len(users)]`` in ``channels[i % len(channels)]``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(count):
        delay = start + spread * i / count - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        interaction = await fake.invoke(
            "imagine", users[i % len(users)], channel=channels[i % len(channels)], options={"prompt": prompt(i)}
        )
        sent.append(interaction)


def prompt_of(i: int) -> str:
    return f"bench job {i}: a lighthouse in a storm, oil painting"


# ================================================================================== replies


def image_time(message: FakeMessage | None) -> float | None:
    """When the reply first showed an image (the fake's clock), or None."""
    if message is None:
        return None
    return next((snap.time for snap in message.history if snap.attachments), None)


def final_state(message: FakeMessage | None) -> str | None:
    """``image``, ``failed``, ``cancelled`` or None (still in progress, or no reply)."""
    if message is None:
        return None
    if message.attachments:
        return "image"
    title = (message.embeds[0].get("title") or "") if message.embeds else ""
    if title.startswith("⚠️"):
        return "failed"
    if title.startswith("🛑"):
        return "cancelled"
    return None


def ending(interaction: FakeInteraction, now: float) -> str | None:
    """How an interaction ended for its member: :func:`final_state` of its reply, or ``not
    acknowledged in time`` once Discord's deadline for the first answer passed without one (the
    member sees "The application did not respond"); None while it may still go on."""
    state = final_state(interaction.original())
    if (
        state is None
        and not interaction.responses
        and now - interaction.created_at > interaction.fake.callback_deadline + 1
    ):
        return "not acknowledged in time"
    return state


def visible_state(snapshot: Any) -> tuple[object, ...]:
    """What a member sees of a version of the reply, without the elapsed time and the estimate
    (those are refreshes, not state changes): loading, title, status line, whether there is an image."""
    title, status = "", ""
    for embed in snapshot.embeds:
        title = embed.get("title") or title
        for item in embed.get("fields") or []:
            if item.get("name") == "Status":
                status = str(item.get("value", "")).split(" · ")[0]
    loading = bool(snapshot.flags & MessageFlag.LOADING)
    return (loading, title, status, bool(snapshot.attachments), snapshot.content if not snapshot.embeds else "")


def job_of_request(path: str) -> tuple[str, str] | None:
    """``("token", t)`` or ``("message", id)`` for a request that concerns one job's reply."""
    parts = path.split("/")
    if len(parts) > 3 and parts[1] in ("interactions", "webhooks"):
        return ("token", parts[3])
    if len(parts) > 4 and parts[1] == "channels" and parts[3] == "messages":
        return ("message", parts[4])
    return None


def route_of(method: str, path: str) -> str:
    return f"{method} {discord_route(path)}"


# ================================================================================== profiles


class Profiler:
    """``py-spy record`` attached to a running process (``pip install py-spy``; not a dependency of
    the project): samples only what is on a CPU, writes collapsed stacks to ``path``."""

    def __init__(self, pid: int, path: Path, rate: int = 100) -> None:
        exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(exe).exists():
            raise RuntimeError("--profile needs py-spy: pip install py-spy")
        self.path = path
        command = [exe, "record", "--pid", str(pid), "--rate", str(rate), "--nonblocking", "--format", "raw"]
        self.proc = subprocess.Popen(
            [*command, "--output", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def profile_summary(path: Path, top: int = 15) -> list[str]:
    """Where the CPU went in a collapsed-stack profile: the project's functions by share of samples
    on the stack (``bot/``, ``cogs/``), and the functions that were running. Samples waiting in
    the event loop's ``select`` are idle time and left out."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = idle = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames[-1].startswith("EpollSelector.select") or frames[-1].startswith("select ("):
            idle += count
            continue
        total += count
        for frame in {f for f in frames if " (bot/" in f or " (cogs/" in f}:
            inclusive[frame] = inclusive.get(frame, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
    if not total:
        return ["(no samples)"]
    lines = [f"{total} busy samples ({idle} idle in select left out); shares of the busy ones"]
    lines += ["the project's functions, on the stack:"] + [
        f"  {100 * n / total:5.1f}%  {f}" for f, n in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]
    ]
    lines += ["running:"] + [
        f"  {100 * n / total:5.1f}%  {f}" for f, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]
    ]
    return lines


# ================================================================================== the bot


def bot_env(fake: FakeDiscord, upstream_url: str, db_path: Path, metrics_port: int) -> dict[str, str]:
    """The environment of ``python -m bot`` against the fakes, every other setting at its default."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "ENV_FILE": os.devnull,
        "DISCORD_TOKEN": fake.token,
        "ODIROUTER_API_KEY": SIM_KEY,
        "ODIROUTER_BASE_URL": upstream_url,
        "DATABASE_URL": f"sqlite:///{db_path}",
        "DISCORD_API_BASE_URL": fake.api_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "METRICS_HOST": "127.0.0.1",
        "METRICS_PORT": str(metrics_port),
        "LOG_LEVEL": "WARNING",
    }


class BotChild:
    """``python -m bot`` in a child process, its output in ``workdir/<name>.log``."""

    def __init__(self, env: dict[str, str], workdir: Path, name: str = "bot") -> None:
        self.env = env
        self.workdir = workdir
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.started_at = time.monotonic()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot"], env=self.env, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def stats(self) -> ProcStats:
        assert self.proc is not None
        return ProcStats(self.proc.pid)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def wait_healthy(self, port: int, within: float) -> None:
        """Until ``/healthz`` says 200 (gateway connected, database answering)."""
        deadline = time.monotonic() + within
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if not self.running:
                    raise RuntimeError(f"the bot exited early; see {self.log}:\n{self.output()[-2000:]}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.05)
        raise TimeoutError(f"the bot was not healthy within {within:.0f} s; see {self.log}")

    async def terminate(self, grace: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within ``grace`` s (the fakes keep answering)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.proc.wait, grace)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def problems(self, limit: int = 6) -> tuple[int, list[str]]:
        """How many WARNING/ERROR/CRITICAL lines the bot logged, and the most frequent few (counted)."""
        counts: dict[str, int] = {}
        total = 0
        for line in self.output().splitlines():
            found = re.search(r"\b(WARNING|ERROR|CRITICAL)\b\s*(.*)", line)
            if found:
                total += 1
                key = re.sub(r"\d+", "N", found.group(0))[:160]
                counts[key] = counts.get(key, 0) + 1
        top = sorted(counts.items(), key=lambda kv: -kv[1])[:limit]
        return total, [f"{n} × {text}" for text, n in top]

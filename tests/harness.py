"""Start the shipped bot (``bot/`` and ``cogs/`` as they are) against the fake Discord and the
simulator, with a temporary database, and read what members see.

The bot is built exactly as ``python -m bot`` builds it, only with short polling intervals and a
quick ``guild_ready_timeout``; every REST call and the gateway go through discord.py's own code.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import discord
from PIL import Image

from bot.__main__ import ownership_of, tracker_settings
from bot.app import ImagineBot, configure_discord_endpoints, create_bot
from bot.config import Settings
from bot.devtools.fakediscord import FakeDiscord, FakeInteraction, FakeMessage, FakeUser, wait_until
from bot.metrics import Metrics
from bot.models import JobRecord, Ownership
from bot.queue import QueueClient, RetryPolicy
from bot.simulator import Simulator
from bot.storage import Store, open_store
from bot.tracker import JobTracker

SIM_KEY = "e2e-upstream-key"
READY_TIMEOUT = 5.0


def png_bytes(width: int = 64, height: int = 48, colour: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def decoded_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def settings_for(fake: FakeDiscord, sim: Simulator, db_path: Path, **overrides: Any) -> Settings:
    base = Settings(
        discord_token=fake.token,
        odirouter_api_key=SIM_KEY,
        odirouter_base_url=sim.base_url,
        database_url=f"sqlite:///{db_path}",
        discord_api_base_url=fake.api_base,
        discord_gateway_url=fake.gateway_url,
        poll_min_interval=0.02,
        poll_max_interval=0.1,
        status_edit_interval=0.2,
        queue_position_interval=0.2,
        job_timeout=60.0,
    )
    return replace(base, **overrides)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes ``python -m bot`` run with ``settings`` (for subprocess tests)."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "ENV_FILE": os.devnull,
        "DISCORD_TOKEN": settings.discord_token,
        "ODIROUTER_API_KEY": settings.odirouter_api_key,
        "ODIROUTER_BASE_URL": settings.odirouter_base_url,
        "DATABASE_URL": settings.database_url,
        "DISCORD_API_BASE_URL": settings.discord_api_base_url or "",
        "DISCORD_GATEWAY_URL": settings.discord_gateway_url or "",
        "POLL_MIN_INTERVAL": str(settings.poll_min_interval),
        "POLL_MAX_INTERVAL": str(settings.poll_max_interval),
        "STATUS_EDIT_INTERVAL": str(settings.status_edit_interval),
        "QUEUE_POSITION_INTERVAL": str(settings.queue_position_interval),
        "LOG_LEVEL": "INFO",
        "SWEEP_INTERVAL_SECONDS": str(settings.sweep_interval),
        "SHARD_COUNT": "" if settings.shard_count is None else str(settings.shard_count),
        "SHARD_IDS": "" if settings.shard_ids is None else ",".join(map(str, settings.shard_ids)),
    }


@dataclass
class Rig:
    """A running bot plus the two fakes it talks to."""

    fake: FakeDiscord
    sim: Simulator
    bot: ImagineBot
    store: Store
    settings: Settings

    async def imagine(self, user: FakeUser, *, validate: bool = True, **options: Any) -> FakeInteraction:
        return await self.fake.invoke("imagine", user, options=options, validate=validate)

    async def job_for(self, interaction: FakeInteraction, timeout: float = 5.0) -> JobRecord:
        """The job created for an interaction (found by its reply message)."""
        found: list[JobRecord] = []

        async def check() -> bool:
            original = interaction.original()
            if original is None:
                return False
            job = await self.store.job_by_message(int(original.id))
            if job is not None:
                found.append(job)
            return job is not None

        await wait_until(check, timeout, what="the job of an interaction")
        return found[-1]

    async def wait_job(
        self, job_id: int, predicate: Callable[[JobRecord], bool], timeout: float = 5.0, what: str = "job state"
    ) -> JobRecord:
        found: list[JobRecord] = []

        async def check() -> bool:
            job = await self.store.get_job(job_id)
            if job is not None and predicate(job):
                found.append(job)
                return True
            return False

        await wait_until(check, timeout, what=what)
        return found[-1]


def embed_text(message: FakeMessage) -> str:
    """Everything readable in a message's embeds, flattened (title, description, fields, footer)."""
    parts: list[str] = []
    for embed in message.embeds:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        for field in embed.get("fields") or []:
            parts += [field.get("name", ""), field.get("value", "")]
        parts.append((embed.get("footer") or {}).get("text", ""))
    return "\n".join(p for p in parts if p)


def status_history(message: FakeMessage) -> list[str]:
    """The "Status" field of every version of a message, in order, without repeats."""
    seen: list[str] = []
    for snapshot in message.history:
        for embed in snapshot.embeds:
            for field in embed.get("fields") or []:
                if field.get("name") == "Status" and (not seen or seen[-1] != field.get("value")):
                    seen.append(field["value"])
    return seen


@contextlib.asynccontextmanager
async def running_bot(
    fake: FakeDiscord,
    sim: Simulator,
    db_path: Path,
    *,
    sync_commands: bool = True,
    force_sync: bool = False,
    clock: Callable[[], float] = time.time,
    metrics: Metrics | None = None,
    ownership: Ownership | None = None,
    **overrides: Any,
) -> AsyncIterator[Rig]:
    """Run the bot in this event loop until the block ends; then close it before the fakes."""
    settings = settings_for(fake, sim, db_path, **overrides)
    saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    configure_discord_endpoints(settings)
    try:
        async with aiohttp.ClientSession() as session, contextlib.AsyncExitStack() as stack:
            if ownership is None and settings.sharded:
                ownership = ownership_of(settings)
            store = await stack.enter_async_context(open_store(settings.database_url, ownership=ownership))
            await store.claim_shards()
            queue = QueueClient(
                session,
                base_url=settings.odirouter_base_url,
                api_key=settings.odirouter_api_key,
                retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05),
                metrics=metrics,
            )
            tracker = JobTracker(store, queue, settings=tracker_settings(settings), metrics=metrics)
            bot = create_bot(
                settings,
                store=store,
                queue=queue,
                tracker=tracker,
                session=session,
                guild_ready_timeout=0.05,
                sync_commands=sync_commands,
                force_sync=force_sync,
                clock=clock,
                metrics=metrics,
            )
            runner = asyncio.create_task(bot.start(settings.discord_token))
            ready = asyncio.create_task(bot.wait_until_ready())
            try:
                done, _ = await asyncio.wait({runner, ready}, timeout=READY_TIMEOUT, return_when="FIRST_COMPLETED")
                if runner in done:
                    runner.result()  # the bot died while starting: show why
                if ready not in done:
                    raise AssertionError(f"the bot was not ready within {READY_TIMEOUT}s")
                yield Rig(fake, sim, bot, store, settings)
            finally:
                ready.cancel()
                await bot.close()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner
    finally:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved


class BotProcess:
    """``python -m bot`` in a child process (for crash tests: SIGKILL really kills it)."""

    def __init__(self, env: Mapping[str, str], cwd: Path) -> None:
        self._env = dict(env)
        self._cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = cwd / f"bot-{time.monotonic_ns()}.log"

    def start(self) -> None:
        root = Path(__file__).resolve().parent.parent
        env = {**self._env, "PYTHONPATH": str(root)}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot"], env=env, cwd=self._cwd, stdout=out, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def wait(self, timeout: float) -> int | None:
        """The exit code once the process has ended, or ``None`` if it still runs after ``timeout`` s.
        Waits without blocking the event loop (the fakes the bot talks to run in it)."""
        assert self.proc is not None, "the process was never started"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (code := self.proc.poll()) is None:
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(0.01)
        return code

    async def terminate(self, timeout: float = 10.0) -> int | None:
        """Send SIGTERM (what Docker and systemd send) and return the exit code, or ``None`` if the
        process did not end within ``timeout`` s."""
        assert self.proc is not None, "the process was never started"
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return await self.wait(timeout)

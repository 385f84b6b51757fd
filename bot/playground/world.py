"""The playground's world: the local Discord stand-in, the upstream simulator and the real bot.

The bot is run by :func:`bot.__main__.run`, the same composition root as ``python -m bot``; only its
settings differ: they are built here (no ``.env``, no environment), with Discord's REST and gateway
URLs pointing at the fake Discord and the upstream URL at the simulator, all on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from bot.__main__ import run
from bot.config import Settings
from bot.devtools.fakediscord import FakeDiscord, FakeUser
from bot.simulator import Simulator, SimulatorOptions, run_simulator

HOST = "127.0.0.1"
#: How long the bot may take to log in and register its commands.
READY_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class PlaygroundOptions:
    """How the simulated image service behaves (the playground's command-line options)."""

    job_duration: float = 3.0
    fail_rate: float = 0.0
    queue_depth: int = 1


@dataclass(frozen=True, slots=True)
class Member:
    """A member of the playground's server that the page can act as."""

    user: FakeUser
    label: str
    role: str | None = None


@dataclass(frozen=True, slots=True)
class World:
    fake: FakeDiscord
    sim: Simulator
    settings: Settings
    members: tuple[Member, ...]


def bot_settings(fake: FakeDiscord, sim: Simulator, api_key: str, database: Path) -> Settings:
    """The bot's settings: every address local, quick polling and status refreshes."""
    return Settings(
        discord_token=fake.token,
        odirouter_api_key=api_key,
        odirouter_base_url=sim.base_url,
        database_url=f"sqlite:///{database}",
        discord_api_base_url=fake.api_base,
        discord_gateway_url=fake.gateway_url,
        dev_guild_id=int(fake.guild.id),
        poll_min_interval=0.2,
        poll_max_interval=1.0,
        status_edit_interval=1.0,
    )


def playground_members(fake: FakeDiscord) -> tuple[Member, ...]:
    """Two plain members, a moderator and an admin (Manage Server, for /quota and /settings)."""
    for user, name in ((fake.alice, "Alice"), (fake.bob, "Bob"), (fake.moderator, "Mo"), (fake.admin, "Ada")):
        user.global_name = name
    return (
        Member(fake.alice, "Alice"),
        Member(fake.bob, "Bob"),
        Member(fake.moderator, "Mo", "Moderator"),
        Member(fake.admin, "Ada", "Admin"),
    )


@contextlib.asynccontextmanager
async def running_world(options: PlaygroundOptions) -> AsyncIterator[World]:
    """Start the three, wait until the bot has registered its commands, and stop them at the end
    (the bot first, so that it never sees its Discord or its upstream vanish under it)."""
    api_key = secrets.token_urlsafe(24)
    sim_options = SimulatorOptions(
        api_key=api_key,
        job_duration=options.job_duration,
        fail_rate=options.fail_rate,
        queue_depth=options.queue_depth,
    )
    with tempfile.TemporaryDirectory(prefix="imagine-playground-") as tmp:
        async with (
            FakeDiscord(token=secrets.token_urlsafe(32), guild_name="Playground", host=HOST) as fake,
            run_simulator(sim_options, host=HOST) as sim,
        ):
            settings = bot_settings(fake, sim, api_key, Path(tmp) / "bot.sqlite3")
            stop = asyncio.Event()
            bot = asyncio.create_task(run(settings, stop=stop), name="bot")
            try:
                synced = asyncio.create_task(fake.wait_synced(fake.guild.id, timeout=READY_TIMEOUT))
                await asyncio.wait({bot, synced}, return_when=asyncio.FIRST_COMPLETED)
                if bot.done():
                    synced.cancel()
                    bot.result()  # the bot stopped while starting: show why
                    raise RuntimeError("the bot stopped while starting")
                synced.result()
                yield World(fake, sim, settings, playground_members(fake))
            finally:
                stop.set()
                with contextlib.suppress(asyncio.CancelledError):
                    await bot

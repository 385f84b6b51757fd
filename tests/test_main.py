"""``python -m bot``'s run loop: it waits for Discord to become reachable instead of dying."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import discord

from bot.__main__ import run
from bot.simulator import SimulatorOptions, run_simulator
from tests.fakediscord import FakeDiscord
from tests.harness import SIM_KEY, settings_for


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_login_is_retried_until_discord_answers(tmp_path: Path) -> None:
    saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    waits: list[float] = []
    async with FakeDiscord() as fake, run_simulator(SimulatorOptions(api_key=SIM_KEY)) as sim:
        unreachable = f"http://127.0.0.1:{closed_port()}/api/v10"
        settings = settings_for(fake, sim, tmp_path / "bot.sqlite3", discord_api_base_url=unreachable)

        async def sleep(seconds: float) -> None:
            waits.append(seconds)
            if len(waits) == 2:  # Discord comes back after two failed attempts
                discord.http.Route.BASE = fake.api_base

        task = asyncio.create_task(run(settings, sleep=sleep))
        try:
            await fake.wait_identified(timeout=10.0)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved
    assert waits == [5.0, 10.0]

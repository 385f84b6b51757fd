"""``python -m bot``'s run loop: it waits for Discord to become reachable instead of dying."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import discord

from bot.__main__ import run
from bot.config import Settings
from bot.devtools.fakediscord import FakeDiscord
from bot.simulator import SimulatorOptions, run_simulator
from tests.harness import SIM_KEY, settings_env, settings_for
from tests.test_store_open import assert_permissions_apply, run_unprivileged, up_to_date_database


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


def bot_env(database: Path) -> dict[str, str]:
    """``python -m bot`` with a database at ``database`` and everything else on closed local ports."""
    port = closed_port()
    return settings_env(
        Settings(
            discord_token="fake-discord-token",
            odirouter_api_key="fake-api-key",
            odirouter_base_url=f"http://127.0.0.1:{port}",
            database_url=f"sqlite:///{database}",
            discord_api_base_url=f"http://127.0.0.1:{port}/api/v10",
            discord_gateway_url=f"ws://127.0.0.1:{port}",
        )
    )


def assert_one_message_and_exit_2(proc: subprocess.CompletedProcess[str], message: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "CRITICAL" in line]
    assert len(lines) == 1 and lines[0].endswith(f"CRITICAL bot: {message}"), proc.stderr


def test_database_in_place_of_a_file_exits_2(tmp_path: Path) -> None:
    """The database's folder would have to be where a file is: one message, status 2, no traceback."""
    (tmp_path / "file.txt").write_text("not a folder")
    database = tmp_path / "file.txt" / "bot.sqlite3"
    proc = subprocess.run(
        [sys.executable, "-m", "bot"], env=bot_env(database), capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    folder = tmp_path / "file.txt"
    assert_one_message_and_exit_2(proc, f"cannot create the folder of the database {database}: {folder} is a file")


def test_database_from_a_newer_version_exits_2(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    newest = asyncio.run(up_to_date_database(database))
    with contextlib.closing(sqlite3.connect(database)) as db:
        db.execute(f"PRAGMA user_version = {newest + 1}")
    proc = subprocess.run(
        [sys.executable, "-m", "bot"], env=bot_env(database), capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert_one_message_and_exit_2(
        proc,
        f"the database {database} was written by a newer version of the bot"
        f" (schema {newest + 1}, this version knows up to {newest})",
    )


def test_read_only_database_exits_2(tmp_path: Path) -> None:
    """A read-only database file (for root too: the child obeys permission bits)."""
    database = tmp_path / "bot.sqlite3"
    asyncio.run(up_to_date_database(database))
    database.chmod(0o444)
    assert_permissions_apply(database)
    proc = run_unprivileged(["-m", "bot"], env=bot_env(database), cwd=tmp_path)
    assert_one_message_and_exit_2(proc, f"the database {database} is read-only: the bot must be able to write to it")

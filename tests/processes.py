"""``python -m bot`` as real OS processes, one per shard of a sharded bot, against the test's fake
Discord, simulator and database: what an operator runs with ``SHARD_COUNT`` and ``SHARD_IDS``.

    async with shard_processes(fake, sim, database_url, tmp_path, count=2) as bots:
        await fake.invoke("imagine", ..., session=bots.session(1))
        bots.kill(0)                  # SIGKILL: no shutdown, jobs left mid-flight
        await bots.start(0)           # a new process for shard 0; it takes its shard's jobs back
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bot.devtools.fakediscord import FakeDiscord, GatewaySession
from bot.metrics import package_version
from bot.simulator import Simulator
from tests.harness import BotProcess, settings_env, settings_for

# A process imports discord.py, opens the database and logs in: a few seconds on a loaded machine.
START_TIMEOUT = 30.0
# How often a process looks for jobs of its shards that another process answered (the sweep).
SWEEP_INTERVAL = 0.2


def user_agent(shard_id: int, count: int) -> str:
    """What the process running shard ``shard_id`` of ``count`` calls itself upstream."""
    return f"imagine-bot/{package_version()} (shards {shard_id} of {count})"


class ShardProcesses:
    """One bot process per shard; each is started, found on the gateway and killed by its shard id."""

    def __init__(
        self, fake: FakeDiscord, sim: Simulator, database_url: str, workdir: Path, *, count: int, **overrides: Any
    ) -> None:
        self.fake = fake
        self.count = count
        self._workdir = workdir
        self._env = {
            shard_id: settings_env(
                settings_for(
                    fake,
                    sim,
                    workdir / "unused.sqlite3",
                    database_url=database_url,
                    shard_count=count,
                    shard_ids=(shard_id,),
                    **{"sweep_interval": SWEEP_INTERVAL, **overrides},
                )
            )
            for shard_id in range(count)
        }
        self._current: dict[int, tuple[BotProcess, int]] = {}  # shard id -> (process, sessions before it)
        self.started: list[BotProcess] = []

    async def start(self, *shard_ids: int) -> None:
        """Start a process for each shard (all of them by default) and wait until each is connected."""
        for shard_id in shard_ids or range(self.count):
            process = BotProcess(self._env[shard_id], self._workdir)
            self._current[shard_id] = (process, len(self.fake.sessions))
            self.started.append(process)
            process.start()
        for shard_id in shard_ids or range(self.count):
            await self._wait_connected(shard_id)

    def process(self, shard_id: int) -> BotProcess:
        return self._current[shard_id][0]

    def pid(self, shard_id: int) -> int:
        proc = self.process(shard_id).proc
        assert proc is not None
        return proc.pid

    def session(self, shard_id: int) -> GatewaySession:
        """The gateway session of the current process of the shard."""
        found = self._session(shard_id)
        if found is None:
            raise AssertionError(f"shard {shard_id} has no connected gateway session")
        return found

    def _session(self, shard_id: int) -> GatewaySession | None:
        _, before = self._current[shard_id]
        return next(
            (s for s in self.fake.sessions[before:] if s.shard == (shard_id, self.count) and s.ready and s.connected),
            None,
        )

    async def _wait_connected(self, shard_id: int) -> None:
        """Wait for the shard's process to identify, failing at once (with its log) if it exits."""
        process = self.process(shard_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        while self._session(shard_id) is None:
            if not process.running:
                raise AssertionError(f"the process of shard {shard_id} exited:\n{process.output()}")
            if loop.time() >= deadline:
                raise AssertionError(f"shard {shard_id} not on the gateway in {START_TIMEOUT} s:\n{process.output()}")
            await self.fake.wait_changed(self.fake.change_count, min(0.1, deadline - loop.time()))

    def kill(self, shard_id: int) -> None:
        """SIGKILL the shard's process: no shutdown at all, as in a crash or an OOM kill."""
        self.process(shard_id).kill()

    def kill_all(self) -> None:
        for process in self.started:
            process.kill()

    def output(self) -> str:
        """Every process's log, for a failing test's message."""
        return "\n".join(f"--- {p.log.name}\n{p.output()}" for p in self.started)


@contextlib.asynccontextmanager
async def shard_processes(
    fake: FakeDiscord, sim: Simulator, database_url: str, workdir: Path, *, count: int = 2, **overrides: Any
) -> AsyncIterator[ShardProcesses]:
    """Shards ``0..count-1`` of ``count``, one process each, all connected; every process ever started
    is killed when the block ends. ``overrides``: settings (poll intervals, ...) of every process."""
    bots = ShardProcesses(fake, sim, database_url, workdir, count=count, **overrides)
    try:
        await bots.start()
        await fake.wait_synced(timeout=START_TIMEOUT)  # the commands, registered by shard 0's process
        yield bots
    finally:
        bots.kill_all()

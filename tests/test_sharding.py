"""How a process presents itself when sharded: the jobs it owns, and its name upstream."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import aiohttp

from bot.__main__ import ownership_of, user_agent
from bot.config import load_settings
from bot.metrics import package_version
from bot.queue import GenerationRequest, QueueClient
from bot.simulator import SimulatorOptions, run_simulator

REQUIRED = {"DISCORD_TOKEN": "discord-secret-token", "ODIROUTER_API_KEY": "odi-secret-key"}


def test_an_unsharded_process_owns_every_server_under_a_name_of_its_own(tmp_path: Path) -> None:
    settings = load_settings(REQUIRED, env_file=tmp_path / "none")
    first, second = ownership_of(settings), ownership_of(settings)
    assert (first.shard_count, first.shard_ids) == (1, frozenset({0}))
    assert first.owns(None) and first.owns(1 << 22) and first.owns(12345 << 22)
    assert first.owner != second.owner  # each start claims its jobs anew
    assert user_agent(settings) == f"imagine-bot/{package_version()}"


def test_a_sharded_process_owns_the_servers_of_its_shards(tmp_path: Path) -> None:
    settings = load_settings({**REQUIRED, "SHARD_COUNT": "4", "SHARD_IDS": "1,3"}, env_file=tmp_path / "none")
    ownership = ownership_of(settings)
    assert (ownership.shard_count, ownership.shard_ids) == (4, frozenset({1, 3}))
    assert [ownership.owns(shard << 22) for shard in range(8)] == [False, True, False, True] * 2
    assert not ownership.owns(None)  # direct messages go to shard 0
    assert user_agent(settings) == f"imagine-bot/{package_version()} (shards 1,3 of 4)"
    everything = ownership_of(replace(settings, shard_ids=None))
    assert everything.shard_ids == frozenset(range(4))


async def test_the_queue_client_names_itself_upstream() -> None:
    async with (
        run_simulator(SimulatorOptions(api_key="k", job_duration=0.0)) as sim,
        aiohttp.ClientSession() as session,
    ):
        client = QueueClient(session, base_url=sim.base_url, api_key="k", user_agent="imagine-bot/9 (shards 0 of 2)")
        submitted = await client.submit(GenerationRequest(prompt="a cat"))
        await client.status(submitted.handle)
        assert [call.headers["User-Agent"] for call in sim.calls] == ["imagine-bot/9 (shards 0 of 2)"] * 2

"""A bot process runs the shards the settings give it: it connects those only, sees their servers
only, and registers the commands only when it runs shard 0."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.app import ShardedImagineBot
from bot.devtools.fakediscord import FakeDiscord
from bot.simulator import SimulatorOptions, run_simulator
from tests.harness import SIM_KEY, running_bot


@pytest.mark.parametrize("shard_id", [0, 1])
async def test_a_process_connects_only_its_shard_and_makes_images_there(
    tmp_path: Path, shard_id: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with FakeDiscord() as fake, run_simulator(SimulatorOptions(api_key=SIM_KEY, job_duration=0.05)) as sim:
        mine = fake.add_guild("mine", shard=(shard_id, 2), members=[fake.alice])
        other = fake.add_guild("other", shard=(1 - shard_id, 2), members=[fake.alice])
        async with running_bot(fake, sim, tmp_path / "bot.sqlite3", shard_count=2, shard_ids=(shard_id,)) as rig:
            assert isinstance(rig.bot, ShardedImagineBot)
            assert [s.shard for s in fake.sessions] == [(shard_id, 2)]
            assert {g.id for g in rig.bot.guilds} == {
                int(g.id) for g in fake.guilds if (int(g.id) >> 22) % 2 == shard_id
            }
            assert int(mine.id) in {g.id for g in rig.bot.guilds} and int(other.id) not in {
                g.id for g in rig.bot.guilds
            }
            assert rig.bot.gateway_connected
            if shard_id == 0:
                await fake.wait_synced()
            else:
                assert fake.sync_counts == {}
                assert "commands are registered by the process that runs shard 0; not syncing here" in caplog.text
            # shard 1's process never synced: the member's client sends what was synced before
            inv = await fake.invoke(
                "imagine",
                fake.alice,
                channel=mine.channel_named("general"),
                options={"prompt": "a cat"},
                validate=False,
            )
            message = await inv.wait_original(lambda m: bool(m.attachments), 10.0)
            assert message.channel_id == mine.channel_named("general").id
            assert f"shard(s) {shard_id} of 2" in caplog.text

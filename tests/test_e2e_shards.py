"""A bot process runs the shards the settings give it: it connects those only, sees their servers
only, and registers the commands only when it runs shard 0."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.app import ShardedImagineBot
from bot.devtools.fakediscord import FakeDiscord
from bot.models import JobState
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


async def test_a_misrouted_imagine_is_answered_here_and_made_by_the_shards_owner(tmp_path: Path) -> None:
    """Two processes (shards 0 and 1 of 2) on one database. An /imagine for a server on shard 0 that
    reaches shard 1's process is answered there and its job recorded, left to no one; shard 0's
    process takes it at its next sweep, submits it once and delivers it."""
    async with FakeDiscord() as fake, run_simulator(SimulatorOptions(api_key=SIM_KEY, job_duration=0.05)) as sim:
        zero = fake.add_guild("zero", shard=(0, 2), members=[fake.alice])
        fake.add_guild("one", shard=(1, 2), members=[fake.alice])
        db = tmp_path / "bot.sqlite3"
        shards = {"shard_count": 2, "sweep_interval": 0.2}
        async with (
            running_bot(fake, sim, db, shard_ids=(0,), **shards) as a,
            running_bot(fake, sim, db, shard_ids=(1,), **shards) as b,
        ):
            await fake.wait_synced()
            session_b = next(s for s in fake.sessions if s.shard == (1, 2))
            inv = await fake.invoke(
                "imagine",
                fake.alice,
                channel=zero.channel_named("general"),
                options={"prompt": "a cat"},
                session=session_b,
            )
            assert (await inv.wait_response())["type"] == 5  # deferred by shard 1's process
            message = await inv.wait_original(lambda m: bool(m.attachments), 10.0)
            job = await a.store.job_by_message(int(message.id))
            assert job is not None and job.owner == a.store.ownership.owner and job.shard_id == 0
            assert job.status is JobState.DELIVERED
            assert len(sim.jobs) == 1
            assert b.bot.tracker.is_tracking(job.id) is False

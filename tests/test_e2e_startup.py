"""The shipped bot logs in to the fake Discord, syncs its commands and becomes ready."""

from __future__ import annotations

import asyncio
from pathlib import Path

import discord

from bot.devtools.fakediscord import FakeDiscord
from bot.simulator import SimulatorOptions, run_simulator
from tests.conftest import StartWorld
from tests.harness import SIM_KEY, running_bot


async def test_bot_syncs_commands_and_becomes_ready_quickly(world: StartWorld) -> None:
    """Ready within 5 s (the harness enforces it) with every command registered."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    rig = await world()
    assert loop.time() - started < 5.0
    assert rig.bot.is_ready()
    names = {(c["name"], c.get("type", 1)) for c in rig.fake.commands_global}
    assert {("imagine", 1), ("cancel", 1), ("usage", 1), ("quota", 1), ("Imagine with these images", 3)} <= names
    imagine = next(c for c in rig.fake.commands_global if c["name"] == "imagine")
    options = {o["name"]: o for o in imagine["options"]}
    assert options["prompt"]["max_length"] == 2500 and options["prompt"]["required"]
    assert [c["value"] for c in options["aspect_ratio"]["choices"]] == [
        "1:1",
        "2:3",
        "3:2",
        "3:4",
        "4:3",
        "4:5",
        "5:4",
        "9:16",
        "16:9",
        "21:9",
    ]
    assert [c["value"] for c in options["resolution"]["choices"]] == ["1K", "2K", "4K"]
    assert sum(1 for o in imagine["options"] if o["type"] == 11) >= 3
    quota = next(c for c in rig.fake.commands_global if c["name"] == "quota")
    assert quota["default_member_permissions"] == str(1 << 5)  # Manage Server


async def test_dev_guild_sync(world: StartWorld) -> None:
    """With DEV_GUILD_ID the commands are registered in that server (instantly available there)."""
    rig = await world(dev_guild=True)
    names = {c["name"] for c in rig.fake.commands_guild.get(rig.fake.guild.id, [])}
    assert {"imagine", "cancel", "usage", "quota", "Imagine with these images"} <= names
    interaction = await rig.fake.invoke("usage", rig.fake.alice)
    response = await interaction.wait_response()
    assert response["data"]["flags"] & 64  # ephemeral


async def test_commands_are_synced_only_when_they_change(tmp_path: Path) -> None:
    """A restart with the same commands does not write them to Discord again; forcing does."""
    async with (
        FakeDiscord() as fake,
        run_simulator(SimulatorOptions(api_key=SIM_KEY)) as sim,
    ):
        db = tmp_path / "bot.sqlite3"
        async with running_bot(fake, sim, db):
            pass
        puts = [r for r in fake.requests if r.method == "PUT" and r.path.endswith("/commands")]
        assert len(puts) == 1
        async with running_bot(fake, sim, db):
            pass
        assert len([r for r in fake.requests if r.method == "PUT" and r.path.endswith("/commands")]) == 1
        async with running_bot(fake, sim, db, force_sync=True):
            pass
        assert len([r for r in fake.requests if r.method == "PUT" and r.path.endswith("/commands")]) == 2


async def test_the_bot_asks_only_for_the_gateway_events_it_uses(world: StartWorld) -> None:
    """Servers (roles, joins and leaves) and reactions (cancel by ❌); no message events, so a busy
    server's messages and the bot's own edits are not sent to it at all."""
    rig = await world()
    intents = discord.Intents._from_value(rig.fake.identify_payloads[0]["intents"])
    assert intents == discord.Intents(guilds=True, guild_reactions=True)
    assert not intents.guild_messages and not intents.message_content

"""The fake Discord's sharding, with real discord.py clients: each IDENTIFY gets the servers of its
shard only, a server's events go to its shard's session, direct messages to shard 0, and invalid
shard arguments are refused the way Discord refuses them."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
import yarl

from bot.devtools.fakediscord import FakeDiscord, FakeGuild, GatewaySession, wait_until


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(recommended_shards=2) as server:
        monkeypatch.setattr(discord.http.Route, "BASE", server.api_base)
        monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(server.gateway_url))
        yield server
        assert not server.internal_errors, server.internal_errors


class ShardClient(discord.AutoShardedClient):
    """Records what reaches it; identifies its shards without discord.py's 5 s pause between them."""

    def __init__(self, **options: Any) -> None:
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.05, **options)
        self.interactions: list[discord.Interaction[Any]] = []
        self.reactions: list[discord.RawReactionActionEvent] = []

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        self.interactions.append(interaction)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        self.reactions.append(payload)


@contextlib.asynccontextmanager
async def connected(fake: FakeDiscord, **options: Any) -> AsyncIterator[ShardClient]:
    client = ShardClient(**options)
    runner = asyncio.create_task(client.start(fake.token))
    try:
        await asyncio.wait_for(client.wait_until_ready(), 5)
        yield client
    finally:
        await client.close()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


def guilds_created(fake: FakeDiscord, session: GatewaySession) -> set[str]:
    return {r.data["id"] for r in fake.dispatch_log if r.session_id == session.session_id and r.event == "GUILD_CREATE"}


def shard_of(guild: FakeGuild, count: int) -> int:
    return (int(guild.id) >> 22) % count


def test_add_guild_lands_on_the_chosen_shard() -> None:
    fake = FakeDiscord()
    for count in (1, 2, 3, 16):
        for shard_id in range(count):
            guild = fake.add_guild(f"s{shard_id}/{count}", shard=(shard_id, count))
            assert shard_of(guild, count) == shard_id
    ids = [int(g.id) for g in fake.guilds] + [int(fake.snowflake())]
    assert len(set(ids)) == len(ids)  # ids made by hand are never handed out again
    with pytest.raises(ValueError, match="no shard 2 among 2"):
        fake.add_guild(shard=(2, 2))


async def test_gateway_bot_recommends_shards_and_each_session_gets_its_servers(fake: FakeDiscord) -> None:
    """An AutoShardedClient without a shard count asks GET /gateway/bot, connects every recommended
    shard, and each IDENTIFY gets READY and GUILD_CREATE for its own servers only."""
    first = fake.add_guild("zero", shard=(0, 2))
    second = fake.add_guild("one", shard=(1, 2))
    async with connected(fake) as client:
        assert client.shard_count == 2
        assert any(r.path == "/gateway/bot" for r in fake.requests)
        sessions = {s.shard: s for s in fake.sessions}
        assert set(sessions) == {(0, 2), (1, 2)}
        assert [p["shard"] for p in fake.identify_payloads] == [[0, 2], [1, 2]]
        for shard_id, session in ((0, sessions[(0, 2)]), (1, sessions[(1, 2)])):
            expected = {g.id for g in fake.guilds if shard_of(g, 2) == shard_id}
            assert guilds_created(fake, session) == expected
            ready = next(r.data for r in fake.dispatch_log if r.session_id == session.session_id and r.event == "READY")
            assert {g["id"] for g in ready["guilds"]} == expected and ready["shard"] == [shard_id, 2]
        assert first.id in guilds_created(fake, sessions[(0, 2)])
        assert second.id in guilds_created(fake, sessions[(1, 2)])
        assert {g.id for g in client.guilds} == {int(g.id) for g in fake.guilds}


async def test_events_go_to_the_session_of_their_servers_shard(fake: FakeDiscord) -> None:
    """Two processes, one shard each: a server's interactions and reactions reach the process of its
    shard only, a DM's reach shard 0; ``invoke(session=...)`` delivers to a chosen session."""
    zero = fake.add_guild("zero", shard=(0, 2), members=[fake.alice])
    one = fake.add_guild("one", shard=(1, 2), members=[fake.alice])
    async with connected(fake, shard_count=2, shard_ids=[0]) as a, connected(fake, shard_count=2, shard_ids=[1]) as b:
        assert not any(r.path == "/gateway/bot" for r in fake.requests)  # the count was given
        assert {g.id for g in a.guilds} == {int(g.id) for g in fake.guilds if shard_of(g, 2) == 0}
        assert {g.id for g in b.guilds} == {int(g.id) for g in fake.guilds if shard_of(g, 2) == 1}
        channel_zero, channel_one = zero.channel_named("general"), one.channel_named("general")
        await fake.invoke("draw", fake.alice, channel=channel_zero, validate=False)
        await fake.invoke("draw", fake.alice, channel=channel_one, validate=False)
        await fake.invoke("draw", fake.alice, guild=False, validate=False)
        await wait_until(lambda: len(a.interactions) + len(b.interactions) == 3)
        assert [i.guild_id for i in a.interactions] == [int(zero.id), None]
        assert [i.guild_id for i in b.interactions] == [int(one.id)]

        message = await fake.post_user_message(fake.alice, "hello", channel=channel_one)
        await fake.react(message, "🛑", fake.alice)
        await wait_until(lambda: len(b.reactions) == 1)
        assert a.reactions == []

        session_a = next(s for s in fake.sessions if s.shard == (0, 2))
        assert fake.gateway.sessions_for(one.id) == [next(s for s in fake.sessions if s.shard == (1, 2))]
        await fake.invoke("draw", fake.alice, channel=channel_one, validate=False, session=session_a)
        await wait_until(lambda: len(a.interactions) == 3)
        assert a.interactions[-1].guild_id == int(one.id) and len(b.interactions) == 1


async def identify(fake: FakeDiscord, shard: Any) -> int | None:
    """Send one raw IDENTIFY (``shard`` left out when ``None``); the close code, or None when READY."""
    async with aiohttp.ClientSession() as http, http.ws_connect(fake.gateway_url + "?v=10&encoding=json") as ws:
        hello = await ws.receive_json()
        assert hello["op"] == 10
        data: dict[str, Any] = {"token": fake.token, "intents": 513, "properties": {}}
        if shard is not None:
            data["shard"] = shard
        await ws.send_str(json.dumps({"op": 2, "d": data}))
        message = await ws.receive()
        if message.type == aiohttp.WSMsgType.TEXT:
            assert json.loads(message.data)["t"] == "READY"
            return None
        return ws.close_code


@pytest.mark.parametrize("shard", [[2, 2], [0, 0], [-1, 2], [1], "0,2", [0, "2"], [True, 2]])
async def test_invalid_shard_is_closed_with_4010(fake: FakeDiscord, shard: Any) -> None:
    assert await identify(fake, shard) == 4010
    assert fake.sessions == []


async def test_too_many_servers_for_one_session_is_closed_with_4011(monkeypatch: pytest.MonkeyPatch) -> None:
    """Like Discord past 2,500 servers: a session that would handle too many must shard."""
    async with FakeDiscord(max_guilds_per_session=2) as fake:
        fake.add_guild("zero", shard=(0, 2))
        fake.add_guild("one", shard=(1, 2))
        assert await identify(fake, None) == 4011
        assert await identify(fake, [0, 1]) == 4011
        assert await identify(fake, [0, 2]) is None
        assert await identify(fake, [1, 2]) is None
        assert sorted(s.shard for s in fake.sessions) == [(0, 2), (1, 2)]

"""The playground's server without a browser: the world it starts (the real bot, wired as
``python -m bot`` wires it, to the fake Discord and the simulator), each member's live view, and
what members do through its API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import discord
import pytest

from bot.playground import PlaygroundOptions, World, running_world
from bot.playground.web import serve

Predicate = Callable[[dict[str, Any]], bool]


@pytest.fixture
async def playground() -> AsyncIterator[tuple[World, str]]:
    saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    try:
        async with (
            running_world(PlaygroundOptions(job_duration=0.2, queue_depth=0)) as world,
            serve(world, "127.0.0.1", 0) as url,
        ):
            yield world, url
    finally:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved


class Feed:
    """One member's event stream: each ``data:`` line is their whole view."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def until(self, predicate: Predicate, timeout: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            async for raw in self.response.content:
                line = raw.decode().strip()
                if line.startswith("data: "):
                    view: dict[str, Any] = json.loads(line.removeprefix("data: "))
                    if predicate(view):
                        return view
        raise AssertionError("the event stream ended")


def texts(view: dict[str, Any]) -> str:
    parts = []
    for message in view["messages"]:
        parts.append(message["content"])
        for embed in message["embeds"]:
            parts += [embed.get("title") or "", embed.get("description") or ""]
            parts += [f"{f['name']} {f['value']}" for f in embed.get("fields") or []]
    return "\n".join(parts)


async def test_views_are_per_member_and_commands_go_through(playground: tuple[World, str]) -> None:
    world, url = playground
    alice, bob, _, ada = (m.user.id for m in world.members)
    headers = {"X-Playground": "1"}
    async with aiohttp.ClientSession(base_url=url) as http:
        async with http.get("/") as page:
            assert "nothing leaves this machine" in await page.text()
        async with http.post("/api/command", json={"member": alice, "command": "usage"}) as refused:
            assert refused.status == 403  # no X-Playground header: not from the page
        async with (
            http.get("/api/events", params={"member": alice}) as alice_events,
            http.get("/api/events", params={"member": bob}) as bob_events,
            http.get("/api/events", params={"member": ada}) as ada_events,
        ):
            alice_feed, bob_feed, ada_feed = Feed(alice_events), Feed(bob_events), Feed(ada_events)
            first = await alice_feed.until(lambda v: True)
            names = {c["name"] for c in first["commands"]}
            assert {"imagine", "usage", "history", "jobs", "cancel"} <= names
            assert not any(n.startswith(("quota", "settings")) for n in names)  # Manage Server only
            admin = await ada_feed.until(lambda v: True)
            assert {"quota set", "settings show"} <= {c["name"] for c in admin["commands"]}

            body = {"member": alice, "command": "imagine", "options": {"prompt": "a red fox", "aspect_ratio": "3:2"}}
            async with http.post("/api/command", json=body, headers=headers) as sent:
                assert await sent.json() == {"ok": True}
            done = await alice_feed.until(lambda v: any(m["attachments"] for m in v["messages"]))
            reply = next(m for m in done["messages"] if m["attachments"])
            assert reply["interaction"] == {"user": "Alice", "command": "imagine"}
            assert "a red fox" in texts(done)
            assert reply["attachments"][0]["url"].startswith(world.fake.base_url)  # served by the fake Discord

            async with http.post("/api/command", json={"member": bob, "command": "usage"}, headers=headers) as sent:
                assert await sent.json() == {"ok": True}
            private = await bob_feed.until(lambda v: any(m["ephemeral"] for m in v["messages"]))
            note = next(m for m in private["messages"] if m["ephemeral"])
            assert note["interaction"] == {"user": "Bob", "command": "usage"}
            reaction = {"member": bob, "message": reply["id"], "emoji": "🔥"}
            async with http.post("/api/react", json=reaction, headers=headers) as sent:
                assert await sent.json() == {"ok": True}
            seen = await alice_feed.until(lambda v: any(m["reactions"] for m in v["messages"]))
            assert note["id"] not in {m["id"] for m in seen["messages"]}  # Bob's answer is Bob's alone
            assert next(m for m in seen["messages"] if m["id"] == reply["id"])["reactions"] == [
                {"emoji": "🔥", "count": 1, "me": False}
            ]

            async with http.post(
                "/api/command", json={"member": alice, "command": "quota set", "options": {}}, headers=headers
            ) as sent:
                assert sent.status == 400 and "quota set" in (await sent.json())["error"]

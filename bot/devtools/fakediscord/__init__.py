"""A local fake Discord (REST + gateway) that the real discord.py connects to, for end-to-end tests.

Point discord.py at it with ``discord.http.Route.BASE = fake.api_base`` and
``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)``::

    async with FakeDiscord(clock=FakeClock()) as fake:
        monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)
        monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url))
        task = asyncio.create_task(bot.start(fake.token))      # Bot(..., guild_ready_timeout=0.05)
        await asyncio.wait_for(bot.wait_until_ready(), 5)
        await fake.wait_synced()                               # commands the bot PUT
        inv = await fake.invoke("imagine", fake.alice, options={"prompt": "a cat"})
        assert (await inv.wait_response())["type"] == 5         # deferred within the 3 s deadline
        message = await inv.wait_original(lambda m: m.attachments != [])
        await fake.react(message, "🛑", fake.alice)            # -> on_raw_reaction_add
        ...
        await bot.close()                                      # the bot first, then the fake
        await task

The invoke helpers refuse (``DiscordRejected``, nothing sent) what Discord's client would not send;
``validate=False`` models a modified client. Everything the bot does is in ``fake.requests``,
``fake.messages`` (with per-write ``history``) and ``fake.dispatch_log``.

Faults: ``fake.inject_fault(...)`` (REST errors and stalls), ``fake.rate_limit(...)`` (429s),
``fake.delete_channel(channel)``, ``fake.update_bot_permissions(...)`` /
``fake.revoke_bot_permissions(...)`` / ``fake.set_permission_overwrite(...)`` (permissions taken
away mid-job), ``fake.drop_gateway(...)`` / ``fake.gateway.disconnect(...)`` /
``fake.gateway.refuse(...)`` (gateway outages and RESUME).
"""

from .faults import FaultRule
from .gateway import DispatchRecord, GatewaySession
from .helpers import wait_until
from .ratelimit import RateLimitRule
from .server import FakeDiscord
from .state import (
    ALL_PERMISSIONS,
    EVERYONE_PERMISSIONS,
    CallbackType,
    FakeAttachment,
    FakeChannel,
    FakeClock,
    FakeGuild,
    FakeInteraction,
    FakeMember,
    FakeMessage,
    FakeRole,
    FakeUser,
    Intent,
    InteractionType,
    LoggedRequest,
    MessageFlag,
    MessageSnapshot,
    MessageType,
    Permission,
    PermissionOverwrite,
)
from .validation import ApiError, DiscordRejected

#: The handle returned by the invoke helpers.
Interaction = FakeInteraction

__all__ = [
    "ALL_PERMISSIONS",
    "EVERYONE_PERMISSIONS",
    "ApiError",
    "CallbackType",
    "DiscordRejected",
    "DispatchRecord",
    "FakeAttachment",
    "FakeChannel",
    "FakeClock",
    "FakeDiscord",
    "FakeGuild",
    "FakeInteraction",
    "FakeMember",
    "FakeMessage",
    "FakeRole",
    "FakeUser",
    "FaultRule",
    "GatewaySession",
    "Intent",
    "Interaction",
    "InteractionType",
    "LoggedRequest",
    "MessageFlag",
    "MessageSnapshot",
    "MessageType",
    "Permission",
    "PermissionOverwrite",
    "RateLimitRule",
    "wait_until",
]

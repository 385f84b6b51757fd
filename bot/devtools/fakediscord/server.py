"""FakeDiscord: an in-process Discord (REST under /api/v10 + gateway websocket) for end-to-end tests.

The real, unmodified discord.py talks to it once ``discord.http.Route.BASE = fake.api_base`` and
``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)`` are set.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import mimetypes
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from . import payloads as P
from .faults import FaultRule, make_fault
from .gateway import DispatchRecord, Gateway, GatewaySession
from .ratelimit import RateLimitRule, make_rule
from .state import (
    ALL_PERMISSIONS,
    EVERYONE_PERMISSIONS,
    JSON,
    PRIVILEGED_INTENTS,
    CallbackType,
    ChangeNotifier,
    FakeAttachment,
    FakeChannel,
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
    SnowflakeGenerator,
    iter_components,
    utc_iso,
)
from .validation import (
    ATTACHMENT,
    BOOLEAN,
    CHANNEL,
    CHAT_INPUT,
    INTEGER,
    MENTIONABLE,
    MESSAGE_COMMAND,
    NUMBER,
    ROLE,
    STRING,
    SUB_COMMAND,
    SUB_COMMAND_GROUP,
    USER,
    USER_COMMAND,
    ApiError,
    DiscordRejected,
    FormErrors,
    check_modal_value,
    check_required,
    check_scalar_option,
    command_contexts,
    command_permitted,
    compute_pings,
    locate_options,
    mentioned_ids,
    missing_access,
    missing_permissions,
    unknown_channel,
    unknown_message,
    validate_command_definitions,
    validate_message_body,
    validate_modal,
)

log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"
DEFAULT_ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
_FILE_FIELD = re.compile(r"^files\[(\d+)\]$")
_WEBHOOK_ROUTE = re.compile(r"^/webhooks/(\d+)/([^/]+)")
_CALLBACK_ROUTE = re.compile(r"^/interactions/(\d+)/([^/]+)/callback$")
_DM_PERMISSIONS = int(
    Permission.VIEW_CHANNEL
    | Permission.SEND_MESSAGES
    | Permission.EMBED_LINKS
    | Permission.ATTACH_FILES
    | Permission.READ_MESSAGE_HISTORY
    | Permission.ADD_REACTIONS
    | Permission.USE_EXTERNAL_EMOJIS
    | Permission.USE_APPLICATION_COMMANDS
)
_MESSAGE_COMPONENT_TYPES = {2, 3, 5, 6, 7, 8}


@dataclass
class FilePart:
    field: str
    index: int | None
    filename: str
    content_type: str | None
    data: bytes


@dataclass
class Body:
    json: Any = None
    files: list[FilePart] = field(default_factory=list)
    multipart: bool = False

    def obj(self) -> JSON:
        return self.json if isinstance(self.json, dict) else {}


BODY_KEY = web.RequestKey("fakediscord_body", Body)


class _Resolved:
    def __init__(self) -> None:
        self.users: JSON = {}
        self.members: JSON = {}
        self.roles: JSON = {}
        self.channels: JSON = {}
        self.attachments: JSON = {}
        self.messages: JSON = {}

    def payload(self) -> JSON:
        parts = {
            "users": self.users,
            "members": self.members,
            "roles": self.roles,
            "channels": self.channels,
            "attachments": self.attachments,
            "messages": self.messages,
        }
        return {key: value for key, value in parts.items() if value}

    def __bool__(self) -> bool:
        return bool(self.payload())


def _json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    # Content-Type must be exactly application/json (discord.py compares the header string).
    return web.Response(
        body=json.dumps(data, ensure_ascii=False).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes")


def _image_size(data: bytes) -> tuple[int | None, int | None]:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a project dependency
        return None, None
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            return int(width), int(height)
    except Exception:
        return None, None


def with_component_ids(components: list[Any]) -> list[JSON]:
    """Deep-copy a component tree and number the components lacking an ``id`` (as Discord does)."""
    copied: list[JSON] = json.loads(json.dumps([c for c in components if isinstance(c, dict)]))
    flat = iter_components(copied)
    next_id = max((int(c["id"]) for c in flat if isinstance(c.get("id"), int)), default=0)
    for component in flat:
        if component.get("id") is None:
            next_id += 1
            component["id"] = next_id
    return copied


def _as_id(obj: Any) -> str:
    value = getattr(obj, "id", None)
    return str(obj if value is None else value)


class FakeDiscord:
    """A local Discord: one guild, a few members, REST + gateway, with test helpers.

    Start with ``await fake.start()`` (or ``async with FakeDiscord() as fake``) and close with
    ``await fake.close()`` after the bot is closed.

    - ``token``: the bot token REST (``Authorization: Bot <token>``) and IDENTIFY must carry.
    - ``token_ttl``: seconds an interaction token lives (then 401 code 50027 on every token route).
    - ``callback_deadline``: seconds to the initial callback (then 404 code 10062).
    - ``attachment_size_limit``: per-file upload limit (413 code 40005), sent in interactions.
    - ``clock``: monotonic clock for the two deadlines and the request log (``FakeClock`` to steer).
    - ``compress``: answer ``compress=zlib-stream`` with binary zlib frames (default: text frames).
    - ``privileged_intents``: privileged intents allowed "in the portal" (others: close 4014);
      without MESSAGE_CONTENT, REST also blanks other users' message content.
    - ``application_id``: the application's id (default: the bot user's id, as for most bots; real
      Discord does not guarantee they are equal). Used by /oauth2/applications/@me, command routes,
      interaction payloads and the interaction webhook routes ``/webhooks/{application_id}/{token}``.
    - ``recommended_shards``: the shard count ``GET /gateway/bot`` recommends (what discord.py's
      ``AutoShardedClient`` connects when given no ``shard_count``).
    - ``max_guilds_per_session``: like Discord's 2,500, the most servers one gateway session may
      handle; an IDENTIFY (unsharded, or with too few shards) that would handle more is closed with
      4011 "Sharding required". ``None``: no limit.

    Sharding follows Discord: an IDENTIFY with ``shard: [id, count]`` gets READY and GUILD_CREATE for
    the servers with ``(guild_id >> 22) % count == id`` only, their events go to that session, and
    direct messages to shard 0. ``add_guild(shard=(id, count))`` makes a server on a chosen shard.
    """

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        token_ttl: float = 900.0,
        callback_deadline: float = 3.0,
        attachment_size_limit: int = DEFAULT_ATTACHMENT_SIZE_LIMIT,
        clock: Callable[[], float] = time.monotonic,
        heartbeat_interval: int = 41250,
        compress: bool = False,
        privileged_intents: int = PRIVILEGED_INTENTS,
        bot_name: str = "Imagine Bot",
        guild_name: str = "Test Server",
        host: str = "127.0.0.1",
        application_id: str | None = None,
        recommended_shards: int = 1,
        max_guilds_per_session: int | None = None,
    ) -> None:
        self.token = token
        self.recommended_shards = recommended_shards
        self.max_guilds_per_session = max_guilds_per_session
        self.token_ttl = token_ttl
        self.callback_deadline = callback_deadline
        self.attachment_size_limit = attachment_size_limit
        self.clock = clock
        self.heartbeat_interval = heartbeat_interval
        #: Send zlib-stream binary frames when the client asks for them (discord.py does).
        self.compress = compress
        #: Privileged intents "enabled in the developer portal"; others close the gateway with 4014.
        self.privileged_intents = privileged_intents
        self.host = host
        self.snowflake = SnowflakeGenerator()
        self.closing = False
        self._notifier = ChangeNotifier()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

        # World ---------------------------------------------------------------------------------
        self.users: dict[str, FakeUser] = {}
        self.bot_user = self._new_user(bot_name, bot=True)
        #: The application (discord.py's ``client.application_id``); may differ from the bot user's id.
        self.application_id = str(application_id) if application_id is not None else self.bot_user.id
        self.owner = self._new_user("owner")
        self.admin = self._new_user("admin")
        self.moderator = self._new_user("moderator")
        self.manager = self._new_user("manager")
        self.alice = self._new_user("alice")
        self.bob = self._new_user("bob")

        guild_id = self.snowflake()
        self.guild = FakeGuild(id=guild_id, name=guild_name, owner_id=self.owner.id)
        self.guilds: list[FakeGuild] = [self.guild]
        roles = [
            FakeRole(id=guild_id, name="@everyone", permissions=EVERYONE_PERMISSIONS, position=0),
            FakeRole(id=self.snowflake(), name="Moderator", permissions=int(Permission.MANAGE_MESSAGES), position=1),
            FakeRole(id=self.snowflake(), name="Manager", permissions=int(Permission.MANAGE_GUILD), position=2),
            FakeRole(id=self.snowflake(), name="Admin", permissions=int(Permission.ADMINISTRATOR), position=3),
        ]
        self.bot_role = FakeRole(
            id=self.snowflake(),
            name=bot_name,
            permissions=EVERYONE_PERMISSIONS,
            position=4,
            managed=True,
            tags={"bot_id": self.bot_user.id},
        )
        roles.append(self.bot_role)
        self.guild.roles = {role.id: role for role in roles}
        self.everyone_role = roles[0]
        self.moderator_role, self.manager_role, self.admin_role = roles[1], roles[2], roles[3]
        self.general = FakeChannel(id=self.snowflake(), name="general", guild_id=guild_id, position=0)
        self.art = FakeChannel(id=self.snowflake(), name="art", guild_id=guild_id, position=1)
        self.guild.channels = {c.id: c for c in (self.general, self.art)}
        self.channel = self.general
        for user, member_roles in (
            (self.owner, [self.admin_role.id]),
            (self.admin, [self.admin_role.id]),
            (self.moderator, [self.moderator_role.id]),
            (self.manager, [self.manager_role.id]),
            (self.alice, []),
            (self.bob, []),
            (self.bot_user, [self.bot_role.id]),
        ):
            self.guild.members[user.id] = FakeMember(user=user, roles=member_roles)
        self.dm_channels: dict[str, FakeChannel] = {}
        #: Permissions ``update_bot_permissions`` denies by channel overwrites (see there).
        self._role_denies = 0
        #: Guild channels removed by ``delete_channel``, by id.
        self.deleted_channels: dict[str, FakeChannel] = {}
        self.custom_emojis: set[str] = set()

        # State ---------------------------------------------------------------------------------
        self.messages: dict[str, FakeMessage] = {}
        self.attachments: dict[str, FakeAttachment] = {}
        self.interactions: dict[str, FakeInteraction] = {}
        self._interactions_by_token: dict[str, FakeInteraction] = {}
        self.requests: list[LoggedRequest] = []
        self.commands_global: list[JSON] = []
        self.commands_guild: dict[str, list[JSON]] = {}
        self.sync_counts: dict[str | None, int] = {}
        self.rate_limits: list[RateLimitRule] = []
        self.rate_limited_count = 0
        #: Injected REST faults (``inject_fault``), first match wins.
        self.faults: list[FaultRule] = []
        #: 401/403/429 answers (Discord bans an IP after 10,000 of them in 10 minutes).
        self.invalid_request_count = 0
        #: Exceptions raised inside the fake's handlers (answered as 400 "FakeDiscord internal error").
        self.internal_errors: list[BaseException] = []
        self.gateway = Gateway(self)

    # ============================================================================== lifecycle

    async def start(self) -> Self:
        app = web.Application(middlewares=[self._middleware], client_max_size=512 * 1024 * 1024)
        self._add_routes(app.router)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        return self

    async def close(self) -> None:
        if self._runner is None:
            return
        self.closing = True
        for fault in self.faults:
            fault.release()
        await self.gateway.close()
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeDiscord is not started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.base_url}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/"

    # ============================================================================== world helpers

    def _new_user(self, name: str, *, bot: bool = False) -> FakeUser:
        user = FakeUser(id=self.snowflake(), name=name, bot=bot)
        self.users[user.id] = user
        return user

    def add_member(self, name: str, *, roles: Iterable[FakeRole] = (), bot: bool = False) -> FakeUser:
        """Create a user who is a member of the guild (no gateway event)."""
        user = self._new_user(name, bot=bot)
        self.guild.members[user.id] = FakeMember(user=user, roles=[r.id for r in roles])
        return user

    def add_custom_emoji(self, name: str) -> str:
        """Register a guild emoji and return its reaction key ``name:id``."""
        key = f"{name}:{self.snowflake()}"
        self.custom_emojis.add(key)
        return key

    def guild_by_id(self, guild_id: str | None) -> FakeGuild | None:
        return next((g for g in self.guilds if g.id == guild_id), None)

    def member(self, user: FakeUser | str, guild: FakeGuild | None = None) -> FakeMember:
        return (guild or self.guild).members[_as_id(user)]

    def _guild_snowflake(self, shard: tuple[int, int] | None) -> str:
        """A new snowflake; with ``shard=(id, count)``, one whose server lands on that shard (its
        timestamp part, ``id >> 22``, is moved forward by up to ``count - 1`` milliseconds)."""
        value = int(self.snowflake())
        if shard is None:
            return str(value)
        shard_id, shard_count = shard
        if not 0 <= shard_id < shard_count:
            raise ValueError(f"no shard {shard_id} among {shard_count}")
        step = (shard_id - (value >> 22)) % shard_count
        value += step << 22
        self.snowflake.skip_to(value)
        return str(value)

    def add_guild(
        self,
        name: str = "Another Server",
        *,
        shard: tuple[int, int] | None = None,
        members: Iterable[FakeUser] = (),
        locale: str = "en-US",
    ) -> FakeGuild:
        """Create another server the bot is in, on shard ``shard=(id, count)`` if given (Discord's rule
        ``(guild_id >> 22) % count``): an @everyone role, the bot's managed role (the same permissions
        as its role in the first server), a ``general`` channel and the bot, its owner and
        ``members`` as members. No gateway event: add servers before the bot connects."""
        guild_id = self._guild_snowflake(shard)
        owner = self._new_user(f"{name} owner")
        guild = FakeGuild(id=guild_id, name=name, owner_id=owner.id, locale=locale)
        everyone = FakeRole(id=guild_id, name="@everyone", permissions=EVERYONE_PERMISSIONS, position=0)
        bot_role = FakeRole(
            id=self.snowflake(),
            name=self.bot_role.name,
            permissions=self.bot_role.permissions,
            position=1,
            managed=True,
            tags={"bot_id": self.bot_user.id},
        )
        guild.roles = {role.id: role for role in (everyone, bot_role)}
        general = FakeChannel(id=self.snowflake(), name="general", guild_id=guild_id, position=0)
        guild.channels = {general.id: general}
        guild.members[self.bot_user.id] = FakeMember(user=self.bot_user, roles=[bot_role.id])
        for user in (owner, *members):
            guild.members.setdefault(user.id, FakeMember(user=user, roles=[]))
        self.guilds.append(guild)
        self._changed()
        return guild

    def add_guild_member(self, guild: FakeGuild, name: str) -> FakeUser:
        """Create a user who is a member of ``guild`` (no gateway event)."""
        user = self._new_user(name)
        guild.members[user.id] = FakeMember(user=user, roles=[])
        return user

    def permissions_of(self, user: FakeUser | str, channel: FakeChannel | None = None) -> int:
        """A user's permissions, in ``channel`` after its permission overwrites when one is given.

        The bot's guild-level base is ``bot_permissions`` (its managed role) plus any other role given
        to its member; @everyone's and its roles' channel overwrites then apply as for anyone.
        """
        user_id = _as_id(user)
        if channel is not None and channel.is_dm:
            return _DM_PERMISSIONS
        guild = self.guild_by_id(channel.guild_id) if channel is not None else self.guild
        guild = guild or self.guild
        if user_id == self.bot_user.id:
            base = self.bot_permissions
            member = guild.members.get(user_id)
            for role_id in member.roles if member is not None else []:
                role = guild.roles.get(role_id)
                if role is not None and role is not self.bot_role and role.id != guild.id:
                    base |= role.permissions
            if base & Permission.ADMINISTRATOR:
                base = ALL_PERMISSIONS
        else:
            base = guild.member_permissions(user_id)
        if channel is None:
            return base
        return guild.apply_overwrites(base, user_id, channel)

    def bot_can_view(self, channel: FakeChannel | str | None) -> bool:
        """Whether the bot has VIEW_CHANNEL in a guild channel (DMs: always). Discord only sends a bot
        the message and reaction events of channels it can see."""
        found = channel if isinstance(channel, FakeChannel) else self.channel_by_id(str(channel))
        if found is None or found.is_dm:
            return True
        return bool(self.permissions_of(self.bot_user, found) & Permission.VIEW_CHANNEL)

    async def set_permission_overwrite(
        self, channel: FakeChannel, target: FakeRole | FakeUser, *, allow: int = 0, deny: int = 0
    ) -> None:
        """Set (or with allow=deny=0 remove) ``target``'s overwrite on ``channel`` and tell the bot
        (CHANNEL_UPDATE)."""
        kind = 0 if isinstance(target, FakeRole) else 1
        kept = [o for o in channel.permission_overwrites if (o.type, o.id) != (kind, target.id)]
        if allow or deny:
            kept.append(PermissionOverwrite(id=target.id, type=kind, allow=int(allow), deny=int(deny)))
        channel.permission_overwrites = kept
        self._changed()
        await self.dispatch(
            "CHANNEL_UPDATE", P.channel_payload(channel), guild_id=channel.guild_id, intent=int(Intent.GUILDS)
        )

    @property
    def bot_permissions(self) -> int:
        """The bot's guild permissions (its managed role; ADMINISTRATOR implies all). Setting it sets the
        role's permissions. Channel overwrites apply on top (``permissions_of(bot_user, channel)``).

        The fake leaves @everyone's permissions out of the bot's, so setting this can take away anything
        (no gateway event: set it before the bot connects). discord.py, like Discord, adds @everyone's
        permissions to the bot's; ``update_bot_permissions`` keeps its cache in step."""
        perms = self.bot_role.permissions
        if perms & Permission.ADMINISTRATOR:
            return ALL_PERMISSIONS
        return perms

    @bot_permissions.setter
    def bot_permissions(self, value: int) -> None:
        self.bot_role.permissions = int(value)

    async def update_bot_permissions(self, value: int) -> None:
        """Change the bot's role permissions and tell the connected bot (GUILD_ROLE_UPDATE).

        discord.py, like Discord, adds @everyone's permissions to the bot's role, so a removed
        permission that @everyone grants (Send Messages, Attach Files, Embed Links, Add Reactions,
        View Channel, Read Message History... in the default server) would stay in its cache. Those
        are also denied to the bot by a member overwrite in every channel (CHANNEL_UPDATE each), as a
        server admin would have to on Discord: ``channel.permissions_for(guild.me)`` then agrees with
        what the fake enforces (``guild.me.guild_permissions`` keeps them, as on Discord). Giving them
        back with this method lifts those denies again.
        """
        value = int(value)
        before = self.bot_permissions
        self.bot_permissions = value
        after = self.bot_permissions
        await self.dispatch(
            "GUILD_ROLE_UPDATE",
            {"guild_id": self.guild.id, "role": P.role_payload(self.bot_role)},
            guild_id=self.guild.id,
            intent=int(Intent.GUILDS),
        )
        regained = after & ~before & self._role_denies
        if regained:
            self._role_denies &= ~regained
            await self.restore_bot_permissions(regained)
        hidden = before & ~after & self.everyone_role.permissions & ~self._role_denies
        if hidden:
            self._role_denies |= hidden
            await self.revoke_bot_permissions(hidden)

    async def revoke_bot_permissions(self, perms: int, *, channel: FakeChannel | None = None) -> None:
        """Deny ``perms`` to the bot in ``channel`` (None: every channel of the guild) with a member
        overwrite, as a server admin would mid-job; each changed channel sends CHANNEL_UPDATE, so
        discord.py's ``channel.permissions_for(guild.me)`` agrees with what the REST routes enforce.
        The bot's other overwrite bits are kept. Undo with ``restore_bot_permissions``."""
        await self._edit_bot_overwrites(int(perms), channel, revoke=True)

    async def restore_bot_permissions(
        self, perms: int = ALL_PERMISSIONS, *, channel: FakeChannel | None = None
    ) -> None:
        """Lift ``revoke_bot_permissions``'s denies of ``perms`` (default: all of them)."""
        await self._edit_bot_overwrites(int(perms), channel, revoke=False)

    async def _edit_bot_overwrites(self, perms: int, channel: FakeChannel | None, *, revoke: bool) -> None:
        channels = [channel] if channel is not None else list(self.guild.channels.values())
        for target in channels:
            current = next(
                (o for o in target.permission_overwrites if (o.type, o.id) == (1, self.bot_user.id)),
                PermissionOverwrite(id=self.bot_user.id, type=1),
            )
            allow = current.allow & ~perms if revoke else current.allow
            deny = current.deny | perms if revoke else current.deny & ~perms
            if (allow, deny) != (current.allow, current.deny):
                await self.set_permission_overwrite(target, self.bot_user, allow=allow, deny=deny)

    async def delete_channel(self, channel: FakeChannel) -> None:
        """A moderator deletes guild channel ``channel``: it leaves the guild, CHANNEL_DELETE (the channel
        object with ``guild_id``) goes to the bot, and its messages are gone (``deleted``, no MESSAGE_DELETE).

        Afterwards every bot-token call on ``/channels/{id}/...`` answers 404 code 10003 Unknown Channel.
        Interaction-token routes: editing, fetching or deleting a message that was in the channel
        (``@original`` included) answers 404 10008 Unknown Message, as for any deleted message;
        creating one there (a follow-up, or a message-producing callback) answers 404 10003. Discord
        does not document these two cases; they follow its answers for a deleted message and for an
        unknown channel. New interactions and user posts there are refused (``DiscordRejected``).
        """
        if channel.is_dm or channel.guild_id is None:
            raise ValueError("only guild channels can be deleted")
        guild = self.guild_by_id(channel.guild_id)
        if guild is None or guild.channels.get(channel.id) is not channel:
            raise KeyError(f"channel {channel.id} is not in its guild (already deleted?)")
        del guild.channels[channel.id]
        self.deleted_channels[channel.id] = channel
        for message in self.messages.values():
            if message.channel_id == channel.id:
                message.deleted = True
        self._changed()
        await self.dispatch("CHANNEL_DELETE", P.channel_payload(channel), guild_id=guild.id, intent=int(Intent.GUILDS))

    def channel_deleted(self, channel: FakeChannel | str) -> bool:
        return _as_id(channel) in self.deleted_channels

    def dm_channel(self, user: FakeUser) -> FakeChannel:
        """The DM channel between the bot and ``user`` (created on first use)."""
        channel = self.dm_channels.get(user.id)
        if channel is None:
            channel = FakeChannel(id=self.snowflake(), name=f"dm-{user.name}", type=1, recipient_id=user.id)
            self.dm_channels[user.id] = channel
        return channel

    def channel_by_id(self, channel_id: str) -> FakeChannel | None:
        for guild in self.guilds:
            if channel_id in guild.channels:
                return guild.channels[channel_id]
        return next((c for c in self.dm_channels.values() if c.id == channel_id), None)

    def command(self, name: str, *, guild_id: str | None = None, type: int = CHAT_INPUT) -> JSON | None:
        """A synced command definition (guild scope when ``guild_id`` is given, else global)."""
        table = self.commands_guild.get(guild_id, []) if guild_id else self.commands_global
        return next((c for c in table if c["name"] == name and c.get("type", 1) == type), None)

    def find_messages(
        self,
        *,
        channel: FakeChannel | None = None,
        author: FakeUser | None = None,
        include_deleted: bool = False,
    ) -> list[FakeMessage]:
        return [
            m
            for m in self.messages.values()
            if (channel is None or m.channel_id == channel.id)
            and (author is None or m.author_id == author.id)
            and (include_deleted or not m.deleted)
        ]

    def attachment_bytes(self, attachment_id: str) -> bytes:
        return self.attachments[str(attachment_id)].data

    def upload(
        self,
        filename: str,
        data: bytes,
        content_type: str | None = None,
        *,
        description: str | None = None,
        ephemeral: bool = True,
    ) -> FakeAttachment:
        """A file "uploaded by a user" (for attachment options, modal file uploads, user messages)."""
        return self._store_attachment(filename, data, content_type, description=description, ephemeral=ephemeral)

    def _store_attachment(
        self,
        filename: str,
        data: bytes,
        content_type: str | None,
        *,
        description: str | None = None,
        title: str | None = None,
        ephemeral: bool = False,
    ) -> FakeAttachment:
        attachment_id = self.snowflake()
        name = os.path.basename(filename).replace(" ", "_") or "unknown"
        if not content_type or content_type == "application/octet-stream":
            content_type = mimetypes.guess_type(name)[0]
        width, height = (None, None)
        if content_type and content_type.startswith("image/"):
            width, height = _image_size(data)
        url = f"{self.base_url}/attachments/{attachment_id}/{quote(name)}"
        attachment = FakeAttachment(
            id=attachment_id,
            filename=name,
            size=len(data),
            url=url,
            proxy_url=url,
            content_type=content_type,
            data=bytes(data),
            description=description,
            title=title,
            width=width,
            height=height,
            ephemeral=ephemeral,
        )
        self.attachments[attachment_id] = attachment
        return attachment

    # ============================================================================== waiting

    def _changed(self) -> None:
        self._notifier.notify()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
        """Wait until ``predicate()`` holds, re-checking on every state change of the fake."""
        await self._notifier.wait_until(predicate, timeout, what)

    @property
    def change_count(self) -> int:
        """How many state changes the fake has seen (messages, reactions, interactions, requests)."""
        return self._notifier.count

    async def wait_changed(self, seen: int, timeout: float) -> bool:
        """Wait until ``change_count`` differs from ``seen``; False if ``timeout`` s pass first."""
        try:
            await self.wait_until(lambda: self.change_count != seen, timeout, "a change")
        except AssertionError:
            return False
        return True

    async def wait_for_request(
        self,
        method: str,
        path_regex: str,
        timeout: float = 5.0,
        *,
        start: int = 0,
        status: int | None = None,
    ) -> LoggedRequest:
        """The first logged request (from index ``start``) with this method whose path matches."""
        pattern = re.compile(path_regex)

        def find() -> LoggedRequest | None:
            for entry in self.requests[start:]:
                if (
                    entry.method == method.upper()
                    and pattern.search(entry.path)
                    and (status is None or entry.status == status)
                ):
                    return entry
            return None

        await self.wait_until(lambda: find() is not None, timeout, f"{method} {path_regex}")
        found = find()
        assert found is not None
        return found

    async def wait_synced(
        self, guild_id: str | int | None = None, timeout: float = 5.0, *, count: int = 1
    ) -> list[JSON]:
        """Wait for ``count`` bulk overwrites of the global (None) or a guild's commands; return them."""
        scope = None if guild_id is None else str(guild_id)
        await self.wait_until(
            lambda: self.sync_counts.get(scope, 0) >= count, timeout, f"a command sync of scope {scope or 'global'}"
        )
        return self.commands_global if scope is None else self.commands_guild[scope]

    async def wait_identified(self, timeout: float = 5.0, count: int = 1) -> GatewaySession:
        await self.wait_until(
            lambda: len([s for s in self.gateway.sessions.values() if s.ready]) >= count,
            timeout,
            f"{count} identified gateway session(s)",
        )
        return [s for s in self.gateway.sessions.values() if s.ready][count - 1]

    @property
    def identify_payloads(self) -> list[JSON]:
        return self.gateway.identify_payloads

    @property
    def sessions(self) -> list[GatewaySession]:
        return list(self.gateway.sessions.values())

    @property
    def dispatch_log(self) -> list[DispatchRecord]:
        return self.gateway.dispatch_log

    def dispatched(self, event: str) -> list[JSON]:
        return [r.data for r in self.gateway.dispatch_log if r.event == event]

    # ============================================================================== rate limits

    def rate_limit(
        self,
        route_pattern: str,
        limit: int = 1,
        per: float = 1.0,
        *,
        method: str | None = None,
        headers: bool = True,
        global_: bool = False,
        scope: str | None = None,
    ) -> RateLimitRule:
        """Answer 429 once more than ``limit`` requests matching ``route_pattern`` arrive within ``per`` s.

        ``route_pattern`` is a regex searched in the API path (e.g. ``r"/channels/\\d+/messages$"``).
        With ``headers`` (default) successful answers carry X-RateLimit-* so discord.py throttles
        itself; without, discord.py only learns from the 429 (like a sub-limit) and retries.
        """
        rule = make_rule(
            route_pattern, limit=limit, per=per, method=method, headers=headers, is_global=global_, scope=scope
        )
        self.rate_limits.append(rule)
        return rule

    def clear_rate_limits(self) -> None:
        self.rate_limits.clear()

    def _match_rule(self, method: str, path: str) -> RateLimitRule | None:
        return next((r for r in self.rate_limits if r.matches(method, path)), None)

    # ============================================================================== injected faults

    def inject_fault(
        self,
        method: str | None,
        path_pattern: str,
        *,
        status: int | None = None,
        code: int = 0,
        delay: float | None = None,
        times: int | None = 1,
        message: str | None = None,
    ) -> FaultRule:
        """Make the next ``times`` requests (None: all, until ``clear_faults``) whose method is ``method``
        (None: any) and whose path matches ``path_pattern`` fail or stall.

        ``path_pattern`` is a regex searched in the API path without ``/api/v10`` (as in
        ``fake.requests``), e.g. ``r"^/webhooks/.*/messages/@original$"``; attachment downloads match
        their raw path (``r"^/attachments/"``, a CDN failure). The fault applies in front of everything
        else (auth, rate limits, the route); the request is still logged, with ``LoggedRequest.fault``.

        - ``status`` (default 500 without a ``delay``): answered with Discord's error body
          ``{"message": "500: Internal Server Error", "code": code}`` (``message=`` overrides the text).
          Any status works: 403/50013, 404/10008, 401/50027... model a Discord-side refusal.
        - ``delay``: the request is held that many seconds (real time) and then answered normally
          (or with ``status`` if one is given too). A client with a shorter timeout sees a timeout,
          but the request still takes effect when the hold ends, as on a real slow Discord.
          ``rule.release()`` (or ``clear_faults()``) ends the hold at once; ``rule.held`` counts the
          requests being held, so ``await fake.wait_until(lambda: rule.held == 1)`` needs no sleep.

        discord.py retries server errors with real sleeps of 1 + 2*attempt seconds, up to 5 attempts:
        the bot-token client (``discord.http``) retries 500, 502, 504 and 524 only (any other 5xx, e.g.
        503, raises ``DiscordServerError`` at once); the interaction/webhook adapter retries every
        status >= 500. So use ``times=1`` (one retry, 1 s) or ``times=2`` (3 s) and expect the retry in
        ``fake.requests``; ``times=5`` makes discord.py give up (``DiscordServerError``) after ~25 s.
        For an immediate failure use a 4xx, or 503 on a bot-token route.
        """
        rule = make_fault(method, path_pattern, status=status, code=code, delay=delay, times=times, message=message)
        self.faults.append(rule)
        return rule

    def clear_faults(self) -> None:
        """Remove every injected fault; requests being held go on at once."""
        for rule in self.faults:
            rule.release()
        self.faults.clear()

    async def _apply_fault(self, method: str, path: str, entry: LoggedRequest) -> None:
        rule = next((r for r in self.faults if r.matches(method, path)), None)
        if rule is None:
            return
        rule.take()
        entry.fault = "+".join(
            kind for kind, on in (("delay", bool(rule.delay)), ("error", rule.status is not None)) if on
        )
        self._changed()
        await rule.hold(self._changed)
        if rule.status is not None:
            raise ApiError(rule.status, rule.code, rule.message)

    # ============================================================================== HTTP plumbing

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        api = API_PREFIX
        msg = api + "/channels/{channel_id}/messages/{message_id}"
        hook = api + "/webhooks/{application_id}/{token}"
        routes: list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]] = [
            ("GET", "/", self.gateway.handle),
            ("GET", "/attachments/{attachment_id}/{filename}", self._get_attachment),
            ("GET", api + "/users/@me", self._get_me),
            ("GET", api + "/users/{user_id}", self._get_user),
            ("POST", api + "/users/@me/channels", self._create_dm),
            ("GET", api + "/oauth2/applications/@me", self._get_application),
            ("GET", api + "/applications/@me", self._get_application),
            ("GET", api + "/gateway", self._get_gateway),
            ("GET", api + "/gateway/bot", self._get_gateway_bot),
            ("PUT", api + "/applications/{application_id}/commands", self._put_commands),
            ("GET", api + "/applications/{application_id}/commands", self._get_commands),
            ("PUT", api + "/applications/{application_id}/guilds/{guild_id}/commands", self._put_commands),
            ("GET", api + "/applications/{application_id}/guilds/{guild_id}/commands", self._get_commands),
            ("POST", api + "/interactions/{interaction_id}/{token}/callback", self._interaction_callback),
            ("POST", hook, self._execute_webhook),
            ("GET", hook + "/messages/{message_id}", self._get_webhook_message),
            ("PATCH", hook + "/messages/{message_id}", self._edit_webhook_message),
            ("DELETE", hook + "/messages/{message_id}", self._delete_webhook_message),
            ("GET", api + "/guilds/{guild_id}", self._get_guild),
            ("GET", api + "/guilds/{guild_id}/members/{user_id}", self._get_member),
            ("GET", api + "/guilds/{guild_id}/channels", self._get_guild_channels),
            ("GET", api + "/guilds/{guild_id}/roles", self._get_guild_roles),
            ("GET", api + "/channels/{channel_id}", self._get_channel),
            ("GET", api + "/channels/{channel_id}/messages", self._get_channel_messages),
            ("POST", api + "/channels/{channel_id}/messages", self._create_channel_message),
            ("GET", msg, self._get_channel_message),
            ("PATCH", msg, self._edit_channel_message),
            ("DELETE", msg, self._delete_channel_message),
            ("PUT", msg + "/reactions/{emoji}/@me", self._add_own_reaction),
            ("DELETE", msg + "/reactions/{emoji}/{user_id}", self._delete_user_reaction),
            ("GET", msg + "/reactions/{emoji}", self._get_reactions),
            ("DELETE", msg + "/reactions/{emoji}", self._clear_emoji_reactions),
            ("DELETE", msg + "/reactions", self._clear_reactions),
        ]
        for method, path, handler in routes:
            router.add_route(method, path, handler)

    def _auth_kind(self, request: web.Request) -> str:
        header = request.headers.get("Authorization")
        if header is None:
            return "none"
        return "bot" if header == f"Bot {self.token}" else "invalid"

    @staticmethod
    def _needs_bot_auth(api_path: str) -> bool:
        return not (api_path.startswith(("/interactions/", "/webhooks/")) or api_path == "/gateway")

    async def _read_body(self, request: web.Request) -> Body:
        if not request.can_read_body:
            return Body()
        if request.content_type == "multipart/form-data":
            body = Body(multipart=True)
            reader = await request.multipart()
            position = 0
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader):
                    continue
                data = bytes(await part.read(decode=False))
                name = part.name or ""
                if name == "payload_json":
                    try:
                        body.json = json.loads(data)
                    except ValueError as exc:
                        raise ApiError(400, 50109, "The request body contains invalid JSON.") from exc
                elif part.filename is not None:
                    match = _FILE_FIELD.match(name)
                    index = int(match.group(1)) if match else position
                    ctype = part.headers.get("Content-Type")
                    body.files.append(FilePart(name, index, part.filename, ctype, data))
                    position += 1
            return body
        raw = await request.read()
        if not raw:
            return Body()
        try:
            return Body(json=json.loads(raw))
        except ValueError as exc:
            raise ApiError(400, 50109, "The request body contains invalid JSON.") from exc

    def _upload_limit(self, api_path: str) -> int:
        for pattern in (_CALLBACK_ROUTE, _WEBHOOK_ROUTE):
            match = pattern.match(api_path)
            if match:
                interaction = self._interactions_by_token.get(match.group(2))
                if interaction is not None:
                    return interaction.attachment_size_limit
        return self.attachment_size_limit

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        path = request.path
        if path == "/":  # the gateway websocket (see fake.gateway for its own records)
            return await handler(request)
        is_api = path.startswith(API_PREFIX + "/")
        api_path = path[len(API_PREFIX) :] if is_api else path
        entry = LoggedRequest(
            method=request.method,
            path=api_path,
            query=dict(request.query),
            json=None,
            files=[],
            auth=self._auth_kind(request),
            status=0,
            time=self.clock(),
        )
        rule: RateLimitRule | None = None
        response: web.StreamResponse
        try:
            if is_api:
                body = await self._read_body(request)
                request[BODY_KEY] = body
                entry.json = body.json
                entry.files = [(f.filename, len(f.data)) for f in body.files]
            await self._apply_fault(request.method, api_path, entry)
            if is_api:
                if self._needs_bot_auth(api_path) and entry.auth != "bot":
                    raise ApiError(401, 0, "401: Unauthorized")
                rule = self._match_rule(request.method, api_path)
                if rule is not None and not rule.consume():
                    self.rate_limited_count += 1
                    raise ApiError(429, 0, "", headers=rule.headers_for(limited=True))
                limit = self._upload_limit(api_path)
                if any(len(f.data) > limit for f in body.files):
                    raise ApiError(413, 40005, "Request entity too large")
            response = await handler(request)
        except ApiError as error:
            if error.status == 429 and rule is not None:
                response = _json_response(rule.limited_body(), 429, error.headers)
            else:
                response = _json_response(
                    P.error_payload(error.code, error.message, error.errors), error.status, error.headers
                )
        except web.HTTPException as error:
            if not is_api:
                raise
            response = _json_response(P.error_payload(0, f"{error.status}: {error.reason}"), error.status)
        except Exception as error:
            # A bug in the fake: answer a 4xx (a 5xx would make discord.py retry with sleeps for ~25 s)
            # and keep the exception so tests can assert ``not fake.internal_errors``.
            log.exception("FakeDiscord failed on %s %s", request.method, path)
            self.internal_errors.append(error)
            response = _json_response(P.error_payload(0, f"FakeDiscord internal error: {error!r}"), 400)
        if rule is not None and rule.headers and response.status != 429:
            response.headers.update(rule.headers_for(limited=False))
        entry.status = response.status
        if response.status in (401, 403, 429):
            self.invalid_request_count += 1
        if isinstance(response, web.Response) and response.content_type == "application/json" and response.body:
            body_bytes = response.body
            if isinstance(body_bytes, bytes):
                entry.response = json.loads(body_bytes)
        self.requests.append(entry)
        self._changed()
        return response

    # ============================================================================== simple routes

    async def _get_attachment(self, request: web.Request) -> web.StreamResponse:
        attachment = self.attachments.get(request.match_info["attachment_id"])
        if attachment is None or attachment.filename != request.match_info["filename"]:
            raise web.HTTPNotFound()
        return web.Response(body=attachment.data, content_type=attachment.content_type or "application/octet-stream")

    async def _get_me(self, request: web.Request) -> web.StreamResponse:
        return _json_response(
            {**P.user_payload(self.bot_user), "verified": True, "mfa_enabled": False, "email": None, "locale": "en-US"}
        )

    async def _get_user(self, request: web.Request) -> web.StreamResponse:
        user = self.users.get(request.match_info["user_id"])
        if user is None:
            raise ApiError(404, 10013, "Unknown User")
        return _json_response(P.user_payload(user))

    async def _get_application(self, request: web.Request) -> web.StreamResponse:
        return _json_response(
            P.application_payload(application_id=self.application_id, bot_user=self.bot_user, owner=self.owner)
        )

    async def _get_gateway(self, request: web.Request) -> web.StreamResponse:
        return _json_response({"url": self.gateway_url.rstrip("/")})

    async def _get_gateway_bot(self, request: web.Request) -> web.StreamResponse:
        return _json_response(P.gateway_bot_payload(self.gateway_url.rstrip("/"), self.recommended_shards))

    async def _create_dm(self, request: web.Request) -> web.StreamResponse:
        recipient_id = str(request[BODY_KEY].obj().get("recipient_id"))
        user = self.users.get(recipient_id)
        if user is None:
            raise ApiError(400, 50035, "Invalid Form Body", {"recipient_id": {"_errors": [{"code": "X"}]}})
        channel = self.dm_channel(user)
        return _json_response(P.channel_payload(channel, recipient=user))

    def _guild_or_404(self, request: web.Request) -> FakeGuild:
        guild = self.guild_by_id(request.match_info["guild_id"])
        if guild is None:
            raise ApiError(404, 10004, "Unknown Guild")
        return guild

    async def _get_guild(self, request: web.Request) -> web.StreamResponse:
        guild = self._guild_or_404(request)
        payload = P.guild_create_payload(guild)
        for key in ("channels", "members", "threads", "voice_states", "presences", "joined_at", "large"):
            payload.pop(key, None)
        return _json_response(payload)

    async def _get_member(self, request: web.Request) -> web.StreamResponse:
        guild = self._guild_or_404(request)
        member = guild.members.get(request.match_info["user_id"])
        if member is None:
            raise ApiError(404, 10007, "Unknown Member")
        return _json_response(P.member_payload(member))

    async def _get_guild_channels(self, request: web.Request) -> web.StreamResponse:
        guild = self._guild_or_404(request)
        return _json_response([P.channel_payload(c) for c in guild.channels.values()])

    async def _get_guild_roles(self, request: web.Request) -> web.StreamResponse:
        guild = self._guild_or_404(request)
        return _json_response([P.role_payload(r) for r in guild.roles.values()])

    async def _get_channel(self, request: web.Request) -> web.StreamResponse:
        channel = self._channel_or_404(request.match_info["channel_id"])
        recipient = self.users.get(channel.recipient_id or "")
        return _json_response(P.channel_payload(channel, recipient=recipient))

    # ============================================================================== commands

    def _check_application(self, request: web.Request) -> None:
        if request.match_info["application_id"] != self.application_id:
            raise missing_access()

    def _command_scope(self, request: web.Request) -> str | None:
        guild_id = request.match_info.get("guild_id")
        if guild_id is not None and self.guild_by_id(guild_id) is None:
            raise ApiError(404, 10004, "Unknown Guild")
        return guild_id

    async def _put_commands(self, request: web.Request) -> web.StreamResponse:
        self._check_application(request)
        scope = self._command_scope(request)
        definitions = request[BODY_KEY].json
        validate_command_definitions(definitions).raise_if_any()
        previous = self.commands_global if scope is None else self.commands_guild.get(scope, [])
        by_key = {(c["type"], c["name"]): c for c in previous}
        stored: list[JSON] = []
        for definition in definitions:
            key = (int(definition.get("type", CHAT_INPUT)), definition["name"])
            old = by_key.get(key)
            command_id = old["id"] if old else self.snowflake()
            echo = P.command_echo(
                definition, command_id=command_id, application_id=self.application_id, version="0", guild_id=scope
            )
            if old is not None and {**old, "version": "0"} == echo:
                echo["version"] = old["version"]
            else:
                echo["version"] = self.snowflake()
            stored.append(echo)
        if scope is None:
            self.commands_global = stored
        else:
            self.commands_guild[scope] = stored
        self.sync_counts[scope] = self.sync_counts.get(scope, 0) + 1
        self._changed()
        return _json_response(stored)

    async def _get_commands(self, request: web.Request) -> web.StreamResponse:
        self._check_application(request)
        scope = self._command_scope(request)
        return _json_response(self.commands_global if scope is None else self.commands_guild.get(scope, []))

    # ============================================================================== messages: core

    def _channel_or_404(self, channel_id: str) -> FakeChannel:
        channel = self.channel_by_id(channel_id)
        if channel is None:
            raise unknown_channel()
        return channel

    def _pings(self, message: FakeMessage, allowed_mentions: JSON | None, via: str) -> set[str]:
        guild = self.guild_by_id(message.guild_id)
        if guild is None:
            mentionable: set[str] = set()
            can_everyone = False
        else:
            mentionable = {r.id for r in guild.roles.values() if r.mentionable}
            if via in ("callback", "webhook", "component"):
                # Interaction responses: not permission-checked here, so over-report rather than miss a ping.
                can_everyone = True
            else:
                can_everyone = bool(self.permissions_of(message.author_id) & Permission.MENTION_EVERYONE)
        replied: str | None = None
        if message.message_reference is not None:
            referenced = self.messages.get(str(message.message_reference.get("message_id")))
            if referenced is not None and referenced.author_id != message.author_id:
                replied = referenced.author_id
        return compute_pings(
            message.content,
            allowed_mentions,
            mentionable_role_ids=mentionable,
            can_mention_everyone=can_everyone,
            replied_user_id=replied,
        )

    def _snapshot(self, message: FakeMessage, *, action: str, via: str, body: JSON, notifies: bool) -> None:
        allowed = body.get("allowed_mentions") if isinstance(body.get("allowed_mentions"), dict) else None
        pinged = self._pings(message, allowed, via)
        message.allowed_mentions = allowed
        if notifies:
            message.pinged |= pinged
        message.history.append(
            MessageSnapshot(
                content=message.content,
                embeds=[dict(e) for e in message.embeds],
                attachments=list(message.attachments),
                components=[dict(c) for c in message.components],
                flags=message.flags,
                time=self.clock(),
                action=action,
                via=via,
                allowed_mentions=allowed,
                pinged=frozenset(pinged),
                notifies=notifies,
            )
        )

    def _build_attachments(
        self,
        body: JSON,
        files: Sequence[FilePart],
        existing: list[FakeAttachment] | None,
        *,
        ephemeral: bool,
    ) -> list[FakeAttachment]:
        meta = body.get("attachments")
        file_indexes = {f.index for f in files}

        def upload_ref(value: Any) -> int | None:
            try:
                number = int(value)
            except (TypeError, ValueError):
                return None
            return number if number < 1_000_000 else None

        entries: dict[int, JSON] = {}
        if isinstance(meta, list):
            for item in meta:
                if isinstance(item, dict):
                    ref = upload_ref(item.get("id"))
                    if ref is not None:
                        entries[ref] = item
        uploads: dict[int, FakeAttachment] = {}
        for part in files:
            index = part.index if part.index is not None else len(uploads)
            item = entries.get(index, {})
            uploads[index] = self._store_attachment(
                str(item.get("filename") or part.filename),
                part.data,
                part.content_type,
                description=item.get("description"),
                title=item.get("title"),
                ephemeral=ephemeral,
            )
        if not isinstance(meta, list):
            return list(existing or []) + list(uploads.values())
        errors = FormErrors()
        result: list[FakeAttachment] = []
        used: set[int] = set()
        current = {a.id: a for a in existing or []}
        for position, item in enumerate(meta):
            if not isinstance(item, dict):
                errors.add(["attachments", position], "DICT_TYPE_CONVERT", "Must be an object.")
                continue
            ref = upload_ref(item.get("id"))
            if ref is not None:
                if ref not in file_indexes:
                    errors.add(["attachments", position, "id"], "ATTACHMENT_NOT_FOUND", f"No file files[{ref}]")
                    continue
                if ref not in used:
                    result.append(uploads[ref])
                    used.add(ref)
                continue
            kept = current.get(str(item.get("id")))
            if kept is None:
                errors.add(["attachments", position, "id"], "ATTACHMENT_NOT_FOUND", "Unknown attachment")
                continue
            result.append(kept)
        errors.raise_if_any()
        result.extend(att for index, att in uploads.items() if index not in used)
        return result

    def _validate_write(self, body: JSON, files: Sequence[FilePart]) -> None:
        validate_message_body(body, file_count=len(files)).raise_if_any()

    @staticmethod
    def _check_not_empty(message: FakeMessage) -> None:
        if message.loading:
            return
        if not (message.content or message.embeds or message.attachments or message.components or message.poll):
            raise ApiError(400, 50006, "Cannot send an empty message")

    async def _create_message(
        self,
        *,
        channel: FakeChannel,
        author: FakeUser,
        body: JSON,
        files: Sequence[FilePart] = (),
        via: str,
        message_type: int = MessageType.DEFAULT,
        extra_flags: int = 0,
        interaction: FakeInteraction | None = None,
        is_original: bool = False,
        attachments: list[FakeAttachment] | None = None,
    ) -> FakeMessage:
        self._validate_write(body, files)
        flags = int(body.get("flags") or 0) | extra_flags
        ephemeral = bool(flags & MessageFlag.EPHEMERAL)
        reference = body.get("message_reference")
        if isinstance(reference, dict) and reference.get("message_id") is not None:
            referenced = self.messages.get(str(reference["message_id"]))
            if referenced is None or referenced.deleted:
                if reference.get("fail_if_not_exists", True):
                    raise ApiError(
                        400,
                        50035,
                        "Invalid Form Body",
                        {"message_reference": {"_errors": [{"code": "MESSAGE_REFERENCE_UNKNOWN_MESSAGE"}]}},
                    )
                reference = None
            else:
                reference = {
                    "type": 0,
                    "message_id": referenced.id,
                    "channel_id": referenced.channel_id,
                    "guild_id": referenced.guild_id,
                }
        else:
            reference = None
        message = FakeMessage(
            id=self.snowflake(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author_id=author.id,
            type=int(
                MessageType.REPLY if reference is not None and message_type == MessageType.DEFAULT else message_type
            ),
            content=str(body.get("content") or ""),
            embeds=list(body.get("embeds") or []),
            components=with_component_ids(list(body.get("components") or [])),
            flags=flags,
            interaction_id=interaction.id if interaction else None,
            interaction_token=interaction.token if interaction else None,
            is_original=is_original,
            webhook_id=self.application_id if interaction is not None else None,
            message_reference=reference,
            tts=bool(body.get("tts", False)),
            poll=body.get("poll") if isinstance(body.get("poll"), dict) else None,
            created_at=self.clock(),
        )
        message.attachments = (
            attachments if attachments is not None else self._build_attachments(body, files, None, ephemeral=ephemeral)
        )
        self._check_not_empty(message)
        self._snapshot(message, action="create", via=via, body=body, notifies=not message.loading)
        self.messages[message.id] = message
        self._changed()
        await self._dispatch_message("MESSAGE_CREATE", message)
        return message

    async def _edit_message(
        self, message: FakeMessage, body: JSON, files: Sequence[FilePart], *, via: str
    ) -> FakeMessage:
        if message.deleted:
            raise unknown_message()
        self._validate_write(body, files)
        was_loading = message.loading
        if "content" in body:
            message.content = str(body["content"] or "")
        if "embeds" in body:
            message.embeds = list(body["embeds"] or [])
        if "components" in body:
            message.components = with_component_ids(list(body["components"] or []))
        if "poll" in body and isinstance(body["poll"], dict):
            message.poll = body["poll"]
        flags = message.flags & ~int(MessageFlag.LOADING)
        if body.get("flags") is not None:
            new_flags = int(body["flags"])
            for bit in (MessageFlag.SUPPRESS_EMBEDS, MessageFlag.IS_COMPONENTS_V2):
                flags = (flags | bit) if new_flags & bit else (flags & ~int(bit))
        previous_flags = message.flags
        message.flags = flags
        previous = list(message.attachments)
        message.attachments = self._build_attachments(body, files, message.attachments, ephemeral=message.ephemeral)
        try:
            self._check_not_empty(message)
        except ApiError:
            message.flags = previous_flags
            message.attachments = previous
            raise
        message.edited_at = self.clock()
        if not was_loading:
            message.edited_timestamp = utc_iso()
        self._snapshot(message, action="edit", via=via, body=body, notifies=was_loading)
        self._changed()
        await self._dispatch_message("MESSAGE_UPDATE", message)
        return message

    async def _delete_message(self, message: FakeMessage) -> None:
        if message.deleted:
            raise unknown_message()
        message.deleted = True
        self._changed()
        if message.ephemeral:
            return
        data: JSON = {"id": message.id, "channel_id": message.channel_id}
        if message.guild_id is not None:
            data["guild_id"] = message.guild_id
        await self._dispatch_in_channel("MESSAGE_DELETE", data, message, intent=self._message_intent(message))

    # ============================================================================== payloads

    def _interaction_metadata(self, message: FakeMessage) -> JSON | None:
        interaction = self.interactions.get(message.interaction_id or "")
        if interaction is None:
            return None
        owners = {"0": interaction.guild_id} if interaction.guild_id is not None else {"0": "0"}
        metadata: JSON = {
            "id": interaction.id,
            "type": interaction.type,
            "user": P.user_payload(interaction.user),
            "authorizing_integration_owners": owners,
        }
        if interaction.type == InteractionType.APPLICATION_COMMAND:
            metadata["name"] = interaction.data.get("name")
            metadata["command_type"] = interaction.data.get("type", 1)
            if interaction.data.get("type") == USER_COMMAND:
                target = self.users.get(str(interaction.data.get("target_id")))
                if target is not None:
                    metadata["target_user"] = P.user_payload(target)
            if interaction.data.get("type") == MESSAGE_COMMAND:
                metadata["target_message_id"] = interaction.data.get("target_id")
        if not message.is_original and interaction.original_id is not None:
            metadata["original_response_message_id"] = interaction.original_id
        if interaction.type == InteractionType.MESSAGE_COMPONENT and interaction.message_id is not None:
            metadata["interacted_message_id"] = interaction.message_id
        if interaction.type == InteractionType.MODAL_SUBMIT and interaction.parent is not None:
            parent = interaction.parent
            metadata["triggering_interaction_metadata"] = {
                "id": parent.id,
                "type": parent.type,
                "user": P.user_payload(parent.user),
                "authorizing_integration_owners": owners,
            }
        return metadata

    def message_payload(
        self, message: FakeMessage, *, blank_content: bool = False, with_reference: bool = True
    ) -> JSON:
        """The REST shape of a stored message (``referenced_message`` is included one level deep)."""
        author = self.users[message.author_id]
        last = message.history[-1].pinged if message.history else frozenset()
        mentions = [self.users[u] for u in last if u in self.users]
        guild = self.guild_by_id(message.guild_id)
        mention_roles = [r for r in last if guild is not None and r in guild.roles]
        referenced: JSON | None = None
        if message.message_reference is not None and with_reference:
            target = self.messages.get(str(message.message_reference.get("message_id")))
            if target is not None and not target.deleted:
                referenced = self.message_payload(target, with_reference=False)
        payload = P.message_payload(
            message,
            author=author,
            bot_user_id=self.bot_user.id,
            mentions=mentions,
            mention_roles=mention_roles,
            interaction_metadata=self._interaction_metadata(message),
            referenced_message=referenced,
            blank_content=blank_content,
        )
        payload["mention_everyone"] = "everyone" in last
        return payload

    def _gateway_message_payload(self, message: FakeMessage, *, blank_content: bool = False) -> JSON:
        payload = self.message_payload(message, blank_content=blank_content)
        guild = self.guild_by_id(message.guild_id)
        if guild is not None:
            payload["guild_id"] = guild.id
            member = guild.members.get(message.author_id)
            if member is not None:
                payload["member"] = P.member_payload(member, with_user=False)
        return payload

    def _content_hidden_from_bot(self, message: FakeMessage) -> bool:
        """MESSAGE_CONTENT rules: others' guild messages are blank unless they mention the bot."""
        if message.author_id == self.bot_user.id or message.guild_id is None:
            return False
        users, _, _ = mentioned_ids(message.content)
        return self.bot_user.id not in users

    @staticmethod
    def _message_intent(message: FakeMessage) -> int:
        return int(Intent.GUILD_MESSAGES if message.guild_id is not None else Intent.DIRECT_MESSAGES)

    async def _dispatch_message(self, event: str, message: FakeMessage) -> None:
        if message.ephemeral:
            return
        full = self._gateway_message_payload(message)
        hidden = self._content_hidden_from_bot(message)
        blank = self._gateway_message_payload(message, blank_content=True) if hidden else full

        def variant(session: GatewaySession) -> JSON:
            return full if session.intents & Intent.MESSAGE_CONTENT or not hidden else blank

        await self._dispatch_in_channel(event, full, message, intent=self._message_intent(message), variant=variant)

    def _ready_payload(self, session_id: str, guild_ids: list[str], shard: tuple[int, int]) -> JSON:
        return P.ready_payload(
            bot_user=self.bot_user,
            session_id=session_id,
            resume_gateway_url=self.gateway_url,
            guild_ids=guild_ids,
            shard=list(shard),
            application_id=self.application_id,
        )

    def _guild_create_payload(self, guild: FakeGuild, intents: int) -> JSON:
        payload = P.guild_create_payload(guild)
        if not intents & Intent.GUILD_PRESENCES:
            # Without GUILD_PRESENCES Discord only sends the bot's own member (and voice members).
            payload["members"] = [P.member_payload(guild.members[self.bot_user.id])]
        return payload

    async def _dispatch_in_channel(
        self,
        event: str,
        data: JSON,
        message: FakeMessage,
        *,
        intent: int,
        variant: Callable[[GatewaySession], JSON] | None = None,
    ) -> int:
        """Message and reaction events: not sent for a guild channel the bot cannot VIEW_CHANNEL."""
        if not self.bot_can_view(message.channel_id):
            return 0
        return await self.gateway.dispatch(event, data, guild_id=message.guild_id, intent=intent, variant=variant)

    async def dispatch(self, event: str, data: JSON, *, guild_id: str | None = None, intent: int | None = None) -> int:
        """Send any dispatch event to the connected sessions; returns how many received it."""
        return await self.gateway.dispatch(event, data, guild_id=guild_id, intent=intent)

    # ============================================================================== interaction REST

    def _interaction_for_token(self, request: web.Request) -> FakeInteraction:
        if request.match_info["application_id"] != self.application_id:
            raise ApiError(404, 10015, "Unknown Webhook")
        interaction = self._interactions_by_token.get(request.match_info["token"])
        if interaction is None or self.clock() - interaction.created_at >= self.token_ttl:
            raise ApiError(401, 50027, "Invalid Webhook Token")
        return interaction

    def _interaction_response_info(self, interaction: FakeInteraction, message: FakeMessage | None) -> JSON:
        info: JSON = {"id": interaction.id, "type": interaction.type}
        if message is not None:
            info["response_message_id"] = message.id
            info["response_message_loading"] = message.loading
            info["response_message_ephemeral"] = message.ephemeral
        return info

    def _message_type_for(self, interaction: FakeInteraction) -> int:
        if interaction.type == InteractionType.APPLICATION_COMMAND:
            if interaction.data.get("type", 1) == CHAT_INPUT:
                return MessageType.CHAT_INPUT_COMMAND
            return MessageType.CONTEXT_MENU_COMMAND
        return MessageType.DEFAULT

    async def _interaction_callback(self, request: web.Request) -> web.StreamResponse:
        interaction = self.interactions.get(request.match_info["interaction_id"])
        if interaction is None or interaction.token != request.match_info["token"]:
            raise ApiError(404, 10062, "Unknown interaction")
        if self.clock() - interaction.created_at > self.callback_deadline:
            raise ApiError(404, 10062, "Unknown interaction")
        if interaction.responses:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        body: Body = request[BODY_KEY]
        payload = body.obj()
        try:
            callback_type = int(payload.get("type", 0))
        except (TypeError, ValueError):
            callback_type = 0
        data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
        assert isinstance(data, dict)
        itype = interaction.type
        has_message = interaction.message_id is not None
        allowed: dict[int, bool] = {
            CallbackType.CHANNEL_MESSAGE_WITH_SOURCE: itype in (2, 3, 5),
            CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE: itype in (2, 3, 5),
            CallbackType.DEFERRED_UPDATE_MESSAGE: itype in (3, 5) and has_message,
            CallbackType.UPDATE_MESSAGE: itype in (3, 5) and has_message,
            CallbackType.APPLICATION_COMMAND_AUTOCOMPLETE_RESULT: itype == 4,
            CallbackType.MODAL: itype in (2, 3),
        }
        if not allowed.get(callback_type, False):
            raise ApiError(
                400,
                50035,
                "Invalid Form Body",
                {"type": {"_errors": [{"code": "INTERACTION_RESPONSE_TYPE_INVALID", "message": "Invalid type"}]}},
            )
        if callback_type in (
            CallbackType.CHANNEL_MESSAGE_WITH_SOURCE,
            CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
        ) and self.channel_deleted(interaction.channel):
            raise unknown_channel()
        message: FakeMessage | None = None
        resource: JSON | None = None
        if callback_type == CallbackType.CHANNEL_MESSAGE_WITH_SOURCE:
            message = await self._create_message(
                channel=interaction.channel,
                author=self.bot_user,
                body=data,
                files=body.files,
                via="callback",
                message_type=self._message_type_for(interaction),
                interaction=interaction,
                is_original=True,
            )
            interaction.original_id = message.id
            resource = {"type": callback_type, "message": self.message_payload(message)}
        elif callback_type == CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE:
            ephemeral = int(data.get("flags") or 0) & MessageFlag.EPHEMERAL
            message = await self._create_message(
                channel=interaction.channel,
                author=self.bot_user,
                body={},
                via="callback",
                message_type=self._message_type_for(interaction),
                extra_flags=int(MessageFlag.LOADING) | int(ephemeral),
                interaction=interaction,
                is_original=True,
            )
            interaction.original_id = message.id
        elif callback_type in (CallbackType.DEFERRED_UPDATE_MESSAGE, CallbackType.UPDATE_MESSAGE):
            message = self.messages.get(interaction.message_id or "")
            if message is None or message.deleted:
                raise unknown_message()
            if callback_type == CallbackType.UPDATE_MESSAGE:
                await self._edit_message(message, data, body.files, via="component")
                resource = {"type": callback_type, "message": self.message_payload(message)}
            interaction.original_id = message.id
        elif callback_type == CallbackType.APPLICATION_COMMAND_AUTOCOMPLETE_RESULT:
            choices = data.get("choices") or []
            if len(choices) > 25:
                raise ApiError(400, 50035, "Invalid Form Body", {"choices": {"_errors": [{"code": "MAX"}]}})
            interaction.autocomplete_choices = list(choices)
        elif callback_type == CallbackType.MODAL:
            validate_modal(data).raise_if_any()
            interaction.modal = data
        interaction.responses.append(
            {"type": callback_type, "data": data, "files": [(f.filename, len(f.data)) for f in body.files]}
        )
        self._changed()
        if not _truthy(request.query.get("with_response")):
            return web.Response(status=204)
        answer: JSON = {"interaction": self._interaction_response_info(interaction, message)}
        if resource is not None:
            answer["resource"] = resource
        return _json_response(answer)

    def _webhook_message(self, interaction: FakeInteraction, message_id: str) -> FakeMessage:
        if message_id == "@original":
            if not interaction.responses:
                raise ApiError(404, 10015, "Unknown Webhook")
            message = interaction.original()
        elif message_id == interaction.original_id or message_id in interaction.followup_ids:
            message = self.messages.get(message_id)
        else:
            message = None
        if message is None or message.deleted:
            raise unknown_message()
        return message

    async def _execute_webhook(self, request: web.Request) -> web.StreamResponse:
        interaction = self._interaction_for_token(request)
        if not interaction.responses:
            raise ApiError(404, 10015, "Unknown Webhook")
        if self.channel_deleted(interaction.channel):
            raise unknown_channel()
        body: Body = request[BODY_KEY]
        data = body.obj()
        original = interaction.original()
        if original is not None and original.deleted and original.loading and not original.ephemeral:
            # A public "thinking" message deleted while still loading (edits clear LOADING, a delete
            # keeps the flags): Discord answers every later follow-up with Unknown Message.
            raise unknown_message()
        if original is not None and original.loading and not original.deleted:
            # The first follow-up after a "thinking" defer replaces the loading message.
            message = await self._edit_message(original, {"content": "", **data}, body.files, via="webhook")
        else:
            message = await self._create_message(
                channel=interaction.channel,
                author=self.bot_user,
                body=data,
                files=body.files,
                via="webhook",
                interaction=interaction,
            )
            interaction.followup_ids.append(message.id)
        self._changed()
        if not _truthy(request.query.get("wait")):
            return web.Response(status=204)
        return _json_response(self.message_payload(message))

    async def _get_webhook_message(self, request: web.Request) -> web.StreamResponse:
        interaction = self._interaction_for_token(request)
        message = self._webhook_message(interaction, request.match_info["message_id"])
        return _json_response(self.message_payload(message))

    async def _edit_webhook_message(self, request: web.Request) -> web.StreamResponse:
        interaction = self._interaction_for_token(request)
        message = self._webhook_message(interaction, request.match_info["message_id"])
        body: Body = request[BODY_KEY]
        await self._edit_message(message, body.obj(), body.files, via="webhook")
        return _json_response(self.message_payload(message))

    async def _delete_webhook_message(self, request: web.Request) -> web.StreamResponse:
        interaction = self._interaction_for_token(request)
        message = self._webhook_message(interaction, request.match_info["message_id"])
        await self._delete_message(message)
        return web.Response(status=204)

    # ============================================================================== channel REST (bot token)

    def _bot_channel_permissions(self, channel: FakeChannel) -> int:
        """The bot's permissions in ``channel`` after Discord's implicit denies: without VIEW_CHANNEL
        nothing applies; without SEND_MESSAGES, MENTION_EVERYONE, SEND_TTS_MESSAGES, ATTACH_FILES and
        EMBED_LINKS are ignored (docs: topics/permissions, "Implicit Permissions")."""
        have = self.permissions_of(self.bot_user, channel)
        if not have & Permission.VIEW_CHANNEL:
            return 0
        if not have & Permission.SEND_MESSAGES:
            have &= ~int(
                Permission.MENTION_EVERYONE
                | Permission.SEND_TTS_MESSAGES
                | Permission.ATTACH_FILES
                | Permission.EMBED_LINKS
            )
        return have

    def _require(self, channel: FakeChannel, *perms: int) -> None:
        """403 code 50001 Missing Access without VIEW_CHANNEL, 403 code 50013 Missing Permissions
        without one of ``perms`` (bot-token routes only: interaction-token routes need no channel
        permission on Discord, even for files and embeds, changelog 2022-06-29)."""
        have = self._bot_channel_permissions(channel)
        if not have & Permission.VIEW_CHANNEL:
            raise missing_access()
        for perm in perms:
            if not have & perm:
                raise missing_permissions()

    def _channel_message(self, request: web.Request) -> tuple[FakeChannel, FakeMessage]:
        channel = self._channel_or_404(request.match_info["channel_id"])
        message = self.messages.get(request.match_info["message_id"])
        if message is None or message.deleted or message.ephemeral or message.channel_id != channel.id:
            raise unknown_message()
        return channel, message

    async def _create_channel_message(self, request: web.Request) -> web.StreamResponse:
        channel = self._channel_or_404(request.match_info["channel_id"])
        body: Body = request[BODY_KEY]
        payload = body.obj()
        self._require(channel, Permission.SEND_MESSAGES)
        if body.files:
            self._require(channel, Permission.ATTACH_FILES)
        if payload.get("embeds"):
            # Reported (discord-api-docs#2601, discord.js#7544): a send with embeds and no Embed Links is 50013.
            self._require(channel, Permission.EMBED_LINKS)
        if payload.get("tts"):
            self._require(channel, Permission.SEND_TTS_MESSAGES)
        reference = payload.get("message_reference")
        if isinstance(reference, dict) and reference.get("message_id") is not None and reference.get("type", 0) == 0:
            # A reply needs Read Message History (docs: Create Message, "Limitations").
            self._require(channel, Permission.READ_MESSAGE_HISTORY)
        if channel.is_dm:
            recipient = self.users.get(channel.recipient_id or "")
            if recipient is None or not recipient.accepts_dms or recipient.bot:
                raise ApiError(403, 50007, "Cannot send messages to this user")
        data = dict(body.obj())
        data["flags"] = int(data.get("flags") or 0) & ~int(MessageFlag.EPHEMERAL)
        message = await self._create_message(
            channel=channel, author=self.bot_user, body=data, files=body.files, via="bot"
        )
        return _json_response(self.message_payload(message))

    async def _get_channel_message(self, request: web.Request) -> web.StreamResponse:
        channel, message = self._channel_message(request)
        self._require(channel, Permission.READ_MESSAGE_HISTORY)
        return _json_response(self.message_payload(message, blank_content=self._rest_content_hidden(message)))

    def _rest_content_hidden(self, message: FakeMessage) -> bool:
        return not self.privileged_intents & Intent.MESSAGE_CONTENT and self._content_hidden_from_bot(message)

    async def _get_channel_messages(self, request: web.Request) -> web.StreamResponse:
        channel = self._channel_or_404(request.match_info["channel_id"])
        self._require(channel)
        if not self._bot_channel_permissions(channel) & Permission.READ_MESSAGE_HISTORY:
            # Docs (Get Channel Messages): without Read Message History "no messages will be returned".
            return _json_response([])
        limit = max(1, min(100, int(request.query.get("limit", "50"))))
        before = request.query.get("before")
        after = request.query.get("after")
        found = [
            m
            for m in self.messages.values()
            if m.channel_id == channel.id
            and not m.deleted
            and not m.ephemeral
            and (before is None or int(m.id) < int(before))
            and (after is None or int(m.id) > int(after))
        ]
        found.sort(key=lambda m: int(m.id), reverse=True)
        if after is not None and before is None:
            found = sorted(found, key=lambda m: int(m.id))[:limit]
            found.reverse()
        else:
            found = found[:limit]
        return _json_response([self.message_payload(m, blank_content=self._rest_content_hidden(m)) for m in found])

    async def _edit_channel_message(self, request: web.Request) -> web.StreamResponse:
        channel, message = self._channel_message(request)
        self._require(channel)
        if message.author_id != self.bot_user.id:
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        body: Body = request[BODY_KEY]
        if body.files:
            # New uploads need Attach Files (which Discord ignores without Send Messages).
            self._require(channel, Permission.ATTACH_FILES)
        data = body.obj()
        if data.get("embeds") and not self._bot_channel_permissions(channel) & Permission.EMBED_LINKS:
            # Reported (discord-api-docs#2601, #5648): an edit's embeds are dropped without Embed Links,
            # and the edit is "empty" (50006) if nothing else is left.
            data = {**data, "embeds": []}
        await self._edit_message(message, data, body.files, via="bot")
        return _json_response(self.message_payload(message))

    async def _delete_channel_message(self, request: web.Request) -> web.StreamResponse:
        channel, message = self._channel_message(request)
        if message.author_id != self.bot_user.id:
            self._require(channel, Permission.MANAGE_MESSAGES)
        else:
            self._require(channel)
        await self._delete_message(message)
        return web.Response(status=204)

    def _reaction_key(self, request: web.Request) -> str:
        key = P.emoji_key(request.match_info["emoji"])
        if ":" in key and key not in self.custom_emojis:
            raise ApiError(400, 10014, "Unknown Emoji")
        return key

    async def _add_own_reaction(self, request: web.Request) -> web.StreamResponse:
        channel, message = self._channel_message(request)
        key = self._reaction_key(request)
        self._require(channel, Permission.READ_MESSAGE_HISTORY)
        users = message.reactions.get(key)
        if not users:
            self._require(channel, Permission.ADD_REACTIONS)
            if len([k for k, v in message.reactions.items() if v]) >= 20:
                raise ApiError(400, 30010, "Maximum number of reactions reached (20)")
        await self._record_reaction(message, key, self.bot_user)
        return web.Response(status=204)

    async def _delete_user_reaction(self, request: web.Request) -> web.StreamResponse:
        channel, message = self._channel_message(request)
        key = self._reaction_key(request)
        user_id = request.match_info["user_id"]
        if user_id == "@me":
            user_id = self.bot_user.id
        if user_id != self.bot_user.id:
            self._require(channel, Permission.MANAGE_MESSAGES)
        user = self.users.get(user_id)
        if user is not None:
            await self._remove_reaction(message, key, user)
        return web.Response(status=204)

    async def _get_reactions(self, request: web.Request) -> web.StreamResponse:
        channel, message = self._channel_message(request)
        key = self._reaction_key(request)
        self._require(channel, Permission.READ_MESSAGE_HISTORY)
        limit = max(1, min(100, int(request.query.get("limit", "25"))))
        after = request.query.get("after")
        ids = [u for u in message.reactions.get(key, []) if after is None or int(u) > int(after)]
        ids.sort(key=int)
        return _json_response([P.user_payload(self.users[u]) for u in ids[:limit] if u in self.users])

    async def _clear_emoji_reactions(self, request: web.Request) -> web.StreamResponse:
        channel, message = self._channel_message(request)
        key = self._reaction_key(request)
        self._require(channel, Permission.MANAGE_MESSAGES)
        if message.reactions.pop(key, None):
            self._changed()
            data = self._reaction_base(message, key)
            await self._dispatch_in_channel(
                "MESSAGE_REACTION_REMOVE_EMOJI", data, message, intent=self._reaction_intent(message)
            )
        return web.Response(status=204)

    async def _clear_reactions(self, request: web.Request) -> web.StreamResponse:
        channel, message = self._channel_message(request)
        self._require(channel, Permission.MANAGE_MESSAGES)
        if message.reactions:
            message.reactions.clear()
            self._changed()
            data: JSON = {"channel_id": message.channel_id, "message_id": message.id}
            if message.guild_id is not None:
                data["guild_id"] = message.guild_id
            await self._dispatch_in_channel(
                "MESSAGE_REACTION_REMOVE_ALL", data, message, intent=self._reaction_intent(message)
            )
        return web.Response(status=204)

    # ============================================================================== reactions core

    @staticmethod
    def _reaction_intent(message: FakeMessage) -> int:
        if message.guild_id is not None:
            return int(Intent.GUILD_MESSAGE_REACTIONS)
        return int(Intent.DIRECT_MESSAGE_REACTIONS)

    @staticmethod
    def _reaction_base(message: FakeMessage, key: str) -> JSON:
        data: JSON = {"channel_id": message.channel_id, "message_id": message.id, "emoji": P.emoji_payload(key)}
        if message.guild_id is not None:
            data["guild_id"] = message.guild_id
        return data

    async def _record_reaction(self, message: FakeMessage, key: str, user: FakeUser) -> bool:
        users = message.reactions.setdefault(key, [])
        if user.id in users:
            return False
        users.append(user.id)
        self._changed()
        data = self._reaction_base(message, key)
        data.update(
            {
                "user_id": user.id,
                "message_author_id": message.author_id,
                "burst": False,
                "burst_colors": [],
                "type": 0,
            }
        )
        guild = self.guild_by_id(message.guild_id)
        if guild is not None and user.id in guild.members:
            data["member"] = P.member_payload(guild.members[user.id])
        await self._dispatch_in_channel("MESSAGE_REACTION_ADD", data, message, intent=self._reaction_intent(message))
        return True

    async def _remove_reaction(self, message: FakeMessage, key: str, user: FakeUser) -> bool:
        users = message.reactions.get(key, [])
        if user.id not in users:
            return False
        users.remove(user.id)
        if not users:
            del message.reactions[key]
        self._changed()
        data = self._reaction_base(message, key)
        data.update({"user_id": user.id, "burst": False, "type": 0})
        await self._dispatch_in_channel("MESSAGE_REACTION_REMOVE", data, message, intent=self._reaction_intent(message))
        return True

    def _message(self, message: FakeMessage | str) -> FakeMessage:
        found = self.messages.get(_as_id(message))
        if found is None:
            raise KeyError(f"unknown message {_as_id(message)}")
        return found

    async def react(self, message: FakeMessage | str, emoji: str, user: FakeUser) -> None:
        """``user`` adds a reaction (MESSAGE_REACTION_ADD with member, message_author_id, type 0)."""
        target = self._message(message)
        if target.deleted or target.ephemeral:
            raise DiscordRejected("cannot react to a deleted or ephemeral message")
        key = P.emoji_key(emoji)
        channel = self.channel_by_id(target.channel_id)
        perms = self.permissions_of(user, channel)
        if not perms & Permission.READ_MESSAGE_HISTORY or (
            not target.reactions.get(key) and not perms & Permission.ADD_REACTIONS
        ):
            raise DiscordRejected(f"{user.name} may not add {emoji} here")
        await self._record_reaction(target, key, user)

    async def unreact(self, message: FakeMessage | str, emoji: str, user: FakeUser) -> None:
        """``user`` removes their reaction (MESSAGE_REACTION_REMOVE)."""
        await self._remove_reaction(self._message(message), P.emoji_key(emoji), user)

    async def delete_message(self, message: FakeMessage | str, *, by: FakeUser | None = None) -> None:
        """A user or moderator deletes a message (MESSAGE_DELETE)."""
        target = self._message(message)
        if by is not None and by.id != target.author_id and not self.permissions_of(by) & Permission.MANAGE_MESSAGES:
            raise DiscordRejected(f"{by.name} may not delete others' messages")
        await self._delete_message(target)

    async def post_user_message(
        self,
        user: FakeUser,
        content: str = "",
        attachments: Sequence[FakeAttachment | tuple[str, bytes]] = (),
        channel: FakeChannel | None = None,
        *,
        reply_to: FakeMessage | None = None,
    ) -> FakeMessage:
        """A member posts a message (MESSAGE_CREATE; content hidden from bots without MESSAGE_CONTENT)."""
        target_channel = channel or self.channel
        if self.channel_deleted(target_channel):
            raise DiscordRejected(f"channel {target_channel.name!r} was deleted")
        stored: list[FakeAttachment] = []
        for item in attachments:
            if isinstance(item, FakeAttachment):
                stored.append(item)
            else:
                stored.append(self._store_attachment(item[0], item[1], None))
        body: JSON = {"content": content}
        if reply_to is not None:
            body["message_reference"] = {"message_id": reply_to.id}
        return await self._create_message(
            channel=target_channel, author=user, body=body, via="user", attachments=stored
        )

    # ============================================================================== interactions (tests)

    def _new_token(self, interaction_id: str) -> str:
        raw = f"interaction:{interaction_id}:{secrets.token_urlsafe(48)}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def _new_interaction(
        self,
        *,
        itype: int,
        user: FakeUser,
        channel: FakeChannel,
        data: JSON,
        message: FakeMessage | None = None,
        parent: FakeInteraction | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        if self.channel_deleted(channel):
            raise DiscordRejected(f"channel {channel.name!r} was deleted")
        interaction_id = self.snowflake()
        token = self._new_token(interaction_id)
        payload: JSON = {
            "id": interaction_id,
            "application_id": self.application_id,
            "type": itype,
            "token": token,
            "version": 1,
            "data": data,
            "channel_id": channel.id,
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": self.attachment_size_limit,
            "app_permissions": str(self.permissions_of(self.bot_user, channel)),
        }
        guild = self.guild_by_id(channel.guild_id)
        if guild is not None:
            member = guild.members[user.id]
            perms = self.permissions_of(user, channel)
            payload.update(
                {
                    "guild_id": guild.id,
                    "guild": {"id": guild.id, "locale": guild.locale, "features": []},
                    "guild_locale": guild.locale,
                    "channel": P.channel_payload(channel, permissions=perms),
                    "member": P.member_payload(member, permissions=perms),
                    "authorizing_integration_owners": {"0": guild.id},
                    "context": 0,
                }
            )
        else:
            recipient = self.users.get(channel.recipient_id or "", user)
            payload.update(
                {
                    "channel": P.channel_payload(channel, recipient=recipient, permissions=_DM_PERMISSIONS),
                    "user": P.user_payload(user),
                    "authorizing_integration_owners": {"0": "0"},
                    "context": 1,
                }
            )
        if message is not None:
            payload["message"] = self._gateway_message_payload(message)
        interaction = FakeInteraction(
            fake=self,
            id=interaction_id,
            token=token,
            type=itype,
            user=user,
            channel=channel,
            guild_id=channel.guild_id,
            payload=payload,
            created_at=self.clock(),
            attachment_size_limit=self.attachment_size_limit,
            message_id=message.id if message is not None else None,
            parent=parent,
        )
        self.interactions[interaction_id] = interaction
        self._interactions_by_token[token] = interaction
        return interaction

    async def _deliver(self, interaction: FakeInteraction, session: GatewaySession | None = None) -> FakeInteraction:
        if session is not None:
            # A test knob: this session gets it, whatever its shard (Discord would pick by shard).
            if not session.connected:
                raise RuntimeError("the chosen gateway session is not connected")
            await self.gateway.send_to(session, "INTERACTION_CREATE", interaction.payload)
            return interaction
        count = await self.gateway.dispatch(
            "INTERACTION_CREATE", interaction.payload, guild_id=interaction.guild_id, single=True
        )
        if count == 0:
            raise RuntimeError("no connected gateway session to deliver the interaction to")
        return interaction

    def _lookup_command(self, name: str, ctype: int, guild_id: str | None) -> tuple[JSON | None, bool]:
        if guild_id is not None:
            found = self.command(name, guild_id=guild_id, type=ctype)
            if found is not None:
                return found, True
        return self.command(name, type=ctype), False

    def _check_invocable(
        self,
        command: JSON,
        user: FakeUser,
        channel: FakeChannel,
        *,
        guild_command: bool,
        override_permissions: bool,
    ) -> None:
        context = 1 if channel.is_dm else 0
        if context not in command_contexts(command, guild_command=guild_command):
            where = "a DM" if channel.is_dm else "a server"
            raise DiscordRejected(f"{command['name']!r} cannot be used in {where}")
        if channel.is_dm:
            return
        guild = self.guild_by_id(channel.guild_id) or self.guild
        if user.id not in guild.members:
            raise DiscordRejected(f"{user.name} is not a member of the server")
        if not override_permissions and not command_permitted(command, self.permissions_of(user, channel)):
            raise DiscordRejected(
                f"{user.name} lacks default_member_permissions={command.get('default_member_permissions')} "
                f"for {command['name']!r}"
            )

    def _resolve_user(self, resolved: _Resolved, user: FakeUser, channel: FakeChannel) -> str:
        resolved.users[user.id] = P.user_payload(user)
        guild = self.guild_by_id(channel.guild_id)
        if guild is not None and user.id in guild.members:
            member = P.member_payload(guild.members[user.id], with_user=False, permissions=self.permissions_of(user))
            resolved.members[user.id] = member
        return user.id

    def _option_wire_value(
        self, definition: JSON, value: Any, *, validate: bool, resolved: _Resolved, channel: FakeChannel
    ) -> Any:
        otype = definition["type"]
        name = definition["name"]
        if otype in (STRING, INTEGER, NUMBER, BOOLEAN):
            if validate:
                check_scalar_option(definition, value)
            if value is None or isinstance(value, str | int | float | bool):
                return value
            return _as_id(value) if hasattr(value, "id") else str(value)
        if otype in (USER, MENTIONABLE) and isinstance(value, FakeUser | FakeMember):
            user = value.user if isinstance(value, FakeMember) else value
            return self._resolve_user(resolved, user, channel)
        if otype in (ROLE, MENTIONABLE) and isinstance(value, FakeRole):
            resolved.roles[value.id] = P.role_payload(value)
            return value.id
        if otype == CHANNEL and isinstance(value, FakeChannel):
            allowed = definition.get("channel_types")
            if validate and allowed and value.type not in allowed:
                raise DiscordRejected(f"option {name!r}: channel type {value.type} not in {allowed}")
            data = P.channel_payload(value, permissions=self.permissions_of(self.bot_user, value))
            resolved.channels[value.id] = data
            return value.id
        if otype == ATTACHMENT and isinstance(value, FakeAttachment):
            resolved.attachments[value.id] = value.to_payload()
            return value.id
        if validate:
            raise DiscordRejected(f"option {name!r} (type {otype}) cannot take {value!r}")
        return _as_id(value) if hasattr(value, "id") else value

    @staticmethod
    def _infer_type(value: Any) -> int:
        if isinstance(value, bool):
            return BOOLEAN
        if isinstance(value, int):
            return INTEGER
        if isinstance(value, float):
            return NUMBER
        if isinstance(value, FakeAttachment):
            return ATTACHMENT
        if isinstance(value, FakeUser | FakeMember):
            return USER
        if isinstance(value, FakeRole):
            return ROLE
        if isinstance(value, FakeChannel):
            return CHANNEL
        return STRING

    def _build_options(
        self,
        definitions: list[JSON],
        values: Mapping[str, Any],
        *,
        validate: bool,
        resolved: _Resolved,
        channel: FakeChannel,
        focused: str | None = None,
    ) -> list[JSON]:
        by_name = {d["name"]: d for d in definitions}
        out: list[JSON] = []
        for name, value in values.items():
            definition = by_name.get(name)
            if definition is None or definition["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP):
                if validate:
                    raise DiscordRejected(f"unknown option {name!r}")
                definition = {"name": name, "type": self._infer_type(value)}
            if name == focused:
                out.append({"name": name, "type": definition["type"], "value": str(value), "focused": True})
                continue
            wire = self._option_wire_value(definition, value, validate=validate, resolved=resolved, channel=channel)
            out.append({"name": name, "type": definition["type"], "value": wire})
        if validate and focused is None:
            check_required(definitions, values.keys())
        return out

    def _command_data(
        self,
        name: str,
        user: FakeUser,
        channel: FakeChannel,
        *,
        options: Mapping[str, Any] | None,
        subcommand: str | None,
        group: str | None,
        validate: bool,
        override_permissions: bool,
        focused: str | None = None,
    ) -> JSON:
        if subcommand is None and group is None and " " in name.strip():
            parts = name.split()
            name = parts[0]
            if len(parts) == 2:
                subcommand = parts[1]
            else:
                group, subcommand = parts[1], parts[2]
        command, guild_command = self._lookup_command(name, CHAT_INPUT, channel.guild_id)
        if command is None:
            if validate:
                if channel.is_dm and any(
                    c["name"] == name and c.get("type", 1) == CHAT_INPUT
                    for table in self.commands_guild.values()
                    for c in table
                ):
                    raise DiscordRejected(f"/{name} is a guild command: it cannot be used in a DM")
                raise DiscordRejected(f"/{name} is not a synced command")
            command = {"id": self.snowflake(), "name": name, "type": CHAT_INPUT, "options": []}
        if validate:
            self._check_invocable(
                command, user, channel, guild_command=guild_command, override_permissions=override_permissions
            )
        definitions, wrappers = locate_options(command, group=group, subcommand=subcommand, validate=validate)
        resolved = _Resolved()
        built = self._build_options(
            definitions, options or {}, validate=validate, resolved=resolved, channel=channel, focused=focused
        )
        for wrapper_type, wrapper_name in reversed(wrappers):
            built = [{"type": wrapper_type, "name": wrapper_name, "options": built}]
        data: JSON = {"id": command["id"], "name": name, "type": CHAT_INPUT, "options": built}
        if guild_command:
            data["guild_id"] = channel.guild_id
        if resolved:
            data["resolved"] = resolved.payload()
        return data

    def _context_channel(self, user: FakeUser, channel: FakeChannel | None, guild: bool) -> FakeChannel:
        if channel is not None:
            return channel
        return self.channel if guild else self.dm_channel(user)

    async def invoke(
        self,
        name: str,
        user: FakeUser,
        *,
        channel: FakeChannel | None = None,
        options: Mapping[str, Any] | None = None,
        subcommand: str | None = None,
        group: str | None = None,
        guild: bool = True,
        validate: bool = True,
        override_permissions: bool = False,
        locale: str = "en-US",
        session: GatewaySession | None = None,
    ) -> FakeInteraction:
        """Run slash command ``name`` as ``user`` (``"group sub"`` names work too).

        Options are typed from the definitions the bot synced. With ``validate`` the fake refuses
        (``DiscordRejected``, nothing sent) what Discord's client would not send. ``locale`` is the
        member's client language. ``session`` delivers it to that gateway session whatever its shard
        (Discord sends it to the session of the server's shard; DMs to shard 0).
        """
        where = self._context_channel(user, channel, guild)
        data = self._command_data(
            name,
            user,
            where,
            options=options,
            subcommand=subcommand,
            group=group,
            validate=validate,
            override_permissions=override_permissions,
        )
        interaction = self._new_interaction(
            itype=InteractionType.APPLICATION_COMMAND, user=user, channel=where, data=data, locale=locale
        )
        return await self._deliver(interaction, session)

    async def autocomplete(
        self,
        name: str,
        user: FakeUser,
        focused: str,
        *,
        options: Mapping[str, Any] | None = None,
        channel: FakeChannel | None = None,
        subcommand: str | None = None,
        group: str | None = None,
        guild: bool = True,
    ) -> FakeInteraction:
        """Send an autocomplete interaction (type 4) for option ``focused``; see ``autocomplete_choices``."""
        where = self._context_channel(user, channel, guild)
        values = dict(options or {})
        values.setdefault(focused, "")
        data = self._command_data(
            name,
            user,
            where,
            options=values,
            subcommand=subcommand,
            group=group,
            validate=True,
            override_permissions=False,
            focused=focused,
        )
        interaction = self._new_interaction(
            itype=InteractionType.APPLICATION_COMMAND_AUTOCOMPLETE, user=user, channel=where, data=data
        )
        return await self._deliver(interaction)

    async def invoke_message_command(
        self,
        name: str,
        user: FakeUser,
        target: FakeMessage,
        *,
        validate: bool = True,
        override_permissions: bool = False,
    ) -> FakeInteraction:
        """Run message context-menu ``name`` on ``target`` (resolved.messages carries content/attachments)."""
        channel = self._channel_or_none(target.channel_id)
        command, guild_command = self._lookup_command(name, MESSAGE_COMMAND, channel.guild_id)
        if command is None:
            if validate:
                raise DiscordRejected(f"message command {name!r} is not synced")
            command = {"id": self.snowflake(), "name": name, "type": MESSAGE_COMMAND}
        if validate:
            if target.deleted or target.ephemeral:
                raise DiscordRejected("cannot target a deleted or ephemeral message")
            self._check_invocable(
                command, user, channel, guild_command=guild_command, override_permissions=override_permissions
            )
        data: JSON = {
            "id": command["id"],
            "name": name,
            "type": MESSAGE_COMMAND,
            "target_id": target.id,
            "resolved": {"messages": {target.id: self.message_payload(target)}},
        }
        if guild_command:
            data["guild_id"] = channel.guild_id
        interaction = self._new_interaction(
            itype=InteractionType.APPLICATION_COMMAND, user=user, channel=channel, data=data
        )
        return await self._deliver(interaction)

    async def invoke_user_command(
        self,
        name: str,
        user: FakeUser,
        target: FakeUser,
        *,
        channel: FakeChannel | None = None,
        validate: bool = True,
        override_permissions: bool = False,
    ) -> FakeInteraction:
        """Run user context-menu ``name`` on ``target``."""
        where = channel or self.channel
        command, guild_command = self._lookup_command(name, USER_COMMAND, where.guild_id)
        if command is None:
            if validate:
                raise DiscordRejected(f"user command {name!r} is not synced")
            command = {"id": self.snowflake(), "name": name, "type": USER_COMMAND}
        if validate:
            self._check_invocable(
                command, user, where, guild_command=guild_command, override_permissions=override_permissions
            )
        resolved = _Resolved()
        self._resolve_user(resolved, target, where)
        data: JSON = {
            "id": command["id"],
            "name": name,
            "type": USER_COMMAND,
            "target_id": target.id,
            "resolved": resolved.payload(),
        }
        if guild_command:
            data["guild_id"] = where.guild_id
        interaction = self._new_interaction(
            itype=InteractionType.APPLICATION_COMMAND, user=user, channel=where, data=data
        )
        return await self._deliver(interaction)

    def _channel_or_none(self, channel_id: str) -> FakeChannel:
        channel = self.channel_by_id(channel_id)
        if channel is None:
            raise KeyError(f"unknown channel {channel_id}")
        return channel

    def _component_target(
        self, message: FakeMessage | str, custom_id: str, user: FakeUser, kinds: set[int], validate: bool
    ) -> tuple[FakeMessage, JSON | None]:
        target = self._message(message)
        component = target.find_component(custom_id)
        if validate:
            if target.deleted:
                raise DiscordRejected("the message was deleted")
            if component is None or component.get("type") not in kinds:
                raise DiscordRejected(f"no component {custom_id!r} on message {target.id}")
            if component.get("disabled"):
                raise DiscordRejected(f"component {custom_id!r} is disabled")
            if target.ephemeral:
                owner = self.interactions.get(target.interaction_id or "")
                if owner is not None and owner.user.id != user.id:
                    raise DiscordRejected("only the invoking user sees an ephemeral message")
        return target, component

    async def press_button(
        self,
        message: FakeMessage | str,
        custom_id: str,
        user: FakeUser,
        *,
        validate: bool = True,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """``user`` clicks button ``custom_id`` (MESSAGE_COMPONENT, component_type 2) in client language ``locale``."""
        target, component = self._component_target(message, custom_id, user, {2}, validate)
        if validate and component is not None and component.get("style") in (5, 6):
            raise DiscordRejected("link/premium buttons do not send interactions")
        channel = self._channel_or_none(target.channel_id)
        data: JSON = {"custom_id": custom_id, "component_type": 2}
        if component is not None and component.get("id") is not None:
            data["id"] = component["id"]
        interaction = self._new_interaction(
            itype=InteractionType.MESSAGE_COMPONENT,
            user=user,
            channel=channel,
            data=data,
            message=target,
            locale=locale,
        )
        return await self._deliver(interaction)

    async def select(
        self,
        message: FakeMessage | str,
        custom_id: str,
        values: Sequence[Any],
        user: FakeUser,
        *,
        validate: bool = True,
    ) -> FakeInteraction:
        """``user`` picks ``values`` in select menu ``custom_id`` (string values, or users/roles/channels)."""
        target, component = self._component_target(message, custom_id, user, {3, 5, 6, 7, 8}, validate)
        channel = self._channel_or_none(target.channel_id)
        ctype = int(component["type"]) if component is not None else 3
        resolved = _Resolved()
        wire = [self._select_value(v, resolved, channel) for v in values]
        if validate and component is not None:
            min_values = component.get("min_values")
            required = (1 if min_values is None else int(min_values)) > 0
            check_modal_value({**component, "required": required}, wire, given=True)
        data: JSON = {"custom_id": custom_id, "component_type": ctype, "values": wire}
        if resolved:
            data["resolved"] = resolved.payload()
        interaction = self._new_interaction(
            itype=InteractionType.MESSAGE_COMPONENT, user=user, channel=channel, data=data, message=target
        )
        return await self._deliver(interaction)

    def _select_value(self, value: Any, resolved: _Resolved, channel: FakeChannel) -> str:
        if isinstance(value, FakeUser | FakeMember):
            user = value.user if isinstance(value, FakeMember) else value
            return self._resolve_user(resolved, user, channel)
        if isinstance(value, FakeRole):
            resolved.roles[value.id] = P.role_payload(value)
            return value.id
        if isinstance(value, FakeChannel):
            resolved.channels[value.id] = P.channel_payload(value, permissions=self.bot_permissions)
            return value.id
        if isinstance(value, FakeAttachment):
            resolved.attachments[value.id] = value.to_payload()
            return value.id
        return str(value)

    async def submit_modal(
        self,
        interaction: FakeInteraction,
        values: Mapping[str, Any],
        user: FakeUser | None = None,
        *,
        validate: bool = True,
    ) -> FakeInteraction:
        """Answer the modal the bot sent on ``interaction`` (MODAL_SUBMIT mirroring its components).

        ``values``: custom_id -> str (text input), list[str] (string select, checkbox group),
        list[FakeAttachment] (file upload), list[FakeUser|FakeRole|FakeChannel] (entity selects),
        str | None (radio group), bool (checkbox). Missing inputs keep their default.
        """
        modal = interaction.modal
        if modal is None:
            raise RuntimeError(f"interaction {interaction.id} was not answered with a modal")
        submitter = user or interaction.user
        if validate and submitter.id != interaction.user.id:
            raise DiscordRejected("only the user who opened a modal can submit it")
        known = {c.get("custom_id") for c in iter_components(modal.get("components") or [])}
        if validate:
            unknown = [key for key in values if key not in known]
            if unknown:
                raise DiscordRejected(f"modal has no inputs {unknown}")
        resolved = _Resolved()
        next_id = [0]
        used_ids = {c["id"] for c in iter_components(modal.get("components") or []) if "id" in c}

        def component_id(component: JSON) -> int:
            if component.get("id") is not None:
                return int(component["id"])
            next_id[0] += 1
            while next_id[0] in used_ids:
                next_id[0] += 1
            return next_id[0]

        def convert(component: JSON) -> JSON | None:
            ctype = component.get("type")
            cid = component_id(component)
            if ctype == 1:
                children = [convert(c) for c in component.get("components") or []]
                return {"type": 1, "id": cid, "components": [c for c in children if c is not None]}
            if ctype == 18:
                inner = convert(component.get("component") or {})
                return {"type": 18, "id": cid, "component": inner}
            if ctype == 10:
                return {"type": 10, "id": cid}
            custom_id = component.get("custom_id")
            given = custom_id in values
            value = values.get(str(custom_id))
            if ctype == 4:
                text = value if given else component.get("value") or ""
                if validate:
                    check_modal_value(component, text, given=True)
                return {"type": 4, "id": cid, "custom_id": custom_id, "value": "" if text is None else text}
            if ctype == 23:
                checked = bool(value) if given else bool(component.get("default", False))
                if validate:
                    check_modal_value(component, checked, given=True)
                return {"type": 23, "id": cid, "custom_id": custom_id, "value": checked}
            if ctype == 21:
                default = next((o.get("value") for o in component.get("options") or [] if o.get("default")), None)
                choice = value if given else default
                if validate:
                    check_modal_value(component, choice, given=True)
                return {"type": 21, "id": cid, "custom_id": custom_id, "value": choice}
            if ctype in (3, 5, 6, 7, 8, 19, 22):
                if given:
                    items = list(value) if isinstance(value, list | tuple) else ([] if value is None else [value])
                elif ctype in (3, 22):
                    items = [o.get("value") for o in component.get("options") or [] if o.get("default")]
                else:
                    items = []
                wire = [self._select_value(v, resolved, interaction.channel) for v in items]
                if validate:
                    if ctype == 19 and any(not isinstance(v, FakeAttachment) for v in items):
                        raise DiscordRejected(f"file upload {custom_id!r} takes FakeAttachment objects")
                    check_modal_value(component, wire, given=True)
                return {"type": ctype, "id": cid, "custom_id": custom_id, "values": wire}
            return None

        components = [c for c in (convert(top) for top in modal.get("components") or []) if c is not None]
        data: JSON = {"custom_id": modal.get("custom_id"), "components": components}
        if resolved:
            data["resolved"] = resolved.payload()
        origin = self.messages.get(interaction.message_id or "") if interaction.message_id else None
        submit = self._new_interaction(
            itype=InteractionType.MODAL_SUBMIT,
            user=submitter,
            channel=interaction.channel,
            data=data,
            message=origin,
            parent=interaction,
        )
        return await self._deliver(submit)

    # ============================================================================== gateway control

    async def request_reconnect(self) -> None:
        """op 7 RECONNECT: the client drops the socket and RESUMEs at resume_gateway_url."""
        await self.gateway.request_reconnect()

    async def drop_connections(self, code: int = 4000) -> None:
        """Close the sockets from the server side (4000: the client reconnects and RESUMEs)."""
        await self.gateway.drop(code)

    async def drop_gateway(self, code: int = 4000, *, refuse: bool = False) -> int:
        """Close every gateway socket (code 4000: discord.py reconnects and RESUMEs, missed dispatches
        are replayed, then ``on_resumed``). ``refuse=True`` first makes the gateway refuse new
        connections (``fake.gateway.refuse(False)`` lets the bot back in; see ``Gateway.refuse``).
        Returns how many sockets were closed."""
        if refuse:
            self.gateway.refuse(True)
        return await self.gateway.disconnect(code=code)

    async def invalidate_sessions(self, *, resumable: bool = False) -> None:
        """op 9 INVALID_SESSION (non-resumable makes discord.py re-IDENTIFY after before_identify_hook)."""
        await self.gateway.invalidate(resumable=resumable)


__all__ = ["Body", "FakeDiscord", "FilePart"]

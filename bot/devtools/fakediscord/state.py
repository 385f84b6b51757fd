"""State objects of the fake Discord: users, guild, channels, messages, interactions, request log."""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import FakeDiscord

JSON = dict[str, Any]

DISCORD_EPOCH_MS = 1420070400000


class Permission(enum.IntFlag):
    """Discord permission bits (https://docs.discord.com/developers/topics/permissions)."""

    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_AUDIT_LOG = 1 << 7
    PRIORITY_SPEAKER = 1 << 8
    STREAM = 1 << 9
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    SEND_TTS_MESSAGES = 1 << 12
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    VIEW_GUILD_INSIGHTS = 1 << 19
    CONNECT = 1 << 20
    SPEAK = 1 << 21
    MUTE_MEMBERS = 1 << 22
    DEAFEN_MEMBERS = 1 << 23
    MOVE_MEMBERS = 1 << 24
    USE_VAD = 1 << 25
    CHANGE_NICKNAME = 1 << 26
    MANAGE_NICKNAMES = 1 << 27
    MANAGE_ROLES = 1 << 28
    MANAGE_WEBHOOKS = 1 << 29
    MANAGE_GUILD_EXPRESSIONS = 1 << 30
    USE_APPLICATION_COMMANDS = 1 << 31
    REQUEST_TO_SPEAK = 1 << 32
    MANAGE_EVENTS = 1 << 33
    MANAGE_THREADS = 1 << 34
    CREATE_PUBLIC_THREADS = 1 << 35
    CREATE_PRIVATE_THREADS = 1 << 36
    USE_EXTERNAL_STICKERS = 1 << 37
    SEND_MESSAGES_IN_THREADS = 1 << 38
    USE_EMBEDDED_ACTIVITIES = 1 << 39
    MODERATE_MEMBERS = 1 << 40
    VIEW_CREATOR_MONETIZATION_ANALYTICS = 1 << 41
    USE_SOUNDBOARD = 1 << 42
    CREATE_GUILD_EXPRESSIONS = 1 << 43
    CREATE_EVENTS = 1 << 44
    USE_EXTERNAL_SOUNDS = 1 << 45
    SEND_VOICE_MESSAGES = 1 << 46
    SET_VOICE_CHANNEL_STATUS = 1 << 48
    SEND_POLLS = 1 << 49
    USE_EXTERNAL_APPS = 1 << 50
    PIN_MESSAGES = 1 << 51
    BYPASS_SLOWMODE = 1 << 52


ALL_PERMISSIONS = 0
for _perm in Permission:
    ALL_PERMISSIONS |= int(_perm)

#: What a fresh server's @everyone role may do (close to Discord's defaults).
EVERYONE_PERMISSIONS = int(
    Permission.CREATE_INSTANT_INVITE
    | Permission.ADD_REACTIONS
    | Permission.STREAM
    | Permission.VIEW_CHANNEL
    | Permission.SEND_MESSAGES
    | Permission.EMBED_LINKS
    | Permission.ATTACH_FILES
    | Permission.READ_MESSAGE_HISTORY
    | Permission.USE_EXTERNAL_EMOJIS
    | Permission.CONNECT
    | Permission.SPEAK
    | Permission.USE_VAD
    | Permission.CHANGE_NICKNAME
    | Permission.USE_APPLICATION_COMMANDS
    | Permission.REQUEST_TO_SPEAK
    | Permission.CREATE_PUBLIC_THREADS
    | Permission.CREATE_PRIVATE_THREADS
    | Permission.USE_EXTERNAL_STICKERS
    | Permission.SEND_MESSAGES_IN_THREADS
    | Permission.USE_EMBEDDED_ACTIVITIES
    | Permission.SEND_VOICE_MESSAGES
    | Permission.SEND_POLLS
    | Permission.USE_EXTERNAL_APPS
)


class Intent(enum.IntFlag):
    """Gateway intents the fake looks at."""

    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    GUILD_MESSAGE_REACTIONS = 1 << 10
    DIRECT_MESSAGES = 1 << 12
    DIRECT_MESSAGE_REACTIONS = 1 << 13
    MESSAGE_CONTENT = 1 << 15


PRIVILEGED_INTENTS = int(Intent.GUILD_MEMBERS | Intent.GUILD_PRESENCES | Intent.MESSAGE_CONTENT)


class MessageFlag(enum.IntFlag):
    SUPPRESS_EMBEDS = 1 << 2
    EPHEMERAL = 1 << 6
    LOADING = 1 << 7
    SUPPRESS_NOTIFICATIONS = 1 << 12
    IS_COMPONENTS_V2 = 1 << 15


class MessageType(enum.IntEnum):
    DEFAULT = 0
    REPLY = 19
    CHAT_INPUT_COMMAND = 20
    CONTEXT_MENU_COMMAND = 23


class InteractionType(enum.IntEnum):
    PING = 1
    APPLICATION_COMMAND = 2
    MESSAGE_COMPONENT = 3
    APPLICATION_COMMAND_AUTOCOMPLETE = 4
    MODAL_SUBMIT = 5


class CallbackType(enum.IntEnum):
    PONG = 1
    CHANNEL_MESSAGE_WITH_SOURCE = 4
    DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE = 5
    DEFERRED_UPDATE_MESSAGE = 6
    UPDATE_MESSAGE = 7
    APPLICATION_COMMAND_AUTOCOMPLETE_RESULT = 8
    MODAL = 9


def utc_iso(dt: datetime | None = None) -> str:
    """ISO-8601 timestamp as Discord writes it."""
    return (dt or datetime.now(UTC)).isoformat()


class SnowflakeGenerator:
    """Unique, increasing snowflake strings whose timestamp is the wall clock."""

    def __init__(self) -> None:
        self._last = 0

    def __call__(self) -> str:
        now_ms = int(time.time() * 1000)
        value = (now_ms - DISCORD_EPOCH_MS) << 22
        self._last = max(self._last + 1, value)
        return str(self._last)

    def skip_to(self, value: int) -> None:
        """Never hand out ``value`` or anything below it (after an id was made by hand)."""
        self._last = max(self._last, value)


class FakeClock:
    """A manually advanced monotonic clock to inject into :class:`FakeDiscord` (``clock=``)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass(eq=False)
class FakeUser:
    id: str
    name: str
    bot: bool = False
    global_name: str | None = None
    #: False models a user who closed DMs: the bot's DM send answers 403 code 50007.
    accepts_dms: bool = True

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    def __hash__(self) -> int:
        return hash(self.id)


@dataclass(eq=False)
class FakeRole:
    id: str
    name: str
    permissions: int
    position: int = 0
    mentionable: bool = False
    managed: bool = False
    hoist: bool = False
    color: int = 0
    tags: JSON | None = None

    @property
    def mention(self) -> str:
        return f"<@&{self.id}>"


@dataclass(eq=False)
class PermissionOverwrite:
    """A channel permission overwrite: ``type`` 0 = role (the @everyone role's id is the guild's), 1 = member."""

    id: str
    type: int
    allow: int = 0
    deny: int = 0

    def to_payload(self) -> JSON:
        return {"id": self.id, "type": self.type, "allow": str(self.allow), "deny": str(self.deny)}


@dataclass(eq=False)
class FakeChannel:
    id: str
    name: str
    type: int = 0  # 0 guild text, 1 DM
    guild_id: str | None = None
    position: int = 0
    topic: str | None = None
    nsfw: bool = False
    recipient_id: str | None = None  # DM channels
    permission_overwrites: list[PermissionOverwrite] = field(default_factory=list)

    @property
    def is_dm(self) -> bool:
        return self.type == 1

    @property
    def mention(self) -> str:
        return f"<#{self.id}>"


@dataclass(eq=False)
class FakeMember:
    user: FakeUser
    roles: list[str] = field(default_factory=list)
    nick: str | None = None
    joined_at: str = field(default_factory=utc_iso)
    flags: int = 0


@dataclass(eq=False)
class FakeGuild:
    id: str
    name: str
    owner_id: str
    roles: dict[str, FakeRole] = field(default_factory=dict)
    channels: dict[str, FakeChannel] = field(default_factory=dict)
    members: dict[str, FakeMember] = field(default_factory=dict)
    premium_tier: int = 0
    locale: str = "en-US"
    joined_at: str = field(default_factory=utc_iso)

    @property
    def everyone_role(self) -> FakeRole:
        return self.roles[self.id]

    def role_named(self, name: str) -> FakeRole:
        for role in self.roles.values():
            if role.name == name:
                return role
        raise KeyError(name)

    def channel_named(self, name: str) -> FakeChannel:
        for channel in self.channels.values():
            if channel.name == name:
                return channel
        raise KeyError(name)

    def apply_overwrites(self, base: int, user_id: str, channel: FakeChannel) -> int:
        """Discord's channel step: @everyone overwrite, then the member's roles' (deny, then allow),
        then the member's own overwrite. ADMINISTRATOR (and ownership) bypass overwrites."""
        if base & Permission.ADMINISTRATOR or not channel.permission_overwrites:
            return base
        overwrites = {(o.type, o.id): o for o in channel.permission_overwrites}
        perms = base
        everyone = overwrites.get((0, self.id))
        if everyone is not None:
            perms = (perms & ~everyone.deny) | everyone.allow
        member = self.members.get(user_id)
        allow = deny = 0
        for role_id in member.roles if member is not None else []:
            overwrite = overwrites.get((0, role_id))
            if overwrite is not None:
                allow |= overwrite.allow
                deny |= overwrite.deny
        perms = (perms & ~deny) | allow
        own = overwrites.get((1, user_id))
        if own is not None:
            perms = (perms & ~own.deny) | own.allow
        return perms

    def member_permissions(self, user_id: str) -> int:
        """Guild-level permissions of a member from its roles (owner and ADMINISTRATOR imply all)."""
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        member = self.members.get(user_id)
        perms = self.everyone_role.permissions
        if member is not None:
            for role_id in member.roles:
                role = self.roles.get(role_id)
                if role is not None:
                    perms |= role.permissions
        if perms & Permission.ADMINISTRATOR:
            return ALL_PERMISSIONS
        return perms


@dataclass(frozen=True, eq=False)
class FakeAttachment:
    id: str
    filename: str
    size: int
    url: str
    proxy_url: str
    content_type: str | None = None
    data: bytes = field(default=b"", repr=False)
    description: str | None = None
    title: str | None = None
    width: int | None = None
    height: int | None = None
    ephemeral: bool = False

    def to_payload(self) -> JSON:
        payload: JSON = {
            "id": self.id,
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.proxy_url,
        }
        if self.content_type is not None:
            payload["content_type"] = self.content_type
        if self.description is not None:
            payload["description"] = self.description
        if self.title is not None:
            payload["title"] = self.title
        if self.width is not None and self.height is not None:
            payload["width"] = self.width
            payload["height"] = self.height
        if self.ephemeral:
            payload["ephemeral"] = True
        return payload


@dataclass(frozen=True)
class MessageSnapshot:
    """The state of a message after one create or edit."""

    content: str
    embeds: list[JSON]
    attachments: list[FakeAttachment]
    components: list[JSON]
    flags: int
    time: float
    #: "create" or "edit".
    action: str
    #: How it was written: "callback", "webhook", "bot", "user", "component".
    via: str
    allowed_mentions: JSON | None
    #: Mentions this write would ping under Discord's allowed_mentions rules.
    pinged: frozenset[str]
    #: Whether this write notifies (a create, or the first edit of a deferred "thinking" message).
    notifies: bool


@dataclass(eq=False)
class FakeMessage:
    id: str
    channel_id: str
    guild_id: str | None
    author_id: str
    type: int = 0
    content: str = ""
    embeds: list[JSON] = field(default_factory=list)
    attachments: list[FakeAttachment] = field(default_factory=list)
    components: list[JSON] = field(default_factory=list)
    flags: int = 0
    reactions: dict[str, list[str]] = field(default_factory=dict)
    deleted: bool = False
    history: list[MessageSnapshot] = field(default_factory=list)
    allowed_mentions: JSON | None = None
    #: Union of the pings of every notifying write ("everyone", user ids, role ids).
    pinged: set[str] = field(default_factory=set)
    interaction_id: str | None = None
    interaction_token: str | None = None
    #: True when this message is the initial response (@original) of ``interaction_id``.
    is_original: bool = False
    webhook_id: str | None = None
    message_reference: JSON | None = None
    tts: bool = False
    poll: JSON | None = None
    created_at: float = 0.0
    edited_at: float | None = None
    timestamp: str = field(default_factory=utc_iso)
    edited_timestamp: str | None = None

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & MessageFlag.EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & MessageFlag.LOADING)

    @property
    def contents(self) -> list[str]:
        """Content after each write, oldest first."""
        return [snap.content for snap in self.history]

    def reaction_users(self, emoji: str) -> list[str]:
        return list(self.reactions.get(emoji, []))

    def find_component(self, custom_id: str) -> JSON | None:
        for component in iter_components(self.components):
            if component.get("custom_id") == custom_id:
                return component
        return None


def iter_components(components: list[JSON]) -> list[JSON]:
    """Flatten a component tree (rows, labels, sections, containers, accessories)."""
    out: list[JSON] = []
    stack = list(reversed(components))
    while stack:
        component = stack.pop()
        if not isinstance(component, dict):
            continue
        out.append(component)
        children: list[Any] = []
        for key in ("components", "items"):
            value = component.get(key)
            if isinstance(value, list):
                children.extend(value)
        for key in ("component", "accessory"):
            value = component.get(key)
            if isinstance(value, dict):
                children.append(value)
        stack.extend(reversed(children))
    return out


@dataclass
class LoggedRequest:
    method: str
    #: API path without the ``/api/v10`` prefix (or the raw path for attachment downloads).
    path: str
    query: dict[str, str]
    #: JSON body, or the parsed ``payload_json`` of a multipart body.
    json: Any
    #: Uploaded file parts as (filename, size).
    files: list[tuple[str, int]]
    #: "bot" (valid bot token), "invalid" (wrong or malformed), "none" (no Authorization header).
    auth: str
    status: int
    #: The fake's clock when the request arrived.
    time: float
    response: Any = None
    #: Set when an injected fault (``FakeDiscord.inject_fault``) matched: "error", "delay" or "delay+error".
    fault: str | None = None


@dataclass(eq=False)
class FakeInteraction:
    """A handle on one interaction the fake sent to the bot."""

    fake: FakeDiscord = field(repr=False)
    id: str
    token: str
    type: int
    user: FakeUser
    channel: FakeChannel
    guild_id: str | None
    payload: JSON = field(repr=False)
    created_at: float
    attachment_size_limit: int
    #: The message carrying the component (component interactions, and modals opened from one).
    message_id: str | None = None
    #: The interaction whose modal this submit answers.
    parent: FakeInteraction | None = field(default=None, repr=False)
    #: Accepted callback bodies ({"type": n, "data": {...}}), in order.
    responses: list[JSON] = field(default_factory=list)
    original_id: str | None = None
    followup_ids: list[str] = field(default_factory=list)
    modal: JSON | None = None
    #: Choices sent for an autocomplete interaction.
    autocomplete_choices: list[JSON] | None = None

    @property
    def data(self) -> JSON:
        data: JSON = self.payload.get("data", {})
        return data

    @property
    def acknowledged(self) -> bool:
        return bool(self.responses)

    @property
    def response_type(self) -> int | None:
        return int(self.responses[0]["type"]) if self.responses else None

    def original(self) -> FakeMessage | None:
        """The @original message, or None before a message-producing response."""
        if self.original_id is None:
            return None
        return self.fake.messages.get(self.original_id)

    def followups(self) -> list[FakeMessage]:
        return [self.fake.messages[mid] for mid in self.followup_ids if mid in self.fake.messages]

    async def wait_response(self, timeout: float = 5.0) -> JSON:
        """Wait for the bot's initial callback and return it ({"type", "data"})."""
        await self.fake.wait_until(lambda: bool(self.responses), timeout, f"a callback for interaction {self.id}")
        return self.responses[0]

    async def wait_modal(self, timeout: float = 5.0) -> JSON:
        await self.fake.wait_until(lambda: self.modal is not None, timeout, f"a modal for interaction {self.id}")
        assert self.modal is not None
        return self.modal

    async def wait_original(
        self, predicate: Callable[[FakeMessage], bool] | None = None, timeout: float = 5.0
    ) -> FakeMessage:
        """Wait until the @original exists (and satisfies ``predicate``) and return it."""

        def check() -> bool:
            message = self.original()
            return message is not None and (predicate is None or predicate(message))

        await self.fake.wait_until(check, timeout, f"the @original of interaction {self.id}")
        message = self.original()
        assert message is not None
        return message


class ChangeNotifier:
    """Wake-up primitive: every state change sets the current event and installs a fresh one."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        #: How many changes there have been (for observers that compare against what they saw last).
        self.count = 0

    def notify(self) -> None:
        self.count += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout:.2f}s waiting for {what}")
            event = self._event
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                continue

"""The gateway websocket: HELLO, heartbeats, IDENTIFY/READY, RESUME, dispatch with sequence numbers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from .payloads import member_payload
from .state import JSON, PRIVILEGED_INTENTS

if TYPE_CHECKING:
    from .server import FakeDiscord

log = logging.getLogger(__name__)

OP_DISPATCH = 0
OP_HEARTBEAT = 1
OP_IDENTIFY = 2
OP_PRESENCE_UPDATE = 3
OP_VOICE_STATE_UPDATE = 4
OP_RESUME = 6
OP_RECONNECT = 7
OP_REQUEST_GUILD_MEMBERS = 8
OP_INVALID_SESSION = 9
OP_HELLO = 10
OP_HEARTBEAT_ACK = 11

#: Close codes after which Discord forgets the session (no RESUME possible).
_SESSION_ENDING_CLOSES = {1000, 1001}
#: Close codes the gateway sends that end the session too (invalid seq, session timeout, fatal ones).
_SERVER_SESSION_ENDING_CLOSES = _SESSION_ENDING_CLOSES | {4004, 4007, 4009, 4010, 4011, 4012, 4013, 4014}


@dataclass(eq=False)
class _Connection:
    ws: web.WebSocketResponse
    compressor: Any | None  # zlib compressobj for zlib-stream
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: The code the fake closed this socket with (None: the client closed it). aiohttp's
    #: ``close_code`` ends up as the code the client answers with, so it is kept here.
    server_close_code: int | None = None

    async def close_from_server(self, code: int, message: bytes) -> None:
        if self.server_close_code is None:
            self.server_close_code = code
        await self.ws.close(code=code, message=message)

    async def send(self, frame: JSON) -> bool:
        text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
        async with self.lock:
            if self.ws.closed:
                return False
            try:
                if self.compressor is not None:
                    data = self.compressor.compress(text.encode()) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
                    await self.ws.send_bytes(data)
                else:
                    await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return False
        return True


@dataclass(eq=False)
class GatewaySession:
    """One identified gateway session (survives disconnects until it can no longer be resumed)."""

    session_id: str
    intents: int
    shard: tuple[int, int]
    identify: JSON
    seq: int = 0
    buffer: deque[JSON] = field(default_factory=lambda: deque(maxlen=2000))
    connection: _Connection | None = field(default=None, repr=False)
    ready: bool = False
    invalid: bool = False
    resumes: int = 0

    @property
    def connected(self) -> bool:
        return self.connection is not None and not self.connection.ws.closed

    def handles_guild(self, guild_id: str | None) -> bool:
        shard_id, shard_count = self.shard
        if guild_id is None:
            return shard_id == 0
        return (int(guild_id) >> 22) % shard_count == shard_id


def _parse_shard(raw: Any) -> tuple[int, int] | None:
    """IDENTIFY's ``shard: [shard_id, num_shards]`` (absent: ``[0, 1]``); ``None`` when Discord would
    close the connection with 4010 Invalid shard."""
    if raw is None:
        return (0, 1)
    if not isinstance(raw, list) or len(raw) != 2 or not all(type(v) is int for v in raw):
        return None
    shard_id, shard_count = raw
    if not 0 <= shard_id < shard_count:
        return None
    return (shard_id, shard_count)


@dataclass(frozen=True)
class DispatchRecord:
    session_id: str
    event: str
    seq: int
    data: JSON


class Gateway:
    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.sessions: dict[str, GatewaySession] = {}
        self.identify_payloads: list[JSON] = []
        self.resume_payloads: list[JSON] = []
        self.dispatch_log: list[DispatchRecord] = []
        self.heartbeats = 0
        self.connections: set[_Connection] = set()
        #: While True, new websocket connections are refused (HTTP 503 on the upgrade).
        self.refusing = False
        #: Connection attempts refused so far.
        self.refused = 0

    # ------------------------------------------------------------------ sending

    async def _send_dispatch(self, session: GatewaySession, event: str, data: JSON) -> None:
        session.seq += 1
        frame: JSON = {"op": OP_DISPATCH, "t": event, "s": session.seq, "d": data}
        session.buffer.append(frame)
        self.dispatch_log.append(DispatchRecord(session.session_id, event, session.seq, data))
        if session.connection is not None:
            await session.connection.send(frame)

    async def send_to(self, session: GatewaySession, event: str, data: JSON) -> None:
        """Send a dispatch to one session, whatever its shard (a test knob; ``dispatch`` routes)."""
        await self._send_dispatch(session, event, data)
        self.fake._changed()

    def sessions_for(self, guild_id: str | None) -> list[GatewaySession]:
        """Connected sessions of the shard that handles ``guild_id`` (``None``: DMs, shard 0)."""
        return [s for s in self.connected_sessions() if s.ready and s.handles_guild(guild_id)]

    def live_sessions(self, guild_id: str | None = None) -> list[GatewaySession]:
        return [s for s in self.sessions.values() if s.ready and not s.invalid and s.handles_guild(guild_id)]

    async def dispatch(
        self,
        event: str,
        data: JSON,
        *,
        guild_id: str | None = None,
        intent: int | None = None,
        variant: Callable[[GatewaySession], JSON] | None = None,
        single: bool = False,
    ) -> int:
        """Send a dispatch to every session of the right shard that asked for ``intent``.

        Disconnected but resumable sessions buffer it (replayed on RESUME). ``single`` delivers to the
        first connected session only (interactions go to one client). Returns the sessions reached.
        """
        count = 0
        for session in self.live_sessions(guild_id):
            if intent is not None and not session.intents & intent:
                continue
            if single and not session.connected:
                continue
            payload = variant(session) if variant is not None else data
            await self._send_dispatch(session, event, payload)
            count += 1
            if single:
                break
        self.fake._changed()
        return count

    # ------------------------------------------------------------------ control

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT to every connected session (the client closes and RESUMEs)."""
        for session in list(self.sessions.values()):
            if session.connection is not None:
                await session.connection.send({"op": OP_RECONNECT, "d": None, "s": None, "t": None})

    async def invalidate(self, *, resumable: bool = False) -> None:
        for session in list(self.sessions.values()):
            if session.connection is not None:
                if not resumable:
                    session.invalid = True
                await session.connection.send({"op": OP_INVALID_SESSION, "d": resumable, "s": None, "t": None})

    async def drop(self, code: int = 4000) -> None:
        """Close every socket from the server side (sessions stay resumable unless code ends them)."""
        for connection in list(self.connections):
            await connection.close_from_server(code, b"fake discord drop")

    async def disconnect(self, session: GatewaySession | None = None, *, code: int = 4000) -> int:
        """Close ``session``'s socket (None: every socket) from the server side; returns how many closed.

        With a resumable code (4000 by default; not 1000/1001, which end the session, nor the fatal
        4004/4010-4014) discord.py reconnects at once and RESUMEs; dispatches meanwhile are buffered
        and replayed before RESUMED (``on_resumed``). Call ``refuse(True)`` first to keep it out.
        """
        if session is None:
            targets = list(self.connections)
        else:
            targets = [session.connection] if session.connection is not None else []
        closed = 0
        for connection in targets:
            if not connection.ws.closed:
                await connection.close_from_server(code, b"fake discord disconnect")
                closed += 1
        self.fake._changed()
        return closed

    def refuse(self, on: bool = True) -> None:
        """While on, answer every new gateway connection with HTTP 503 (the gateway is "down").

        Open sockets are not touched (``disconnect`` them, or ``fake.drop_gateway(refuse=True)``).
        discord.py then retries with ``ExponentialBackoff``: a random 0-2 s, 0-4 s, 0-8 s... real
        sleep per attempt, always trying to RESUME. Tests that turn refusing off again can make the
        retries quick with ``monkeypatch.setattr(discord.backoff.ExponentialBackoff, "delay", lambda self: 0.01)``;
        ``refused`` counts the attempts, so ``fake.wait_until(lambda: fake.gateway.refused >= 1)``
        observes the outage without sleeping.
        """
        self.refusing = on
        self.fake._changed()

    def connected_sessions(self) -> list[GatewaySession]:
        """Identified sessions with an open socket right now."""
        return [s for s in self.sessions.values() if s.connected and not s.invalid]

    async def close(self) -> None:
        for connection in list(self.connections):
            with contextlib.suppress(Exception):
                await connection.ws.close(code=1001, message=b"fake discord shutting down")
        for session in self.sessions.values():
            session.invalid = True

    # ------------------------------------------------------------------ handler

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.refusing:
            self.refused += 1
            self.fake._changed()
            return web.Response(status=503, text="gateway unavailable (fake discord refuses connections)")
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        compress = request.query.get("compress") == "zlib-stream" and self.fake.compress
        connection = _Connection(ws, zlib.compressobj() if compress else None)
        self.connections.add(connection)
        session: GatewaySession | None = None
        try:
            if request.query.get("v", "10") != "10":
                await ws.close(code=4012, message=b"Invalid API version")
                return ws
            if request.query.get("encoding", "json") != "json":
                await ws.close(code=4002, message=b"Decode error")
                return ws
            await connection.send(
                {"op": OP_HELLO, "d": {"heartbeat_interval": self.fake.heartbeat_interval}, "s": None, "t": None}
            )
            async for message in ws:
                if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                try:
                    payload = json.loads(message.data)
                except ValueError:
                    await ws.close(code=4002, message=b"Decode error")
                    break
                session = await self._on_frame(connection, session, payload)
        finally:
            self.connections.discard(connection)
            if session is not None and session.connection is connection:
                session.connection = None
                if connection.server_close_code is not None:
                    ending = connection.server_close_code in _SERVER_SESSION_ENDING_CLOSES
                else:
                    ending = ws.close_code in _SESSION_ENDING_CLOSES
                if ending and not self.fake.closing:
                    session.invalid = True
            self.fake._changed()
        return ws

    async def _on_frame(
        self, connection: _Connection, session: GatewaySession | None, payload: Any
    ) -> GatewaySession | None:
        if not isinstance(payload, dict):
            await connection.ws.close(code=4002, message=b"Decode error")
            return session
        op = payload.get("op")
        data = payload.get("d")
        if op == OP_HEARTBEAT:
            self.heartbeats += 1
            await connection.send({"op": OP_HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == OP_IDENTIFY:
            if session is not None:
                await connection.ws.close(code=4005, message=b"Already authenticated")
                return session
            return await self._identify(connection, data)
        elif op == OP_RESUME:
            if session is not None:
                await connection.ws.close(code=4005, message=b"Already authenticated")
                return session
            return await self._resume(connection, data)
        elif op == OP_REQUEST_GUILD_MEMBERS:
            if session is None:
                await connection.ws.close(code=4003, message=b"Not authenticated")
                return None
            await self._members_chunk(session, data)
        elif op in (OP_PRESENCE_UPDATE, OP_VOICE_STATE_UPDATE):
            if session is None:
                await connection.ws.close(code=4003, message=b"Not authenticated")
        else:
            await connection.ws.close(code=4001, message=b"Unknown opcode")
        return session

    async def _identify(self, connection: _Connection, data: Any) -> GatewaySession | None:
        fake = self.fake
        if not isinstance(data, dict) or data.get("token") != fake.token:
            await connection.ws.close(code=4004, message=b"Authentication failed")
            return None
        intents = data.get("intents")
        if not isinstance(intents, int):
            await connection.ws.close(code=4013, message=b"Invalid intent(s)")
            return None
        privileged = intents & PRIVILEGED_INTENTS
        if privileged & ~fake.privileged_intents:
            await connection.ws.close(code=4014, message=b"Disallowed intent(s)")
            return None
        shard = _parse_shard(data.get("shard"))
        if shard is None:
            await connection.ws.close(code=4010, message=b"Invalid shard")
            return None
        fake.identify_payloads.append(dict(data))
        session = GatewaySession(session_id=secrets.token_hex(16), intents=intents, shard=shard, identify=dict(data))
        guild_ids = [g.id for g in fake.guilds if session.handles_guild(g.id)]
        limit = fake.max_guilds_per_session
        if limit is not None and len(guild_ids) > limit:
            await connection.close_from_server(4011, b"Sharding required")
            return None
        session.connection = connection
        self.sessions[session.session_id] = session
        await self._send_dispatch(session, "READY", fake._ready_payload(session.session_id, guild_ids, shard))
        for guild in fake.guilds:
            if guild.id in guild_ids:
                await self._send_dispatch(session, "GUILD_CREATE", fake._guild_create_payload(guild, session.intents))
        session.ready = True
        fake._changed()
        return session

    async def _resume(self, connection: _Connection, data: Any) -> GatewaySession | None:
        fake = self.fake
        if not isinstance(data, dict):
            await connection.ws.close(code=4002, message=b"Decode error")
            return None
        self.resume_payloads.append(dict(data))
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or session.invalid or data.get("token") != fake.token:
            await connection.send({"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None})
            fake._changed()
            return None
        if session.connection is not None:
            old = session.connection
            session.connection = None
            with contextlib.suppress(Exception):
                await old.ws.close(code=4000, message=b"Session resumed elsewhere")
        last_seq = data.get("seq") or 0
        session.connection = connection
        for frame in list(session.buffer):
            if frame["s"] > last_seq:
                await connection.send(frame)
        session.resumes += 1
        await self._send_dispatch(session, "RESUMED", {"_trace": ["fakediscord"]})
        fake._changed()
        return session

    async def _members_chunk(self, session: GatewaySession, data: Any) -> None:
        if not isinstance(data, dict):
            return
        guild = self.fake.guild_by_id(str(data.get("guild_id")))
        if guild is None:
            return
        query = str(data.get("query") or "").lower()
        user_ids = {str(u) for u in data.get("user_ids") or []}
        limit = int(data.get("limit") or 0)
        members = [
            m
            for m in guild.members.values()
            if (not user_ids or m.user.id in user_ids) and m.user.name.lower().startswith(query)
        ]
        if limit:
            members = members[:limit]
        chunk: JSON = {
            "guild_id": guild.id,
            "members": [member_payload(m) for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        if user_ids:
            found = {m.user.id for m in members}
            chunk["not_found"] = sorted(user_ids - found)
        await self._send_dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)

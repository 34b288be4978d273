"""The gateway: a websocket at ``/gateway`` speaking Discord's v10 protocol.

One ``GatewaySession`` per IDENTIFY. A session outlives its websocket until the client closes
with 1000/1001, so a client that lost its connection can RESUME and get the events it missed
(Discord's behaviour). Events are queued per session and written by one task per connection, in
order; ``Gateway.dispatch`` is synchronous so world changes can announce themselves from any code.

What is checked, with Discord's close codes: the token (4004), a second IDENTIFY (4005), the shard
(4010), privileged intents the application has not enabled (4014), and an unsupported encoding or
compression (4002). Transport compression ``zlib-stream`` is honoured (one zlib context per
connection, each frame ending with a sync flush); without it frames are plain JSON text.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from .model import JSON
from .snowflake import shard_for


class Op(enum.IntEnum):
    """Gateway opcodes."""

    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    PRESENCE_UPDATE = 3
    VOICE_STATE_UPDATE = 4
    RESUME = 6
    RECONNECT = 7
    REQUEST_GUILD_MEMBERS = 8
    INVALID_SESSION = 9
    HELLO = 10
    HEARTBEAT_ACK = 11


class Intent(enum.IntFlag):
    """Gateway intents the stand-in filters on (values are Discord's)."""

    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    GUILD_MESSAGE_TYPING = 1 << 11
    DIRECT_MESSAGES = 1 << 12
    DIRECT_MESSAGE_TYPING = 1 << 14
    MESSAGE_CONTENT = 1 << 15


PRIVILEGED_INTENTS = Intent.GUILD_MEMBERS | Intent.GUILD_PRESENCES | Intent.MESSAGE_CONTENT

# Which intent a guild event needs; the DM variant is used when the event has no guild.
_EVENT_INTENTS: dict[str, tuple[Intent, Intent | None]] = {
    "GUILD_CREATE": (Intent.GUILDS, None),
    "GUILD_UPDATE": (Intent.GUILDS, None),
    "GUILD_ROLE_CREATE": (Intent.GUILDS, None),
    "GUILD_ROLE_UPDATE": (Intent.GUILDS, None),
    "CHANNEL_CREATE": (Intent.GUILDS, None),
    "CHANNEL_UPDATE": (Intent.GUILDS, None),
    "THREAD_CREATE": (Intent.GUILDS, None),
    "GUILD_MEMBER_ADD": (Intent.GUILD_MEMBERS, None),
    "GUILD_MEMBER_UPDATE": (Intent.GUILD_MEMBERS, None),
    "MESSAGE_CREATE": (Intent.GUILD_MESSAGES, Intent.DIRECT_MESSAGES),
    "MESSAGE_UPDATE": (Intent.GUILD_MESSAGES, Intent.DIRECT_MESSAGES),
    "MESSAGE_DELETE": (Intent.GUILD_MESSAGES, Intent.DIRECT_MESSAGES),
    "TYPING_START": (Intent.GUILD_MESSAGE_TYPING, Intent.DIRECT_MESSAGE_TYPING),
}


class CloseCode(enum.IntEnum):
    """Gateway close codes the stand-in uses."""

    UNKNOWN_ERROR = 4000
    DECODE_ERROR = 4002
    AUTHENTICATION_FAILED = 4004
    ALREADY_AUTHENTICATED = 4005
    INVALID_SHARD = 4010
    DISALLOWED_INTENTS = 4014


@dataclass(eq=False)
class GatewaySession:
    """One identified gateway session: its shard, intents, sequence and undelivered events."""

    session_id: str
    shard_id: int
    shard_count: int
    intents: Intent
    compression: str | None = None
    seq: int = 0
    backlog: list[tuple[int, JSON]] = field(default_factory=list, repr=False)
    queue: asyncio.Queue[JSON] | None = field(default=None, repr=False)
    resumes: int = 0

    @property
    def connected(self) -> bool:
        """Whether a websocket is attached right now."""
        return self.queue is not None

    def owns(self, guild_id: int | None) -> bool:
        """Whether this session's shard receives events of ``guild_id`` (DMs go to shard 0)."""
        if guild_id is None:
            return self.shard_id == 0
        return shard_for(guild_id, self.shard_count) == self.shard_id

    async def flushed(self) -> None:
        """Return once every queued event has been written to the websocket."""
        if self.queue is not None:
            await self.queue.join()

    def push(self, event: str, data: JSON) -> None:
        """Number the event, keep it for RESUME and queue it for the live socket."""
        self.seq += 1
        frame: JSON = {"op": Op.DISPATCH, "t": event, "s": self.seq, "d": data}
        self.backlog.append((self.seq, frame))
        if self.queue is not None:
            self.queue.put_nowait(frame)


@dataclass
class GatewayConfig:
    """What the gateway checks and announces; the stand-in fills it from its constructor."""

    token: str
    shard_count: int
    heartbeat_interval_ms: int
    enabled_privileged_intents: Intent


class Gateway:
    """Accepts websocket connections and routes dispatched events to the right sessions.

    ``ready_payload(session)`` and ``guild_payloads(session)`` are supplied by the stand-in, so
    the gateway never reaches into the world itself; ``on_change`` is called whenever something
    observable happened (tests wait on it).
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        ready_payload: Callable[[GatewaySession], JSON],
        guild_payloads: Callable[[GatewaySession], list[JSON]],
        members_chunk: Callable[[JSON], JSON | None],
        bot_user_id: int,
        on_change: Callable[[], None],
    ) -> None:
        self.config = config
        self._ready_payload = ready_payload
        self._guild_payloads = guild_payloads
        self._members_chunk = members_chunk
        self._bot_user_id = bot_user_id
        self._on_change = on_change
        self.sessions: dict[str, GatewaySession] = {}
        self.connections: list[GatewayConnection] = []
        self.close_codes: list[int] = []
        self.identify_payloads: list[JSON] = []
        self.heartbeats = 0

    @property
    def ready_sessions(self) -> list[GatewaySession]:
        """Sessions with a live websocket that got READY (or RESUMED)."""
        return [s for s in self.sessions.values() if s.connected]

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """The aiohttp handler for ``GET /gateway`` (the websocket upgrade)."""
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        connection = GatewayConnection(self, ws, compress=request.query.get("compress"))
        self.connections.append(connection)
        try:
            if request.query.get("encoding", "json") != "json" or request.query.get(
                "compress"
            ) not in (None, "zlib-stream"):
                await connection.close(CloseCode.DECODE_ERROR)
                return ws
            await connection.run()
        finally:
            self.connections.remove(connection)
            self._on_change()
        return ws

    def dispatch(self, event: str, data: JSON, *, guild_id: int | None) -> None:
        """Send ``event`` to every session whose shard owns ``guild_id`` and whose intents allow it.

        Sessions whose socket dropped keep the event for RESUME.
        """
        for session in self.sessions.values():
            if not session.owns(guild_id) or not self._wants(session, event, guild_id):
                continue
            session.push(event, self._redact_content(session, event, data, guild_id))
        self._on_change()

    async def reconnect_all(self) -> None:
        """Ask every connected client to reconnect and RESUME (op 7)."""
        for connection in list(self.connections):
            await connection.send({"op": Op.RECONNECT, "d": None})

    async def drop_all(self, code: int = CloseCode.UNKNOWN_ERROR) -> None:
        """Close every websocket with ``code``; sessions stay resumable."""
        for connection in list(self.connections):
            await connection.close(code)

    def _wants(self, session: GatewaySession, event: str, guild_id: int | None) -> bool:
        guild_intent, dm_intent = _EVENT_INTENTS.get(event, (Intent(0), Intent(0)))
        needed = guild_intent if guild_id is not None else dm_intent
        return needed is None or not needed or bool(session.intents & needed)

    def _redact_content(
        self, session: GatewaySession, event: str, data: JSON, guild_id: int | None
    ) -> JSON:
        # Without MESSAGE_CONTENT, Discord empties guild messages that neither come from the
        # bot nor mention it (DMs are exempt).
        if (
            event not in ("MESSAGE_CREATE", "MESSAGE_UPDATE")
            or session.intents & Intent.MESSAGE_CONTENT
            or guild_id is None
            or data.get("author", {}).get("id") == str(self._bot_user_id)
            or any(m.get("id") == str(self._bot_user_id) for m in data.get("mentions", []))
        ):
            return data
        return {**data, "content": "", "embeds": [], "attachments": [], "components": []}


class GatewayConnection:
    """One websocket: HELLO, then IDENTIFY or RESUME, heartbeats, and the event writer."""

    def __init__(
        self, gateway: Gateway, ws: web.WebSocketResponse, *, compress: str | None
    ) -> None:
        self._gateway = gateway
        self._ws = ws
        self._zlib = zlib.compressobj() if compress == "zlib-stream" else None
        self._send_lock = asyncio.Lock()
        self.session: GatewaySession | None = None
        self._queue: asyncio.Queue[JSON] | None = None
        self._writer: asyncio.Task[None] | None = None

    async def send(self, frame: JSON) -> None:
        """Write one frame, compressed when the client asked for zlib-stream."""
        text = json.dumps(frame, separators=(",", ":"))
        async with self._send_lock:
            if self._ws.closed:
                return
            if self._zlib is None:
                await self._ws.send_str(text)
            else:
                data = self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
                await self._ws.send_bytes(data)

    async def close(self, code: int, message: str = "") -> None:
        """Close the websocket with a gateway close code."""
        self._gateway.close_codes.append(code)
        # Detach first, so a client that reconnects at once finds its session free to resume.
        await self._detach(code)
        await self._ws.close(code=code, message=message.encode())

    async def run(self) -> None:
        """Serve the connection until the client or the stand-in closes it."""
        config = self._gateway.config
        await self.send({"op": Op.HELLO, "d": {"heartbeat_interval": config.heartbeat_interval_ms}})
        try:
            async for message in self._ws:
                if message.type is not WSMsgType.TEXT:
                    break
                await self._receive(json.loads(message.data))
        finally:
            await self._detach(self._ws.close_code)

    async def _receive(self, frame: JSON) -> None:
        op, raw = frame.get("op"), frame.get("d")
        data: JSON = raw if isinstance(raw, dict) else {}
        if op == Op.HEARTBEAT:
            self._gateway.heartbeats += 1
            await self.send({"op": Op.HEARTBEAT_ACK})
        elif op == Op.IDENTIFY:
            await self._identify(data)
        elif op == Op.RESUME:
            await self._resume(data)
        elif op == Op.REQUEST_GUILD_MEMBERS and self.session is not None:
            chunk = self._gateway._members_chunk(data)
            if chunk is not None:
                self.session.push("GUILD_MEMBERS_CHUNK", chunk)
        # Presence and voice updates are accepted and ignored.

    def _token_ok(self, token: object) -> bool:
        expected = self._gateway.config.token
        return isinstance(token, str) and secrets.compare_digest(
            token.removeprefix("Bot "), expected
        )

    async def _identify(self, data: JSON) -> None:
        gateway, config = self._gateway, self._gateway.config
        gateway.identify_payloads.append({**data, "token": "<redacted>"})
        if not self._token_ok(data.get("token")):
            await self.close(CloseCode.AUTHENTICATION_FAILED, "Authentication failed.")
            return
        if self.session is not None:
            await self.close(CloseCode.ALREADY_AUTHENTICATED, "Already authenticated.")
            return
        shard_id, shard_count = data.get("shard") or [0, 1]
        if not 0 <= shard_id < shard_count:
            await self.close(CloseCode.INVALID_SHARD, "Invalid shard.")
            return
        intents = Intent(int(data.get("intents", 0)))
        if intents & PRIVILEGED_INTENTS & ~config.enabled_privileged_intents:
            await self.close(CloseCode.DISALLOWED_INTENTS, "Disallowed intent(s).")
            return
        session = GatewaySession(
            session_id=secrets.token_hex(16),
            shard_id=shard_id,
            shard_count=shard_count,
            intents=intents,
            compression="zlib-stream" if self._zlib is not None else None,
        )
        gateway.sessions[session.session_id] = session
        self._attach(session)
        session.push("READY", gateway._ready_payload(session))
        if intents & Intent.GUILDS:
            for guild in gateway._guild_payloads(session):
                session.push("GUILD_CREATE", guild)
        gateway._on_change()

    async def _resume(self, data: JSON) -> None:
        session = self._gateway.sessions.get(str(data.get("session_id")))
        if session is None or not self._token_ok(data.get("token")):
            await self.send({"op": Op.INVALID_SESSION, "d": False})
            return
        after = int(data.get("seq") or 0)
        session.resumes += 1
        self._attach(session)
        assert session.queue is not None
        for seq, frame in session.backlog:
            if seq > after:
                session.queue.put_nowait(frame)
        session.push("RESUMED", {})
        self._gateway._on_change()

    def _attach(self, session: GatewaySession) -> None:
        self.session = session
        self._queue = session.queue = asyncio.Queue()
        self._writer = asyncio.create_task(self._write(self._queue))

    async def _write(self, queue: asyncio.Queue[JSON]) -> None:
        while True:
            frame = await queue.get()
            try:
                await self.send(frame)
            finally:
                queue.task_done()

    async def _detach(self, close_code: int | None) -> None:
        """Stop writing; end the session on a clean close, else leave it open for RESUME."""
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        session, queue = self.session, self._queue
        if session is None or queue is None:
            return
        self._queue = None
        # Unsent frames stay in the backlog for RESUME; release anyone waiting on the queue.
        while not queue.empty():
            queue.get_nowait()
            queue.task_done()
        if session.queue is queue:  # not already taken over by a resuming connection
            session.queue = None
        if close_code in (1000, 1001):
            self._gateway.sessions.pop(session.session_id, None)

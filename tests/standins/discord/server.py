"""``DiscordStandIn``: the gateway and REST stand-in on 127.0.0.1 that tests script and inspect.

    async with DiscordStandIn() as discord:
        guild = discord.create_guild("Tavern")
        general = discord.create_text_channel(guild, "general")
        alice = discord.create_member(guild, "alice")
        with discord.point_discord_py_here():
            client = discord_py.Client(intents=..., guild_ready_timeout=0.05)
            ...  # start it with discord.token
        await discord.wait_until_connected()
        said = await discord.user_says(general, alice, f"{discord.bot.mention} hello")
        reply = await discord.wait_for_message(general, after=said)

World-building methods are synchronous and, when a bot is connected, announce the change on the
gateway like Discord does (GUILD_CREATE, CHANNEL_CREATE, ...). User actions are ``async`` and
return the message or interaction they created. Waits take a timeout and raise ``TimeoutError``
with the most recent REST calls in the message, so a failing test says what the bot did.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from typing import Any, Self

from aiohttp import web

from . import routes_commands, routes_core, routes_interactions, routes_messages, routes_webhooks
from .gateway import PRIVILEGED_INTENTS, Gateway, GatewayConfig, GatewaySession, Intent
from .interactions import (
    CommandNotAvailable,
    Interaction,
    InteractionType,
    build_command_data,
    check_command_gates,
    find_command,
)
from .model import (
    JSON,
    Channel,
    ChannelType,
    Edit,
    Guild,
    Member,
    Message,
    MessageType,
    Role,
    User,
    iso_timestamp,
)
from .permissions import ALL_PERMISSIONS, DEFAULT_BOT_PERMISSIONS, NO_PERMISSIONS, Permission
from .pointing import point_discord_py_at
from .ratelimit import RateLimiter
from .rest import API_PREFIX, Call, RestConfig, RestContext, middleware
from .world import World

_POLL_INTERVAL = 0.02

# Application flags that say a privileged intent is switched on in the developer portal.
_INTENT_FLAGS = {
    Intent.GUILD_PRESENCES: 1 << 13,
    Intent.GUILD_MEMBERS: 1 << 15,
    Intent.MESSAGE_CONTENT: 1 << 19,
}


class DiscordStandIn:
    """A Discord gateway + REST server on an ephemeral 127.0.0.1 port.

    ``message_content_intent=False`` is the developer-portal switch turned off: a bot asking
    for the intent is closed with 4014. ``shard_count`` is what ``GET /gateway/bot`` recommends.
    ``interaction_deadline`` is how long the bot has to answer an interaction (Discord: 3 s).
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        bot_name: str = "Troupe",
        shard_count: int = 1,
        message_content_intent: bool = True,
        members_intent: bool = True,
        presences_intent: bool = True,
        heartbeat_interval_ms: int = 41_250,
        interaction_deadline: float = 3.0,
    ) -> None:
        self.token = token or f"standin.{secrets.token_urlsafe(24)}"
        enabled = PRIVILEGED_INTENTS
        for wanted, intent in (
            (message_content_intent, Intent.MESSAGE_CONTENT),
            (members_intent, Intent.GUILD_MEMBERS),
            (presences_intent, Intent.GUILD_PRESENCES),
        ):
            if not wanted:
                enabled &= ~intent
        flags = sum(flag for intent, flag in _INTENT_FLAGS.items() if enabled & intent)
        self.world = World(bot_name=bot_name, application_flags=flags)
        self.rate_limits = RateLimiter()
        self._changed = asyncio.Event()
        self.gateway = Gateway(
            GatewayConfig(
                token=self.token,
                shard_count=shard_count,
                heartbeat_interval_ms=heartbeat_interval_ms,
                enabled_privileged_intents=enabled,
            ),
            ready_payload=self._ready_payload,
            guild_payloads=self._guild_payloads,
            members_chunk=self._members_chunk,
            bot_user_id=self.world.bot.id,
            on_change=self._notify,
        )
        self._rest = RestContext(
            world=self.world,
            gateway=self.gateway,
            limiter=self.rate_limits,
            config=RestConfig(
                token=self.token,
                shard_count=shard_count,
                gateway_url="",
                interaction_deadline=interaction_deadline,
            ),
            on_change=self._notify,
        )
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on an ephemeral port of 127.0.0.1."""
        app = web.Application(middlewares=[middleware(self._rest)])
        app.router.add_get("/gateway", self.gateway.handle)
        for module in (
            routes_core,
            routes_messages,
            routes_webhooks,
            routes_interactions,
            routes_commands,
        ):
            for route in module.routes(self._rest):
                assert isinstance(route, web.RouteDef)
                app.router.add_route(route.method, API_PREFIX + route.path, route.handler)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._rest.config.gateway_url = self.gateway_url

    async def close(self) -> None:
        """Close every websocket and stop listening."""
        if self._runner is not None:
            await self.gateway.drop_all(1001)
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def api_base_url(self) -> str:
        """The REST base, what ``DISCORD_API_BASE_URL`` should be: ``http://127.0.0.1:PORT/api/v10``."""
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """The gateway, what ``DISCORD_GATEWAY_URL`` should be: ``ws://127.0.0.1:PORT/gateway``."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    def point_discord_py_here(self) -> contextlib.AbstractContextManager[None]:
        """Point discord.py's REST base and gateway at this stand-in inside a ``with`` block."""
        return point_discord_py_at(self.api_base_url, self.gateway_url)

    @property
    def bot(self) -> User:
        """The bot user (``bot.mention`` pings it)."""
        return self.world.bot

    @property
    def application_id(self) -> int:
        """The bot's application id."""
        return self.world.application.id

    @property
    def calls(self) -> list[Call]:
        """Every REST call so far, oldest first."""
        return self._rest.calls

    @property
    def interactions(self) -> dict[int, Interaction]:
        """Every interaction sent, by id."""
        return self._rest.interactions

    @property
    def unhandled_calls(self) -> list[Call]:
        """Calls to paths the stand-in does not implement (answered 404)."""
        return [c for c in self.calls if c.route is None]

    def calls_to(self, route: str, channel: Channel | None = None) -> list[Call]:
        """Calls to ``route`` (e.g. ``"PATCH /channels/{channel_id}/messages/{message_id}"``),
        optionally only those for ``channel``."""
        return [
            c
            for c in self.calls
            if c.route == route
            and (channel is None or c.params.get("channel_id") == str(channel.id))
        ]

    def bot_messages(self, channel: Channel) -> list[Message]:
        """The live messages the bot side (bot user, its webhooks, its interaction responses)
        posted in ``channel``, oldest first."""
        return [m for m in channel.live_messages() if self._from_bot(m)]

    def fail_writes(self, status: int | None = 503) -> None:
        """Answer every REST write (anything but GET: messages, webhooks, typing) with
        ``status`` until called again with ``None``: Discord failing on its side while the
        gateway keeps delivering events. Failed calls are recorded like any other."""
        self._rest.failing_writes = status

    # -- building the world --------------------------------------------------------------------

    def create_user(
        self, username: str, *, global_name: str | None = None, bot: bool = False
    ) -> User:
        """A Discord account that is not in any guild yet."""
        return self.world.create_user(username, global_name=global_name, bot=bot)

    def create_guild(
        self,
        name: str,
        *,
        owner: User | None = None,
        bot_permissions: Permission = DEFAULT_BOT_PERMISSIONS,
        everyone_permissions: Permission | None = None,
        shard: tuple[int, int] | None = None,
    ) -> Guild:
        """A guild the bot is in, with an owner and the bot's managed role (``bot_permissions``).

        ``shard=(k, n)`` gives it an id that lands on shard ``k`` of ``n``.
        """
        extra = (
            {} if everyone_permissions is None else {"everyone_permissions": everyone_permissions}
        )
        guild = self.world.create_guild(
            name, owner=owner, bot_permissions=bot_permissions, shard=shard, **extra
        )
        self.gateway.dispatch("GUILD_CREATE", guild.to_payload(), guild_id=guild.id)
        return guild

    def create_role(
        self, guild: Guild, name: str, permissions: Permission = NO_PERMISSIONS
    ) -> Role:
        """A role in ``guild``."""
        role = self.world.create_role(guild, name, permissions)
        self.gateway.dispatch(
            "GUILD_ROLE_CREATE",
            {"guild_id": str(guild.id), "role": role.to_payload()},
            guild_id=guild.id,
        )
        return role

    def create_member(
        self,
        guild: Guild,
        username: str,
        *,
        roles: list[Role] | None = None,
        nick: str | None = None,
        global_name: str | None = None,
        bot: bool = False,
    ) -> User:
        """A new user who is a member of ``guild``; returns the user."""
        user = self.world.create_user(username, global_name=global_name, bot=bot)
        self.add_member(guild, user, roles=roles, nick=nick)
        return user

    def add_member(
        self, guild: Guild, user: User, *, roles: list[Role] | None = None, nick: str | None = None
    ) -> Member:
        """Put an existing user in ``guild``."""
        member = self.world.add_member(guild, user, roles=roles, nick=nick)
        self.gateway.dispatch(
            "GUILD_MEMBER_ADD",
            {**member.to_payload(), "guild_id": str(guild.id)},
            guild_id=guild.id,
        )
        return member

    def set_member_roles(self, guild: Guild, user: User, roles: list[Role]) -> None:
        """Replace a member's roles."""
        member = guild.member(user)
        member.role_ids = [r.id for r in roles]
        self.gateway.dispatch(
            "GUILD_MEMBER_UPDATE",
            {**member.to_payload(), "guild_id": str(guild.id)},
            guild_id=guild.id,
        )

    def set_role_permissions(self, role: Role, permissions: Permission) -> None:
        """Change what a role allows (the @everyone role is ``guild.everyone``)."""
        role.permissions = permissions
        self.gateway.dispatch(
            "GUILD_ROLE_UPDATE",
            {"guild_id": str(role.guild_id), "role": role.to_payload()},
            guild_id=role.guild_id,
        )

    def set_overwrite(
        self,
        channel: Channel,
        target: Role | User,
        *,
        allow: Permission = NO_PERMISSIONS,
        deny: Permission = NO_PERMISSIONS,
    ) -> None:
        """Set the channel's permission overwrite for a role (or @everyone) or a member."""
        assert channel.guild is not None, "overwrites live on guild channels"
        assert not channel.is_thread, "threads use their parent's overwrites"
        overwrite = channel.overwrite_for(target)
        overwrite.allow, overwrite.deny = allow, deny
        self.gateway.dispatch("CHANNEL_UPDATE", channel.to_payload(), guild_id=channel.guild.id)

    def create_text_channel(
        self, guild: Guild, name: str, *, nsfw: bool = False, topic: str | None = None
    ) -> Channel:
        """A text channel; ``nsfw=True`` makes it age-restricted."""
        channel = self.world.create_text_channel(guild, name, nsfw=nsfw, topic=topic)
        self.gateway.dispatch("CHANNEL_CREATE", channel.to_payload(), guild_id=guild.id)
        return channel

    def create_thread(
        self, parent: Channel, name: str, *, owner: User | None = None, private: bool = False
    ) -> Channel:
        """A thread in ``parent`` (its own conversation)."""
        thread = self.world.create_thread(parent, name, owner=owner, private=private)
        assert parent.guild is not None
        self.gateway.dispatch(
            "THREAD_CREATE",
            {**thread.to_payload(), "newly_created": True},
            guild_id=parent.guild.id,
        )
        return thread

    def open_dm(self, user: User) -> Channel:
        """The DM channel between ``user`` and the bot."""
        return self.world.open_dm(user)

    def close_dms(self, user: User, closed: bool = True) -> None:
        """``user`` blocks the bot or stops taking DMs (``closed=False``: takes them again):
        the bot's messages to their DM then fail with 403, code 50007."""
        user.dms_closed = closed

    def permissions_for(self, user: User, channel: Channel) -> Permission:
        """What the stand-in computes for ``user`` in ``channel`` (all in DMs)."""
        if channel.guild is None:
            return ALL_PERMISSIONS
        return channel.guild.permissions_for(user, channel)

    # -- what users do -------------------------------------------------------------------------

    async def user_says(
        self,
        channel: Channel,
        author: User,
        content: str,
        *,
        mentions: list[User] | None = None,
        reply_to: Message | int | None = None,
        mention_author: bool = True,
    ) -> Message:
        """``author`` posts ``content`` in ``channel``; MESSAGE_CREATE goes to the bot.

        ``mentions`` are @mentioned by putting their ``<@id>`` in front of the content (unless
        it is already there); mentions written in the content count too. ``reply_to`` makes it
        a reply, which pings the replied-to author unless ``mention_author=False``.
        """
        self._check_can_post(channel, author)
        prefix = " ".join(u.mention for u in mentions or [] if u.mention not in content)
        reference = None
        if reply_to is not None:
            reference = self.world.message(
                channel, reply_to if isinstance(reply_to, int) else reply_to.id
            )
        message = Message(
            id=self.world.ids.next_id(),
            channel=channel,
            author=author,
            content=f"{prefix} {content}" if prefix else content,
            reference=reference,
            reply_pings_author=mention_author,
            type=MessageType.REPLY if reference is not None else MessageType.DEFAULT,
        )
        return await self._post(message)

    async def user_types(self, channel: Channel, author: User) -> None:
        """``author`` starts typing in ``channel``; TYPING_START goes to the bot."""
        data: dict[str, Any] = {
            "channel_id": str(channel.id),
            "user_id": str(author.id),
            "timestamp": int(time.time()),
        }
        guild = channel.guild
        if guild is not None:
            data["guild_id"] = str(guild.id)
            data["member"] = guild.member(author.id).to_payload()
        self.gateway.dispatch("TYPING_START", data, guild_id=guild.id if guild else None)
        await self._settle()

    async def webhook_says(self, channel: Channel, name: str, content: str) -> Message:
        """A message from someone else's webhook (not the bot's) in ``channel``."""
        assert channel.guild is not None
        owner = channel.guild.member(channel.guild.owner_id).user
        webhook = self.world.create_webhook(channel.parent or channel, name, created_by=owner)
        author = User(id=webhook.id, username=name, bot=True)
        message = Message(
            id=self.world.ids.next_id(),
            channel=channel,
            author=author,
            content=content,
            webhook_id=webhook.id,
        )
        return await self._post(message)

    async def user_edits(self, message: Message, content: str) -> Message:
        """The author edits ``message``; MESSAGE_UPDATE goes to the bot."""
        message.content = content
        message.edited_timestamp = iso_timestamp()
        message.edits.append(Edit(at=time.monotonic(), content=content))
        self._rest.apply_mentions(message)
        self._rest.announce("MESSAGE_UPDATE", message)
        await self._settle()
        return message

    async def user_deletes(self, message: Message) -> None:
        """The author deletes ``message``; MESSAGE_DELETE goes to the bot."""
        self._rest.delete_message(message)
        await self._settle()

    async def invoke_command(
        self,
        channel: Channel,
        user: User,
        command: str,
        options: dict[str, Any] | None = None,
    ) -> Interaction:
        """``user`` runs the slash command ``command`` (``"character set"`` for subcommands).

        ``options`` maps option names to values (users, channels and roles as objects). The
        command must have been registered by the bot, in this guild or globally, and Discord's
        own gates apply (``default_member_permissions``, DM availability, nsfw): otherwise
        ``CommandNotAvailable`` is raised, because Discord would not offer the command.
        """
        return await self._command_interaction(
            InteractionType.APPLICATION_COMMAND, channel, user, command, options or {}, focused=None
        )

    async def autocomplete(
        self, channel: Channel, user: User, command: str, options: dict[str, Any], *, focused: str
    ) -> Interaction:
        """``user`` is typing option ``focused`` of ``command``; returns the interaction, whose
        ``choices`` fill in once the bot answers (``await discord.wait_for_response(it)``)."""
        return await self._command_interaction(
            InteractionType.AUTOCOMPLETE, channel, user, command, options, focused=focused
        )

    async def click(
        self, message: Message, user: User, custom_id: str, *, values: list[str] | None = None
    ) -> Interaction:
        """``user`` clicks the button ``custom_id`` on ``message`` (or picks ``values`` in
        that select menu)."""
        component = _find_component(message.components, custom_id)
        data: JSON = {"custom_id": custom_id, "component_type": int(component["type"])}
        if values is not None:
            data["values"] = values
        return await self._interact(
            InteractionType.MESSAGE_COMPONENT, message.channel, user, data, message=message
        )

    async def submit_modal(
        self, opened_by: Interaction, user: User, values: dict[str, str]
    ) -> Interaction:
        """``user`` fills in and submits the modal the bot opened in answer to ``opened_by``;
        ``values`` maps each text input's ``custom_id`` to what was typed."""
        modal = opened_by.modal
        if modal is None:
            raise LookupError("the bot did not answer that interaction with a modal")
        rows = [
            {"type": 1, "components": [{"type": 4, "custom_id": key, "value": value}]}
            for key, value in values.items()
        ]
        data: JSON = {"custom_id": modal["custom_id"], "components": rows}
        return await self._interact(
            InteractionType.MODAL_SUBMIT, opened_by.channel, user, data, message=opened_by.message
        )

    # -- waiting -------------------------------------------------------------------------------

    async def wait_for(
        self,
        predicate: Callable[[], Any],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - the brief's wait API
        what: str = "condition",
    ) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every change); return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            changed = self._changed
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"timed out after {timeout}s waiting for {what}; {self._recent_calls()}"
                )
            # Also re-check now and then, for conditions on the client's side.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, _POLL_INTERVAL))

    async def wait_until_connected(
        self,
        sessions: int = 1,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - the brief's wait API
    ) -> list[GatewaySession]:
        """Wait until ``sessions`` gateway sessions are identified and connected."""
        await self.wait_for(
            lambda: len(self.gateway.ready_sessions) >= sessions,
            timeout=timeout,
            what=f"{sessions} session(s)",
        )
        return self.gateway.ready_sessions

    async def wait_for_message(
        self,
        channel: Channel,
        predicate: Callable[[Message], bool] | None = None,
        *,
        after: Message | int | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - the brief's wait API
    ) -> Message:
        """The first message in ``channel`` sent by the bot side (bot user, its webhooks or its
        interaction responses) with an id above ``after`` and matching ``predicate``."""
        floor = after.id if isinstance(after, Message) else (after or 0)

        def found() -> Message | None:
            for message in channel.messages:
                if (
                    message.id > floor
                    and self._from_bot(message)
                    and (predicate is None or predicate(message))
                ):
                    return message
            return None

        result: Message = await self.wait_for(
            found, timeout=timeout, what=f"a bot message in #{channel.name}"
        )
        return result

    async def wait_for_call(
        self,
        route: str,
        predicate: Callable[[Call], bool] | None = None,
        *,
        after: float = 0.0,
        timeout: float = 5.0,  # noqa: ASYNC109 - the brief's wait API
    ) -> Call:
        """The first REST call to ``route`` made at or after ``after`` (``time.monotonic()``)
        and matching ``predicate``."""

        def found() -> Call | None:
            for call in self.calls:
                if (
                    call.route == route
                    and call.at >= after
                    and (predicate is None or predicate(call))
                ):
                    return call
            return None

        result: Call = await self.wait_for(found, timeout=timeout, what=f"a call to {route}")
        return result

    async def wait_for_response(
        self,
        interaction: Interaction,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - the brief's wait API
    ) -> Interaction:
        """Wait until the bot answered ``interaction`` (any callback)."""
        await self.wait_for(
            lambda: interaction.acknowledged,
            timeout=timeout,
            what=f"a response to {interaction.id}",
        )
        return interaction

    # -- internals -----------------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _from_bot(self, message: Message) -> bool:
        if message.author is self.world.bot:
            return True
        webhook = self.world.webhooks.get(message.webhook_id or 0)
        return webhook is not None and webhook.created_by is self.world.bot

    def _recent_calls(self, count: int = 8) -> str:
        recent = [f"{c.method} {c.path} -> {c.status}" for c in self.calls[-count:]]
        return "recent REST calls: " + ("; ".join(recent) if recent else "none")

    def _check_can_post(self, channel: Channel, author: User) -> None:
        if channel.type == ChannelType.DM:
            if channel.recipient is not author:
                raise PermissionError(f"{author.username} is not in this DM")
            return
        assert channel.guild is not None
        if author.id not in channel.guild.members:
            raise PermissionError(f"{author.username} is not a member of {channel.guild.name}")
        needed = (
            Permission.SEND_MESSAGES_IN_THREADS if channel.is_thread else Permission.SEND_MESSAGES
        )
        if not channel.guild.permissions_for(author, channel) & needed:
            raise PermissionError(f"{author.username} cannot post in #{channel.name}")

    async def _post(self, message: Message) -> Message:
        self._rest.apply_mentions(message)
        self.world.store_message(message)
        self._rest.announce("MESSAGE_CREATE", message)
        await self._settle()
        return message

    async def _settle(self) -> None:
        # Let the gateway writers put queued events on the wire before the test goes on.
        await asyncio.gather(*(s.flushed() for s in self.gateway.ready_sessions))

    async def _command_interaction(
        self,
        kind: InteractionType,
        channel: Channel,
        user: User,
        name: str,
        options: dict[str, Any],
        *,
        focused: str | None,
    ) -> Interaction:
        top, *path = name.split()
        guild = channel.guild
        application = self.world.application
        scoped = application.guild_commands.get(guild.id, []) if guild else []
        try:
            command = find_command(scoped, top)
        except CommandNotAvailable:
            command = find_command(application.global_commands, top)
        check_command_gates(command, channel, user)
        data = build_command_data(command, path, options, guild=guild, focused=focused)
        return await self._interact(kind, channel, user, data)

    async def _interact(
        self,
        kind: InteractionType,
        channel: Channel,
        user: User,
        data: JSON,
        *,
        message: Message | None = None,
    ) -> Interaction:
        interaction = Interaction(
            id=self.world.ids.next_id(),
            token=f"aW50ZXJhY3Rpb24{secrets.token_urlsafe(48)}",
            type=kind,
            channel=channel,
            user=user,
            data=data,
            message=message,
        )
        self.interactions[interaction.id] = interaction
        guild = channel.guild
        self.gateway.dispatch(
            "INTERACTION_CREATE",
            interaction.to_payload(self.world.application.id, self.world.bot),
            guild_id=guild.id if guild else None,
        )
        await self._settle()
        return interaction

    def _ready_payload(self, session: GatewaySession) -> JSON:
        application = self.world.application
        on_shard = [g for g in self.world.guilds.values() if session.owns(g.id)]
        return {
            "v": 10,
            "user": {**self.world.bot.to_payload(), "verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in on_shard],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "shard": [session.shard_id, session.shard_count],
            "application": {"id": str(application.id), "flags": application.flags},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "user_settings": {},
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
        }

    def _guild_payloads(self, session: GatewaySession) -> list[JSON]:
        return [g.to_payload() for g in self.world.guilds.values() if session.owns(g.id)]

    def _members_chunk(self, request: JSON) -> JSON | None:
        guild = self.world.guilds.get(int(request.get("guild_id") or 0))
        if guild is None:
            return None
        query = str(request.get("query") or "").lower()
        wanted = {int(u) for u in request.get("user_ids") or []}
        members = [
            m
            for m in guild.members.values()
            if (not wanted or m.user.id in wanted) and m.user.username.lower().startswith(query)
        ]
        return {
            "guild_id": str(guild.id),
            "members": [m.to_payload() for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
            "nonce": request.get("nonce"),
        }


def _find_component(components: list[JSON], custom_id: str) -> JSON:
    for component in components:
        if component.get("custom_id") == custom_id:
            return component
        with contextlib.suppress(LookupError):
            return _find_component(list(component.get("components", [])), custom_id)
    raise LookupError(f"no component with custom_id {custom_id!r} on the message")
